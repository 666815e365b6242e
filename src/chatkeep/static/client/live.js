// Live updates: the WebSocket with resume by seq, polling while it cannot connect.
import { backoff } from "./util.js";

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */

export class Live {
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
    if (c.loadedId !== id) return c.opening.sync(); // not read from the server yet: its latest page first
    const after = c.held.finalSeq() || (c.state.conversation ? c.state.conversation.last_seq : 0);
    const { body } = await c.http.request("GET", `/v1/conversations/${encodeURIComponent(id)}/messages?after=${after}&limit=200`);
    if (c.state.conversationId !== id) return;
    let changed = false;
    for (const m of body.messages) changed = c.held.put(m) || changed;
    if (changed) c.emitMessages();
    c.set({ connection: "online" });
    c.flush();
    c.list.scheduleListRefresh();
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
        if (f.code === "not_found" || f.code === "expired") c.opening.sync();
      }
      return;
    }
    const cid = f.conversation_id;
    const current = cid && cid === c.state.conversationId;
    switch (f.type) {
      case "message.created":
      case "message.updated":
        if (current && c.held.put(f.message)) c.emitMessages();
        if (f.type === "message.created") c.list.scheduleListRefresh();
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
          if (!mine || f.conversation.version >= mine.version) c.list.applyConversation(f.conversation);
        }
        break;
      case "conversation.deleted":
      case "conversation.expired":
        c.opening.lost(cid, f.type === "conversation.expired" ? "expired" : "deleted");
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
