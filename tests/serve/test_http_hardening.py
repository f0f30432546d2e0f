#!/usr/bin/env python3
"""tests/serve/test_http_hardening.py WHIPLY - the daemon's HTTP front door under abuse.

The real `whiply serve` on a loopback port (the harness of test_serve.py), attacked the way
servers are: bodies announced by clients without a token, slow and idle connections,
request smuggling, control bytes in headers and paths. Raw sockets where http.client would
refuse to send what an attacker sends. Clients that play attackers connect from 127.0.0.2
(all of 127/8 is this machine), so that the per-address cap can be told from the rest.
"""
import os
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402

check, eq = ts.check, ts.eq
TESTS = []
TOKEN = ts.TOKENS["admin"][0]
ATTACKER = "127.0.0.2"


def test(fn):
    TESTS.append(fn)
    return fn


def connect(d, source=ATTACKER, timeout=10):
    return socket.create_connection((d.host, d.port), timeout=timeout, source_address=(source, 0))


def read_all(s, timeout=10):
    """Everything the server sends until it closes the connection (or timeout: then what came)."""
    s.settimeout(timeout)
    data = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:  # closed with our bytes unread: closed all the same
            return data, True
        if not b:
            return data, True
        data += b
    return data, False


def statuses(data):
    return [int(l.split()[1]) for l in data.split(b"\r\n") if l.startswith(b"HTTP/1.1 ")]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric(d, name):
    for line in d.req("GET", "/metrics")[1].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


# ---- defect 2: nothing is buffered for a client without a token ----------------------


@test
def a_body_without_a_token_is_refused_from_its_headers_and_costs_no_memory(d):
    before = rss_kb(d.proc.pid)
    socks = []
    for i in range(60):
        s = connect(d)
        s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n"
                  b"Content-Type: application/x-ndjson\r\n\r\n" + b"x" * 65536)
        socks.append(s)
    for s in socks:  # answered at once, before the body: 401, and the connection closed
        data, closed = read_all(s)
        eq(statuses(data), [401], "a body announced without a token")
        check(closed, "the connection is closed after the 401")
        s.close()
    grown = rss_kb(d.proc.pid) - before
    check(grown < 20 * 1024, "RSS grew by %d KiB for 60 refused 8 MiB bodies" % grown)
    # with a token, a declared length over limits.body is 413 at once, before the body too
    s = connect(d, source="127.0.0.1")
    s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
              b"\r\nContent-Length: 9999999999\r\n\r\n")
    data, closed = read_all(s)
    eq(statuses(data), [413], "over limits.body")
    check(b"body_too_large" in data and closed, data[:300])
    s.close()
    eq(d.req("GET", "/healthz", token=None)[0], 200, "still serving")


# ---- defect 3: slow and idle connections lock no one out ----------------------------


@test
def slow_heads_are_cut_at_the_deadline_and_healthz_and_clients_stay_served(d):
    socks = []
    for i in range(40):  # twice the connection limit, each sending a header line now and then
        s = connect(d)
        s.sendall(b"GET /v1/rules HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    stop = threading.Event()

    def drip():
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            stop.wait(0.3)

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        for i in range(20):  # served all along, from another address, without waiting
            t0 = time.monotonic()
            eq(d.req("GET", "/healthz", token=None)[0], 200, "healthz")
            eq(d.req("POST", "/v1/events", '{"id":"slow-%d","text":"hi"}' % i,
                     ctype="application/json")[0], 200, "an authenticated client")
            check(time.monotonic() - t0 < 2, "answered in %.2f s" % (time.monotonic() - t0))
        # every slow connection is closed: the head deadline (1 s) or, past the limit, for room
        for s in socks:
            data, closed = read_all(s, timeout=5)
            check(closed, "a slow head is closed")
            check(not statuses(data), "and never answered: %r" % data[:100])
    finally:
        stop.set()
        t.join()
        for s in socks:
            s.close()
    m = d.req("GET", "/metrics")[1]
    cut = sum(float(l.split()[-1]) for l in m.splitlines()
              if l.startswith("whiply_rejected_total{reason=\"head_timeout\"}")
              or l.startswith("whiply_rejected_total{reason=\"evicted\"}"))
    eq(cut, 40.0, "closed slow connections counted (head_timeout + evicted)")


slow_heads_are_cut_at_the_deadline_and_healthz_and_clients_stay_served.extra = (
    "limits:\n  connections: 20\n  per_address: 0\n  head_timeout: 1s\n")


@test
def an_idle_connection_is_closed_after_the_idle_timeout(d):
    s = connect(d)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    data, closed = read_all(s, timeout=10)
    eq(statuses(data), [200], "the request")
    check(closed, "then closed when idle")
    took = time.monotonic() - t0
    check(0.8 < took < 5, "after about limits.idle_timeout (1 s): %.2f s" % took)
    eq(metric(d, 'whiply_rejected_total{reason="idle"}'), 1.0, "counted")


an_idle_connection_is_closed_after_the_idle_timeout.extra = "limits:\n  idle_timeout: 1s\n"


@test
def a_slow_head_on_a_kept_alive_connection_has_the_head_deadline_too(d):
    s = connect(d)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    eq(statuses(s.recv(4096)), [200], "a first request")
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the next one never ends
    t0 = time.monotonic()
    for _ in range(20):
        try:
            s.sendall(b"X-Slow: 1\r\n")
        except OSError:
            break
        s.settimeout(0.3)
        try:
            if s.recv(4096) == b"":
                break
        except socket.timeout:
            pass
        except OSError:
            break
    took = time.monotonic() - t0
    check(took < 4, "closed after about limits.head_timeout (1 s), not limits.idle_timeout: %.1f s" % took)
    eq(metric(d, 'whiply_rejected_total{reason="head_timeout"}'), 1.0, "counted as a head timeout")
    s.close()


a_slow_head_on_a_kept_alive_connection_has_the_head_deadline_too.extra = (
    "limits:\n  head_timeout: 1s\n  idle_timeout: 60s\n")


@test
def one_address_holds_at_most_per_address_connections(d):
    socks = [connect(d) for _ in range(4)]
    for s in socks:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        eq(statuses(s.recv(4096)), [200], "within the cap")
    extra = connect(d)
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data, closed = read_all(extra, timeout=5)
    check(closed and not statuses(data), "the fifth from one address is refused: %r" % data[:80])
    eq(d.req("GET", "/healthz", token=None)[0], 200, "another address is served")
    for s in socks + [extra]:
        s.close()


one_address_holds_at_most_per_address_connections.extra = "limits:\n  per_address: 4\n"


@test
def when_every_connection_is_busy_healthz_still_answers(d):
    # the database write lock held by another process: events wait (their connections busy)
    db = sqlite3.connect(os.path.join(d.data, "whiply.db"), timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    res = []
    threads = [threading.Thread(target=lambda k=k: res.append(d.req(
        "POST", "/v1/events", '{"id":"busy-%d","text":"hi"}' % k, ctype="application/json")[0]))
        for k in range(2)]
    for t in threads:
        t.start()
    check(d.wait_line("locked by another process", 30), "the writer waits for the lock")
    eq(d.req("GET", "/healthz", token=None)[0], 200, "healthz past the limit")
    st, body, _ = d.req("GET", "/v1/rules")
    eq(st, 503, "an authenticated request when all are busy")
    check("too_many_connections" in body, body)
    db.execute("ROLLBACK")
    db.close()
    for t in threads:
        t.join()
    eq(sorted(res), [200, 200], "the busy ones are answered once the lock is gone")


when_every_connection_is_busy_healthz_still_answers.extra = "limits:\n  connections: 2\n"


# ---- defect 6: request smuggling ------------------------------------------------------


def smuggle(d, head, body):
    s = connect(d, source="127.0.0.1")
    s.sendall(head + b"\r\n" + body)
    data, closed = read_all(s, timeout=5)
    s.close()
    return statuses(data), closed, data


@test
def ambiguous_framing_is_400_and_the_connection_closes(d):
    auth = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    inner = b"GET /v1/rules HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
    ev = b'{"id":"sm-1","text":"hi"}'
    cases = {
        "two Content-Length that differ":
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
            b"Content-Length: %d\r\nContent-Length: 5\r\n" % len(ev),
        "Content-Length with Transfer-Encoding":
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(ev),
        "a Transfer-Encoding that is not chunked":
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: gzip, chunked\r\n",
    }
    for what, head in cases.items():
        st, closed, data = smuggle(d, head, ev + inner)
        eq(st, [400], what)
        check(closed, what + ": the connection is closed")
        check(b"bad_request" in data, data[:300])
    # libmicrohttpd answers this one itself (its status line comes twice in 0.9.75), and closes
    st, closed, data = smuggle(d, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
                               b"Content-Length: 1e3\r\n", ev + inner)
    check(st and set(st) == {400} and closed, "a Content-Length that is not a number: %r" % data)
    eq(d.json("GET", "/v1/decisions/sm-1")[0], 404, "nothing was decided")
    # the same request, framed once, is fine
    st, closed, _ = smuggle(d, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
                            b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(ev), ev)
    eq(st, [200], "one Content-Length")


# ---- defects 7 and 8: control bytes, lengths and UTF-8 in what the client sends --------


@test
def nul_and_control_bytes_in_headers_paths_and_arguments_are_400(d):
    auth = b"Authorization: Bearer " + TOKEN.encode()
    for what, head in {
        "a NUL after the token": b"GET /v1/rules HTTP/1.1\r\nHost: x\r\n" + auth + b"\x00junk\r\n",
        "a NUL in the last header": b"GET /v1/rules HTTP/1.1\r\n" + auth + b"\r\nHost: x\x00y\r\n",
        "a control byte": b"GET /v1/rules HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\nX-A: a\x01b\r\n",
    }.items():
        st, closed, data = smuggle(d, head, b"")
        eq(st, [400], what)
        check(b"bad_request" in data, data[:300])
    # the same headers without the bad byte are fine
    eq(smuggle(d, b"GET /v1/rules HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n", b"")[0], [200], "clean")
    d.req("POST", "/v1/events", '{"id":"held","text":"hi"}', ctype="application/json")
    for path in ["/v1/decisions/held%00x", "/v1/decisions/held%0ax", "/v1/decisions/held%7f",
                 "/v1/decisions?user=a%00b", "/v1/review/held%00x/approve"]:
        st, body, _ = d.req("POST" if "review" in path else "GET", path, "{}" if "review" in path else None)
        eq(st, 400, path)
        check("bad_argument" in body and "control character" in body, body)


@test
def ids_too_long_or_not_utf8_in_a_path_are_400_with_valid_json(d):
    st, body, _ = d.req("GET", "/v1/decisions/" + "a" * 129)
    eq(st, 400, "a 129-byte id")
    check("bad_argument" in body and "128" in body, body)
    eq(d.req("GET", "/v1/decisions/" + "a" * 128)[0], 404, "a 128-byte id is looked up")
    for path in [b"/v1/decisions/%ff%fe", b"/v1/decisions/\xff\xfe", b"/nowhere/\xc3"]:
        s = connect(d, source="127.0.0.1")
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
        data, _ = read_all(s)
        s.close()
        eq(statuses(data), [400], path)
        body = data.split(b"\r\n\r\n", 1)[1]
        body.decode("utf-8")  # raises on bytes that are not UTF-8
        check(b"not UTF-8" in body, body)
    # a method that is not UTF-8 is quoted as valid JSON too
    s = connect(d, source="127.0.0.1")
    s.sendall(b"G\xffT /v1/rules HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, _ = read_all(s)
    s.close()
    eq(statuses(data), [405], "a method that is not UTF-8")
    body = data.split(b"\r\n\r\n", 1)[1].decode("utf-8")  # raises on bytes that are not UTF-8
    check("G?T" in body, body)


def main():
    return ts.run_suite(TESTS)


if __name__ == "__main__":
    sys.exit(main())
