// Chat demo, on the client library (/client.js): connects as a user id
// (insecure mode) or with a token, sends direct messages and broadcasts and
// shows their acks, heartbeats, errors, closes and reconnects; rooms
// (channels) are rooms.js's `roomsDemo`, handed each new client. The library
// does the protocol; this code only draws it.
import { connect, closeCodeText } from '/client.js';

const $ = (id) => document.getElementById(id);
const MAX_LOG = 400;

let client = null;     // the current library client
let countdown = null;  // the "reconnecting in" ticker
let welcomed = false;  // the current attempt got its welcome

function now() { return new Date().toTimeString().slice(0, 8); }

// Appends a log line; every text goes through textContent (payloads are untrusted).
function log(kind, text, meta, cls) {
  const list = $('log');
  const li = document.createElement('li');
  li.className = 'entry ' + (cls || kind);
  li.dataset.type = kind;
  const part = (className, content) => {
    const el = document.createElement('span');
    el.className = className;
    el.textContent = content;
    return el;
  };
  const body = part('body', text);
  if (meta) body.appendChild(part('meta', meta));
  li.append(part('time', now()), part('kind', kind.replace('_', ' ')), body);
  const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  list.appendChild(li);
  while (list.children.length > MAX_LOG) list.removeChild(list.firstChild);
  if (stick) list.scrollTop = list.scrollHeight;
  return li;
}

const show = (payload) => (typeof payload === 'string' ? payload : JSON.stringify(payload));
const rooms = roomsDemo({ $, log, show });

// The state pill and the buttons. Messages may be sent while reconnecting: the library queues them.
function setState(state, text) {
  const el = $('conn-state');
  el.dataset.state = state;
  el.textContent = text;
  const alive = client !== null && client.state !== 'disconnected';
  $('send-dm').disabled = !alive;
  $('send-broadcast').disabled = !alive;
  $('disconnect').disabled = !alive;
  rooms.setEnabled(alive);
  $('connect').textContent = alive ? 'Reconnect' : 'Connect';
}

function showMe(w) {
  $('me-user').textContent = w ? w.userId : '–';
  $('me-conn').textContent = w ? w.connectionId : '–';
  $('me-conn').title = w ? w.connectionId : '';
  $('me-server').textContent = w ? w.serverId : '–';
}

function showHeartbeat(hb) {
  const el = $('hb');
  const w = client && client.welcome;
  el.textContent = (w ? 'every ' + w.heartbeatIntervalMs / 1000 + ' s' : 'stopped') +
    (hb && hb.rttMs !== null ? ' · rtt ' + hb.rttMs + ' ms' : '');
  if (hb) {
    el.title = hb.sent + ' sent, ' + hb.acked + ' acknowledged';
    el.dataset.sent = String(hb.sent);
    el.dataset.acked = String(hb.acked);
  }
}

// The badge of one of our messages.
function badge(entry, status, detail) {
  entry.dataset.ack = status;
  let b = entry.querySelector('.ack');
  if (!b) {
    b = document.createElement('span');
    b.className = 'ack';
    entry.querySelector('.body').appendChild(b);
  }
  b.textContent = status + (detail ? ' · ' + detail : '');
}

// Shows how a send/broadcast promise settled.
function track(entry, promise) {
  badge(entry, 'sending', '');
  promise.then((ack) => {
    const n = ack.connections;
    badge(entry, ack.status, ack.status === 'delivered' ? n + (n === 1 ? ' connection' : ' connections') : '');
  }, (err) => {
    if (err.frame && err.frame.type === 'error') {
      badge(entry, 'error', err.code);
      log('error', err.code + ': ' + err.message, 'id ' + err.frame.id, 'error');
    } else if (err.code === 'disconnected') {
      badge(entry, 'unknown', 'closed before ack');
    } else {
      badge(entry, err.code, err.frame ? '' : err.message);
    }
  });
}

function target() {
  const token = $('token').value.trim();
  const user = $('user-id').value.trim();
  const base = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  if (token) return { options: { token }, shown: base + '?token=…' };
  return { options: { userId: user }, shown: base + '?userId=' + encodeURIComponent(user) };
}

function start() {
  stop();
  const t = target();
  if (!t.options.token && !t.options.userId) {
    log('info', 'Enter a user id (insecure mode) or paste a token.', null, 'sys');
    return setState('idle', 'not connected');
  }
  log('connect', t.shown, null, 'sys');
  welcomed = false;
  const c = connect('/ws', t.options);
  client = c;
  rooms.attach(c);
  // Every listener ignores a client that was replaced (Reconnect, Disconnect).
  const on = (type, fn) => c.on(type, (data) => { if (c === client) fn(data); });
  on('connected', onConnected);
  on('close', onClose);
  on('disconnected', onDisconnected);
  on('message', (m) => log('chat_message', show(m.payload), 'from ' + (m.senderId || 'the server') + ' · ' + m.timestamp));
  on('broadcast', (m) => log('broadcast', show(m.payload), 'from ' + (m.senderId || 'the server') + ' · ' + m.timestamp));
  on('heartbeat', showHeartbeat);
  on('drop', (d) => log('drop', 'not sent: ' + d.reason.replace('_', ' '), null, 'error'));
  on('error', (e) => log('error', e.code + ': ' + e.message, null, 'error'));
  on('frame', (m) => { if (!KNOWN.has(m.type)) log(String(m.type), JSON.stringify(m), null, 'other'); });
  setState('connecting', 'connecting…');
}

// Types the library turns into events (the rest is logged raw); channel
// frames are drawn by rooms.js.
const KNOWN = new Set(['welcome', 'chat_message', 'server_message', 'broadcast', 'heartbeat_ack', 'ack', 'error',
  'subscribed', 'unsubscribed', 'publication', 'join', 'leave', 'history', 'presence', 'presence_stats']);

function stop() {
  clearInterval(countdown);
  const old = client;
  client = null;
  if (!old) return;
  rooms.detach();
  old.close(1000, 'bye');
}

function onConnected({ welcome: w, reconnected }) {
  clearInterval(countdown);
  welcomed = true;
  showMe(w);
  showHeartbeat(null);
  setState('open', 'open');
  log('welcome', (reconnected ? 'reconnected' : 'connected') + ' as ' + w.userId,
    'connection ' + w.connectionId + ' on ' + w.serverId + ', heartbeat every ' +
    (w.heartbeatIntervalMs / 1000) + ' s, max ' + w.maxMessageBytes + ' B', 'welcome');
}

function closeWords(code) {
  if (!welcomed && code === 1006) {
    return 'refused or unreachable: check the user id or token (the server answers 400/401/403/503 before the upgrade)';
  }
  return closeCodeText(code);
}

function onClose(ev) {
  log('close', ev.code + ' ' + closeWords(ev.code), ev.reason ? '"' + ev.reason + '"' : null, 'close');
  welcomed = false;
  showMe(null);
  showHeartbeat(null);
  if (ev.reconnectInMs === null) return;
  log('retry', 'reconnecting in ' + (ev.reconnectInMs / 1000).toFixed(1) + ' s', null, 'sys');
  const due = Date.now() + ev.reconnectInMs;
  const tick = () => {
    const left = due - Date.now();
    setState('reconnecting', left > 0 ? 'reconnecting in ' + (left / 1000).toFixed(1) + ' s' : 'reconnecting…');
  };
  clearInterval(countdown);
  tick();
  countdown = setInterval(tick, 100);
}

function onDisconnected(ev) {
  clearInterval(countdown);
  log('close', ev.code + ' ' + closeCodeText(ev.code), ev.reason ? '"' + ev.reason + '"' : null, 'close');
  showMe(null);
  showHeartbeat(null);
  setState('idle', 'closed ' + ev.code);
}

function sendDirect() {
  const to = $('to').value.trim();
  const text = $('text').value;
  if (!to) { $('to').focus(); return log('info', 'Enter a receiver user id, or use Broadcast.', null, 'sys'); }
  if (!text) return $('text').focus();
  if (!client) return;
  track(log('sent', text, 'to ' + to, 'sent'), client.send(to, text));
  $('text').value = '';
}

function sendBroadcast() {
  const text = $('text').value;
  if (!text) return $('text').focus();
  if (!client) return;
  const entry = log('sent', text, 'to everyone', 'sent');
  entry.dataset.broadcast = 'true';
  track(entry, client.broadcast(text));
  $('text').value = '';
}

$('connect-form').addEventListener('submit', (ev) => { ev.preventDefault(); start(); });
$('disconnect').addEventListener('click', () => {
  log('disconnect', 'closing (1000)', null, 'sys');
  const c = client;
  if (!c) return;
  c.on('disconnected', onDisconnected); // the last words of the client being dropped
  stop();
  setState('idle', 'not connected');
});
$('compose').addEventListener('submit', (ev) => { ev.preventDefault(); sendDirect(); });
$('send-broadcast').addEventListener('click', sendBroadcast);
window.addEventListener('pagehide', () => { if (client) client.close(1001, 'page closed'); });

// Remembers the last user id (never the token).
try {
  const saved = localStorage.getItem('websocket-app.userId');
  if (saved && !$('user-id').value) $('user-id').value = saved;
  $('user-id').addEventListener('change', () => {
    localStorage.setItem('websocket-app.userId', $('user-id').value.trim());
  });
} catch (e) { /* storage may be disabled */ }

setState('idle', 'not connected');
// For tests and the console: the close-code words, raw frames, the client.
window.wsDemo = {
  closeText: closeCodeText,
  sendRaw: (text) => (client ? client.sendRaw(text) : false),
  get client() { return client; },
};
