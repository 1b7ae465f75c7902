// Shared pieces of the Node benchmarks in tuning/bench/ (no dependencies):
// argument parsing, a watchdog, starting a release server (and redis-server)
// on free ports for `--spawn`, a thin WebSocket client speaking the
// protocol's JSON frames, heartbeats for long runs, and percentiles.
//
// Every failure is fatal and loud: `fatal()` prints one clear line (plus the
// server's log tail when we started it), kills what we started, exits 1.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Repository root (this file is tuning/bench/common.mjs). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const NAME = basename(process.argv[1] ?? 'bench');

/** Children we started (servers, redis): killed however this process exits. */
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => fatal(`interrupted (${sig})`));

/** Log tails of started servers, printed by `fatal`. */
const logs = [];

/** Prints `msg` (and the started servers' log tails) and exits 1. */
export function fatal(msg) {
  process.stderr.write(`\n${NAME}: FAILED: ${msg}\n`);
  for (const l of logs) {
    if (l.text.trim()) process.stderr.write(`--- last lines of ${l.name}'s log:\n${l.text.split('\n').slice(-25).join('\n')}\n`);
  }
  process.exit(1);
}

/** Prints a progress line on stderr (results go to stdout). */
export function note(msg) {
  process.stderr.write(`${NAME}: ${msg}\n`);
}

/** Options every script takes (how to reach or start the server). */
export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  url: { type: 'string', multiple: true },
  spawn: { type: 'boolean' },
  redis: { type: 'boolean' },
  instances: { type: 'string', default: '1' },
  shards: { type: 'string', default: '2' },
  bin: { type: 'string' },
  'print-config': { type: 'boolean' },
  'time-limit': { type: 'string' },
};

export const COMMON_HELP = `Server (one of):
  --spawn              start target/release/websocket-app on a free port with
                       the channels config below, --rate-limit 0,
                       RATE_LIMIT_BYTES_PER_SEC=0, enough MAX_CONNECTIONS;
                       stopped at the end
    --redis            also start a throwaway redis-server (REDIS_URI)
    --instances K      K server instances (needs --redis when K > 1); clients
                       are spread over them round-robin (default 1)
    --shards S         WSS_SHARDS of each spawned instance (default 2)
    --bin PATH         server binary (default <repo>/target/release/websocket-app)
  --url ws://H:P/ws    a server you started (repeat for several instances);
                       it must load the channels config of --print-config, and
                       run with --rate-limit 0 RATE_LIMIT_BYTES_PER_SEC=0
  --print-config       print the channels config (TOML) and exit
  --time-limit SECS    hard bound on the whole run, fails past it (defaults:
                       recovery-storm 120, history-cost 300, presence 600)
  -h, --help           this help`;

/**
 * Parses argv with `options` (plus the common ones); prints `help` and
 * exits on --help; exits 2 with a message on a bad argument.
 */
export function parse(options, help) {
  let parsed;
  try {
    parsed = parseArgs({ options: { ...COMMON_OPTIONS, ...options }, allowPositionals: false });
  } catch (e) {
    process.stderr.write(`${NAME}: ${e.message}\n(see --help)\n`);
    process.exit(2);
  }
  if (parsed.values.help) {
    process.stdout.write(`${help}\n\n${COMMON_HELP}\n`);
    process.exit(0);
  }
  return parsed.values;
}

/** A non-negative integer option, or exit 2 naming it. */
export function int(values, name, { min = 0 } = {}) {
  const v = values[name];
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`${NAME}: --${name} must be an integer >= ${min}, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
}

/** Fails unless this Node has a global WebSocket. */
export function requireWebSocket() {
  if (typeof WebSocket !== 'function') {
    fatal('no global WebSocket: run with `node --experimental-websocket` (Node 20/21) or use Node >= 22');
  }
}

/** Fails the run when it is still going after `secs` (the hard bound). */
export function watchdog(secs, what = 'the run') {
  const t = setTimeout(() => fatal(`${what} did not finish within ${secs} s (--time-limit)`), secs * 1000);
  t.unref();
}

/** Fails unless this process may open `n` more files (connections). */
export function requireOpenFiles(n) {
  let soft = Infinity;
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m && m[1] !== 'unlimited') soft = Number(m[1]);
  } catch { /* not Linux: let the connects fail loudly instead */ }
  if (soft < n) fatal(`${n} connections need ${n} open files, but this shell's limit is ${soft}: raise it first (ulimit -n ${Math.min(n * 2, 20000)})`);
}

/** A TCP port the kernel just said was free (redis-server cannot take port 0). */
export async function freePort() {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** A throwaway redis-server without persistence. Returns its URI. */
export async function startRedis() {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    let child;
    try {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
        '--appendonly', 'no', '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      fatal(`cannot start redis-server: ${e.message}`);
    }
    children.add(child);
    const log = { name: `redis-server :${port}`, text: '' };
    logs.push(log);
    const ok = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), 10_000);
      child.stdout.on('data', (d) => {
        log.text = (log.text + d).slice(-8192);
        if (log.text.includes('Ready to accept connections')) { clearTimeout(timer); resolve('ok'); }
      });
      child.on('error', (e) => { clearTimeout(timer); resolve(`error: ${e.message} (is redis-server installed?)`); });
      child.on('exit', () => { clearTimeout(timer); resolve('exited'); });
    });
    if (ok === 'ok') return `redis://127.0.0.1:${port}`;
    children.delete(child);
    logs.pop();
    child.kill('SIGKILL');
    if (attempt < 3 && /Address already in use/.test(log.text)) continue; // lost the port race
    fatal(`redis-server did not start (${ok}):\n${log.text}`);
  }
}

/**
 * Starts a release server (`--host 127.0.0.1 --port 0`) with `env` and
 * `args`; resolves with its ws:// URL once it logged `listening`.
 */
export async function startServer({ bin, args = [], env = {}, name }) {
  const exe = bin ?? join(ROOT, 'target/release/websocket-app');
  if (!existsSync(exe)) fatal(`${exe} not found: build it first (cargo build --release --bins)`);
  const clean = { ...process.env };
  for (const k of ['JWT_SECRET', 'JWT_PUBLIC_KEY_FILE', 'REDIS_URI', 'AUTH_MODE', 'API_KEYS', 'CHANNELS_CONFIG',
    'WSS_PORT', 'WSS_HOST', 'SERVER_ID', 'INBOX_SIZE']) delete clean[k];
  const child = spawn(exe, ['--host', '127.0.0.1', '--port', '0', '--dashboard', 'off', ...args], {
    env: { ...clean, RUST_LOG: 'warn,websocket_app::server=info', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const log = { name, text: '' };
  logs.push(log);
  const collect = (d) => { log.text = (log.text + d).slice(-16384); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const addr = await new Promise((resolve) => {
    const timer = setTimeout(() => fatal(`${name} logged no "listening" line within 15 s`), 15_000);
    const check = () => {
      const m = /listening.*addr=(\S+)/.exec(log.text);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.on('error', (e) => fatal(`cannot start ${exe}: ${e.message}`));
  });
  child.on('exit', (code, sig) => {
    if (!child.stopping) fatal(`${name} exited during the benchmark (code ${code}, signal ${sig})`);
  });
  return { url: `ws://${addr}/ws`, http: `http://${addr}`, child };
}

/**
 * What the options say about servers: `--spawn` starts them (and Redis)
 * with `channelsToml`; `--url` uses given ones. Returns `{ urls, https,
 * stop(), describe }`.
 */
export async function servers(values, { channelsToml, maxConnections, env = {} }) {
  const instances = int(values, 'instances', { min: 1 });
  if (values['print-config']) {
    process.stdout.write(channelsToml);
    process.exit(0);
  }
  if (values.spawn && values.url) fatal('give either --spawn or --url, not both');
  if (!values.spawn) {
    if (!values.url?.length) fatal('no server: give --spawn, or --url ws://127.0.0.1:PORT/ws (see --help)');
    if (values.redis) fatal('--redis only applies with --spawn');
    return {
      urls: values.url,
      https: values.url.map((u) => u.replace(/^ws/, 'http').replace(/\/ws$/, '')),
      stop: async () => {},
      describe: `given server(s) ${values.url.join(' ')}`,
      mode: `given (${values.url.length} URL${values.url.length > 1 ? 's' : ''})`,
    };
  }
  if (instances > 1 && !values.redis) fatal('--instances > 1 needs --redis');
  const shards = int(values, 'shards', { min: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'wsapp-bench-'));
  const config = join(dir, 'channels.toml');
  writeFileSync(config, channelsToml);
  const redisUri = values.redis ? await startRedis() : undefined;
  const started = [];
  for (let i = 0; i < instances; i++) {
    const name = `server ${String.fromCharCode(97 + i)}`;
    started.push(await startServer({
      bin: values.bin,
      name,
      args: ['--shards', String(shards), '--rate-limit', '0', '--max-connections', String(maxConnections)],
      env: {
        CHANNELS_CONFIG: config,
        RATE_LIMIT_BYTES_PER_SEC: '0',
        ...(redisUri ? { REDIS_URI: redisUri, SERVER_ID: `bench-${String.fromCharCode(97 + i)}` } : {}),
        ...env,
      },
    }));
  }
  return {
    urls: started.map((s) => s.url),
    https: started.map((s) => s.http),
    pids: started.map((s) => s.child.pid),
    stop: async () => {
      for (const s of started) {
        s.child.stopping = true;
        s.child.kill('SIGKILL');
      }
    },
    mode: `${redisUri ? 'Redis' : 'embedded'}, ${instances} × ${shards} shard${shards > 1 ? 's' : ''}`,
    describe: `${instances} spawned instance(s), --shards ${shards}, ${redisUri ? `Redis ${redisUri}` : 'embedded (no Redis)'}`,
  };
}

/** Sums the Prometheus samples whose line starts with `metric` on every instance. */
export async function metric(https, metricName) {
  let sum = 0;
  for (const h of https) {
    const text = await (await fetch(`${h}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line.startsWith(metricName) && (line[metricName.length] === ' ' || line[metricName.length] === '{')) {
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return sum;
}

/** Types that answer a request (carry its `id`); `publication` has an `id` of its own. */
const ANSWERS = new Set(['subscribed', 'unsubscribed', 'ack', 'error', 'history', 'presence', 'presence_stats']);

/**
 * One WebSocket connection speaking JSON frames. `raw(data)` sees every
 * frame first and may return true to consume it unparsed (cheap counting);
 * `onEvent(msg)` gets parsed frames that answer no request. An unexpected
 * close is fatal unless `onClose` is given.
 */
export class Client {
  constructor(url, userId, { raw, onEvent, onClose } = {}) {
    this.url = url;
    this.userId = userId;
    this.raw = raw;
    this.onEvent = onEvent;
    this.onClose = onClose;
    this.pending = new Map();
    this.nextId = 1;
    this.closing = false;
    this.lastSent = 0;
    this.welcome = null;
  }

  /** Connects; resolves at `welcome`, rejects if the connection fails first. */
  open() {
    const u = new URL(this.url);
    u.searchParams.set('userId', this.userId);
    this.ws = new WebSocket(u.href);
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve; });
    return new Promise((resolve, reject) => {
      this.ws.onmessage = (ev) => {
        const data = ev.data;
        if (this.welcome === null) {
          const m = JSON.parse(data);
          if (m.type !== 'welcome') return reject(new Error(`${this.userId}: first frame is ${m.type}, not welcome`));
          this.welcome = m;
          this.lastSent = performance.now();
          return resolve(this);
        }
        if (this.raw && this.raw(data)) return;
        const m = JSON.parse(data);
        if (m.id !== undefined && ANSWERS.has(m.type)) {
          const p = this.pending.get(m.id);
          if (p) {
            this.pending.delete(m.id);
            if (m.type === 'error') p.reject(new Error(`${this.userId}: error ${m.code}: ${m.message}`));
            else p.resolve(m);
            return;
          }
        }
        if (this.onEvent) this.onEvent(m);
      };
      this.ws.onclose = (ev) => {
        const why = `${this.userId} on ${this.url}: connection closed, code ${ev.code}${ev.reason ? ` "${ev.reason}"` : ''}`;
        for (const p of this.pending.values()) p.reject(new Error(why));
        this.pending.clear();
        this.resolveClosed(ev);
        if (this.welcome === null) return reject(new Error(`${why} before welcome${ev.code === 1006 ? ' (refused? MAX_CONNECTIONS, open-file limit, server down)' : ''}`));
        if (this.closing) return;
        if (this.onClose) this.onClose(why, ev);
        else fatal(`unexpected close: ${why}`);
      };
    });
  }

  /** Sends `msg` (an object) as one text frame. */
  send(msg) {
    this.ws.send(JSON.stringify(msg));
    this.lastSent = performance.now();
  }

  /** Sends `msg` with a fresh `id`; resolves with its answer, rejects on `error`. */
  request(msg) {
    const id = `q${this.nextId++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send({ ...msg, id });
    });
  }

  /** Closes with 1000 and waits (bounded) for the close to complete. */
  async close() {
    this.closing = true;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    await this.closed;
  }
}

/**
 * Opens `n` clients, at most `concurrency` handshakes in flight, client i
 * to `urls[i % urls.length]` as user `userId(i)`; fails on any error.
 * Returns `{ clients, ms }`.
 */
export async function openMany(urls, n, { concurrency, userId, options = () => ({}) }) {
  const clients = new Array(n);
  let next = 0;
  const t0 = performance.now();
  async function lane() {
    while (next < n) {
      const i = next++;
      const c = new Client(urls[i % urls.length], userId(i), options(i));
      try {
        clients[i] = await c.open();
      } catch (e) {
        fatal(`connect ${i + 1} of ${n}: ${e.message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
  return { clients, ms: performance.now() - t0 };
}

/** Closes every client (1000), at most `within` ms in all. */
export async function closeAll(clients, within = 30_000) {
  const done = Promise.all(clients.filter(Boolean).map((c) => c.close()));
  await bounded(done, within, `closing ${clients.length} connections`);
}

/** `promise`, or a fatal failure naming `what` after `ms`. */
export function bounded(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer)).catch((e) => fatal(e.message));
}

/**
 * Sends `heartbeat` on every open client quiet for a third of its
 * `heartbeatIntervalMs`, so long runs are not closed with 4000. Returns a
 * stop function.
 */
export function heartbeats(getClients) {
  const t = setInterval(() => {
    const now = performance.now();
    for (const c of getClients()) {
      if (!c || !c.welcome || c.closing || c.ws.readyState !== WebSocket.OPEN) continue;
      if (now - c.lastSent > c.welcome.heartbeatIntervalMs / 3) c.send({ type: 'heartbeat' });
    }
  }, 2000);
  t.unref();
  return () => clearInterval(t);
}

/** p50/p99/p99.9/max of `xs` (ms), formatted. */
export function percentiles(xs) {
  if (xs.length === 0) return { n: 0, p50: NaN, p99: NaN, p999: NaN, max: NaN, text: 'no samples' };
  const s = Float64Array.from(xs).sort();
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  const r = { n: s.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: s[s.length - 1] };
  r.text = `p50 ${ms(r.p50)}  p99 ${ms(r.p99)}  p99.9 ${ms(r.p999)}  max ${ms(r.max)}  (n = ${r.n})`;
  return r;
}

/** `x` ms as text. */
export function ms(x) {
  return x >= 100 ? `${x.toFixed(0)} ms` : `${x.toFixed(2)} ms`;
}

/** A short id for this run, so channels are fresh on a reused server or Redis. */
export const RUN = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;

/** Waits until `cond()` holds, polling every 20 ms; fails after `ms`. */
export async function until(cond, ms, what) {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) fatal(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The channels config all three benchmarks use (also `--print-config`). */
export function channelsToml({ joinLeavePerSec = 50 } = {}) {
  return `# Channels config of the benchmarks in tuning/bench/ (any of them prints it
# with --print-config). Insecure mode allows every channel; public is set so
# the same file works with JWT_SECRET too.

# History on: recovery-storm.mjs and history-cost.mjs (mode "on").
[namespaces.bh]
public = true
client_publish = true
history_size = 1000
history_ttl_secs = 600

# History off: history-cost.mjs (mode "off").
[namespaces.bn]
public = true
client_publish = true

# Presence with join/leave events: presence.mjs.
[namespaces.bp]
public = true
presence = true
join_leave = true
join_leave_per_sec = ${joinLeavePerSec}
`;
}
