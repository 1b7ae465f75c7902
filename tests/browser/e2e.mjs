// End-to-end test of the demo page (GET /) in headless Chromium.
//
//   node e2e.mjs <base-url> <out-dir> [readonly-base-url] [no-rooms-base-url]
//
// <base-url> is a running server with DASHBOARD=on, started with a short
// heartbeat interval and a CHANNELS_CONFIG with the `room` and `news`
// namespaces (tests/browser.rs); [readonly-base-url] one with
// DASHBOARD=readonly; [no-rooms-base-url] one with DASHBOARD=on and no
// CHANNELS_CONFIG (rooms unavailable).
// Exits 0 when every step passed; otherwise prints the failing step, each
// page's log, and saves failure screenshots under <out-dir>.
import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [base, outDir, readonlyBase, noRoomsBase] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node e2e.mjs <base-url> <out-dir> [readonly-base-url] [no-rooms-base-url]');
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

// ---- rooms (protocol v2 channels) ----

const roomItem = (channel) => `#room-list li[data-channel="${channel}"]`;

async function joinRoom(page, name, channel) {
  await page.fill('#room-name', name);
  await page.click('#join-room');
  await page.waitForSelector(`${roomItem(channel)}[data-state="open"]`, { timeout: WAIT })
    .catch(() => { throw new Error(`${channel} was not joined within ${WAIT} ms`); });
}

async function publishTo(page, channel, msg) {
  await page.click(`${roomItem(channel)} .room-select`);
  await page.fill('#room-text', msg);
  await page.click('#publish');
}

// Every line of a room's view, for failure messages.
async function roomLines(page, channel) {
  return page.$$eval(`.room-messages[data-channel="${channel}"] li`, (lis) => lis.map((li) => `${li.className}: ${li.textContent}`));
}

// Waits until the view of `channel` has a `li.<cls>` from `sender` reading `msg`.
async function waitPublication(page, channel, sender, msg, cls = 'publication') {
  await page.waitForFunction(([channel, sender, msg, cls]) => {
    const list = document.querySelector(`.room-messages[data-channel="${channel}"]`);
    return !!list && [...list.querySelectorAll('li.' + cls)].some((li) =>
      li.querySelector('.sender').textContent === sender && li.querySelector('.text').textContent === msg);
  }, [channel, sender, msg, cls], { timeout: WAIT }).catch(async () => {
    throw new Error(`${channel}: no "${cls}" line "${msg}" from ${sender} within ${WAIT} ms; the room shows ${JSON.stringify(await roomLines(page, channel))}`);
  });
}

async function countPublications(page, channel, msg) {
  return page.$$eval(`.room-messages[data-channel="${channel}"] li.publication .text`,
    (texts, msg) => texts.filter((t) => t.textContent === msg).length, msg);
}

// Waits until `user` is (or is not) in the member list of `channel`.
async function waitMember(page, channel, user, present) {
  await page.waitForFunction(([channel, user, present]) => {
    const view = document.querySelector(`.room-view[data-channel="${channel}"]`);
    return !!view && !view.querySelector('.members-box').hidden
      && !!view.querySelector(`.members li[data-user="${user}"]`) === present;
  }, [channel, user, present], { timeout: WAIT }).catch(async () => {
    const members = await page.$$eval(`.room-view[data-channel="${channel}"] .members li`, (lis) => lis.map((li) => li.dataset.user));
    throw new Error(`${channel}: ${user} ${present ? 'not' : 'still'} among the members ${JSON.stringify(members)} after ${WAIT} ms`);
  });
}

async function waitRoomStatus(page, state, needle) {
  await page.waitForFunction(([state, needle]) => {
    const el = document.getElementById('room-status');
    return el.dataset.state === state && el.textContent.includes(needle);
  }, [state, needle], { timeout: WAIT }).catch(async () => {
    throw new Error(`the publish status is not "${state}" with "${needle}": "${await text(page, '#room-status')}"`);
  });
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

  const LOBBY = 'room:lobby';
  await step('alice and bob join room "lobby" and see each other as members', async () => {
    await joinRoom(alice, 'lobby', LOBBY);
    await waitEntry(alice, 'joined', [LOBBY, 'history kept'], 'alice logs the join');
    await joinRoom(bob, 'lobby', LOBBY);
    await waitMember(alice, LOBBY, 'bob', true);
    await waitMember(bob, LOBBY, 'alice', true);
  });

  await step('a publication reaches the other member, and its sender once', async () => {
    await publishTo(alice, LOBBY, 'hello room');
    await waitPublication(bob, LOBBY, 'alice', 'hello room');
    await waitPublication(alice, LOBBY, 'alice', 'hello room', 'publication.mine');
    await waitRoomStatus(alice, 'ok', 'published to room:lobby · offset');
    if (await alice.isVisible('#rooms-unavailable')) throw new Error('"rooms are unavailable" shows on a server that has them');
    // Channel order: once bob's reply is shown, a second copy of alice's would be too.
    await publishTo(bob, LOBBY, 'hi alice');
    await waitPublication(alice, LOBBY, 'bob', 'hi alice');
    await waitPublication(bob, LOBBY, 'bob', 'hi alice');
    for (const [name, p] of [['alice', alice], ['bob', bob]]) {
      for (const msg of ['hello room', 'hi alice']) {
        const n = await countPublications(p, LOBBY, msg);
        if (n !== 1) throw new Error(`${name} shows "${msg}" ${n} times, expected once: ${JSON.stringify(await roomLines(p, LOBBY))}`);
      }
    }
    const time = await bob.textContent(`.room-messages[data-channel="${LOBBY}"] li.publication .time`);
    if (!/^\d\d:\d\d:\d\d$/.test(time)) throw new Error(`a publication's time reads "${time}"`);
  });

  await step('publishing where clients may not publish shows "forbidden"', async () => {
    await joinRoom(alice, 'news:today', 'news:today');
    await publishTo(alice, 'news:today', 'not allowed here');
    await waitEntry(alice, 'error', ['publish to news:today', 'forbidden'], 'alice sees the refusal');
    await waitRoomStatus(alice, 'error', 'forbidden');
    if (await countPublications(alice, 'news:today', 'not allowed here')) throw new Error('the refused publication is shown');
  });

  await step('an invalid room name shows "bad_channel" and is not listed', async () => {
    await alice.fill('#room-name', 'bad name!');
    await alice.click('#join-room');
    await waitEntry(alice, 'error', ['room:bad name!', 'bad_channel'], 'alice sees the refusal');
    await alice.waitForFunction(() => [...document.querySelectorAll('#room-list li')].every((li) => li.dataset.channel !== 'room:bad name!'),
      null, { timeout: WAIT }).catch(() => { throw new Error('the refused room is still listed'); });
  });

  await step('bob leaves "lobby" and no longer receives its publications', async () => {
    await bob.click(`${roomItem(LOBBY)} .leave`);
    await waitEntry(bob, 'left', [LOBBY, 'confirmed by the server'], 'bob\'s leave is confirmed');
    if (await bob.$(roomItem(LOBBY))) throw new Error('bob still lists the room');
    await waitMember(alice, LOBBY, 'bob', false);
    await publishTo(alice, LOBBY, 'after bob left');
    await waitPublication(alice, LOBBY, 'alice', 'after bob left');
    // Something later on bob's connection, so a stray publication would be there by now.
    await sendDm(alice, 'bob', 'dm after the leave');
    await waitEntry(bob, 'chat_message', ['dm after the leave'], 'bob receives the direct message');
    const seen = await bob.evaluate(() => document.getElementById('chat').textContent.includes('after bob left'));
    if (seen) throw new Error(`bob received a publication after leaving:\n${await logOf(bob)}`);
  });

  await step('bob joins "lobby" again: history shows what he missed, then live ones', async () => {
    await joinRoom(bob, 'lobby', LOBBY);
    await waitPublication(bob, LOBBY, 'alice', 'after bob left', 'publication.history');
    await waitPublication(bob, LOBBY, 'alice', 'hello room', 'publication.history');
    await waitEntry(bob, 'history', [LOBBY, 'earlier message'], 'bob logs the history');
    await publishTo(alice, LOBBY, 'welcome back bob');
    await waitPublication(bob, LOBBY, 'alice', 'welcome back bob', 'publication:not(.history)');
    await waitMember(alice, LOBBY, 'bob', true);
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
    await waitEntry(alice, 'rejoined', [LOBBY, 'recovered: nothing missed'], 'alice\'s room recovers');
    await publishTo(bob, LOBBY, 'after alice reconnected');
    await waitPublication(alice, LOBBY, 'bob', 'after alice reconnected');
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
    if (!(await bob.isDisabled('#publish'))) throw new Error('Publish is still enabled after Disconnect');
    const room = await bob.getAttribute(roomItem(LOBBY), 'data-state');
    if (room !== 'idle') throw new Error(`bob's room is "${room}" after Disconnect, expected idle`);
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

  if (noRoomsBase) {
    await step('without a room namespace the page says rooms are unavailable, and nothing fails', async () => {
      const carol = await newPage('carol');
      const r = await carol.goto(noRoomsBase + '/', { timeout: WAIT });
      if (r.status() !== 200) throw new Error(`GET / answered ${r.status()}`);
      await connectAs(carol, 'carol');
      if (await carol.isVisible('#rooms-unavailable')) throw new Error('the notice shows before the server refused anything');
      // Insecure mode: the default options let anyone subscribe, not publish.
      await joinRoom(carol, 'lobby', LOBBY);
      await publishTo(carol, LOBBY, 'anyone here?');
      await carol.waitForSelector('#rooms-unavailable:not([hidden])', { timeout: WAIT })
        .catch(() => { throw new Error(`no "rooms are unavailable" notice within ${WAIT} ms`); });
      const notice = await text(carol, '#rooms-unavailable');
      for (const needle of ['Rooms are unavailable', 'CHANNELS_CONFIG', 'client_publish']) {
        if (!notice.includes(needle)) throw new Error(`the notice lacks "${needle}": "${notice}"`);
      }
      if ((await carol.getAttribute('#rooms', 'data-available')) !== 'false') throw new Error('#rooms is not marked unavailable');
      await waitRoomStatus(carol, 'error', 'rooms are unavailable');
      await waitEntry(carol, 'sys', [LOBBY, 'rooms are unavailable'], 'carol logs why');
      const errors = await carol.$$eval('#log li.error', (ls) => ls.map((l) => l.textContent));
      if (errors.length) throw new Error(`the page logged errors: ${JSON.stringify(errors)}`);
      if (await countPublications(carol, LOBBY, 'anyone here?')) throw new Error('the refused publication is shown');
      await carol.screenshot({ path: join(outDir, 'no-rooms.png'), fullPage: true });
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
