// The client's own logic against a scripted server (fake-server.mjs), for
// orderings the real server cannot be made to produce on demand: live frames
// racing a catch-up, duplicates, answers without `id`, close codes the real
// server sends only after a timeout or at a backend's request (4001: a token
// expired and not refreshed; 4010: the server API's `disconnect`; 1008: a
// started frame or message not completed within MESSAGE_COMPLETE_TIMEOUT_MS,
// see docs/PROTOCOL.md "Liveness and closing"), ack statuses on demand
// (`failed`), and the exact backoff sequence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, ClientError } from '../../src/web/client.js';
import { FakeServer } from './fake-server.mjs';
import { waitEvent, collect, until, rejectsWith } from './support.mjs';

async function setup(t, options = {}) {
  const fake = await FakeServer.start();
  const client = connect(fake.url, { userId: 'alice', ...options });
  t.after(async () => { client.close(); await fake.stop(); });
  return { fake, client };
}

const pub = (channel, offset, payload = `p${offset}`) =>
  ({ type: 'publication', channel, id: `x.${offset}`, payload, timestamp: '2026-01-01T00:00:00.000000Z', offset });
const dm = (offset, type = 'chat_message') =>
  ({ type, id: `d.${offset}`, senderId: 'bob', receiverID: 'alice', payload: `m${offset}`, timestamp: '2026-01-01T00:00:00.000000Z', offset });

test('subscriptions recover from their last offset and hand each publication over once', async (t) => {
  const { fake, client } = await setup(t, { minReconnectDelayMs: 10 });
  let conn = await fake.welcome();
  const sub = client.subscribe('chat:x');
  const pubs = collect(sub, 'publication');
  const ctxs = collect(sub, 'subscribed');
  let ask = await conn.next('subscribe');
  assert.equal(ask.recover, undefined);
  conn.send(pub('chat:x', 6)); // live, before the answer: held back
  assert.equal(pubs.length, 0);
  conn.send({ type: 'subscribed', id: ask.id, channel: 'chat:x', offset: 5, epoch: 'e1' });
  conn.send(pub('chat:x', 7));
  conn.send(pub('chat:x', 7)); // a duplicate
  await until(sub, 'publication', () => pubs.length === 2, 'p6 and p7');

  conn.close(1012, 'drain');
  conn = await fake.welcome();
  ask = await conn.next('subscribe');
  assert.deepEqual(ask.recover, { offset: 7, epoch: 'e1' });
  conn.send(pub('chat:x', 10)); // live during the recovery: after the recovered ones
  conn.send({ type: 'subscribed', id: ask.id, channel: 'chat:x', offset: 9, epoch: 'e1', recovered: true,
    publications: [pub('chat:x', 7), pub('chat:x', 8), pub('chat:x', 9)].map(({ type, channel, ...p }) => p) });
  await until(sub, 'publication', () => pubs.length === 5, 'p8, p9, p10');
  assert.deepEqual(pubs.map((p) => p.offset), [6, 7, 8, 9, 10]);
  assert.ok(pubs.every((p) => p.channel === 'chat:x'));

  conn.close(1012, 'drain');
  conn = await fake.welcome();
  ask = await conn.next('subscribe');
  assert.deepEqual(ask.recover, { offset: 10, epoch: 'e1' });
  conn.send({ type: 'subscribed', id: ask.id, channel: 'chat:x', offset: 20, epoch: 'e2', recovered: false });
  conn.send(pub('chat:x', 21));
  await until(sub, 'publication', () => pubs.length === 6, 'p21');
  assert.deepEqual(ctxs.map((c) => [c.resubscribed, c.recovered]), [[false, false], [true, true], [true, false]]);
  assert.deepEqual(sub.position, { offset: 21, epoch: 'e2' });
});

test('the inbox catch-up is paged, in order, and deduplicated against live messages', async (t) => {
  const { fake, client } = await setup(t, { minReconnectDelayMs: 10, inboxLimit: 2 });
  const messages = collect(client, 'message');
  let conn = await fake.welcome({ inbox: { offset: 3, epoch: 'i1' } });
  conn.send(dm(4));
  await until(client, 'message', () => messages.length === 1, 'm4');
  conn.close(1001, 'shutdown');
  conn = await fake.welcome({ inbox: { offset: 7, epoch: 'i1' } });
  let ask = await conn.next('inbox');
  assert.deepEqual([ask.since, ask.limit], [{ offset: 4, epoch: 'i1' }, 2]);
  conn.send(dm(8)); // live during the catch-up: held back
  conn.send(dm(6)); // live, and also in the catch-up: once
  // Answers without `id` match the oldest request of their kind.
  conn.send({ type: 'inbox', messages: [dm(5), dm(6)], offset: 7, epoch: 'i1', recovered: true });
  ask = await conn.next('inbox');
  assert.deepEqual(ask.since, { offset: 6, epoch: 'i1' });
  conn.send({ type: 'inbox', id: ask.id, messages: [dm(7, 'server_message')], offset: 7, epoch: 'i1', recovered: true });
  const caughtUp = await waitEvent(client, 'inbox', () => true, 'the end of the catch-up');
  assert.deepEqual([caughtUp.recovered, caughtUp.count, caughtUp.offset], [true, 3, 7]);
  await until(client, 'message', () => messages.length === 5, 'm5..m8');
  assert.deepEqual(messages.map((m) => [m.offset, m.fromInbox]), [[4, false], [5, true], [6, true], [7, true], [8, false]]);
  assert.equal(messages[3].type, 'server_message');
  assert.deepEqual(client.inboxPosition, { offset: 8, epoch: 'i1' });
});

test('the inbox catch-up pages on while the answer is behind the inbox, whatever inboxLimit asked', async (t) => {
  const { fake, client } = await setup(t, { minReconnectDelayMs: 10, inboxLimit: 500 });
  const messages = collect(client, 'message');
  let conn = await fake.welcome({ inbox: { offset: 0, epoch: 'i1' } });
  conn.close(1001, 'shutdown');
  conn = await fake.welcome({ inbox: { offset: 5, epoch: 'i1' } });
  let ask = await conn.next('inbox');
  assert.deepEqual([ask.since, ask.limit], [{ offset: 0, epoch: 'i1' }, 500]);
  // A server that answers fewer than `limit` (its cap) with more waiting.
  conn.send({ type: 'inbox', id: ask.id, messages: [dm(1), dm(2)], offset: 5, epoch: 'i1', recovered: true });
  ask = await conn.next('inbox');
  assert.deepEqual(ask.since, { offset: 2, epoch: 'i1' });
  conn.send({ type: 'inbox', id: ask.id, messages: [dm(3), dm(4), dm(5)], offset: 5, epoch: 'i1', recovered: true });
  const done = await waitEvent(client, 'inbox', () => true, 'the end of the catch-up');
  assert.deepEqual([done.recovered, done.count, done.offset], [true, 5, 5]);
  assert.deepEqual(messages.map((m) => m.offset), [1, 2, 3, 4, 5]);
});

test('an unrecoverable inbox says so and still hands over what arrived live', async (t) => {
  const { fake, client } = await setup(t, { minReconnectDelayMs: 10 });
  const messages = collect(client, 'message');
  let conn = await fake.welcome({ inbox: { offset: 3, epoch: 'i1' } });
  conn.close(1012);
  conn = await fake.welcome({ inbox: { offset: 1, epoch: 'i2' } });
  const ask = await conn.next('inbox');
  conn.send(dm(2));
  conn.send({ type: 'inbox', id: ask.id, messages: [], offset: 1, epoch: 'i2', recovered: false });
  const done = await waitEvent(client, 'inbox', () => true, 'the catch-up result');
  assert.equal(done.recovered, false);
  await until(client, 'message', () => messages.length === 1, 'the live message');
  assert.deepEqual(client.inboxPosition, { offset: 2, epoch: 'i2' });
});

test('the token is refreshed at 80% of its life and on token_expiring', async (t) => {
  let calls = 0;
  const { fake, client } = await setup(t, { userId: undefined, token: () => `token-${++calls}` });
  const conn = await fake.welcome({ expiresAt: new Date(Date.now() + 500).toISOString() });
  assert.equal(conn.url.searchParams.get('token'), 'token-1');
  let ask = await conn.next('refresh');
  assert.equal(ask.token, 'token-2');
  const refreshed = waitEvent(client, 'refreshed', () => true, 'the refreshed event');
  conn.send({ type: 'refreshed', expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
  await refreshed;
  conn.send({ type: 'token_expiring', expiresAt: new Date(Date.now() + 1000).toISOString() });
  ask = await conn.next('refresh');
  assert.equal(ask.token, 'token-3');
  const failed = waitEvent(client, 'error', () => true, 'the refused refresh');
  conn.send({ type: 'error', id: ask.id, code: 'forbidden', message: 'another user' });
  assert.equal((await failed).code, 'forbidden');
  assert.equal(client.state, 'connected');
});

test('close 4001 reconnects at once with a new token from the provider; a static token stops', async (t) => {
  let calls = 0;
  const { fake, client } = await setup(t, { userId: undefined, token: () => `token-${++calls}`, minReconnectDelayMs: 5000 });
  const conn = await fake.welcome();
  const closed = waitEvent(client, 'close', () => true, 'the 4001 close');
  conn.close(4001, 'token expired');
  assert.equal((await closed).reconnectInMs, 0);
  const next = await fake.welcome();
  assert.equal(next.url.searchParams.get('token'), 'token-2');

  const other = await FakeServer.start();
  const fixed = connect(other.url, { token: 'not.a.jwt' });
  t.after(async () => { fixed.close(); await other.stop(); });
  const c2 = await other.welcome();
  const stopped = waitEvent(fixed, 'disconnected', () => true, 'the stop');
  c2.close(4001, 'token expired');
  assert.equal((await stopped).code, 4001);
  assert.equal(fixed.state, 'disconnected');
});

for (const code of [4010, 1008]) {
  test(`close ${code} does not reconnect`, async (t) => {
    const { fake, client } = await setup(t);
    const conn = await fake.welcome();
    const closes = collect(client, 'close');
    const stopped = waitEvent(client, 'disconnected', () => true, 'the stop');
    conn.close(code, 'go away');
    assert.deepEqual(await stopped, { code, reason: 'go away' });
    assert.equal(client.state, 'disconnected');
    assert.deepEqual(closes.map((c) => c.reconnectInMs), [null]);
  });
}

test('frames of server-made subscriptions and unknown types reach client events', async (t) => {
  const { fake, client } = await setup(t);
  const conn = await fake.welcome({ subscriptions: ['news'] });
  const frames = collect(client, 'frame');
  const got = waitEvent(client, 'publication', () => true, 'the publication of a server-made subscription');
  conn.send({ type: 'something_new', x: 1 });
  conn.send(pub('news', 1));
  assert.equal((await got).payload, 'p1');
  assert.deepEqual(frames.map((f) => f.type).filter((type) => type !== 'welcome'), ['something_new', 'publication']);
});

test('a subscription refused by the server ends with the error code', async (t) => {
  const { fake, client } = await setup(t);
  const conn = await fake.welcome();
  const sub = client.subscribe('secret:x');
  const ask = await conn.next('subscribe');
  const ended = waitEvent(sub, 'unsubscribed', () => true, 'the end of the subscription');
  conn.send({ type: 'error', id: ask.id, code: 'forbidden', message: 'not allowed' });
  assert.equal((await ended).reason, 'forbidden');
  assert.equal(client.getSubscription('secret:x'), undefined);
  assert.throws(() => { client.subscribe('chat:y'); client.subscribe('chat:y'); }, /already subscribed/);
});

test('acks fulfil on delivered, stored, offline, published and reject on failed, rate_limited', async (t) => {
  const { fake, client } = await setup(t);
  const conn = await fake.welcome();
  // [request, the frame type it sends, the ack's status and fields]
  const ask = {
    send: ['chat_message', () => client.send('bob', 'x')],
    broadcast: ['broadcast', () => client.broadcast('x')],
    publish: ['publish', () => client.publish('chat:x', 'x')],
  };
  const answer = async ([type, request], status, fields = {}) => {
    const promise = request();
    const { id } = await conn.next(type);
    const ack = { type: 'ack', id, status, ...fields };
    conn.send(ack);
    return { promise, ack };
  };
  for (const [kind, status, fields] of [['send', 'delivered', { connections: 2 }], ['send', 'stored', { offset: 4 }],
    ['broadcast', 'offline'], ['publish', 'published', { offset: 9 }]]) {
    const { promise, ack } = await answer(ask[kind], status, fields);
    assert.deepEqual(await promise, ack, `${kind} ${status}`);
  }
  for (const [kind, status] of [['send', 'failed'], ['broadcast', 'failed'], ['publish', 'failed'], ['send', 'rate_limited']]) {
    const { promise, ack } = await answer(ask[kind], status);
    // docs/CLIENT.md: rejects with a ClientError of that code, the ack as `frame`.
    const err = await rejectsWith(promise, status);
    assert.ok(err instanceof ClientError, `${kind} ${status}: ${err}`);
    assert.equal(err.name, 'ClientError');
    assert.deepEqual(err.frame, ack);
  }
  assert.equal(client.state, 'connected'); // a rejected message leaves the connection alone
});

for (const code of [1001, 1012]) {
  test(`close ${code} reconnects at once, to the next URL in turn`, async (t) => {
    const servers = [await FakeServer.start(), await FakeServer.start()];
    // A backoff this long would outlast the waits below: only "at once" passes.
    const client = connect(servers.map((s) => s.url), { userId: 'alice', minReconnectDelayMs: 60_000 });
    t.after(async () => { client.close(); await Promise.all(servers.map((s) => s.stop())); });
    const closes = collect(client, 'close');
    const connected = collect(client, 'connected');
    for (const [i, server] of [servers[0], servers[1], servers[0]].entries()) {
      const conn = await server.welcome();
      await until(client, 'connected', () => connected.length === i + 1, `welcome ${i + 1}, from ${server.url}`);
      if (i < 2) conn.close(code, 'going away');
    }
    assert.deepEqual(closes.map((c) => [c.code, c.reconnectInMs]), [[code, 0], [code, 0]]);
    assert.deepEqual(connected.map((c) => [c.url, c.reconnected]),
      [[servers[0].url, false], [servers[1].url, true], [servers[0].url, true]]);
  });
}

test('backoff is full jitter: random × a ceiling that doubles per attempt up to the cap, reset by a welcome', async (t) => {
  const { fake, client } = await setup(t, { minReconnectDelayMs: 10, maxReconnectDelayMs: 100 });
  // The delay is drawn when the close arrives; `r` is what Math.random gives then.
  let r = 0;
  const random = Math.random;
  Math.random = () => r;
  t.after(() => { Math.random = random; });
  const closes = collect(client, 'close');
  const connected = collect(client, 'connected');
  /**
   * Ends the next attempt (after a welcome, or before one) with a close that
   * takes the backoff, drawing `value`.
   */
  const fail = async (value, welcome = false) => {
    const conn = welcome ? await fake.welcome() : await fake.accept();
    if (welcome) await until(client, 'connected', () => connected.length === 1, 'the welcome');
    r = value;
    const before = closes.length;
    conn.close(1011, 'internal error');
    await until(client, 'close', () => closes.length > before, 'the close');
  };
  // Ceilings 10, 20, 40, 80, then the cap 100; delay = round(r × ceiling).
  for (const value of [0.999, 0.5, 0.999, 0.25, 0.999, 0.6]) await fail(value);
  assert.deepEqual(closes.map((c) => c.reconnectInMs), [10, 10, 40, 20, 100, 60]);
  // A welcome resets the attempt count: the ceiling starts again at 10.
  await fail(0.999, true);
  await fail(0.999);
  await fail(0.5);
  assert.deepEqual(closes.slice(6).map((c) => c.reconnectInMs), [10, 20, 20]);
  assert.ok(closes.every((c) => c.code === 1011), JSON.stringify(closes));
});
