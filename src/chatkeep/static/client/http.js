// HTTP: JSON in and out, the token asked again once on 401.
import { NetworkError, HttpError } from "./util.js";

export class Http {
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
