// A scripted WebSocket server for the client's own logic: the test decides
// every frame the client receives and when, to produce orderings the real
// server cannot be made to produce on demand (a live publication before the
// `subscribed` answer, a live direct message during the inbox catch-up, ...).
// RFC 6455 just enough for that: the upgrade, unfragmented text frames,
// close, ping. Everything else about the protocol is tested against the real
// server binary.
import { createServer } from 'node:net';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { WAIT } from './support.mjs';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** One accepted connection: `next()` gives the client's frames in order. */
class FakeConn {
  constructor(socket, url) {
    this.socket = socket;
    this.url = new URL(url, 'ws://fake');
    this.inbox = [];
    this.waiters = [];
    this.buf = Buffer.alloc(0);
    this.closed = once(socket, 'close');
  }

  /** Sends `obj` as one JSON text frame. */
  send(obj) {
    this.socket.write(frame(1, Buffer.from(JSON.stringify(obj))));
  }

  /** Closes with `code` and `reason`. */
  close(code, reason = '') {
    const body = Buffer.concat([Buffer.from([code >> 8, code & 255]), Buffer.from(reason)]);
    this.#end(frame(8, body));
  }

  #end(bytes) {
    if (this.socket.writableEnded) return;
    this.socket.end(bytes);
  }

  /** The next frame from the client whose `type` is `type` (others are skipped). */
  async next(type, ms = WAIT) {
    for (;;) {
      const m = await this.#take(ms, type);
      if (m.type === type) return m;
    }
  }

  #take(ms, what) {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${what}" frame from the client within ${ms} ms`)), ms);
      this.waiters.push((m) => { clearTimeout(timer); resolve(m); });
    });
  }

  onData(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (let f; (f = parseFrame(this.buf));) {
      this.buf = this.buf.subarray(f.size);
      if (f.opcode === 1) {
        const m = JSON.parse(f.payload.toString());
        const w = this.waiters.shift();
        if (w) w(m); else this.inbox.push(m);
      } else if (f.opcode === 8) {
        this.#end(frame(8, f.payload.subarray(0, 2)));
      } else if (f.opcode === 9 && !this.socket.writableEnded) {
        this.socket.write(frame(10, f.payload));
      }
    }
  }
}

/** A listening fake server; `accept()` gives the next connection. */
export class FakeServer {
  static async start() {
    const s = new FakeServer();
    await new Promise((r) => s.server.listen(0, '127.0.0.1', r));
    return s;
  }

  constructor() {
    this.pending = [];
    this.waiters = [];
    this.conns = [];
    this.server = createServer((socket) => this.#handshake(socket));
  }

  get url() {
    return `ws://127.0.0.1:${this.server.address().port}/ws`;
  }

  /** The next upgraded connection. */
  accept(ms = WAIT) {
    if (this.pending.length) return Promise.resolve(this.pending.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection within ${ms} ms`)), ms);
      this.waiters.push((c) => { clearTimeout(timer); resolve(c); });
    });
  }

  /** Accepts the next connection and welcomes it with `fields`. */
  async welcome(fields = {}) {
    const conn = await this.accept();
    conn.send({ type: 'welcome', connectionId: `fake-${this.conns.length}`, userId: conn.url.searchParams.get('userId') || 'alice',
      serverId: 'fake', heartbeatIntervalMs: 30000, maxMessageBytes: 65536, ...fields });
    return conn;
  }

  async stop() {
    for (const c of this.conns) c.socket.destroy();
    await new Promise((r) => this.server.close(r));
  }

  #handshake(socket) {
    let head = '';
    const onHead = (chunk) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onHead);
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)[1];
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      const conn = new FakeConn(socket, head.split(' ')[1]);
      this.conns.push(conn);
      socket.on('data', (d) => conn.onData(d));
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      if (rest.length) conn.onData(rest);
      const w = this.waiters.shift();
      if (w) w(conn); else this.pending.push(conn);
    };
    socket.on('data', onHead);
    socket.on('error', () => {});
  }
}

/** An unmasked server frame. */
function frame(opcode, payload) {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len])
    : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 255])
      : Buffer.concat([Buffer.from([0x80 | opcode, 127]), bigLength(len)]);
  return Buffer.concat([head, payload]);
}

function bigLength(len) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(len));
  return b;
}

/** One complete masked client frame at the start of `buf`, or null. */
function parseFrame(buf) {
  if (buf.length < 2) return null;
  const opcode = buf[0] & 15;
  let len = buf[1] & 127;
  let at = 2;
  if (len === 126) { if (buf.length < 4) return null; len = buf.readUInt16BE(2); at = 4; }
  else if (len === 127) { if (buf.length < 10) return null; len = Number(buf.readBigUInt64BE(2)); at = 10; }
  const masked = (buf[1] & 128) !== 0;
  const maskAt = at;
  if (masked) at += 4;
  if (buf.length < at + len) return null;
  const payload = Buffer.from(buf.subarray(at, at + len));
  if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskAt + (i & 3)];
  return { opcode, payload, size: at + len };
}
