// Type declarations of the websocket-app client library (GET /client.js).
// The wire protocol: docs/PROTOCOL.md. A guide: docs/CLIENT.md.

/** A position in a channel's history or in the inbox. */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** The first message of every connection. */
export interface Welcome {
  type: 'welcome';
  connectionId: string;
  userId: string;
  serverId: string;
  heartbeatIntervalMs: number;
  maxMessageBytes: number;
  /** Version 2: the newest inbox message, when the server keeps an inbox. */
  inbox?: StreamPosition;
  /** Version 2: when the token expires (RFC 3339), if it has `exp`. */
  expiresAt?: string;
  /** Version 2: channels the token's `subs` claim subscribed. */
  subscriptions?: string[];
}

/** The answer to `send`, `broadcast` and `publish` when it fulfils the promise. */
export interface Ack {
  type: 'ack';
  id: string;
  status: 'delivered' | 'stored' | 'offline' | 'published';
  /** Receiver connections that took a `delivered` message. */
  connections?: number;
  /** Place in the receiver's inbox (`stored`, `delivered` with the inbox on) or in the channel's history (`published`). */
  offset?: number;
}

/** A direct message (`chat_message`), or a server API message (`server_message`, no `senderId`). */
export interface DirectMessage {
  type: 'chat_message' | 'server_message';
  id: string;
  senderId?: string;
  receiverID?: string;
  payload: unknown;
  timestamp: string;
  /** Place in the inbox (version 2, inbox on). */
  offset?: number;
  /** True when it came from the inbox catch-up after a reconnect, not live. */
  fromInbox: boolean;
}

/** A broadcast; `senderId` is absent for server API broadcasts. */
export interface BroadcastMessage {
  type: 'broadcast';
  id: string;
  senderId?: string;
  payload: unknown;
  timestamp: string;
}

/** A channel publication (version 2). */
export interface Publication {
  type?: 'publication';
  channel: string;
  id: string;
  /** Absent for server API publications. */
  senderId?: string;
  payload: unknown;
  timestamp: string;
  /** With history: the publication's place in the channel. */
  offset?: number;
}

/** `join` / `leave`: a user's first subscription began / its last one ended. */
export interface JoinLeave {
  type: 'join' | 'leave';
  channel: string;
  userId: string;
}

export interface HistoryResult {
  type: 'history';
  channel: string;
  publications: Publication[];
  offset: number;
  epoch: string;
}

export interface PresenceResult {
  type: 'presence';
  channel: string;
  users: Array<{ userId: string; connections: number }>;
}

export interface PresenceStatsResult {
  type: 'presence_stats';
  channel: string;
  users: number;
  connections: number;
}

export interface RefreshResult {
  type: 'refreshed';
  expiresAt: string;
}

/** Why a client's promise rejected, or what an `error` event reports. */
export declare class ClientError extends Error {
  /**
   * A server `error.code` (`bad_user_id`, `forbidden`, `bad_channel`, ...), a
   * rejecting `ack.status` (`failed`, `rate_limited`), or the client's own:
   * `timeout`, `disconnected` (the connection ended before the answer: the
   * message may or may not have arrived), `closed`, `queue_full`, `too_large`,
   * `unauthorized`, `token_expired`, `transport`, `bad_json`.
   */
  readonly code: string;
  /** The server frame behind the error (`error` or `ack`), if any. */
  readonly frame?: Record<string, unknown>;
  constructor(code: string, message: string, frame?: Record<string, unknown>);
}

export type ClientState = 'disconnected' | 'connecting' | 'connected';
export type SubscriptionState = 'unsubscribed' | 'subscribing' | 'subscribed';

/** Every socket that ended, whether or not the client reconnects. */
export interface CloseEvent {
  code: number;
  reason: string;
  wasClean: boolean;
  /** Delay before the next attempt; null when the client stops (see `disconnected`). */
  reconnectInMs: number | null;
}

export interface ClientEvents {
  state: { state: ClientState; previous: ClientState };
  connected: { welcome: Welcome; reconnected: boolean; url: string };
  close: CloseEvent;
  /** The client stopped for good: `close()`, close 1008/4010, 4001 without a provider, no usable token. */
  disconnected: { code: number; reason: string };
  message: DirectMessage;
  broadcast: BroadcastMessage;
  /** Publications, joins and leaves of channels the server subscribed (no Subscription object). */
  publication: Publication;
  join: JoinLeave;
  leave: JoinLeave;
  subscribed: Record<string, unknown> & { channel: string };
  unsubscribed: { channel: string; reason: string };
  /** After each inbox catch-up; `recovered: false`: messages may have been missed. */
  inbox: { recovered: boolean; count: number; offset: number; epoch: string };
  heartbeat: { rttMs: number | null; sent: number; acked: number };
  refreshed: { expiresAt: string };
  token_expiring: { type: 'token_expiring'; expiresAt: string };
  /** An outgoing message left the queue unsent. */
  drop: { frame: Record<string, unknown>; reason: 'queue_full' | 'timeout' };
  error: ClientError;
  /** Every frame received, parsed (debugging; unknown types too). */
  frame: Record<string, unknown> & { type: string };
}

export interface SubscribedContext {
  channel: string;
  /** True after a reconnect (or with `since`). */
  resubscribed: boolean;
  /** True when every missed publication is handed over; `resubscribed && !recovered`: reload the state. */
  recovered: boolean;
  offset?: number;
  epoch?: string;
}

export interface SubscriptionEvents {
  subscribing: { channel: string; reason: 'subscribe' | 'reconnect' | 'disconnected' };
  subscribed: SubscribedContext;
  publication: Publication;
  join: JoinLeave;
  leave: JoinLeave;
  /** The end: `client` (unsubscribe()), `server`, `forbidden`, or an error code. */
  unsubscribed: { channel: string; reason: string };
  error: ClientError;
}

type Listener<T> = (data: T) => void;
type Handlers<E> = { [K in keyof E]?: Listener<E[K]> };

declare class Emitter<E> {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(type: K, fn: Listener<E[K]>): () => void;
  /** Removes a listener. */
  off<K extends keyof E>(type: K, fn: Listener<E[K]>): void;
}

export interface RequestOptions {
  /** How long to wait for the answer, default `options.timeoutMs` (10 000). */
  timeoutMs?: number;
}

export interface ClientOptions {
  /** A JWT, or a provider called before every connection attempt and before expiry; returning nothing stops the client. */
  token?: string | (() => string | null | undefined | Promise<string | null | undefined>);
  /** Insecure mode only (`?userId=`). */
  userId?: string;
  /** How long a request waits for its answer (10 000 ms). */
  timeoutMs?: number;
  /** How long a connection attempt may take until the welcome (10 000 ms). */
  connectTimeoutMs?: number;
  /** Messages kept while disconnected (100); more reject with `queue_full`. */
  queueLimit?: number;
  /** Backoff base (500 ms): attempt n waits a random time up to min(max, min * 2^n). */
  minReconnectDelayMs?: number;
  /** Backoff cap (20 000 ms). */
  maxReconnectDelayMs?: number;
  /** Silence after which the server is taken for gone (2 × heartbeatIntervalMs + 1 s). */
  serverTimeoutMs?: number;
  /** Inbox position to catch up from (persisted `client.inboxPosition`). */
  inbox?: StreamPosition;
  /** Messages asked per inbox page (100; the server answers at most 100, and the catch-up pages until it has all). */
  inboxLimit?: number;
  /** Listeners added before connecting. */
  on?: Handlers<ClientEvents>;
  /** The WebSocket class (default: the global one): the browser's, Node's (22+), or a compatible one such as `ws`. */
  WebSocket?: new (url: string) => WebSocketLike;
}

/**
 * What the client uses of a WebSocket. Declared here rather than taken from
 * the DOM library, so that projects without `lib: ["dom"]` (Node) can use
 * these declarations; the DOM's `WebSocket` and `ws` both fit.
 */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => unknown) | null;
  onmessage: ((event: any) => unknown) | null;
  onclose: ((event: any) => unknown) | null;
  onerror: ((event: any) => unknown) | null;
}

/** A channel subscription that survives reconnects (version 2). */
export declare class Subscription extends Emitter<SubscriptionEvents> {
  private constructor();
  readonly channel: string;
  readonly state: SubscriptionState;
  /** The last publication handed over (channels with history), else null. */
  readonly position: StreamPosition | null;
  publish(payload: unknown): Promise<Ack>;
  history(opts?: { since?: StreamPosition; limit?: number }): Promise<HistoryResult>;
  presence(): Promise<PresenceResult>;
  presenceStats(): Promise<PresenceStatsResult>;
  /** Ends the subscription for good. */
  unsubscribe(): void;
}

/** A connection to websocket-app that keeps itself connected. */
export declare class Client extends Emitter<ClientEvents> {
  constructor(url: string | string[], options?: ClientOptions);
  readonly state: ClientState;
  /** The current connection's welcome, or null. */
  readonly welcome: Welcome | null;
  /** The last inbox message handed over, or null (inbox off). */
  readonly inboxPosition: StreamPosition | null;
  /** Starts connecting (again, after `close`). */
  connect(): this;
  /** Resolves with the welcome once connected; rejects if the client stops, or after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<Welcome>;
  /** Closes for good; queued and unanswered requests reject with `closed`. */
  close(code?: number, reason?: string): void;
  /** A direct message to every connection of `userId`. */
  send(userId: string, payload: unknown, opts?: RequestOptions): Promise<Ack>;
  /** To every connection on every instance but this one. */
  broadcast(payload: unknown, opts?: RequestOptions): Promise<Ack>;
  /** To a channel (version 2). */
  publish(channel: string, payload: unknown, opts?: RequestOptions): Promise<Ack>;
  /** Subscribes (version 2); throws if already subscribed to `channel`. */
  subscribe(channel: string, handlers?: Handlers<SubscriptionEvents>, opts?: { since?: StreamPosition }): Subscription;
  getSubscription(channel: string): Subscription | undefined;
  history(channel: string, opts?: { since?: StreamPosition; limit?: number } & RequestOptions): Promise<HistoryResult>;
  presence(channel: string): Promise<PresenceResult>;
  presenceStats(channel: string): Promise<PresenceStatsResult>;
  /** Replaces the token now with one from the provider (version 2). */
  refresh(): Promise<RefreshResult>;
  /** Reports a latency in ms; false when not connected. */
  reportLatency(ms: number): boolean;
  /** Sends a raw text frame, bypassing every check (debugging, tests). */
  sendRaw(text: string): boolean;
}

/** Connects (to the first URL; further ones are used in turn on reconnects) and keeps the connection up. */
export declare function connect(url: string | string[], options?: ClientOptions): Client;

/** What a close code means, in a few words. */
export declare function closeCodeText(code: number): string;
