#!/usr/bin/env python3
"""bench/gen_audit.py DB GIB - appends a valid audit trail of about GIB GiB to DB (a whiply.db
made by `whiply serve`), fast: one transaction per 20,000 rows, journal off. Each row is a
decision with a ~1 KB body, chained and hashed exactly as the daemon does (docs/api.md, the
hash chain), its eid_h the XXH3 of its event id (libxxhash through ctypes), so that both the
start check and the background walk see a whole chain."""
import ctypes
import ctypes.util
import hashlib
import sqlite3
import sys
import time

db_path, gib = sys.argv[1], float(sys.argv[2])
xx = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
xx.XXH3_64bits.restype = ctypes.c_uint64
xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def enc(f):
    if f is None:
        return b"\xff\xff\xff\xff"
    b = f.encode()
    return len(b).to_bytes(4, "little") + b


db = sqlite3.connect(db_path, isolation_level=None)
db.execute("PRAGMA journal_mode=OFF")
db.execute("PRAGMA synchronous=OFF")
db.execute("PRAGMA cache_size=-262144")
seq, prev = db.execute("SELECT coalesce(max(seq), 0), (SELECT hash FROM audit ORDER BY seq DESC "
                       "LIMIT 1) FROM audit").fetchone()
prev = prev or bytes(32)
pad = "x" * 900
target = int(gib * (1 << 30))
at = int(time.time() * 1000) - 86400000
t0 = time.time()
rows = []
while True:
    seq += 1
    eid = "g-%d" % seq
    ch, us = "#chan%d" % (seq % 1000), "u%d" % (seq % 100000)
    body = '{"id":"%s","action":"allow","rules":[],"ruleset":"bench","pad":"%s"}' % (eid, pad)
    h = hashlib.sha256(prev + seq.to_bytes(8, "little") + at.to_bytes(8, "little") +
                       enc("decision") + enc(eid) + enc(ch) + enc(us) + enc("allow") + enc(body)).digest()
    e = eid.encode()
    eh = xx.XXH3_64bits(e, len(e))
    if eh >= 1 << 63:
        eh -= 1 << 64
    rows.append((seq, at, "decision", eid, ch, us, "allow", body, prev, h, eh))
    prev = h
    if len(rows) == 20000:
        db.execute("BEGIN")
        db.executemany("INSERT INTO audit(seq, at_ms, kind, event_id, channel, user_id, action, "
                       "body, prev, hash, eid_h) VALUES(?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.execute("COMMIT")
        rows = []
        size = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
        if size >= target:
            break
print("gen_audit: %d rows, %.1f GiB, %.0f s" % (seq, size / (1 << 30), time.time() - t0))
