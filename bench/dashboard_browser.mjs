#!/usr/bin/env node
// bench/dashboard_browser.mjs WHIPLY - the dashboard in Debian's chromium (playwright-core)
// against a real daemon on loopback (bench/dashboard.sh runs it):
//   - first load: from navigation to the signed-in review queue drawn, LOADS times (median,
//     max), and the page's own navigation timing (DOMContentLoaded, load);
//   - the live feed with RATE decisions/s posted for SECONDS s (batches of RATE/10 every
//     100 ms, paced to the clock): long tasks seen by a PerformanceObserver('longtask') (count,
//     longest, total), the rate the page itself counted, and that its newest row is recent.
// Prints figures; asserts nothing (tests/web/dashboard.mjs tests the page).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WHIPLY = path.resolve(process.argv[2] || path.join(ROOT, 'build/whiply'));
const RATE = +(process.env.RATE || 10000);
const SECONDS = +(process.env.SECONDS_FLOW || 10);
const LOADS = +(process.env.LOADS || 5);
const require = createRequire(path.join(ROOT, '.deps/web/node_modules/'));
const { chromium } = require('playwright-core');
const TOKEN = 'bench-browser-token-0123456789';
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'whiply-dashb-'));

fs.writeFileSync(path.join(TMP, 'whiply.yaml'), `listen: "127.0.0.1:0"\ntokens:\n  - name: bench\n    sha256: ${crypto.createHash('sha256').update(TOKEN).digest('hex')}\n    scopes: [admin]\n`);
const daemon = spawn(WHIPLY, ['serve', '--config', path.join(TMP, 'whiply.yaml'), '--data', path.join(TMP, 'data'), '--rules', path.join(ROOT, 'examples/rules.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
const port = await new Promise((res, rej) => {
  let log = '';
  daemon.stderr.on('data', (b) => {
    log += b;
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
    if (m) res(+m[1]);
  });
  daemon.on('exit', () => rej(new Error(log)));
});
const BASE = `http://127.0.0.1:${port}`;
const texts = ['hello chat', 'what the fuck was that', 'gg well played', 'check https://grabify.link/x', 'lol', 'you are all amazing'];
let n = 0;
function batch(k) {
  const lines = [];
  for (let i = 0; i < k; i++, n++)
    lines.push(JSON.stringify({ id: `b-${n}`, channel: `#c${n % 20}`, platform: 'twitch', user: { id: `u${n % 5000}` }, text: texts[n % texts.length] }));
  return lines.join('\n') + '\n';
}
const post = (body) => fetch(`${BASE}/v1/events`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body }).then((r) => r.text());

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  // ---- first load
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(BASE + '/');
  await page.fill('#token', TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('section.queue');
  const loads = [];
  let nav = null;
  for (let i = 0; i < LOADS; i++) {
    const t0 = Date.now();
    await page.goto(BASE + '/#/queue', { waitUntil: 'commit' });
    await page.reload();
    await page.waitForSelector('section.queue h1');
    loads.push(Date.now() - t0);
    nav = await page.evaluate(() => {
      const e = performance.getEntriesByType('navigation')[0];
      return { dcl: Math.round(e.domContentLoadedEventEnd), load: Math.round(e.loadEventEnd), bytes: e.transferSize };
    });
  }
  loads.sort((a, b) => a - b);
  console.log(`first load (navigation to the review queue drawn, ${LOADS} times): median ${loads[loads.length >> 1]} ms, max ${loads[loads.length - 1]} ms; DOMContentLoaded ${nav.dcl} ms, load ${nav.load} ms`);

  // ---- the feed under RATE decisions/s
  await page.goto(BASE + '/#/feed');
  await page.waitForSelector('section.feed');
  await page.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__long.push(e.duration))).observe({ type: 'longtask', buffered: false });
  });
  const per = Math.round(RATE / 10);
  const t0 = Date.now();
  let sent = 0;
  const rates = [];
  for (let tick = 0; tick < SECONDS * 10; tick++) {
    const due = t0 + tick * 100;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    post(batch(per)); // not awaited: the pace is the clock's
    sent += per;
    if (tick % 10 === 9) rates.push(await page.textContent('.rate'));
  }
  const took = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 1000));
  const long = await page.evaluate(() => window.__long);
  const newest = await page.getAttribute('section.feed tbody tr', 'data-event');
  const max = long.length ? Math.max(...long) : 0;
  console.log(
    `feed at ${RATE} decisions/s for ${SECONDS} s (${sent} sent in ${took.toFixed(1)} s): ${long.length} long tasks, longest ${Math.round(max)} ms, ` +
      `total ${Math.round(long.reduce((a, b) => a + b, 0))} ms; the page counted: ${rates.slice(-3).join(' | ')}; newest row ${newest} of b-${n - 1}`
  );
  await ctx.close();
} finally {
  await browser.close();
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.on('exit', r));
  fs.rmSync(TMP, { recursive: true, force: true });
}
