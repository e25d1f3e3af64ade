// The dashboard and chat pages in headless Chromium, driven by Playwright.
//
// Run by examples/tests/browser.rs, which passes the programs to start:
//   BROKER_BIN FLEET_BIN CHAT_BIN  the example binaries
//   WEB_DIR                        examples/web (with vendor/mqtt.min.js)
//   ARTIFACTS                      where screenshots go
//   CHROMIUM                       the browser (default /usr/bin/chromium)
//
// Checks:
// - dashboard: the page connects over WebSocket, shows every device online
//   with the readings they publish, and shows them offline within seconds
//   of their process being killed (their wills);
// - chat: two pages exchange messages both ways, presence shows both, and
//   a message sent at QoS 1 while the broker is killed and restarted is
//   delivered once it is back.
'use strict';

const { chromium } = require('playwright-core');
const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const fs = require('node:fs');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BROKER = env('BROKER_BIN');
const FLEET = env('FLEET_BIN');
const CHAT = env('CHAT_BIN');
const WEB = env('WEB_DIR');
const ARTIFACTS = env('ARTIFACTS');
const DEVICES = 12;

const children = new Set();
const log = (...a) => console.log('[browser]', ...a);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open`);
}

function start(bin, args, name) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const prefix = (line) => line && console.log(`[${name}] ${line}`);
  child.stdout.on('data', (d) => String(d).split('\n').forEach(prefix));
  child.stderr.on('data', (d) => String(d).split('\n').forEach(prefix));
  return child;
}

function kill(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const [tcp, ws] = [await freePort(), await freePort()];
  const brokerArgs = ['--tcp', `127.0.0.1:${tcp}`, '--ws', `127.0.0.1:${ws}`, '--web', WEB, '--log', 'warn', '--in-memory'];
  let broker = start(BROKER, brokerArgs, 'broker');
  await waitForPort(ws);
  await waitForPort(tcp);
  const base = `http://127.0.0.1:${ws}`;
  log('broker at', base);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const pageErrors = [];
  const open = async (url) => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${url}: ${e.message}`));
    page.on('console', (m) => {
      // Refused reconnections while the broker is down are expected.
      if (m.type() === 'error' && !m.text().includes('ERR_CONNECTION_REFUSED')) {
        pageErrors.push(`${url}: ${m.text()}`);
      }
    });
    await page.goto(url);
    return page;
  };
  const connected = (page) =>
    page.waitForFunction(() => document.getElementById('connection').textContent === 'connected', null, {
      timeout: 10000,
    });

  // ---- Dashboard -------------------------------------------------------
  const fleet = start(FLEET, ['--url', `mqtt://127.0.0.1:${tcp}`, '--devices', String(DEVICES), '--interval-ms', '300'], 'fleet');
  const dash = await open(`${base}/dashboard/`);
  await connected(dash);
  log('dashboard connected over WebSocket');
  await dash.waitForFunction(
    (n) => document.querySelectorAll('.card[data-status="online"][data-seq]').length === n,
    DEVICES,
    { timeout: 20000 },
  );
  // Readings keep coming: a device's sequence number moves on.
  const seq = await dash.getAttribute('.card[data-device="dev-001"]', 'data-seq');
  await dash.waitForFunction(
    (s) => Number(document.querySelector('.card[data-device="dev-001"]').dataset.seq) > s,
    Number(seq),
    { timeout: 10000 },
  );
  const temp = await dash.textContent('.card[data-device="dev-001"] .temp');
  if (!/°C$/.test(temp)) throw new Error(`no temperature shown: ${temp}`);
  log(`dashboard shows ${DEVICES} devices online, dev-001 at ${temp}`);
  await dash.screenshot({ path: path.join(ARTIFACTS, 'dashboard-online.png') });

  const killed = Date.now();
  await kill(fleet);
  await dash.waitForFunction(
    (n) => document.querySelectorAll('.card[data-status="offline"]').length === n,
    DEVICES,
    { timeout: 5000 },
  );
  log(`every device shown offline ${Date.now() - killed} ms after the fleet was killed (wills)`);
  if ((await dash.textContent('#offline')) !== String(DEVICES)) throw new Error('offline count');
  await dash.screenshot({ path: path.join(ARTIFACTS, 'dashboard-offline.png') });
  await dash.context().close();

  // ---- Chat ------------------------------------------------------------
  start(CHAT, ['--url', `mqtt://127.0.0.1:${tcp}`], 'chat-history');
  const alice = await open(`${base}/chat/?room=lobby&name=alice`);
  const bob = await open(`${base}/chat/?room=lobby&name=bob`);
  await connected(alice);
  await connected(bob);
  const presence = (page, names) =>
    page.waitForFunction(
      (names) => names.every((n) => document.querySelector(`#presence li[data-user="${n}"]`)),
      names,
      { timeout: 10000 },
    );
  await presence(alice, ['alice', 'bob']);
  await presence(bob, ['alice', 'bob']);
  log('chat: both pages connected, each sees both present');

  const send = async (page, text) => {
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
  };
  const sees = (page, from, text, timeout = 10000) =>
    page.waitForFunction(
      ([from, text]) =>
        [...document.querySelectorAll('#messages li.delivered')].some(
          (li) => li.dataset.from === from && li.querySelector('.text').textContent === text,
        ),
      [from, text],
      { timeout },
    );
  await send(alice, 'hello bob');
  await sees(bob, 'alice', 'hello bob');
  await send(bob, 'hi alice');
  await sees(alice, 'bob', 'hi alice');
  log('chat: messages delivered both ways');

  // Kill the broker, send while it is down, start it again.
  await kill(broker);
  const down = (page) =>
    page.waitForFunction(() => document.getElementById('connection').textContent !== 'connected', null, {
      timeout: 10000,
    });
  await down(alice);
  await down(bob);
  const during = 'sent while the broker restarts';
  await send(alice, during);
  if ((await alice.locator('#messages li.pending').count()) !== 1) throw new Error('no pending message');
  log('chat: broker killed; alice sent a message while it was down');
  await new Promise((r) => setTimeout(r, 1500));
  broker = start(BROKER, brokerArgs, 'broker');
  const restarted = Date.now();
  await waitForPort(ws);
  await sees(bob, 'alice', during, 30000);
  await sees(alice, 'alice', during, 30000);
  log(`chat: the message sent during the restart reached bob ${Date.now() - restarted} ms after the broker was back`);
  // Once each, in both pages.
  for (const page of [alice, bob]) {
    const n = await page.locator('#messages li').evaluateAll(
      (lis, text) => lis.filter((li) => li.querySelector('.text').textContent === text).length,
      during,
    );
    if (n !== 1) throw new Error(`message shown ${n} times`);
  }
  await presence(bob, ['alice', 'bob']);
  await alice.screenshot({ path: path.join(ARTIFACTS, 'chat-alice.png') });
  await bob.screenshot({ path: path.join(ARTIFACTS, 'chat-bob.png') });

  await browser.close();
  if (pageErrors.length) throw new Error('errors in the pages:\n' + pageErrors.join('\n'));
  log('screenshots in', ARTIFACTS);
}

main()
  .then(() => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(0);
  })
  .catch((e) => {
    console.error('[browser] FAILED:', e);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  });
