#!/usr/bin/env python3
"""gen_long.py - long messages for bench/long.sh and tests/cost/linear.sh.

    gen_long.py --chat EVENTS.ndjson --list WORDS.txt --kind KIND --cps N --count K [--seed S]

Writes K message events of exactly N code points each to stdout (NDJSON, whiply's event
contract). Kinds, each a way for one client to make a message cost the most:

  chat     texts of the benchmark stream joined by spaces (realistic, long)
  words    distinct list words, every term of the list in turn (each is a hit to confirm)
  near     list words with one letter doubled ("fucck"): Hyperscan's near-literal fires
           on the collapsed view, PCRE2's exact form rejects it (a letter twice is not a
           stretch), so every one is a confirmation that finds nothing
  runs     long runs of one letter and of one symbol, and stretched list words ("fuuuuuck")
  links    links, hosts of the scam and allow lists and others, with paths
  spaced   list words spelled out ("f u c k", "f.u.c.k"): the views join them
  unicode  list words and chat in look-alikes (fullwidth, mathematical bold, Cyrillic) and
           zalgo marks: the non-ASCII normalization (fewer code points fit in 64 KiB)
  mixed    all of the above, a piece of each in turn

Deterministic for a seed (Python's random with a fixed seed; no time, no hash order).
"""
import argparse
import json
import random
import sys

HOSTS = ["free-nitro.gift", "twitch.tv", "youtube.com", "grabify.link", "example.org",
         "bit.ly", "discord.gg", "steamcommunlty.com", "imgur.com", "x.com", "t.me"]


def load_chat(path, limit=20000):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                t = json.loads(line).get("text")
            except ValueError:
                continue
            if isinstance(t, str) and t:
                out.append(t)
            if len(out) >= limit:
                break
    return out


def load_list(path):
    """A word list: one term a line (# comments), or a JSON array of terms."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return [w.strip().lower() for w in json.loads(text) if w.strip()]
    return [w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#")]


def double_one(r, w):
    idx = [i for i, c in enumerate(w) if c.isalpha() and (i == 0 or w[i - 1] != c)
           and (i + 1 == len(w) or w[i + 1] != c)]
    if not idx:
        return w + w[-1]
    i = r.choice(idx)
    return w[:i + 1] + w[i] + w[i + 1:]


def stretch(r, w):
    i = r.randrange(len(w))
    return w[:i + 1] + w[i] * r.randrange(3, 12) + w[i + 1:]


CYRILLIC = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441",
            "x": "\u0445", "y": "\u0443", "i": "\u0456"}


def lookalike(r, w):
    style = r.randrange(4)
    out = []
    for ch in w:
        if "a" <= ch <= "z":
            if style == 0:
                ch = chr(0xFF41 + ord(ch) - ord("a"))  # fullwidth
            elif style == 1:
                ch = chr(0x1D41A + ord(ch) - ord("a"))  # mathematical bold
            elif style == 2:
                ch = CYRILLIC.get(ch, ch)
            else:
                ch = ch + "".join(chr(0x300 + r.randrange(0x60)) for _ in range(r.randrange(1, 5)))
        out.append(ch)
    return "".join(out)


def pieces(kind, r, chat, words):
    """An endless supply of space-separated pieces of the given kind."""
    k = 0
    while True:
        kk = kind
        if kind == "mixed":
            kk = ("chat", "words", "near", "runs", "links", "spaced", "unicode")[k % 7]
        if kk == "chat":
            yield r.choice(chat)
        elif kk == "words":
            yield words[k % len(words)]
        elif kk == "near":
            yield double_one(r, words[k % len(words)])
        elif kk == "runs":
            c = r.choice(["a", "x", "!", "$", "o", "l"])
            yield r.choice([c * r.randrange(20, 400), stretch(r, r.choice(words))])
        elif kk == "links":
            h = r.choice(HOSTS)
            yield r.choice(["https://", "http://", ""]) + h + "/" + \
                "".join(r.choice("abcdefghij0123") for _ in range(r.randrange(0, 12)))
        elif kk == "spaced":
            w = r.choice(words)
            yield r.choice([" ", ".", "-", " . "]).join(w.replace(" ", ""))
        elif kk == "unicode":
            yield lookalike(r, r.choice([r.choice(words), r.choice(chat)]))
        k += 1


def message(kind, n, r, chat, words):
    parts, size = [], 0
    for p in pieces(kind, r, chat, words):
        parts.append(p)
        size += len(p) + 1
        if size >= n:
            break
    text = " ".join(parts)[:n]
    text = text + "x" * (n - len(text))
    # 64 KiB is the contract's limit in bytes: fewer code points when they are long
    while len(text.encode("utf-8")) > 65536:
        text = text[:len(text) - (len(text.encode("utf-8")) - 65536 + 3) // 4 - 1]
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True)
    ap.add_argument("--list", required=True)
    ap.add_argument("--kind", default="mixed")
    ap.add_argument("--cps", type=int, required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    r = random.Random(a.seed * 1000003 + a.cps)
    chat = load_chat(a.chat)
    words = load_list(a.list)
    if a.kind not in ("chat", "unicode") or a.cps > 16384:
        # 64 KiB is the contract's limit in bytes: keep the hostile texts ASCII so that
        # 65,536 code points still fit.
        chat = [t for t in chat if t.isascii()]
        words = [w for w in words if w.isascii()]
    r.shuffle(words)
    out = sys.stdout
    for i in range(a.count):
        text = message(a.kind, a.cps, r, chat, words)
        ev = {"id": "long-%s-%d-%d" % (a.kind, a.cps, i), "type": "message",
              "platform": "twitch", "channel": "#long%d" % (i % 7),
              "user": {"id": "u%d" % i, "name": "user%d" % i, "roles": []},
              "text": text, "ts": "2026-12-07T20:00:%02d.%03dZ" % (i // 1000 % 60, i % 1000)}
        out.write(json.dumps(ev, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
