// Test support for the client library tests: real server processes on ports
// they pick themselves (port 0), bounded waits with clear failure messages,
// HS256 tokens. The server binary comes from WEBSOCKET_APP_BIN (set by
// tests/client_js.rs to cargo's build of it).
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

/** How long a test waits for anything before failing. */
export const WAIT = 10_000;

const BIN = process.env.WEBSOCKET_APP_BIN;

/** Servers still running: killed if this process exits without stopping them. */
const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A running server: `url` is its /ws URL; killed by `stop()`. */
export class Server {
  constructor(child) {
    this.child = child;
    this.log = '';
    this.addr = null;
    this.exited = once(child, 'exit');
  }

  /**
   * Starts the binary with `args` (plus --host 127.0.0.1 --port 0) and `env`,
   * and waits for its "listening" line.
   */
  static async start(args = [], env = {}) {
    if (!BIN) throw new Error('WEBSOCKET_APP_BIN is not set (run through `cargo test --test client_js`)');
    const clean = { ...process.env };
    for (const k of ['JWT_SECRET', 'REDIS_URI', 'AUTH_MODE', 'DASHBOARD']) delete clean[k];
    const child = spawn(BIN, ['--host', '127.0.0.1', '--port', '0', '--shards', '1', ...args], {
      env: { ...clean, RUST_LOG: 'info', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new Server(child);
    live.add(child);
    child.on('exit', () => live.delete(child));
    const onData = (d) => { server.log += d; };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const line = await server.waitLog('listening');
    server.addr = /addr=(\S+)/.exec(line)[1];
    return server;
  }

  /** The WebSocket URL of this server. */
  get url() {
    return `ws://${this.addr}/ws`;
  }

  /** The HTTP base URL of this server. */
  get http() {
    return `http://${this.addr}`;
  }

  /** Waits (bounded) for a log line containing `needle` and returns it. */
  waitLog(needle, ms = WAIT) {
    const find = () => this.log.split('\n').find((l) => l.includes(needle));
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = find();
        if (line !== undefined) done(resolve, line);
        else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done(reject, new Error(`server exited before logging "${needle}":\n${this.log}`));
        }
      };
      const done = (fn, v) => {
        clearTimeout(timer);
        this.child.stdout.off('data', check);
        this.child.stderr.off('data', check);
        this.child.off('exit', check);
        fn(v);
      };
      const timer = setTimeout(() => done(reject, new Error(`no log line with "${needle}" within ${ms} ms:\n${this.log}`)), ms);
      // Registered after the log collectors, so the new text is in `log` already.
      this.child.stdout.on('data', check);
      this.child.stderr.on('data', check);
      this.child.on('exit', check);
      check();
    });
  }

  /** Sends a signal (SIGUSR1 drains). */
  signal(sig) {
    this.child.kill(sig);
  }

  /**
   * Stops the process (SIGSTOP) and waits until the kernel says it is stopped:
   * from then on it answers nothing (TCP connects still complete) until `thaw()`.
   */
  async freeze() {
    this.child.kill('SIGSTOP');
    await eventually(() => processState(this.child.pid) === 'T', `server ${this.child.pid} to stop`);
  }

  /** Resumes a frozen process. */
  thaw() {
    this.child.kill('SIGCONT');
  }

  /** Kills the process and waits for it to exit. */
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGCONT');
      this.child.kill('SIGKILL');
    }
    await this.exited;
  }
}

/** The state letter of a Linux process (`R`, `S`, `T` for stopped, ...). */
function processState(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/**
 * Waits for `event` on `emitter` (a Client or Subscription) whose data
 * satisfies `pred`; fails with `what` after `ms`.
 */
export function waitEvent(emitter, event, pred = () => true, what = event, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)); }, ms);
    const off = emitter.on(event, (data) => {
      if (!pred(data)) return;
      clearTimeout(timer);
      off();
      resolve(data);
    });
  });
}

/** Collects every `event` of `emitter` into an array. */
export function collect(emitter, event) {
  const items = [];
  emitter.on(event, (d) => items.push(d));
  return items;
}

/** Waits until `cond()` is true, re-checking on each `event` of `emitter`. */
export async function until(emitter, event, cond, what, ms = WAIT) {
  if (cond()) return;
  await waitEvent(emitter, event, () => cond(), what, ms);
}

/** Expects `promise` to reject with a ClientError of `code`; returns the error. */
export async function rejectsWith(promise, code) {
  try {
    const v = await promise;
    throw new Error(`expected a rejection with "${code}", got ${JSON.stringify(v)}`);
  } catch (e) {
    if (e.code !== code) throw new Error(`expected "${code}", got ${e.code}: ${e.message}`);
    return e;
  }
}

/** A secret long enough for the server (at least 32 bytes). */
export const SECRET = 'client-library-test-secret-0123456789abcdef';

/** An HS256 JWT for `sub`, valid for `ttlSecs`, with extra `claims`. */
export function signToken(sub, ttlSecs = 3600, claims = {}, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, iat: now, exp: now + ttlSecs, jti: randomUUID(), ...claims });
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Closes every client and stops every server given, ignoring errors. */
export async function cleanup(clients, servers) {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.stop()));
}

/** The server's `GET /stats` JSON (active connections, counters). */
export async function stats(server) {
  const r = await fetch(`${server.http}/stats`);
  if (r.status !== 200) throw new Error(`GET /stats answered ${r.status}`);
  return r.json();
}

/**
 * Polls `probe` (async, returns a value or undefined) until it gives a value;
 * fails with `what` after `ms`. For server-side state that has no event.
 */
export async function eventually(probe, what, ms = WAIT) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await probe();
    if (last !== undefined && last !== false) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
