// Messages held by seq: a duplicated, late or out-of-order copy never shows twice or out of place;
// and the order of the conversation list (the server's).
import { normalise } from "./types.js";

/** @typedef {import("./types.js").Message} Message */
/** @typedef {import("./types.js").Conversation} Conversation */

export class Held {
  constructor() {
    /** @type {Map<string, Message>} */
    this.byId = new Map();
    /** @type {Map<number, string>} seq -> id */
    this.bySeq = new Map();
    /** @type {string[]} pending ids in send order */
    this.pendingOrder = [];
    /** @type {readonly Message[]|null} */
    this.sorted = null;
  }

  /** Hold a message; a stored copy with a seq wins over a pending one, a longer stream over a shorter.
   * @param {any} raw @returns {boolean} whether anything changed */
  put(raw) {
    const m = normalise(raw);
    const old = this.byId.get(m.id);
    if (old && old.seq !== null && m.seq === null) return false; // already stored
    if (old && old.seq !== null && m.seq !== null && !newer(m, old)) return false;
    if (m.seq !== null) {
      const other = this.bySeq.get(m.seq);
      if (other && other !== m.id) this.byId.delete(other);
      this.bySeq.set(m.seq, m.id);
      this.pendingOrder = this.pendingOrder.filter((id) => id !== m.id);
    } else if (!old) {
      this.pendingOrder.push(m.id);
    }
    this.byId.set(m.id, m);
    this.sorted = null;
    return true;
  }

  /** Apply a streamed delta at its offset. @returns {"applied"|"known"|"gap"|"unknown"} */
  delta(/** @type {string} */ id, /** @type {number} */ offset, /** @type {string} */ text) {
    const m = this.byId.get(id);
    if (!m) return "unknown";
    if (offset > m.content.length) return "gap";
    if (offset + text.length <= m.content.length) return "known";
    this.byId.set(id, Object.freeze({ ...m, content: m.content.slice(0, offset) + text }));
    this.sorted = null;
    return "applied";
  }

  /** @returns {readonly Message[]} */
  list() {
    if (!this.sorted) {
      const stored = [...this.bySeq.keys()].sort((a, b) => a - b).map((s) => this.byId.get(this.bySeq.get(s) || ""));
      const pending = this.pendingOrder.map((id) => this.byId.get(id));
      this.sorted = Object.freeze(/** @type {Message[]} */ ([...stored, ...pending].filter(Boolean)));
    }
    return /** @type {readonly Message[]} */ (this.sorted);
  }

  /** The highest seq below which everything held is final (what a resume asks after). */
  finalSeq() {
    let last = 0;
    for (const m of this.list()) {
      if (m.seq === null) break;
      if (m.status === "streaming") return m.seq - 1;
      last = m.seq;
    }
    return last;
  }

  minSeq() {
    const first = this.list()[0];
    return first && first.seq !== null ? first.seq : null;
  }

  maxSeq() {
    let max = 0;
    for (const s of this.bySeq.keys()) max = Math.max(max, s);
    return max;
  }
}

/** Whether `m` should replace the held copy `old` of the same stored message. */
function newer(/** @type {Message} */ m, /** @type {Message} */ old) {
  if (old.status === "streaming") return m.status !== "streaming" || m.content.length > old.content.length;
  return m.status !== old.status || m.content !== old.content;
}

/** Pinned first, then by last activity, newest first (the server's order). */
export function listOrder(/** @type {Conversation} */ a, /** @type {Conversation} */ b) {
  if (a.pinned !== b.pinned) return a.pinned ? -1 : 1;
  return a.last_activity_at < b.last_activity_at ? 1 : a.last_activity_at > b.last_activity_at ? -1 : 0;
}

