#!/usr/bin/env python3
"""Writes tests/golden/evasions-2/events.ndjson: the evasion families of issue 15, generated
over a word list, beside innocent counterparts that must stay allowed.

    gen_evasions.py               write events.ndjson (deterministic)
    gen_evasions.py --score FILE  per-family share caught / innocent share flagged in FILE
                                  (whiply's decisions for events.ndjson)

An event id is "<c|i>-<family>-<n>": c must be caught (action delete), i must be allowed;
a family named "x-..." is one whiply does not catch, kept to measure it: upside-down words
made only of ASCII letters ("sqooq"). Reversed terms ("kcuf") are caught unless the reversal
is a word of the nine dictionaries ("lana", REVERSE_STOP; src/match/words4.c for four letters).
The terms are a subset of the LDNOOBW English list, in terms.txt beside the rules."""
import json
import os
import sys

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evasions-2")

WORDS = ["fuck", "shit", "bitch", "cunt", "dick", "cock", "pussy", "asshole", "bastard",
         "slut", "whore", "faggot", "boner", "penis", "vagina", "dildo", "twat", "wank",
         "tits", "porn", "jizz", "anus", "milf", "rimjob", "nigger", "bollocks", "horny",
         "boobs", "fucking", "motherfucker", "bullshit", "cum", "ass", "fag"]
PHRASES = ["blow job", "jerk off", "piece of shit", "2 girls 1 cup", "eat my ass", "tied up"]

# Look-alikes ICU's skeleton leaves alone: Canadian syllabics and Lisu used as Latin capitals,
# and stroked Latin letters.
SYLLABICS = {"a": "ᗩ", "b": "ᗷ", "c": "ᑕ", "d": "ᗪ", "e": "ᕮ", "f": "ᖴ", "g": "ᘜ", "h": "ᕼ",
             "i": "ᓰ", "j": "ᒍ", "l": "ᒪ", "m": "ᗰ", "n": "ᑎ", "o": "ᓍ", "p": "ᑭ", "q": "ᑫ",
             "r": "ᖇ", "s": "ᔕ", "u": "ᑌ", "v": "ᐯ", "w": "ᗯ", "x": "᙭", "y": "ᖻ", "z": "ᘔ"}
LISU = {"a": "ꓮ", "b": "ꓐ", "c": "ꓚ", "d": "ꓓ", "e": "ꓰ", "f": "ꓝ", "g": "ꓖ", "h": "ꓧ",
        "i": "ꓲ", "j": "ꓙ", "k": "ꓗ", "l": "ꓡ", "m": "ꓟ", "n": "ꓠ", "o": "ꓳ", "p": "ꓑ",
        "s": "ꓢ", "t": "ꓔ", "u": "ꓴ", "v": "ꓦ", "w": "ꓪ", "x": "ꓫ", "y": "ꓬ", "z": "ꓜ"}
STROKED = {"a": "ⱥ", "b": "ƀ", "c": "ȼ", "d": "đ", "e": "ɇ", "g": "ǥ", "h": "ħ", "i": "ɨ",
           "j": "ɉ", "k": "ꝁ", "l": "ł", "o": "ø", "p": "ᵽ", "r": "ɍ", "t": "ŧ", "u": "ʉ",
           "y": "ɏ", "z": "ƶ"}
FLIP = {"a": "ɐ", "b": "q", "c": "ɔ", "d": "p", "e": "ǝ", "f": "ɟ", "g": "ƃ", "h": "ɥ",
        "i": "ᴉ", "j": "ɾ", "k": "ʞ", "l": "l", "m": "ɯ", "n": "u", "o": "o", "p": "d",
        "q": "b", "r": "ɹ", "s": "s", "t": "ʇ", "u": "n", "v": "ʌ", "w": "ʍ", "x": "x",
        "y": "ʎ", "z": "z", "1": "Ɩ", "2": "ᄅ"}
# reversed terms that are words themselves (the nine dictionaries): not evasions
REVERSE_STOP = {"lana", "suna", "tums", "tuls", "noop", "cips", "gnom", "flim", "orgen"}
REVERSE_MIN = 4  # whiply reads words backwards for terms this long (src/match/matcher.c)


def mixed_case(w, upper_first):
    return "".join(c.upper() if (i % 2 == 0) == upper_first else c for i, c in enumerate(w))


def caught():
    out = []
    add = lambda fam, text: out.append((fam, text))  # noqa: E731
    for w in WORDS:
        for sep in "|+$@":
            add("leet-sep", sep.join(w))
            add("leet-sep", "lol " + sep.join(w.upper()) + " this")
        if "i" in w:
            add("pipe-i", w.replace("i", "|"))
            add("pipe-i", "you " + w.replace("i", "|").upper())
        if len(w) >= 3:
            s = " ".join(w)
            for tpl in ["I can't {} this up", "plan B {} it", "{} 3 times", "you are a {}",
                        "I {} hate it", "don't {} with me", "{} u", "I'm {} done", "ok {} 2"]:
                add("spaced-beside", tpl.format(s))
            seps = "/_.-"
            add("mixed-sep", "".join(c + seps[k % 4] for k, c in enumerate(w))[:-1])
            seps = "-._*"
            add("mixed-sep", "so " + "".join(c + seps[k % 4] for k, c in enumerate(w))[:-1])
        if len(w) >= 4:
            h = len(w) // 2
            for p in ".-,'_~":
                add("case-punct", mixed_case(w[:h] + p + w[h:], False))
                add("case-punct", "omg " + mixed_case(w[:h] + p + w[h:], True))
        add("doubled", "".join(c + c for c in w))
        add("doubled", "you " + "".join(c + c for c in w).upper())
        if len(w) >= 4 and w[::-1] not in REVERSE_STOP and w[::-1] != w:
            fam = "reversed" if len(w) >= REVERSE_MIN else "x-reversed"  # see the docstring
            add(fam, w[::-1])
            add(fam, "lol " + w[::-1].upper() + " lol")
            if fam == "reversed":
                add(fam, "you " + w[::-1].capitalize())
                add(fam, " ".join(w[::-1]) + " lol")  # spaced out, then read backwards
        flip = "".join(FLIP[c] for c in reversed(w))
        # only ASCII look-alikes ("sqooq"): nothing tells it from a word; not caught yet
        add("upside-down" if any(ord(c) > 127 for c in flip) else "x-upside-down", flip)
        add("upside-down", "ʎɐs " + "".join(FLIP[c] for c in reversed(w)))
        for table in (SYLLABICS, LISU, STROKED):
            text = "".join(table.get(c, c.upper() if table is not STROKED else c) for c in w)
            add("lookalike", text)
    for p in PHRASES:
        for sep in "+|":
            add("leet-sep", sep.join(p.split()))
        zw = "\u200b".join(p.split())
        add("joined-short", zw)
        add("joined-short", "".join(p.split()))
        add("joined-short", "lol " + "\u200c".join(p.split()) + " lol")
        add("upside-down", " ".join("".join(FLIP[c] for c in reversed(x)) for x in reversed(p.split())))
    for host in ["evil-site", "free-nitro", "grabify"]:
        for dot in "\u3002\uff61\uff0e":
            add("link-dot", f"go to {host}{dot}com now")
            add("link-dot", f"https://{host}{dot}xyz/claim")
    return out


INNOCENT = [
    # Scunthorpe-style words and names
    "Scunthorpe", "Bonner", "class assassin", "cocktail", "Dickens", "analysis", "therapist",
    "Penistone", "grape", "shitake", "Lana Del Rey", "Diana", "Liliana", "Juliana", "Tums",
    "regal lager", "live evil", "stressed desserts", "s p i c a", "the star s p i c a",
    "Spica", "sussex", "Essex", "cumulus", "Titicaca", "Matsushita", "bookkeeper",
    "rapping", "kkkkkk", "xxxxxx", "kkkkkkkkk", "hahaha lolll", "zzzzz", "aabbcc", "coccyx", "document",
    # one-letter words and numbers
    "I have 3 cats", "plan B is a go", "I can't wait", "a b c d e f g", "I O U", "u r the best",
    "room 4 b", "I'm at gate A 3", "give me 5 minutes", "x y z", "I think u r right",
    "vitamin B 12", "plan A or plan B", "it's a 2 v 2", "T minus 10", "GG EZ",
    "I a m h e r e", "o k", "b r b", "g l h f", "w p", "n i c e",
    # punctuation inside words
    "U.S.A.", "e.g.", "i.e.", "a/b", "Node.js", "README.md", "John.Smith", "Ph.D.", "AT&T",
    "C++", "R&D", "rock'n'roll", "Mr. T", "St. Louis", "D.C.", "TL;DR", "Wi-Fi", "e-mail",
    "x-ray", "Yu-Gi-Oh", "Coca-Cola", "O'Neil", "McDonald's", "iPhone.Pro", "PowerPoint.exe",
    "JavaScript-ES6", "YouTube.com", "DeVito", "LeBron.James", "MacBook-Air",
    # emails, URLs, code
    "john.smith@example.com", "shi.tao@mail.cn", "https://example.com/a_b-c",
    "www.github.com/user/repo", "if (a|b) return x+y;", "a || b && c", "$x = $y + 1;",
    "arr[i] |= mask", "grep -E 'a|b'", "x = a+b+c+d", "SELECT * FROM t WHERE a|b",
    "echo $HOME $PATH", "f(a,b,c,d)", "1+2+3+4", "a@b.c",
    # usernames
    "xX_Sniper_Xx", "|Dark|Knight|", "[TAG]Player", "user_123", "Mr|Bean", "s_p_i_c_e",
    "the_cool_kid", "Lil|Wayne", "d|a|r|k", "n_o_o_b", "b_a_d",
    # upside-down and other scripts
    "ǝɯɐƃ pooƃ", "ʎddɐɥ", "ꓡꓲ-ꓢꓴ", "ᓀᐦᐃᔭᐍᐏᐣ", "ᐃᓄᒃᑎᑐᑦ", "ᑕᑎᑕ ᐅᑯ", "Łódź", "Øresund",
    "Đorđe", "Ħamrun", "ⱥ ȼ ɇ", "ǀXóõ", "ʉ",
    # words that are list terms read backwards ("Lana", "Tums" above): a term is not read
    # backwards when the reversal is a word (Turkish "örgen", "Esra")
    "Örgen Yılmaz", "film night", "new clips", "on stilts", "tub", "Suna", "Gnom", "tulis",
    "TOGAF", "teks", "regen", "Sergen", "noop", "stressed", "reviled", "deliver", "Esra",
    "Lana Del Rey", "tums for my stomach", "flim flam",
    # joined pieces
    "2 girls and 1 cup of tea", "tied in traffic", "girl on the left", "piece of cake", "a blow to the job market",
    # link-like
    "end of sentence。next one", "日本語。テスト", "version 1｡2",
]


def write():
    events = []
    for n, (fam, text) in enumerate(caught()):
        events.append({"id": f"c-{fam}-{n}", "text": text})
    for n, text in enumerate(INNOCENT):
        events.append({"id": f"i-innocent-{n}", "text": text})
    with open(os.path.join(HERE, "events.ndjson"), "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    print(f"{len(events)} events", file=sys.stderr)


def score(path):
    fams = {}
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        kind, fam = d["id"].split("-")[0], "-".join(d["id"].split("-")[1:-1])
        flagged = d.get("action") != "allow"
        t = fams.setdefault((kind, fam), [0, 0, []])
        t[0] += 1
        t[1] += flagged
        if flagged != (kind == "c"):
            t[2].append(d["id"])
    for (kind, fam), (n, k, wrong) in sorted(fams.items()):
        what = "caught" if kind == "c" else "flagged (innocent)"
        print(f"{fam:14} {what:19} {k:4}/{n:<4} {100.0 * k / n:5.1f}%  {' '.join(wrong[:8])}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--score":
        score(sys.argv[2])
    else:
        write()
