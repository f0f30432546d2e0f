#!/usr/bin/env python3
"""tests/serve/test_bus.py WHIPLY [NAME] - whiply on NATS JetStream: `whiply publish`,
`whiply bus dump`, and `whiply serve` consuming the bus.

Every test starts a real nats-server (Debian's, JetStream on, a temporary store, a random
loopback port) and real `whiply serve` processes on the harness of test_serve.py, and stops
them. Waiting is for a condition (a log line, a counter in /metrics, a message count), never a
fixed sleep. Prints PASS/FAIL lines and "serve: N passed, N failed" like test_serve.py.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import test_serve as ts  # noqa: E402
from test_serve import check, eq, read  # noqa: E402

EVENTS = os.path.join(ts.EXAMPLES, "events.ndjson")
GOLDEN = os.path.join(ts.ROOT, "tests/golden/examples/expected.ndjson")
LEASE = "2s"
TESTS = []


def good_events():
    """The example events that are events (the file also has lines that are not, which the
    golden answers with errors), as (text, golden decision line) pairs."""
    ev = [l for l in read(EVENTS).splitlines() if l.strip()]
    gold = read(GOLDEN).splitlines()
    eq(len(ev), len(gold), "one golden line per example line")
    return [(e, g) for e, g in zip(ev, gold) if "error" not in json.loads(g)]


def good_file(dirname):
    path = os.path.join(dirname, "good.ndjson")
    with open(path, "w") as f:
        f.write("".join(e + "\n" for e, _ in good_events()))
    return path


class Nats:
    """A nats-server with JetStream on a random loopback port."""

    def __init__(self, name, port=-1):
        exe = shutil.which("nats-server")
        if not exe:
            raise RuntimeError("nats-server is not installed (make test installs it: apt-get install nats-server)")
        self.dir = os.path.join(ts.TMP, name + "-nats")
        os.makedirs(self.dir, exist_ok=True)
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [exe, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", os.path.join(self.dir, "js")],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        line = self.wait_line(r"Listening for client connections on 127\.0\.0\.1:(\d+)")
        if not line:
            raise RuntimeError("nats-server did not start: " + "".join(self.lines[-10:]))
        self.port = int(re.search(r":(\d+)\s*$", line).group(1))
        self.url = "nats://127.0.0.1:%d" % self.port
        check(self.wait_line(r"Server is ready"), "nats-server ready")

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_line(self, pattern, timeout=30):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self.cond:
            i = 0
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def raw_publish(self, subject, payload):
        """A plain NATS publish (the wire protocol: INFO, CONNECT, PUB, PING/PONG), as any
        client would send; the events stream captures it."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        f = s.makefile("rb")
        f.readline()  # INFO
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
        s.sendall(b"PUB %s %d\r\n%s\r\nPING\r\n" % (subject.encode(), len(payload), payload))
        eq(f.readline().strip(), b"PONG", "the server took the publish")
        s.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def whiply(*args, stdin=None):
    return subprocess.run([ts.WHIPLY, *args], input=stdin, capture_output=True, text=True,
                          timeout=300)


def dump(nats, stream="decisions"):
    p = whiply("bus", "dump", "--bus", nats.url, "--stream", stream)
    eq(p.returncode, 0, "bus dump: " + p.stderr)
    return [json.loads(l) for l in p.stdout.splitlines()]


def wait_for(what, fn, timeout=60):
    """Polls fn until it returns something true (the daemon and the server work on their own
    schedule; each poll is a real query), then returns it."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def metrics(d, gauge="owned"):
    """{partition: instance} of the partitions the gauge (owned, deciding) says are the
    instance's, and the bus counters."""
    st, body, _ = d.req("GET", "/metrics")
    eq(st, 200, "metrics")
    owned = {}
    counters = {}
    for l in body.splitlines():
        m = re.match(r'whiply_bus_partition_(\w+)\{instance="([^"]+)",partition="(\d+)"\} (\d)', l)
        if m and m.group(1) == gauge and m.group(4) == "1":
            owned[int(m.group(3))] = m.group(2)
        m = re.match(r'(whiply_bus_\w+_total)\{instance="[^"]+"\} (\d+)', l)
        if m:
            counters[m.group(1)] = int(m.group(2))
    return owned, counters


def bus_daemon(name, nats, instance, partitions=8, rules=None, snapshot="30s", http="decide"):
    extra = ("store:\n  preallocate: 0\nbus:\n  url: %s\n  partitions: %d\n  instance: %s\n"
             "  lease: %s\n  snapshot: %s\n  http: %s\n"
             % (nats.url, partitions, instance, LEASE, snapshot, http))
    d = ts.Daemon(name, rules=rules, extra=extra)
    d.start()
    check(d.wait_line(r"consuming the bus at"), "the daemon says it consumes the bus")
    return d


def two_split(tag, nats):
    """alpha alone (it owns every partition), then beta: returns both once the partitions
    are split between them, each owning some and none owned by both."""
    a = bus_daemon(tag + "-a", nats, "alpha")
    wait_for("alpha owns all", lambda: len(metrics(a)[0]) == 8)
    b = bus_daemon(tag + "-b", nats, "beta")

    def split():
        oa, ob = metrics(a)[0], metrics(b)[0]
        if set(oa) & set(ob):
            return None  # handing over: the giver stops before the taker claims
        return (oa, ob) if len(oa) + len(ob) == 8 and oa and ob else None
    oa, ob = wait_for("the partitions split between alpha and beta", split, timeout=60)
    return a, b, oa, ob


def decisions_by_id(msgs):
    dec, act = {}, {}
    for m in msgs:
        d = json.loads(m["data"])
        key = d.get("id", "seq:%d" % m["seq"])
        target = act if m["subject"].startswith("whiply.actions.") else dec
        check(key not in target, "one decision and one action per event at most: " + key)
        target[key] = (m, m["data"])
    return dec, act


def test(fn):
    TESTS.append((fn.__name__.replace("_", " "), fn))
    return fn


# ---------------------------------------------------------------------------------------


@test
def publish_places_each_channel_on_one_partition_and_drops_a_second_copy():
    nats = Nats("pub")
    try:
        odd = [{"id": "odd-%d" % i, "type": "message", "platform": "discord",
                "channel": ch, "user": {"id": "u%d" % i}, "text": "hi",
                "ts": "2026-11-24T11:00:00Z"}
               for i, ch in enumerate(["#a.b c", "x*y>z", "caf\u00e9", "", "a~41"])]
        lines = "".join(e + "\n" for e, _ in good_events()) + "".join(
            json.dumps(e) + "\n" for e in odd)
        path = os.path.join(nats.dir, "in.ndjson")
        with open(path, "w") as f:
            f.write(lines.replace("\n", "\n{not json\n", 1))  # line 2 is bad
        n = len([l for l in lines.splitlines() if l.strip()])
        p = whiply("publish", "--bus", nats.url, "--partitions", "8", "--in", path)
        eq(p.returncode, 1, "a bad line makes the exit status 1: " + p.stderr)
        check(re.search(re.escape(path) + r":2: error: bad_json", p.stderr), p.stderr)
        check("%d events published (0 already on the bus)" % n in p.stderr, p.stderr)
        p = whiply("publish", "--bus", nats.url, "--partitions", "8", stdin=lines)
        eq(p.returncode, 0, p.stderr)
        check("%d events published (%d already on the bus)" % (n, n) in p.stderr, p.stderr)
        msgs = dump(nats, "events")
        eq(len(msgs), n, "the stream holds each event once")
        part_of = {}
        for m in msgs:
            t = m["subject"].split(".")
            eq(len(t), 5, "whiply.events.P.PLATFORM.CHANNEL: " + m["subject"])
            eq(t[:2], ["whiply", "events"], m["subject"])
            check(0 <= int(t[2]) < 8, m["subject"])
            ev = json.loads(m["data"])
            eq(m["msg_id"], ev["id"], "Nats-Msg-Id is the event id")
            key = (ev["platform"], ev["channel"])
            eq(part_of.setdefault(key, t[2]), t[2], "one partition per channel: %r" % (key,))
            # the channel's token decodes back to the name
            enc = "".join(c if re.match(r"[A-Za-z0-9_-]", c) else "".join(
                "~%02X" % b for b in c.encode()) for c in ev["channel"]) or "~"
            eq(t[4], enc, "the channel's subject token")
        check(len(set(part_of.values())) > 1, "channels spread over partitions")
    finally:
        nats.stop()


@test
def one_instance_decides_the_bus_as_whiply_check_does():
    nats = Nats("one")
    d = None
    try:
        d = bus_daemon("one", nats, "one")
        p = whiply("publish", "--bus", nats.url, "--partitions", "8", "--in", good_file(nats.dir))
        eq(p.returncode, 0, p.stderr)
        n = len(good_events())
        wait_for("every event acked", lambda: metrics(d)[1].get("whiply_bus_acked_total", 0) >= n)
        dec, act = decisions_by_id(dump(nats))
        want = {json.loads(g)["id"]: g for _, g in good_events()}
        eq(len(dec), len(want), "one decision per event")
        for i, l in want.items():
            eq(dec[i][1], l, "decision of " + i)
            m = dec[i][0]
            eq(m["msg_id"], "d:" + i, "the decision's Nats-Msg-Id")
            check(m["subject"].startswith("whiply.decisions."), m["subject"])
            a = json.loads(l)["action"]
            if a == "allow":
                check(i not in act, "no action for an allow: " + i)
            else:
                eq(act[i][1], l, "the action carries the decision")
                eq(act[i][0]["msg_id"], "a:" + i, "the action's Nats-Msg-Id")
                eq(act[i][0]["subject"].split(".")[2:], m["subject"].split(".")[3:],
                   "whiply.actions.PLATFORM.CHANNEL")
        owned, c = metrics(d)
        eq(sorted(owned), list(range(8)), "a lone instance owns every partition")
        eq(c["whiply_bus_events_total"], n, "events decided")
        # the audit trail has them, as for events over HTTP
        eq(d.db().execute("SELECT count(*) FROM audit WHERE kind = 'decision'").fetchone()[0] >= n, True, "audit rows")
    finally:
        if d:
            d.stop()
        nats.stop()


@test
def a_message_that_is_not_an_event_gets_an_error_decision_and_the_rest_go_on():
    nats = Nats("bad")
    d = None
    try:
        d = bus_daemon("bad", nats, "bad", partitions=1)
        good = json.loads(read(EVENTS).splitlines()[0])
        nats.raw_publish("whiply.events.0.twitch.x", b"{not json")
        nats.raw_publish("whiply.events.0.twitch.x", b"")
        nats.raw_publish("whiply.events.0.twitch.x", json.dumps(good, indent=2).encode())
        nats.raw_publish("whiply.events.0.twitch.x", b"\xff\xfe")
        wait_for("4 messages acked", lambda: metrics(d)[1].get("whiply_bus_acked_total", 0) >= 4)
        msgs = [m for m in dump(nats) if m["subject"].startswith("whiply.decisions.")]
        eq(len(msgs), 4, "one output per message")
        outs = [json.loads(m["data"]) for m in msgs]
        check("error" in outs[0] and "error" in outs[1] and "error" in outs[3], outs)
        eq(outs[2].get("id"), good["id"], "a pretty-printed event is decided: %r" % outs[2])
        check(msgs[0]["msg_id"].startswith("d:seq:"), "an error without an id is named by sequence")
        eq(d.req("GET", "/healthz", token=None)[0], 200, "still serving")
        # ids that JSON escapes (quotes, backslashes) and that share their first 120 escaped
        # bytes, and a non-ASCII one: each event its own message id and decision
        ids = ['"' * 60 + "a", '"' * 60 + "b", "caf\u00e9 \\ back"]
        evs = [dict(good, id=i) for i in ids]
        p = whiply("publish", "--bus", nats.url, "--partitions", "1",
                   stdin="".join(json.dumps(e) + "\n" for e in evs))
        eq(p.returncode, 0, p.stderr)
        check("3 events published (0 already on the bus)" in p.stderr, p.stderr)
        wait_for("7 messages acked", lambda: metrics(d)[1].get("whiply_bus_acked_total", 0) >= 7)
        dec = [m for m in dump(nats) if m["subject"].startswith("whiply.decisions.")]
        got = {json.loads(m["data"]).get("id"): m["msg_id"] for m in dec}
        for i in ids:
            check(i in got, "decided: %r" % i)
            eq(got[i], "d:" + json.dumps(i, ensure_ascii=False)[1:-1],
               "the message id is the JSON-escaped id")
        # verify: the 3 messages that are not events have no rows, and are counted so
        v = whiply("audit", "verify", "--bus", nats.url, "--partitions", "1", "--data", d.data)
        eq(v.returncode, 0, "verify: " + v.stdout + v.stderr)
        check("7 events acknowledged, 0 decided again (same decision), 0 missing, "
              "0 conflicting, 3 not events" in v.stdout, v.stdout)
    finally:
        if d:
            d.stop()
        nats.stop()


@test
def two_instances_split_the_partitions_and_one_takes_over_when_the_other_dies():
    nats = Nats("two")
    a = b = None
    try:
        a, b, oa, ob = two_split("two", nats)
        # the same split as rendezvous hashing gives, whatever the start order: each owns some
        check(0 < len(oa) < 8, "both own some: %r %r" % (oa, ob))
        p = whiply("publish", "--bus", nats.url, "--partitions", "8", "--in", good_file(nats.dir))
        eq(p.returncode, 0, p.stderr)
        n = len(good_events())
        wait_for("every event acked", lambda: metrics(a)[1].get("whiply_bus_acked_total", 0)
                 + metrics(b)[1].get("whiply_bus_acked_total", 0) >= n)
        t0 = time.monotonic()
        a.kill9()
        wait_for("beta owns all after alpha died",
                 lambda: len(metrics(b)[0]) == 8, timeout=30)
        gap = time.monotonic() - t0
        check(gap <= 2 * 2 + 2, "takeover within 2 leases (plus a renewal round): %.1f s" % gap)
        # more events after the takeover: every event of both rounds decided exactly once
        more = [json.loads(e) for e, _ in good_events()]
        for e in more:
            e["id"] = "r2-" + e["id"]
        p = whiply("publish", "--bus", nats.url, "--partitions", "8",
                   stdin="".join(json.dumps(e) + "\n" for e in more))
        eq(p.returncode, 0, p.stderr)
        dec = wait_for("every decision published",
                       lambda: (lambda d: d if len(d) >= 2 * n else None)(decisions_by_id(dump(nats))[0]))
        eq(len(dec), 2 * n, "each event once")
        for e, g in good_events():
            i = json.loads(e)["id"]
            eq(dec[i][1], g, "decision of " + i)
        wait_for("every event of round two acked",
                 lambda: metrics(b)[1].get("whiply_bus_acked_total", 0) >= n)
        # the two trails together: every acknowledged event has its decision row
        v = whiply("audit", "verify", "--bus", nats.url, "--data", a.data, "--data", b.data)
        eq(v.returncode, 0, "verify across trails: " + v.stdout + v.stderr)
        check("every acknowledged event has its decision" in v.stdout, v.stdout)
        m = re.search(r"bus: (\d+) events acknowledged", v.stdout)
        check(m and int(m.group(1)) >= 2 * len(good_events()), v.stdout)
        # alpha's trail alone lacks round two (alpha was dead), and says so
        v = whiply("audit", "verify", "--bus", nats.url, "--data", a.data)
        eq(v.returncode, 1, "verify with one trail of two: " + v.stdout + v.stderr)
        check("without a decision row" in v.stdout and "NOT every" in v.stdout, v.stdout)
    finally:
        for d in (a, b):
            if d and d.proc:
                d.stop()
        nats.stop()


@test
def a_paused_owner_is_fenced_and_every_event_is_decided_by_one_instance_once():
    nats = Nats("pause")
    a = b = None
    try:
        a, b, _, _ = two_split("pause", nats)
        rounds = []

        def publish_round(tag):
            evs = [json.loads(e) for e, _ in good_events()]
            for e in evs:
                e["id"] = tag + e["id"]
            p = whiply("publish", "--bus", nats.url, "--partitions", "8",
                       stdin="".join(json.dumps(e) + "\n" for e in evs))
            eq(p.returncode, 0, p.stderr)
            rounds.append([e["id"] for e in evs])

        def decided():
            return len(decisions_by_id(dump(nats))[0])
        publish_round("p1-")
        n = len(rounds[0])
        wait_for("round 1 decided", lambda: decided() >= n)
        a.proc.send_signal(signal.SIGSTOP)  # past its lease: beta must take everything
        wait_for("beta owns all while alpha is paused", lambda: len(metrics(b)[0]) == 8)
        publish_round("p2-")
        wait_for("round 2 decided", lambda: decided() >= 2 * n)
        a.proc.send_signal(signal.SIGCONT)
        wait_for("alpha sees it lost its partitions",
                 lambda: metrics(a)[1].get("whiply_bus_fenced_total", 0) >= 1)
        wait_for("the partitions split again", lambda: (lambda oa, ob: oa and ob and
                 len(oa) + len(ob) == 8 and not set(oa) & set(ob))(metrics(a)[0], metrics(b)[0]))
        publish_round("p3-")
        wait_for("round 3 decided", lambda: decided() >= 3 * n)
        dec = decisions_by_id(dump(nats))[0]
        eq(len(dec), 3 * n, "each event once on the decisions stream")
        # each event decided by exactly one instance: one audit row across both trails
        rows = {}
        for d in (a, b):
            for (eid,) in d.db().execute("SELECT event_id FROM audit WHERE kind = 'decision'"):
                rows[eid] = rows.get(eid, 0) + 1
        for r in rounds:
            for i in r:
                eq(rows.get(i), 1, "audit rows of " + i + " across the two instances")
    finally:
        for d in (a, b):
            if d and d.proc:
                d.proc.send_signal(signal.SIGCONT)
                d.stop()
        nats.stop()


@test
def http_events_go_onto_the_bus_with_bus_http_publish():
    """POST /v1/events publishes (202, where each event went) instead of deciding: the
    partition's owner decides it from the bus, as `whiply check` does; a second POST of the
    same events is deduplicated by JetStream; a line that is not an event gets its error
    line and is not published, the others are."""
    nats = Nats("http")
    d = None
    try:
        d = bus_daemon("http", nats, "web", http="publish")
        good = good_events()
        body = "".join(e + "\n" for e, _ in good)
        st, data, _ = d.req("POST", "/v1/events", body, ctype="application/x-ndjson")
        eq(st, 202, "accepted: " + data[:300])
        lines = [json.loads(l) for l in data.splitlines()]
        eq(len(lines), len(good), "one line per event")
        for (e, _), l in zip(good, lines):
            eq(l.get("id"), json.loads(e)["id"], "in order")
            check(l.get("published") is True and l.get("duplicate") is False, l)
            check(0 <= l["partition"] < 8 and l["seq"] > 0, l)
        wait_for("every event decided from the bus",
                 lambda: metrics(d)[1].get("whiply_bus_acked_total", 0) >= len(good))
        dec, _ = decisions_by_id(dump(nats))
        for e, g in good:
            eq(dec[json.loads(e)["id"]][1], g, "decided as whiply check does")
        # the same again: JetStream has them; one bad line among new ones
        st, data, _ = d.req("POST", "/v1/events", body, ctype="application/x-ndjson")
        eq(st, 202, data[:200])
        check(all(json.loads(l)["duplicate"] for l in data.splitlines()), data[:300])
        first = json.loads(good[0][0])
        mixed = json.dumps(dict(first, id="new-1")) + "\n{oops\n" + json.dumps(dict(first, id="new-2"))
        st, data, _ = d.req("POST", "/v1/events", mixed, ctype="application/x-ndjson")
        eq(st, 202, data)
        out = [json.loads(l) for l in data.splitlines()]
        eq([o.get("id") for o in out], ["new-1", None, "new-2"], data)
        check("error" in out[1] and out[1]["line"] == 2, out[1])
        # one event as application/json: its line alone
        st, data, _ = d.req("POST", "/v1/events", json.dumps(dict(first, id="new-3")),
                            ctype="application/json")
        eq(st, 202, data)
        eq(json.loads(data)["id"], "new-3", data)
        wait_for("the new ones decided",
                 lambda: metrics(d)[1].get("whiply_bus_acked_total", 0) >= len(good) + 3)
        # nothing decided over HTTP itself: the audit has one row per event, from the bus
        n = d.db().execute("SELECT count(*) FROM audit WHERE kind = 'decision'").fetchone()[0]
        eq(n, len(good) + 3, "decision rows")
    finally:
        if d:
            d.stop()
        nats.stop()


BEHAVIOUR = os.path.join(ts.EXAMPLES, "behaviour.yaml")
BEHAVIOUR_EVENTS = os.path.join(ts.EXAMPLES, "behaviour.ndjson")


def state_moves(tag, how):
    """Half the behaviour examples (floods, copies, waves, raids: state decides them) to
    instance one, which then lets go of its partitions (how: "stop", a clean stop, or "kill",
    kill -9 with no snapshot written); the other half to instance two, started afterwards
    with an empty data folder. Every decision must be what `whiply check` gives over the whole
    stream, and two must have taken the state over by a snapshot or by a replay."""
    nats = Nats(tag)
    a = b = None
    try:
        lines = [l for l in read(BEHAVIOUR_EVENTS).splitlines() if l.strip()]
        first, second = lines[:len(lines) // 2], lines[len(lines) // 2:]
        want = whiply("check", "--rules", BEHAVIOUR, stdin="".join(l + "\n" for l in lines))
        eq(want.returncode, 0, want.stderr)
        want = want.stdout.splitlines()
        eq(len(want), len(lines), "one decision per example")
        a = bus_daemon(tag + "-a", nats, "one", rules=BEHAVIOUR, snapshot="1h")
        p = whiply("publish", "--bus", nats.url, "--partitions", "8",
                   stdin="".join(l + "\n" for l in first))
        eq(p.returncode, 0, p.stderr)
        wait_for("the first half acked",
                 lambda: metrics(a)[1].get("whiply_bus_acked_total", 0) >= len(first))
        if how == "stop":
            a.stop()
        else:
            a.kill9()
        b = bus_daemon(tag + "-b", nats, "two", rules=BEHAVIOUR, snapshot="1h")
        wait_for("two owns every partition", lambda: len(metrics(b)[0]) == 8, timeout=30)
        p = whiply("publish", "--bus", nats.url, "--partitions", "8",
                   stdin="".join(l + "\n" for l in second))
        eq(p.returncode, 0, p.stderr)
        wait_for("the second half acked",
                 lambda: metrics(b)[1].get("whiply_bus_acked_total", 0) >= len(second))
        dec, _ = decisions_by_id(dump(nats))
        eq(len(dec), len(lines), "one decision per event")
        for l, w in zip(lines, want):
            i = json.loads(l)["id"]
            eq(dec[i][1], w, "decision of " + i)
        c = metrics(b)[1]
        if how == "stop":
            eq(c.get("whiply_bus_replayed_total", 0), 0, "the released state was snapshotted")
        else:
            eq(c.get("whiply_bus_replayed_total", 0), len(first),
               "the first half replayed for its state")
        return c
    finally:
        for d in (a, b):
            if d and d.proc and d.proc.poll() is None:
                d.stop()
        nats.stop()


@test
def state_moves_with_a_partition_its_owner_lets_go():
    state_moves("snap", "stop")


@test
def state_is_replayed_when_the_owner_died_without_a_snapshot():
    state_moves("replay", "kill")


@test
def a_bus_that_is_not_there_yet_is_waited_for_while_serving():
    # a port nobody listens on (yet): the daemon serves, says why it has no bus, answers
    # events meant for the bus with 503, and consumes the bus once a server comes up there
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = type("N", (), {"url": "nats://127.0.0.1:%d" % port})()
    extra = ("store:\n  preallocate: 0\nbus:\n  url: %s\n  partitions: 4\n  instance: late\n"
             "  lease: %s\n  http: publish\n" % (url.url, LEASE))
    d = ts.Daemon("late", extra=extra)
    nats = None
    try:
        d.start()
        check(d.wait_line(r"cannot connect to the bus at .*; trying again in"),
              "the daemon says it has no bus and will try again")
        st, body, _ = d.req("POST", "/v1/events", good_events()[0][0], token="events")
        eq(st, 503, "an event for the bus without a bus: " + body)
        check("bus_unavailable" in body, body)
        st, _, _ = d.req("GET", "/healthz")
        eq(st, 200, "the daemon serves meanwhile")
        nats = Nats("late", port=port)
        check(d.wait_line(r"consuming the bus at", timeout=30), "the daemon consumes the bus")
        wait_for("it owns every partition", lambda: len(metrics(d)[0]) == 4, timeout=30)
        st, body, _ = d.req("POST", "/v1/events", good_events()[0][0], token="events")
        eq(st, 202, "an event for the bus once there is one (published): " + body)
    finally:
        if d.proc:
            d.stop()
        if nats:
            nats.stop()


def main():
    return ts.run_suite([], TESTS)


if __name__ == "__main__":
    sys.exit(main())
