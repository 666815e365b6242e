// The demo page's service worker: keeps the page and its modules so that a reload works offline and
// starts without waiting for the network. The page comes from the network first (the kept copy when
// offline); the modules from the kept copy, refreshed in the background, so a new version of them is
// used from the load after it was published. The API is never touched here: the client's outbox
// and cache handle data.
const sw = /** @type {any} */ (self);
const CACHE = "chatkeep-shell-v1";
const SHELL = ["/", "/static/chatkeep.js", "/static/demo.js", "/static/demo.css", "/static/favicon.svg"];

sw.addEventListener("install", (/** @type {any} */ event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => sw.skipWaiting()));
  // Where the browser can route without waking this worker (the Static Routing API): the API never
  // comes here (a beacon sent as the page closes must not wait for a worker to start); the page and
  // its files race the network against the handler below, so online loads cost what they would
  // with no worker and offline ones are answered from the kept copies.
  if (typeof event.addRoutes === "function") {
    const at = (/** @type {string} */ path) => new URL(path, location.href).href;
    const race = "race-network-and-fetch-handler";
    event.waitUntil(
      event
        .addRoutes([
          { condition: { urlPattern: at("/v1/*") }, source: "network" },
          { condition: { requestMode: "navigate" }, source: race },
          { condition: { urlPattern: at("/static/*") }, source: race },
        ])
        .catch(() => undefined),
    );
  }
});

sw.addEventListener("activate", (/** @type {any} */ event) => {
  event.waitUntil(sw.clients.claim());
});

sw.addEventListener("fetch", (/** @type {any} */ event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== location.origin) return;
  const key = request.mode === "navigate" ? "/" : SHELL.includes(url.pathname) ? url.pathname : null;
  if (!key) return;
  const network = fetch(request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)));
    }
    return response;
  });
  if (key === "/") {
    // the page: from the network (so a new version shows at once), the kept copy when offline
    event.respondWith(network.catch(() => caches.match(key).then((hit) => hit || Response.error())));
  } else {
    // the modules and styles: the kept copy at once, refreshed in the background for the next load
    event.respondWith(
      caches.match(key).then((hit) => hit || network).catch(() => network),
    );
    event.waitUntil(network.catch(() => undefined));
  }
});
