// presence.mjs: joins/s into one channel that grows to 10,000 members, and
// the cost of `presence_stats` and of a `presence` page at that size
// (issue 13).
//
// What it measures, in order, on one channel of the namespace `bp`
// (presence, join_leave, join_leave_per_sec from --join-leave-per-sec in
// --spawn mode):
//   1. connect N clients (default 10,000; distinct users), C handshakes in
//      flight: connections/s;
//   2. subscribe them all, W subscribes in flight, each sent as soon as one
//      is answered: subscribes/s overall and per tenth of the growth (does a
//      join get dearer as the room grows?), subscribe latency p50/p99, and
//      the `join` events the members received (counted until 1 s without a
//      new one; the server caps them at join_leave_per_sec per channel);
//   3. `presence_stats`: wait until it counts N users and N connections
//      (checked), then K sequential requests (latency p50/p99) and a closed
//      loop of L connections × 1 request in flight for D s (requests/s);
//   4. `presence` (one page: at most 1,000 users, `truncated` past that,
//      both checked): the same, with K/5 sequential requests.
//
// 10,000 connections from one Node process need `ulimit -n 20000` in the
// shell first (the spawned server inherits it). Node's WebSocket cannot bind a
// source address, so stay at or below ~20,000 members per process.
//
// Usage (Node 20: add --experimental-websocket):
//   ulimit -n 20000
//   node --experimental-websocket tuning/bench/presence.mjs --spawn
//   node --experimental-websocket tuning/bench/presence.mjs --spawn --redis --instances 2
//   node --experimental-websocket tuning/bench/presence.mjs --url ws://127.0.0.1:18711/ws
//
// Bounded: each phase has a limit (connect and subscribe: --phase-timeout,
// default 120 s; loops: --duration); the whole run --time-limit (default
// 600 s). Exit 1 on any failed check.

import {
  RUN, bounded, channelsToml, fatal, heartbeats, int, metric, ms, note, openMany, parse, percentiles,
  requireOpenFiles, requireWebSocket, servers, until, watchdog,
} from './common.mjs';

const HELP = `presence.mjs: joins/s into one channel growing to N members, then presence_stats/presence cost.

  --members N              distinct users connected and subscribed (default 10000)
  --concurrency C          handshakes in flight (default 100)
  --window W               subscribes in flight (default 500)
  --requests K             sequential presence_stats requests (default 1000; presence: K/5)
  --loop-connections L     connections of the closed loops (default 8)
  --duration D             seconds of each closed loop (default 5)
  --join-leave-per-sec J   with --spawn: the namespace's join_leave_per_sec (default 50,
                           the server's default; 0 = no limit: N²/2 join deliveries)
  --phase-timeout SECS     bound on the connect and on the subscribe phase (default 120)`;

const values = parse({
  members: { type: 'string', default: '10000' },
  concurrency: { type: 'string', default: '100' },
  window: { type: 'string', default: '500' },
  requests: { type: 'string', default: '1000' },
  'loop-connections': { type: 'string', default: '8' },
  duration: { type: 'string', default: '5' },
  'join-leave-per-sec': { type: 'string', default: '50' },
  'phase-timeout': { type: 'string', default: '120' },
}, HELP);
values['time-limit'] ??= '600';
const N = int(values, 'members', { min: 1 });
const C = int(values, 'concurrency', { min: 1 });
const W = int(values, 'window', { min: 1 });
const K = int(values, 'requests', { min: 1 });
const L = Math.min(int(values, 'loop-connections', { min: 1 }), N);
const D = int(values, 'duration', { min: 1 }) * 1000;
const JL = int(values, 'join-leave-per-sec');
const PHASE = int(values, 'phase-timeout', { min: 1 }) * 1000;

const srv = await servers(values, { channelsToml: channelsToml({ joinLeavePerSec: JL }), maxConnections: N + 100 });
requireWebSocket();
requireOpenFiles(N + 100);
watchdog(int(values, 'time-limit', { min: 1 }));
const channel = `bp:room-${RUN}`;
note(`${srv.describe}; channel ${channel}; ${N} members${values.spawn ? `, join_leave_per_sec ${JL}` : ''}`);

// --- 1. connect ----------------------------------------------------------------
let joins = 0;
let lastJoin = 0;
const countJoin = (d) => {
  if (d.includes('"join"')) { joins++; lastJoin = performance.now(); return true; }
  return false;
};
const { clients, ms: connectMs } = await bounded(
  openMany(srv.urls, N, { concurrency: C, userId: (i) => `pr-${RUN}-${i}`, options: () => ({ raw: countJoin }) }),
  PHASE, `connecting ${N} clients`);
const stopHb = heartbeats(() => clients);
const connectsPerSec = N / (connectMs / 1000);
console.log(`connect: ${N} connections in ${ms(connectMs)}: ${connectsPerSec.toFixed(0)}/s (${C} in flight)`);

// --- 2. subscribe: the room grows ------------------------------------------------
const subLat = new Array(N);
const doneAt = new Array(N);
const t0 = performance.now();
{
  let next = 0;
  const lane = async () => {
    while (next < N) {
      const i = next++;
      const t = performance.now();
      let m;
      try {
        m = await clients[i].request({ type: 'subscribe', channel });
      } catch (e) {
        fatal(`subscribe ${i + 1} of ${N}: ${e.message}`);
      }
      if (m.type !== 'subscribed') fatal(`subscribe answered ${JSON.stringify(m)}`);
      doneAt[i] = performance.now();
      subLat[i] = doneAt[i] - t;
    }
  };
  await bounded(Promise.all(Array.from({ length: Math.min(W, N) }, lane)), PHASE, `subscribing ${N} clients`);
}
const subMs = performance.now() - t0;
// Join events still in flight: wait for 1 s without one (at most 30 s).
await until(() => performance.now() - Math.max(lastJoin, t0 + subMs) > 1000, 30_000, 'join events to stop arriving');
const order = doneAt.map((t, i) => [t, i]).sort((a, b) => a[0] - b[0]);
const tenths = [];
for (let k = 0; k < 10; k++) {
  const a = Math.floor((k * N) / 10);
  const b = Math.floor(((k + 1) * N) / 10) - 1;
  if (b < a) continue;
  const from = k === 0 ? t0 : order[a - 1][0];
  tenths.push(((b - a + 1) / ((order[b][0] - from) / 1000)).toFixed(0));
}
const subPct = percentiles(subLat);
const subsPerSec = N / (subMs / 1000);
let dropped = '';
if (values.spawn && !values.redis) dropped = `; the server dropped ${await metric(srv.https, 'wss_join_leave_dropped_total')} (join_leave_per_sec)`;
console.log(`subscribe: ${N} in ${ms(subMs)}: ${subsPerSec.toFixed(0)}/s (${W} in flight); per tenth of the growth: ${tenths.join(', ')} /s;`
  + ` latency ${subPct.text}`);
console.log(`join events delivered to members: ${joins}${dropped}`);

// --- 3 and 4: presence_stats and presence ------------------------------------------
const asker = clients[0];
let stats;
const statsEnd = performance.now() + 30_000;
for (;;) {
  stats = await bounded(asker.request({ type: 'presence_stats', channel }), 10_000, 'presence_stats');
  if (stats.users === N && stats.connections === N) break;
  if (performance.now() > statsEnd) fatal(`presence_stats still says ${JSON.stringify(stats)} 30 s after the last subscribe, want ${N} users and ${N} connections`);
  await new Promise((r) => setTimeout(r, 100));
}

function checkPage(m) {
  const want = Math.min(N, 1000);
  if (!Array.isArray(m.users) || m.users.length !== want) fatal(`presence listed ${m.users?.length} users, want ${want}`);
  if (Boolean(m.truncated) !== N > 1000) fatal(`presence truncated = ${m.truncated} with ${N} members`);
}
function checkStats(m) {
  if (m.users !== N || m.connections !== N) fatal(`presence_stats answered ${JSON.stringify(m)}, want ${N} users and ${N} connections`);
}

async function sequential(type, count, check) {
  const lat = [];
  for (let k = 0; k < count; k++) {
    const t = performance.now();
    const m = await bounded(asker.request({ type, channel }), 10_000, type);
    lat.push(performance.now() - t);
    check(m);
  }
  return percentiles(lat);
}

async function closedLoop(type, check) {
  const lat = [];
  const end = performance.now() + D;
  await bounded(Promise.all(clients.slice(0, L).map(async (c) => {
    while (performance.now() < end) {
      const t = performance.now();
      const m = await c.request({ type, channel });
      lat.push(performance.now() - t);
      check(m);
    }
  })), D + 15_000, `${type} closed loop`);
  return { perSec: lat.length / (D / 1000), lat: percentiles(lat) };
}

const statsSeq = await sequential('presence_stats', K, checkStats);
console.log(`presence_stats at ${N} members: ${K} sequential: ${statsSeq.text}`);
const statsLoop = await closedLoop('presence_stats', checkStats);
console.log(`presence_stats closed loop (${L} connections): ${statsLoop.perSec.toFixed(0)}/s; ${statsLoop.lat.text}`);
const pageSeq = await sequential('presence', Math.max(1, Math.floor(K / 5)), checkPage);
console.log(`presence page at ${N} members: ${Math.max(1, Math.floor(K / 5))} sequential: ${pageSeq.text}`);
const pageLoop = await closedLoop('presence', checkPage);
console.log(`presence closed loop (${L} connections): ${pageLoop.perSec.toFixed(0)}/s; ${pageLoop.lat.text}`);

stopHb();
// Stop spawned servers first: closing 10,000 members one by one would only
// measure leave events. With --url, close the clients (the server sends leaves).
await srv.stop();
if (!values.spawn) {
  for (const c of clients) { c.closing = true; c.ws.close(1000); }
  await new Promise((r) => setTimeout(r, 1000));
}

console.log('\n| mode | members | connects/s | subscribes/s (first → last tenth) | subscribe p99 | joins delivered | stats p50 | stats p99 | stats/s | page p50 | page p99 | pages/s |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
console.log(`| ${srv.mode} | ${N} | ${connectsPerSec.toFixed(0)} | ${subsPerSec.toFixed(0)} (${tenths[0]} → ${tenths[tenths.length - 1]}) | ${ms(subPct.p99)} | ${joins} |`
  + ` ${ms(statsSeq.p50)} | ${ms(statsSeq.p99)} | ${statsLoop.perSec.toFixed(0)} | ${ms(pageSeq.p50)} | ${ms(pageSeq.p99)} | ${pageLoop.perSec.toFixed(0)} |`);
process.exit(0);
