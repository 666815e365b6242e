// Tabs of one browser: the outbox, acknowledgements and the current id travel by BroadcastChannel.
import { storage } from "./storage.js";
import { countSends } from "./outbox.js";

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */

export class Tabs {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
    /** @type {string|null} the conversation left to follow another tab's switch */
    this.left = null;
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(`chatkeep|${client.ns}`) : null;
    if (this.channel) this.channel.onmessage = (e) => this.onBroadcast(e.data);
  }

  /** @param {any} data */
  broadcast(data) {
    if (this.channel) this.channel.postMessage(data);
  }

  /** @param {any} data */
  async onBroadcast(data) {
    const client = this.client;
    if (!data || client.stopped) return;
    if (data.type === "outbox") {
      const outbox = await storage.outbox(client.ns);
      const id = client.state.conversationId;
      let changed = false;
      for (const e of outbox) if (e.kind === "message" && e.conversationId === id) changed = client.held.put(e.message) || changed;
      if (changed) client.emitMessages();
      client.set({ pending: countSends(outbox) });
      await client.list.refreshOptimistic();
      // another tab created the conversation this one shows (its flush ran there): read and follow it
      if (id && !client.state.stored && !outbox.some((e) => e.kind === "create" && e.conversationId === id)) {
        client.opening.open(id, { painted: true }).catch(() => {});
      }
    } else if (data.type === "acked") {
      client.outbox.acked(data.conversationId, data.messages);
    } else if (data.type === "current" && client.options.sessionScope !== "tab") {
      if (data.workspace === client.state.workspace && data.id !== client.state.conversationId) {
        this.left = client.state.conversationId;
        client.opening.open(data.id).catch(() => {});
      }
    } else if (data.type === "lost" && (data.id === client.state.conversationId || data.id === this.left)) {
      client.opening.tell(data.id, data.why);
    }
  }
}
