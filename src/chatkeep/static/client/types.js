// The types the client holds (JSDoc, checked by `tsc --checkJs`; chatkeep.d.ts declares the same for
// TypeScript users), and the functions that make frozen messages and conversations of what the
// server (or the cache) gives.
import { nowIso } from "./util.js";

/**
 * @typedef {"durable"|"ephemeral"|"local"|"none"} Mode
 * @typedef {"pending"|"sent"|"streaming"|"complete"|"interrupted"} MessageStatus
 * @typedef {"online"|"offline"|"syncing"} Connection
 *
 * @typedef {object} Message
 * @property {string} id
 * @property {string} conversation_id
 * @property {number|null} seq  null while pending
 * @property {string} role
 * @property {string} content
 * @property {MessageStatus} status
 * @property {string} created_at
 * @property {Record<string, unknown>|null} [metadata]
 *
 * @typedef {object} Conversation
 * @property {string} id
 * @property {string} workspace
 * @property {string} [user]
 * @property {string} title
 * @property {Mode|null} mode  null until the server says (the tenant default)
 * @property {boolean} starred
 * @property {boolean} pinned
 * @property {boolean} archived
 * @property {string[]} tags
 * @property {number} version
 * @property {number} last_seq
 * @property {number} message_count
 * @property {string} last_activity_at
 * @property {string} [created_at]
 * @property {string|null} [expires_at]
 * @property {string} [last_message_preview]
 *
 * @typedef {{title?: string, starred?: boolean, pinned?: boolean, archived?: boolean, tags?: string[]}} Patch
 * @typedef {{route: string, name: string, actions: readonly string[], known: boolean}} PageContext
 * @typedef {{id: string, title: string, last_activity_at: string, message_count: number}} Recent
 *
 * @typedef {object} State
 * @property {string} workspace
 * @property {string|null} conversationId
 * @property {Conversation|null} conversation
 * @property {readonly Message[]} messages  by seq; pending ones last, in the order they were sent
 * @property {boolean} hasMore  older messages exist on the server
 * @property {boolean} loadingOlder
 * @property {readonly Conversation[]} conversations  the workspace's list, pinned first
 * @property {readonly Recent[]} recent  the last 10 by activity
 * @property {Connection} connection
 * @property {number} pending  sends waiting in the outbox (all conversations)
 * @property {{id: number, text: string, kind: string}|null} notice
 * @property {PageContext|null} page
 * @property {string|null} greeting  shown until the user writes
 * @property {"cache"|"network"|null} source  where the messages shown were read from
 * @property {boolean} ready  the server has answered at least once
 * @property {boolean} stored  the server has the current conversation (created and read)
 *
 * @typedef {object} Options
 * @property {() => Promise<string>} getToken  called again on 401 / WebSocket 4401
 * @property {string} workspace
 * @property {string} [baseUrl]  default: this page's origin
 * @property {string} [namespace]  separates the storage of users sharing a browser (e.g. the user id)
 * @property {"workspace"|"tab"} [sessionScope]  "tab": the current conversation lives in sessionStorage
 * @property {Mode} [mode]  mode of new conversations; the tenant's default when omitted
 * @property {number} [heartbeatMs]  default 30000
 * @property {number} [pageSize]  default 50
 * @property {number} [cacheBytes]  IndexedDB budget for cached conversations, default 5 MB
 * @property {"inactive"|"all"|"none"} [cleanupOnPagehide]  default "inactive"
 * @property {{route: string, name: string, actions?: string[]}[]} [pageContexts]
 * @property {(ctx: PageContext) => string} [greeting]
 * @property {boolean} [live]  open the WebSocket (default true)
 */

/** @param {any} m @returns {MessageStatus} */
function statusOf(m) {
  if (m.seq === null || m.seq === undefined) return "pending";
  if (m.status === "streaming" || m.status === "interrupted") return m.status;
  return m.role === "assistant" || m.role === "tool" ? "complete" : "sent";
}

/** A server message (or a cached one) as the client holds it. @returns {Message} */
export function normalise(/** @type {any} */ m) {
  return Object.freeze({
    id: m.id,
    conversation_id: m.conversation_id,
    seq: m.seq ?? null,
    role: m.role,
    content: m.content ?? "",
    status: statusOf(m),
    created_at: m.created_at || nowIso(),
    metadata: m.metadata ?? null,
  });
}

/** @param {any} c @returns {Conversation} */
export const freezeConversation = (c) => Object.freeze({ ...c, tags: Object.freeze([...(c.tags || [])]) });
