// End-to-end test of the demo page (GET /) in headless Chromium.
//
//   node e2e.mjs <base-url> <out-dir> [readonly-base-url]
//
// <base-url> is a running server with DASHBOARD=on, started with a short
// heartbeat interval; [readonly-base-url] one with DASHBOARD=readonly.
// Exits 0 when every step passed; otherwise prints the failing step, each
// page's log, and saves failure screenshots under <out-dir>.
import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [base, outDir, readonlyBase] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node e2e.mjs <base-url> <out-dir> [readonly-base-url]');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];
const WAIT = 10_000;
const OVERALL = 120_000;

const pages = {};       // name -> page
const problems = [];    // page errors and CSP violations: fail the run
const consoleLines = []; // every console message, printed on failure

// A hard bound on the whole run, whatever hangs.
const overall = setTimeout(() => { console.error(`FAIL: the run exceeded ${OVERALL / 1000} s`); process.exit(1); }, OVERALL);

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const r = await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    return r;
  } catch (e) {
    const err = new Error(`step "${name}" failed: ${e && e.message ? e.message.split('\n')[0] : e}`);
    err.cause = e;
    throw err;
  }
}

function watch(name, page) {
  pages[name] = page;
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    consoleLines.push(`${name}: console.${m.type()}: ${m.text()}`);
    if (/Content Security Policy/i.test(m.text())) problems.push(`${name}: CSP violation: ${m.text()}`);
  });
  return page;
}

// The text of every log entry of a page, for failure output.
async function logOf(page) {
  return page.$$eval('#log li', (lis) => lis.map((li) => `  [${li.dataset.type}${li.dataset.ack ? ' ack=' + li.dataset.ack : ''}] ${li.textContent}`).join('\n')).catch(() => '  (no log)');
}

async function text(page, sel) {
  return (await page.textContent(sel, { timeout: WAIT })).trim();
}

// Waits until a log entry of `cls` contains every string of `needles`.
async function waitEntry(page, cls, needles, what) {
  await page.waitForFunction(([cls, needles]) =>
    [...document.querySelectorAll('#log li.' + cls)].some((li) => needles.every((n) => li.textContent.includes(n))),
  [cls, needles], { timeout: WAIT }).catch((e) => {
    throw new Error(`${what}: no "${cls}" entry containing ${JSON.stringify(needles)} within ${WAIT} ms (${e.message.split('\n')[0]})`);
  });
}

async function connectAs(page, user) {
  await page.fill('#user-id', user);
  await page.click('#connect');
  await page.waitForFunction((u) => document.getElementById('conn-state').dataset.state === 'open'
    && document.getElementById('me-user').textContent === u, user, { timeout: WAIT })
    .catch(() => { throw new Error(`${user} did not get a welcome within ${WAIT} ms`); });
  const conn = await text(page, '#me-conn');
  const server = await text(page, '#me-server');
  if (!server || !conn.startsWith(server + '-')) throw new Error(`connection id ${conn} does not start with server id ${server}`);
  return conn;
}

async function sendDm(page, to, msg) {
  await page.fill('#to', to);
  await page.fill('#text', msg);
  await page.click('#send-dm');
}

async function sendBroadcast(page, msg) {
  await page.fill('#text', msg);
  await page.click('#send-broadcast');
}

// Waits for the ack of our own message `msg` and returns its badge text.
async function waitAck(page, msg, status) {
  const handle = await page.waitForFunction(([msg, status]) => {
    const li = [...document.querySelectorAll('#log li.sent')].find((l) => l.querySelector('.body').firstChild.textContent === msg);
    return li && li.dataset.ack === status ? li.querySelector('.ack').textContent : null;
  }, [msg, status], { timeout: WAIT }).catch(async () => {
    const got = await page.$$eval('#log li.sent', (ls) => ls.map((l) => `${l.querySelector('.body').firstChild.textContent} -> ${l.dataset.ack}`));
    throw new Error(`no "${status}" ack for "${msg}" within ${WAIT} ms; sent entries: ${JSON.stringify(got)}`);
  });
  return handle.jsonValue();
}

let browser;
async function main() {
  browser = await step('launch chromium', () => chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30_000 }));
  // One fresh context (own profile storage) per user.
  const newPage = async (name) => {
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
    return watch(name, await ctx.newPage());
  };
  const alice = await newPage('alice');
  const bob = await newPage('bob');

  await step('load the page', async () => {
    for (const p of [alice, bob]) {
      const r = await p.goto(base + '/', { timeout: WAIT });
      if (r.status() !== 200) throw new Error(`GET / answered ${r.status()}`);
      const csp = r.headers()['content-security-policy'] || '';
      if (!csp.includes("default-src 'none'")) throw new Error(`no CSP header: ${csp}`);
      await p.waitForSelector('#chat', { timeout: WAIT });
      await p.waitForSelector('#dashboard', { timeout: WAIT });
    }
  });

  const aliceConn = await step('alice connects', () => connectAs(alice, 'alice'));
  await step('bob connects', () => connectAs(bob, 'bob'));

  await step('alice -> bob direct message is delivered and acked', async () => {
    await sendDm(alice, 'bob', 'hello bob');
    await waitEntry(bob, 'chat_message', ['hello bob', 'from alice'], 'bob receives the message');
    const badge = await waitAck(alice, 'hello bob', 'delivered');
    if (!/1 connection/.test(badge)) throw new Error(`ack badge should count 1 connection: "${badge}"`);
  });

  await step('bob broadcasts, alice receives it, bob sees the ack', async () => {
    await sendBroadcast(bob, 'hi everyone, bob here');
    await waitEntry(alice, 'broadcast', ['hi everyone, bob here', 'from bob'], 'alice receives the broadcast');
    const badge = await waitAck(bob, 'hi everyone, bob here', 'delivered');
    if (!/\d+ connections?/.test(badge)) throw new Error(`broadcast ack badge without a count: "${badge}"`);
  });

  await step('a message to an offline user is acked "offline"', async () => {
    await sendDm(alice, 'carol', 'are you there?');
    await waitAck(alice, 'are you there?', 'offline');
  });

  await step('an invalid receiver id shows the server error', async () => {
    await sendDm(alice, 'not a valid id!', 'nope');
    await waitEntry(alice, 'error', ['bad_user_id'], 'alice sees the error');
    await waitAck(alice, 'nope', 'error');
  });

  await step('heartbeats are sent every heartbeatIntervalMs and acked', async () => {
    for (const p of [alice, bob]) {
      await p.waitForFunction(() => Number(document.getElementById('hb').dataset.acked) >= 2, null, { timeout: WAIT })
        .catch(() => { throw new Error('fewer than 2 heartbeat acks'); });
    }
  });

  await step('some traffic for the charts', async () => {
    for (let i = 1; i <= 6; i++) {
      await sendDm(bob, 'alice', `message ${i} from bob`);
      await sendDm(alice, 'bob', `reply ${i} from alice`);
      if (i % 2 === 0) await sendBroadcast(alice, `broadcast ${i / 2} from alice`);
      await alice.waitForTimeout(400);
    }
    await waitAck(alice, 'reply 6 from alice', 'delivered');
    await waitEntry(alice, 'chat_message', ['message 6 from bob'], 'alice receives bob\'s traffic');
  });

  await step('the dashboard shows live figures and charts', async () => {
    await alice.waitForFunction(() => {
      const n = Number(document.getElementById('stat-active').textContent);
      return n >= 2 && Number(document.getElementById('dashboard').dataset.samples) >= 4
        && document.getElementById('stat-in').textContent !== '–';
    }, null, { timeout: WAIT }).catch(async () => {
      throw new Error(`dashboard: active=${await text(alice, '#stat-active')} in/s=${await text(alice, '#stat-in')} samples=${await alice.getAttribute('#dashboard', 'data-samples')} status=${await text(alice, '#stats-status')}`);
    });
    const server = await text(alice, '#stats-server');
    if (server !== await text(alice, '#me-server')) throw new Error(`dashboard server ${server} differs from the welcome's`);
    const drawn = await alice.evaluate(() => ['chart-active', 'chart-in', 'chart-latency'].map((id) => {
      const c = document.getElementById(id);
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
      return [id, n];
    }));
    for (const [id, n] of drawn) if (n < 50) throw new Error(`${id} looks empty (${n} painted pixels)`);
    const p99 = await text(alice, '#stat-p99');
    if (!/^\d/.test(p99)) throw new Error(`no delivery latency p99 shown: "${p99}"`);
  });

  await step('screenshots', async () => {
    await alice.screenshot({ path: join(outDir, 'alice.png'), fullPage: true });
    await bob.screenshot({ path: join(outDir, 'bob.png'), fullPage: true });
  });

  await step('close codes are shown in words', async () => {
    const words = await alice.evaluate(() => Object.fromEntries([1000, 1001, 1003, 1007, 1009, 1012, 4000, 4008, 4029]
      .map((c) => [c, window.wsDemo.closeText(c)])));
    const want = { 1000: 'normal', 1001: 'shutting down', 1003: 'binary', 1007: 'UTF-8', 1009: 'too big', 1012: 'restarting', 4000: 'heartbeat timeout', 4008: 'slow consumer', 4029: 'rate limited' };
    for (const [code, w] of Object.entries(want)) if (!words[code].includes(w)) throw new Error(`${code} reads "${words[code]}", expected it to mention "${w}"`);
  });

  await step('after a 1009 close the page reconnects with a new connection', async () => {
    const sent = await alice.evaluate(() => window.wsDemo.sendRaw(JSON.stringify({ type: 'broadcast', payload: 'x'.repeat(70000) })));
    if (!sent) throw new Error('could not send the oversized frame');
    await waitEntry(alice, 'close', ['1009', 'message too big'], 'alice sees the close in words');
    await waitEntry(alice, 'sys', ['reconnecting in'], 'alice schedules a reconnect');
    await alice.waitForFunction((old) => document.getElementById('conn-state').dataset.state === 'open'
      && document.getElementById('me-conn').textContent !== old, aliceConn, { timeout: WAIT })
      .catch(() => { throw new Error('alice did not reconnect with a new connection id'); });
    await waitEntry(alice, 'welcome', ['reconnected as alice'], 'alice logs the reconnect');
    await sendDm(bob, 'alice', 'still there?');
    await waitEntry(alice, 'chat_message', ['still there?'], 'alice receives on the new connection');
    await waitAck(bob, 'still there?', 'delivered');
  });

  await step('Disconnect closes with 1000 and does not reconnect', async () => {
    await bob.click('#disconnect');
    await waitEntry(bob, 'close', ['1000 normal closure'], 'bob sees the normal close');
    await bob.waitForTimeout(1500);
    const state = await bob.getAttribute('#conn-state', 'data-state');
    if (state !== 'idle') throw new Error(`bob's state is "${state}" after Disconnect, expected idle`);
    if (!(await bob.isDisabled('#send-dm'))) throw new Error('Send is still enabled after Disconnect');
  });

  await step('no heartbeat timeout (4000) happened', async () => {
    for (const [name, p] of Object.entries(pages)) {
      const closes = await p.$$eval('#log li.close', (ls) => ls.map((l) => l.textContent));
      if (closes.some((c) => c.includes('4000'))) throw new Error(`${name} was closed for missing heartbeats: ${closes}`);
    }
  });

  await step('screenshot after reconnect', () => alice.screenshot({ path: join(outDir, 'alice-reconnected.png'), fullPage: true }));

  if (readonlyBase) {
    await step('DASHBOARD=readonly serves the dashboard without the chat demo', async () => {
      const ro = await newPage('readonly');
      const r = await ro.goto(readonlyBase + '/', { timeout: WAIT });
      if (r.status() !== 200) throw new Error(`GET / answered ${r.status()}`);
      if (await ro.$('#chat')) throw new Error('the chat demo is present');
      if (await ro.evaluate(() => 'wsDemo' in window)) throw new Error('the chat script is present');
      await ro.waitForFunction(() => Number(document.getElementById('dashboard').dataset.samples) >= 2
        && /^\d+$/.test(document.getElementById('stat-active').textContent), null, { timeout: WAIT })
        .catch(() => { throw new Error('the dashboard did not update'); });
      await ro.screenshot({ path: join(outDir, 'readonly.png'), fullPage: true });
    });
  }

  if (problems.length) throw new Error('page problems:\n  ' + problems.join('\n  '));
}

try {
  await main();
  console.log(`PASS: screenshots in ${outDir}`);
  await browser.close();
  clearTimeout(overall);
  process.exit(0);
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  if (e.cause && e.cause.stack) console.error(e.cause.stack.split('\n').slice(0, 6).join('\n'));
  for (const [name, p] of Object.entries(pages)) {
    console.error(`--- ${name}'s log:\n${await logOf(p)}`);
    await p.screenshot({ path: join(outDir, `failure-${name}.png`), fullPage: true }).catch(() => {});
  }
  if (consoleLines.length) console.error('--- console:\n  ' + consoleLines.join('\n  '));
  writeFileSync(join(outDir, 'failure.txt'), `${e.message}\n`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
