#!/usr/bin/env node
// obscenity_peer.js - the peer of whiply's `profanity` rule in bench/run.sh.
//
//   node bench/obscenity_peer.js --list bench/out/profanity.txt --events bench/out/events.ndjson
//                                [--limit N] [--warmup N] [--boundary word|none] [--out-matched FILE]
//
// Builds an obscenity RegExpMatcher from a custom DataSet holding exactly the terms of
// the given word list (.txt: one term a line, blank lines and '#' lines ignored, as whiply
// reads it), with englishRecommendedTransformers. Reads the events NDJSON, takes the
// `text` of each message line (the first --limit lines when given), runs hasMatch over the
// first --warmup messages (default 20000; 0 = all) as a warm-up, then times one pass over
// all of them. Prints one JSON line on stdout:
//   {"peer":"obscenity","messages":N,"matched":M,"seconds":S,"messages_per_s":R}
// Details (terms, patterns, versions) go to stderr. --out-matched writes the ids of the
// matched events, one a line (after the timing), for bench/catches.js.
//
// Term -> pattern: obscenity applies its transformers to the input only, so each term is
// put through the same blacklist transformers first (confusables, leet, lowercase, collapse
// duplicates: `a$$` -> `ass`, `fuuck` -> `fuck`); otherwise a term such as `2g1c` could
// never match. Terms that shrink to a single character (`kkk` -> `k`) are left out. With --boundary word (the default) the pattern gets obscenity's word-boundary
// markers (`|term|`) on each side that starts/ends with a word character, which is whiply's
// default "whole words" semantics; --boundary none matches anywhere (substrings).
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

function parseArgs(argv) {
  const a = { list: null, events: null, limit: 0, warmup: 20000, boundary: 'word', outMatched: null };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) usage(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--list') a.list = v();
    else if (k === '--events') a.events = v();
    else if (k === '--limit') a.limit = parseInt(v(), 10);
    else if (k === '--warmup') a.warmup = parseInt(v(), 10);
    else if (k === '--boundary') a.boundary = v();
    else if (k === '--out-matched') a.outMatched = v();
    else usage(`unknown option ${k}`);
  }
  if (!a.list || !a.events) usage('--list and --events are required');
  if (!Number.isInteger(a.limit) || a.limit < 0) usage('--limit must be a non-negative integer');
  if (!Number.isInteger(a.warmup) || a.warmup < 0) usage('--warmup must be a non-negative integer');
  if (a.boundary !== 'word' && a.boundary !== 'none') usage('--boundary is word or none');
  return a;
}

function usage(msg) {
  process.stderr.write(`obscenity_peer: ${msg}\n` +
    'usage: node bench/obscenity_peer.js --list FILE --events FILE [--limit N] [--warmup N]\n' +
    '                                    [--boundary word|none] [--out-matched FILE]\n');
  process.exit(2);
}

function loadObscenity() {
  const root = path.resolve(__dirname, '..');
  const dir = process.env.OBSCENITY_PATH || path.join(root, '.deps', 'npm', 'node_modules', 'obscenity');
  try {
    return { mod: require(dir), version: JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version };
  } catch (e) {
    process.stderr.write(`obscenity_peer: cannot load obscenity from ${dir}: ${e.message}\n` +
      'install it with: npm install --prefix .deps/npm obscenity\n');
    process.exit(3);
  }
}

// Applies a list of obscenity transformers to a whole string, code point by code point,
// as RegExpMatcher does to its input (simple transformers map, stateful ones keep state
// across the string; `undefined` drops the character).
function applyTransformers(transformers, s) {
  const state = transformers.map((t) => (t.type === 1 ? t.factory() : null));
  let out = '';
  for (const ch of s) {
    let cp = ch.codePointAt(0);
    for (let i = 0; i < transformers.length && cp !== undefined; i++) {
      cp = transformers[i].type === 1 ? state[i].transform(cp) : transformers[i].transform(cp);
    }
    if (cp !== undefined) out += String.fromCodePoint(cp);
  }
  return out;
}

async function main() {
  const args = parseArgs(process.argv);
  const { mod: ob, version } = loadObscenity();
  const { DataSet, RegExpMatcher, parseRawPattern, englishRecommendedTransformers } = ob;

  // the word list, read as whiply reads a .txt list
  const terms = fs.readFileSync(args.list, 'utf8').split('\n').map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  const tf = englishRecommendedTransformers.blacklistMatcherTransformers;
  const isWord = (c) => /[A-Za-z0-9]/.test(c);
  const seen = new Set();
  const dataset = new DataSet();
  const dropped = [];
  for (const term of terms) {
    const norm = applyTransformers(tf, term);
    // a term that collapses to one character (`kkk` -> `k`, `xxx` -> `x`: obscenity folds runs
    // of a letter in the input, so `kkk` could only ever match as `k`) would flag every lone
    // letter, e.g. the `k` of a spaced-out `f u c k`; such terms are left out and counted
    if ([...norm].length < 2 && [...term].length > 1) { dropped.push(term); continue; }
    const esc = norm.replace(/[\\[\]?|]/g, (c) => '\\' + c);
    const chars = [...norm];
    const pre = args.boundary === 'word' && isWord(chars[0]) ? '|' : '';
    const post = args.boundary === 'word' && isWord(chars[chars.length - 1]) ? '|' : '';
    const pat = pre + esc + post;
    if (seen.has(pat)) continue;
    seen.add(pat);
    dataset.addPhrase((p) => p.setMetadata({ originalWord: term }).addPattern(parseRawPattern(pat)));
  }
  const matcher = new RegExpMatcher({ ...dataset.build(), ...englishRecommendedTransformers });

  // the messages (parsing is not timed); streamed, so any file size works
  const texts = [];
  const ids = [];
  let lines = 0;
  const input = fs.createReadStream(args.events);
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.length === 0) continue;
    if (args.limit !== 0 && lines >= args.limit) break;
    lines++;
    let ev;
    try { ev = JSON.parse(line); } catch { continue; }
    if ((ev.type === undefined || ev.type === 'message') && typeof ev.text === 'string') {
      texts.push(ev.text);
      ids.push(ev.id);
    }
  }
  rl.close();
  input.destroy();

  // warm-up (JIT, regex compilation), then the timed pass
  const nwarm = args.warmup === 0 ? texts.length : Math.min(args.warmup, texts.length);
  for (let i = 0; i < nwarm; i++) matcher.hasMatch(texts[i]);
  const hit = new Uint8Array(texts.length);
  const t0 = process.hrtime.bigint();
  let matched = 0;
  for (let i = 0; i < texts.length; i++) {
    if (matcher.hasMatch(texts[i])) {
      matched++;
      hit[i] = 1;
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (args.outMatched) {
    const out = [];
    for (let i = 0; i < texts.length; i++) if (hit[i]) out.push(ids[i]);
    fs.writeFileSync(args.outMatched, out.join('\n') + (out.length ? '\n' : ''));
  }

  process.stderr.write(`obscenity_peer: obscenity ${version}, node ${process.version}, ${terms.length} terms -> ` +
    `${seen.size} patterns (left out, collapsed to 1 char by the transformers: ` +
    `${dropped.length ? dropped.join(' ') : 'none'}), boundary=${args.boundary}, ` +
    `${lines} lines read, ${texts.length} messages, warm-up ${nwarm}\n`);
  const r = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
  process.stdout.write(JSON.stringify({
    peer: 'obscenity', messages: texts.length, matched, seconds: r(seconds, 3),
    messages_per_s: r(texts.length / seconds, 0),
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`obscenity_peer: ${e.stack || e}\n`);
  process.exit(1);
});
