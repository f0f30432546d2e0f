#!/usr/bin/env python3
"""tests/serve/test_service_hardening.py WHIPLY - the daemon's promises where they were broken.

The real `whiply serve` (the harness of test_serve.py), driven into the failures that broke
them: a full disk (a small tmpfs), another process holding the database's write lock (a
sqlite3 connection in BEGIN IMMEDIATE), kill -9; and events that mean one thing to whiply
and another to whoever reads them next (control characters in identifiers, duplicate
keys), retries counted as events, rules pointed at what is not a file.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402

check, eq = ts.check, ts.eq
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def post_one(d, event, timeout=60):
    """POSTs one JSON event; (status, parsed answer)."""
    st, data, _ = d.req("POST", "/v1/events", json.dumps(event), token="events",
                        ctype="application/json")
    return st, json.loads(data)


def decision(d, event_id):
    st, data, _ = d.req("GET", "/v1/decisions/" + event_id, token="review")
    return st


def audit_rows(d, event_id):
    db = d.db()
    try:
        return db.execute("SELECT count(*) FROM audit WHERE event_id = ?", (event_id,)).fetchone()[0]
    finally:
        db.close()


def metric(d, name):
    m = d.req("GET", "/metrics", token="events")[1]
    found = re.search(r"^%s (\S+)$" % re.escape(name), m, re.M)
    return float(found.group(1)) if found else None


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t0


class Lock:
    """Another process's write lock on the database (a backup, an operator's sqlite3)."""

    def __init__(self, d):
        self.db = d.db()
        self.db.isolation_level = None
        self.db.execute("BEGIN IMMEDIATE")

    def release(self):
        if self.db:
            self.db.execute("ROLLBACK")
            self.db.close()
            self.db = None


def in_thread(fn, *a, **kw):
    """Runs fn(*a, **kw) on a thread; the thread's .result is its return value or exception."""
    t = threading.Thread(target=lambda: setattr(t, "result", _call(fn, *a, **kw)), daemon=True)
    t.start()
    return t


def _call(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except Exception as e:  # the connection of a killed daemon, say
        return e


HELD = {"id": "h-1", "channel": "#pixelqueen", "user": {"id": "u-77"},
        "text": "look https://tiermaker.com/1"}  # examples/rules.yaml holds it (unknown-links)


# ---- defect 1: no acknowledgement without an audit row --------------------------------------


class SmallDisk:
    """d's data folder on a small tmpfs with nothing written ahead, so the disk can be filled."""

    def __init__(self, d):
        d.stop()
        self.d = d
        self.mnt = os.path.join(d.dir, "small-disk")
        os.makedirs(self.mnt, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", self.mnt], check=True)
        self.filler = os.path.join(self.mnt, "filler")
        d.data = os.path.join(self.mnt, "data")
        d.start()

    def fill(self):
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        for chunk in (65536, 4096, 1):  # to the last byte
            try:
                while os.write(fd, b"x" * chunk):
                    pass
            except OSError:
                pass
        os.close(fd)

    def free(self):
        os.unlink(self.filler)

    def remove(self):
        if self.d.proc:
            self.d.stop(signal.SIGKILL)
        subprocess.run(["umount", "-l", self.mnt])


@test
def a_decision_whose_commit_failed_is_not_answered_from_the_window_after_a_restart(d):
    disk = SmallDisk(d)
    try:
        st, first = post_one(d, {"id": "kept-1", "text": "hello"})
        eq(st, 200, "a decision before the disk fills")
        disk.fill()
        st, body = post_one(d, {"id": "lost-1", "text": "hello"})
        eq((st, body["error"]["code"]), (503, "audit_unavailable"), "the commit failed")
        st, body = post_one(d, {"id": "lost-1", "text": "hello"})
        eq((st, body["error"]["code"]), (503, "audit_unavailable"),
           "a retry at once: still not committed, so no answer")
        disk.free()
        d.stop()
        d.start()
        st, body = post_one(d, {"id": "lost-1", "text": "hello"})
        eq((st, body.get("id")), (200, "lost-1"), "the retry after the restart")
        eq(decision(d, "lost-1"), 200, "the decision answered 200 is in the audit trail")
        eq(audit_rows(d, "lost-1"), 1, "one audit row")
        with open(os.path.join(d.data, "dedupe.snap"), "rb") as f:  # as saved at the stop
            check(b"lost-1" not in f.read(), "the window's file held no line of lost-1")
        st, again = post_one(d, {"id": "kept-1", "text": "hello"})
        eq((st, again), (200, first), "kept-1 is remembered across the restart")
        eq(audit_rows(d, "kept-1"), 1, "kept-1 was answered from the window, not decided again")
    finally:
        disk.remove()


a_decision_whose_commit_failed_is_not_answered_from_the_window_after_a_restart.extra = \
    "store:\n  preallocate: 0\n"


@test
def a_retry_of_a_committed_decision_is_answered_after_the_store_failed(d):
    # Its audit row is in the database: answering it keeps the promise (a new one is 503).
    disk = SmallDisk(d)
    try:
        st, first = post_one(d, {"id": "kept-1", "text": "hello"})
        eq(st, 200, "a decision before the disk fills")
        disk.fill()
        st, body = post_one(d, {"id": "lost-1", "text": "hello"})
        eq((st, body["error"]["code"]), (503, "audit_unavailable"), "the commit failed")
        st, again = post_one(d, {"id": "kept-1", "text": "hello"})
        eq((st, again), (200, first), "the retry of kept-1, from the window")
        lines = d.req("POST", "/v1/events", json.dumps({"id": "kept-1", "text": "hello"}) + "\n" +
                      json.dumps({"id": "lost-1", "text": "hello"}) + "\n", token="events")
        eq(lines[0], 503, "with one not committed, the request is not answered")
    finally:
        disk.remove()


a_retry_of_a_committed_decision_is_answered_after_the_store_failed.extra = \
    "store:\n  preallocate: 0\n"


@test
def a_decision_not_yet_committed_is_not_saved_in_the_window(d):
    # store.snapshot: 1s saves the window while the writer waits on another process's lock;
    # kill -9 loses the rows that were waiting, so the saved window must not answer for them.
    lock = Lock(d)
    try:
        t = in_thread(post_one, d, {"id": "locked-1", "text": "hello"})
        check(d.wait_line("locked by another process", 30), "the writer waits on the lock")
        path = os.path.join(d.data, "dedupe.snap")
        since = time.time_ns()
        end = time.monotonic() + 15
        while not (os.path.exists(path) and os.stat(path).st_mtime_ns > since):
            check(time.monotonic() < end, "a snapshot after the decision")
            time.sleep(0.05)
        d.kill9()
    finally:
        lock.release()
    t.join(30)
    check(not isinstance(getattr(t, "result", None), tuple) or t.result[0] != 200,
          "the request was not answered 200 before the kill")
    d.start()
    st, body = post_one(d, {"id": "locked-1", "text": "hello"})
    eq((st, body.get("id")), (200, "locked-1"), "the retry after the restart")
    eq(decision(d, "locked-1"), 200, "and its decision is in the audit trail")
    eq(audit_rows(d, "locked-1"), 1, "one audit row")


a_decision_not_yet_committed_is_not_saved_in_the_window.extra = "store:\n  snapshot: 1s\n"


# ---- defect 4: a verdict does not hold the daemon while the database is locked --------------


@test
def a_verdict_waits_for_its_commit_without_holding_anything(d):
    st, body = post_one(d, HELD)
    eq(body["action"], "hold", "held")
    lock = Lock(d)
    try:
        verdict = in_thread(d.json, "POST", "/v1/review/h-1/approve",
                            json.dumps({"moderator": "mod_anna"}), token="review")
        check(d.wait_line("locked by another process", 30), "the verdict's rows wait on the lock")
        for i in range(7):
            (st, body, _), took = timed(d.json, "POST", "/v1/review/nope-%d/approve" % i,
                                        json.dumps({"moderator": "m"}), token="review")
            eq((st, body["error"]["code"]), (404, "not_found"), "an unknown id")
            check(took < 2, "404 at once, not after the lock (%.1f s)" % took)
        for _ in range(5):
            (st, _, _), took = timed(d.req, "GET", "/healthz", token=None)
            eq(st, 200, "healthz")
            check(took < 2, "healthz at once (%.1f s)" % took)
        (st, body, _), took = timed(d.json, "POST", "/v1/review/h-1/deny",
                                    json.dumps({"moderator": "mod_bob"}), token="review")
        eq((st, body["error"]["code"]), (409, "already_resolved"),
           "a second verdict while the first is in flight")
        check(took < 2, "409 at once (%.1f s)" % took)
        check(verdict.is_alive(), "the approve is not answered before its rows are committed")
    finally:
        lock.release()
    verdict.join(30)
    st, body, _ = verdict.result
    eq((st, body["status"], body["mod_action"]["id"]), (200, "approved", "review:approve:h-1"),
       "the approve, once committed")
    st, body, _ = d.json("POST", "/v1/review/h-1/deny", json.dumps({"moderator": "mod_bob"}),
                         token="review")
    eq((st, body["error"]["code"]), (409, "already_resolved"), "resolved")
    check("already approved" in body["error"]["message"], body)
    rows = d.db().execute("SELECT action FROM audit WHERE kind = 'review'").fetchall()
    eq(rows, [("approve",)], "one verdict audited")
    eq(audit_rows(d, "review:approve:h-1"), 1, "its mod_action audited once")
    eq(audit_rows(d, "review:deny:h-1"), 0, "the refused verdict decided nothing")


@test
def a_verdict_on_a_review_item_the_audit_trail_does_not_vouch_for_is_409(d):
    # An item inserted into the database by hand (someone with the file): no hold row for it.
    db = d.db()
    db.execute("INSERT INTO review(event_id, platform, channel, user_id, text, event, decision, "
               "created_ms, status) VALUES ('forged-1', 'twitch', '#c', 'u-1', 'hi', '{}', "
               "'{\"id\":\"forged-1\",\"action\":\"hold\"}', 0, 'pending')")
    db.commit()
    db.close()
    st, body, _ = d.json("POST", "/v1/review/forged-1/approve", json.dumps({"moderator": "m"}),
                         token="review")
    eq((st, body["error"]["code"]), (409, "review_item_not_in_audit"), "refused")
    eq(audit_rows(d, "review:approve:forged-1"), 0, "nothing decided")


@test
def a_verdict_that_does_not_fit_in_the_audit_queue_is_429_and_changes_nothing(d):
    st, body = post_one(d, HELD)
    eq(body["action"], "hold", "held")
    lock = Lock(d)
    try:
        body = "".join(json.dumps({"id": "q-%d" % j, "text": "hi"}) + "\n" for j in range(1000))
        flood = in_thread(d.req, "POST", "/v1/events", body, "events")
        check(d.wait_line("locked by another process", 30), "the queue is full and waits")
        (st, body, r), took = timed(d.json, "POST", "/v1/review/h-1/approve",
                                    json.dumps({"moderator": "mod_anna"}), token="review")
        eq((st, body["error"]["code"], r.getheader("Retry-After")), (429, "busy", "1"),
           "no room for the verdict")
        check(took < 2, "429 at once (%.1f s)" % took)
    finally:
        lock.release()
    flood.join(60)
    eq(flood.result[0], 200, "the queued events are answered once the lock is gone")
    eq(audit_rows(d, "review:approve:h-1"), 0, "the refused verdict decided nothing")
    st, body, _ = d.json("POST", "/v1/review/h-1/approve", json.dumps({"moderator": "mod_anna"}),
                         token="review")
    eq((st, body["status"]), (200, "approved"), "the retry")


a_verdict_that_does_not_fit_in_the_audit_queue_is_429_and_changes_nothing.extra = \
    "limits:\n  queue: 1000\n  events: 1000\n"


# ---- defect 7: control characters in identifiers ---------------------------------------------


@test
def identifiers_with_control_characters_are_refused_naming_the_field(d):
    cases = [({"id": "held\u0000x", "text": "look https://tiermaker.com/1"}, '"id"'),
             ({"id": "c-1", "channel": "#c\u0000#other", "text": "hi"}, '"channel"'),
             ({"id": "c-2", "user": {"id": "u\u0001", "name": "n"}, "text": "hi"}, '"user.id"'),
             ({"id": "c-3", "user": {"name": "bob\u007f"}, "text": "hi"}, '"user.name"'),
             ({"id": "c-4", "platform": "tw\nitch", "text": "hi"}, '"platform"'),
             ({"id": "c-5", "type": "mod_action", "moderator": "m\u0000", "target": "u"},
              '"moderator"'),
             ({"id": "c-6", "type": "mod_action", "target": "u\u0000x"}, '"target"'),
             ({"id": "c-7", "type": "mod_action", "target": "u", "ref_event": "h\u0000"},
              '"ref_event"')]
    for ev, field in cases:
        st, body = post_one(d, ev)
        eq((st, body["error"]["code"]), (400, "bad_field"), field)
        check(field in body["error"]["message"], body)
    # in NDJSON, an error line in its place
    lines = d.req("POST", "/v1/events", json.dumps(cases[0][0]) + "\n" +
                  json.dumps({"id": "fine", "text": "hi\n\tthere"}) + "\n", token="events")[1]
    out = [json.loads(l) for l in lines.splitlines()]
    eq((out[0]["error"]["code"], out[1]["id"]), ("bad_field", "fine"),
       "refused; free text keeps its newline and tab")
    eq(audit_rows(d, "held\u0000x") + audit_rows(d, "held"), 0, "nothing audited")
    eq(d.json("GET", "/v1/review", token="review")[1]["items"], [], "nothing held")
    # a moderator's name is an identifier too; a note may have lines but no NUL
    post_one(d, HELD)
    for body, field in [({"moderator": "mod\u0000anna"}, "moderator"),
                        ({"moderator": "mod\tanna"}, "moderator"),
                        ({"moderator": "mod_anna", "note": "a\u0000b"}, "note")]:
        st, ans, _ = d.json("POST", "/v1/review/h-1/approve", json.dumps(body), token="review")
        eq((st, ans["error"]["code"]), (400, "bad_field"), field)
        check(field in ans["error"]["message"], ans)
    st, ans, _ = d.json("POST", "/v1/review/h-1/approve",
                        json.dumps({"moderator": "mod_anna", "note": "line one\nline two"}),
                        token="review")
    eq(st, 200, "a note with a newline")


# ---- defect 8 ----------------------------------------------------------------------------------


@test
def duplicate_keys_are_refused(d):
    for raw, key in [('{"id":"d","text":"hello","text":"fuck"}', '"text"'),
                     ('{"id":"d1","id":"d2","text":"hi"}', '"id"'),
                     ('{"id":"d","user":{"id":"u1","id":"u2"},"text":"hi"}', '"user.id"'),
                     ('{"id":"d","text":"hello","te\\u0078t":"fuck"}', '"text"')]:
        st, data, _ = d.req("POST", "/v1/events", raw, token="events", ctype="application/json")
        body = json.loads(data)
        eq((st, body["error"]["code"]), (400, "bad_field"), raw)
        check("duplicate key " + key in body["error"]["message"], body)
    eq(audit_rows(d, "d"), 0, "nothing decided")
    # meta is the client's own: passed on as it came
    st, body = post_one(d, {"id": "m", "text": "hi"})
    st, data, _ = d.req("POST", "/v1/events", '{"id":"m2","text":"hi","meta":{"k":1,"k":2}}',
                        token="events", ctype="application/json")
    eq(st, 200, "repeats inside meta")


@test
def events_total_counts_decisions_not_retries(d):
    before = metric(d, "whiply_events_total")
    first = [post_one(d, {"id": "r-1", "text": "hi"}) for _ in range(5)]
    check(all(f == first[0] for f in first), "the same answer")
    eq(metric(d, "whiply_events_total") - before, 1, "one event decided")
    eq(metric(d, "whiply_events_replayed_total"), 4, "four replays")
    eq(metric(d, 'whiply_decisions_total{action="allow"}'), 1, "one decision")


@test
def rules_that_are_not_a_regular_file_or_too_large_are_refused_and_the_old_ones_serve(d):
    good = d.restart_with_rules("version: 1\nrules:\n  - id: r\n    when: {words: [spam]}\n"
                                "    action: delete\n")
    ruleset = d.json("GET", "/v1/rules", token="rules")[1]["ruleset"]
    fifo = os.path.join(d.dir, "fifo.yaml")
    os.mkfifo(fifo)
    big = os.path.join(d.dir, "big.yaml")
    with open(big, "wb") as f:
        f.truncate(16 * 1024 * 1024 + 1)  # sparse: one byte over the limit
    listed = os.path.join(d.dir, "listed.yaml")
    with open(listed, "w") as f:
        f.write("version: 1\nlists:\n  bad: {file: fifo.yaml}\nrules:\n  - id: r\n"
                "    when: {words: [\"@bad\"]}\n    action: delete\n")
    for n, (target, why) in enumerate([(fifo, "not a regular file"), ("/dev/null", "not a regular file"),
                        (big, "larger than the limit of 16 MiB"),
                        (listed, "cannot read list file '%s': not a regular file" % fifo)]):
        os.unlink(good)
        os.symlink(target, good)
        (st, body, _), took = timed(d.json, "POST", "/v1/rules/reload", "", token="rules")
        eq((st, body["error"]["code"]), (422, "rules_invalid"), target)
        msg = " ".join(x["message"] for x in body["error"]["diagnostics"])
        check(why in msg, "%s: %s" % (target, msg))
        check(took < 5, "refused at once (%.1f s)" % took)
        eq(d.json("GET", "/v1/rules", token="rules")[1]["ruleset"], ruleset, "the old rules serve")
        st, body = post_one(d, {"id": "s-%d" % n, "text": "spam"})
        eq(body["action"], "delete", "and decide")
    check("reload (api) refused, the previous rules keep serving" in d.log(), d.log())


def config_file_over_the_limit_is_refused():
    d = ts.Daemon("cfg-big")
    with open(d.config, "a") as f:
        f.write("#" * (1024 * 1024) + "\n")
    p = subprocess.run([ts.WHIPLY, "serve", "--config", d.config, "--data", d.data],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode != 0 and "cannot read the config: larger than the limit of 1 MiB" in p.stderr,
          p.stderr)


def main():
    return ts.run_suite(TESTS, [("a config file over the limit is refused",
                                 config_file_over_the_limit_is_refused)])


if __name__ == "__main__":
    sys.exit(main())
