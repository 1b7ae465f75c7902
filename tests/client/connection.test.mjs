// The client library against the real server: connecting, reconnecting,
// drain to another instance, heartbeats, a silent server, close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/web/client.js';
import { Server, waitEvent, collect, cleanup, rejectsWith, stats, eventually, WAIT } from './support.mjs';

test('connects, reports its states and exposes the welcome', async (t) => {
  const server = await Server.start();
  const states = [];
  const client = connect(server.url, { userId: 'alice', on: { state: (s) => states.push(s.state) } });
  t.after(() => cleanup([client], [server]));
  assert.equal(client.state, 'connecting');
  const connected = await waitEvent(client, 'connected', () => true, 'the first welcome');
  assert.equal(connected.reconnected, false);
  const w = client.welcome;
  assert.equal(w.userId, 'alice');
  assert.ok(w.connectionId.startsWith(`${w.serverId}-`), w.connectionId);
  assert.equal(typeof w.heartbeatIntervalMs, 'number');
  assert.equal(typeof w.maxMessageBytes, 'number');
  assert.deepEqual(states, ['connecting', 'connected']); // options.on listeners see the first state
  assert.equal(client.state, 'connected');
  assert.deepEqual(await client.ready(), w);
});

test('reconnects after the server closes the connection, and messages flow again', async (t) => {
  const server = await Server.start();
  const alice = connect(server.url, { userId: 'alice', minReconnectDelayMs: 50 });
  const bob = connect(server.url, { userId: 'bob' });
  t.after(() => cleanup([alice, bob], [server]));
  const first = await alice.ready(WAIT);
  await bob.ready(WAIT);
  const closed = waitEvent(alice, 'close', () => true, 'the 1009 close');
  const back = waitEvent(alice, 'connected', (c) => c.reconnected, 'the reconnect');
  // A frame over maxMessageBytes, bypassing the library's own size check: the server closes 1009.
  assert.ok(alice.sendRaw(JSON.stringify({ type: 'broadcast', payload: 'x'.repeat(70_000) })));
  const close = await closed;
  assert.equal(close.code, 1009);
  assert.ok(close.reconnectInMs >= 0 && close.reconnectInMs <= 50, `backoff ${close.reconnectInMs}`);
  assert.equal(alice.state, 'connecting');
  // Sent while reconnecting: queued, then delivered on the new connection.
  const queued = bob.send('alice', 'sent while alice was away');
  const arrived = waitEvent(alice, 'message', (m) => m.payload === 'after the reconnect', 'the message on the new connection');
  const { welcome } = await back;
  assert.notEqual(welcome.connectionId, first.connectionId);
  await queued; // delivered or offline: the race with alice's reconnect is fine
  const ack = await bob.send('alice', 'after the reconnect');
  assert.equal(ack.status, 'delivered');
  assert.equal(ack.connections, 1);
  await arrived;
});

test('drain (SIGUSR1, close 1012) moves the client to the other instance at once', async (t) => {
  const a = await Server.start();
  const b = await Server.start();
  const client = connect([a.url, b.url], { userId: 'alice', minReconnectDelayMs: 5000 });
  t.after(() => cleanup([client], [a, b]));
  const first = await client.ready(WAIT);
  const closed = waitEvent(client, 'close', () => true, 'the drain close');
  const moved = waitEvent(client, 'connected', (c) => c.reconnected, 'the welcome of the other instance');
  a.signal('SIGUSR1');
  const close = await closed;
  assert.equal(close.code, 1012);
  // At once, despite a 5 s backoff base.
  assert.equal(close.reconnectInMs, 0);
  const { welcome, url } = await moved;
  assert.equal(url, b.url);
  assert.notEqual(welcome.serverId, first.serverId);
  assert.ok(b.log.length > 0);
});

test('sends heartbeats at heartbeatIntervalMs, so the server never times it out', async (t) => {
  // 8 heartbeats at 200 ms outlast the 1 s timeout: without them the server closes 4000.
  const server = await Server.start(['--heartbeat-interval-ms', '200', '--heartbeat-timeout-ms', '1000']);
  const client = connect(server.url, { userId: 'alice' });
  t.after(() => cleanup([client], [server]));
  const closes = collect(client, 'close');
  const { connectionId, heartbeatIntervalMs } = await client.ready(WAIT);
  assert.equal(heartbeatIntervalMs, 200);
  const beat = await waitEvent(client, 'heartbeat', (h) => h.acked >= 8, '8 heartbeat acks');
  assert.ok(beat.sent >= 8, `sent ${beat.sent}`);
  assert.equal(typeof beat.rttMs, 'number');
  assert.deepEqual(closes, []);
  assert.equal(client.welcome.connectionId, connectionId);
});

test('a silent server is left after 2 heartbeat intervals for the next instance', async (t) => {
  const a = await Server.start(['--heartbeat-interval-ms', '200', '--heartbeat-timeout-ms', '1000']);
  const b = await Server.start();
  const client = connect([a.url, b.url], { userId: 'alice', minReconnectDelayMs: 10 });
  t.after(() => cleanup([client], [a, b]));
  await client.ready(WAIT);
  const closed = waitEvent(client, 'close', () => true, 'the client-side timeout');
  const moved = waitEvent(client, 'connected', (c) => c.reconnected, 'the move to b');
  await a.freeze(); // alive for TCP, answers nothing
  const close = await closed;
  assert.equal(close.code, 3008, JSON.stringify(close));
  assert.match(close.reason, /no answer from the server/);
  assert.equal((await moved).url, b.url);
});

test('close() stops for good: no reconnect, pending and later sends reject "closed"', async (t) => {
  const server = await Server.start();
  const client = connect(server.url, { userId: 'alice' });
  t.after(() => cleanup([client], [server]));
  await client.ready(WAIT);
  const states = collect(client, 'state');
  const gone = waitEvent(client, 'disconnected', () => true, 'the disconnected event');
  client.close();
  assert.deepEqual(await gone, { code: 1000, reason: 'client closed' });
  assert.equal(client.state, 'disconnected');
  assert.deepEqual(states.map((s) => s.state), ['disconnected']);
  await rejectsWith(client.send('bob', 'x'), 'closed');
  await rejectsWith(client.ready(), 'closed');
  // The server saw a normal close (an expected disconnect), not a lost connection.
  const after = await eventually(async () => {
    const s = await stats(server);
    return s.activeConnections === 0 ? s : undefined;
  }, 'the server to count 0 connections');
  assert.equal(after.counters.unexpectedDisconnects, 0);
  // connect() starts again.
  client.connect();
  const again = await waitEvent(client, 'connected', () => true, 'the connection after connect()');
  assert.equal(again.reconnected, true);
});
