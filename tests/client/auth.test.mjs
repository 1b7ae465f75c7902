// Tokens: a static JWT, a provider called for every connection, tokens the
// client can tell are unusable, and a bounded backoff against refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/web/client.js';
import { Server, waitEvent, collect, cleanup, signToken, SECRET, WAIT } from './support.mjs';

const tokenMode = () => Server.start([], { JWT_SECRET: SECRET });

test('a static token connects as its subject', async (t) => {
  const server = await tokenMode();
  const client = connect(server.url, { token: signToken('alice') });
  t.after(() => cleanup([client], [server]));
  assert.equal((await client.ready(WAIT)).userId, 'alice');
});

test('the token provider is called again for every reconnect', async (t) => {
  const server = await tokenMode();
  const issued = [];
  const provider = async () => {
    const token = signToken('alice');
    issued.push(token);
    return token;
  };
  const client = connect(server.url, { token: provider, minReconnectDelayMs: 10 });
  t.after(() => cleanup([client], [server]));
  const first = await client.ready(WAIT);
  assert.equal(first.userId, 'alice');
  assert.equal(issued.length, 1);
  const back = waitEvent(client, 'connected', (c) => c.reconnected, 'the reconnect');
  client.sendRaw(JSON.stringify({ type: 'broadcast', payload: 'x'.repeat(70_000) })); // close 1009
  const { welcome } = await back;
  assert.notEqual(welcome.connectionId, first.connectionId);
  assert.equal(issued.length, 2);
  assert.notEqual(issued[0], issued[1]);
});

test('a provider that fails is retried; one that gives nothing stops the client', async (t) => {
  const server = await tokenMode();
  let calls = 0;
  const flaky = () => {
    calls++;
    if (calls === 1) throw new Error('auth service down');
    return signToken('alice');
  };
  const client = connect(server.url, { token: flaky, minReconnectDelayMs: 10 });
  const loggedOut = connect(server.url, { token: () => null });
  t.after(() => cleanup([client, loggedOut], [server]));
  const errors = collect(client, 'error');
  // The provider is called asynchronously: the stop comes after connect() returned.
  const stopped = waitEvent(loggedOut, 'disconnected', () => true, 'the unauthorized stop');
  await client.ready(WAIT);
  assert.equal(calls, 2);
  assert.match(errors[0].message, /auth service down/);
  const gone = await stopped;
  assert.match(gone.reason, /no token/);
  assert.equal(loggedOut.state, 'disconnected');
});

test('an expired static token is not even tried', async (t) => {
  const server = await tokenMode();
  const client = connect(server.url, { token: signToken('alice', -10) });
  t.after(() => cleanup([client], [server]));
  const gone = await waitEvent(client, 'disconnected', () => true, 'the token_expired stop');
  assert.equal(gone.code, 4001);
  assert.match(gone.reason, /expired/);
});

test('refused upgrades are retried with a bounded, jittered backoff', async (t) => {
  const server = await tokenMode();
  // A browser cannot see the 401: the attempt fails like a network error (1006).
  const client = connect(server.url, {
    token: signToken('alice', 3600, {}, 'another-secret-that-is-long-enough-000000'),
    minReconnectDelayMs: 5,
    maxReconnectDelayMs: 40,
  });
  t.after(() => cleanup([client], [server]));
  const closes = collect(client, 'close');
  await waitEvent(client, 'close', () => closes.length >= 6, '6 failed attempts');
  for (const c of closes) {
    assert.equal(c.code, 1006);
    assert.ok(c.reconnectInMs >= 0 && c.reconnectInMs <= 40, `delay ${c.reconnectInMs} over the cap`);
  }
  assert.equal(client.state, 'connecting');
});
