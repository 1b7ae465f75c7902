// websocket-app client: one dependency-free ES module for browsers and
// Node >= 22 (global WebSocket). Speaks the whole wire protocol, versions 1
// and 2 (docs/PROTOCOL.md): reconnects with backoff, heartbeats, ack
// promises, channel subscriptions that recover after reconnects, the inbox of
// direct messages, token refresh. Served by the server at GET /client.js;
// types at GET /client.d.ts; guide in docs/CLIENT.md.

/** Options a client uses when the caller does not give them. */
const DEFAULTS = Object.freeze({
  timeoutMs: 10000,
  connectTimeoutMs: 10000,
  queueLimit: 100,
  minReconnectDelayMs: 500,
  maxReconnectDelayMs: 20000,
  serverTimeoutMs: 0,
  inboxLimit: 100,
});

/** Close codes after which the client stays disconnected. */
const NO_RECONNECT = new Set([1008, 4010]);
/** Close codes that mean "this instance goes away": reconnect at once. */
const RECONNECT_AT_ONCE = new Set([1001, 1012]);
/** `ack.status` values that fulfil a send/broadcast/publish promise. */
const ACK_OK = new Set(['delivered', 'stored', 'offline', 'published']);
/** Answers the server may send without echoing our `id`, and the request type they answer. */
const ANSWERS_WITHOUT_ID = new Map([['inbox', 'inbox'], ['refreshed', 'refresh']]);
/** Offsets remembered above the contiguous one before giving up on a gap. */
const MAX_OFFSET_GAP = 1000;

const CLOSE_TEXT = {
  1000: 'normal closure',
  1001: 'server shutting down',
  1002: 'protocol error',
  1003: 'binary frame refused',
  1005: 'no close code given',
  1006: 'connection lost (no close frame), or the upgrade was refused',
  1007: 'invalid UTF-8',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'extension required',
  1011: 'internal server error',
  1012: 'server restarting, reconnect',
  1013: 'try again later',
  1015: 'TLS handshake failed',
  3008: 'no answer from the server (client timeout)',
  4000: 'heartbeat timeout',
  4001: 'token expired',
  4008: 'slow consumer (send queue full)',
  4010: 'disconnected by the server API',
  4029: 'rate limited',
};

/**
 * Says what a WebSocket close code means, in a few words.
 * @param {number} code the close code
 * @returns {string}
 */
export function closeCodeText(code) {
  return CLOSE_TEXT[code] || (code >= 4000 ? 'application close' : 'unknown close code');
}

/**
 * The error a client's promises reject with, and that its `error` events carry.
 * `code` is a server `error.code` (`bad_user_id`, `forbidden`, ...), a
 * rejecting `ack.status` (`failed`, `rate_limited`), or one of the client's
 * own: `timeout`, `disconnected` (the connection ended before the answer: the
 * message may or may not have arrived), `closed` (the client was closed),
 * `queue_full`, `too_large`, `unauthorized`, `token_expired`, `transport`.
 */
export class ClientError extends Error {
  /**
   * @param {string} code machine-readable reason
   * @param {string} message human-readable text
   * @param {object} [frame] the server frame that caused it, if any
   */
  constructor(code, message, frame) {
    super(message);
    this.name = 'ClientError';
    /** @type {string} */
    this.code = code;
    /** @type {object | undefined} */
    this.frame = frame;
  }
}

/** A minimal event emitter: `on` returns a function that removes the listener. */
class Emitter {
  #listeners = new Map();

  /**
   * Adds a listener.
   * @param {string} type event name
   * @param {(data: any) => void} fn listener
   * @returns {() => void} removes the listener
   */
  on(type, fn) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  /**
   * Removes a listener added with `on`.
   * @param {string} type event name
   * @param {(data: any) => void} fn listener
   */
  off(type, fn) {
    this.#listeners.get(type)?.delete(fn);
  }

  /** Calls the listeners; one that throws does not stop the others or the client. */
  emit(type, data) {
    for (const fn of [...(this.#listeners.get(type) || [])]) {
      try {
        fn(data);
      } catch (e) {
        setTimeout(() => { throw e; });
      }
    }
  }

  /** Adds every `{event: listener}` pair of `handlers`. */
  addHandlers(handlers) {
    for (const [type, fn] of Object.entries(handlers || {})) {
      if (typeof fn === 'function') this.on(type, fn);
    }
  }
}

/**
 * Which offsets of one stream (a channel, or the inbox) were handed to the
 * app: all up to `offset`, plus those in `above`. Lets messages that arrive
 * both live and in a catch-up, in any order, be handed over once.
 */
class Seen {
  constructor(offset = 0, epoch = undefined) {
    this.reset(offset, epoch);
  }

  reset(offset, epoch) {
    this.offset = offset;
    this.epoch = epoch;
    this.above = new Set();
  }

  /** Records `offset`; false when it was seen already. */
  add(offset) {
    if (offset <= this.offset || this.above.has(offset)) return false;
    this.above.add(offset);
    if (this.above.size > MAX_OFFSET_GAP) this.offset = Math.min(...this.above) - 1;
    while (this.above.delete(this.offset + 1)) this.offset++;
    return true;
  }

  /** Where a catch-up should start: `{offset, epoch}`. */
  get position() {
    return { offset: this.offset, epoch: this.epoch };
  }
}

/** Milliseconds from now until an RFC 3339 time (NaN when unparsable). */
function msUntil(rfc3339) {
  return Date.parse(rfc3339) - Date.now();
}

/** The `exp` claim of a JWT, in ms since the epoch, or undefined (never verifies). */
function tokenExpiry(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(part)).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** UTF-8 length of a string, computed only when it could exceed `limit`. */
function exceeds(text, limit) {
  if (!limit || text.length * 3 <= limit) return false;
  return new TextEncoder().encode(text).length > limit;
}

/** Resolves `url` (relative ones against the page) and maps http(s) to ws(s). */
function wsUrl(url) {
  const base = globalThis.location ? globalThis.location.href : undefined;
  const u = new URL(url, base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  return u;
}

/** A short random id prefix, so message ids differ across clients. */
function randomPrefix() {
  return Math.random().toString(36).slice(2, 8);
}

/**
 * One channel subscription. Made by {@link Client#subscribe}; it survives
 * reconnects: after each one it re-subscribes with `recover` from the last
 * publication it handed over, and never hands the same publication twice.
 *
 * Events: `subscribing` `{channel, reason}`, `subscribed`
 * `{channel, resubscribed, recovered, offset, epoch}` (`resubscribed && !recovered`:
 * publications may have been missed, reload the channel's state), `publication`,
 * `join`, `leave`, `unsubscribed` `{channel, reason}`, `error` (a ClientError).
 */
export class Subscription extends Emitter {
  #client;
  #state = 'unsubscribed';
  #seen = null;
  #buffer = [];
  #everSubscribed = false;
  #recovering = false;
  #retryTimer = null;

  /** @internal Use {@link Client#subscribe}. */
  constructor(client, channel, since) {
    super();
    this.#client = client;
    /** The channel name. @type {string} */
    this.channel = channel;
    if (since && typeof since.offset === 'number') this.#seen = new Seen(since.offset, since.epoch);
  }

  /** `unsubscribed`, `subscribing` or `subscribed`. @type {string} */
  get state() {
    return this.#state;
  }

  /**
   * The last publication handed over, `{offset, epoch}`, for channels with
   * history; null otherwise. Persist it and pass it as `since` to resume later.
   * @type {{offset: number, epoch: string} | null}
   */
  get position() {
    return this.#seen && this.#seen.epoch !== undefined ? this.#seen.position : null;
  }

  /**
   * Publishes to this channel (the subscription need not be active).
   * @param {any} payload any JSON value
   * @returns {Promise<object>} the `ack` (`status: "published"`, `offset` with history)
   */
  publish(payload) {
    return this.#client.publish(this.channel, payload);
  }

  /**
   * The channel's kept publications. @param {{since?: {offset: number, epoch: string}, limit?: number}} [opts]
   * @returns {Promise<object>} the `history` answer
   */
  history(opts) {
    return this.#client.history(this.channel, opts);
  }

  /** Who is subscribed. @returns {Promise<object>} the `presence` answer (`users`) */
  presence() {
    return this.#client.presence(this.channel);
  }

  /** How many are subscribed. @returns {Promise<object>} the `presence_stats` answer */
  presenceStats() {
    return this.#client.presenceStats(this.channel);
  }

  /** Ends the subscription (for good: subscribe again for a new one). */
  unsubscribe() {
    if (this.#state === 'unsubscribed') return;
    this.#client._forget(this);
    this.#client._fire({ type: 'unsubscribe', channel: this.channel });
    this.#end('client');
  }

  /** @internal Sends `subscribe` (with `recover` when a position is known). */
  _subscribe() {
    clearTimeout(this.#retryTimer);
    this.#setSubscribing(this.#everSubscribed ? 'reconnect' : 'subscribe');
    const frame = { type: 'subscribe', channel: this.channel };
    if (this.position) frame.recover = this.position;
    this.#recovering = frame.recover !== undefined;
    this.#client._request(frame, { queue: false }).then(
      (answer) => this.#onSubscribed(answer),
      (err) => this.#onSubscribeError(err),
    );
  }

  /** @internal The connection ended: wait for the next one. */
  _suspend() {
    clearTimeout(this.#retryTimer);
    if (this.#state !== 'unsubscribed') this.#setSubscribing('disconnected');
  }

  /** @internal A channel frame for this subscription. */
  _onFrame(m) {
    if (m.type === 'publication') {
      if (this.#state === 'subscribing') this.#buffer.push(m);
      else if (this.#state === 'subscribed') this.#deliver(m);
    } else if (m.type === 'join' || m.type === 'leave') {
      if (this.#state === 'subscribed') this.emit(m.type, m);
    } else if (m.type === 'unsubscribed' && m.reason) {
      this.#client._forget(this);
      this.#end(m.reason);
    }
  }

  #setSubscribing(reason) {
    const was = this.#state;
    this.#state = 'subscribing';
    this.#buffer = [];
    if (was !== 'subscribing') this.emit('subscribing', { channel: this.channel, reason });
  }

  #onSubscribed(answer) {
    if (this.#state !== 'subscribing') return;
    if (answer.type === 'unsubscribed') {
      // The server ended the subscription before it began (server API, a
      // refreshed token): the subscribe is answered with `unsubscribed`.
      this.#client._forget(this);
      this.#end(answer.reason || 'server');
      return;
    }
    const resubscribed = this.#everSubscribed || this.#recovering;
    const recovered = answer.recovered === true;
    this.#everSubscribed = true;
    this.#state = 'subscribed';
    const recoveredPubs = recovered ? answer.publications || [] : [];
    if (!recovered) {
      this.#seen = typeof answer.offset === 'number' ? new Seen(answer.offset, answer.epoch) : null;
    }
    const { offset, epoch } = answer;
    this.emit('subscribed', { channel: this.channel, resubscribed, recovered, offset, epoch });
    for (const p of recoveredPubs) this.#deliver({ type: 'publication', ...p, channel: this.channel });
    const buffered = this.#buffer;
    this.#buffer = [];
    for (const p of buffered) this.#deliver(p);
  }

  #onSubscribeError(err) {
    if (this.#state !== 'subscribing') return;
    if (err.code === 'disconnected' || err.code === 'closed') return; // resubscribes on the next welcome
    if (err.code === 'timeout' || err.code === 'rate_limited' || err.code === 'failed') {
      this.emit('error', err);
      this.#retryTimer = setTimeout(() => this.#client._resubscribe(this), this.#client._retryDelay());
      return;
    }
    this.#client._forget(this);
    this.emit('error', err);
    this.#end(err.code);
  }

  /** Hands a publication over once (by offset, when the channel keeps history). */
  #deliver(p) {
    if (typeof p.offset === 'number' && this.#seen && !this.#seen.add(p.offset)) return;
    this.emit('publication', p);
  }

  #end(reason) {
    clearTimeout(this.#retryTimer);
    this.#state = 'unsubscribed';
    this.#buffer = [];
    this.emit('unsubscribed', { channel: this.channel, reason });
  }
}

/**
 * The inbox of direct messages (server `INBOX_SIZE` > 0): after a reconnect it
 * fetches what was missed (`inbox` with `since`), delivers it in order, then
 * the live messages that arrived meanwhile, each message once (by offset).
 */
class Inbox {
  #client;
  #seen = null;
  #fetching = false;
  #buffer = [];
  #count = 0;

  constructor(client, since) {
    this.#client = client;
    if (since && typeof since.offset === 'number') this.#seen = new Seen(since.offset, since.epoch);
  }

  get position() {
    return this.#seen && this.#seen.epoch !== undefined ? this.#seen.position : null;
  }

  /** A new connection: catch up from the last message handed over, if any was missed. */
  onWelcome(welcome) {
    this.#fetching = false;
    this.#buffer = [];
    const newest = welcome.inbox;
    if (!newest || typeof newest.offset !== 'number') return;
    if (!this.position) {
      this.#seen = new Seen(newest.offset, newest.epoch);
      return;
    }
    if (newest.epoch === this.#seen.epoch && newest.offset <= this.#seen.offset) return;
    this.#fetching = true;
    this.#count = 0;
    this.#fetch();
  }

  /** A live `chat_message`. */
  onLive(m) {
    if (this.#fetching) this.#buffer.push(m);
    else this.#deliver(m, false);
  }

  #fetch() {
    const frame = { type: 'inbox', since: this.#seen.position, limit: this.#client._inboxLimit };
    this.#client._request(frame, { queue: false }).then(
      (answer) => this.#onAnswer(answer),
      (err) => this.#onError(err),
    );
  }

  #onAnswer(answer) {
    if (!this.#fetching) return;
    const messages = answer.messages || [];
    if (answer.recovered === false) {
      this.#seen.reset(answer.offset, answer.epoch);
      this.#finish(false);
      return;
    }
    const from = this.#seen.offset;
    for (const m of messages) if (this.#deliver(m, true)) this.#count++;
    // Paging: an answer holds at most 100 messages (whatever `limit` asked)
    // and `offset` is the inbox's newest, so ask again from the last one
    // handed over while that is behind the newest and this page moved us on.
    if (this.#seen.offset > from && answer.offset > this.#seen.offset) {
      this.#fetch();
      return;
    }
    this.#finish(true);
  }

  #onError(err) {
    if (!this.#fetching || err.code === 'disconnected' || err.code === 'closed') return;
    this.#client.emit('error', err);
    this.#finish(false);
  }

  #finish(recovered) {
    this.#fetching = false;
    const buffered = this.#buffer;
    this.#buffer = [];
    this.#client.emit('inbox', { recovered, count: this.#count, ...this.#seen.position });
    for (const m of buffered) this.#deliver(m, false, !recovered);
  }

  /** Emits `message` unless this offset was handed over already. */
  #deliver(m, fromInbox, force = false) {
    if (typeof m.offset === 'number' && this.#seen) {
      if (!this.#seen.add(m.offset) && !force) return false;
    }
    this.#client.emit('message', { ...m, type: m.type || 'chat_message', fromInbox });
    return true;
  }
}

/**
 * A connection to websocket-app that keeps itself connected. Create it with
 * {@link connect}. Events (listen with `on`): `state`, `connected`, `close`,
 * `disconnected`, `message`, `broadcast`, `inbox`, `heartbeat`, `refreshed`,
 * `token_expiring`, `drop`, `error`, `frame`; and for subscriptions the
 * server made (no Subscription object): `subscribed`, `unsubscribed`,
 * `publication`, `join`, `leave`. See client.d.ts for their data.
 */
export class Client extends Emitter {
  #urls;
  #urlIndex = 0;
  #opts;
  #WebSocket;
  #state = 'disconnected';
  #ws = null;
  #generation = 0;
  #attempt = 0;
  #welcome = null;
  #everConnected = false;
  #timers = { reconnect: null, connect: null, heartbeat: null, refresh: null };
  #pending = new Map();
  #queue = [];
  #subs = new Map();
  #inbox;
  #idPrefix = randomPrefix();
  #seq = 0;
  #lastReceived = 0;
  #hb = { sent: 0, acked: 0, sentAt: 0 };
  #refreshing = null;

  /**
   * @param {string | string[]} url the `/ws` URL, or several (one per instance)
   * @param {object} [options] see {@link connect}
   */
  constructor(url, options = {}) {
    super();
    const list = Array.isArray(url) ? url : [url];
    if (!list.length) throw new TypeError('connect: at least one URL is needed');
    this.#urls = list.map((u) => String(u));
    this.#opts = { ...DEFAULTS };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) this.#opts[k] = v;
    this.#WebSocket = options.WebSocket || globalThis.WebSocket;
    this.#inbox = new Inbox(this, options.inbox);
    this.addHandlers(options.on);
  }

  /** `disconnected`, `connecting` or `connected`. @type {string} */
  get state() {
    return this.#state;
  }

  /** The current connection's `welcome`, or null. @type {object | null} */
  get welcome() {
    return this.#state === 'connected' ? this.#welcome : null;
  }

  /**
   * The last inbox message handed over, `{offset, epoch}`, or null (inbox off).
   * Persist it and pass it as `options.inbox` to catch up in a later session.
   * @type {{offset: number, epoch: string} | null}
   */
  get inboxPosition() {
    return this.#inbox.position;
  }

  /**
   * Starts connecting (again, after `close`). Does nothing unless disconnected.
   * @returns {Client} this
   */
  connect() {
    if (this.#state !== 'disconnected') return this;
    if (typeof this.#WebSocket !== 'function') {
      throw new ClientError('transport', 'no WebSocket: use Node >= 22 (or --experimental-websocket), or pass options.WebSocket');
    }
    this.#attempt = 0;
    this.#setState('connecting');
    this.#open();
    return this;
  }

  /**
   * Resolves with the `welcome` once connected (at once when connected now);
   * rejects when the client ends up disconnected for good, or after `timeoutMs`.
   * @param {number} [timeoutMs] default: no limit
   * @returns {Promise<object>}
   */
  ready(timeoutMs) {
    if (this.#state === 'connected') return Promise.resolve(this.#welcome);
    return new Promise((resolve, reject) => {
      const offs = [];
      const done = (fn, v) => { offs.forEach((off) => off()); clearTimeout(timer); fn(v); };
      offs.push(this.on('connected', (c) => done(resolve, c.welcome)));
      offs.push(this.on('disconnected', (d) => done(reject, new ClientError('closed', `disconnected: ${d.code} ${d.reason}`))));
      const timer = timeoutMs ? setTimeout(() => done(reject, new ClientError('timeout', `not connected within ${timeoutMs} ms`)), timeoutMs) : null;
      if (this.#state === 'disconnected') done(reject, new ClientError('closed', 'the client is disconnected'));
    });
  }

  /**
   * Closes the connection for good (no reconnect). Queued and unanswered
   * messages reject with `closed`. `connect()` starts again.
   * @param {number} [code] close code, default 1000
   * @param {string} [reason] close reason
   */
  close(code = 1000, reason = 'client closed') {
    if (this.#state === 'disconnected') return;
    this.#terminate(code, reason, new ClientError('closed', 'the client was closed'));
  }

  /**
   * Sends a direct message to every connection of `userId`.
   * @param {string} userId the receiver
   * @param {any} payload any JSON value
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<object>} the `ack`: `delivered` (with `connections`),
   *   `stored` (inbox), or `offline`; rejects on `failed`, `rate_limited`,
   *   an `error`, `timeout`, `disconnected`, `queue_full`
   */
  send(userId, payload, opts) {
    return this._request({ type: 'chat_message', receiverID: userId, payload }, opts);
  }

  /**
   * Sends to every connection on every instance, except this one.
   * @param {any} payload any JSON value
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<object>} the `ack` (`delivered` or `offline`)
   */
  broadcast(payload, opts) {
    return this._request({ type: 'broadcast', payload }, opts);
  }

  /**
   * Publishes to a channel (version 2).
   * @param {string} channel the channel
   * @param {any} payload any JSON value
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<object>} the `ack` (`published`, with `offset` when the channel keeps history)
   */
  publish(channel, payload, opts) {
    return this._request({ type: 'publish', channel, payload }, opts);
  }

  /**
   * Subscribes to a channel (version 2); the subscription survives reconnects.
   * @param {string} channel the channel
   * @param {object} [handlers] `{publication(p), subscribed(ctx), unsubscribed(ctx), join(e), leave(e), error(err), subscribing(ctx)}`
   * @param {{since?: {offset: number, epoch: string}}} [opts] resume from a persisted position
   * @returns {Subscription}
   */
  subscribe(channel, handlers, opts = {}) {
    if (this.#subs.has(channel)) throw new Error(`already subscribed to ${channel}`);
    const sub = new Subscription(this, channel, opts.since);
    sub.addHandlers(handlers);
    this.#subs.set(channel, sub);
    if (this.#state === 'connected') sub._subscribe();
    else sub._suspend();
    return sub;
  }

  /** The subscription to `channel`, if any. @param {string} channel @returns {Subscription | undefined} */
  getSubscription(channel) {
    return this.#subs.get(channel);
  }

  /**
   * A channel's kept publications (version 2).
   * @param {string} channel the channel
   * @param {{since?: {offset: number, epoch: string}, limit?: number, timeoutMs?: number}} [opts]
   * @returns {Promise<object>} `{publications, offset, epoch}`
   */
  history(channel, opts = {}) {
    const frame = { type: 'history', channel };
    if (opts.since) frame.since = opts.since;
    if (opts.limit) frame.limit = opts.limit;
    return this._request(frame, opts);
  }

  /** Who is subscribed to `channel` (version 2). @param {string} channel @returns {Promise<object>} `{users: [{userId, connections}]}` */
  presence(channel) {
    return this._request({ type: 'presence', channel });
  }

  /** How many are subscribed to `channel` (version 2). @param {string} channel @returns {Promise<object>} `{users, connections}` */
  presenceStats(channel) {
    return this._request({ type: 'presence_stats', channel });
  }

  /**
   * Replaces the connection's token now with a fresh one from the token
   * provider (version 2). The client also does this by itself before expiry.
   * @returns {Promise<object>} the `refreshed` answer (`expiresAt`)
   */
  refresh() {
    if (typeof this.#opts.token !== 'function') {
      return Promise.reject(new ClientError('unauthorized', 'refresh needs a token provider function'));
    }
    if (!this.#refreshing) {
      this.#refreshing = this.#refreshOnce().finally(() => { this.#refreshing = null; });
    }
    return this.#refreshing;
  }

  /**
   * Reports a latency measurement in milliseconds (the server folds it into its metric).
   * @param {number} ms 0 to 3,600,000
   * @returns {boolean} whether it was sent (only while connected)
   */
  reportLatency(ms) {
    return this._fire({ type: 'latency_report', payload: ms });
  }

  /**
   * Sends a raw text frame, bypassing every check (debugging and tests).
   * @param {string} text the frame
   * @returns {boolean} whether a connection took it
   */
  sendRaw(text) {
    if (this.#state !== 'connected') return false;
    this.#ws.send(text);
    return true;
  }

  // ---- used by Subscription and Inbox (not part of the API) ----

  /** @internal Sends a frame that expects an answer; see `send`. */
  _request(frame, { timeoutMs = this.#opts.timeoutMs, queue = true } = {}) {
    return new Promise((resolve, reject) => {
      const entry = { id: `${this.#idPrefix}.${++this.#seq}`, frame, resolve, reject, queued: false };
      frame.id = entry.id;
      entry.timer = setTimeout(() => this.#expire(entry, timeoutMs), timeoutMs);
      this.#pending.set(entry.id, entry);
      if (this.#state === 'connected') this.#writeEntry(entry);
      else if (this.#state === 'disconnected') this.#settle(entry, new ClientError('closed', 'the client is disconnected'));
      else if (queue) this.#enqueue(entry);
      else this.#settle(entry, new ClientError('disconnected', 'not connected'));
    });
  }

  /** @internal Sends a frame without waiting for an answer; false when not connected. */
  _fire(frame) {
    if (this.#state !== 'connected') return false;
    try {
      this.#write(frame);
      return true;
    } catch (e) {
      this.emit('error', e);
      return false;
    }
  }

  /** @internal */
  _forget(sub) {
    if (this.#subs.get(sub.channel) === sub) this.#subs.delete(sub.channel);
  }

  /** @internal */
  _resubscribe(sub) {
    if (this.#state === 'connected' && this.#subs.get(sub.channel) === sub) sub._subscribe();
  }

  /** @internal A backoff delay for retries within a connection. */
  _retryDelay() {
    return this.#backoff(2);
  }

  /** @internal */
  get _inboxLimit() {
    return this.#opts.inboxLimit;
  }

  // ---- connecting ----

  #setState(state) {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    this.emit('state', { state, previous });
  }

  /** Opens one connection attempt to the current URL. */
  async #open() {
    const generation = ++this.#generation;
    let params;
    try {
      params = await this.#credentials();
    } catch (err) {
      if (generation !== this.#generation) return;
      if (err.code === 'unauthorized' || err.code === 'token_expired') {
        this.#terminate(4001, err.message, err);
      } else {
        this.emit('error', new ClientError('unauthorized', `token provider failed: ${err.message || err}`));
        this.#scheduleReconnect({ code: 1006, reason: 'no token', wasClean: false });
      }
      return;
    }
    if (generation !== this.#generation) return; // closed or restarted meanwhile
    const url = wsUrl(this.#urls[this.#urlIndex]);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    let ws;
    try {
      ws = new this.#WebSocket(url.toString());
    } catch (e) {
      this.emit('error', new ClientError('transport', String(e && e.message || e)));
      this.#scheduleReconnect({ code: 1006, reason: 'bad URL', wasClean: false });
      return;
    }
    this.#ws = ws;
    this.#timers.connect = setTimeout(() => this.#abandon('no welcome in time'), this.#opts.connectTimeoutMs);
    ws.onmessage = (ev) => { if (ws === this.#ws) this.#onRaw(ev.data); };
    ws.onclose = (ev) => { if (ws === this.#ws) this.#onClose({ code: ev.code, reason: ev.reason, wasClean: ev.wasClean }); };
    // A refused upgrade fires `error`; some runtimes (Node 20) never fire `close` then.
    // After `open`, a close event always follows an error.
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onerror = () => {
      if (!opened && ws === this.#ws) this.#onClose({ code: 1006, reason: 'connection failed', wasClean: false });
    };
  }

  /** The query parameters that say who we are: `token` or `userId`. */
  async #credentials() {
    const { token, userId } = this.#opts;
    if (typeof token === 'function') {
      const t = await token();
      if (!t) throw new ClientError('unauthorized', 'the token provider gave no token');
      return { token: String(t) };
    }
    if (typeof token === 'string' && token) {
      const exp = tokenExpiry(token);
      if (exp !== undefined && exp <= Date.now()) throw new ClientError('token_expired', 'the token has expired');
      return { token };
    }
    return userId ? { userId: String(userId) } : {};
  }

  #onRaw(data) {
    this.#lastReceived = Date.now();
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      this.emit('error', new ClientError('bad_json', `not JSON from the server: ${String(data).slice(0, 100)}`));
      return;
    }
    if (!m || typeof m.type !== 'string') return;
    this.emit('frame', m);
    if (m.type === 'welcome') this.#onWelcome(m);
    else this.#dispatch(m);
  }

  #onWelcome(w) {
    clearTimeout(this.#timers.connect);
    const reconnected = this.#everConnected;
    this.#everConnected = true;
    this.#attempt = 0;
    this.#welcome = w;
    this.#setState('connected');
    this.#startHeartbeat(w.heartbeatIntervalMs);
    this.#scheduleRefresh(w.expiresAt);
    for (const sub of this.#subs.values()) sub._subscribe();
    this.#inbox.onWelcome(w);
    const queued = this.#queue;
    this.#queue = [];
    for (const entry of queued) this.#writeEntry(entry);
    this.emit('connected', { welcome: w, reconnected, url: this.#urls[this.#urlIndex] });
  }

  #onClose(info) {
    this.#detach();
    const plan = this.#plan(info.code);
    if (!plan.reconnect) {
      this.#terminate(info.code, info.reason || closeCodeText(info.code), null, info);
      return;
    }
    if (plan.atOnce) this.#attempt = 0;
    this.#scheduleReconnect(info, plan.atOnce ? 0 : undefined);
  }

  /** Whether and how to reconnect after a close with `code`. */
  #plan(code) {
    if (NO_RECONNECT.has(code)) return { reconnect: false };
    if (code === 4001) {
      return { reconnect: typeof this.#opts.token === 'function', atOnce: true };
    }
    return { reconnect: true, atOnce: RECONNECT_AT_ONCE.has(code) };
  }

  /** Emits `close` and connects again after `delayMs` (backoff when not given). */
  #scheduleReconnect(info, delayMs = this.#backoff(this.#attempt++)) {
    this.emit('close', { ...info, reconnectInMs: delayMs });
    if (this.#urls.length > 1) this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    this.#setState('connecting');
    this.#timers.reconnect = setTimeout(() => this.#open(), delayMs);
  }

  /** Full jitter: a random delay up to min(max, min * 2^attempt). */
  #backoff(attempt) {
    const { minReconnectDelayMs: min, maxReconnectDelayMs: max } = this.#opts;
    return Math.round(Math.random() * Math.min(max, min * 2 ** Math.min(attempt, 30)));
  }

  /** Gives up on the current socket (no welcome, or a silent server) and reconnects. */
  #abandon(reason) {
    const ws = this.#ws;
    if (!ws) return;
    try { ws.close(3008, 'timeout'); } catch { /* already closing */ }
    this.#onClose({ code: 3008, reason, wasClean: false });
  }

  /** Forgets the socket and everything tied to it. */
  #detach() {
    const ws = this.#ws;
    this.#ws = null;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    clearTimeout(this.#timers.connect);
    clearTimeout(this.#timers.refresh);
    clearInterval(this.#timers.heartbeat);
    const lost = new ClientError('disconnected', 'the connection ended before the answer');
    for (const entry of [...this.#pending.values()]) if (!entry.queued) this.#settle(entry, lost);
    for (const sub of this.#subs.values()) sub._suspend();
  }

  /** Stops for good: no reconnect; pending and queued requests reject with `err`. */
  #terminate(code, reason, err, info) {
    this.#generation++;
    const ws = this.#ws;
    this.#detach();
    clearTimeout(this.#timers.reconnect);
    if (ws) {
      try { ws.close(code >= 3000 || code === 1000 ? code : 1000, reason); } catch { /* closing */ }
    }
    const error = err || new ClientError('closed', `disconnected: ${code} ${reason}`);
    for (const entry of [...this.#pending.values()]) this.#settle(entry, error);
    this.#queue = [];
    if (info) this.emit('close', { ...info, reconnectInMs: null });
    this.#setState('disconnected');
    this.emit('disconnected', { code, reason });
  }

  // ---- liveness and tokens ----

  #startHeartbeat(intervalMs) {
    const every = Math.max(10, Number(intervalMs) || 30000);
    const silentMax = this.#opts.serverTimeoutMs || 2 * every + 1000;
    this.#lastReceived = Date.now();
    this.#timers.heartbeat = setInterval(() => {
      if (Date.now() - this.#lastReceived > silentMax) {
        this.#abandon(`no answer from the server for ${silentMax} ms`);
        return;
      }
      if (this._fire({ type: 'heartbeat' })) {
        this.#hb.sent++;
        this.#hb.sentAt = Date.now();
      }
    }, every);
  }

  #onHeartbeatAck() {
    this.#hb.acked++;
    const rttMs = this.#hb.sentAt ? Date.now() - this.#hb.sentAt : null;
    this.emit('heartbeat', { rttMs, sent: this.#hb.sent, acked: this.#hb.acked });
  }

  /** Refreshes at 80% of the token's remaining life (provider tokens only). */
  #scheduleRefresh(expiresAt) {
    clearTimeout(this.#timers.refresh);
    if (!expiresAt || typeof this.#opts.token !== 'function') return;
    const left = msUntil(expiresAt);
    if (Number.isNaN(left)) return;
    this.#timers.refresh = setTimeout(() => this.#autoRefresh(), Math.max(0, left * 0.8));
  }

  #autoRefresh() {
    this.refresh().catch((err) => {
      if (err.code !== 'disconnected' && err.code !== 'closed') this.emit('error', err);
    });
  }

  async #refreshOnce() {
    const token = await this.#opts.token();
    if (!token) throw new ClientError('unauthorized', 'the token provider gave no token');
    const answer = await this._request({ type: 'refresh', token: String(token) }, { queue: false });
    this.#scheduleRefresh(answer.expiresAt);
    this.emit('refreshed', { expiresAt: answer.expiresAt });
    return answer;
  }

  // ---- frames in ----

  #dispatch(m) {
    switch (m.type) {
      case 'heartbeat_ack': return this.#onHeartbeatAck();
      case 'chat_message': case 'server_message': return this.#inbox.onLive(m);
      case 'broadcast': return this.emit('broadcast', m);
      case 'token_expiring':
        this.emit('token_expiring', m);
        if (typeof this.#opts.token === 'function') this.#autoRefresh();
        return;
      case 'publication': case 'join': case 'leave': return this.#onChannelFrame(m);
      case 'ack': case 'error': case 'subscribed': case 'unsubscribed': case 'history':
      case 'presence': case 'presence_stats': case 'inbox': case 'refreshed':
        return this.#onAnswer(m);
      default: // unknown types are for `frame` listeners only (forward compatible)
    }
  }

  #onChannelFrame(m) {
    const sub = this.#subs.get(m.channel);
    if (sub) sub._onFrame(m);
    // Subscriptions the server made (token claim `subs`, server API): client events.
    else if (m.type !== 'unsubscribed' || m.reason) this.emit(m.type, m);
  }

  #onAnswer(m) {
    const entry = this.#answerEntry(m);
    if (!entry) {
      // An answer to a request that timed out is dropped: its caller was told.
      if ((m.type === 'subscribed' || m.type === 'unsubscribed') && m.id === undefined) this.#onChannelFrame(m);
      else if (m.type === 'error' && m.id === undefined) this.emit('error', new ClientError(m.code, m.message, m));
      return;
    }
    if (m.type === 'error') this.#settle(entry, new ClientError(m.code, m.message, m));
    else if (m.type === 'ack' && !ACK_OK.has(m.status)) this.#settle(entry, new ClientError(m.status, `ack ${m.status}`, m));
    else this.#settle(entry, null, m);
  }

  /** The request `m` answers: by `id`, else the oldest one of that answer type. */
  #answerEntry(m) {
    if (m.id !== undefined) return this.#pending.get(m.id);
    const asked = ANSWERS_WITHOUT_ID.get(m.type);
    for (const entry of this.#pending.values()) {
      if (asked && entry.frame.type === asked && !entry.queued) return entry;
    }
    return undefined;
  }

  // ---- frames out ----

  #enqueue(entry) {
    if (this.#queue.length >= this.#opts.queueLimit) {
      const err = new ClientError('queue_full', `outgoing queue full (${this.#opts.queueLimit} messages)`);
      this.emit('drop', { frame: entry.frame, reason: 'queue_full' });
      this.#settle(entry, err);
      return;
    }
    entry.queued = true;
    this.#queue.push(entry);
  }

  #writeEntry(entry) {
    entry.queued = false;
    try {
      this.#write(entry.frame);
    } catch (e) {
      this.#settle(entry, e instanceof ClientError ? e : new ClientError('transport', String(e)));
    }
  }

  #write(frame) {
    const text = JSON.stringify(frame);
    const limit = this.#welcome && this.#welcome.maxMessageBytes;
    if (exceeds(text, limit)) throw new ClientError('too_large', `message over ${limit} bytes`);
    this.#ws.send(text);
  }

  #expire(entry, timeoutMs) {
    if (entry.queued) {
      this.#queue = this.#queue.filter((e) => e !== entry);
      this.emit('drop', { frame: entry.frame, reason: 'timeout' });
    }
    this.#settle(entry, new ClientError('timeout', `no answer within ${timeoutMs} ms`));
  }

  /** Resolves or rejects a request once, and forgets it. */
  #settle(entry, err, value) {
    if (!this.#pending.delete(entry.id)) return;
    clearTimeout(entry.timer);
    if (entry.queued) this.#queue = this.#queue.filter((e) => e !== entry);
    entry.queued = false;
    if (err) entry.reject(err);
    else entry.resolve(value);
  }
}

/**
 * Connects to websocket-app and keeps the connection up.
 *
 * @param {string | string[]} url `ws(s)://host/ws` (relative URLs resolve
 *   against the page); several URLs (one per instance) are tried in turn
 * @param {object} [options]
 * @param {string | (() => string | Promise<string>)} [options.token] a JWT, or
 *   a provider called before every connection attempt and before expiry
 *   (`refresh`); a provider returning nothing stops the client (`unauthorized`)
 * @param {string} [options.userId] insecure mode only (`?userId=`)
 * @param {number} [options.timeoutMs] how long a request waits for its answer (10 000)
 * @param {number} [options.connectTimeoutMs] how long an attempt may take until the welcome (10 000)
 * @param {number} [options.queueLimit] messages kept while disconnected (100); more reject `queue_full`
 * @param {number} [options.minReconnectDelayMs] backoff base (500)
 * @param {number} [options.maxReconnectDelayMs] backoff cap (20 000)
 * @param {number} [options.serverTimeoutMs] silence after which the server is
 *   taken for gone (default 2 × heartbeatIntervalMs + 1 s)
 * @param {{offset: number, epoch: string}} [options.inbox] inbox position to catch up from
 * @param {number} [options.inboxLimit] messages asked per inbox page (100; the server answers at most 100)
 * @param {object} [options.on] listeners, `{event: fn}`, added before connecting
 * @param {typeof WebSocket} [options.WebSocket] the WebSocket class (default: the global one)
 * @returns {Client} the client, already connecting
 */
export function connect(url, options = {}) {
  return new Client(url, options).connect();
}
