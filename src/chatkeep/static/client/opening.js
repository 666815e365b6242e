// Opening conversations: cache first, then the server. And a conversation lost meanwhile (deleted
// elsewhere, expired), replaced by a fresh one.
import { HttpError, retryable, withLock } from "./util.js";
import { storage, readStorage, writeStorage } from "./storage.js";
import { Held } from "./held.js";
import { pendingPatches, countSends } from "./outbox.js";

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */
/** @typedef {import("./types.js").Conversation} Conversation */

export class Opener {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
    /** @type {Set<string>} conversations the user has been told are gone */
    this.told = new Set();
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.resumeTimer = undefined;
  }

  async start() {
    const client = this.client;
    const id = readStorage(client.sessions, client.currentKey);
    if (id) await this.paintFromCache(id);
    client.heartbeat.start();
    client.live.connect();
    await this.resume(id);
    client.flush();
  }

  /** Show what the browser holds for `id` (cached page, pending sends), before any network work. */
  async paintFromCache(/** @type {string} */ id) {
    const client = this.client;
    const { record, outbox, list } = await storage.snapshot(client.ns, id, `${client.ns}|list|${client.state.workspace}`);
    client.optimistic = pendingPatches(outbox);
    if (list && !client.state.ready) client.list.setList(list.conversations, false);
    client.held = new Held();
    for (const m of record ? record.messages : []) client.held.put(m);
    for (const e of outbox) if (e.kind === "message" && e.conversationId === id) client.held.put(e.message);
    const listed = list && list.conversations.find((/** @type {Conversation} */ c) => c.id === id);
    const conversation = record ? record.conversation : this.pendingCreate(outbox, id) || listed;
    client.set({
      conversationId: id,
      stored: client.loadedId === id,
      conversation: conversation ? client.list.overlay(conversation) : null,
      hasMore: record ? record.hasMore : false,
      pending: countSends(outbox),
      source: record ? "cache" : null,
    });
    client.emitMessages();
  }

  /** @param {any[]} outbox @param {string} id */
  pendingCreate(outbox, id) {
    const e = outbox.find((x) => x.kind === "create" && x.conversationId === id);
    return e ? e.conversation : null;
  }

  /** Open `id` from the server, or (no id: storage empty, another device) the most recent one. */
  async resume(/** @type {string|null} */ id) {
    const client = this.client;
    try {
      if (!id) {
        const list = await client.list.refreshList();
        const latest = [...list].filter((c) => !c.archived).sort((a, b) => (a.last_activity_at < b.last_activity_at ? 1 : -1))[0];
        if (latest) return await this.open(latest.id);
        return await client.newConversation();
      }
      await Promise.all([this.open(id, { painted: true }), client.list.refreshList()]);
    } catch (e) {
      if (!retryable(e)) throw e;
      client.set({ connection: "offline" });
      if (!id && !client.state.conversationId) await client.newConversation(); // offline, nothing known
      this.retryResume();
    }
  }

  retryResume() {
    const client = this.client;
    clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => {
      if (!client.stopped) this.sync();
    }, 3000);
  }

  /** Read the current conversation and the list again (after an outage). */
  async sync() {
    const client = this.client;
    const id = client.state.conversationId;
    try {
      if (id) await this.open(id, { painted: true });
      await client.list.refreshList();
    } catch (e) {
      if (retryable(e)) this.retryResume();
    }
  }

  /**
   * Make `id` the current conversation and load its latest messages.
   * @param {string} id @param {{painted?: boolean}} [opts] painted: the cache is already shown
   */
  async open(id, opts = {}) {
    const client = this.client;
    if (!opts.painted || client.state.conversationId !== id) {
      writeStorage(client.sessions, client.currentKey, id);
      client.tabs.broadcast({ type: "current", workspace: client.state.workspace, id });
      await this.paintFromCache(id);
      client.live.follow();
      client.heartbeat.beat();
    }
    const outbox = await storage.outbox(client.ns);
    const creating = this.pendingCreate(outbox, id);
    let body;
    try {
      body = (await client.http.request("GET", `/v1/conversations/${encodeURIComponent(id)}?messages=${client.pageSize}`)).body;
    } catch (e) {
      if (e instanceof HttpError && e.status === 404 && !creating) {
        if (client.state.conversationId === id) await this.lost(id, e.code === "expired" ? "expired" : "deleted");
        return;
      }
      if (e instanceof HttpError && e.status === 404) return; // created by the next flush
      throw e;
    }
    if (client.state.conversationId !== id) return; // switched meanwhile
    const { messages, has_more_messages, ...read } = body;
    const known = client.state.conversation;
    const conversation = known && known.id === id && known.version > read.version ? known : read;
    if (conversation.mode === "local") {
      client.loadedId = id;
      client.set({ conversation: client.list.overlay(conversation), ready: true, stored: true, source: client.state.source || "network" });
      return;
    }
    const before = client.held;
    client.held = new Held();
    for (const m of messages) client.held.put(m);
    // keep what is newer than this page (live events that raced the read) and pending sends
    const top = messages.length ? messages[messages.length - 1].seq : 0;
    for (const m of before.list()) if (m.seq === null || m.seq > top) client.held.put(m);
    for (const e of outbox) if (e.kind === "message" && e.conversationId === id) client.held.put(e.message);
    client.set({ conversation: client.list.overlay(conversation), hasMore: has_more_messages, ready: true, source: client.state.source || "network" });
    client.emitMessages();
    client.loadedId = id;
    client.set({ stored: true });
    client.live.follow(true); // resume after what this read holds
  }

  /** The current conversation is gone (deleted elsewhere, expired): start a fresh one and say so. */
  async lost(/** @type {string} */ id, /** @type {"expired"|"deleted"} */ why) {
    const client = this.client;
    await storage.deleteCache(`${client.ns}|${id}`);
    client.list.setList(client.state.conversations.filter((c) => c.id !== id));
    if (client.state.conversationId !== id) return;
    this.tell(id, why);
    // Tabs sharing the current id all learn this at once: the first starts the fresh conversation,
    // the others open it (and are told why, if the fresh one reached them first).
    // The replacement is recorded in IndexedDB, which tabs see at once (localStorage may lag).
    await withLock(`chatkeep-current|${client.currentKey}`, async () => {
      if (client.state.conversationId !== id) return;
      const key = `${client.ns}|replaced|${id}`;
      const replaced = client.options.sessionScope === "tab" ? null : await storage.getCache(key);
      if (replaced) await this.open(replaced.by);
      else {
        const by = await client.newConversation();
        await storage.putCache({ key, ns: client.ns, list: true, by, touched: Date.now() }).catch(() => {});
        client.tabs.broadcast({ type: "lost", id, why });
      }
    });
  }

  /** Say once that conversation `id` is gone and a new one was started. */
  tell(/** @type {string} */ id, /** @type {"expired"|"deleted"} */ why) {
    const client = this.client;
    if (this.told.has(id)) return;
    this.told.add(id);
    client.notify(
      why === "expired"
        ? "This conversation expired, so a new one was started."
        : "This conversation was deleted elsewhere, so a new one was started.",
      "warning",
    );
  }
}
