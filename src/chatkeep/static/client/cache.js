// The cache: the latest page of each conversation in IndexedDB, within a byte budget (least recently
// used first out), what a reload paints before any network work.
import { storage } from "./storage.js";

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */

export class PageCache {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.cacheTimer = undefined;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.evictTimer = undefined;
  }

  scheduleCacheWrite() {
    clearTimeout(this.cacheTimer);
    this.cacheTimer = setTimeout(() => this.writeCache(), 200);
  }

  /** Cache the latest page of the current conversation in one record (what the next reload paints). */
  async writeCache() {
    const client = this.client;
    const { conversation, conversationId } = client.state;
    if (!conversation || !conversationId || conversation.mode === "none" || conversation.mode === "local") return;
    const stored = client.held.list().filter((m) => m.seq !== null);
    const messages = stored.slice(-client.pageSize);
    const record = {
      key: `${client.ns}|${conversationId}`,
      ns: client.ns,
      id: conversationId,
      conversation,
      messages,
      hasMore: client.state.hasMore || stored.length > messages.length,
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
    const client = this.client;
    const budget = (client.options.cacheBytes ?? 5 * 1024 * 1024) - room;
    const records = (await storage.cacheOf(client.ns)).filter((r) => !r.list && !r.local);
    let total = records.reduce((sum, r) => sum + (r.size || 0), 0);
    records.sort((a, b) => a.touched - b.touched);
    for (const r of records) {
      if (total <= budget) break;
      if (r.id === client.state.conversationId && room === 0) continue;
      await storage.deleteCache(r.key);
      total -= r.size || 0;
    }
  }
}
