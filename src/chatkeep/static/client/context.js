// Page context: where in the app the user is, and the greeting shown until the user writes.

/** @typedef {import("./client.js").ChatkeepClient} ChatkeepClient */
/** @typedef {import("./types.js").PageContext} PageContext */

export class PageContexts {
  /** @param {ChatkeepClient} client */
  constructor(client) {
    this.client = client;
    /** @type {Map<string, PageContext>} */
    this.contexts = new Map();
    for (const c of client.options.pageContexts || []) this.contexts.set(c.route, { actions: [], ...c, known: true });
  }

  /** Tell the conversation where the user is. On a route change, a note is appended if the user has
   * already written here; otherwise the greeting is replaced.
   * @param {{route: string, name?: string, actions?: string[]}} ctx */
  setPageContext(ctx) {
    const client = this.client;
    const registered = this.contexts.get(ctx.route);
    /** @type {PageContext} */
    const page = Object.freeze({
      route: ctx.route,
      name: ctx.name || (registered && registered.name) || `Unknown page (${ctx.route})`,
      actions: Object.freeze([...(ctx.actions || (registered && registered.actions) || [])]),
      known: Boolean(ctx.name || registered),
    });
    if (ctx.name) this.contexts.set(ctx.route, { ...page, known: true });
    const previous = client.state.page;
    client.set({ page });
    if (previous && previous.route === page.route) return;
    const wrote = client.held.list().some((m) => m.role === "user");
    if (wrote && previous) {
      client.send(`The user moved to ${page.name} (${page.route}).`, {
        role: "system",
        metadata: { kind: "navigation", route: page.route, name: page.name, known: page.known },
      });
    } else if (!wrote) {
      client.set({ greeting: this.greetingText() });
    }
  }

  /** The app's routes that have no registered page context. @param {string[]} allRoutes */
  uncoveredRoutes(allRoutes) {
    return allRoutes.filter((r) => !this.contexts.has(r));
  }

  greetingText() {
    const client = this.client;
    const page = client.state.page;
    if (!page) return null;
    if (client.options.greeting) return client.options.greeting(page);
    const actions = page.actions.length ? ` I can help you ${page.actions.join(", ")}.` : "";
    return `Hi! You are on ${page.name}.${actions} What would you like to do?`;
  }
}
