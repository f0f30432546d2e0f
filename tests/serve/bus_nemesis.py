#!/usr/bin/env python3
"""tests/serve/bus_nemesis.py WHIPLY [--long] - whiply on a 3-node NATS JetStream
cluster (R3 streams) under faults, in the style of Jepsen: events are published in rounds
while two whiply instances consume them and a nemesis kills one with -9 and restarts it,
pauses one with SIGSTOP past its lease and resumes it, and restarts one NATS server. Then a
checker proves, from the streams and the instances' audit trails:

  - every event has exactly one decision on the decisions stream, and one action when the
    decision is not allow (JetStream's duplicate window drops the republishes of a batch
    decided twice across a takeover);
  - the decisions are byte for byte those of `whiply check` over the same events (so the
    behaviour state moved with the partitions: floods, copies, waves and raids decide
    differently when it does not);
  - `whiply audit verify --bus` over both trails: every acknowledged event has one decision
    row, or several that agree;
  - no partition was seen owned by both instances at once (sampled from /metrics every
    50 ms), and prints the longest time a partition had no owner.

Short by default; --long publishes more events and runs the nemesis 3 rounds. NEM_GDB=1
writes each instance's thread stacks to /tmp/nem_gdb_PID.txt when the events are not all
decided in time. Prints PASS/FAIL lines and "serve: N passed, N failed".

NOT YET IN `make test` (tests/run.sh runs tests/serve/test_*.py; this file is named apart
until it passes): it fails today. After the paused instance resumes and a NATS server
restarts, that instance keeps its partitions but stops making progress (its batches are
decided and then dropped as fenced, over and over; issue 18's note has the figures), so not
every event gets its decision within three minutes.
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
import test_bus as tb  # noqa: E402

LONG = "--long" in sys.argv
LEASE = 2.0
BEHAVIOUR = os.path.join(ts.EXAMPLES, "behaviour.yaml")
BEHAVIOUR_EVENTS = os.path.join(ts.EXAMPLES, "behaviour.ndjson")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Cluster:
    """Three nats-servers with JetStream, routed to each other on loopback."""

    def __init__(self, name):
        self.exe = shutil.which("nats-server")
        if not self.exe:
            raise RuntimeError("nats-server is not installed (make test installs it)")
        self.dir = os.path.join(ts.TMP, name + "-cluster")
        os.makedirs(self.dir, exist_ok=True)
        self.client = [free_port() for _ in range(3)]
        self.route = [free_port() for _ in range(3)]
        self.procs = [None] * 3
        for i in range(3):
            routes = ", ".join("nats-route://127.0.0.1:%d" % self.route[k]
                               for k in range(3) if k != i)
            with open(self.conf(i), "w") as f:
                f.write("server_name: n%d\nlisten: 127.0.0.1:%d\n"
                        "jetstream { store_dir: \"%s\" }\n"
                        "cluster { name: whiply, listen: 127.0.0.1:%d, routes: [%s] }\n"
                        % (i, self.client[i], os.path.join(self.dir, "js%d" % i),
                           self.route[i], routes))
            self.start(i)
        self.url = ",".join("nats://127.0.0.1:%d" % p for p in self.client)

    def conf(self, i):
        return os.path.join(self.dir, "n%d.conf" % i)

    def start(self, i):
        log = open(os.path.join(self.dir, "n%d.log" % i), "a")
        self.procs[i] = subprocess.Popen([self.exe, "-c", self.conf(i)], stdout=log,
                                         stderr=subprocess.STDOUT)

    def restart(self, i):
        self.procs[i].terminate()
        self.procs[i].wait(30)
        self.start(i)

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.terminate()
                p.wait(30)


def daemon(name, cluster, instance):
    extra = ("store:\n  preallocate: 0\nbus:\n  url: %s\n  partitions: 8\n  instance: %s\n"
             "  lease: %ds\n  replicas: 3\n  snapshot: 2s\n"
             % (cluster.url, instance, int(LEASE)))
    d = ts.Daemon(name, rules=BEHAVIOUR, extra=extra)
    d.start()
    check(d.wait_line(r"consuming the bus at"), "the daemon says it consumes the bus")
    return d


def restart(d):
    """Starts a stopped (or killed) daemon again on its own data folder."""
    d.start()
    check(d.wait_line(r"consuming the bus at"), "the daemon consumes the bus again")


def owned(d):
    try:
        return set(tb.metrics(d)[0])
    except Exception:
        return None  # stopped, paused or restarting


class Sampler(threading.Thread):
    """Polls both instances' owned partitions: a partition seen owned by both in one sample
    is a failure; the longest run of samples in which nobody owned a partition is the
    ownerless gap."""

    def __init__(self, ds):
        super().__init__(daemon=True)
        self.ds, self.stop_ = ds, threading.Event()
        self.both, self.gap, self.since = [], 0.0, {}

    def run(self):
        while not self.stop_.is_set():
            t0 = time.monotonic()
            views = [owned(d) if d.proc else None for d in self.ds]
            t1 = time.monotonic()
            sets = [v for v in views if v is not None]
            if len(sets) == 2 and sets[0] & sets[1]:
                self.both.append((t1, sorted(sets[0] & sets[1])))
            mine = set().union(*sets) if sets else set()
            for p in range(8):
                if p in mine or any(v is None for v in views):
                    # a paused or restarting instance may still hold it: not a gap we can see
                    if p in self.since and p in mine:
                        self.gap = max(self.gap, t0 - self.since.pop(p))
                elif p not in self.since:
                    self.since[p] = t0
            time.sleep(0.05)


def events(copies):
    """The behaviour examples, once per copy with its own channels and ids (so that each
    copy's state is its own), in the order they are published."""
    lines = [json.loads(l) for l in read(BEHAVIOUR_EVENTS).splitlines() if l.strip()]
    out = []
    for c in range(copies):
        for e in lines:
            e = dict(e)
            e["id"] = "c%d/%s" % (c, e["id"])
            e["channel"] = "#c%d-%s" % (c, e["channel"].lstrip("#"))
            out.append(json.dumps(e))
    return out


def publish(cluster, lines):
    """Publishes until every line is on the stream (a publish that fails while a server
    restarts is retried; JetStream drops the copies it already has)."""
    body = "".join(l + "\n" for l in lines)
    for _ in range(30):
        p = tb.whiply("publish", "--bus", cluster.url, "--partitions", "8", "--replicas", "3",
                      stdin=body)
        if p.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("publish kept failing: " + p.stderr[-500:])


def nemesis_round(cluster, a, b, log):
    # kill -9 one instance, restart it after a lease
    a.kill9()
    log.append("kill -9 alpha")
    time.sleep(LEASE)
    restart(a)
    log.append("alpha restarted")
    # pause the other past its lease, then resume it: it must find itself fenced
    b.proc.send_signal(signal.SIGSTOP)
    log.append("SIGSTOP beta")
    time.sleep(LEASE * 2)
    b.proc.send_signal(signal.SIGCONT)
    log.append("SIGCONT beta")
    # restart one NATS server of the three
    cluster.restart(1)
    log.append("nats n1 restarted")


def test_nemesis():
    cluster = Cluster("nemesis")
    a = b = None
    sampler = None
    try:
        # the cluster is up when an R3 stream can be made
        tb.wait_for("the JetStream cluster",
                    lambda: tb.whiply("publish", "--bus", cluster.url, "--replicas", "3",
                                      stdin="").returncode == 0, timeout=60)
        a = daemon("nem-a", cluster, "alpha")
        b = daemon("nem-b", cluster, "beta")
        sampler = Sampler([a, b])
        sampler.start()
        lines = events(30 if LONG else 4)
        rounds = 3 if LONG else 1
        chunks = 4 * rounds
        size = (len(lines) + chunks - 1) // chunks
        log = []
        for k in range(chunks):
            publish(cluster, lines[k * size:(k + 1) * size])
            if k % 4 == 1:
                nemesis_round(cluster, a, b, log)
        ids = [json.loads(l)["id"] for l in lines]
        want = tb.whiply("check", "--rules", BEHAVIOUR, stdin="".join(l + "\n" for l in lines))
        eq(want.returncode, 0, want.stderr)
        want = dict(zip(ids, want.stdout.splitlines()))

        cluster_nats = type("N", (), {"url": cluster.url})()

        def all_decided():
            try:
                msgs = tb.dump(cluster_nats)
            except Exception:
                return None
            dec, act, dup = {}, {}, []
            for m in msgs:
                d = json.loads(m["data"])
                key = d.get("id", "seq:%d" % m["seq"])
                target = act if m["subject"].startswith("whiply.actions.") else dec
                if key in target:
                    dup.append((target[key][0], m))
                target[key] = (m, m["data"])
            return (dec, act, dup) if len(dec) >= len(ids) else None
        try:
            dec, act, dup = tb.wait_for("every event decided", all_decided, timeout=180)
        except AssertionError:
            for d in (a, b):
                if d.proc and os.environ.get("NEM_GDB"):
                    g = subprocess.run(["gdb", "-p", str(d.proc.pid), "-batch", "-ex",
                                        "thread apply all bt 30"], capture_output=True, text=True)
                    open("/tmp/nem_gdb_%d.txt" % d.proc.pid, "w").write(g.stdout)
                print("--- %s: owned %r counters %r\n%s" % (d.dir, owned(d),
                      tb.metrics(d)[1] if d.proc else None, "".join(d.log()[-1500:])))
            raise
        check(not dup, "%d events have two messages on the decisions stream, e.g. %r" % (
            len(dup), dup[:2]))
        sampler.stop_.set()
        sampler.join()
        eq(len(dec), len(ids), "one decision per event on the stream")
        wrong = [i for i in ids if dec[i][1] != want[i]]
        check(not wrong, "%d decisions differ from whiply check, e.g. %s: %s != %s" % (
            len(wrong), wrong[:1], dec[wrong[0]][1] if wrong else "", want[wrong[0]] if wrong else ""))
        nonallow = [i for i in ids if json.loads(want[i])["action"] != "allow"]
        eq(sorted(act), sorted(nonallow), "one action per decision that is not allow")
        # the trails: each acknowledged event has its row (the acks trail the decisions)
        def verified():
            v = tb.whiply("audit", "verify", "--bus", cluster.url, "--data", a.data,
                          "--data", b.data)
            m = re.search(r"bus: (\d+) events acknowledged", v.stdout)
            return v if v.returncode == 0 and m and int(m.group(1)) >= len(ids) else None
        v = tb.wait_for("every event acknowledged and audited", verified, timeout=120)
        check(not sampler.both, "a partition owned by both at once: %r" % sampler.both[:3])
        m = re.search(r"bus: .*", v.stdout)
        print("nemesis: %s; %d events; longest ownerless gap %.2f s (lease %.0f s); %s" % (
            "; ".join(log), len(ids), sampler.gap, LEASE, m.group(0) if m else ""), flush=True)
        check(sampler.gap <= 2 * LEASE + 3, "ownerless gap %.2f s" % sampler.gap)
    finally:
        if sampler:
            sampler.stop_.set()
        for d in (a, b):
            if d and d.proc:
                try:
                    d.proc.send_signal(signal.SIGCONT)
                    d.stop()
                except Exception:
                    pass
        cluster.stop()


def main():
    return ts.run_suite([], [("a nemesis kills, pauses and restarts while events flow: "
                              "one decision each, the same as whiply check", test_nemesis)])


if __name__ == "__main__":
    sys.exit(main())
