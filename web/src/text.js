// text.js - a message's text cut at its matched spans. Spans are [start, end) byte offsets
// into the UTF-8 text (docs/api.md); the pieces are plain strings, rendered as text nodes,
// never as HTML.
const enc = new TextEncoder();
// ignoreBOM: a message that starts with U+FEFF shows it (by default the decoder drops it)
const dec = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

export function segments(text, matches) {
  const bytes = enc.encode(text || '');
  const spans = (matches || [])
    .filter((m) => Array.isArray(m.span) && m.span.length === 2)
    .map((m) => [Math.max(0, m.span[0] | 0), Math.min(bytes.length, m.span[1] | 0), m.rule])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  const out = [];
  let at = 0;
  for (const [a0, b, rule] of spans) {
    const a = Math.max(a0, at);
    if (b <= a) continue;
    if (a > at) out.push({ text: dec.decode(bytes.subarray(at, a)) });
    out.push({ text: dec.decode(bytes.subarray(a, b)), rule });
    at = b;
  }
  if (at < bytes.length) out.push({ text: dec.decode(bytes.subarray(at)) });
  return out;
}
