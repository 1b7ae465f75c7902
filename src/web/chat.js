// Chat demo: one WebSocket to this server's /ws, as a user id (insecure mode)
// or with a token; heartbeats, acks, errors, and reconnects with backoff.
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var BACKOFF_BASE_MS = 500, BACKOFF_MAX_MS = 30000, MAX_LOG = 400;

  var CLOSE_CODES = {
    1000: 'normal closure',
    1001: 'server shutting down',
    1002: 'protocol error',
    1003: 'binary frame refused',
    1005: 'no close code given',
    1006: 'connection lost (no close frame), or the upgrade was refused',
    1007: 'invalid UTF-8',
    1008: 'policy violation',
    1009: 'message too big',
    1010: 'extension required',
    1011: 'internal server error',
    1012: 'server restarting, reconnect',
    1013: 'try again later',
    1015: 'TLS handshake failed',
    4000: 'heartbeat timeout',
    4008: 'slow consumer (send queue full)',
    4029: 'rate limited'
  };
  function closeText(code) {
    return CLOSE_CODES[code] || (code >= 4000 ? 'application close' : 'unknown close code');
  }

  var ws = null;          // the current socket
  var wanted = false;     // the user wants to be connected
  var attempts = 0;       // failed attempts since the last welcome
  var retryTimer = null, countdown = null, hbTimer = null;
  var me = null;          // the welcome
  var seq = 0;            // ids for our messages
  var pending = {};       // id -> log entry of a message awaiting its ack
  var hb = { sent: 0, acked: 0, lastSentAt: 0, rtt: null };

  function now() { return new Date().toTimeString().slice(0, 8); }

  // Appends a log line; every text goes through textContent (payloads are untrusted).
  function log(kind, text, meta, cls) {
    var list = $('log');
    var li = document.createElement('li');
    li.className = 'entry ' + (cls || kind);
    li.dataset.type = kind;
    var t = document.createElement('span'); t.className = 'time'; t.textContent = now();
    var k = document.createElement('span'); k.className = 'kind'; k.textContent = kind.replace('_', ' ');
    var b = document.createElement('span'); b.className = 'body'; b.textContent = text;
    if (meta) {
      var m = document.createElement('span'); m.className = 'meta'; m.textContent = meta;
      b.appendChild(m);
    }
    li.appendChild(t); li.appendChild(k); li.appendChild(b);
    var stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.appendChild(li);
    while (list.children.length > MAX_LOG) list.removeChild(list.firstChild);
    if (stick) list.scrollTop = list.scrollHeight;
    return li;
  }

  function show(payload) {
    return typeof payload === 'string' ? payload : JSON.stringify(payload);
  }

  function setState(state, text) {
    var el = $('conn-state');
    el.dataset.state = state;
    el.textContent = text;
    var open = state === 'open';
    $('send-dm').disabled = !open;
    $('send-broadcast').disabled = !open;
    $('disconnect').disabled = !wanted;
    $('connect').textContent = wanted ? 'Reconnect' : 'Connect';
  }

  function wsUrl() {
    var token = $('token').value.trim();
    var user = $('user-id').value.trim();
    var base = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    if (token) return { url: base + '?token=' + encodeURIComponent(token), shown: base + '?token=…' };
    return { url: base + '?userId=' + encodeURIComponent(user), shown: base + '?userId=' + encodeURIComponent(user) };
  }

  function connect() {
    clearTimeout(retryTimer); clearInterval(countdown);
    if (ws) { var old = ws; ws = null; old.onclose = null; try { old.close(1000); } catch (e) {} }
    stopHeartbeat();
    var target = wsUrl();
    if (target.url.slice(-8) === '?userId=') {
      log('info', 'Enter a user id (insecure mode) or paste a token.', null, 'sys');
      wanted = false; setState('idle', 'not connected');
      return;
    }
    wanted = true;
    var welcomed = false;
    setState('connecting', attempts ? 'reconnecting…' : 'connecting…');
    log('connect', target.shown, attempts ? 'attempt ' + (attempts + 1) : null, 'sys');
    var sock;
    try { sock = new WebSocket(target.url); } catch (e) {
      log('error', String(e && e.message || e), null, 'error');
      return scheduleRetry();
    }
    ws = sock;
    sock.onmessage = function (ev) {
      if (sock !== ws) return;
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return log('error', 'not JSON from server: ' + ev.data, null, 'error'); }
      if (m.type === 'welcome') { welcomed = true; onWelcome(m); } else onMessage(m);
    };
    sock.onclose = function (ev) {
      if (sock !== ws) return;
      ws = null;
      stopHeartbeat();
      me = null;
      showHeartbeat();
      var words = closeText(ev.code);
      if (!welcomed && ev.code === 1006) words = 'refused or unreachable: check the user id or token (the server answers 400/401/403/503 before the upgrade)';
      log('close', ev.code + ' ' + words, ev.reason ? '"' + ev.reason + '"' : null, 'close');
      Object.keys(pending).forEach(function (id) { ack(pending[id], 'unknown', 'closed before ack'); });
      pending = {};
      if (wanted) scheduleRetry(ev.code); else setState('idle', 'closed ' + ev.code);
    };
  }

  function scheduleRetry(code) {
    // Exponential backoff with jitter; a drain (1012) retries at once-ish.
    var exp = code === 1012 ? 0 : Math.min(attempts, 10);
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, exp));
    delay = Math.round(delay * (0.5 + Math.random() * 0.5));
    attempts++;
    var due = Date.now() + delay;
    var tick = function () {
      setState('reconnecting', 'reconnecting in ' + Math.max(0, (due - Date.now()) / 1000).toFixed(1) + ' s');
    };
    tick();
    countdown = setInterval(tick, 100);
    log('retry', 'reconnecting in ' + (delay / 1000).toFixed(1) + ' s', 'attempt ' + (attempts + 1), 'sys');
    retryTimer = setTimeout(function () { clearInterval(countdown); connect(); }, delay);
  }

  function onWelcome(m) {
    var again = attempts > 0 || me !== null;
    attempts = 0;
    me = m;
    $('me-user').textContent = m.userId;
    $('me-conn').textContent = m.connectionId;
    $('me-conn').title = m.connectionId;
    $('me-server').textContent = m.serverId;
    setState('open', 'open');
    log('welcome', (again ? 'reconnected' : 'connected') + ' as ' + m.userId,
      'connection ' + m.connectionId + ' on ' + m.serverId + ', heartbeat every ' +
      (m.heartbeatIntervalMs / 1000) + ' s, max ' + m.maxMessageBytes + ' B', 'welcome');
    startHeartbeat(m.heartbeatIntervalMs);
  }

  function startHeartbeat(ms) {
    stopHeartbeat();
    var every = Math.max(1000, Number(ms) || 30000);
    hbTimer = setInterval(function () {
      if (!send({ type: 'heartbeat' })) return;
      hb.sent++;
      hb.lastSentAt = performance.now();
      showHeartbeat();
    }, every);
    showHeartbeat();
  }
  function stopHeartbeat() { clearInterval(hbTimer); hbTimer = null; }
  function showHeartbeat() {
    var el = $('hb');
    el.textContent = (me ? 'every ' + me.heartbeatIntervalMs / 1000 + ' s' : 'stopped') +
      (hb.rtt !== null ? ' · rtt ' + hb.rtt.toFixed(1) + ' ms' : '');
    el.title = hb.sent + ' sent, ' + hb.acked + ' acknowledged';
    el.dataset.sent = String(hb.sent);
    el.dataset.acked = String(hb.acked);
  }

  function ack(entry, status, detail) {
    entry.dataset.ack = status;
    var badge = entry.querySelector('.ack');
    if (!badge) {
      badge = document.createElement('span');
      badge.className = 'ack';
      entry.querySelector('.body').appendChild(badge);
    }
    badge.textContent = status + (detail ? ' · ' + detail : '');
  }

  function onMessage(m) {
    switch (m.type) {
      case 'chat_message':
        log('chat_message', show(m.payload), 'from ' + m.senderId + ' · ' + m.timestamp);
        break;
      case 'broadcast':
        log('broadcast', show(m.payload), 'from ' + m.senderId + ' · ' + m.timestamp);
        break;
      case 'heartbeat_ack':
        hb.acked++;
        if (hb.lastSentAt) hb.rtt = performance.now() - hb.lastSentAt;
        showHeartbeat();
        break;
      case 'ack': {
        var e = pending[m.id];
        var detail = m.status === 'delivered' ? m.connections + (m.connections === 1 ? ' connection' : ' connections') : '';
        if (e) { delete pending[m.id]; ack(e, m.status, detail); }
        else log('ack', m.status + (detail ? ' · ' + detail : ''), 'id ' + m.id);
        break;
      }
      case 'error': {
        var p = m.id !== undefined ? pending[m.id] : null;
        if (p) { delete pending[m.id]; ack(p, 'error', m.code); p.dataset.ack = 'error'; }
        log('error', m.code + ': ' + m.message, m.id !== undefined ? 'id ' + m.id : null, 'error');
        break;
      }
      default:
        log(String(m.type), JSON.stringify(m), null, 'other');
    }
  }

  function send(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  function nextId() { seq++; return 'm' + seq + '-' + Date.now().toString(36); }

  function sendDirect() {
    var to = $('to').value.trim(), text = $('text').value;
    if (!to) { $('to').focus(); return log('info', 'Enter a receiver user id, or use Broadcast.', null, 'sys'); }
    if (!text) return $('text').focus();
    var id = nextId();
    if (!send({ type: 'chat_message', id: id, receiverID: to, payload: text })) return;
    var e = log('sent', text, 'to ' + to, 'sent');
    e.dataset.id = id;
    ack(e, 'sending', '');
    pending[id] = e;
    $('text').value = '';
  }

  function sendBroadcast() {
    var text = $('text').value;
    if (!text) return $('text').focus();
    var id = nextId();
    if (!send({ type: 'broadcast', id: id, payload: text })) return;
    var e = log('sent', text, 'to everyone', 'sent');
    e.dataset.id = id;
    e.dataset.broadcast = 'true';
    ack(e, 'sending', '');
    pending[id] = e;
    $('text').value = '';
  }

  $('connect-form').addEventListener('submit', function (ev) { ev.preventDefault(); attempts = 0; connect(); });
  $('disconnect').addEventListener('click', function () {
    wanted = false;
    clearTimeout(retryTimer); clearInterval(countdown);
    if (ws) ws.close(1000, 'bye'); else setState('idle', 'not connected');
    log('disconnect', 'closing (1000)', null, 'sys');
  });
  $('compose').addEventListener('submit', function (ev) { ev.preventDefault(); sendDirect(); });
  $('send-broadcast').addEventListener('click', sendBroadcast);
  window.addEventListener('pagehide', function () { if (ws) ws.close(1001); });

  // Remembers the last user id (never the token).
  try {
    var saved = localStorage.getItem('websocket-app.userId');
    if (saved && !$('user-id').value) $('user-id').value = saved;
    $('user-id').addEventListener('change', function () {
      localStorage.setItem('websocket-app.userId', $('user-id').value.trim());
    });
  } catch (e) { /* storage may be disabled */ }

  setState('idle', 'not connected');
  // For tests and the console: the close-code words, and raw frames.
  window.wsDemo = {
    closeText: closeText,
    sendRaw: function (text) { if (!ws || ws.readyState !== WebSocket.OPEN) return false; ws.send(text); return true; }
  };
})();
