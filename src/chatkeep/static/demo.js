// The demo chat page: a thin view over chatkeep.js (everything it keeps, the client keeps).
import { createClient } from "./chatkeep.js";

const params = new URLSearchParams(location.search);
const user = params.get("user") || "demo-user";
const prefs = {
  get: (/** @type {string} */ k) => { try { return localStorage.getItem(`chatkeep-demo:${k}`); } catch { return null; } },
  set: (/** @type {string} */ k, /** @type {string} */ v) => { try { localStorage.setItem(`chatkeep-demo:${k}`, v); } catch { /* private mode */ } },
};
const workspace = params.get("workspace") || prefs.get("workspace") || "general";
const defaultMode = /** @type {any} */ (prefs.get("mode") || undefined);

const PAGES = [
  { route: "/", name: "Home", actions: ["find your way around"] },
  { route: "/billing", name: "Billing", actions: ["explain an invoice", "change the plan"] },
  { route: "/settings", name: "Settings", actions: ["change notifications", "reset a password"] },
];
const ALL_ROUTES = ["/", "/billing", "/settings", "/reports"];

const client = createClient({
  workspace,
  namespace: user,
  sessionScope: params.get("tabs") === "1" ? "tab" : "workspace",
  mode: defaultMode,
  heartbeatMs: Number(prefs.get("heartbeat-ms")) || 30_000,
  cacheBytes: Number(prefs.get("cache-bytes")) || undefined,
  pageContexts: PAGES,
  getToken: async () => {
    const response = await fetch(`/v1/dev/token?user=${encodeURIComponent(user)}`);
    if (!response.ok) throw new Error(`no demo token (${response.status})`);
    return (await response.json()).token;
  },
});
/** @type {any} */ (window).chatkeepDemo = { client, firstPaint: null };

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const list = $("messages");
const greetingEl = $("greeting");
const olderEl = $("older");
/** @type {Map<string, HTMLElement>} */
const rendered = new Map();
let filter = "all";
let lastState = /** @type {any} */ (null);
let firstId = /** @type {string|null} */ (null);

// ---- rendering ------------------------------------------------------------------------------

function render() {
  const s = client.getSnapshot();
  const prev = lastState || {};
  lastState = s;
  if (s.messages !== prev.messages || s.greeting !== prev.greeting || s.conversationId !== prev.conversationId) renderMessages(s);
  if (s.conversations !== prev.conversations || s.conversationId !== prev.conversationId || s.recent !== prev.recent) renderList(s);
  if (s.conversation !== prev.conversation) renderHeader(s);
  if (s.connection !== prev.connection || s.pending !== prev.pending) {
    const sync = $("sync-state");
    sync.dataset.state = s.connection;
    sync.dataset.pending = String(s.pending);
    sync.textContent = s.pending ? `${s.connection} · ${s.pending} pending` : s.connection;
  }
  if (s.notice !== prev.notice) $("notice").textContent = s.notice ? s.notice.text : "";
  if (s.page !== prev.page) renderPage(s);
  olderEl.hidden = !s.loadingOlder;
}

/** @param {import("./chatkeep.js").State} s */
function renderMessages(s) {
  const height = list.scrollHeight;
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const wanted = new Set(s.messages.map((m) => m.id));
  for (const [id, el] of rendered) {
    if (!wanted.has(id)) {
      el.remove();
      rendered.delete(id);
    }
  }
  greetingEl.hidden = !s.greeting;
  greetingEl.textContent = s.greeting || "";
  const fresh = rendered.size === 0;
  const fragment = document.createDocumentFragment();
  /** @type {Element} */
  let previous = greetingEl;
  for (const m of s.messages) {
    let el = rendered.get(m.id);
    if (!el) {
      el = document.createElement("div");
      el.className = "message";
      el.dataset.testid = "message";
      el.dataset.id = m.id;
      el.dataset.role = m.role;
      rendered.set(m.id, el);
    }
    const seq = m.seq === null ? "" : String(m.seq);
    if (el.dataset.seq !== seq) el.dataset.seq = seq;
    if (el.dataset.status !== m.status) el.dataset.status = m.status;
    if (el.textContent !== m.content) el.textContent = m.content;
    if (fresh) fragment.append(el);
    else if (previous.nextElementSibling !== el) previous.after(el);
    previous = el;
  }
  if (fresh) list.append(fragment); // the whole page in one DOM write
  const first = s.messages.length ? s.messages[0].id : null;
  if (first && firstId && first !== firstId && !fresh && rendered.has(firstId) && s.messages.findIndex((m) => m.id === firstId) > 0) {
    list.scrollTop += list.scrollHeight - height; // older ones were put above: keep what was in view
  } else if (fresh || nearBottom) {
    list.scrollTop = list.scrollHeight;
  }
  firstId = first;
  const demo = /** @type {any} */ (window).chatkeepDemo;
  if (!demo.firstPaint && s.messages.length) {
    demo.firstPaint = { source: s.source, count: s.messages.length };
    performance.mark("chatkeep:first-message", { detail: { source: s.source } });
  }
}

/** @param {import("./chatkeep.js").State} s */
function renderList(s) {
  const query = /** @type {HTMLInputElement} */ ($("search")).value.trim().toLowerCase();
  const shown = s.conversations.filter((c) => {
    if (query && !(c.title || "").toLowerCase().includes(query)) return false;
    if (c.id === s.conversationId) return true;
    if (filter === "starred") return c.starred;
    if (filter === "archived") return c.archived;
    return !c.archived;
  });
  $("conversations").replaceChildren(...shown.map((c) => item(c, c.id === s.conversationId, true)));
  $("recent").replaceChildren(...s.recent.map((r) => item(r, r.id === s.conversationId, false)));
}

/** @param {any} c @param {boolean} current @param {boolean} main */
function item(c, current, main) {
  const li = document.createElement("li");
  if (main) {
    li.dataset.testid = "conversation-item";
    li.dataset.id = c.id;
    li.dataset.starred = String(c.starred);
    li.dataset.pinned = String(c.pinned);
    li.dataset.archived = String(c.archived);
  }
  li.setAttribute("aria-current", String(current));
  const button = document.createElement("button");
  button.type = "button";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = `${main && c.starred ? "★ " : ""}${c.title || "Untitled"}`;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = `${main && c.pinned ? "pinned · " : ""}${c.message_count} · ${ago(c.last_activity_at)}`;
  button.append(name, meta);
  button.addEventListener("click", () => client.switchTo(c.id));
  li.append(button);
  return li;
}

/** @param {string} iso */
function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return "now";
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** @param {import("./chatkeep.js").State} s */
function renderHeader(s) {
  const c = s.conversation;
  $("title").textContent = c ? c.title || "New conversation" : "…";
  const badge = $("mode-badge");
  badge.textContent = c ? `${c.mode || "tenant default"} · fixed` : "…";
  badge.dataset.mode = (c && c.mode) || "";
  for (const [id, on] of /** @type {[string, boolean][]} */ ([["star", !!c?.starred], ["pin", !!c?.pinned], ["archive", !!c?.archived]])) {
    $(id).setAttribute("aria-pressed", String(on));
  }
  $("star").textContent = c?.starred ? "★ Starred" : "☆ Star";
}

/** @param {import("./chatkeep.js").State} s */
function renderPage(s) {
  const page = s.page;
  const uncovered = client.uncoveredRoutes(ALL_ROUTES);
  $("page-context").textContent = page
    ? `Page: ${page.name}${uncovered.length ? ` · routes with no page context: ${uncovered.join(", ")}` : ""}`
    : "";
  for (const a of document.querySelectorAll('[data-testid="page-link"]')) {
    a.setAttribute("aria-current", page && a.getAttribute("data-route") === page.route ? "page" : "false");
  }
}

let queued = false;
client.subscribe(() => {
  if (queued) return;
  queued = true;
  queueMicrotask(() => {
    queued = false;
    render();
  });
});
render();

// ---- input ------------------------------------------------------------------------------------

const composer = /** @type {HTMLTextAreaElement} */ ($("composer"));
function submit() {
  const text = composer.value.trim();
  if (!text) return;
  composer.value = "";
  client.send(text);
}
$("composer-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submit();
});
composer.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submit();
  }
});
list.addEventListener("scroll", () => {
  if (list.scrollTop < 80) client.loadOlder();
});

const workspaceSelect = /** @type {HTMLSelectElement} */ ($("workspace"));
if (![...workspaceSelect.options].some((o) => o.value === workspace)) workspaceSelect.add(new Option(workspace, workspace));
workspaceSelect.value = workspace;
workspaceSelect.addEventListener("change", () => {
  prefs.set("workspace", workspaceSelect.value);
  client.setWorkspace(workspaceSelect.value);
});
const modeSelect = /** @type {HTMLSelectElement} */ ($("default-mode"));
modeSelect.value = defaultMode || "";
modeSelect.addEventListener("change", () => prefs.set("mode", modeSelect.value));
$("new-chat").addEventListener("click", () => client.newConversation({ mode: /** @type {any} */ (modeSelect.value || undefined) }));
$("clear").addEventListener("click", () => client.clearHistory());
$("star").addEventListener("click", () => client.star(!client.getSnapshot().conversation?.starred));
$("pin").addEventListener("click", () => client.pin(!client.getSnapshot().conversation?.pinned));
$("archive").addEventListener("click", () => client.archive(!client.getSnapshot().conversation?.archived));

const renameInput = /** @type {HTMLInputElement} */ ($("rename-input"));
$("rename").addEventListener("click", () => {
  renameInput.value = client.getSnapshot().conversation?.title || "";
  renameInput.hidden = false;
  $("title").hidden = true;
  renameInput.focus();
  renameInput.select();
});
function endRename(/** @type {boolean} */ save) {
  if (renameInput.hidden) return;
  renameInput.hidden = true;
  $("title").hidden = false;
  const title = renameInput.value.trim();
  if (save && title !== (client.getSnapshot().conversation?.title || "")) client.rename(title);
}
renameInput.addEventListener("keydown", (e) => {
  if (e.key === "Enter") endRename(true);
  else if (e.key === "Escape") endRename(false);
});
renameInput.addEventListener("blur", () => endRename(false));

$("search").addEventListener("input", () => renderList(client.getSnapshot()));
for (const button of document.querySelectorAll(".filter")) {
  button.addEventListener("click", () => {
    filter = button.getAttribute("data-filter") || "all";
    for (const b of document.querySelectorAll(".filter")) b.setAttribute("aria-pressed", String(b === button));
    renderList(client.getSnapshot());
  });
}

const route = () => location.hash.replace(/^#/, "") || "/";
addEventListener("hashchange", () => client.setPageContext({ route: route() }));
client.setPageContext({ route: route() });

// The page itself loads offline too (the service worker keeps it); the client keeps the data.
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
