#!/usr/bin/env python3
"""tests/serve/test_audit_trail.py WHIPLY [NAME] - the audit trail against someone who holds
the database file: review items bound to the chain both ways, every column covered, signed
checkpoints (verify --pubkey), damage found at start and in the background.

Each test runs the real `whiply serve` over a real SQLite file (the harness of
test_serve.py) and tampers with the file the way an attacker would: triggers dropped, hashes
recomputed. Prints PASS/FAIL lines and "serve: N passed, N failed" like test_serve.py.
"""
import hashlib
import http.server
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import test_serve as ts  # noqa: E402
from test_serve import check, eq, read  # noqa: E402

EVENTS = os.path.join(ts.EXAMPLES, "events.ndjson")
FAST = "store:\n  preallocate: 0\n"
TESTS = []


def test(extra=FAST):
    def wrap(fn):
        fn.extra = extra
        TESTS.append(fn)
        return fn
    return wrap


def fields_hash(h, fields):
    for f in fields:
        if f is None:
            h.update(b"\xff\xff\xff\xff")
        else:
            b = f.encode() if isinstance(f, str) else f
            h.update(len(b).to_bytes(4, "little") + b)


def row_hash(prev, seq, at, kind, eid, ch, us, act, body):
    h = hashlib.sha256()
    h.update(prev)
    h.update(seq.to_bytes(8, "little") + at.to_bytes(8, "little", signed=True))
    fields_hash(h, (kind, eid, ch, us, act, body))
    return h.digest()


def rechain(db, start_prev=None):
    """Recomputes every row's prev and hash in seq order, as a forger with the file would."""
    rows = db.execute("SELECT seq, at_ms, kind, event_id, channel, user_id, action, body, prev "
                      "FROM audit ORDER BY seq").fetchall()
    prev = start_prev if start_prev is not None else (rows[0][8] if rows else bytes(32))
    for (seq, at, kind, eid, ch, us, act, body, _) in rows:
        dg = row_hash(prev, seq, at, kind, eid, ch, us, act, body)
        db.execute("UPDATE audit SET prev=?, hash=? WHERE seq=?", (prev, dg, seq))
        prev = dg
    return prev


def unlock(db):
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_no_delete")


def verify(d, *args):
    p = subprocess.run([ts.WHIPLY, "audit", "verify", "--data", d.data] + list(args),
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def pub(d):
    return d.data + "-signing.key.pub"


def cps(d):
    return d.data + "-checkpoints.ndjson"


def held(d):
    """Posts the example events (e-41 is held) and stops the daemon."""
    st, _, _ = d.req("POST", "/v1/events", read(EVENTS), token="events")
    eq(st, 200, "events")
    st, body, _ = d.json("GET", "/v1/decisions/e-41", token="review")
    eq((st, body["action"]), (200, "hold"), "e-41 is held")


def start_fails(d, *extra):
    p = subprocess.run([ts.WHIPLY, "serve", "--config", d.config, "--data", d.data, "--rules",
                        d.rules] + list(extra), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr


# ---------------------------------------------------------------------------------------


@test()
def deleting_a_pending_review_item_fails_verify(d):
    held(d)
    eq(d.stop(), 0, "stop")
    rc, out = verify(d)
    eq(rc, 0, out)
    db = d.db()
    db.execute("DELETE FROM review WHERE event_id = 'e-41'")
    db.commit()
    rc, out = verify(d)
    eq(rc, 1, "a pending item deleted: " + out)
    check(re.search(r"review item e-41 is missing: row \d+ holds it pending", out), out)


@test()
def a_forged_review_item_fails_verify_and_is_refused_by_the_daemon(d):
    held(d)
    eq(d.stop(), 0, "stop")
    db = d.db()
    ev = json.dumps({"id": "forged", "text": "pay me", "user": {"id": "u666"}})
    db.execute("INSERT INTO review(event_id, platform, channel, user_id, user_name, text, event, "
               "decision, created_ms) VALUES('forged', 'twitch', '#c', 'u666', 'eve', 'pay me', ?, "
               "'{\"id\":\"forged\",\"action\":\"hold\"}', 1)", (ev,))
    db.commit()
    rc, out = verify(d)
    eq(rc, 1, "a forged item: " + out)
    check("review item forged is not bound to the audit trail" in out, out)
    d.start()
    st, body, _ = d.json("POST", "/v1/review/forged/approve", json.dumps({"moderator": "m"}),
                         token="review")
    check(st >= 400 and st != 404, "a forged item must not be approved: %d %r" % (st, body))
    check(d.wait_line(r"audit trail damaged: review item forged is not bound", 10), d.log())
    st, body, _ = d.json("GET", "/healthz", token=None)
    eq((st, body["audit"]), (200, "damaged"), "healthz")
    # the real item is still served
    st, body, _ = d.json("POST", "/v1/review/e-41/deny", json.dumps({"moderator": "m"}),
                         token="review")
    eq((st, body.get("status")), (200, "denied"), "the bound item")


@test()
def every_review_column_is_covered_by_the_chain(d):
    held(d)
    st, _, _ = d.json("POST", "/v1/review/e-41/deny",
                      json.dumps({"moderator": "mod_anna", "note": "spam"}), token="review")
    eq(st, 200, "deny")
    eq(d.stop(), 0, "stop")
    rc, out = verify(d)
    eq(rc, 0, out)
    db = d.db()
    orig = db.execute("SELECT platform, channel, user_id, user_name, text, event, decision, "
                      "created_ms, status, moderator, note, resolved_ms FROM review "
                      "WHERE event_id = 'e-41'").fetchone()
    cols = ["platform", "channel", "user_id", "user_name", "text", "event", "decision",
            "created_ms", "status", "moderator", "note", "resolved_ms"]
    for i, col in enumerate(cols):
        v = orig[i]
        forged = v + 1 if isinstance(v, int) else (v or "") + "x"
        db.execute("UPDATE review SET %s = ? WHERE event_id = 'e-41'" % col, (forged,))
        db.commit()
        rc, out = verify(d)
        eq(rc, 1, "review.%s altered: %s" % (col, out))
        check("review item e-41 was altered" in out, col + ": " + out)
        db.execute("UPDATE review SET %s = ? WHERE event_id = 'e-41'" % col, (v,))
        db.commit()
    rc, out = verify(d)
    eq(rc, 0, "restored: " + out)


@test()
def a_wrong_eid_h_fails_verify_and_the_lookup_is_not_fooled(d):
    held(d)
    eq(d.stop(), 0, "stop")
    db = d.db()
    unlock(db)
    seq, eid = db.execute("SELECT seq, event_id FROM audit WHERE kind = 'decision' AND action = "
                          "'allow' ORDER BY seq LIMIT 1").fetchone()
    db.execute("UPDATE audit SET eid_h = eid_h + 1 WHERE seq = ?", (seq,))
    db.commit()
    rc, out = verify(d)
    eq(rc, 1, "eid_h changed: " + out)
    check(("row %d (decision %s) was altered: its eid_h lookup key" % (seq, eid)) in out, out)
    d.start()
    check(d.wait_line(r"audit trail damaged: row %d .*eid_h" % seq, 30), d.log())
    st, body, _ = d.json("GET", "/v1/decisions/" + eid, token="review")
    eq((st, body.get("id")), (200, eid), "found although its index key was changed")
    st, body, _ = d.json("GET", "/healthz", token=None)
    eq((st, body["audit"]), (200, "damaged"), "healthz")
    check("eid_h" in body.get("audit_reason", ""), body)


@test()
def signed_checkpoints_catch_rewritten_cut_and_forged_rows(d):
    held(d)
    st, body, _ = d.json("GET", "/v1/audit/checkpoint", token="events")
    eq(st, 200, "the checkpoint route")
    check(re.fullmatch(r"[0-9a-f]{64}", body["public_key"]), body)
    check(body["public_key"] in d.log(), "the public key is printed at start")
    st, _, _ = d.req("GET", "/v1/audit/checkpoint", token=None)
    eq(st, 401, "the route needs a token")
    eq(d.stop(), 0, "stop")
    lines = read(cps(d)).splitlines()
    check(len(lines) >= 2, "signed at start and at stop: %r" % lines)
    last = json.loads(lines[-1])
    maxseq = d.db().execute("SELECT max(seq) FROM audit").fetchone()[0]
    eq(last["seq"], maxseq, "the stop signs the last row")
    rc, out = verify(d, "--pubkey", pub(d), "--checkpoints", cps(d))
    eq(rc, 0, out)
    check("0 rows are newer than the last signature" in out, out)
    good = shutil.copy(os.path.join(d.data, "whiply.db"), os.path.join(d.dir, "good.db"))

    # a row rewritten and the chain recomputed: a bare chain cannot see it, a signature can
    db = d.db()
    unlock(db)
    n = db.execute("UPDATE audit SET action = 'ban' WHERE kind = 'decision' AND action = 'allow' "
                   "AND seq = (SELECT min(seq) FROM audit WHERE action = 'allow')").rowcount
    eq(n, 1, "a row rewritten")
    rechain(db)
    db.commit()
    db.close()
    rc, out = verify(d)
    eq(rc, 0, "a rebuilt chain passes a plain verify (documented): " + out)
    rc, out = verify(d, "--pubkey", pub(d))
    eq(rc, 1, "rewritten: " + out)
    check("does not match the signed checkpoint" in out, out)

    # rows cut from the end, with the database's own signatures deleted too: the file copy
    shutil.copy(good, os.path.join(d.data, "whiply.db"))
    db = d.db()
    unlock(db)
    db.execute("DELETE FROM audit WHERE seq > ?", (maxseq - 3,))
    db.execute("DELETE FROM signed_checkpoint WHERE seq > ?", (maxseq - 3,))
    db.commit()
    db.close()
    rc, out = verify(d, "--pubkey", pub(d))
    eq(rc, 0, "without the external copy the cut is only unsigned rows: " + out)
    rc, out = verify(d, "--pubkey", pub(d), "--checkpoints", cps(d))
    eq(rc, 1, "cut: " + out)
    check("rows %d to %d were cut from its end" % (maxseq - 2, maxseq) in out, out)

    # a forged signature
    shutil.copy(good, os.path.join(d.data, "whiply.db"))
    forged = dict(last)
    forged["seq"] = last["seq"] + 1
    with open(os.path.join(d.dir, "forged.ndjson"), "w") as f:
        f.write(json.dumps(forged, separators=(",", ":")) + "\n")
    rc, out = verify(d, "--pubkey", pub(d), "--checkpoints", os.path.join(d.dir, "forged.ndjson"))
    eq(rc, 1, "forged: " + out)
    check("does not verify with the public key" in out, out)


@test()
def a_forged_retention_checkpoint_needs_a_signature(d):
    held(d)
    eq(d.stop(), 0, "stop")
    db = d.db()
    unlock(db)
    cut = 10
    anchor = db.execute("SELECT hash FROM audit WHERE seq = ?", (cut,)).fetchone()[0]
    db.execute("DELETE FROM audit WHERE seq <= ?", (cut,))
    seq, head = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    body = json.dumps({"deleted_before": cut + 1, "anchor": anchor.hex(), "deleted": cut,
                       "cutoff_ms": 1}, separators=(",", ":"))
    at = 2 ** 41
    h = row_hash(head, seq + 1, at, "checkpoint", None, None, None, None, body)
    db.execute("INSERT INTO audit(seq, at_ms, kind, body, prev, hash) VALUES(?,?,?,?,?,?)",
               (seq + 1, at, "checkpoint", body, head, h))
    db.commit()
    db.close()
    rc, out = verify(d)
    eq(rc, 0, "a bare chain accepts a forged retention (documented): " + out)
    rc, out = verify(d, "--head", h.hex())
    eq(rc, 0, "and so does --head (documented): " + out)
    rc, out = verify(d, "--pubkey", pub(d))
    eq(rc, 1, "with the key: " + out)
    check("rows 1 to %d are missing and the retention checkpoint (row %d) accounting for them is "
          "not covered by a signature" % (cut, seq + 1) in out, out)


@test(FAST + "retention:\n  audit: 2s\n  every: 1s\n")
def a_real_retention_is_signed_and_carries_review_items(d):
    held(d)
    # wait for the retention pass that deleted e-41's hold: its carry row is committed (no log
    # line says so; the database is polled)
    end = time.monotonic() + 30
    row = None
    while time.monotonic() < end and not row:
        row = d.db().execute("SELECT seq FROM audit WHERE kind = 'checkpoint' AND action = 'carry' "
                             "AND event_id = 'e-41'").fetchone()
        if not row:
            time.sleep(0.1)
    check(row, "a carry row for e-41")
    st, body, _ = d.json("POST", "/v1/review/e-41/approve", json.dumps({"moderator": "m"}),
                         token="review")
    eq((st, body.get("status")), (200, "approved"), "a carried item is still served")
    eq(d.stop(), 0, "stop")
    rc, out = verify(d, "--pubkey", pub(d), "--checkpoints", cps(d))
    eq(rc, 0, out)
    check("1 review items match" in out, out)
    check(re.search(r"ok: \d+ rows \((\d+) to", out).group(1) != "1", "a prefix was deleted: " + out)


@test()
def start_refuses_a_lost_cut_or_damaged_trail(d):
    held(d)
    eq(d.stop(), 0, "stop")
    good = shutil.copy(os.path.join(d.data, "whiply.db"), os.path.join(d.dir, "good.db"))
    # a zero-length database where a trail existed
    open(os.path.join(d.data, "whiply.db"), "w").close()
    rc, err = start_fails(d)
    check(rc != 0, "started on an empty trail: " + err)
    check("the audit trail is empty, but" in err and "--start-afresh" in err, err)
    # a missing one
    os.unlink(os.path.join(d.data, "whiply.db"))
    rc, err = start_fails(d)
    check(rc != 0 and "the audit trail is empty, but" in err, err)
    # the newest rows altered in place
    shutil.copy(good, os.path.join(d.data, "whiply.db"))
    db = d.db()
    unlock(db)
    db.execute("UPDATE audit SET body = '{}' WHERE seq = (SELECT max(seq) - 2 FROM audit)")
    db.commit()
    db.close()
    rc, err = start_fails(d)
    check(rc != 0 and "is damaged: audit row" in err, err)
    # --start-afresh: starts on an empty trail and keeps the old checkpoints aside
    os.unlink(os.path.join(d.data, "whiply.db"))
    d.proc = subprocess.Popen([ts.WHIPLY, "serve", "--config", d.config, "--data", d.data,
                               "--rules", d.rules, "--start-afresh"],
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    d.lines = []
    threading.Thread(target=d._read, args=(d.proc, d.lines), daemon=True).start()
    check(d.wait_line(r"--start-afresh: .* the old checkpoints are now in", 30), d.log())
    check(d.wait_line(r"listening on", 30), d.log())
    eq(d.stop(), 0, "stop")
    check([f for f in os.listdir(d.dir) if ".replaced-" in f], os.listdir(d.dir))


@test(FAST)
def the_background_check_reports_damage_in_healthz_and_metrics(d):
    lines = "".join(json.dumps({"id": "m%d" % i, "text": "hello %d" % i}) + "\n" for i in range(200))
    eq(d.req("POST", "/v1/events", lines, token="events")[0], 200, "events")
    check(d.wait_line(r"audit check: ok", 30), d.log())
    st, body, _ = d.json("GET", "/healthz", token=None)
    eq((st, body["audit"]), (200, "ok"), "healthz while whole")
    eq(d.stop(), 0, "stop")
    db = d.db()
    unlock(db)  # an old row altered, its hash left: beyond the rows checked at start
    db.execute("UPDATE audit SET body = '{\"id\":\"m5\",\"action\":\"allow\"}' WHERE event_id = 'm5'")
    db.commit()
    db.close()
    d.start()
    check(d.wait_line(r"audit trail damaged: row \d+ \(decision m5\) was altered", 30), d.log())
    st, body, _ = d.json("GET", "/healthz", token=None)
    eq((st, body["audit"]), (200, "damaged"), "healthz")
    check("m5" in body["audit_reason"], body)
    st, text, _ = d.req("GET", "/metrics", token="admin")
    check(re.search(r"^whiply_audit_damaged 1$", text, re.M), text[-2000:])


def index_sql(db):
    return db.execute("SELECT sql FROM sqlite_master WHERE name = 'audit_event_h'").fetchone()[0]


@test()
def a_database_made_with_the_older_layout_is_read_as_it_is(d):
    """New databases have pages of 16 KiB and event ids indexed by (seq >> 14); those made
    before keep 4 KiB pages and (seq >> 16): lookups by id, the binding of a review item
    without bound_seq, and verify go through the index the database has."""
    held(d)
    eq(d.stop(), 0, "stop")
    db = d.db()
    eq(db.execute("PRAGMA page_size").fetchone()[0], 16384, "a new database's pages")
    check("(seq >> 14)" in index_sql(db), index_sql(db))
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("PRAGMA page_size=4096")
    db.execute("VACUUM")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("DROP INDEX audit_event_h")
    db.execute("CREATE INDEX audit_event_h ON audit((seq >> 16), eid_h)")
    db.execute("UPDATE review SET bound_seq = NULL WHERE event_id = 'e-41'")
    db.commit()
    db.close()
    d.start()
    st, body, _ = d.json("GET", "/v1/decisions/e-41", token="review")
    eq((st, body.get("action")), (200, "hold"), "an old row by id")
    eq(d.req("POST", "/v1/events", '{"id":"late-1","text":"hi"}', token="events",
             ctype="application/json")[0], 200, "a new event")
    st, body, _ = d.json("GET", "/v1/decisions/late-1", token="review")
    eq((st, body.get("id")), (200, "late-1"), "a new row by id")
    st, body, _ = d.json("POST", "/v1/review/e-41/approve", json.dumps({"moderator": "m"}),
                         token="review")
    eq((st, body.get("status")), (200, "approved"), "an item bound through the old index")
    eq(d.stop(), 0, "stop")
    db = d.db()
    eq(db.execute("PRAGMA page_size").fetchone()[0], 4096, "the old database's pages")
    check("(seq >> 16)" in index_sql(db), index_sql(db))
    db.close()
    rc, out = verify(d)
    eq(rc, 0, out)


@test("store:\n  preallocate: 0\n  checkpoints: none\n")
def overwritten_pages_are_found(d):
    lines = "".join(json.dumps({"id": "p%d" % i, "text": "x" * 300}) + "\n" for i in range(2000))
    eq(d.req("POST", "/v1/events", lines, token="events")[0], 200, "events")
    eq(d.stop(), 0, "stop")
    path = os.path.join(d.data, "whiply.db")
    db = sqlite3.connect(path)
    psize, pages = db.execute("PRAGMA page_size").fetchone()[0], db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:  # a page in the middle of the trail overwritten
        f.seek(psize * (pages // 2))
        f.write(os.urandom(psize))
    d.lines = []
    d.proc = subprocess.Popen([ts.WHIPLY, "serve", "--config", d.config, "--data", d.data,
                               "--rules", d.rules], stderr=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, text=True)
    threading.Thread(target=d._read, args=(d.proc, d.lines), daemon=True).start()
    # refused at start, or found by the background check: never written on silently
    line = d.wait_line(r"audit trail damaged|is damaged|malformed|listening on", 60)
    check(line, d.log())
    if "listening on" in line:
        check(d.wait_line(r"audit trail damaged", 60), d.log())


class Witness(http.server.BaseHTTPRequestHandler):
    got = []
    cond = threading.Condition()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        with Witness.cond:
            Witness.got.append(self.rfile.read(n).decode())
            Witness.cond.notify_all()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def checkpoints_are_posted_to_a_witness(d):
    eq(d.req("POST", "/v1/events", '{"id":"w1","text":"hi"}', token="events",
             ctype="application/json")[0], 200, "event")
    eq(d.stop(), 0, "stop")
    last = read(cps(d)).splitlines()[-1]
    with Witness.cond:
        ok = Witness.cond.wait_for(lambda: last in Witness.got, 30)
    check(ok, "the witness got %r, the file ends with %r" % (Witness.got, last))


def with_witness():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Witness)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    checkpoints_are_posted_to_a_witness.extra = (
        FAST.rstrip("\n") + "\n  checkpoint_url: http://127.0.0.1:%d/cp\n" % srv.server_address[1])
    return srv


TESTS.append(checkpoints_are_posted_to_a_witness)


def main():
    srv = with_witness()
    return ts.run_suite(TESTS, cleanup=srv.shutdown)


if __name__ == "__main__":
    sys.exit(main())
