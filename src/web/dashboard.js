// Live dashboard: polls GET /stats every second, turns totals into rates and
// draws small canvas charts. No libraries.
(function () {
  'use strict';
  var POLL_MS = 1000, KEEP = 120, TIMEOUT_MS = 3000;
  var $ = function (id) { return document.getElementById(id); };

  // One series per chart: values (null = gap), newest last.
  var series = { active: [], inRate: [], deliveredRate: [], p50: [], p99: [], unexpectedRate: [], bytesIn: [], bytesOut: [] };
  var prev = null; // the previous sample's time, server id and counters
  var samples = 0;

  function push(name, v) {
    var s = series[name];
    s.push(v);
    if (s.length > KEEP) s.shift();
  }

  function fmt(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + 'M';
    if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    return Number(v).toFixed(digits || 0);
  }

  function fmtBytes(v) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    if (v >= 1048576) return (v / 1048576).toFixed(1) + ' MiB';
    if (v >= 1024) return (v / 1024).toFixed(1) + ' KiB';
    return v.toFixed(0) + ' B';
  }

  // Per-second rate between two totals; null across a restart (totals fell).
  function rate(cur, old, dt) {
    if (old === undefined || old === null || cur < old || dt <= 0) return null;
    return (cur - old) / dt;
  }

  function setStatus(state, text) {
    var el = $('stats-status');
    el.dataset.state = state;
    el.textContent = text;
  }

  function ingest(s, t) {
    var c = s.counters || {};
    var lat = s.deliveryLatencyMs || {};
    var same = prev && prev.serverId === s.serverId;
    var dt = prev ? (t - prev.t) / 1000 : 0;
    var inRate = same ? rate(c.messagesTotal, prev.messagesTotal, dt) : null;
    var delRate = same ? rate(c.messagesDelivered, prev.messagesDelivered, dt) : null;
    var unexpRate = same ? rate(c.unexpectedDisconnects, prev.unexpectedDisconnects, dt) : null;
    var bytesIn = same ? rate(c.bytesIn, prev.bytesIn, dt) : null;
    var bytesOut = same ? rate(c.bytesOut, prev.bytesOut, dt) : null;
    prev = {
      t: t, serverId: s.serverId, messagesTotal: c.messagesTotal, messagesDelivered: c.messagesDelivered,
      unexpectedDisconnects: c.unexpectedDisconnects, bytesIn: c.bytesIn, bytesOut: c.bytesOut
    };
    push('active', s.activeConnections);
    push('inRate', inRate);
    push('deliveredRate', delRate);
    push('p50', lat.p50);
    push('p99', lat.p99);
    push('unexpectedRate', unexpRate);
    push('bytesIn', bytesIn);
    push('bytesOut', bytesOut);
    samples++;

    $('stats-server').textContent = s.serverId;
    $('stat-active').textContent = fmt(s.activeConnections);
    $('stat-in').textContent = fmt(inRate, inRate !== null && inRate < 10 ? 1 : 0);
    $('stat-delivered').textContent = fmt(delRate, delRate !== null && delRate < 10 ? 1 : 0);
    $('stat-p50').textContent = fmt(lat.p50, 2);
    $('stat-p99').textContent = fmt(lat.p99, 2);
    $('stat-unexpected').textContent = fmt(c.unexpectedDisconnects);
    $('stat-bytes-in').textContent = fmtBytes(bytesIn);
    $('stat-bytes-out').textContent = fmtBytes(bytesOut);
    document.getElementById('dashboard').dataset.samples = String(samples);
    drawAll();
  }

  var colors = {};
  function readColors() {
    var cs = getComputedStyle(document.documentElement);
    ['--accent', '--accent2', '--muted', '--line', '--bad', '--fg'].forEach(function (k) {
      colors[k] = cs.getPropertyValue(k).trim() || '#888';
    });
  }

  // Draws one or more series (same scale) into a canvas, newest at the right.
  function chart(canvasId, lines, opts) {
    var cv = $(canvasId);
    if (!cv) return;
    var dpr = window.devicePixelRatio || 1;
    var w = cv.clientWidth, h = cv.clientHeight;
    if (!w || !h) return;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
    }
    var g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    var max = opts.minMax || 1;
    lines.forEach(function (l) {
      l.data.forEach(function (v) { if (v !== null && v !== undefined && v > max) max = v; });
    });
    max = niceCeil(max);
    var top = 12, bottom = h - 2, left = 0, right = w - 1;
    var y = function (v) { return bottom - (v / max) * (bottom - top); };
    // The x axis spans at least 30 samples, growing to KEEP; newest at the right.
    var n = lines[0].data.length, span = Math.max(30, n);
    var x = function (i) { return left + (i + span - n) * (right - left) / (span - 1); };
    // Grid: top (max) and middle lines, with the scale's top value.
    g.strokeStyle = colors['--line'];
    g.lineWidth = 1;
    g.beginPath();
    [top, (top + bottom) / 2, bottom].forEach(function (yy) {
      g.moveTo(left, Math.round(yy) + 0.5); g.lineTo(right, Math.round(yy) + 0.5);
    });
    g.stroke();
    g.fillStyle = colors['--muted'];
    g.font = '10px system-ui, sans-serif';
    g.textBaseline = 'top';
    g.textAlign = 'right';
    g.fillText(opts.bytes ? fmtBytes(max) : fmt(max, max < 10 && max % 1 ? 1 : 0), right, 0);
    lines.forEach(function (l) {
      var d = l.data, started = false, last = null;
      g.strokeStyle = l.color;
      g.lineWidth = 1.6;
      g.lineJoin = 'round';
      g.beginPath();
      for (var i = 0; i < d.length; i++) {
        if (d[i] === null || d[i] === undefined) { started = false; continue; }
        var px = x(i), py = y(d[i]);
        if (started) g.lineTo(px, py); else g.moveTo(px, py);
        started = true;
        last = [px, py];
      }
      g.stroke();
      if (l.fill && d.length > 1) {
        g.globalAlpha = 0.12;
        g.fillStyle = l.color;
        g.beginPath();
        var open = false, firstX = 0, prevX = 0;
        for (var j = 0; j < d.length; j++) {
          if (d[j] === null || d[j] === undefined) {
            if (open) { g.lineTo(prevX, bottom); g.lineTo(firstX, bottom); g.closePath(); open = false; }
            continue;
          }
          var qx = x(j), qy = y(d[j]);
          if (!open) { g.moveTo(qx, bottom); g.lineTo(qx, qy); firstX = qx; open = true; } else g.lineTo(qx, qy);
          prevX = qx;
        }
        if (open) { g.lineTo(prevX, bottom); g.lineTo(firstX, bottom); g.closePath(); }
        g.fill();
        g.globalAlpha = 1;
      }
      if (last) {
        g.fillStyle = l.color;
        g.beginPath();
        g.arc(last[0], last[1], 2.5, 0, Math.PI * 2);
        g.fill();
      }
    });
  }

  function niceCeil(v) {
    if (v <= 0) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function drawAll() {
    chart('chart-active', [{ data: series.active, color: colors['--accent'], fill: true }], { minMax: 1 });
    chart('chart-in', [{ data: series.inRate, color: colors['--accent'], fill: true }], { minMax: 1 });
    chart('chart-delivered', [{ data: series.deliveredRate, color: colors['--accent'], fill: true }], { minMax: 1 });
    chart('chart-latency', [
      { data: series.p99, color: colors['--accent2'], fill: false },
      { data: series.p50, color: colors['--accent'], fill: true }
    ], { minMax: 1 });
    chart('chart-unexpected', [{ data: series.unexpectedRate, color: colors['--bad'], fill: true }], { minMax: 1 });
    chart('chart-bytes', [
      { data: series.bytesOut, color: colors['--accent2'], fill: false },
      { data: series.bytesIn, color: colors['--accent'], fill: true }
    ], { minMax: 1024, bytes: true });
  }

  var failures = 0;
  function poll() {
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, TIMEOUT_MS) : null;
    fetch('/stats', { cache: 'no-store', signal: ctl ? ctl.signal : undefined })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (s) {
        failures = 0;
        ingest(s, performance.now());
        setStatus('live', 'live · ' + new Date().toLocaleTimeString());
      })
      .catch(function (e) {
        failures++;
        // A gap in every chart rather than a misleading line across the outage.
        prev = null;
        Object.keys(series).forEach(function (k) { push(k, null); });
        drawAll();
        setStatus('down', '/stats unavailable (' + (e && e.name === 'AbortError' ? 'timeout' : (e && e.message) || e) + ')');
      })
      .then(function () {
        if (timer) clearTimeout(timer);
        setTimeout(poll, failures > 5 ? 5000 : POLL_MS);
      });
  }

  readColors();
  if (window.matchMedia) {
    var mq = window.matchMedia('(prefers-color-scheme: dark)');
    var onScheme = function () { readColors(); drawAll(); };
    if (mq.addEventListener) mq.addEventListener('change', onScheme);
  }
  window.addEventListener('resize', drawAll);
  poll();
})();
