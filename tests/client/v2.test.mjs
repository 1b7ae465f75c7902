// Version 2 of the protocol through the client library: channel recovery
// exactly once after a reconnect and after a drain, recovery that cannot be
// complete, the inbox, token refresh before expiry and after 4001, presence,
// join/leave, history, server-ended subscriptions, 4010.
//
// Run by tests/client_js.rs. Needs `redis-server` in PATH.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { connect } from '../../src/web/client.js';
import { Server, waitEvent, collect, cleanup, until, signToken, rejectsWith, SECRET, WAIT } from './support.mjs';

const CHANNELS = `
[default]
public = true

[namespaces.chat]
public = true
client_publish = true
history_size = 100
history_ttl_secs = 3600
presence = true
join_leave = true

[namespaces.small]
public = true
client_publish = true
history_size = 2
history_ttl_secs = 3600

[namespaces.private]
public = false
client_publish = true
`;

const API_KEY = 'client-library-test-api-key';

/** A channels configuration file (TOML) in a fresh temporary directory. */
function channelsFile() {
  const file = join(mkdtempSync(join(tmpdir(), 'wsapp-client-')), 'channels.toml');
  writeFileSync(file, CHANNELS);
  return file;
}

/** A port the kernel just said was free (Redis cannot listen on port 0). */
async function freePort() {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** A throwaway redis-server (no persistence), stopped by `stop()`. */
async function startRedis() {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${WAIT} ms:\n${log}`)), WAIT);
      child.stdout.on('data', (d) => {
        log += d;
        if (log.includes('Ready to accept connections')) { clearTimeout(timer); resolve(); }
      });
      child.on('error', (e) => { clearTimeout(timer); reject(new Error(`redis-server: ${e.message} (install redis-server)`)); });
      child.on('exit', () => { clearTimeout(timer); reject(new Error(`redis-server exited:\n${log}`)); });
    });
    try {
      await ready;
    } catch (e) {
      if (attempt < 3 && /Address already in use/.test(String(e.message))) continue; // lost the port race
      throw e;
    }
    await settle(port);
    return {
      uri: `redis://127.0.0.1:${port}`,
      stop: async () => { if (child.exitCode === null) { child.kill('SIGKILL'); await once(child, 'exit'); } },
    };
  }
}

/**
 * Marks a fresh Redis as long up (an old route-table epoch), as the Rust
 * tests do, so instances starting on it have no grace period in which "no
 * route" is uncertain (see docs/REDIS.md, "the route-table epoch").
 */
async function settle(port) {
  const sock = connectTcp({ port, host: '127.0.0.1' });
  await once(sock, 'connect');
  const args = ['SET', 'routes_epoch', '1:settled-by-the-test', 'NX'];
  sock.write(`*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`);
  const [reply] = await once(sock, 'data');
  sock.destroy();
  assert.match(String(reply), /^\+OK/, `SET routes_epoch answered ${reply}`);
}

/** `n` instances over one Redis, with the channels file, the inbox and the server API. */
async function cluster(t, n, env = {}) {
  const redis = await startRedis();
  const config = channelsFile();
  const servers = [];
  for (let i = 0; i < n; i++) {
    servers.push(await Server.start([], {
      REDIS_URI: redis.uri, CHANNELS_CONFIG: config, INBOX_SIZE: '100', API_KEYS: API_KEY, ...env,
    }));
  }
  const clients = [];
  t.after(async () => { await cleanup(clients, servers); await redis.stop(); });
  return { servers, clients, redis };
}

/** POSTs to the server API of `server`. */
async function api(server, path, body) {
  const r = await fetch(`${server.http}/api/v1/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `apikey ${API_KEY}` },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`POST /api/v1/${path} answered ${r.status}: ${text}`);
  return JSON.parse(text);
}

/** A client in `clients` (closed by the cleanup), connected. */
async function user(clients, urls, userId, options = {}) {
  const c = connect(urls, { userId, minReconnectDelayMs: 10, ...options });
  clients.push(c);
  await c.ready(WAIT);
  return c;
}

/**
 * Takes `client` away from its instance and keeps it away until the returned
 * function is called: the instance it moves to next (`next`) is frozen
 * (SIGSTOP), so its upgrade waits; then `how` ends the current connection.
 */
async function away(client, next, how) {
  await next.freeze();
  const closed = waitEvent(client, 'close', () => true, 'the client to lose its connection');
  await how();
  await closed;
  return async () => {
    const back = waitEvent(client, 'connected', (c) => c.reconnected, 'the reconnect');
    next.thaw();
    return back;
  };
}

/** Waits until `sub` is subscribed; fails at once with the server's error if it is refused. */
function active(sub) {
  if (sub.state === 'subscribed') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { offs.forEach((off) => off()); reject(new Error(`${sub.channel}: not subscribed within ${WAIT} ms`)); }, WAIT);
    const done = (fn, v) => { clearTimeout(timer); offs.forEach((off) => off()); fn(v); };
    const offs = [
      sub.on('subscribed', () => done(resolve)),
      sub.on('error', (e) => done(reject, new Error(`subscribe to ${sub.channel} refused: ${e.code}: ${e.message}`))),
    ];
  });
}

const oversized = (client) => () => client.sendRaw(JSON.stringify({ type: 'broadcast', payload: 'x'.repeat(70_000) }));

test('a publication sent while the client was away arrives exactly once after the reconnect', async (t) => {
  const { servers: [a, b], clients } = await cluster(t, 2);
  const alice = await user(clients, [a.url, b.url], 'alice');
  const bob = await user(clients, [a.url], 'bob');
  const pubs = [];
  const subscribed = [];
  const sub = alice.subscribe('chat:room', { publication: (p) => pubs.push(p), subscribed: (c) => subscribed.push(c) });
  await active(sub);
  assert.deepEqual(subscribed.map((c) => [c.resubscribed, c.recovered]), [[false, false]]);
  assert.equal((await bob.publish('chat:room', 'p1')).status, 'published');
  await until(sub, 'publication', () => pubs.length === 1, 'p1');

  const comeBack = await away(alice, b, oversized(alice));
  assert.equal(sub.state, 'subscribing');
  for (const p of ['p2', 'p3']) {
    const ack = await bob.publish('chat:room', p);
    assert.equal(ack.status, 'published');
    assert.equal(typeof ack.offset, 'number');
  }
  await comeBack();
  await until(sub, 'publication', () => pubs.length >= 3, 'p2 and p3 recovered');
  assert.deepEqual(subscribed.map((c) => [c.resubscribed, c.recovered]), [[false, false], [true, true]]);
  await bob.publish('chat:room', 'p4');
  await until(sub, 'publication', () => pubs.length >= 4, 'p4 live');
  assert.deepEqual(pubs.map((p) => p.payload), ['p1', 'p2', 'p3', 'p4']);
  assert.deepEqual(pubs.map((p) => p.offset), [1, 2, 3, 4]);
  assert.deepEqual(sub.position.offset, 4);
  // A round trip later, still nothing twice.
  await sub.presenceStats();
  assert.equal(pubs.length, 4);
});

test('a drained instance (1012): the client moves and its subscription recovers', async (t) => {
  const { servers: [a, b, c], clients } = await cluster(t, 3);
  const alice = await user(clients, [a.url, b.url], 'alice');
  const bob = await user(clients, [c.url], 'bob');
  const pubs = collect(alice.subscribe('chat:drain'), 'publication');
  const sub = alice.getSubscription('chat:drain');
  await active(sub);
  await bob.publish('chat:drain', 'before');
  await until(sub, 'publication', () => pubs.length === 1, 'the first publication');

  const closes = collect(alice, 'close');
  const comeBack = await away(alice, b, () => a.signal('SIGUSR1'));
  assert.equal(closes[0].code, 1012);
  assert.equal(closes[0].reconnectInMs, 0);
  await bob.publish('chat:drain', 'during');
  const ctx = waitEvent(sub, 'subscribed', () => true, 'the resubscription');
  const { url } = await comeBack();
  assert.equal(url, b.url);
  assert.deepEqual([(await ctx).resubscribed, (await ctx).recovered], [true, true]);
  await bob.publish('chat:drain', 'after');
  await until(sub, 'publication', () => pubs.length >= 3, 'every publication');
  assert.deepEqual(pubs.map((p) => p.payload), ['before', 'during', 'after']);
});

test('when missed publications are gone, recovered is false and none is handed over', async (t) => {
  const { servers: [a, b], clients } = await cluster(t, 2);
  const alice = await user(clients, [a.url, b.url], 'alice');
  const bob = await user(clients, [a.url], 'bob');
  const sub = alice.subscribe('small:room');
  const pubs = collect(sub, 'publication');
  await active(sub);
  await bob.publish('small:room', 1);
  await until(sub, 'publication', () => pubs.length === 1, 'the first publication');
  const comeBack = await away(alice, b, oversized(alice));
  for (const p of [2, 3, 4]) await bob.publish('small:room', p); // history keeps 2: 2 is lost
  const ctx = waitEvent(sub, 'subscribed', () => true, 'the resubscription');
  await comeBack();
  const { resubscribed, recovered, offset } = await ctx;
  assert.deepEqual([resubscribed, recovered, offset], [true, false, 4]);
  await bob.publish('small:room', 5);
  await until(sub, 'publication', () => pubs.length >= 2, 'the live publication');
  assert.deepEqual(pubs.map((p) => p.payload), [1, 5]);
});

test('direct messages missed while away come from the inbox, once and in order', async (t) => {
  const { servers: [a, b], clients } = await cluster(t, 2);
  const alice = await user(clients, [a.url, b.url], 'alice');
  const bob = await user(clients, [a.url], 'bob');
  assert.equal(typeof alice.welcome.inbox.offset, 'number');
  const messages = collect(alice, 'message');
  const inboxes = collect(alice, 'inbox');
  const live = await bob.send('alice', 'm1');
  assert.equal(live.status, 'delivered');
  assert.equal(typeof live.offset, 'number');
  await until(alice, 'message', () => messages.length === 1, 'm1');

  const comeBack = await away(alice, b, oversized(alice));
  for (const m of ['m2', 'm3']) {
    const ack = await bob.send('alice', m);
    assert.equal(ack.status, 'stored'); // alice has no connection: the promise fulfils with "stored"
  }
  await comeBack();
  await until(alice, 'inbox', () => inboxes.length === 1, 'the inbox catch-up');
  assert.equal(inboxes[0].recovered, true);
  assert.equal(inboxes[0].count, 2);
  await bob.send('alice', 'm4');
  await until(alice, 'message', () => messages.length >= 4, 'every message');
  assert.deepEqual(messages.map((m) => [m.payload, m.fromInbox]),
    [['m1', false], ['m2', true], ['m3', true], ['m4', false]]);
  const offsets = messages.map((m) => m.offset);
  assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y));
  assert.equal(alice.inboxPosition.offset, offsets[3]);
});

test('a persisted inbox position catches up a new session', async (t) => {
  const { servers: [a], clients } = await cluster(t, 1);
  const first = await user(clients, [a.url], 'alice');
  const bob = await user(clients, [a.url], 'bob');
  const position = first.inboxPosition;
  first.close();
  assert.equal((await bob.send('alice', 'while you were out')).status, 'stored');
  const later = connect(a.url, { userId: 'alice', inbox: position });
  clients.push(later);
  const msg = await waitEvent(later, 'message', () => true, 'the stored message');
  assert.equal(msg.payload, 'while you were out');
  assert.equal(msg.fromInbox, true);
});

test('more missed direct messages than one inbox answer holds are paged in, once and in order', async (t) => {
  const { servers: [a], clients } = await cluster(t, 1, { INBOX_SIZE: '200' });
  const first = await user(clients, [a.url], 'alice');
  const bob = await user(clients, [a.url], 'bob');
  const position = first.inboxPosition;
  first.close();
  for (let n = 1; n <= 150; n++) assert.equal((await bob.send('alice', n)).status, 'stored');
  // The server answers at most 100 per `inbox` whatever `inboxLimit` asks.
  const later = connect(a.url, { userId: 'alice', inbox: position, inboxLimit: 500 });
  clients.push(later);
  const messages = collect(later, 'message');
  const done = await waitEvent(later, 'inbox', () => true, 'the end of the catch-up');
  assert.deepEqual([done.recovered, done.count, done.offset], [true, 150, position.offset + 150]);
  await until(later, 'message', () => messages.length === 150, '150 messages');
  assert.deepEqual(messages.map((m) => m.payload), Array.from({ length: 150 }, (_, i) => i + 1));
  assert.ok(messages.every((m) => m.fromInbox));
});

test('the token is refreshed from the provider before it expires', async (t) => {
  const { servers: [a], clients } = await cluster(t, 1, { JWT_SECRET: SECRET, TOKEN_NOTICE_MS: '1000', TOKEN_GRACE_MS: '500' });
  let calls = 0;
  const provider = () => { calls++; return signToken('alice', 3); };
  const alice = connect(a.url, { token: provider });
  clients.push(alice);
  const closes = collect(alice, 'close');
  const refreshes = collect(alice, 'refreshed');
  const w = await alice.ready(WAIT);
  assert.ok(w.expiresAt, 'the welcome has expiresAt');
  // Two refreshes outlast the first token's expiry plus grace (3.5 s).
  await until(alice, 'refreshed', () => refreshes.length >= 2, 'two refreshes');
  assert.ok(Date.parse(refreshes[1].expiresAt) > Date.parse(w.expiresAt));
  assert.equal(calls, 3);
  assert.deepEqual(closes, []);
  assert.equal(alice.welcome.connectionId, w.connectionId);
});

test('after 4001 (no refresh in time) the client reconnects at once with a new token', async (t) => {
  const { servers: [a], clients } = await cluster(t, 1, { JWT_SECRET: SECRET, TOKEN_NOTICE_MS: '1000', TOKEN_GRACE_MS: '200' });
  let expired = false;
  let calls = 0;
  // Refreshes get another user's token (refused: forbidden) until the server closes 4001.
  const provider = () => {
    calls++;
    if (calls === 1) return signToken('alice', 2);
    return expired ? signToken('alice', 3600) : signToken('mallory', 3600);
  };
  const alice = connect(a.url, { token: provider });
  clients.push(alice);
  const errors = collect(alice, 'error');
  await alice.ready(WAIT);
  const close = await waitEvent(alice, 'close', (c) => { expired = true; return c.code === 4001; }, 'the 4001 close');
  assert.equal(close.reconnectInMs, 0);
  const { welcome } = await waitEvent(alice, 'connected', () => true, 'the reconnect');
  assert.equal(welcome.userId, 'alice');
  assert.ok(errors.some((e) => e.code === 'forbidden'), JSON.stringify(errors.map((e) => e.code)));
});

test('presence, presence_stats, join, leave and history', async (t) => {
  const { servers: [a, b], clients } = await cluster(t, 2);
  const alice = await user(clients, [a.url], 'alice');
  const bob = await user(clients, [b.url], 'bob');
  const sa = alice.subscribe('chat:lobby');
  await active(sa);
  const joined = waitEvent(sa, 'join', (e) => e.userId === 'bob', 'bob\'s join');
  const sb = bob.subscribe('chat:lobby');
  await active(sb);
  await joined;
  const presence = await sa.presence();
  assert.deepEqual(presence.users.map((u) => u.userId).sort(), ['alice', 'bob']);
  const stats = await alice.presenceStats('chat:lobby');
  assert.deepEqual([stats.users, stats.connections], [2, 2]);
  await sb.publish('h1');
  await sb.publish('h2');
  const history = await alice.history('chat:lobby', { limit: 10 });
  assert.deepEqual(history.publications.map((p) => p.payload), ['h1', 'h2']);
  const since = await sa.history({ since: { offset: history.publications[0].offset, epoch: history.epoch } });
  assert.deepEqual(since.publications.map((p) => p.payload), ['h2']);
  const left = waitEvent(sa, 'leave', (e) => e.userId === 'bob', 'bob\'s leave');
  const ended = waitEvent(sb, 'unsubscribed', () => true, 'bob\'s unsubscribed');
  sb.unsubscribe();
  assert.equal((await ended).reason, 'client');
  await left;
  assert.equal(bob.getSubscription('chat:lobby'), undefined);
});

test('refused and server-ended subscriptions end with a reason; 4010 stops the client', async (t) => {
  const { servers: [a], clients } = await cluster(t, 1, { JWT_SECRET: SECRET });
  const alice = connect(a.url, { token: signToken('alice', 3600, { channels: ['private:alice'] }) });
  clients.push(alice);
  await alice.ready(WAIT);
  const denied = alice.subscribe('private:bob');
  const err = await waitEvent(denied, 'error', () => true, 'the forbidden subscription');
  assert.equal(err.code, 'forbidden');
  assert.equal(denied.state, 'unsubscribed');
  await rejectsWith(alice.publish('private:bob', 'x'), 'forbidden');

  const mine = alice.subscribe('private:alice');
  await active(mine);
  const ended = waitEvent(mine, 'unsubscribed', () => true, 'the server-side unsubscribe');
  await api(a, 'unsubscribe', { userId: 'alice', channel: 'private:alice' });
  assert.equal((await ended).reason, 'server');

  const gone = waitEvent(alice, 'disconnected', () => true, 'the 4010 stop');
  await api(a, 'disconnect', { userId: 'alice', reason: 'banned' });
  assert.equal((await gone).code, 4010);
  assert.equal(alice.state, 'disconnected');
});
