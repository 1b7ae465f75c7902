// history-cost.mjs: publications per second to ONE channel with history on
// and off (issue 12: "history costs at most half").
//
// What it measures: S subscribers (default 100) on one channel; P publisher
// connections (default 4, not subscribed) each keep W publications in flight
// (default 8), sending the next as soon as an `ack` comes back (closed loop),
// for a warm-up then T seconds. The same run is made on a channel of the
// history namespace `bh` (history_size 1000: every publication numbered and
// kept) and of `bn` (no history), alternating for --rounds. Reported per run:
// publications/s (acks in the measured window), deliveries/s (publications
// received by the subscribers), ack latency p50/p99/p99.9, delivery latency
// p50/p99 (subscriber 0 parses everything; the others only count), and the
// on/off ratio. Checked: every ack `published` (with an offset when history
// is on), every subscriber got every publication (missing must be 0) and
// subscriber 0 saw offsets consecutive when history is on.
//
// The subscribers run in this Node process: past a few hundred thousand
// deliveries/s Node is the bottleneck, not the server. Compare on and off at
// the same S; --subscribers 0 measures the publish path alone.
//
// Usage (Node 20: add --experimental-websocket):
//   node --experimental-websocket tuning/bench/history-cost.mjs --spawn
//   node --experimental-websocket tuning/bench/history-cost.mjs --spawn --redis
//   node --experimental-websocket tuning/bench/history-cost.mjs --url ws://127.0.0.1:18711/ws
//
// Bounded: each run lasts warm-up + T s plus a drain of at most 15 s; the
// whole run --time-limit (default 300 s). Exit 1 on any failed check.

import {
  RUN, bounded, channelsToml, closeAll, fatal, heartbeats, int, ms, note, openMany, parse,
  percentiles, requireOpenFiles, requireWebSocket, servers, watchdog,
} from './common.mjs';

const HELP = `history-cost.mjs: closed-loop publishing to one channel, history on vs off.

  --subscribers S      connections subscribed to the channel, counting deliveries (default 100)
  --publishers P       publisher connections (default 4)
  --window W           publications in flight per publisher (default 8)
  --duration T         measured seconds per run (default 5)
  --warmup SECS        unmeasured seconds before (default 1)
  --payload-bytes B    padding in each payload (default 100)
  --modes LIST         runs, in order: on = namespace bh (history), off = bn (default off,on)
  --rounds R           repeat the modes R times, alternating (default 1)`;

const values = parse({
  subscribers: { type: 'string', default: '100' },
  publishers: { type: 'string', default: '4' },
  window: { type: 'string', default: '8' },
  duration: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '1' },
  'payload-bytes': { type: 'string', default: '100' },
  modes: { type: 'string', default: 'off,on' },
  rounds: { type: 'string', default: '1' },
}, HELP);
values['time-limit'] ??= '300';
const S = int(values, 'subscribers');
const P = int(values, 'publishers', { min: 1 });
const W = int(values, 'window', { min: 1 });
const T = int(values, 'duration', { min: 1 }) * 1000;
const WARM = int(values, 'warmup') * 1000;
const PAD = 'x'.repeat(int(values, 'payload-bytes'));
const ROUNDS = int(values, 'rounds', { min: 1 });
const MODES = values.modes.split(',');
for (const m of MODES) if (m !== 'on' && m !== 'off') fatal(`--modes: "${m}" is neither on nor off`);

const srv = await servers(values, { channelsToml: channelsToml(), maxConnections: S + P + 100 });
requireWebSocket();
requireOpenFiles(S + P + 50);
watchdog(int(values, 'time-limit', { min: 1 }));
note(`${srv.describe}; ${S} subscribers, ${P} publishers × ${W} in flight, ${WARM / 1000} + ${T / 1000} s per run, modes ${MODES.join(',')} × ${ROUNDS}`);

async function run(mode, round) {
  const history = mode === 'on';
  const channel = `${history ? 'bh' : 'bn'}:cost-${RUN}-${round}`;
  // Subscriber 0 parses and checks; the others count frames unparsed.
  let delivered = 0;
  const lat = [];
  let lastOffset = null;
  let measuring = false;
  const check = (d) => {
    if (!d.includes('"publication"')) return false;
    delivered++;
    const m = JSON.parse(d);
    if (measuring) lat.push(performance.now() - m.payload.t);
    if (history) {
      if (lastOffset !== null && m.offset !== lastOffset + 1) fatal(`${mode}: subscriber 0 got offset ${m.offset} after ${lastOffset} (gap or duplicate)`);
      lastOffset = m.offset;
    }
    return true;
  };
  const count = (d) => {
    if (d.includes('"publication"')) { delivered++; return true; }
    return false;
  };
  const { clients: subs } = await openMany(srv.urls, S, {
    concurrency: 200,
    userId: (i) => `hc-${RUN}-s${i}`,
    options: (i) => ({ raw: i === 0 ? check : count }),
  });
  await bounded(Promise.all(subs.map(async (c) => {
    const m = await c.request({ type: 'subscribe', channel });
    if (history !== (typeof m.offset === 'number')) {
      fatal(`${channel}: subscribed ${history ? 'without' : 'with'} an offset: the server's namespaces do not match; start it with the config of --print-config`);
    }
  })), 60_000, `subscribing ${S}`);
  const { clients: pubs } = await openMany(srv.urls, P, { concurrency: P, userId: (i) => `hc-${RUN}-p${i}` });
  const stopHb = heartbeats(() => [...subs, ...pubs]);

  const ackLat = [];
  let acked = 0; // all acks
  let ackedIn = 0; // acks of publications sent within the window
  let sent = 0;
  const tStart = performance.now();
  let cpu0;
  setTimeout(() => { cpu0 = process.cpuUsage(); }, WARM);
  const tWarm = tStart + WARM;
  const tEnd = tWarm + T;
  let d0 = 0;
  setTimeout(() => { measuring = true; d0 = delivered; }, WARM);
  const loops = pubs.map((c) => new Promise((resolve) => {
    let inflight = 0;
    const one = () => {
      const t = performance.now();
      inflight++;
      sent++;
      c.request({ type: 'publish', channel, payload: { t, pad: PAD } }).then((a) => {
        const now = performance.now();
        if (a.status !== 'published') fatal(`${mode}: publish answered ${JSON.stringify(a)}${a.status === 'rate_limited' ? ' (start the server with --rate-limit 0 and RATE_LIMIT_BYTES_PER_SEC=0)' : ''}`);
        if (history && typeof a.offset !== 'number') fatal(`${mode}: ack without offset: ${JSON.stringify(a)}`);
        acked++;
        inflight--;
        if (t >= tWarm && t < tEnd) { ackedIn++; ackLat.push(now - t); }
        if (now < tEnd) one();
        else if (inflight === 0) resolve();
      }, (e) => fatal(`${mode}: publish failed: ${e.message}${/forbidden/.test(e.message) ? ' (the namespace needs client_publish: use the config of --print-config)' : ''}`));
    };
    for (let k = 0; k < W; k++) one();
  }));
  let d1 = 0;
  let cpu = 0;
  const windowClosed = new Promise((resolve) => setTimeout(() => {
    measuring = false;
    d1 = delivered;
    const u = process.cpuUsage(cpu0);
    cpu = (u.user + u.system) / 1000 / T;
    resolve();
  }, WARM + T));
  await bounded(Promise.all([...loops, windowClosed]), WARM + T + 15_000, `${mode}: publishers`);
  // Drain: every acked publication reaches every subscriber.
  const want = acked * S;
  const drainEnd = performance.now() + 15_000;
  while (delivered < want && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 20));
  const missing = want - delivered;
  stopHb();
  await closeAll([...subs, ...pubs]);
  const r = {
    mode, round, pubsPerSec: ackedIn / (T / 1000), delivPerSec: (d1 - d0) / (T / 1000),
    ack: percentiles(ackLat), deliv: percentiles(lat), sent, acked, missing, cpu,
  };
  console.log(`${mode === 'on' ? 'history on ' : 'history off'} (round ${round}): ${r.pubsPerSec.toFixed(0)} pubs/s, ${r.delivPerSec.toFixed(0)} deliveries/s;`
    + ` ack ${r.ack.text}; delivery (subscriber 0) ${r.deliv.text}; ${acked} acked, missing ${missing};`
    + ` this Node process used ${(cpu * 100).toFixed(0)} % of a core${cpu > 0.9 ? ' (saturated: the client, not the server, may be the limit)' : ''}`);
  if (missing !== 0) fatal(`${mode}: ${missing} deliveries missing (${delivered} of ${want}) 15 s after the last ack`);
  return r;
}

const results = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const mode of MODES) results.push(await run(mode, round));
}
await srv.stop();

console.log('\n| mode | history | subscribers | publishers × window | pubs/s | deliveries/s | ack p50 | ack p99 | missing | client CPU |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${srv.mode} | ${r.mode} | ${S} | ${P} × ${W} | ${r.pubsPerSec.toFixed(0)} | ${r.delivPerSec.toFixed(0)} | ${ms(r.ack.p50)} | ${ms(r.ack.p99)} | ${r.missing} | ${(r.cpu * 100).toFixed(0)} % |`);
}
const mean = (mode) => {
  const xs = results.filter((r) => r.mode === mode).map((r) => r.pubsPerSec);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
};
if (MODES.includes('on') && MODES.includes('off')) {
  const ratio = mean('on') / mean('off');
  console.log(`\nhistory on / off: ${(ratio * 100).toFixed(0)} % of the publications/s (goal: at least 50 %)`);
}
process.exit(0);
