// deflate.mjs: what permessage-deflate (COMPRESSION=on) costs and saves
// (issue 15), with raw WebSocket clients: neither Node's WebSocket nor our
// loadgen negotiates permessage-deflate, so subscribers here are `node:net`
// sockets with a hand-made upgrade that offers (or not)
// `permessage-deflate; client_max_window_bits`, and a frame reader.
//
//   fanout: N subscribers (default 1,000) of one channel; a publisher
//     publishes ~1 KB of dashboard JSON R times a second (default 100) for
//     T s (default 5) after 1 s of warm-up; first with plain subscribers,
//     then with subscribers that negotiated deflate. Per mode: deliveries/s,
//     bytes the subscribers read per delivery and per second, the share of
//     compressed frames, delivery latency (subscriber 0 inflates and reads
//     every frame), correctness (every 50th compressed frame elsewhere is
//     inflated and must be the published JSON), missing deliveries, and the
//     server's wss_deflate_* counters (compressions vs compressed frames:
//     compress once per message and shard, not per receiver).
//   idle: on a fresh server per mode, N connections (default 9,000) with or
//     without the offer; the server's VmRSS before and after, per connection.
//
// Usage: node --experimental-websocket tuning/bench/deflate.mjs --mode fanout|idle
//          --spawn [--subscribers N] [--rate R] [--duration T] [--connections N]
//          [--rounds K] [--time-limit S]
// Bounded: a watchdog ends the run after --time-limit (default 300 s).

import { connect as tcp } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants as Z, inflateRawSync } from 'node:zlib';
import {
  Client, fatal, int, metric, ms, note, parse, percentiles,
  requireOpenFiles, requireWebSocket, servers, until, watchdog, RUN,
} from './common.mjs';

const HELP = `deflate.mjs --mode fanout|idle: permessage-deflate's bytes, speed and memory.

  --mode M          fanout (default) or idle
  --subscribers N   fanout: subscribers of the channel (default 1000)
  --rate R          fanout: publications/s (default 100)
  --duration T      fanout: measured seconds after 1 s of warm-up (default 5)
  --connections N   idle: connections per mode (default 9000; ulimit -n 20000)
  --rounds K        idle: alternations of the two modes (default 2)`;

const values = parse({
  mode: { type: 'string', default: 'fanout' },
  subscribers: { type: 'string', default: '1000' },
  rate: { type: 'string', default: '100' },
  duration: { type: 'string', default: '5' },
  connections: { type: 'string', default: '9000' },
  rounds: { type: 'string', default: '2' },
}, HELP);
const mode = values.mode;
if (mode !== 'fanout' && mode !== 'idle') { process.stderr.write(`deflate.mjs: --mode must be fanout or idle\n`); process.exit(2); }
if (!values.spawn) fatal('deflate.mjs needs --spawn (it starts the server with COMPRESSION=on)');
watchdog(Number(values['time-limit'] ?? 300));

const TOML = '[namespaces.dd]\npublic = true\nclient_publish = true\n';
const ENV = { COMPRESSION: 'on', HEARTBEAT_INTERVAL_MS: '300000', HEARTBEAT_TIMEOUT_MS: '600000' };
const TAIL = Buffer.from([0, 0, 0xff, 0xff]);

/** A masked client text frame. */
function frame(text) {
  const data = Buffer.from(text);
  const mask = randomBytes(4);
  const head = data.length < 126 ? Buffer.from([0x81, 0x80 | data.length])
    : Buffer.from([0x81, 0x80 | 126, data.length >> 8, data.length & 255]);
  for (let i = 0; i < data.length; i++) data[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, data]);
}

/** A raw WebSocket: upgrade (offering deflate or not), then server frames to `onFrame(rsv1, payload)`. */
function rawSocket(url, userId, offer, onFrame) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = tcp({ host: hostname, port: Number(port) });
    const s = { sock, bytes: 0, deflate: false };
    let buf = Buffer.alloc(0);
    let upgraded = false;
    sock.on('error', reject);
    sock.on('connect', () => sock.write(`GET /ws?userId=${userId} HTTP/1.1\r\nHost: ${hostname}\r\n`
      + 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
      + `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n`
      + (offer ? 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' : '') + '\r\n'));
    sock.on('data', (chunk) => {
      s.bytes += chunk.length;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        s.deflate = /sec-websocket-extensions:\s*permessage-deflate/i.test(head);
        if (s.deflate !== offer) return reject(new Error(`offer ${offer} but negotiated ${s.deflate}`));
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve(s);
      }
      while (buf.length >= 2) {
        let len = buf[1] & 127;
        let at = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
        if (buf.length < at + len) return;
        const rsv1 = (buf[0] & 0x40) !== 0;
        if ((buf[0] & 0x0f) === 1) onFrame(s, rsv1, buf.subarray(at, at + len));
        buf = buf.subarray(at + len);
      }
    });
  });
}

/** The text of a server frame. */
const text = (rsv1, payload) => (rsv1
  ? inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: Z.Z_SYNC_FLUSH })
  : payload).toString();

/** ~1 KB of dashboard JSON, the same keys every time. */
function dashboard(n) {
  const hosts = Array.from({ length: 8 }, (_, i) => ({
    host: `web-${i}`, cpu: (n * 7 + i * 13) % 100, mem: 40 + ((n + i) % 50), rps: 1000 + ((n * 31 + i) % 900),
    p99_ms: 10 + ((n + i * 3) % 40), status: (n + i) % 17 ? 'ok' : 'degraded',
  }));
  return { t: Date.now(), n, region: 'eu-west-1', service: 'checkout', hosts };
}

async function fanoutRun(srv, offer) {
  const n = int(values, 'subscribers', { min: 1 });
  const rate = int(values, 'rate', { min: 1 });
  const secs = int(values, 'duration', { min: 1 });
  const channel = `dd:fanout-${RUN}-${offer ? 'z' : 'p'}`;
  let counting = false;
  const lat = [];
  const stats = { deliveries: 0, compressed: 0, checked: 0 };
  const subs = [];
  const onFrame = (s, rsv1, payload) => {
    if (!s.subscribed) {
      if (text(rsv1, payload).includes('"subscribed"')) { s.subscribed = true; s.ready(); }
      return;
    }
    if (!counting) return;
    stats.deliveries++;
    if (rsv1) stats.compressed++;
    if (s === subs[0] || (rsv1 && stats.compressed % 50 === 0)) {
      const m = JSON.parse(text(rsv1, payload));
      if (m.type !== 'publication' || m.payload?.service !== 'checkout' || m.payload.hosts?.length !== 8) fatal(`bad publication: ${text(rsv1, payload).slice(0, 200)}`);
      if (s === subs[0]) lat.push(Date.now() - m.payload.t); else stats.checked++;
    }
  };
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => rawSocket(srv.urls[0], `dd-${RUN}-${i + k}`, offer, onFrame)));
    subs.push(...batch);
  }
  await Promise.all(subs.map((s) => new Promise((resolve) => { s.ready = resolve; s.sock.write(frame(JSON.stringify({ type: 'subscribe', channel, id: 's' }))); })));
  const publisher = new Client(srv.urls[0], `dd-pub-${RUN}`);
  await publisher.open();
  const publish = async (g) => { const a = await publisher.request({ type: 'publish', channel, payload: dashboard(g) }); if (a.status !== 'published') fatal(`publish answered ${JSON.stringify(a)}`); };
  let g = 0;
  // Open loop at `rate`: each publication is sent on time, its ack checked later.
  const pace = async (seconds) => {
    const start = Date.now();
    const acks = [];
    for (let k = 0; k < rate * seconds; k++) {
      const wait = start + (k * 1000) / rate - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      acks.push(publish(g++));
    }
    await Promise.all(acks);
  };
  await pace(1);
  await new Promise((r) => setTimeout(r, 200));
  const [c0, f0] = [await metric(srv.https, 'wss_deflate_compressions_total'), await metric(srv.https, 'wss_deflate_frames_total')];
  const bytes0 = subs.reduce((a, s) => a + s.bytes, 0);
  counting = true;
  const t0 = Date.now();
  const first = g;
  await pace(secs);
  const sent = g - first;
  await until(() => stats.deliveries >= sent * n, 10_000, 'every delivery');
  const elapsed = (Date.now() - t0) / 1000;
  counting = false;
  const bytes = subs.reduce((a, s) => a + s.bytes, 0) - bytes0;
  const [c1, f1] = [await metric(srv.https, 'wss_deflate_compressions_total'), await metric(srv.https, 'wss_deflate_frames_total')];
  for (const s of subs) s.sock.destroy();
  publisher.close?.();
  const p = percentiles(lat);
  return { offer, sent, n, deliveries: stats.deliveries, missing: sent * n - stats.deliveries, perSec: stats.deliveries / elapsed,
    bytesPerDelivery: bytes / stats.deliveries, mbPerSec: bytes / elapsed / 1e6, compressedShare: stats.compressed / stats.deliveries,
    p50: p.p50, p99: p.p99, checked: stats.checked, compressions: c1 - c0, deflateFrames: f1 - f0 };
}

function vmRss(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
}

async function idleRun(offer) {
  const n = int(values, 'connections', { min: 1 });
  requireOpenFiles(n + 100);
  const srv = await servers(values, { channelsToml: TOML, maxConnections: n + 100, env: ENV });
  const pid = srv.pids?.[0];
  if (!pid) fatal('cannot find the spawned server pid');
  await new Promise((r) => setTimeout(r, 1000));
  const before = vmRss(pid);
  const socks = [];
  for (let i = 0; i < n; i += 200) {
    socks.push(...await Promise.all(Array.from({ length: Math.min(200, n - i) }, (_, k) => rawSocket(srv.urls[0], `di-${RUN}-${i + k}`, offer, () => {}))));
  }
  await new Promise((r) => setTimeout(r, 5000));
  const after = vmRss(pid);
  for (const s of socks) s.sock.destroy();
  await srv.stop();
  return { offer, n, perConn: (after - before) / n };
}

if (mode === 'fanout') {
  requireWebSocket();
  requireOpenFiles(int(values, 'subscribers') + 100);
  const srv = await servers(values, { channelsToml: TOML, maxConnections: int(values, 'subscribers') + 100, env: ENV });
  note(`${srv.describe}; ${values.subscribers} subscribers, ${values.rate} publications/s, ${values.duration} s`);
  const rows = [await fanoutRun(srv, false), await fanoutRun(srv, true)];
  await srv.stop();
  console.log('| subscribers | deflate | publications | deliveries/s | missing | bytes/delivery | MB/s read | compressed frames | p50 | p99 | sampled and checked | compressions / compressed frames |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.n} | ${r.offer ? 'on' : 'off'} | ${r.sent} | ${Math.round(r.perSec)} | ${r.missing} | ${Math.round(r.bytesPerDelivery)} | ${r.mbPerSec.toFixed(1)} | ${(100 * r.compressedShare).toFixed(0)} % | ${ms(r.p50)} | ${ms(r.p99)} | ${r.checked} | ${r.compressions} / ${r.deflateFrames} |`);
    if (r.missing > 0) fatal(`${r.missing} deliveries missing with deflate ${r.offer ? 'on' : 'off'}`);
  }
  if (rows[1].compressedShare < 0.99) fatal('deflate subscribers got plain frames');
  process.exit(0);
} else {
  const rows = [];
  for (let k = 0; k < int(values, 'rounds', { min: 1 }); k++) {
    rows.push(await idleRun(false), await idleRun(true));
  }
  console.log('| connections | deflate negotiated | user space per connection |');
  console.log('|---|---|---|');
  for (const r of rows) console.log(`| ${r.n} | ${r.offer ? 'yes' : 'no'} | ${Math.round(r.perConn)} B |`);
  process.exit(0);
}
