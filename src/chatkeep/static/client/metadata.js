// Metadata: optimistic, If-Match, a 412 re-read and re-applied once.
import { HttpError, same } from "./util.js";
import { storage } from "./storage.js";
import { pendingPatches } from "./outbox.js";

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */
/** @typedef {import("./types.js").Patch} Patch */

export class Metadata {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
    /** @type {Map<string, number>} "conversation|version" -> the version this tab's patch made of it */
    this.ownBumps = new Map();
  }

  /** Change star, pin, archive, title or tags of a conversation (the current one by default).
   * @param {Patch} patch @param {string} [id] */
  async update(patch, id = this.client.state.conversationId || "") {
    const client = this.client;
    const c = id === client.state.conversationId ? client.state.conversation : client.state.conversations.find((x) => x.id === id);
    if (!c) return;
    /** @type {Record<string, unknown>} */
    const base = {};
    for (const k of Object.keys(patch)) base[k] = /** @type {any} */ (c)[k];
    client.list.applyConversation({ ...c, ...patch });
    await client.outbox.enqueue({ kind: "patch", conversationId: id, patch, base, version: c.version });
    client.flush();
  }

  /** @param {any} e */
  async flushPatch(e) {
    const client = this.client;
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
          stored = (await client.http.request("PATCH", path, patch, { "If-Match": `"${version}"` })).body;
          this.ownBumps.set(`${e.conversationId}|${version}`, stored.version);
        } catch (err) {
          if (!(err instanceof HttpError && err.status === 412) || attempt > 0) throw err;
        }
      }
      if (!stored && attempt > 0) {
        // nothing of the user's change is left to send: the server's copy stands
        const { messages, has_more_messages, ...server } = (await client.http.request("GET", `${path}?messages=0`)).body;
        stored = server;
      }
      if (stored) {
        await storage.deleteOutbox([e.n]);
        client.optimistic = pendingPatches(await storage.outbox(client.ns));
        client.list.applyConversation(stored);
        if (lost.length) client.notify(`Changed elsewhere meanwhile, so the other change was kept: ${lost.join(", ")}.`, "warning");
        return;
      }
      // 412, changed meanwhile: read it again, keep what others changed, re-apply the user's change on top
      const { body: server } = await client.http.request("GET", `${path}?messages=0`);
      lost = Object.keys(patch).filter((k) => !same(server[k], e.base[k]) && !same(server[k], patch[/** @type {keyof Patch} */ (k)]));
      for (const k of lost) delete patch[/** @type {keyof Patch} */ (k)];
      version = server.version;
    }
  }
}
