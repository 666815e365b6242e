// The demo page's service worker: keeps the page and its modules so that a reload works offline.
// Network first (a changed page is used at once), the cached copy when the network fails. The API is
// never touched here: the client's outbox and cache handle data.
const sw = /** @type {any} */ (self);
const CACHE = "chatkeep-shell-v1";
const SHELL = ["/", "/static/chatkeep.js", "/static/demo.js", "/static/demo.css", "/static/favicon.svg"];

sw.addEventListener("install", (/** @type {any} */ event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => sw.skipWaiting()));
});

sw.addEventListener("activate", (/** @type {any} */ event) => {
  event.waitUntil(sw.clients.claim());
});

sw.addEventListener("fetch", (/** @type {any} */ event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== location.origin) return;
  const shell = request.mode === "navigate" ? "/" : SHELL.includes(url.pathname) ? url.pathname : null;
  if (!shell) return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(shell, copy));
        }
        return response;
      })
      .catch(() => caches.match(shell).then((hit) => hit || Response.error())),
  );
});
