// The client library's public API as docs/CLIENT.md shows it, type-checked
// against src/web/client.d.ts by types.test.mjs (`tsc --noEmit --strict`);
// never run. Each `@ts-expect-error` is a mistake the declarations must
// catch: should a type widen to `any`, tsc reports the unused directive.
import { connect, closeCodeText, Client, ClientError, Subscription } from '../../src/web/client.js';
import type {
  Ack, ClientOptions, ClientState, CloseEvent, DirectMessage, HistoryResult, Publication,
  PresenceResult, PresenceStatsResult, RefreshResult, StreamPosition, SubscribedContext, Welcome,
} from '../../src/web/client.js';

declare function fetchTokenFromYourBackend(): Promise<string | undefined>;
declare function show(text: string): void;
/** The shape of the `ws` package's class (a WebSocket for Node before 22). */
declare class NodeWs {
  constructor(address: string, protocols?: string | string[], options?: object);
  onopen: ((event: { target: NodeWs }) => void) | null;
  onmessage: ((event: { data: string | Uint8Array; type: string; target: NodeWs }) => void) | null;
  onclose: ((event: { code: number; reason: string; wasClean: boolean }) => void) | null;
  onerror: ((event: { error: unknown; message: string }) => void) | null;
  send(data: string | Uint8Array, cb?: (err?: Error) => void): void;
  close(code?: number, data?: string | Uint8Array): void;
}
/** The DOM's WebSocket class when checked with `lib: ["dom"]`; `never` (fits anything) without. */
declare const DomWebSocket: typeof globalThis extends { WebSocket: infer W } ? W : never;

// "In a browser" and "In Node".
export async function guide(): Promise<void> {
  const client: Client = connect('ws://127.0.0.1:8081/ws', { userId: 'alice' });
  client.on('state', ({ state, previous }) => show(`state: ${previous} -> ${state}`));
  client.on('message', (m) => show(`${m.senderId}: ${JSON.stringify(m.payload)}`));
  const welcome: Welcome = await client.ready();
  show(`connected as ${welcome.userId} on ${welcome.serverId}`);
  const ack: Ack = await client.send('alice', 'hello me');
  if (ack.status === 'delivered') show(`on ${ack.connections ?? 0} connections`);
  // @ts-expect-error `failed` rejects the promise: never the status of a fulfilled ack
  if (ack.status === 'failed') show('unreachable');
  try {
    await client.send('not a valid id!', 'x', { timeoutMs: 500 });
  } catch (err) {
    if (err instanceof ClientError) show(`${err.code} ${String(err.frame?.status)}`);
  }
  show((await client.broadcast({ text: 'all' })).status);
  client.close();
  client.close(4000, 'bye');
}

// "Connecting": every option of the table, URL lists, token providers.
export function connecting(saved: StreamPosition | null): Client[] {
  const options: ClientOptions = {
    token: async () => fetchTokenFromYourBackend(),
    timeoutMs: 10_000,
    connectTimeoutMs: 10_000,
    queueLimit: 100,
    minReconnectDelayMs: 500,
    maxReconnectDelayMs: 20_000,
    serverTimeoutMs: 61_000,
    inbox: saved ?? undefined,
    inboxLimit: 100,
    on: { state: (s) => show(s.state), connected: (c) => show(c.url) },
    WebSocket: DomWebSocket,
  };
  const many = connect(['wss://a.example/ws', 'https://b.example/ws'], options);
  const fixed = connect('/ws', { token: 'eyJhbGciOiJIUzI1NiJ9.e30.x', timeoutMs: 5000 });
  const sync = new Client('ws://h/ws', { token: () => 'eyJ...', WebSocket: NodeWs }).connect();
  // @ts-expect-error not a WebSocket class
  connect('ws://h/ws', { WebSocket: Map });
  // @ts-expect-error a token provider gives a string (or nothing)
  connect('ws://h/ws', { token: () => 42 });
  // @ts-expect-error misspelled option
  connect('ws://h/ws', { userID: 'alice' });
  return [many, fixed, sync];
}

// "States, events, reconnects": every event's data.
export function events(client: Client): void {
  const state: ClientState = client.state;
  // @ts-expect-error not a state
  if (state === 'open') show(state);
  const off: () => void = client.on('close', (c: CloseEvent) => {
    const delay: number | null = c.reconnectInMs;
    show(`${c.code} ${c.reason} ${c.wasClean} ${delay} ${closeCodeText(c.code)}`);
  });
  off();
  client.on('connected', ({ welcome, reconnected, url }) => show(`${welcome.connectionId} ${reconnected} ${url}`));
  client.on('disconnected', ({ code, reason }) => show(`${code} ${reason}`));
  client.on('message', (m: DirectMessage) => show(`${m.type} ${m.id} ${m.timestamp} ${m.fromInbox} ${m.offset ?? '-'}`));
  client.on('broadcast', (b) => show(`${b.senderId ?? 'server'} ${JSON.stringify(b.payload)}`));
  client.on('heartbeat', ({ rttMs, sent, acked }) => show(`${rttMs ?? '?'} ms, ${acked}/${sent}`));
  client.on('drop', ({ frame, reason }) => show(`${reason}: ${JSON.stringify(frame)}`));
  client.on('error', (err) => show(`${err.name} ${err.code} ${err.message}`));
  client.on('inbox', ({ recovered, count, offset, epoch }) => show(`${recovered} ${count} ${offset} ${epoch}`));
  client.on('refreshed', ({ expiresAt }) => show(expiresAt));
  client.on('token_expiring', (t) => show(t.expiresAt));
  client.on('frame', (f) => show(f.type));
  client.on('publication', (p: Publication) => show(p.channel));
  client.on('join', ({ channel, userId }) => show(`${userId} joined ${channel}`));
  const onLeave = (e: { userId: string }) => show(e.userId);
  client.on('leave', onLeave);
  client.off('leave', onLeave);
  // @ts-expect-error not an event
  client.on('messages', () => {});
  // @ts-expect-error `close` data has no `status`
  client.on('close', (c) => show(c.status));
  // @ts-expect-error null while not connected
  show(client.welcome.userId);
  show(client.welcome?.userId ?? 'not connected');
}

// "Channels", "Inbox", "Token refresh" and the debugging helpers.
export async function channels(client: Client, reloadRoom: () => void): Promise<StreamPosition | null> {
  const sub: Subscription = client.subscribe('chat:42', {
    subscribed: ({ resubscribed, recovered }: SubscribedContext) => {
      if (resubscribed && !recovered) reloadRoom();
    },
    publication: (p) => show(`${p.senderId ?? 'server'} ${JSON.stringify(p.payload)} ${p.offset ?? '-'}`),
    join: ({ userId }) => show(userId),
    leave: ({ userId }) => show(userId),
    unsubscribed: ({ reason }) => show(`ended: ${reason}`),
    subscribing: ({ reason }) => show(reason),
    error: (err) => show(err.code),
  });
  const published: Ack = await sub.publish({ text: 'hello room' });
  show(`${published.status} ${published.offset ?? '-'}`);
  const { users }: PresenceResult = await sub.presence();
  show(users.map((u) => `${u.userId}×${u.connections}`).join());
  const { publications, offset, epoch }: HistoryResult = await sub.history({ limit: 50 });
  show(`${publications.length} up to ${offset}@${epoch}`);
  const stats: PresenceStatsResult = await sub.presenceStats();
  show(`${stats.users} ${stats.connections}`);
  show(`${sub.channel} ${sub.state}`);
  const position = sub.position;
  sub.unsubscribe();
  if (position) client.subscribe('chat:42', {}, { since: position }).unsubscribe();
  show(String(client.getSubscription('chat:42')?.state));
  await client.publish('chat:42', [1, 2, 3], { timeoutMs: 1000 });
  await client.history('chat:42', { since: { offset: 1, epoch: 'e' }, limit: 10, timeoutMs: 1000 });
  await client.presence('chat:42');
  await client.presenceStats('chat:42');
  const refreshed: RefreshResult = await client.refresh();
  show(refreshed.expiresAt);
  const sent: boolean = client.reportLatency(12) && client.sendRaw('{"type":"heartbeat"}');
  show(String(sent));
  // @ts-expect-error made by client.subscribe only
  new Subscription();
  // @ts-expect-error a channel is a string
  client.subscribe(42);
  return client.inboxPosition;
}
