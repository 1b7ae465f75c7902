// recovery-storm.mjs: a reconnect storm of clients that all recover missed
// publications at once (issue 12).
//
// What it measures: N clients (default 1,000) subscribe to one channel of
// the history namespace `bh` (history_size 1000), remember the position the
// `subscribed` answer gave (offset, epoch) and disconnect; a publisher client
// then publishes M publications (default 100, acked, offsets noted); then all
// N reconnect at once and subscribe with `recover`. Reported: the time from
// the first reconnect until the last client holds `recovered: true` with
// exactly the M publications it missed (offsets consecutive from its own,
// same epoch, payloads matching the acks: no gap, no duplicate; no live copy
// afterwards), and how many clients failed that check. Goal in the issue:
// under 2 s on the 2-core dev VM. --rounds repeats disconnect/publish/storm.
//
// Usage (Node 20: add --experimental-websocket; Node >= 22 has WebSocket):
//   node --experimental-websocket tuning/bench/recovery-storm.mjs --spawn
//   node --experimental-websocket tuning/bench/recovery-storm.mjs --spawn --redis --instances 2
//   node --experimental-websocket tuning/bench/recovery-storm.mjs --url ws://127.0.0.1:18711/ws
//
// Bounded: each phase has its own limit (the storm: --timeout, default 30 s)
// and the whole run --time-limit (default 120 s); exit 0 only when every
// client recovered exactly, 1 on any failure, 2 on bad arguments.

import {
  RUN, bounded, channelsToml, closeAll, fatal, int, ms, note, openMany, parse, percentiles,
  requireOpenFiles, requireWebSocket, servers, watchdog, Client,
} from './common.mjs';

const HELP = `recovery-storm.mjs: N clients reconnect at once and recover M missed publications each.

  --clients N          subscribers that disconnect and recover (default 1000)
  --publications M     publications made while they are away (default 100, at most 1000)
  --rounds R           disconnect / publish / storm rounds (default 1)
  --payload-bytes B    padding in each publication's payload (default 64)
  --concurrency C      handshakes in flight while subscribing the first time (default 200);
                       the storm itself opens all N at once
  --timeout SECS       bound on one storm (default 30)`;

const values = parse({
  clients: { type: 'string', default: '1000' },
  publications: { type: 'string', default: '100' },
  rounds: { type: 'string', default: '1' },
  'payload-bytes': { type: 'string', default: '64' },
  concurrency: { type: 'string', default: '200' },
  timeout: { type: 'string', default: '30' },
}, HELP);
values['time-limit'] ??= '120';
const N = int(values, 'clients', { min: 1 });
const M = int(values, 'publications', { min: 1 });
const ROUNDS = int(values, 'rounds', { min: 1 });
const PAD = 'x'.repeat(int(values, 'payload-bytes'));
const CONCURRENCY = int(values, 'concurrency', { min: 1 });
const TIMEOUT = int(values, 'timeout', { min: 1 }) * 1000;
if (M > 1000) fatal('--publications above 1000: the server never recovers more than 1,000 at once (recovered: false)');

const srv = await servers(values, { channelsToml: channelsToml(), maxConnections: N + 100 });
requireWebSocket();
requireOpenFiles(N + 50);
watchdog(int(values, 'time-limit', { min: 1 }));

const channel = `bh:storm-${RUN}`;
note(`${srv.describe}; channel ${channel}; ${N} clients, ${M} publications, ${ROUNDS} round(s)`);

// Position of each client: what the last `subscribed` told it.
const pos = new Array(N);
const user = (i) => `rs-${RUN}-${i}`;

// --- first subscription ------------------------------------------------------
{
  const { clients, ms: connectMs } = await openMany(srv.urls, N, { concurrency: CONCURRENCY, userId: user });
  const t0 = performance.now();
  await bounded(Promise.all(clients.map(async (c, i) => {
    const m = await c.request({ type: 'subscribe', channel });
    if (typeof m.offset !== 'number' || typeof m.epoch !== 'string') {
      fatal(`subscribed to ${channel} without offset/epoch (${JSON.stringify(m)}): the server's namespace "bh" has no history; start it with the config of --print-config`);
    }
    pos[i] = { offset: m.offset, epoch: m.epoch };
  })), 60_000, `subscribing ${N} clients`);
  note(`connected ${N} in ${ms(connectMs)}, subscribed in ${ms(performance.now() - t0)}`);
  await closeAll(clients);
}

const results = [];
for (let round = 1; round <= ROUNDS; round++) {
  // --- publications while everyone is away -----------------------------------
  const pub = new Client(srv.urls[0], `rs-${RUN}-publisher`);
  await bounded(pub.open(), 10_000, 'publisher connect');
  const acked = new Map(); // offset -> n
  let epoch = null;
  {
    let next = 0;
    const lane = async () => {
      while (next < M) {
        const n = next++;
        let a;
        try {
          a = await pub.request({ type: 'publish', channel, payload: { n, round, pad: PAD } });
        } catch (e) {
          fatal(`publish ${n}: ${e.message}${/forbidden/.test(e.message) ? ' (namespace "bh" needs client_publish: use the config of --print-config)' : ''}`);
        }
        if (a.status !== 'published' || typeof a.offset !== 'number') fatal(`publish ${n} answered ${JSON.stringify(a)} (want status published with an offset)`);
        if (acked.has(a.offset)) fatal(`two publications acked with offset ${a.offset}`);
        acked.set(a.offset, n);
      }
    };
    await bounded(Promise.all(Array.from({ length: 16 }, lane)), 60_000, `publishing ${M}`);
    await pub.close();
  }
  const offsets = [...acked.keys()].sort((a, b) => a - b);
  const first = offsets[0];
  if (offsets[offsets.length - 1] - first !== M - 1) fatal(`acked offsets are not consecutive: ${offsets[0]}..${offsets[offsets.length - 1]} for ${M} publications`);
  const base = pos[0].offset;
  for (let i = 0; i < N; i++) {
    if (pos[i].offset !== base || pos[i].epoch !== pos[0].epoch) fatal(`clients left at different positions (${JSON.stringify(pos[0])} vs ${JSON.stringify(pos[i])}): nothing was published while they subscribed`);
  }
  if (first !== base + 1) fatal(`first acked offset ${first}, but the clients left at ${base}`);

  // --- the storm --------------------------------------------------------------
  const failures = new Map(); // kind -> [example]
  const fail = (kind, detail) => {
    if (!failures.has(kind)) failures.set(kind, []);
    failures.get(kind).push(detail);
  };
  const done = new Array(N).fill(0);
  const extra = new Array(N).fill(0); // publications after the recovery: duplicates
  const clients = new Array(N);
  const t0 = performance.now();
  const storm = Promise.all(Array.from({ length: N }, async (_, i) => {
    const c = new Client(srv.urls[i % srv.urls.length], user(i), {
      onEvent: (m) => { if (m.type === 'publication') extra[i]++; },
      onClose: (why) => { if (done[i] > 0) fail('closed after recovering', why); },
    });
    clients[i] = c;
    try {
      await c.open();
    } catch (e) {
      return fail('connect failed', e.message);
    }
    let m;
    try {
      m = await c.request({ type: 'subscribe', channel, recover: pos[i] });
    } catch (e) {
      return fail('subscribe failed', e.message);
    }
    done[i] = performance.now() - t0;
    if (m.recovered !== true) return fail('recovered: false', `${user(i)}: ${JSON.stringify({ ...m, publications: m.publications?.length })}`);
    if (m.epoch !== pos[i].epoch) return fail('epoch changed', `${user(i)}: ${pos[i].epoch} -> ${m.epoch}`);
    const pubs = m.publications ?? [];
    if (pubs.length !== M) return fail('wrong count', `${user(i)}: ${pubs.length} publications, want ${M}`);
    for (let k = 0; k < M; k++) {
      const p = pubs[k];
      if (p.offset !== base + 1 + k) return fail('gap or duplicate', `${user(i)}: publication ${k} has offset ${p.offset}, want ${base + 1 + k}`);
      if (acked.get(p.offset) !== p.payload?.n) return fail('wrong payload', `${user(i)}: offset ${p.offset} carries n=${p.payload?.n}, acked n=${acked.get(p.offset)}`);
    }
    if (m.offset !== base + M) return fail('wrong position', `${user(i)}: subscribed.offset ${m.offset}, want ${base + M}`);
    pos[i] = { offset: m.offset, epoch: m.epoch };
  }));
  let timer;
  await Promise.race([storm, new Promise((resolve) => {
    timer = setTimeout(() => fatal(`the storm of round ${round}: only ${done.filter((x) => x > 0).length} of ${N} clients`
      + ` answered within --timeout ${TIMEOUT / 1000} s (${[...failures.keys()].join(', ') || 'no failure yet'})`), TIMEOUT);
    storm.then(resolve);
  })]);
  clearTimeout(timer);
  const allMs = performance.now() - t0;
  // A live copy of a recovered publication would arrive right behind the answer.
  await new Promise((r) => setTimeout(r, 300));
  extra.forEach((x, i) => { if (x > 0) fail('duplicate live copy', `${user(i)}: ${x} publication(s) after the recovery`); });
  const failed = [...failures.values()].reduce((s, l) => s + l.length, 0);
  const lat = percentiles(done.filter((x) => x > 0));
  results.push({ round, allMs, lat, failed });
  console.log(`round ${round}: ${N} clients recovered ${M} publications each: all done ${ms(allMs)} after the first reconnect`
    + ` (goal < 2000 ms); per client ${lat.text}; failures ${failed}`);
  for (const [kind, list] of failures) console.log(`  ${kind}: ${list.length}, e.g. ${list.slice(0, 3).join(' | ')}`);
  await closeAll(clients);
}

await srv.stop();
const bad = results.reduce((s, r) => s + r.failed, 0);
console.log('\n| mode | clients | missed each | all recovered (ms) | per-client p50 | p99 | failures |');
console.log('|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${srv.mode} | ${N} | ${M} | ${r.allMs.toFixed(0)} | ${ms(r.lat.p50)} | ${ms(r.lat.p99)} | ${r.failed} |`);
}
if (bad > 0) fatal(`${bad} client recoveries were not exact (see above)`);
process.exit(0);
