#!/usr/bin/env node
// catches.js - what whiply's profanity rule and obscenity caught, against what genstream
// injected (bench/out/truth.ndjson: one {"id","kind","term"} line per event that carries a
// list term, plain or evaded).
//
//   node bench/catches.js --truth FILE [--decisions FILE] [--obscenity-matched FILE]
//                         [--limit N] [--rule ID]
//
// --decisions: whiply's decision NDJSON; an event counts as caught when the rule id
// (default `profanity`) is in its "rules" array. --obscenity-matched: ids matched by the peer
// (bench/obscenity_peer.js --out-matched). --limit: only events e-1..e-N (the peer's subset).
// Prints a table by kind of injection; "outside injected" counts flagged events that carry
// no injected term (false positives, or list words the vocabulary scrubbing missed).
'use strict';

const fs = require('fs');
const readline = require('readline');

function args(argv) {
  const a = { truth: null, decisions: null, obsc: null, limit: 0, rule: 'profanity' };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[++i];
    if (v === undefined) die(`${k} needs a value`);
    if (k === '--truth') a.truth = v;
    else if (k === '--decisions') a.decisions = v;
    else if (k === '--obscenity-matched') a.obsc = v;
    else if (k === '--limit') a.limit = parseInt(v, 10);
    else if (k === '--rule') a.rule = v;
    else die(`unknown option ${k}`);
  }
  if (!a.truth) die('--truth is required');
  return a;
}

function die(m) {
  process.stderr.write(`catches: ${m}\n`);
  process.exit(2);
}

const seq = (id) => (typeof id === 'string' && id.startsWith('e-') ? parseInt(id.slice(2), 10) : NaN);

async function lines(file, fn) {
  const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  for await (const l of rl) if (l) fn(l);
}

async function main() {
  const a = args(process.argv);
  const inRange = (n) => a.limit === 0 || (n >= 1 && n <= a.limit);
  const truth = new Map();
  await lines(a.truth, (l) => {
    const t = JSON.parse(l);
    if (inRange(seq(t.id))) truth.set(t.id, t.kind);
  });

  const flagged = {};
  if (a.decisions) {
    const set = new Set();
    const ruleRe = new RegExp(`"rules":\\[[^\\]]*"${a.rule.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`);
    let n = 0;
    await lines(a.decisions, (l) => {
      n++;
      if (a.limit && n > a.limit) return;
      if (!ruleRe.test(l)) return;
      const m = /^\{"id":"([^"]*)"/.exec(l);
      if (m) set.add(m[1]);
    });
    flagged.whiply = set;
  }
  if (a.obsc) {
    const set = new Set();
    await lines(a.obsc, (l) => {
      if (inRange(seq(l))) set.add(l);
    });
    flagged.obscenity = set;
  }

  const kinds = ['plain', 'leet', 'homoglyph', 'fullwidth', 'math_bold', 'spaced', 'dotted', 'stretched',
    'zero_width', 'zalgo'];
  const names = Object.keys(flagged);
  const rows = [];
  const tot = { kind: 'all injected', n: 0 };
  for (const name of names) tot[name] = 0;
  for (const k of kinds) {
    const row = { kind: k, n: 0 };
    for (const name of names) row[name] = 0;
    for (const [id, kind] of truth) {
      if (kind !== k) continue;
      row.n++;
      for (const name of names) if (flagged[name].has(id)) row[name]++;
    }
    tot.n += row.n;
    for (const name of names) tot[name] += row[name];
    rows.push(row);
  }
  rows.push(tot);
  const outside = { kind: 'outside injected', n: '' };
  for (const name of names) {
    let c = 0;
    for (const id of flagged[name]) if (!truth.has(id)) c++;
    outside[name] = c;
  }
  const pct = (x, n) => (n ? `${x} (${((100 * x) / n).toFixed(1)}%)` : `${x}`);
  const header = ['injected kind', 'events', ...names];
  const body = rows.map((r) => [r.kind, String(r.n), ...names.map((nm) => pct(r[nm], r.n))]);
  body.push([outside.kind, '', ...names.map((nm) => String(outside[nm]))]);
  const w = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const fmt = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  console.log(fmt(header));
  for (const r of body) console.log(fmt(r));
}

main().catch((e) => die(e.stack || String(e)));
