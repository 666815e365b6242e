// Utilities: constants, ids and time, the errors of a request and which are worth retrying, and small
// helpers (comparing values, reading what may throw, one tab at a time).

export const PAGE = 50;
export const MAX_BATCH = 100;
export const RECENT = 10;
export const DB_NAME = "chatkeep";
export const DB_VERSION = 1;

/** @returns {string} an unguessable id (a random UUID) */
export function newId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16)); // insecure contexts lack randomUUID
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const nowIso = () => new Date().toISOString();
export const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));
/** Jittered exponential backoff: attempt 0 -> ~0.5 s, capped at 30 s. */
export const backoff = (/** @type {number} */ attempt) => Math.min(30_000, 500 * 2 ** attempt) * (0.5 + Math.random());

export class NetworkError extends Error {}
export class HttpError extends Error {
  /** @param {number} status @param {any} body */
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.code = body && body.code;
  }
}
/** A failure worth retrying later: no network, a server error, or too many requests. */
export const retryable = (/** @type {unknown} */ e) =>
  e instanceof NetworkError || (e instanceof HttpError && (e.status >= 500 || e.status === 429 || e.status === 408));

/** @param {any} a @param {any} b */
export const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
/** @template T @param {() => T} f @returns {T|null} */
export function safe(f) {
  try {
    return f();
  } catch {
    return null;
  }
}

/** Run `task` holding a Web Lock, so that one tab of this browser does it at a time.
 * @param {string} name @param {() => Promise<void>} task */
export function withLock(name, task) {
  const locks = /** @type {any} */ (navigator).locks;
  return locks ? locks.request(name, task) : task();
}
