#!/usr/bin/env python3
"""tests/tools/test_spamassassin.py - the corpus converter (tools/spamassassin.py) on small
hand-written mails: what text a mail becomes. Prints "PASS name" / "FAIL name: why" per case.

    python3 tests/tools/test_spamassassin.py
"""

import os
import sys
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import spamassassin as sa  # noqa: E402


def mail(headers, body):
    return (headers + "\r\n\r\n" + body).encode("utf-8")


HTML = "Subject: deal\r\nContent-Type: text/html; charset=utf-8"


def expect(body, want, headers=HTML):
    """The mail of these headers and body becomes the text want (not cut)."""
    got, cut = sa.mail_text(mail(headers, body))
    assert (got, cut) == (want, False), repr((got, cut))


def link_address_follows_its_text():
    expect('<p>Buy <a href="http://cheap.example/x?id=1">now</a> today</p>',
           "deal\n\nBuy now <http://cheap.example/x?id=1> today")


def link_whose_text_shows_the_address_is_not_repeated():
    expect('<a href="http://www.example.com/">http://www.example.com/</a> and '
           '<a href="www.b.example">see www.b.example here</a>',
           "deal\n\nhttp://www.example.com/ and see www.b.example here")


def only_web_addresses_are_written():
    expect('<a href="mailto:x@example.com">mail</a> <a href="javascript:go()">go</a> '
           '<a href="#top">top</a> <a href="/rel">rel</a> <a>none</a> '
           '<img src="cid:part1"> <img src="spacer.gif"> <a href="FTP://f.example/a">f</a>',
           "deal\n\nmail go top rel none   f <FTP://f.example/a>")


def image_address_is_where_the_image_is():
    expect('<p>Look<img src="https://img.example/a.gif" alt="pic">here</p>',
           "deal\n\nLook <https://img.example/a.gif>here")


def unclosed_link_is_ended_by_the_next_and_by_the_end():
    expect('<a href="http://a.example/">one <a href="http://b.example/">two',
           "deal\n\none <http://a.example/>two <http://b.example/>")


def wrapped_address_and_entities_are_joined():
    expect('<a href="http://a.example/x?a=1&amp;b=2\r\n  &c=3">go</a>',
           "deal\n\ngo <http://a.example/x?a=1&b=2&c=3>")


def scripts_styles_and_tags_are_dropped():
    expect("<html><head><style>p {color: red}</style><script>var a = '<b>';</script></head>"
           "<body><b>Hello</b>&nbsp;<i>world</i><!-- hidden --></body></html>",
           "deal\n\nHello world")


def plain_part_of_an_alternative_is_kept():
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nplain words\r\n"
            "--b\r\nContent-Type: text/html\r\n\r\n<a href=\"http://x.example/\">html words</a>\r\n"
            "--b--\r\n")
    expect(body, "alt\n\nplain words",
           'Subject: alt\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"')


def html_sent_as_plain_text_is_read_as_html():
    expect('<html><body>Hi <a href="http://x.example/">there</a></body></html>',
           "s\n\nHi there <http://x.example/>", "Subject: s\r\nContent-Type: text/plain")


def charset_and_encoded_subject_are_decoded():
    raw = (b"Subject: =?koi8-r?B?8NLJ18XU?=\r\nContent-Type: text/plain; charset=koi8-r\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=F0=D2=C9=D7=C5=D4 mir\r\n")
    t, _ = sa.mail_text(raw)
    assert t == "Привет\n\nПривет mir", repr(t)


CASES = [link_address_follows_its_text, link_whose_text_shows_the_address_is_not_repeated,
         only_web_addresses_are_written, image_address_is_where_the_image_is,
         unclosed_link_is_ended_by_the_next_and_by_the_end,
         wrapped_address_and_entities_are_joined, scripts_styles_and_tags_are_dropped,
         plain_part_of_an_alternative_is_kept, html_sent_as_plain_text_is_read_as_html,
         charset_and_encoded_subject_are_decoded]


def main():
    failed = 0
    for case in CASES:
        name = "spamassassin corpus: " + case.__name__.replace("_", " ")
        try:
            case()
            print("PASS " + name)
        except Exception:
            failed += 1
            print("FAIL %s: %s" % (name, traceback.format_exc(limit=2).strip().replace("\n", " | ")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
