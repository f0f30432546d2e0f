#!/usr/bin/env python3
"""bench/serve_abuse.py [--whiply PATH] [--seconds N] [--slow N] [--bodies N]

`whiply serve` under connection abuse, measured as its users see it. Starts the daemon on a
loopback port (its default limits: 512 connections, 64 per address, a 10 s head deadline),
then for a quiet phase and an attack phase measures:

- /healthz from a new connection each time (as a liveness probe does);
- an authenticated client posting one event at a time on a keep-alive connection;
- the daemon's resident memory (VmRSS), sampled every 100 ms.

The attack: --slow connections (500) that send a request line and then one header line a
second and never finish (slowloris), and --bodies connections (200) without a token that
announce an 8 MiB body and keep sending it, each reconnecting as soon as the daemon closes it.
They come from 127.0.0.2-127.0.0.21 (all of 127/8 is this machine), 35 per address, under
the per-address cap, so the connection limit and the head deadline are what is measured.
Prints latency p50/p99/p99.9, failures, and RSS (start, peak, end) per phase.
"""
import argparse
import errno
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "bench-abuse-token-0123456789"


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Attack:
    """Every attacking socket, driven from one thread with non-blocking sends."""

    def __init__(self, port, slow, bodies):
        self.port = port
        self.want = [("slow", i) for i in range(slow)] + [("body", i) for i in range(bodies)]
        # 35 sockets an address: 127.0.0.2, .3, ...
        self.source = {key: "127.0.0.%d" % (2 + j // 35) for j, key in enumerate(self.want)}
        self.socks = {}
        self.stop = threading.Event()
        self.connects = 0
        self.refused = 0
        self.t = threading.Thread(target=self.run, daemon=True)

    def open(self, key):
        kind, i = key
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2,
                                         source_address=(self.source[key], 0))
        except OSError:
            self.refused += 1
            return None
        s.setblocking(False)
        self.connects += 1
        try:
            if kind == "slow":
                s.send(b"GET /v1/rules HTTP/1.1\r\nHost: x\r\n")
            else:
                s.send(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n")
        except OSError:
            s.close()
            return None
        return s

    def alive(self, s):
        try:
            b = s.recv(65536)
            return b != b""  # an answer (401) also means it is about to be closed: keep reading
        except BlockingIOError:
            return True
        except OSError:
            return False

    def run(self):
        chunk = b"x" * 16384
        last_drip = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            drip = now - last_drip >= 1.0
            if drip:
                last_drip = now
            for key in self.want:
                s = self.socks.get(key)
                if s is not None and not self.alive(s):
                    s.close()
                    s = None
                if s is None:
                    s = self.socks[key] = self.open(key)
                    if s is None:
                        self.socks.pop(key, None)
                        continue
                try:
                    if key[0] == "slow" and drip:
                        s.send(b"X-Slow: 1\r\n")
                    elif key[0] == "body":
                        s.send(chunk)
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    self.socks.pop(key, None)
            self.stop.wait(0.02)
        for s in self.socks.values():
            s.close()


def measure(port, seconds, pid):
    """Probes and a client for `seconds`; returns their latencies (ms), failures, RSS samples."""
    probe, client, rss = [], [], []
    fails = {"probe": 0, "client": 0, "reconnects": 0}
    end = time.monotonic() + seconds
    stop = threading.Event()

    def prober():
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    probe.append((time.perf_counter() - t0) * 1000)
                else:
                    fails["probe"] += 1
            except OSError:
                fails["probe"] += 1
            time.sleep(0.01)

    def poster():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        k = 0
        while time.monotonic() < end:
            k += 1
            body = json.dumps({"id": "abuse-%d-%d" % (os.getpid(), k), "text": "hello chat"})
            t0 = time.perf_counter()
            for attempt in range(2):  # a keep-alive connection closed while idle: reconnect once
                try:
                    c.request("POST", "/v1/events", body,
                              {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    if r.status == 200:
                        client.append((time.perf_counter() - t0) * 1000)
                    else:
                        fails["client"] += 1
                    break
                except (OSError, http.client.HTTPException):
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    if attempt:
                        fails["client"] += 1
                    else:
                        fails["reconnects"] += 1
            time.sleep(0.005)
        c.close()

    def sampler():
        while not stop.is_set():
            rss.append(rss_kb(pid))
            stop.wait(0.1)

    ts = [threading.Thread(target=f) for f in (prober, poster)]
    st = threading.Thread(target=sampler)
    st.start()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stop.set()
    st.join()
    return probe, client, fails, rss


def report(name, probe, client, fails, rss, extra=""):
    print("%-14s healthz p50/p99/p99.9 %6.2f/%7.2f/%7.2f ms (n=%d, failed %d) | "
          "client p50/p99/p99.9 %6.2f/%7.2f/%7.2f ms (n=%d, failed %d, reconnects %d) | "
          "RSS start/peak/end %d/%d/%d MiB%s"
          % (name, pct(probe, 50), pct(probe, 99), pct(probe, 99.9), len(probe), fails["probe"],
             pct(client, 50), pct(client, 99), pct(client, 99.9), len(client), fails["client"],
             fails["reconnects"], rss[0] // 1024 if rss else 0, max(rss) // 1024 if rss else 0,
             rss[-1] // 1024 if rss else 0, extra), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whiply", default=os.path.join(ROOT, "build", "whiply"))
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--slow", type=int, default=500)
    ap.add_argument("--bodies", type=int, default=200)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    tmp = tempfile.mkdtemp(prefix="whiply-abuse-")
    import hashlib
    cfg = os.path.join(tmp, "whiply.yaml")
    with open(cfg, "w") as f:
        f.write('listen: "127.0.0.1:0"\nstore:\n  preallocate: 0\ntokens:\n  - name: bench\n'
                "    sha256: %s\n    scopes: [admin]\n" % hashlib.sha256(TOKEN.encode()).hexdigest())
    p = subprocess.Popen([a.whiply, "serve", "--config", cfg, "--data", os.path.join(tmp, "data"),
                          "--rules", os.path.join(ROOT, "examples", "rules.yaml")],
                         stderr=subprocess.PIPE, text=True)
    port = None
    for line in p.stderr:
        if "listening on http://" in line:
            port = int(line.rsplit(":", 1)[1])
            break
    if not port:
        sys.exit("the daemon did not start")
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    print("whiply %s, pid %d; attack: %d slow heads + %d unauthenticated 8 MiB bodies, %g s a phase"
          % (a.whiply, p.pid, a.slow, a.bodies, a.seconds), flush=True)
    try:
        report("quiet", *measure(port, a.seconds, p.pid))
        att = Attack(port, a.slow, a.bodies)
        att.t.start()
        time.sleep(2)  # the attack reaches its strength
        probe, client, fails, rss = measure(port, a.seconds, p.pid)
        held = sum(1 for s in att.socks.values() if s is not None)
        report("under attack", probe, client, fails, rss,
               " | attack sockets open %d, connects %d, refused %d" % (held, att.connects, att.refused))
        att.stop.set()
        att.t.join()
        time.sleep(1)
        report("after", *measure(port, min(a.seconds, 5), p.pid))
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
