// Ack promises settle for every outcome the server (or the client) can give,
// and the outgoing queue while disconnected is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, ClientError } from '../../src/web/client.js';
import { Server, waitEvent, collect, cleanup, rejectsWith, stats, eventually, WAIT } from './support.mjs';

/** Two connected clients, alice and bob, on `server`. */
async function pair(server, aliceOptions = {}) {
  const alice = connect(server.url, { userId: 'alice', ...aliceOptions });
  const bob = connect(server.url, { userId: 'bob' });
  await Promise.all([alice.ready(WAIT), bob.ready(WAIT)]);
  return { alice, bob };
}

test('send and broadcast resolve with delivered and offline acks', async (t) => {
  const server = await Server.start();
  const { alice, bob } = await pair(server);
  t.after(() => cleanup([alice, bob], [server]));
  const got = waitEvent(bob, 'message', (m) => m.payload.text === 'hi', 'bob\'s message');
  const ack = await alice.send('bob', { text: 'hi' });
  assert.equal(ack.type, 'ack');
  assert.equal(ack.status, 'delivered');
  assert.equal(ack.connections, 1);
  const m = await got;
  assert.equal(m.senderId, 'alice');
  assert.equal(m.receiverID, 'bob');
  assert.equal(m.id, ack.id); // the id we sent is the message id
  assert.match(m.timestamp, /^\d{4}-\d\d-\d\dT/);

  assert.equal((await alice.send('carol', 'anyone?')).status, 'offline');

  const seen = waitEvent(bob, 'broadcast', (b) => b.payload === 'all', 'bob\'s broadcast');
  const bAck = await alice.broadcast('all');
  assert.equal(bAck.status, 'delivered');
  assert.equal(bAck.connections, 1);
  assert.equal((await seen).senderId, 'alice');
  bob.close();
  await eventually(async () => (await stats(server)).activeConnections === 1, 'the server to see bob leave');
  assert.equal((await alice.broadcast('nobody left')).status, 'offline');
});

test('server errors reject with their code', async (t) => {
  const server = await Server.start(['--broadcast', 'false']);
  const { alice, bob } = await pair(server);
  t.after(() => cleanup([alice, bob], [server]));
  const err = await rejectsWith(alice.send('not a valid id!', 'x'), 'bad_user_id');
  assert.ok(err instanceof ClientError);
  assert.equal(err.frame.type, 'error');
  await rejectsWith(alice.broadcast('x'), 'forbidden');
  // The connection stays open after an error.
  assert.equal((await alice.send('bob', 'still here')).status, 'delivered');
});

test('a rate-limited message rejects with rate_limited', async (t) => {
  const server = await Server.start(['--rate-limit', '1', '--rate-limit-burst', '1']);
  const { alice, bob } = await pair(server);
  t.after(() => cleanup([alice, bob], [server]));
  const first = alice.send('bob', 'one');
  const second = alice.send('bob', 'two');
  assert.equal((await first).status, 'delivered');
  const err = await rejectsWith(second, 'rate_limited');
  assert.equal(err.frame.status, 'rate_limited');
});

test('a message without an answer rejects with timeout', async (t) => {
  const server = await Server.start();
  const { alice, bob } = await pair(server);
  t.after(() => cleanup([alice, bob], [server]));
  await server.freeze(); // the server answers nothing until SIGCONT
  try {
    await rejectsWith(alice.send('bob', 'into the void', { timeoutMs: 300 }), 'timeout');
  } finally {
    server.thaw();
  }
  // The late ack is ignored; the client goes on.
  assert.equal((await alice.send('bob', 'after')).status, 'delivered');
});

test('too large a message is refused locally, without losing the connection', async (t) => {
  const server = await Server.start(['--max-message-bytes', '1024', '--send-queue-bytes', '4096']);
  const { alice, bob } = await pair(server);
  t.after(() => cleanup([alice, bob], [server]));
  const { connectionId } = alice.welcome;
  await rejectsWith(alice.send('bob', 'é'.repeat(600)), 'too_large'); // 1200 bytes of UTF-8
  assert.equal((await alice.send('bob', 'small')).status, 'delivered');
  assert.equal(alice.welcome.connectionId, connectionId);
});

test('while disconnected, the queue is bounded; queued messages go out on connect', async (t) => {
  const server = await Server.start();
  const bob = connect(server.url, { userId: 'bob' });
  await bob.ready(WAIT);
  const received = collect(bob, 'message');
  await server.freeze(); // alice's upgrade waits until SIGCONT
  const alice = connect(server.url, { userId: 'alice', queueLimit: 3 });
  t.after(async () => { server.thaw(); await cleanup([alice, bob], [server]); });
  const drops = collect(alice, 'drop');
  assert.equal(alice.state, 'connecting');
  const one = alice.send('bob', 1);
  const two = alice.send('bob', 2);
  // A queued message past its timeout leaves the queue (and is never sent).
  await rejectsWith(alice.broadcast('late', { timeoutMs: 1 }), 'timeout');
  const three = alice.send('bob', 3);
  await rejectsWith(alice.send('bob', 4), 'queue_full');
  assert.deepEqual(drops.map((d) => [d.reason, d.frame.payload]), [['timeout', 'late'], ['queue_full', 4]]);
  const broadcasts = collect(bob, 'broadcast');
  server.thaw();
  for (const p of [one, two, three]) assert.equal((await p).status, 'delivered');
  await eventually(() => received.length >= 3, 'bob to receive the queued messages');
  assert.deepEqual(received.map((m) => m.payload), [1, 2, 3]); // in order, nothing else
  assert.deepEqual(broadcasts, []);
});

test('a connection lost before the ack rejects with disconnected', async (t) => {
  const a = await Server.start();
  const b = await Server.start();
  const alice = connect([a.url, b.url], { userId: 'alice', minReconnectDelayMs: 10 });
  t.after(() => cleanup([alice], [a, b]));
  await alice.ready(WAIT);
  await a.freeze(); // the message is written but never read...
  const pending = alice.send('bob', 'unknown fate');
  a.signal('SIGKILL'); // ...and the connection dies
  await rejectsWith(pending, 'disconnected');
  const { url } = await waitEvent(alice, 'connected', (c) => c.reconnected, 'the move to b');
  assert.equal(url, b.url);
});

test('latency reports reach the server', async (t) => {
  const server = await Server.start();
  const client = connect(server.url, { userId: 'alice' });
  t.after(() => cleanup([client], [server]));
  await client.ready(WAIT);
  assert.equal(client.reportLatency(12), true);
  await eventually(async () => (await stats(server)).latencyReports.count === 1, 'the latency report in /stats');
});
