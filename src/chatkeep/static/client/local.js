// Local conversations: messages only in this browser.
import { MAX_BATCH, newId, nowIso } from "./util.js";
import { storage } from "./storage.js";

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */
/** @typedef {import("./types.js").Mode} Mode */

export class LocalConversations {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
  }

  /** @param {any} message */
  async sendLocal(message) {
    const client = this.client;
    const id = message.conversation_id;
    const key = `${client.ns}|${id}`;
    const record = (await storage.getCache(key)) || { key, ns: client.ns, id, local: true, messages: [], hasMore: false, size: 0 };
    const seq = record.messages.length ? record.messages[record.messages.length - 1].seq + 1 : 1;
    const stored = { ...message, seq, status: "complete" };
    record.messages = [...record.messages, stored];
    record.conversation = { ...client.state.conversation, last_seq: seq, message_count: record.messages.length, last_activity_at: nowIso() };
    record.touched = Date.now();
    await storage.putCache(record);
    client.held.put(stored);
    client.emitMessages();
    return message.id;
  }

  /** Move the conversations kept only in this browser (mode `local`) to the server, as new
   * conversations of `mode` (default durable). @returns {Promise<{from: string, to: string}[]>} */
  async migrateLocalToServer(mode = /** @type {Mode} */ ("durable")) {
    const client = this.client;
    const moved = [];
    for (const record of await storage.cacheOf(client.ns)) {
      if (!record.local || !record.conversation) continue;
      const c = record.conversation;
      const to = newId();
      await client.http.request("POST", "/v1/conversations", { id: to, workspace: c.workspace, title: c.title || "", mode });
      for (let i = 0; i < record.messages.length; i += MAX_BATCH) {
        const messages = record.messages.slice(i, i + MAX_BATCH).map((/** @type {any} */ m) => ({ id: m.id, role: m.role, content: m.content }));
        await client.http.request("POST", `/v1/conversations/${encodeURIComponent(to)}/messages:batch`, { messages });
      }
      if (record.id === client.state.conversationId) await client.opening.open(to); // before the old one is gone
      await storage.deleteCache(record.key);
      await client.http.request("DELETE", `/v1/conversations/${encodeURIComponent(record.id)}`).catch(() => {});
      moved.push({ from: record.id, to });
    }
    if (moved.length) await client.list.refreshList();
    return moved;
  }
}
