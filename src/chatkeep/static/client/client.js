// The client: state, and the store interface (subscribe + getSnapshot) frameworks bind to. Its work
// is done by the collaborators it holds (each takes the client): opening (opening conversations),
// outbox, metadata, list, cache, tabs, live, heartbeat, pages (page context) and local.
import { PAGE, newId, nowIso, retryable, safe } from "./util.js";
import { storage, readStorage, writeStorage } from "./storage.js";
import { Http } from "./http.js";
import { freezeConversation } from "./types.js";
import { Held } from "./held.js";
import { Opener } from "./opening.js";
import { Outbox } from "./outbox.js";
import { Metadata } from "./metadata.js";
import { ConversationList } from "./list.js";
import { PageCache } from "./cache.js";
import { Tabs } from "./tabs.js";
import { Live } from "./live.js";
import { HeartbeatTimer } from "./heartbeat.js";
import { PageContexts } from "./context.js";
import { LocalConversations } from "./local.js";

/** @typedef {import("./types.js").Mode} Mode */
/** @typedef {import("./types.js").Connection} Connection */
/** @typedef {import("./types.js").Conversation} Conversation */
/** @typedef {import("./types.js").Patch} Patch */
/** @typedef {import("./types.js").State} State */
/** @typedef {import("./types.js").Options} Options */

/** @param {Options} options @returns {DeclaredClient} */
export function createClient(options) {
  return new ChatkeepClient(options);
}

// tsc checks the class against chatkeep.d.ts (what "../chatkeep.js" names for the type checker), so
// the declarations TypeScript users read cannot drift from the module.
/** @typedef {import("../chatkeep.js").ChatkeepClient} DeclaredClient */
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
    this.pages = new PageContexts(this);
    this.noticeCount = 0;
    this.stopped = false;
    /** @type {string|null} the conversation whose latest page was read from the server (or created) */
    this.loadedId = null;
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
    this.tabs = new Tabs(this);
    this.live = new Live(this);
    this.heartbeat = new HeartbeatTimer(this);
    this.opening = new Opener(this);
    this.outbox = new Outbox(this);
    this.metadata = new Metadata(this);
    this.list = new ConversationList(this);
    this.cache = new PageCache(this);
    this.local = new LocalConversations(this);
    /** @type {Map<string, Patch>} edits waiting in the outbox, per conversation: shown over the server's copy */
    this.optimistic = new Map();
    this.onOnline = () => {
      this.set({ connection: "online" });
      this.flush();
      this.live.connect();
      this.opening.sync();
    };
    this.onOffline = () => this.set({ connection: "offline" });
    this.onPagehide = () => this.heartbeat.beaconCleanup();
    addEventListener("online", this.onOnline);
    addEventListener("offline", this.onOffline);
    addEventListener("pagehide", this.onPagehide);
    this.started = this.opening.start();
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
    this.set({ messages, greeting: wrote ? null : this.pages.greetingText(), ...extra });
    this.cache.scheduleCacheWrite();
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
    if (this.tabs.channel) this.tabs.channel.close();
    clearTimeout(this.outbox.flushTimer);
    clearTimeout(this.cache.cacheTimer);
    clearTimeout(this.list.listTimer);
  }

  // Opening conversations: cache first, then the server (opening.js holds the reading)

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
    await this.outbox.enqueue({ kind: "create", conversationId: id, body, conversation });
    writeStorage(this.sessions, this.currentKey, id);
    this.held = new Held();
    this.set({ conversationId: id, conversation: freezeConversation(conversation), hasMore: false, source: null, stored: false });
    this.emitMessages();
    this.list.setList([conversation, ...this.state.conversations]);
    this.tabs.broadcast({ type: "current", workspace: this.state.workspace, id });
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
    if (id) await this.opening.paintFromCache(id);
    await this.opening.resume(id);
  }

  /** Switch to an existing conversation. @param {string} id */
  async switchTo(id) {
    if (id === this.state.conversationId) return;
    try {
      await this.opening.open(id);
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
      this.list.setList(this.state.conversations.filter((c) => c.id !== old));
      await this.outbox.enqueue({ kind: "delete", conversationId: old });
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

  // Writes through the outbox (outbox.js, metadata.js), page context (context.js), local
  // conversations (local.js), leaving (heartbeat.js)

  /**
   * Send a user message: shown at once as pending, stored in the outbox, sent when possible.
   * @param {string} text @param {{role?: string, metadata?: Record<string, unknown>}} [extra]
   * @returns {Promise<string>} the message id
   */
  send(text, extra) {
    return this.outbox.send(text, extra);
  }

  /** Send what the outbox holds, in order, in one tab at a time. */
  flush() {
    return this.outbox.flush();
  }

  /** Change star, pin, archive, title or tags of a conversation (the current one by default).
   * @param {Patch} patch @param {string} [id] */
  update(patch, id) {
    return this.metadata.update(patch, id);
  }

  star(on = true) { return this.update({ starred: on }); }
  pin(on = true) { return this.update({ pinned: on }); }
  archive(on = true) { return this.update({ archived: on }); }
  rename(/** @type {string} */ title) { return this.update({ title }); }
  setTags(/** @type {string[]} */ tags) { return this.update({ tags }); }

  /** Tell the conversation where the user is. On a route change, a note is appended if the user has
   * already written here; otherwise the greeting is replaced.
   * @param {{route: string, name?: string, actions?: string[]}} ctx */
  setPageContext(ctx) {
    this.pages.setPageContext(ctx);
  }

  /** The app's routes that have no registered page context. @param {string[]} allRoutes */
  uncoveredRoutes(allRoutes) {
    return this.pages.uncoveredRoutes(allRoutes);
  }

  /** Move the conversations kept only in this browser (mode `local`) to the server, as new
   * conversations of `mode` (default durable). @param {Mode} [mode] */
  migrateLocalToServer(mode) {
    return this.local.migrateLocalToServer(mode);
  }

  /** Leave the chat (an app's "back to hub"): clean up sessions, stop the socket and timers.
   * @param {{cleanup?: "all"|"inactive"|"none"}} [opts] */
  leave(opts) {
    return this.heartbeat.leave(opts);
  }
}
