#!/usr/bin/env python3
"""tests/serve/test_outbox.py WHIPLY [NAME] - the action outbox end to end: signed webhooks
delivered to a real receiver process across kill -9 of the daemon, each id accepted once,
dead letters after outbox.attempts and the retry endpoint, alerts grouped into few posts.

The receiver (tests/serve/webhook_receiver.py) is a separate process on loopback that
verifies every Standard Webhooks signature with the configured secret and, with --faults,
answers 429 to one request in ten and 500 to one in fifty. Waiting is polling an observable
condition (the receiver's /stats, /v1/actions) with a deadline, never a sleep for a pace.
Prints PASS/FAIL lines and "serve: N passed, N failed" like test_serve.py.
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import test_serve as ts  # noqa: E402
from test_serve import check, eq  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "whsec_" + base64.b64encode(b"outbox-test-secret-0123456789abcdef").decode()
TESTS = []
RULES = """version: 1
rules:
  - {id: slur, when: {words: [bitch]}, action: {timeout: 10m}}
  - {id: link, when: {links: {deny: [evil.example]}}, action: hold}
"""


class Receiver:
    def __init__(self, faults=False):
        args = [sys.executable, os.path.join(HERE, "webhook_receiver.py"), SECRET]
        if faults:
            args.append("--faults")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # "port N" once it listens: an event, not a sleep
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=30) as r:
            return json.loads(r.read())

    def control(self, **kw):
        req = urllib.request.Request(self.url + "/control", data=json.dumps(kw).encode())
        urllib.request.urlopen(req, timeout=30).read()

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


def until(cond, timeout=90, what="a condition"):
    """Polls cond() (an observable state) until it is truthy, up to a deadline."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def test(fn):
    TESTS.append(fn)
    return fn


def daemon(name, extra="", outbox="{backoff: 20ms, backoff_cap: 300ms}"):
    d = ts.Daemon(name, extra="store: {preallocate: 0}\noutbox: %s\n" % outbox + extra)
    rules = os.path.join(d.dir, "rules.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    d.rules = rules
    return d


def events(prefix, n, text="hello chat", channel="#a"):
    return "".join(json.dumps({"id": "%s-%d" % (prefix, i), "channel": channel,
                               "platform": "twitch", "user": {"id": "u%d" % i, "name": "n%d" % i},
                               "text": text, "meta": {"msg_id": "m-%s-%d" % (prefix, i)}}) + "\n"
                   for i in range(n))


def post(d, body):
    st, data, _ = d.req("POST", "/v1/events", body)
    eq(st, 200, "POST /v1/events: " + data[:300])
    return [json.loads(l) for l in data.splitlines()]


def hook(url, events_=("decision",), name="sink", more=""):
    return ("webhooks:\n  - name: %s\n    url: %s\n    secret: %s\n    events: [%s]\n%s"
            % (name, url, SECRET, ", ".join(events_), more))


@test
def webhooks_survive_kill9_each_id_accepted_once_signatures_valid():
    recv = Receiver(faults=True)
    d = daemon("kill9", hook(recv.url + "/hook"))
    try:
        d.start()
        sent = []
        for b in range(10):
            body = events("k%d" % b, 40)
            sent += [x["id"] for x in post(d, body)]
            if b == 4:
                # mid-stream: deliveries are still due (one in ten answered 429 with a
                # Retry-After of 1 s), and the daemon dies without a word
                st = recv.stats()
                check(len(st["accepted"]) < len(sent), "some deliveries are still due at the kill")
                d.kill9()
                d.start()
        want = set(sent)

        def delivered():
            st = recv.stats()
            got = {p["data"]["id"] for p in st["accepted"].values() if p["type"] == "decision"}
            return st if want <= got else None
        st = until(delivered, 120, "every decision delivered")
        eq(st["bad_signatures"], 0, "bad signatures: %s" % st["bad_reasons"][:3])
        got = [p["data"]["id"] for p in st["accepted"].values() if p["type"] == "decision"]
        eq(len(got), len(set(got)), "one accepted delivery per event")
        eq(set(got), want, "exactly the events posted")
        check(st["faults"] > 0, "the receiver's faults were exercised")
        # the outbox agrees: one operation per event, all done, none due
        db = d.db()
        rows = db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        db.close()
        eq(dict(rows), {"done": len(want)}, "the outbox's rows")
        st2, body, _ = d.json("GET", "/v1/actions?status=due")
        eq(body["actions"], [], "nothing due")
        st2, body, _ = d.json("GET", "/v1/actions?platform=webhook:sink&limit=2")
        eq(len(body["actions"]), 2, "a page")
        one = body["actions"][0]
        eq(d.json("GET", "/v1/actions/" + one["id"])[1]["status"], "done", "one action")
        eq(d.req("GET", "/v1/actions/" + "0" * 32)[0], 404, "an unknown id")
        m = d.req("GET", "/metrics")[1]
        check('whiply_outbox_outcomes_total{platform="webhook:sink",outcome="done"}' in m, m[-500:])
        rc, out = ts.verify(d.data)
        eq(rc, 0, "audit verify: " + out)
        print("  receiver: %d accepted, %d delivered again (at least once), %d faults"
              % (len(got), st["duplicates"], st["faults"]), flush=True)
    finally:
        d.stop()
        recv.stop()


@test
def a_dead_letter_after_n_attempts_then_the_retry_endpoint():
    recv = Receiver()
    d = daemon("dead", hook(recv.url + "/dead"), "{attempts: 3, backoff: 10ms, backoff_cap: 50ms}")
    try:
        d.start()
        post(d, events("d", 1))

        def dead():
            b = d.json("GET", "/v1/actions?status=dead")[1]["actions"]
            return b[0] if b else None
        a = until(dead, 60, "the delivery dead-lettered")
        eq(a["attempts"], 3, "attempts")
        check("attempts exhausted" in a["detail"] and "503" in a["detail"], a["detail"])
        db = d.db()
        kinds = [r[0] for r in db.execute(
            "SELECT action FROM audit WHERE kind = 'action' ORDER BY seq").fetchall()]
        db.close()
        eq(kinds, ["retry", "retry", "dead"], "an audit row per outcome")
        # a done or unknown one cannot be retried; a dead one can, and is delivered
        eq(d.req("POST", "/v1/actions/%s/retry" % ("0" * 32), "")[0], 404, "unknown id")
        recv.control(dead=False)
        st, body, _ = d.json("POST", "/v1/actions/%s/retry" % a["id"], '{"moderator": "mo"}')
        eq(st, 200, body)
        until(lambda: d.json("GET", "/v1/actions/" + a["id"])[1]["status"] == "done", 60,
              "the retried delivery done")
        eq(len(recv.stats()["accepted"]), 1, "delivered once")
        st, body, _ = d.json("POST", "/v1/actions/%s/retry" % a["id"], "")
        eq(st, 409, "a done action is not retried")
        db = d.db()
        kinds = [r[0] for r in db.execute(
            "SELECT action FROM audit WHERE kind = 'action' ORDER BY seq").fetchall()]
        db.close()
        eq(kinds, ["retry", "retry", "dead", "retried", "done"], "audit rows")
        rc, out = ts.verify(d.data)
        eq(rc, 0, "audit verify: " + out)
    finally:
        d.stop()
        recv.stop()


def alert_cfg(recv):
    return ("alerts:\n"
            "  - {name: disc, url: %s/discord, format: discord, events: [hold], window: 300ms,"
            " min_interval: 200ms, dashboard_url: 'http://mods.example:8080/'}\n"
            "  - {name: slk, url: %s/slack, format: slack, events: [hold], window: 300ms,"
            " min_interval: 200ms}\n" % (recv.url, recv.url))


@test
def fifty_holds_in_a_burst_make_a_few_alerts_naming_all_fifty():
    recv = Receiver()
    d = daemon("alerts", alert_cfg(recv))
    try:
        d.start()
        held = post(d, events("h", 50, "look https://evil.example/x"))
        eq({x["action"] for x in held}, {"hold"}, "all held")
        ids = [x["id"] for x in held]

        def named(fmt):
            posts = recv.stats()["alerts"][fmt]
            text = json.dumps(posts)
            return posts if all("/#/review/" + i + ")" in text or "/#/review/" + i + "|" in text
                                for i in ids) else None
        disc = until(lambda: named("discord"), 60, "discord alerts naming all 50")
        slk = until(lambda: named("slack"), 60, "slack alerts naming all 50")
        check(1 <= len(disc) <= 4, "few discord posts, not fifty: %d" % len(disc))
        check(1 <= len(slk) <= 4, "few slack posts: %d" % len(slk))
        for p in disc:
            eq(sorted(p), ["allowed_mentions", "content", "embeds"], "discord keys")
            check(p["content"].startswith("whiply: ") and "held for review in #a" in p["content"],
                  p["content"])
            check(all(len(e["description"]) <= 4096 for e in p["embeds"]) and len(p["embeds"]) <= 10,
                  "discord limits")
            check("http://mods.example:8080/#/review/h-" in p["embeds"][0]["description"],
                  "the dashboard link")
        for p in slk:
            eq(sorted(p), ["blocks", "text"], "slack keys")
            eq(p["blocks"][0]["type"], "header", "a header block")
            check(all(b["type"] == "section" and b["text"]["type"] == "mrkdwn"
                      and len(b["text"]["text"]) <= 3000 for b in p["blocks"][1:]), "sections")
            check("<http://127.0.0.1:8080/#/review/h-" in json.dumps(p), "slack link")
        # each hold is one alert operation per alert, all done
        db = d.db()
        n = db.execute("SELECT count(*) FROM outbox WHERE kind = 'alert' AND status = 'done'"
                       ).fetchone()[0]
        db.close()
        eq(n, 100, "alert operations done")
    finally:
        d.stop()
        recv.stop()


@test
def a_bad_webhook_config_is_refused_with_file_line_and_column():
    d = ts.Daemon("badcfg", extra="webhooks:\n  - name: x\n    url: ftp://nope\n    secret: '!!'\n"
                  "    events: [decision, nope]\n")
    p = subprocess.run([ts.WHIPLY, "serve", "--config", d.config, "--data", d.data],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode != 0, "refused")
    for want in ["whiply.yaml:4:10: error: 'url' must be an http:// or https:// URL",
                 "whiply.yaml:5:14: error: 'secret' must be base64",
                 "whiply.yaml:6:24: error: unknown event 'nope'"]:
        check(want in p.stderr, "%r not in %s" % (want, p.stderr))
    check("needs" not in p.stderr, "no second message for a key given badly: " + p.stderr)


def run(fn):
    name = "serve: outbox: " + fn.__name__.replace("_", " ")
    if ts.ONLY and ts.ONLY not in fn.__name__:
        return
    try:
        fn()
        ts.results["pass"] += 1
        print("PASS " + name, flush=True)
    except Exception as e:
        ts.results["fail"] += 1
        print("FAIL %s: %s" % (name, e), flush=True)


def main():
    try:
        for fn in TESTS:
            run(fn)
    finally:
        import shutil
        shutil.rmtree(ts.TMP, ignore_errors=True)
    print("serve: %d passed, %d failed" % (ts.results["pass"], ts.results["fail"]))
    return 1 if ts.results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
