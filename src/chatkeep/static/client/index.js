// chatkeep.js: the browser half of chatkeep, as one dependency-free ES module.
//
//   import { createClient } from "/static/chatkeep.js";
//   const chat = createClient({ workspace: "docs", getToken: () => myServer.chatToken() });
//   const unsubscribe = chat.subscribe(() => render(chat.getSnapshot()));
//   chat.send("Hello");
//
// What it keeps, and where:
//   - the current conversation id of each workspace: localStorage (or sessionStorage: one per tab);
//   - the latest page of recent conversations: IndexedDB, within a byte budget, painted before any
//     network work on reload and then reconciled with the server by seq;
//   - the outbox (sends and metadata edits not yet acknowledged): IndexedDB, flushed in order by
//     one tab at a time (Web Locks) with the ids chosen at send time, so a retry never duplicates;
//   - the messages of `local` conversations: IndexedDB only.
// The server is the source of truth: with empty storage the client resumes from it.
//
// chatkeep serves it as one module, /static/chatkeep.js, joined from the parts in static/client/
// (each an ES module of its own, for reading and for tsc; this one, index.js, names the exports):
//   util.js       constants, ids and time, request errors and which are worth retrying, helpers
//   types.js      the types the client holds (JSDoc), and frozen messages and conversations
//   storage.js    IndexedDB (memory where there is none), localStorage for the current id
//   http.js       HTTP: JSON in and out, the token asked again once on 401
//   held.js       messages held by seq, and the order of the conversation list
//   client.js     ChatkeepClient: state, the store interface, the public methods; createClient
//   opening.js    opening conversations: cache first, then the server; a lost one replaced
//   outbox.js     the outbox: sends, creations and deletions, flushed in order by one tab at a time
//   metadata.js   metadata edits: optimistic, If-Match, a 412 re-read and re-applied once
//   list.js       the workspace's list of conversations, with unsent edits on top
//   cache.js      the latest page of each conversation cached, within the byte budget
//   tabs.js       tabs of one browser: the outbox, acknowledgements and the current id by BroadcastChannel
//   live.js       live updates: the WebSocket with resume by seq, polling while it cannot connect
//   heartbeat.js  the heartbeat while the page is visible, and leaving (the sessions cleaned up)
//   context.js    page context: where in the app the user is, and the greeting
//   local.js      local conversations: messages only in this browser
export { createClient, ChatkeepClient } from "./client.js";
