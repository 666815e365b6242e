// The workspace's list of conversations: read from the server, the unsent ones and edits on top.
import { RECENT } from "./util.js";
import { storage } from "./storage.js";
import { freezeConversation } from "./types.js";
import { listOrder } from "./held.js";
import { pendingPatches } from "./outbox.js";

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */
/** @typedef {import("./types.js").Conversation} Conversation */

export class ConversationList {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.listTimer = undefined;
  }

  /** The workspace's conversations from the server. @returns {Promise<Conversation[]>} */
  async refreshList() {
    const client = this.client;
    const workspace = client.state.workspace;
    const { body } = await client.http.request("GET", `/v1/conversations?workspace=${encodeURIComponent(workspace)}&limit=100`);
    if (workspace !== client.state.workspace) return body.items;
    const outbox = await storage.outbox(client.ns);
    const unsent = outbox.filter((e) => e.kind === "create" && e.conversation.workspace === workspace).map((e) => e.conversation);
    const known = new Set(body.items.map((/** @type {Conversation} */ c) => c.id));
    this.setList([...unsent.filter((c) => !known.has(c.id)), ...body.items]);
    client.set({ ready: true, connection: navigator.onLine ? "online" : "offline" });
    return body.items;
  }

  scheduleListRefresh() {
    clearTimeout(this.listTimer);
    this.listTimer = setTimeout(() => this.refreshList().catch(() => {}), 500);
  }

  /** @param {readonly Conversation[]} list @param {boolean} [save] */
  setList(list, save = true) {
    const client = this.client;
    // a read that started before a change answers an older version: keep the newer one held
    const held = new Map(client.state.conversations.map((c) => [c.id, c]));
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
    const current = conversations.find((c) => c.id === client.state.conversationId);
    const fresher = current && (!client.state.conversation || current.version >= client.state.conversation.version);
    client.set({ conversations, recent, ...(fresher ? { conversation: current } : {}) });
    if (save) storage.putCache({ key: `${client.ns}|list|${client.state.workspace}`, ns: client.ns, list: true, conversations, touched: Date.now() }).catch(() => {});
  }

  /** A conversation as the user should see it: the server's copy with their unsent edits on top.
   * @param {any} c @returns {Conversation} */
  overlay(c) {
    const client = this.client;
    const patch = client.optimistic.get(c.id);
    return freezeConversation(patch ? { ...c, ...patch } : c);
  }

  /** Read the unsent edits again (the outbox changed here or in another tab) and show them. */
  async refreshOptimistic() {
    const client = this.client;
    client.optimistic = pendingPatches(await storage.outbox(client.ns));
    if (client.state.conversation) client.set({ conversation: this.overlay(client.state.conversation) });
    this.setList(client.state.conversations, false);
  }

  /** Put a changed conversation into the state (current and list). @param {any} c */
  applyConversation(c) {
    const client = this.client;
    const conversation = this.overlay(c);
    if (client.state.conversationId === c.id) client.set({ conversation });
    if (c.workspace === client.state.workspace) {
      const others = client.state.conversations.filter((x) => x.id !== c.id);
      this.setList([conversation, ...others]);
    }
    client.cache.scheduleCacheWrite();
  }
}
