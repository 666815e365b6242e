// Heartbeat and leaving: the current conversation is in use while its page is visible; leaving (or
// closing the page) cleans up the sessions.
import { HttpError } from "./util.js";

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */

export class HeartbeatTimer {
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
      if (e instanceof HttpError && e.status === 404 && e.code === "expired") c.opening.lost(id, "expired");
      // not_found: maybe not created yet (outbox), or deleted: the event or the next open says so
    }
  }

  /** Leave the chat (an app's "back to hub"): clean up sessions, stop the socket and timers.
   * @param {{cleanup?: "all"|"inactive"|"none"}} [opts] */
  async leave(opts = {}) {
    const c = this.client;
    const cleanup = opts.cleanup ?? "inactive";
    c.close();
    if (cleanup === "none") return;
    try {
      await c.http.request("POST", "/v1/sessions/cleanup", { strategy: cleanup, workspace: c.state.workspace });
    } catch {
      /* the server's expiry cleans up what this could not */
    }
  }

  beaconCleanup() {
    const c = this.client;
    const strategy = c.options.cleanupOnPagehide ?? "inactive";
    if (strategy === "none" || !c.http.token || typeof navigator.sendBeacon !== "function") return;
    const body = JSON.stringify({ token: c.http.token, strategy, workspace: c.state.workspace });
    navigator.sendBeacon(`${c.base}/v1/sessions/cleanup`, new Blob([body], { type: "text/plain" }));
  }
}
