// Outbox: every write goes through it, so an offline send is kept and sent once.
import { MAX_BATCH, newId, nowIso, backoff, HttpError, retryable, withLock } from "./util.js";
import { storage } from "./storage.js";

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */
/** @typedef {import("./types.js").Patch} Patch */

export class Outbox {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
    this.flushAttempt = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.flushTimer = undefined;
    this.flushing = null; // the flush under way
    this.flushAgain = false;
  }

  /**
   * Send a user message: shown at once as pending, stored in the outbox, sent when possible.
   * @param {string} text @param {{role?: string, metadata?: Record<string, unknown>}} [extra]
   * @returns {Promise<string>} the message id
   */
  async send(text, extra = {}) {
    const client = this.client;
    if (!client.state.conversationId) await client.newConversation();
    const conversationId = /** @type {string} */ (client.state.conversationId);
    const message = {
      id: newId(),
      conversation_id: conversationId,
      seq: null,
      role: extra.role || "user",
      content: text,
      created_at: nowIso(),
      metadata: extra.metadata ?? null,
    };
    const mode = client.state.conversation && client.state.conversation.mode;
    if (mode === "local") return client.local.sendLocal(message);
    client.held.put(message);
    client.emitMessages();
    await this.enqueue({ kind: "message", conversationId, message });
    this.flush();
    return message.id;
  }

  /** @param {any} entry */
  async enqueue(entry) {
    const client = this.client;
    await storage.addOutbox({ ...entry, ns: client.ns, at: Date.now() });
    if (entry.kind === "patch") client.optimistic = pendingPatches(await storage.outbox(client.ns));
    await this.countPending();
    client.tabs.broadcast({ type: "outbox" });
  }

  async countPending() {
    const client = this.client;
    client.set({ pending: countSends(await storage.outbox(client.ns)) });
  }

  /** Send what the outbox holds, in order, in one tab at a time. */
  flush() {
    const client = this.client;
    if (client.stopped) return Promise.resolve();
    if (!this.flushing) {
      this.flushing = withLock(`chatkeep-outbox|${client.ns}`, () => this.flushLocked()).finally(() => {
        this.flushing = null;
        if (this.flushAgain) {
          this.flushAgain = false;
          this.flush();
        }
      });
    } else this.flushAgain = true;
    return this.flushing;
  }

  async flushLocked() {
    const client = this.client;
    for (;;) {
      const outbox = await storage.outbox(client.ns);
      if (!outbox.length) break;
      const first = outbox[0];
      try {
        if (first.kind === "message") await this.flushMessages(outbox);
        else if (first.kind === "create") await this.flushCreate(first);
        else if (first.kind === "patch") await client.metadata.flushPatch(first);
        else if (first.kind === "delete") await this.flushDelete(first);
        else await storage.deleteOutbox([first.n]);
        this.flushAttempt = 0;
      } catch (e) {
        if (retryable(e)) {
          client.set({ connection: "offline" });
          clearTimeout(this.flushTimer);
          this.flushTimer = setTimeout(() => this.flush(), backoff(this.flushAttempt++));
          break;
        }
        await this.dropEntry(first, e);
      }
      await this.countPending();
      client.tabs.broadcast({ type: "outbox" });
    }
    await this.countPending();
    if (client.state.connection !== "offline") client.set({ connection: "online" });
  }

  /** @param {any[]} outbox */
  async flushMessages(outbox) {
    const client = this.client;
    const cid = outbox[0].conversationId;
    const batch = [];
    for (const e of outbox) {
      if (e.kind !== "message" || e.conversationId !== cid || batch.length === MAX_BATCH) break;
      batch.push(e);
    }
    const messages = batch.map((e) => {
      const { id, role, content, metadata } = e.message;
      return metadata ? { id, role, content, metadata } : { id, role, content };
    });
    const { body } = await client.http.request("POST", `/v1/conversations/${encodeURIComponent(cid)}/messages:batch`, { messages });
    await storage.deleteOutbox(batch.map((e) => e.n));
    const stored = body.results.map((/** @type {any} */ r) => r.message);
    this.acked(cid, stored);
    client.tabs.broadcast({ type: "acked", conversationId: cid, messages: stored });
  }

  /** Stored copies of sent messages arrived: pending becomes sent. @param {string} cid @param {any[]} stored */
  acked(cid, stored) {
    const client = this.client;
    if (cid !== client.state.conversationId) return;
    let changed = false;
    for (const m of stored) changed = client.held.put(m) || changed;
    if (changed) client.emitMessages();
  }

  /** @param {any} e */
  async flushCreate(e) {
    const client = this.client;
    const { body } = await client.http.request("POST", "/v1/conversations", e.body);
    await storage.deleteOutbox([e.n]);
    client.list.applyConversation(body);
    if (body.id === client.state.conversationId) {
      client.loadedId = body.id;
      client.set({ stored: true });
      client.live.follow(true); // it exists now: follow it
    }
  }

  /** @param {any} e */
  async flushDelete(e) {
    const client = this.client;
    try {
      await client.http.request("DELETE", `/v1/conversations/${encodeURIComponent(e.conversationId)}`);
    } catch (err) {
      if (!(err instanceof HttpError && err.status === 404)) throw err;
    }
    await storage.deleteOutbox([e.n]);
  }

  /** A write the server refuses for good (not a network or server failure): drop it, say so. @param {any} e @param {unknown} err */
  async dropEntry(e, err) {
    const client = this.client;
    const gone = err instanceof HttpError && err.status === 404;
    const outbox = await storage.outbox(client.ns);
    const drop = gone && e.kind === "message" ? outbox.filter((x) => x.conversationId === e.conversationId && x.kind === "message") : [e];
    await storage.deleteOutbox(drop.map((x) => x.n));
    if (e.kind === "message" && e.conversationId === client.state.conversationId && gone) {
      await client.opening.lost(e.conversationId, err instanceof HttpError && err.code === "expired" ? "expired" : "deleted");
    } else if (e.kind !== "delete") {
      client.notify(`A change could not be saved: ${err instanceof Error ? err.message : err}`, "error");
    }
  }
}

/** @param {any[]} outbox */
export const countSends = (outbox) => outbox.filter((e) => e.kind === "message").length;
/** The unsent edits of each conversation, merged in the order they were made.
 * @param {any[]} outbox @returns {Map<string, Patch>} */
export function pendingPatches(outbox) {
  const patches = new Map();
  for (const e of outbox) if (e.kind === "patch") patches.set(e.conversationId, { ...patches.get(e.conversationId), ...e.patch });
  return patches;
}
