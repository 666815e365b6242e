// chatkeep.js: the browser half of chatkeep, as one dependency-free ES module.
//
//   import { createClient } from "/static/chatkeep.js";
//   const chat = createClient({ workspace: "docs", getToken: () => myServer.chatToken() });
//   const unsubscribe = chat.subscribe(() => render(chat.getSnapshot()));
//   chat.send("Hello");
//
// What it keeps, and where:
//   - the current conversation id of each workspace: localStorage (or sessionStorage: one per tab);
//   - the latest page of recent conversations: IndexedDB, within a byte budget, painted before any
//     network work on reload and then reconciled with the server by seq;
//   - the outbox (sends and metadata edits not yet acknowledged): IndexedDB, flushed in order by
//     one tab at a time (Web Locks) with the ids chosen at send time, so a retry never duplicates;
//   - the messages of `local` conversations: IndexedDB only.
// The server is the source of truth: with empty storage the client resumes from it.
//
// Sections: 1 utilities, 2 storage (IndexedDB), 3 HTTP, 4 messages held by seq, 5 the client
// (state and store interface), 6 opening conversations, 7 outbox, 8 live updates, 9 heartbeat and
// leaving, 10 metadata, 11 page context, 12 local conversations.

/**
 * @typedef {"durable"|"ephemeral"|"local"|"none"} Mode
 * @typedef {"pending"|"sent"|"streaming"|"complete"|"interrupted"} MessageStatus
 * @typedef {"online"|"offline"|"syncing"} Connection
 *
 * @typedef {object} Message
 * @property {string} id
 * @property {string} conversation_id
 * @property {number|null} seq  null while pending
 * @property {string} role
 * @property {string} content
 * @property {MessageStatus} status
 * @property {string} created_at
 * @property {Record<string, unknown>|null} [metadata]
 *
 * @typedef {object} Conversation
 * @property {string} id
 * @property {string} workspace
 * @property {string} [user]
 * @property {string} title
 * @property {Mode|null} mode  null until the server says (the tenant default)
 * @property {boolean} starred
 * @property {boolean} pinned
 * @property {boolean} archived
 * @property {string[]} tags
 * @property {number} version
 * @property {number} last_seq
 * @property {number} message_count
 * @property {string} last_activity_at
 * @property {string} [created_at]
 * @property {string|null} [expires_at]
 * @property {string} [last_message_preview]
 *
 * @typedef {{title?: string, starred?: boolean, pinned?: boolean, archived?: boolean, tags?: string[]}} Patch
 * @typedef {{route: string, name: string, actions: readonly string[], known: boolean}} PageContext
 * @typedef {{id: string, title: string, last_activity_at: string, message_count: number}} Recent
 *
 * @typedef {object} State
 * @property {string} workspace
 * @property {string|null} conversationId
 * @property {Conversation|null} conversation
 * @property {readonly Message[]} messages  by seq; pending ones last, in the order they were sent
 * @property {boolean} hasMore  older messages exist on the server
 * @property {boolean} loadingOlder
 * @property {readonly Conversation[]} conversations  the workspace's list, pinned first
 * @property {readonly Recent[]} recent  the last 10 by activity
 * @property {Connection} connection
 * @property {number} pending  sends waiting in the outbox (all conversations)
 * @property {{id: number, text: string, kind: string}|null} notice
 * @property {PageContext|null} page
 * @property {string|null} greeting  shown until the user writes
 * @property {"cache"|"network"|null} source  where the messages shown were read from
 * @property {boolean} ready  the server has answered at least once
 * @property {boolean} stored  the server has the current conversation (created and read)
 *
 * @typedef {object} Options
 * @property {() => Promise<string>} getToken  called again on 401 / WebSocket 4401
 * @property {string} workspace
 * @property {string} [baseUrl]  default: this page's origin
 * @property {string} [namespace]  separates the storage of users sharing a browser (e.g. the user id)
 * @property {"workspace"|"tab"} [sessionScope]  "tab": the current conversation lives in sessionStorage
 * @property {Mode} [mode]  mode of new conversations; the tenant's default when omitted
 * @property {number} [heartbeatMs]  default 30000
 * @property {number} [pageSize]  default 50
 * @property {number} [cacheBytes]  IndexedDB budget for cached conversations, default 5 MB
 * @property {"inactive"|"all"|"none"} [cleanupOnPagehide]  default "inactive"
 * @property {{route: string, name: string, actions?: string[]}[]} [pageContexts]
 * @property {(ctx: PageContext) => string} [greeting]
 * @property {boolean} [live]  open the WebSocket (default true)
 */

// ---------------------------------------------------------------------------------------------
// 1. Utilities
// ---------------------------------------------------------------------------------------------

const PAGE = 50;
const MAX_BATCH = 100;
const RECENT = 10;
const DB_NAME = "chatkeep";
const DB_VERSION = 1;

/** @returns {string} an unguessable id (a random UUID) */
function newId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16)); // insecure contexts lack randomUUID
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const nowIso = () => new Date().toISOString();
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));
/** Jittered exponential backoff: attempt 0 -> ~0.5 s, capped at 30 s. */
const backoff = (/** @type {number} */ attempt) => Math.min(30_000, 500 * 2 ** attempt) * (0.5 + Math.random());

class NetworkError extends Error {}
class HttpError extends Error {
  /** @param {number} status @param {any} body */
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.code = body && body.code;
  }
}
/** A failure worth retrying later: no network, a server error, or too many requests. */
const retryable = (/** @type {unknown} */ e) =>
  e instanceof NetworkError || (e instanceof HttpError && (e.status >= 500 || e.status === 429 || e.status === 408));

// ---------------------------------------------------------------------------------------------
// 2. Storage: IndexedDB, opened when the module loads so a reload can paint before anything else
// ---------------------------------------------------------------------------------------------

/** @type {Promise<IDBDatabase|null>|null} */
let dbPromise = null;

function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve) => {
      let request;
      try {
        request = indexedDB.open(DB_NAME, DB_VERSION);
      } catch {
        resolve(null); // no IndexedDB (some private modes): work from memory
        return;
      }
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore("cache", { keyPath: "key" }).createIndex("ns", "ns");
        db.createObjectStore("outbox", { keyPath: "n", autoIncrement: true }).createIndex("ns", "ns");
      };
      request.onsuccess = () => {
        const db = request.result;
        db.onversionchange = () => {
          db.close(); // someone deletes or upgrades the database (e.g. "clear site data")
          dbPromise = null;
        };
        resolve(db);
      };
      request.onerror = () => resolve(null);
      request.onblocked = () => resolve(null);
    });
  }
  return dbPromise;
}
if (typeof indexedDB !== "undefined") openDb();

const memory = { cache: new Map(), outbox: new Map(), n: 0 };

/**
 * One request in its own transaction; resolves with its result.
 * @param {"cache"|"outbox"} store @param {"readonly"|"readwrite"} mode
 * @param {(s: IDBObjectStore) => IDBRequest} make
 * @returns {Promise<any>}
 */
async function idb(store, mode, make) {
  const db = await openDb();
  if (!db) throw new Error("no IndexedDB");
  return new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const request = make(tx.objectStore(store));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

const storage = {
  /** What a reload paints, in one transaction: a conversation's cached page, the outbox, the list.
   * @param {string} ns @param {string} id @param {string} listKey
   * @returns {Promise<{record: any, outbox: any[], list: any}>} */
  async snapshot(ns, id, listKey) {
    try {
      const db = await openDb();
      if (!db) throw new Error("no IndexedDB");
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(["cache", "outbox"], "readonly");
        const cache = tx.objectStore("cache");
        const record = cache.get(`${ns}|${id}`);
        const list = cache.get(listKey);
        const outbox = tx.objectStore("outbox").index("ns").getAll(ns);
        tx.oncomplete = () => resolve({ record: record.result, outbox: outbox.result, list: list.result });
        tx.onerror = () => reject(tx.error);
      });
    } catch {
      const outbox = [...memory.outbox.values()].filter((r) => r.ns === ns);
      return { record: memory.cache.get(`${ns}|${id}`), outbox, list: memory.cache.get(listKey) };
    }
  },
  /** @param {string} key */
  async getCache(key) {
    try {
      return await idb("cache", "readonly", (s) => s.get(key));
    } catch {
      return memory.cache.get(key);
    }
  },
  /** @param {any} record */
  async putCache(record) {
    try {
      await idb("cache", "readwrite", (s) => s.put(record));
    } catch (e) {
      if (e && /** @type {any} */ (e).name === "QuotaExceededError") throw e;
      memory.cache.set(record.key, record);
    }
  },
  /** @param {string} key */
  async deleteCache(key) {
    memory.cache.delete(key);
    try {
      await idb("cache", "readwrite", (s) => s.delete(key));
    } catch {
      /* nothing stored */
    }
  },
  /** @param {string} ns @returns {Promise<any[]>} */
  async cacheOf(ns) {
    try {
      return await idb("cache", "readonly", (s) => s.index("ns").getAll(ns));
    } catch {
      return [...memory.cache.values()].filter((r) => r.ns === ns);
    }
  },
  /** @param {string} ns @returns {Promise<any[]>} in the order they were added */
  async outbox(ns) {
    try {
      return await idb("outbox", "readonly", (s) => s.index("ns").getAll(ns));
    } catch {
      return [...memory.outbox.values()].filter((r) => r.ns === ns);
    }
  },
  /** @param {any} entry */
  async addOutbox(entry) {
    try {
      return await idb("outbox", "readwrite", (s) => s.add(entry));
    } catch {
      const n = ++memory.n;
      memory.outbox.set(n, { ...entry, n });
      return n;
    }
  },
  /** @param {number[]} keys */
  async deleteOutbox(keys) {
    for (const k of keys) memory.outbox.delete(k);
    try {
      const db = await openDb();
      if (!db) return;
      await new Promise((resolve, reject) => {
        const tx = db.transaction("outbox", "readwrite");
        for (const k of keys) tx.objectStore("outbox").delete(k);
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      });
    } catch {
      /* memory only */
    }
  },
};

/** @param {Storage|null} s @param {string} key */
function readStorage(s, key) {
  try {
    return s ? s.getItem(key) : null;
  } catch {
    return null;
  }
}
/** @param {Storage|null} s @param {string} key @param {string|null} value */
function writeStorage(s, key, value) {
  try {
    if (!s) return;
    if (value === null) s.removeItem(key);
    else s.setItem(key, value);
  } catch {
    /* storage full or disabled: the server still knows */
  }
}

// ---------------------------------------------------------------------------------------------
// 3. HTTP: JSON in and out, the token asked again once on 401
// ---------------------------------------------------------------------------------------------

class Http {
  /** @param {string} base @param {() => Promise<string>} getToken */
  constructor(base, getToken) {
    this.base = base;
    this.getToken = getToken;
    /** @type {Promise<string>|null} */
    this.tokenPromise = null;
    /** @type {string|null} the last token, for sendBeacon (which cannot wait) */
    this.token = null;
  }

  /** @param {boolean} [fresh] */
  async currentToken(fresh = false) {
    if (fresh || !this.tokenPromise) {
      this.tokenPromise = Promise.resolve(this.getToken()).then((t) => (this.token = t));
      this.tokenPromise.catch(() => (this.tokenPromise = null));
    }
    return this.tokenPromise;
  }

  /**
   * @param {string} method @param {string} path @param {any} [body]
   * @param {Record<string, string>} [headers]
   * @returns {Promise<{status: number, body: any, headers: Headers}>}
   */
  async request(method, path, body, headers = {}) {
    for (let attempt = 0; ; attempt++) {
      let token;
      try {
        token = await this.currentToken(attempt > 0);
      } catch {
        throw new NetworkError("no token");
      }
      /** @type {Response} */
      let response;
      try {
        response = await fetch(this.base + path, {
          method,
          headers: {
            Authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { "Content-Type": "application/json" }),
            ...headers,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          cache: "no-store",
        });
      } catch (e) {
        throw new NetworkError(String(e));
      }
      if (response.status === 401 && attempt === 0) continue;
      const text = response.status === 204 ? "" : await response.text().catch(() => "");
      let parsed = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = null;
      }
      if (!response.ok) throw new HttpError(response.status, parsed);
      return { status: response.status, body: parsed, headers: response.headers };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Messages held by seq: a duplicated, late or out-of-order copy never shows twice or out of place
// ---------------------------------------------------------------------------------------------

/** @param {any} m @returns {MessageStatus} */
function statusOf(m) {
  if (m.seq === null || m.seq === undefined) return "pending";
  if (m.status === "streaming" || m.status === "interrupted") return m.status;
  return m.role === "assistant" || m.role === "tool" ? "complete" : "sent";
}

/** A server message (or a cached one) as the client holds it. @returns {Message} */
function normalise(/** @type {any} */ m) {
  return Object.freeze({
    id: m.id,
    conversation_id: m.conversation_id,
    seq: m.seq ?? null,
    role: m.role,
    content: m.content ?? "",
    status: statusOf(m),
    created_at: m.created_at || nowIso(),
    metadata: m.metadata ?? null,
  });
}

class Held {
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

/** @param {any} c @returns {Conversation} */
const freezeConversation = (c) => Object.freeze({ ...c, tags: Object.freeze([...(c.tags || [])]) });

/** Pinned first, then by last activity, newest first (the server's order). */
function listOrder(/** @type {Conversation} */ a, /** @type {Conversation} */ b) {
  if (a.pinned !== b.pinned) return a.pinned ? -1 : 1;
  return a.last_activity_at < b.last_activity_at ? 1 : a.last_activity_at > b.last_activity_at ? -1 : 0;
}

// ---------------------------------------------------------------------------------------------
// 5. The client: state, and the store interface (subscribe + getSnapshot) frameworks bind to
// ---------------------------------------------------------------------------------------------

/** @param {Options} options @returns {DeclaredClient} */
export function createClient(options) {
  return new ChatkeepClient(options);
}

// tsc checks the class against chatkeep.d.ts (what "./chatkeep.js" names for the type checker), so
// the declarations TypeScript users read cannot drift from the module.
/** @typedef {import("./chatkeep.js").ChatkeepClient} DeclaredClient */
/** @implements {DeclaredClient} */
export class ChatkeepClient {
  /** @param {Options} options */
  constructor(options) {
    if (!options || typeof options.getToken !== "function") throw new TypeError("getToken is required");
    if (!options.workspace) throw new TypeError("workspace is required");
    this.options = options;
    this.base = (options.baseUrl ?? location.origin).replace(/\/$/, "");
    this.ns = `${this.base}|${options.namespace ?? "default"}`;
    this.http = new Http(this.base, options.getToken);
    this.pageSize = options.pageSize ?? PAGE;
    this.sessions = options.sessionScope === "tab" ? safe(() => sessionStorage) : safe(() => localStorage);
    /** @type {Set<() => void>} */
    this.listeners = new Set();
    this.held = new Held();
    /** @type {Map<string, PageContext>} */
    this.contexts = new Map();
    for (const c of options.pageContexts || []) this.contexts.set(c.route, { actions: [], ...c, known: true });
    this.noticeCount = 0;
    this.stopped = false;
    /** @type {string|null} the conversation whose latest page was read from the server (or created) */
    this.loadedId = null;
    /** @type {Set<string>} conversations the user has been told are gone */
    this.told = new Set();
    /** @type {string|null} the conversation left to follow another tab's switch */
    this.left = null;
    /** @type {State} */
    this.state = Object.freeze({
      workspace: options.workspace,
      conversationId: null,
      conversation: null,
      messages: Object.freeze([]),
      hasMore: false,
      loadingOlder: false,
      conversations: Object.freeze([]),
      recent: Object.freeze([]),
      connection: /** @type {Connection} */ (navigator.onLine ? "online" : "offline"),
      pending: 0,
      notice: null,
      page: null,
      greeting: null,
      source: null,
      ready: false,
      stored: false,
    });
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(`chatkeep|${this.ns}`) : null;
    if (this.channel) this.channel.onmessage = (e) => this.onBroadcast(e.data);
    this.live = new Live(this);
    this.heartbeat = new HeartbeatTimer(this);
    this.flushAttempt = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.flushTimer = undefined;
    /** @type {Map<string, number>} "conversation|version" -> the version this tab's patch made of it */
    this.ownBumps = new Map();
    /** @type {Map<string, Patch>} edits waiting in the outbox, per conversation: shown over the server's copy */
    this.optimistic = new Map();
    this.onOnline = () => {
      this.set({ connection: "online" });
      this.flush();
      this.live.connect();
      this.sync();
    };
    this.onOffline = () => this.set({ connection: "offline" });
    this.onPagehide = () => this.beaconCleanup();
    addEventListener("online", this.onOnline);
    addEventListener("offline", this.onOffline);
    addEventListener("pagehide", this.onPagehide);
    this.started = this.start();
  }

  /** Call `listener` after every change; returns the function that stops it.
   * @param {() => void} listener */
  subscribe = (listener) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** The current state: an immutable object, replaced (never changed) on every change. */
  getSnapshot = () => this.state;

  /** @param {Partial<State>} patch */
  set(patch) {
    const next = { ...this.state, ...patch };
    if (patch.connection === undefined && next.connection !== "offline") {
      next.connection = next.pending > 0 ? "syncing" : "online";
    } else if (patch.connection === "online" && next.pending > 0) next.connection = "syncing";
    this.state = Object.freeze(next);
    for (const listener of [...this.listeners]) listener();
  }

  /** Publish the held messages (and the conversation) after a change. */
  emitMessages(/** @type {Partial<State>} */ extra = {}) {
    const messages = this.held.list();
    const wrote = messages.some((m) => m.role === "user");
    this.set({ messages, greeting: wrote ? null : this.greetingText(), ...extra });
    this.scheduleCacheWrite();
  }

  /** @param {string} text @param {string} [kind] */
  notify(text, kind = "info") {
    this.set({ notice: Object.freeze({ id: ++this.noticeCount, text, kind }) });
  }

  get currentKey() {
    return `chatkeep:current:${this.ns}:${this.state.workspace}`;
  }

  /** Stop everything this client started (sockets, timers, listeners). */
  close() {
    this.stopped = true;
    this.live.close();
    this.heartbeat.stop();
    removeEventListener("online", this.onOnline);
    removeEventListener("offline", this.onOffline);
    removeEventListener("pagehide", this.onPagehide);
    if (this.channel) this.channel.close();
    clearTimeout(this.flushTimer);
    clearTimeout(this.cacheTimer);
    clearTimeout(this.listTimer);
  }

  // -------------------------------------------------------------------------------------------
  // 6. Opening conversations: cache first, then the server
  // -------------------------------------------------------------------------------------------

  async start() {
    const id = readStorage(this.sessions, this.currentKey);
    if (id) await this.paintFromCache(id);
    this.heartbeat.start();
    this.live.connect();
    await this.resume(id);
    this.flush();
  }

  /** Show what the browser holds for `id` (cached page, pending sends), before any network work. */
  async paintFromCache(/** @type {string} */ id) {
    const { record, outbox, list } = await storage.snapshot(this.ns, id, `${this.ns}|list|${this.state.workspace}`);
    this.optimistic = pendingPatches(outbox);
    if (list && !this.state.ready) this.setList(list.conversations, false);
    this.held = new Held();
    for (const m of record ? record.messages : []) this.held.put(m);
    for (const e of outbox) if (e.kind === "message" && e.conversationId === id) this.held.put(e.message);
    const listed = list && list.conversations.find((/** @type {Conversation} */ c) => c.id === id);
    const conversation = record ? record.conversation : this.pendingCreate(outbox, id) || listed;
    this.set({
      conversationId: id,
      stored: this.loadedId === id,
      conversation: conversation ? this.overlay(conversation) : null,
      hasMore: record ? record.hasMore : false,
      pending: countSends(outbox),
      source: record ? "cache" : null,
    });
    this.emitMessages();
  }

  /** @param {any[]} outbox @param {string} id */
  pendingCreate(outbox, id) {
    const e = outbox.find((x) => x.kind === "create" && x.conversationId === id);
    return e ? e.conversation : null;
  }

  /** Open `id` from the server, or (no id: storage empty, another device) the most recent one. */
  async resume(/** @type {string|null} */ id) {
    try {
      if (!id) {
        const list = await this.refreshList();
        const latest = [...list].filter((c) => !c.archived).sort((a, b) => (a.last_activity_at < b.last_activity_at ? 1 : -1))[0];
        if (latest) return await this.open(latest.id);
        return await this.newConversation();
      }
      await Promise.all([this.open(id, { painted: true }), this.refreshList()]);
    } catch (e) {
      if (!retryable(e)) throw e;
      this.set({ connection: "offline" });
      if (!id && !this.state.conversationId) await this.newConversation(); // offline, nothing known
      this.retryResume();
    }
  }

  retryResume() {
    clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => {
      if (!this.stopped) this.sync();
    }, 3000);
  }

  /** Read the current conversation and the list again (after an outage). */
  async sync() {
    const id = this.state.conversationId;
    try {
      if (id) await this.open(id, { painted: true });
      await this.refreshList();
    } catch (e) {
      if (retryable(e)) this.retryResume();
    }
  }

  /**
   * Make `id` the current conversation and load its latest messages.
   * @param {string} id @param {{painted?: boolean}} [opts] painted: the cache is already shown
   */
  async open(id, opts = {}) {
    if (!opts.painted || this.state.conversationId !== id) {
      writeStorage(this.sessions, this.currentKey, id);
      this.broadcast({ type: "current", workspace: this.state.workspace, id });
      await this.paintFromCache(id);
      this.live.follow();
      this.heartbeat.beat();
    }
    const outbox = await storage.outbox(this.ns);
    const creating = this.pendingCreate(outbox, id);
    let body;
    try {
      body = (await this.http.request("GET", `/v1/conversations/${encodeURIComponent(id)}?messages=${this.pageSize}`)).body;
    } catch (e) {
      if (e instanceof HttpError && e.status === 404 && !creating) {
        if (this.state.conversationId === id) await this.lost(id, e.code === "expired" ? "expired" : "deleted");
        return;
      }
      if (e instanceof HttpError && e.status === 404) return; // created by the next flush
      throw e;
    }
    if (this.state.conversationId !== id) return; // switched meanwhile
    const { messages, has_more_messages, ...read } = body;
    const known = this.state.conversation;
    const conversation = known && known.id === id && known.version > read.version ? known : read;
    if (conversation.mode === "local") {
      this.loadedId = id;
      this.set({ conversation: this.overlay(conversation), ready: true, stored: true, source: this.state.source || "network" });
      return;
    }
    const before = this.held;
    this.held = new Held();
    for (const m of messages) this.held.put(m);
    // keep what is newer than this page (live events that raced the read) and pending sends
    const top = messages.length ? messages[messages.length - 1].seq : 0;
    for (const m of before.list()) if (m.seq === null || m.seq > top) this.held.put(m);
    for (const e of outbox) if (e.kind === "message" && e.conversationId === id) this.held.put(e.message);
    this.set({ conversation: this.overlay(conversation), hasMore: has_more_messages, ready: true, source: this.state.source || "network" });
    this.emitMessages();
    this.loadedId = id;
    this.set({ stored: true });
    this.live.follow(true); // resume after what this read holds
  }

  /** The current conversation is gone (deleted elsewhere, expired): start a fresh one and say so. */
  async lost(/** @type {string} */ id, /** @type {"expired"|"deleted"} */ why) {
    await storage.deleteCache(`${this.ns}|${id}`);
    this.setList(this.state.conversations.filter((c) => c.id !== id));
    if (this.state.conversationId !== id) return;
    this.tell(id, why);
    // Tabs sharing the current id all learn this at once: the first starts the fresh conversation,
    // the others open it (and are told why, if the fresh one reached them first).
    // The replacement is recorded in IndexedDB, which tabs see at once (localStorage may lag).
    await withLock(`chatkeep-current|${this.currentKey}`, async () => {
      if (this.state.conversationId !== id) return;
      const key = `${this.ns}|replaced|${id}`;
      const replaced = this.options.sessionScope === "tab" ? null : await storage.getCache(key);
      if (replaced) await this.open(replaced.by);
      else {
        const by = await this.newConversation();
        await storage.putCache({ key, ns: this.ns, list: true, by, touched: Date.now() }).catch(() => {});
        this.broadcast({ type: "lost", id, why });
      }
    });
  }

  /** Say once that conversation `id` is gone and a new one was started. */
  tell(/** @type {string} */ id, /** @type {"expired"|"deleted"} */ why) {
    if (this.told.has(id)) return;
    this.told.add(id);
    this.notify(
      why === "expired"
        ? "This conversation expired, so a new one was started."
        : "This conversation was deleted elsewhere, so a new one was started.",
      "warning",
    );
  }

  /**
   * Start a new conversation (created on the server by the outbox, so this works offline too).
   * @param {{mode?: Mode, title?: string}} [spec]
   * @returns {Promise<string>} its id
   */
  async newConversation(spec = {}) {
    const id = newId();
    const mode = spec.mode ?? this.options.mode ?? null;
    const now = nowIso();
    /** @type {Conversation} */
    const conversation = {
      id,
      workspace: this.state.workspace,
      title: spec.title ?? "",
      mode,
      starred: false,
      pinned: false,
      archived: false,
      tags: [],
      version: 1,
      last_seq: 0,
      message_count: 0,
      created_at: now,
      last_activity_at: now,
    };
    const body = { id, workspace: this.state.workspace, title: conversation.title, ...(mode ? { mode } : {}) };
    await this.enqueue({ kind: "create", conversationId: id, body, conversation });
    writeStorage(this.sessions, this.currentKey, id);
    this.held = new Held();
    this.set({ conversationId: id, conversation: freezeConversation(conversation), hasMore: false, source: null, stored: false });
    this.emitMessages();
    this.setList([conversation, ...this.state.conversations]);
    this.broadcast({ type: "current", workspace: this.state.workspace, id });
    this.live.follow();
    this.flush();
    return id;
  }

  /** Switch to another workspace: its own current conversation and list. @param {string} workspace */
  async setWorkspace(workspace) {
    if (workspace === this.state.workspace) return;
    this.set({ workspace, conversationId: null, conversation: null, stored: false, conversations: Object.freeze([]), recent: Object.freeze([]) });
    this.held = new Held();
    this.emitMessages();
    this.live.resubscribe();
    const id = readStorage(this.sessions, this.currentKey);
    if (id) await this.paintFromCache(id);
    await this.resume(id);
  }

  /** Switch to an existing conversation. @param {string} id */
  async switchTo(id) {
    if (id === this.state.conversationId) return;
    try {
      await this.open(id);
    } catch (e) {
      if (!retryable(e)) throw e;
      this.set({ connection: "offline" });
    }
  }

  /** Start afresh at once; the old conversation is deleted on the server in the background. */
  async clearHistory() {
    const old = this.state.conversationId;
    await this.newConversation();
    if (old) {
      await storage.deleteCache(`${this.ns}|${old}`);
      this.setList(this.state.conversations.filter((c) => c.id !== old));
      await this.enqueue({ kind: "delete", conversationId: old });
      this.flush();
    }
  }

  /** Load the page of messages before the oldest one shown (scroll up). */
  async loadOlder() {
    const id = this.state.conversationId;
    const first = this.held.minSeq();
    if (!id || !this.state.hasMore || this.state.loadingOlder || first === null) return;
    this.set({ loadingOlder: true });
    try {
      const { body } = await this.http.request("GET", `/v1/conversations/${encodeURIComponent(id)}/messages?before=${first}&limit=${this.pageSize}`);
      if (this.state.conversationId !== id) return;
      for (const m of body.messages) this.held.put(m);
      this.set({ hasMore: body.has_more, loadingOlder: false, messages: this.held.list() });
    } catch (e) {
      this.set({ loadingOlder: false });
      if (!retryable(e)) throw e;
    }
  }

  /** The workspace's conversations from the server. @returns {Promise<Conversation[]>} */
  async refreshList() {
    const workspace = this.state.workspace;
    const { body } = await this.http.request("GET", `/v1/conversations?workspace=${encodeURIComponent(workspace)}&limit=100`);
    if (workspace !== this.state.workspace) return body.items;
    const outbox = await storage.outbox(this.ns);
    const unsent = outbox.filter((e) => e.kind === "create" && e.conversation.workspace === workspace).map((e) => e.conversation);
    const known = new Set(body.items.map((/** @type {Conversation} */ c) => c.id));
    this.setList([...unsent.filter((c) => !known.has(c.id)), ...body.items]);
    this.set({ ready: true, connection: navigator.onLine ? "online" : "offline" });
    return body.items;
  }

  scheduleListRefresh() {
    clearTimeout(this.listTimer);
    this.listTimer = setTimeout(() => this.refreshList().catch(() => {}), 500);
  }

  /** @param {readonly Conversation[]} list @param {boolean} [save] */
  setList(list, save = true) {
    // a read that started before a change answers an older version: keep the newer one held
    const held = new Map(this.state.conversations.map((c) => [c.id, c]));
    const newest = (/** @type {Conversation} */ c) => {
      const known = held.get(c.id);
      return known && known.version > c.version ? known : c;
    };
    const conversations = Object.freeze([...list].map((c) => this.overlay(newest(c))).sort(listOrder));
    const recent = Object.freeze(
      [...conversations]
        .sort((a, b) => (a.last_activity_at < b.last_activity_at ? 1 : -1))
        .slice(0, RECENT)
        .map((c) => Object.freeze({ id: c.id, title: c.title, last_activity_at: c.last_activity_at, message_count: c.message_count })),
    );
    const current = conversations.find((c) => c.id === this.state.conversationId);
    const fresher = current && (!this.state.conversation || current.version >= this.state.conversation.version);
    this.set({ conversations, recent, ...(fresher ? { conversation: current } : {}) });
    if (save) storage.putCache({ key: `${this.ns}|list|${this.state.workspace}`, ns: this.ns, list: true, conversations, touched: Date.now() }).catch(() => {});
  }

  /** A conversation as the user should see it: the server's copy with their unsent edits on top.
   * @param {any} c @returns {Conversation} */
  overlay(c) {
    const patch = this.optimistic.get(c.id);
    return freezeConversation(patch ? { ...c, ...patch } : c);
  }

  /** Read the unsent edits again (the outbox changed here or in another tab) and show them. */
  async refreshOptimistic() {
    this.optimistic = pendingPatches(await storage.outbox(this.ns));
    if (this.state.conversation) this.set({ conversation: this.overlay(this.state.conversation) });
    this.setList(this.state.conversations, false);
  }

  /** Put a changed conversation into the state (current and list). @param {any} c */
  applyConversation(c) {
    const conversation = this.overlay(c);
    if (this.state.conversationId === c.id) this.set({ conversation });
    if (c.workspace === this.state.workspace) {
      const others = this.state.conversations.filter((x) => x.id !== c.id);
      this.setList([conversation, ...others]);
    }
    this.scheduleCacheWrite();
  }

  scheduleCacheWrite() {
    clearTimeout(this.cacheTimer);
    this.cacheTimer = setTimeout(() => this.writeCache(), 200);
  }

  /** Cache the latest page of the current conversation in one record (what the next reload paints). */
  async writeCache() {
    const { conversation, conversationId } = this.state;
    if (!conversation || !conversationId || conversation.mode === "none" || conversation.mode === "local") return;
    const stored = this.held.list().filter((m) => m.seq !== null);
    const messages = stored.slice(-this.pageSize);
    const record = {
      key: `${this.ns}|${conversationId}`,
      ns: this.ns,
      id: conversationId,
      conversation,
      messages,
      hasMore: this.state.hasMore || stored.length > messages.length,
      touched: Date.now(),
      size: 0,
    };
    record.size = JSON.stringify(messages).length * 2 + 1024;
    try {
      await storage.putCache(record);
    } catch {
      await this.evict(record.size); // quota: make room, then try once more
      await storage.putCache(record).catch(() => {});
    }
    this.evictSoon();
  }

  evictSoon() {
    if (this.evictTimer) return;
    this.evictTimer = setTimeout(() => {
      this.evictTimer = undefined;
      this.evict(0).catch(() => {});
    }, 2000);
  }

  /** Drop the least recently used cached conversations until the budget (less `room`) holds. */
  async evict(/** @type {number} */ room) {
    const budget = (this.options.cacheBytes ?? 5 * 1024 * 1024) - room;
    const records = (await storage.cacheOf(this.ns)).filter((r) => !r.list && !r.local);
    let total = records.reduce((sum, r) => sum + (r.size || 0), 0);
    records.sort((a, b) => a.touched - b.touched);
    for (const r of records) {
      if (total <= budget) break;
      if (r.id === this.state.conversationId && room === 0) continue;
      await storage.deleteCache(r.key);
      total -= r.size || 0;
    }
  }

  // -------------------------------------------------------------------------------------------
  // 7. Outbox: every write goes through it, so an offline send is kept and sent once
  // -------------------------------------------------------------------------------------------

  /**
   * Send a user message: shown at once as pending, stored in the outbox, sent when possible.
   * @param {string} text @param {{role?: string, metadata?: Record<string, unknown>}} [extra]
   * @returns {Promise<string>} the message id
   */
  async send(text, extra = {}) {
    if (!this.state.conversationId) await this.newConversation();
    const conversationId = /** @type {string} */ (this.state.conversationId);
    const message = {
      id: newId(),
      conversation_id: conversationId,
      seq: null,
      role: extra.role || "user",
      content: text,
      created_at: nowIso(),
      metadata: extra.metadata ?? null,
    };
    const mode = this.state.conversation && this.state.conversation.mode;
    if (mode === "local") return this.sendLocal(message);
    this.held.put(message);
    this.emitMessages();
    await this.enqueue({ kind: "message", conversationId, message });
    this.flush();
    return message.id;
  }

  /** @param {any} entry */
  async enqueue(entry) {
    await storage.addOutbox({ ...entry, ns: this.ns, at: Date.now() });
    if (entry.kind === "patch") this.optimistic = pendingPatches(await storage.outbox(this.ns));
    await this.countPending();
    this.broadcast({ type: "outbox" });
  }

  async countPending() {
    this.set({ pending: countSends(await storage.outbox(this.ns)) });
  }

  /** Send what the outbox holds, in order, in one tab at a time. */
  flush() {
    if (this.stopped) return Promise.resolve();
    if (!this.flushing) {
      this.flushing = withLock(`chatkeep-outbox|${this.ns}`, () => this.flushLocked()).finally(() => {
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
    for (;;) {
      const outbox = await storage.outbox(this.ns);
      if (!outbox.length) break;
      const first = outbox[0];
      try {
        if (first.kind === "message") await this.flushMessages(outbox);
        else if (first.kind === "create") await this.flushCreate(first);
        else if (first.kind === "patch") await this.flushPatch(first);
        else if (first.kind === "delete") await this.flushDelete(first);
        else await storage.deleteOutbox([first.n]);
        this.flushAttempt = 0;
      } catch (e) {
        if (retryable(e)) {
          this.set({ connection: "offline" });
          clearTimeout(this.flushTimer);
          this.flushTimer = setTimeout(() => this.flush(), backoff(this.flushAttempt++));
          break;
        }
        await this.dropEntry(first, e);
      }
      await this.countPending();
      this.broadcast({ type: "outbox" });
    }
    await this.countPending();
    if (this.state.connection !== "offline") this.set({ connection: "online" });
  }

  /** @param {any[]} outbox */
  async flushMessages(outbox) {
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
    const { body } = await this.http.request("POST", `/v1/conversations/${encodeURIComponent(cid)}/messages:batch`, { messages });
    await storage.deleteOutbox(batch.map((e) => e.n));
    const stored = body.results.map((/** @type {any} */ r) => r.message);
    this.acked(cid, stored);
    this.broadcast({ type: "acked", conversationId: cid, messages: stored });
  }

  /** Stored copies of sent messages arrived: pending becomes sent. @param {string} cid @param {any[]} stored */
  acked(cid, stored) {
    if (cid !== this.state.conversationId) return;
    let changed = false;
    for (const m of stored) changed = this.held.put(m) || changed;
    if (changed) this.emitMessages();
  }

  /** @param {any} e */
  async flushCreate(e) {
    const { body } = await this.http.request("POST", "/v1/conversations", e.body);
    await storage.deleteOutbox([e.n]);
    this.applyConversation(body);
    if (body.id === this.state.conversationId) {
      this.loadedId = body.id;
      this.set({ stored: true });
      this.live.follow(true); // it exists now: follow it
    }
  }

  /** @param {any} e */
  async flushDelete(e) {
    try {
      await this.http.request("DELETE", `/v1/conversations/${encodeURIComponent(e.conversationId)}`);
    } catch (err) {
      if (!(err instanceof HttpError && err.status === 404)) throw err;
    }
    await storage.deleteOutbox([e.n]);
  }

  /** A write the server refuses for good (not a network or server failure): drop it, say so. @param {any} e @param {unknown} err */
  async dropEntry(e, err) {
    const gone = err instanceof HttpError && err.status === 404;
    const outbox = await storage.outbox(this.ns);
    const drop = gone && e.kind === "message" ? outbox.filter((x) => x.conversationId === e.conversationId && x.kind === "message") : [e];
    await storage.deleteOutbox(drop.map((x) => x.n));
    if (e.kind === "message" && e.conversationId === this.state.conversationId && gone) {
      await this.lost(e.conversationId, err instanceof HttpError && err.code === "expired" ? "expired" : "deleted");
    } else if (e.kind !== "delete") {
      this.notify(`A change could not be saved: ${err instanceof Error ? err.message : err}`, "error");
    }
  }

  // -------------------------------------------------------------------------------------------
  // Tabs of one browser: the outbox, acknowledgements and the current id travel by BroadcastChannel
  // -------------------------------------------------------------------------------------------

  /** @param {any} data */
  broadcast(data) {
    if (this.channel) this.channel.postMessage(data);
  }

  /** @param {any} data */
  async onBroadcast(data) {
    if (!data || this.stopped) return;
    if (data.type === "outbox") {
      const outbox = await storage.outbox(this.ns);
      const id = this.state.conversationId;
      let changed = false;
      for (const e of outbox) if (e.kind === "message" && e.conversationId === id) changed = this.held.put(e.message) || changed;
      if (changed) this.emitMessages();
      this.set({ pending: countSends(outbox) });
      await this.refreshOptimistic();
      // another tab created the conversation this one shows (its flush ran there): read and follow it
      if (id && !this.state.stored && !outbox.some((e) => e.kind === "create" && e.conversationId === id)) {
        this.open(id, { painted: true }).catch(() => {});
      }
    } else if (data.type === "acked") {
      this.acked(data.conversationId, data.messages);
    } else if (data.type === "current" && this.options.sessionScope !== "tab") {
      if (data.workspace === this.state.workspace && data.id !== this.state.conversationId) {
        this.left = this.state.conversationId;
        this.open(data.id).catch(() => {});
      }
    } else if (data.type === "lost" && (data.id === this.state.conversationId || data.id === this.left)) {
      this.tell(data.id, data.why);
    }
  }

  // -------------------------------------------------------------------------------------------
  // 9. Heartbeat and leaving
  // -------------------------------------------------------------------------------------------

  /** Leave the chat (an app's "back to hub"): clean up sessions, stop the socket and timers.
   * @param {{cleanup?: "all"|"inactive"|"none"}} [opts] */
  async leave(opts = {}) {
    const cleanup = opts.cleanup ?? "inactive";
    this.close();
    if (cleanup === "none") return;
    try {
      await this.http.request("POST", "/v1/sessions/cleanup", { strategy: cleanup, workspace: this.state.workspace });
    } catch {
      /* the server's expiry cleans up what this could not */
    }
  }

  beaconCleanup() {
    const strategy = this.options.cleanupOnPagehide ?? "inactive";
    if (strategy === "none" || !this.http.token || typeof navigator.sendBeacon !== "function") return;
    const body = JSON.stringify({ token: this.http.token, strategy, workspace: this.state.workspace });
    navigator.sendBeacon(`${this.base}/v1/sessions/cleanup`, new Blob([body], { type: "text/plain" }));
  }

  // -------------------------------------------------------------------------------------------
  // 10. Metadata: optimistic, If-Match, a 412 re-read and re-applied once
  // -------------------------------------------------------------------------------------------

  /** Change star, pin, archive, title or tags of a conversation (the current one by default).
   * @param {Patch} patch @param {string} [id] */
  async update(patch, id = this.state.conversationId || "") {
    const c = id === this.state.conversationId ? this.state.conversation : this.state.conversations.find((x) => x.id === id);
    if (!c) return;
    /** @type {Record<string, unknown>} */
    const base = {};
    for (const k of Object.keys(patch)) base[k] = /** @type {any} */ (c)[k];
    this.applyConversation({ ...c, ...patch });
    await this.enqueue({ kind: "patch", conversationId: id, patch, base, version: c.version });
    this.flush();
  }

  star(on = true) { return this.update({ starred: on }); }
  pin(on = true) { return this.update({ pinned: on }); }
  archive(on = true) { return this.update({ archived: on }); }
  rename(/** @type {string} */ title) { return this.update({ title }); }
  setTags(/** @type {string[]} */ tags) { return this.update({ tags }); }

  /** @param {any} e */
  async flushPatch(e) {
    const path = `/v1/conversations/${encodeURIComponent(e.conversationId)}`;
    const patch = { ...e.patch };
    /** @type {string[]} fields someone else changed meanwhile: their value is kept */
    let lost = [];
    let version = e.version;
    // edits queued one after another: each was based on the version before the previous one was
    // stored, which this tab's own previous patch turned into the next one
    while (this.ownBumps.has(`${e.conversationId}|${version}`)) version = this.ownBumps.get(`${e.conversationId}|${version}`);
    for (let attempt = 0; ; attempt++) {
      /** @type {any} */
      let stored = null;
      if (Object.keys(patch).length) {
        try {
          stored = (await this.http.request("PATCH", path, patch, { "If-Match": `"${version}"` })).body;
          this.ownBumps.set(`${e.conversationId}|${version}`, stored.version);
        } catch (err) {
          if (!(err instanceof HttpError && err.status === 412) || attempt > 0) throw err;
        }
      }
      if (!stored && attempt > 0) {
        // nothing of the user's change is left to send: the server's copy stands
        const { messages, has_more_messages, ...server } = (await this.http.request("GET", `${path}?messages=0`)).body;
        stored = server;
      }
      if (stored) {
        await storage.deleteOutbox([e.n]);
        this.optimistic = pendingPatches(await storage.outbox(this.ns));
        this.applyConversation(stored);
        if (lost.length) this.notify(`Changed elsewhere meanwhile, so the other change was kept: ${lost.join(", ")}.`, "warning");
        return;
      }
      // 412, changed meanwhile: read it again, keep what others changed, re-apply the user's change on top
      const { body: server } = await this.http.request("GET", `${path}?messages=0`);
      lost = Object.keys(patch).filter((k) => !same(server[k], e.base[k]) && !same(server[k], patch[/** @type {keyof Patch} */ (k)]));
      for (const k of lost) delete patch[/** @type {keyof Patch} */ (k)];
      version = server.version;
    }
  }

  // -------------------------------------------------------------------------------------------
  // 11. Page context: where in the app the user is
  // -------------------------------------------------------------------------------------------

  /** Tell the conversation where the user is. On a route change, a note is appended if the user has
   * already written here; otherwise the greeting is replaced.
   * @param {{route: string, name?: string, actions?: string[]}} ctx */
  setPageContext(ctx) {
    const registered = this.contexts.get(ctx.route);
    /** @type {PageContext} */
    const page = Object.freeze({
      route: ctx.route,
      name: ctx.name || (registered && registered.name) || `Unknown page (${ctx.route})`,
      actions: Object.freeze([...(ctx.actions || (registered && registered.actions) || [])]),
      known: Boolean(ctx.name || registered),
    });
    if (ctx.name) this.contexts.set(ctx.route, { ...page, known: true });
    const previous = this.state.page;
    this.set({ page });
    if (previous && previous.route === page.route) return;
    const wrote = this.held.list().some((m) => m.role === "user");
    if (wrote && previous) {
      this.send(`The user moved to ${page.name} (${page.route}).`, {
        role: "system",
        metadata: { kind: "navigation", route: page.route, name: page.name, known: page.known },
      });
    } else if (!wrote) {
      this.set({ greeting: this.greetingText() });
    }
  }

  /** The app's routes that have no registered page context. @param {string[]} allRoutes */
  uncoveredRoutes(allRoutes) {
    return allRoutes.filter((r) => !this.contexts.has(r));
  }

  greetingText() {
    const page = this.state.page;
    if (!page) return null;
    if (this.options.greeting) return this.options.greeting(page);
    const actions = page.actions.length ? ` I can help you ${page.actions.join(", ")}.` : "";
    return `Hi! You are on ${page.name}.${actions} What would you like to do?`;
  }

  // -------------------------------------------------------------------------------------------
  // 12. Local conversations: messages only in this browser
  // -------------------------------------------------------------------------------------------

  /** @param {any} message */
  async sendLocal(message) {
    const id = message.conversation_id;
    const key = `${this.ns}|${id}`;
    const record = (await storage.getCache(key)) || { key, ns: this.ns, id, local: true, messages: [], hasMore: false, size: 0 };
    const seq = record.messages.length ? record.messages[record.messages.length - 1].seq + 1 : 1;
    const stored = { ...message, seq, status: "complete" };
    record.messages = [...record.messages, stored];
    record.conversation = { ...this.state.conversation, last_seq: seq, message_count: record.messages.length, last_activity_at: nowIso() };
    record.touched = Date.now();
    await storage.putCache(record);
    this.held.put(stored);
    this.emitMessages();
    return message.id;
  }

  /** Move the conversations kept only in this browser (mode `local`) to the server, as new
   * conversations of `mode` (default durable). @returns {Promise<{from: string, to: string}[]>} */
  async migrateLocalToServer(mode = /** @type {Mode} */ ("durable")) {
    const moved = [];
    for (const record of await storage.cacheOf(this.ns)) {
      if (!record.local || !record.conversation) continue;
      const c = record.conversation;
      const to = newId();
      await this.http.request("POST", "/v1/conversations", { id: to, workspace: c.workspace, title: c.title || "", mode });
      for (let i = 0; i < record.messages.length; i += MAX_BATCH) {
        const messages = record.messages.slice(i, i + MAX_BATCH).map((/** @type {any} */ m) => ({ id: m.id, role: m.role, content: m.content }));
        await this.http.request("POST", `/v1/conversations/${encodeURIComponent(to)}/messages:batch`, { messages });
      }
      if (record.id === this.state.conversationId) await this.open(to); // before the old one is gone
      await storage.deleteCache(record.key);
      await this.http.request("DELETE", `/v1/conversations/${encodeURIComponent(record.id)}`).catch(() => {});
      moved.push({ from: record.id, to });
    }
    if (moved.length) await this.refreshList();
    return moved;
  }
}

/** @param {any} a @param {any} b */
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
/** @param {any[]} outbox */
const countSends = (outbox) => outbox.filter((e) => e.kind === "message").length;
/** The unsent edits of each conversation, merged in the order they were made.
 * @param {any[]} outbox @returns {Map<string, Patch>} */
function pendingPatches(outbox) {
  const patches = new Map();
  for (const e of outbox) if (e.kind === "patch") patches.set(e.conversationId, { ...patches.get(e.conversationId), ...e.patch });
  return patches;
}
/** @template T @param {() => T} f @returns {T|null} */
function safe(f) {
  try {
    return f();
  } catch {
    return null;
  }
}

/** Run `task` holding a Web Lock, so that one tab of this browser does it at a time.
 * @param {string} name @param {() => Promise<void>} task */
function withLock(name, task) {
  const locks = /** @type {any} */ (navigator).locks;
  return locks ? locks.request(name, task) : task();
}

// ---------------------------------------------------------------------------------------------
// 8. Live updates: the WebSocket with resume by seq, polling while it cannot connect
// ---------------------------------------------------------------------------------------------

class Live {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.ready = false;
    this.failures = 0;
    /** @type {string|null} */
    this.following = null;
    /** @type {string|null} */
    this.followingWorkspace = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.retry = undefined;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.poller = undefined;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.pinger = undefined;
  }

  connect() {
    const c = this.client;
    if (c.stopped || c.options.live === false || this.ws || typeof WebSocket !== "function") return;
    clearTimeout(this.retry);
    const url = `${c.base.replace(/^http/, "ws")}/v1/ws`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = async () => {
      try {
        ws.send(JSON.stringify({ type: "auth", token: await c.http.currentToken() }));
      } catch {
        ws.close();
      }
    };
    ws.onmessage = (e) => {
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      clearInterval(this.pinger);
      this.ws = null;
      this.ready = false;
      this.following = this.followingWorkspace = null;
      if (e.code === 4401) c.http.currentToken(true).catch(() => {});
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    const c = this.client;
    if (c.stopped) return;
    this.failures++;
    if (this.failures >= 2) this.startPolling();
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.connect(), backoff(Math.min(this.failures, 6)));
  }

  startPolling() {
    if (this.poller) return;
    this.poller = setInterval(() => {
      const c = this.client;
      if (navigator.onLine && !this.ready) this.poll().catch(() => {});
      if (c.stopped) this.stopPolling();
    }, 3000);
  }

  stopPolling() {
    clearInterval(this.poller);
    this.poller = undefined;
  }

  /** Catch up over REST: messages after the last final seq, and the list. */
  async poll() {
    const c = this.client;
    const id = c.state.conversationId;
    if (!id || (c.state.conversation && c.state.conversation.mode === "local")) return;
    if (c.loadedId !== id) return c.sync(); // not read from the server yet: its latest page first
    const after = c.held.finalSeq() || (c.state.conversation ? c.state.conversation.last_seq : 0);
    const { body } = await c.http.request("GET", `/v1/conversations/${encodeURIComponent(id)}/messages?after=${after}&limit=200`);
    if (c.state.conversationId !== id) return;
    let changed = false;
    for (const m of body.messages) changed = c.held.put(m) || changed;
    if (changed) c.emitMessages();
    c.set({ connection: "online" });
    c.flush();
    c.scheduleListRefresh();
  }

  /** Follow the current conversation and workspace (again, after a switch). */
  follow(again = false) {
    const c = this.client;
    if (again) this.following = null;
    if (!this.ready || !this.ws) return;
    const id = c.state.conversationId;
    const mode = c.state.conversation && c.state.conversation.mode;
    if (this.followingWorkspace !== c.state.workspace) {
      if (this.followingWorkspace) this.frame({ type: "unsubscribe", workspace: this.followingWorkspace });
      this.followingWorkspace = c.state.workspace;
      this.frame({ type: "subscribe", workspace: c.state.workspace });
    }
    if (this.following !== id) {
      if (this.following) this.frame({ type: "unsubscribe", conversation_id: this.following });
      this.following = id;
      if (id && mode !== "local" && c.loadedId === id) {
        const after = c.held.finalSeq() || (c.state.conversation ? c.state.conversation.last_seq : 0);
        this.frame({ type: "subscribe", id: `follow:${id}`, conversation_id: id, after_seq: after });
      }
    }
  }

  resubscribe() {
    this.follow();
  }

  /** @param {any} frame */
  frame(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  /** @param {any} f */
  onFrame(f) {
    const c = this.client;
    if (f.type === "ready") {
      this.ready = true;
      clearInterval(this.pinger); // the server closes a socket that sends nothing for 90 s
      this.pinger = setInterval(() => this.frame({ type: "ping" }), 25_000);
      this.failures = 0;
      this.stopPolling();
      c.set({ connection: "online" });
      this.follow();
      c.flush();
      return;
    }
    if (f.type === "error") {
      // A subscription refused: it is followed only once the server has answered for it, so it is
      // gone meanwhile (deleted or expired while this socket was not there to hear it): reading it
      // again says which, and starts afresh.
      if (typeof f.id === "string" && f.id === `follow:${this.following}`) {
        this.following = null;
        if (f.code === "not_found" || f.code === "expired") c.sync();
      }
      return;
    }
    const cid = f.conversation_id;
    const current = cid && cid === c.state.conversationId;
    switch (f.type) {
      case "message.created":
      case "message.updated":
        if (current && c.held.put(f.message)) c.emitMessages();
        if (f.type === "message.created") c.scheduleListRefresh();
        break;
      case "message.delta":
        if (current) {
          const outcome = c.held.delta(f.message_id, f.offset, f.text);
          if (outcome === "applied") c.emitMessages();
          else if (outcome === "gap" || outcome === "unknown") this.poll().catch(() => {});
        }
        break;
      case "conversation.created":
      case "conversation.updated":
        if (f.conversation) {
          const mine = c.state.conversations.find((x) => x.id === cid) || (current ? c.state.conversation : null);
          if (!mine || f.conversation.version >= mine.version) c.applyConversation(f.conversation);
        }
        break;
      case "conversation.deleted":
      case "conversation.expired":
        c.lost(cid, f.type === "conversation.expired" ? "expired" : "deleted");
        break;
    }
  }

  close() {
    clearTimeout(this.retry);
    clearInterval(this.pinger);
    this.stopPolling();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
  }
}

class HeartbeatTimer {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.timer = undefined;
    this.onVisibility = () => (document.visibilityState === "visible" ? this.resume() : this.pause());
  }

  start() {
    document.addEventListener("visibilitychange", this.onVisibility);
    if (document.visibilityState === "visible") this.resume();
  }

  /** Beat now and every interval, while the page is visible. */
  resume() {
    this.pause();
    this.beat();
    this.timer = setInterval(() => this.beat(), this.client.options.heartbeatMs ?? 30_000);
  }

  pause() {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  stop() {
    this.pause();
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  async beat() {
    const c = this.client;
    const id = c.state.conversationId;
    // (not before the server has it: a conversation started offline is created by the outbox first)
    if (!id || !c.state.stored || c.stopped || document.visibilityState !== "visible" || !navigator.onLine) return;
    try {
      await c.http.request("POST", `/v1/conversations/${encodeURIComponent(id)}/heartbeat`);
    } catch (e) {
      if (e instanceof HttpError && e.status === 404 && e.code === "expired") c.lost(id, "expired");
      // not_found: maybe not created yet (outbox), or deleted: the event or the next open says so
    }
  }
}
