#!/usr/bin/env python3
"""tests/serve/test_dashboard_api.py WHIPLY - what the dashboard uses, over HTTP without a
browser (tests/web/dashboard.mjs drives the page itself): the event stream (GET /v1/stream),
sessions and CSRF, the read scope, manual actions, the audit search and its exports, the
rules history and dry run, the embedded files. On the harness of test_serve.py."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402

check, eq = ts.check, ts.eq
ts.TOKENS["read"] = ("tok-read-0123456789", ["read"])
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Stream:
    """A GET /v1/stream connection read as Server-Sent Events; each wait has a deadline."""

    def __init__(self, d, token="admin", rcvbuf=None, headers=None, query=""):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect((d.host, d.port))
        h = {"Host": "%s:%d" % (d.host, d.port)}
        if token:
            h["Authorization"] = "Bearer " + ts.TOKENS[token][0]
        h.update(headers or {})
        req = "GET /v1/stream" + query + " HTTP/1.1\r\n" + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        self.s.sendall(req.encode())
        self.buf = b""
        self.head = None
        self.events = []

    def _fill(self, deadline):
        self.s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            b = self.s.recv(65536)
        except socket.timeout:
            return False
        if not b:
            raise EOFError("the stream ended")
        self.buf += b
        return True

    def status(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise AssertionError("no response head")
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head.decode()
        return int(self.head.split()[1])

    def _parse(self):
        # chunked transfer encoding: take whole chunks out of buf into a text stream
        if not hasattr(self, "text"):
            self.text = ""
        while True:
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                return
            size = int(self.buf[:nl].split(b";")[0] or b"0", 16)
            if len(self.buf) < nl + 2 + size + 2:
                return
            self.text += self.buf[nl + 2:nl + 2 + size].decode()
            self.buf = self.buf[nl + 2 + size + 2:]
            if size == 0:
                self.ended = True
            while "\n\n" in self.text:
                block, self.text = self.text.split("\n\n", 1)
                ev = {"event": "message", "data": None}
                for line in block.split("\n"):
                    if line.startswith("event: "):
                        ev["event"] = line[7:]
                    elif line.startswith("data: "):
                        ev["data"] = json.loads(line[6:])
                    elif line.startswith("id: "):
                        ev["id"] = int(line[4:])
                if ev["data"] is not None:
                    self.events.append(ev)

    def wait(self, pred, timeout=10, what="an event"):
        deadline = time.monotonic() + timeout
        at = 0
        while True:
            self._parse()
            for e in self.events[at:]:
                if pred(e):
                    return e
            at = len(self.events)
            if time.monotonic() > deadline:
                raise AssertionError("no %s on the stream within %ss (saw %d events)" % (what, timeout, len(self.events)))
            self._fill(deadline)

    def wait_end(self, timeout=30):
        deadline = time.monotonic() + timeout
        try:
            while not getattr(self, "ended", False):
                if time.monotonic() > deadline:
                    return False
                self._fill(deadline)
                self._parse()
        except (EOFError, ConnectionResetError):
            pass
        return True

    def close(self):
        self.s.close()


def post(d, lines, token="events"):
    st, body, _ = d.req("POST", "/v1/events", "\n".join(lines) + "\n", token=token)
    eq(st, 200, body[:300])
    return [json.loads(l) for l in body.splitlines()]


def ev(i, text, channel="#s", user=None, prefix="s"):
    return json.dumps({"id": "%s-%d" % (prefix, i), "channel": channel, "platform": "twitch",
                       "user": {"id": user or "u%d" % i}, "text": text})


@test
def the_stream_carries_decisions_reviews_and_reloads(d):
    rules = d.restart_with_rules(
        "version: 1\nrules:\n  - id: hold-it\n    when: {words: [suspicious]}\n    action: hold\n"
        "  - id: rude\n    when: {words: [\"heck*\"]}\n    action: delete\n")
    s = Stream(d, token="read")
    eq(s.status(), 200, s.head)
    check("text/event-stream" in s.head, s.head)
    post(d, [ev(1, "what the heck"), ev(2, "so suspicious")])
    e1 = s.wait(lambda e: e["event"] == "decision" and e["data"]["event"]["id"] == "s-1")
    eq(e1["data"]["decision"]["action"], "delete")
    eq(e1["data"]["event"]["text"], "what the heck")
    eq(e1["data"]["decision"]["matches"][0]["span"], [9, 13], "the span, in bytes of the text")
    e2 = s.wait(lambda e: e["event"] == "decision" and e["data"]["event"]["id"] == "s-2")
    check(e2["id"] > e1["id"], "ids increase")
    st, body, _ = d.req("POST", "/v1/review/s-2/approve", '{"moderator":"kay"}', token="review")
    eq(st, 200, body)
    r = s.wait(lambda e: e["event"] == "review")
    eq((r["data"]["event_id"], r["data"]["status"], r["data"]["moderator"]), ("s-2", "approved", "kay"))
    # the verdict's mod_action is decided through the ingest seam: it is on the stream too
    s.wait(lambda e: e["event"] == "decision" and e["data"]["event"]["id"] == "review:approve:s-2")
    with open(rules, "a") as f:
        f.write("  - id: more\n    when: {words: [zzz]}\n    action: warn\n")
    st, body, _ = d.req("POST", "/v1/rules/reload", token="rules")
    eq(st, 200, body)
    rl = s.wait(lambda e: e["event"] == "reload")
    eq(rl["data"]["ruleset"], json.loads(body)["ruleset"])
    eq(rl["data"]["rules"], 3)
    s.close()
    # a token without review, read or rules may not listen
    st, body, _ = d.req("GET", "/v1/stream", token="events")
    eq(st, 403, body)


@test
def a_slow_subscriber_is_told_it_lagged_and_deciding_goes_on(d):
    # a client that reads nothing: the socket buffers fill, then its ring (8,192 events), and
    # the rest is dropped for it (events of 2 KB: more than the buffers of a loopback socket);
    # it asks for every allow, so that none is left out by sampling
    s = Stream(d, rcvbuf=4096, query="?allow=all")
    eq(s.status(), 200)
    n = 0
    pad = "x" * 2000
    for b in range(24):
        out = post(d, [ev(b * 1000 + i, "message %d %s" % (i, pad), prefix="lag") for i in range(500)])
        n += len(out)
    eq(n, 12000, "every event was decided and answered while a subscriber read nothing")
    # it reads again: first the notice, then what its ring kept; an event sent once its ring
    # has room reaches it (one sent while the ring is still full is dropped: send another)
    s.wait(lambda e: e["event"] == "lagging", timeout=60, what="a lagging notice")
    deadline, k = time.monotonic() + 120, 0
    while True:
        k += 1
        post(d, [ev(k, "marker", prefix="mark")])
        n += 1
        try:
            s.wait(lambda e: e["event"] == "decision" and e["data"]["event"]["id"] == "mark-%d" % k, timeout=3)
            break
        except AssertionError:
            check(time.monotonic() < deadline, "the subscriber gets events again")
    lag = [e for e in s.events if e["event"] == "lagging"]
    dropped = sum(e["data"]["dropped"] for e in lag)
    seen = [e for e in s.events if e["event"] == "decision"]
    check(lag and dropped > 0, "a lagging notice with the number dropped")
    check(len(seen) + dropped >= n, "each event was sent or counted as dropped: %d + %d < %d" % (len(seen), dropped, n))
    ids = [e["id"] for e in seen]
    eq(ids, sorted(ids), "in order")
    s.close()


def decisions(s):
    return [e["data"] for e in s.events if e["event"] == "decision"]


@test
def each_subscriber_gets_its_channels_and_actions_with_allows_sampled_and_counted(d):
    d.restart_with_rules("version: 1\nrules:\n  - id: hold-it\n    when: {words: [suspicious]}\n    action: hold\n")
    only = Stream(d, query="?channel=%23a,%23c&action=hold,delete")
    no_allow = Stream(d, query="?allow=0")
    sampled = Stream(d, query="?allow=5")
    for s in (only, no_allow, sampled):
        eq(s.status(), 200, s.head)
    t0 = time.monotonic()
    lines = [ev(i, "hello %d" % i, channel="#a" if i % 2 else "#b", prefix="f") for i in range(300)]
    lines += [ev(900, "so suspicious", channel="#b", prefix="f"), ev(901, "so suspicious", channel="#a", prefix="f")]
    post(d, lines)
    last = lambda e: e["event"] == "decision" and e["data"]["event"]["id"] == "f-901"
    only.wait(last, what="the hold in #a")
    no_allow.wait(last, what="the hold in #a")
    sampled.wait(last, what="the hold in #a")
    # events reach a subscriber in the order they were decided: what came before f-901 is all
    eq([(x["event"]["id"], x["event"]["channel"]) for x in decisions(only)], [("f-901", "#a")],
       "a channel and action filter: the hold in #a alone")
    eq(sorted(x["event"]["id"] for x in decisions(no_allow)), ["f-900", "f-901"], "allow=0: every hold, no allow")
    got = [x for x in decisions(sampled) if x["decision"]["action"] == "allow"]
    elapsed = time.monotonic() - t0
    check(1 <= len(got) <= 5 + 5 * elapsed + 1, "allow=5: %d allows in %.1f s" % (len(got), elapsed))
    check(any(x["event"]["id"] == "f-900" for x in decisions(sampled)), "every hold is sent in full")
    # the stats events count every decision of its channels, and the allows left out
    def totals(s):
        st = [e["data"] for e in s.events if e["event"] == "stats"]
        return sum(x["decided"]["allow"] for x in st), sum(x["decided"]["hold"] for x in st), sum(x["sampled_out"] for x in st)
    sampled.wait(lambda e: e["event"] == "stats" and totals(sampled)[0] >= 300, what="stats counting 300 allows")
    allow, hold, out = totals(sampled)
    eq((allow, hold), (300, 2), "decisions counted by action")
    eq(out + len(got), 300, "each allow was sent or counted as sampled out")
    only.wait(lambda e: e["event"] == "stats" and totals(only)[0] >= 150, what="stats of #a and #c")
    eq(totals(only)[:2], (150, 1), "the stats of a channel filter count its channels' decisions of every action")
    for s in (only, no_allow, sampled):
        s.close()
    for q, what in (("?action=nuke", "action: 'nuke'"), ("?allow=-1", "allow:"), ("?channel=a,,b", "channel:")):
        st, body, _ = d.req("GET", "/v1/stream" + q, token="admin")
        eq(st, 400, body)
        check(what in json.loads(body)["error"]["message"], body)


@test
def sigterm_with_open_streams_drains_and_exits_0(d):
    s1, s2 = Stream(d), Stream(d, token="review")
    eq(s1.status(), 200)
    eq(s2.status(), 200)
    post(d, [ev(1, "hi")])
    s1.wait(lambda e: e["event"] == "decision")
    rc = d.stop()
    eq(rc, 0, "exit status with two streams open")
    check(s1.wait_end() and s2.wait_end(), "the streams ended")


def sign_in(d, token, origin=None):
    h = {"Content-Type": "application/json"}
    if origin:
        h["Origin"] = origin
    st, body, r = d.req("POST", "/v1/session", json.dumps({"token": ts.TOKENS[token][0] if token in ts.TOKENS else token}),
                        token=None, headers=h)
    return st, body, r.getheader("Set-Cookie") or ""


@test
def sessions_cookies_csrf_and_scopes(d):
    origin = "http://%s:%d" % (d.host, d.port)
    st, body, _ = sign_in(d, "not-a-token")
    eq(st, 401, body)
    st, body, _ = sign_in(d, "review", origin="http://evil.example")
    eq(st, 403, body)
    st, body, _ = d.req("POST", "/v1/session", "{\"tok\": 1}", token=None)
    eq((st, json.loads(body)["error"]["code"]), (400, "bad_field"), body)
    st, body, cookie = sign_in(d, "review", origin=origin)
    eq(st, 200, body)
    me = json.loads(body)
    eq((me["name"], me["scopes"]), ("review", ["review"]))
    for want in ("HttpOnly", "SameSite=Strict", "Path=/"):
        check(want in cookie, cookie)
    c = {"Cookie": cookie.split(";")[0]}
    st, body, _ = d.req("GET", "/v1/session", token=None, headers=c)
    eq((st, json.loads(body)["csrf"]), (200, me["csrf"]))
    eq(d.req("GET", "/v1/review", token=None, headers=c)[0], 200)
    act = '{"channel":"#c","user":"u1","action":"warn"}'
    eq(d.req("POST", "/v1/moderate", act, token=None, headers=c)[0], 403, "no Origin")
    eq(d.req("POST", "/v1/moderate", act, token=None, headers={**c, "Origin": origin})[0], 403, "no CSRF token")
    eq(d.req("POST", "/v1/moderate", act, token=None,
             headers={**c, "Origin": "http://other:1", "X-CSRF-Token": me["csrf"]})[0], 403, "another origin")
    st, body, _ = d.req("POST", "/v1/moderate", act, token=None, headers={**c, "Origin": origin, "X-CSRF-Token": me["csrf"]})
    eq(st, 200, body)
    eq(json.loads(body)["event"]["moderator"], "review", "the moderator is the session's name")
    # the session's scopes hold: review may not reload
    eq(d.req("POST", "/v1/rules/reload", token=None, headers={**c, "Origin": origin, "X-CSRF-Token": me["csrf"]})[0], 403)
    st, body, _ = d.req("DELETE", "/v1/session", token=None, headers={**c, "Origin": origin, "X-CSRF-Token": me["csrf"]})
    eq(st, 200, body)
    st, body, _ = d.req("GET", "/v1/review", token=None, headers=c)
    eq(st, 401, body)
    check("sign in again" in body, body)


@test
def the_read_scope_sees_and_cannot_act(d):
    post(d, [ev(1, "hello")])
    for m, p, want in [("GET", "/v1/review", 200), ("GET", "/v1/decisions", 200), ("GET", "/v1/audit", 200),
                       ("GET", "/v1/rules", 200), ("GET", "/v1/rules/history", 200),
                       ("POST", "/v1/events", 403), ("POST", "/v1/review/s-1/approve", 403),
                       ("POST", "/v1/moderate", 403), ("POST", "/v1/rules/dryrun", 403), ("POST", "/v1/rules/reload", 403)]:
        st, body, _ = d.req(m, p, "{}" if m == "POST" else None, token="read")
        eq(st, want, "%s %s: %s" % (m, p, body[:200]))


@test
def manual_actions_are_checked_and_go_through_the_ingest_seam(d):
    d.restart_with_rules("version: 1\nrules:\n  - id: flood\n    when: {rate: {count: 50, per: 10s}}\n    escalate: true\n")
    for body, code, words in [('{"channel":"#c","user":"u","action":"explode"}', "bad_field", "warn, timeout, ban or unban"),
                              ('{"channel":"#c","user":"u","action":"timeout"}', "bad_field", "duration_s"),
                              ('{"user":"u","action":"warn"}', "bad_field", "\"channel\""),
                              ('{"channel":"#c","user":"u\\u0001","action":"warn"}', "bad_field", "control character"),
                              ('{"channel":"#c",', "bad_json", "not valid JSON")]:
        st, out, _ = d.req("POST", "/v1/moderate", body, token="review")
        err = json.loads(out)["error"]
        eq((st, err["code"]), (400, code), out)
        check(words in err["message"], err)
    st, out, _ = d.req("POST", "/v1/moderate", '{"channel":"#c","user":"u9","action":"timeout","duration_s":600}', token="review")
    eq(st, 200, out)
    dec = json.loads(out)["decision"]
    eq((dec["target"], dec["strikes"]), ("u9", 1), dec)
    st, out, _ = d.req("POST", "/v1/moderate", '{"channel":"#c","user":"u9","action":"unban"}', token="review")
    eq(json.loads(out)["decision"]["strikes"], 0, "unban forgives the strikes")
    rows = json.loads(d.req("GET", "/v1/audit?user=u9", token="review")[1])["rows"]
    eq(len(rows), 2, rows)
    check(all(r["kind"] == "decision" and r["event_id"].startswith("manual:") for r in rows), rows)


@test
def the_panic_switch_goes_through_the_ingest_seam_and_lists_its_channels(d):
    """POST /v1/channels/CHANNEL/panic is a mod_action 'panic' decided in order with the
    channel's events: the preset of the rules applies while it is on, GET /v1/channels lists
    it, for_s 0 ends it; the same stream through /v1/events gives whiply check's decisions."""
    with open(os.path.join(ts.ROOT, "tests/golden/panic/rules.yaml")) as f:
        d.restart_with_rules(f.read())
    newbie = lambda i: json.dumps({"id": "pn-%d" % i, "platform": "twitch", "channel": "#pc",
                                  "user": {"id": "fresh%d" % i, "first_message": True}, "text": "hello"})
    eq(post(d, [newbie(1)])[0]["action"], "allow")
    for body, code, words in [('{"for_s":-1}', "bad_field", "for_s"), ('{}', "bad_field", "for_s"),
                              ('{"for_s":604801}', "bad_field", "7 days"),
                              ('{"for_s":60,"platform":"tw\\u0001"}', "bad_field", "control character"),
                              ('{"for_s":', "bad_json", "not valid JSON")]:
        st, out, _ = d.req("POST", "/v1/channels/%23pc/panic", body, token="review")
        err = json.loads(out)["error"]
        eq((st, err["code"]), (400, code), out)
        check(words in err["message"], err)
    eq(d.req("POST", "/v1/channels/%23pc/panic", '{"for_s":60}', token="read")[0], 403, "a viewer cannot")
    eq(d.req("POST", "/v1/channels/%23pc", '{"for_s":60}', token="review")[0], 404, "no /panic")
    eq(json.loads(d.req("GET", "/v1/channels", token="read")[1]), {"channels": []})
    t0 = int(time.time() * 1000)
    st, out, _ = d.req("POST", "/v1/channels/%23pc/panic", '{"for_s":600,"platform":"twitch"}', token="review")
    eq(st, 200, out)
    r = json.loads(out)
    eq((r["event"]["type"], r["event"]["action"], r["event"]["duration_s"], r["event"]["channel"]),
       ("mod_action", "panic", 600, "#pc"), r)
    check(t0 + 600000 <= r["panic_until"] <= int(time.time() * 1000) + 600000, r)
    eq(r["decision"]["panic_until"], r["panic_until"])
    chans = json.loads(d.req("GET", "/v1/channels", token="read")[1])["channels"]
    eq([(c["platform"], c["channel"], c["panic_until"], c["by"]) for c in chans],
       [("twitch", "#pc", r["panic_until"], "review")], chans)
    dec = post(d, [newbie(2)])[0]
    eq((dec["action"], dec["rules"], dec["panic_until"]), ("hold", ["panic-newcomers"], r["panic_until"]), dec)
    rows = json.loads(d.req("GET", "/v1/audit?action=allow&kind=decision", token="review")[1])["rows"]
    check(any(x["event_id"] == r["event"]["id"] for x in rows), "the switch is audited")
    st, out, _ = d.req("POST", "/v1/channels/%23pc/panic", '{"for_s":0,"platform":"twitch"}', token="review")
    eq((st, json.loads(out)["panic_until"]), (200, 0), out)
    eq(json.loads(d.req("GET", "/v1/channels", token="read")[1]), {"channels": []})
    eq(post(d, [newbie(3)])[0]["action"], "allow")
    # the same stream, with its panic switches, as whiply check decides it
    st, body, _ = d.req("POST", "/v1/events", ts.read(os.path.join(ts.ROOT, "tests/golden/panic/events.ndjson")),
                        token="events", ctype="application/x-ndjson")
    eq((st, body), (200, ts.read(os.path.join(ts.ROOT, "tests/golden/panic/expected.ndjson"))))
    # rules without a `panic` condition: the switch is accepted and says it changes nothing
    d.restart_with_rules("version: 1\nrules:\n  - id: rude\n    when: {words: [heck]}\n    action: delete\n")
    st, out, _ = d.req("POST", "/v1/channels/%23pc/panic", '{"for_s":60}', token="review")
    r = json.loads(out)
    eq((st, r["panic_until"]), (200, None), out)
    check("changes nothing" in r["warning"], r)


@test
def the_audit_search_filters_and_exports(d):
    d.restart_with_rules("version: 1\nrules:\n  - id: rude\n    when: {words: [\"heck*\"]}\n    action: delete\n"
                         "  - id: hold-it\n    when: {words: [suspicious]}\n    action: hold\n")
    post(d, [ev(1, "heck", channel="#a", user="ua"), ev(2, "fine", channel="#b", user="ub"),
             ev(3, "suspicious, \"quoted\"", channel="#a", user="uc")])
    eq(d.req("POST", "/v1/review/s-3/deny", '{"moderator":"mod_kay","note":"no"}', token="review")[0], 200)
    q = lambda s: json.loads(d.req("GET", "/v1/audit?" + s, token="review")[1])["rows"]
    eq([r["event_id"] for r in q("rule=rude")], ["s-1"])
    eq([r["event_id"] for r in q("channel=%23b")], ["s-2"])
    eq([r["event_id"] for r in q("moderator=mod_kay")], ["s-3"])
    eq([r["kind"] for r in q("kind=review")], ["review"])
    eq(len(q("since=1h&kind=decision")), 4, "three events and the verdict's mod_action")
    eq(q("until=1000"), [], "nothing before 1970-01-01T00:00:01")
    rows = q("limit=2")
    eq(len(rows), 2)
    nxt = json.loads(d.req("GET", "/v1/audit?limit=2", token="review")[1])["next"]
    older = q("limit=2&before=%d" % nxt)
    check(older[0]["seq"] < rows[-1]["seq"], "before pages back")
    st, nd, r = d.req("GET", "/v1/audit?format=ndjson&kind=decision", token="review")
    eq((st, r.getheader("Content-Type")), (200, "application/x-ndjson"))
    eq(len([json.loads(l) for l in nd.splitlines()]), 4)
    st, csv_text, r = d.req("GET", "/v1/audit?format=csv&channel=%23a&kind=decision", token="review")
    check(r.getheader("Content-Type").startswith("text/csv"), r.getheader("Content-Type"))
    import csv
    import io
    recs = list(csv.reader(io.StringIO(csv_text)))
    eq(recs[0], ["seq", "at_ms", "kind", "event_id", "channel", "user", "action", "body"])
    check(any(json.loads(x[7])["id"] == "s-3" for x in recs[1:]), "the body survives CSV quoting")
    for a, words in [("kind=nope", "'kind'"), ("since=yesterday", "'since'"), ("limit=0", "'limit'"), ("format=xml", "'format'")]:
        st, body, _ = d.req("GET", "/v1/audit?" + a, token="review")
        eq(st, 400, body)
        check(words in body, body)
    st, body, _ = d.req("GET", "/v1/audit/verify", token="review")
    v = json.loads(body)
    eq((st, v["ok"], v["result"]), (200, True, 0), body)


@test
def dry_run_and_history(d):
    rules = d.restart_with_rules("version: 1\nrules:\n  - id: rude\n    when: {words: [\"heck*\"]}\n    action: delete\n")
    post(d, [ev(1, "heck"), ev(2, "hecking"), ev(3, "nice"), "not json"])
    cand = "version: 1\nrules:\n  - id: rude\n    when: {words: [\"heck*\"]}\n    action: ban\n  - id: nice\n    when: {words: [nice]}\n    action: warn\n"
    st, body, _ = d.req("POST", "/v1/rules/dryrun", cand, token="rules")
    eq(st, 200, body)
    r = json.loads(body)
    eq((r["events"], r["decided"], r["changed"]), (3, 3, 3), r)
    by = {g["rule"]: g for g in r["by_rule"]}
    eq((by["rude"]["changed"], by["nice"]["changed"]), (2, 1), r["by_rule"])
    eq(by["nice"]["examples"][0]["text"], "nice")
    eq(by["nice"]["examples"][0]["after"], {"action": "warn", "rules": ["nice"]})
    eq((r["before"]["delete"], r["after"]["ban"]), (2, 2))
    st, body, _ = d.req("POST", "/v1/rules/dryrun", "version: 1\nrules:\n  - id: x\n    action: nope\n", token="rules")
    eq(st, 422, body)
    dg = json.loads(body)["error"]["diagnostics"]
    check(dg and dg[0]["line"] == 4, dg)
    with open(rules, "w") as f:
        f.write(cand)
    eq(d.req("POST", "/v1/rules/reload", token="rules")[0], 200)
    h = json.loads(d.req("GET", "/v1/rules/history", token="rules")[1])["rulesets"]
    eq([x["by"] for x in h[:2]], ["api", "start"])
    eq(h[0]["previous"], h[1]["ruleset"])
    eq(h[0]["source"], cand)


@test
def the_embedded_page_is_served_compressed_and_cached(d):
    st, body, r = d.req("GET", "/", token=None)
    eq(st, 200)
    check("<script defer src=\"/assets/app.js\"></script>" in body or "unbuilt" in body or "not built" in body, body[:300])
    etag = r.getheader("ETag")
    st, _, r = d.req("GET", "/", token=None, headers={"If-None-Match": etag})
    eq(st, 304)
    st, _, r = d.req("GET", "/assets/favicon.svg", token=None, headers={"Accept-Encoding": "gzip"})
    eq((st, r.getheader("Content-Encoding")), (200, "gzip"))
    for p in ("/assets/nope.js", "/assets/index.html", "/assets/"):
        eq(d.req("GET", p, token=None)[0], 404, p)
    st, body, _ = d.req("POST", "/", token=None)
    eq(st, 405, body)


def main():
    return ts.run_suite(TESTS)


if __name__ == "__main__":
    sys.exit(main())
