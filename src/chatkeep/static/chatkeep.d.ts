// Types of chatkeep.js, the browser client: one module, joined when served from the parts in
// static/client/, which carry the same types as JSDoc (checked by `tsc --checkJs`, ChatkeepClient
// against this file).

export type Mode = "durable" | "ephemeral" | "local" | "none";
export type MessageStatus = "pending" | "sent" | "streaming" | "complete" | "interrupted";
export type Connection = "online" | "offline" | "syncing";

export interface Message {
  readonly id: string;
  readonly conversation_id: string;
  /** null while pending (not yet stored by the server) */
  readonly seq: number | null;
  readonly role: string;
  readonly content: string;
  readonly status: MessageStatus;
  readonly created_at: string;
  readonly metadata?: Record<string, unknown> | null;
}

export interface Conversation {
  readonly id: string;
  readonly workspace: string;
  readonly user?: string;
  readonly title: string;
  /** null until the server has said (the tenant's default) */
  readonly mode: Mode | null;
  readonly starred: boolean;
  readonly pinned: boolean;
  readonly archived: boolean;
  readonly tags: readonly string[];
  readonly version: number;
  readonly last_seq: number;
  readonly message_count: number;
  readonly last_activity_at: string;
  readonly created_at?: string;
  readonly expires_at?: string | null;
  readonly last_message_preview?: string;
}

export interface Patch {
  title?: string;
  starred?: boolean;
  pinned?: boolean;
  archived?: boolean;
  tags?: string[];
}

export interface PageContext {
  readonly route: string;
  readonly name: string;
  readonly actions: readonly string[];
  /** false: the route had no registered context and got the fallback name */
  readonly known: boolean;
}

export interface Recent {
  readonly id: string;
  readonly title: string;
  readonly last_activity_at: string;
  readonly message_count: number;
}

/** The snapshot: immutable, replaced (never changed) on every change. */
export interface State {
  readonly workspace: string;
  readonly conversationId: string | null;
  readonly conversation: Conversation | null;
  /** by seq; pending ones last, in the order they were sent */
  readonly messages: readonly Message[];
  readonly hasMore: boolean;
  readonly loadingOlder: boolean;
  /** the workspace's conversations, pinned first, then by last activity */
  readonly conversations: readonly Conversation[];
  /** the last 10 by activity */
  readonly recent: readonly Recent[];
  readonly connection: Connection;
  /** sends waiting in the outbox */
  readonly pending: number;
  readonly notice: { readonly id: number; readonly text: string; readonly kind: string } | null;
  readonly page: PageContext | null;
  /** shown until the user writes */
  readonly greeting: string | null;
  readonly source: "cache" | "network" | null;
  readonly ready: boolean;
  /** the server has the current conversation (created and read) */
  readonly stored: boolean;
}

export interface Options {
  /** A user token minted by the host app's server; called again on 401 and WebSocket 4401. */
  getToken: () => Promise<string>;
  workspace: string;
  /** default: this page's origin */
  baseUrl?: string;
  /** separates the storage of users sharing a browser (e.g. the user id) */
  namespace?: string;
  /** "tab": the current conversation lives in sessionStorage (a tab is a conversation) */
  sessionScope?: "workspace" | "tab";
  /** mode of new conversations; the tenant's default when omitted */
  mode?: Mode;
  /** default 30000; paused while the page is hidden */
  heartbeatMs?: number;
  /** default 50 */
  pageSize?: number;
  /** IndexedDB budget for cached conversations, default 5 MB; least recently used go first */
  cacheBytes?: number;
  /** cleanup sent by navigator.sendBeacon on pagehide, default "inactive" */
  cleanupOnPagehide?: "inactive" | "all" | "none";
  pageContexts?: { route: string; name: string; actions?: string[] }[];
  greeting?: (ctx: PageContext) => string;
  /** open the WebSocket (default true); without it the client polls */
  live?: boolean;
}

export declare class ChatkeepClient {
  constructor(options: Options);
  /** Call `listener` after every change; returns the function that stops it. */
  subscribe(listener: () => void): () => void;
  getSnapshot(): State;
  send(text: string, extra?: { role?: string; metadata?: Record<string, unknown> }): Promise<string>;
  newConversation(spec?: { mode?: Mode; title?: string }): Promise<string>;
  switchTo(id: string): Promise<void>;
  setWorkspace(workspace: string): Promise<void>;
  clearHistory(): Promise<void>;
  loadOlder(): Promise<void>;
  update(patch: Patch, id?: string): Promise<void>;
  star(on?: boolean): Promise<void>;
  pin(on?: boolean): Promise<void>;
  archive(on?: boolean): Promise<void>;
  rename(title: string): Promise<void>;
  setTags(tags: string[]): Promise<void>;
  setPageContext(ctx: { route: string; name?: string; actions?: string[] }): void;
  uncoveredRoutes(allRoutes: string[]): string[];
  migrateLocalToServer(mode?: Mode): Promise<{ from: string; to: string }[]>;
  leave(opts?: { cleanup?: "all" | "inactive" | "none" }): Promise<void>;
  flush(): Promise<void>;
  close(): void;
}

export declare function createClient(options: Options): ChatkeepClient;
