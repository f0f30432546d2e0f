#!/usr/bin/env python3
"""bench/irc.py [WHIPLY] - event seen on the IRC socket -> action sent on the socket, through a
real ngIRCd, at a fixed message rate (issue 19: p99 < 50 ms at 1,000 messages/s).

Starts ngIRCd (loopback, a free port, foreground) with a channel #bench that takes messages
from outside (no +n, so the senders do not each receive the whole channel), `whiply serve`
with a platforms.irc network on it and one rule (a listed word -> warn), and SENDERS
clients, IRC operators with user mode +F (ngIRCd reads 3 commands a second from any other
user). They send RATE PRIVMSG/s in total for SECONDS; one in EVERY carries the listed word.
whiply answers each of those with a NOTICE to its sender (the warn), and the sender pairs
each NOTICE with its oldest unanswered trigger (whiply acts in order per channel).

The latency is measured from the sender's send() to its recv() of the NOTICE: it contains
what the issue asks for (whiply reading the line, deciding it, committing the audit row
and the outbox row, the outbox worker writing the NOTICE) plus two loopback hops through
ngIRCd, so it is an upper bound. Prints messages/s sent and decided, actions/s, p50, p90,
p99, max, the NOTICEs missing at the end, whiply's peak RSS and the machine.

    python3 bench/irc.py build/whiply
    RATE=1000 SECONDS=20 EVERY=10 SENDERS=10 python3 bench/irc.py
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHIPLY = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/whiply"))
RATE = int(os.environ.get("RATE", "1000"))
SECONDS = float(os.environ.get("SECONDS", "20"))
EVERY = int(os.environ.get("EVERY", "10"))
SENDERS = int(os.environ.get("SENDERS", "10"))
WARMUP = 3.0
PASS = "bench-oper"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc):
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("bench/irc.py: the server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("bench/irc.py: the server did not listen")


class Sender:
    def __init__(self, port, nick):
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = []  # send times of triggers not yet answered, oldest first
        self.lat = []      # (send time, latency) of answered triggers
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.sent_triggers = 0
        threading.Thread(target=self.read, daemon=True).start()
        self.send(f"NICK {nick}\r\nUSER {nick} 0 * :bench\r\n")
        if not self.ready.wait(30):
            sys.exit(f"bench/irc.py: {nick} did not register")

    def send(self, s):
        self.sock.sendall(s.encode())

    def read(self):
        buf = b""
        while True:
            d = self.sock.recv(65536)
            if not d:
                return
            now = time.monotonic()
            buf += d
            while b"\n" in buf:
                l, buf = buf.split(b"\n", 1)
                if b" NOTICE " + self.nick.encode() in l and l.startswith(b":whiply!"):
                    with self.lock:
                        if self.pending:
                            t = self.pending.pop(0)
                            self.lat.append((t, now - t))
                elif l.startswith(b"PING"):
                    self.send("PONG" + l[4:].decode().rstrip("\r") + "\r\n")
                elif b" 001 " in l:
                    self.send(f"OPER {self.nick} {PASS}\r\n")
                elif b" 381 " in l:
                    self.send(f"MODE {self.nick} +F\r\n")
                elif re.search(rb" MODE \S+ :?\+F", l):
                    self.ready.set()


def main():
    if not os.path.exists(WHIPLY):
        sys.exit(f"bench/irc.py: no {WHIPLY} (ninja -C build)")
    ngircd = shutil.which("ngircd") or "/usr/sbin/ngircd"
    tmp = tempfile.mkdtemp(prefix="whiply-bench-irc-")
    port = free_port()
    opers = "".join(f"[Operator]\nName = {n}\nPassword = {PASS}\n"
                    for n in ["whiply"] + [f"s{i}" for i in range(SENDERS)])
    with open(os.path.join(tmp, "ngircd.conf"), "w") as f:
        f.write(f"""[Global]
Name = irc.bench.test
Info = bench
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = bench
[Limits]
MaxConnectionsIP = 0
MaxNickLength = 30
[Options]
PAM = no
Ident = no
DNS = no
OperCanUseMode = yes
[Channel]
Name = #bench
Modes = t
{opers}""")
    with open(os.path.join(tmp, "rules.yaml"), "w") as f:
        f.write("version: 1\nrules:\n  - id: listed\n    when: {words: [badword]}\n"
                "    action: {warn: \"bench\"}\n")
    hport = free_port()
    with open(os.path.join(tmp, "whiply.yaml"), "w") as f:
        f.write(f"""listen: 127.0.0.1:{hport}
data: {tmp}/data
rules: {tmp}/rules.yaml
platforms:
  irc:
    - name: bench
      host: 127.0.0.1
      port: {port}
      nick: whiply
      channels: ["#bench"]
      oper: {{name: whiply, password: {PASS}}}
      flood: {{burst: 1000, every: 0}}
""")
    srv = subprocess.Popen([ngircd, "--nodaemon", "--config", os.path.join(tmp, "ngircd.conf")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, srv)
    log = open(os.path.join(tmp, "whiply.log"), "w")
    w = subprocess.Popen([WHIPLY, "serve", "--config", os.path.join(tmp, "whiply.yaml")],
                         stderr=log, stdout=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 60
        while "joined #bench" not in open(os.path.join(tmp, "whiply.log")).read():
            if time.monotonic() > end or w.poll() is not None:
                sys.exit("bench/irc.py: whiply did not join: " + open(os.path.join(tmp, "whiply.log")).read())
            time.sleep(0.05)
        token = open(os.path.join(tmp, "data/admin.token")).read().strip()

        def metrics():
            req = urllib.request.Request(f"http://127.0.0.1:{hport}/metrics",
                                         headers={"Authorization": "Bearer " + token})
            return urllib.request.urlopen(req).read().decode()

        def events_total():
            m = re.search(r'^whiply_irc_events_total\{network="bench"\} (\d+)$', metrics(), re.M)
            return int(m.group(1))

        def histogram():
            """whiply's own seen -> sent histogram: [(upper bound in ms, cumulative count)]."""
            return [(float("inf") if le == "+Inf" else float(le) * 1000, int(n)) for le, n in
                    re.findall(r'^whiply_irc_action_seconds_bucket\{network="bench",le="([^"]+)"\} (\d+)$',
                               metrics(), re.M)]

        senders = [Sender(port, f"s{i}") for i in range(SENDERS)]
        h0 = None
        n = int(RATE * SECONDS)
        t0 = time.monotonic()
        ev0 = events_total()
        for k in range(n):
            due = t0 + k / RATE
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            s = senders[k % SENDERS]
            if h0 is None and k >= WARMUP * RATE:
                h0 = histogram()
            if k % EVERY == 0:
                with s.lock:
                    s.pending.append(time.monotonic())
                s.sent_triggers += 1
                s.send(f"PRIVMSG #bench :message {k} with a badword in it\r\n")
            else:
                s.send(f"PRIVMSG #bench :message {k} is fine, hello chat\r\n")
        sent_s = time.monotonic() - t0
        # the answers to the last triggers: wait until none are pending or 10 s pass
        end = time.monotonic() + 10
        while time.monotonic() < end and any(s.pending for s in senders):
            time.sleep(0.05)
        decided = events_total() - ev0
        h1 = histogram()
        inside = [(b, n1 - n0) for (b, n1), (_, n0) in zip(h1, h0 or [(b, 0) for b, _ in h1])]

        def hpct(p):  # the bucket bound the p-quantile falls under
            total = inside[-1][1] if inside else 0
            for b, n in inside:
                if total and n >= p * total:
                    return b
            return float("nan")

        lat = sorted(l for s in senders for (t, l) in s.lat if t - t0 >= WARMUP)
        missing = sum(len(s.pending) for s in senders)
        triggers = sum(s.sent_triggers for s in senders)
        rss = 0
        with open(f"/proc/{w.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss = int(line.split()[1])

        def pct(p):
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

        cpu = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        print(f"irc bench: ngIRCd {' '.join(subprocess.run([ngircd, '--version'], capture_output=True, text=True).stdout.split()[:2])}, "
              f"{SENDERS} senders, {n} messages in {sent_s:.1f} s ({n / sent_s:.0f} messages/s sent), "
              f"{decided} decided ({decided / sent_s:.0f} events/s)")
        print(f"actions: {triggers} triggers, {len(lat)} answered after the {WARMUP:.0f} s warm-up "
              f"({triggers / sent_s:.0f} actions/s), {missing} unanswered at the end")
        print(f"seen -> NOTICE (ms, send to receive, through ngIRCd): p50 {pct(0.50):.2f}  "
              f"p90 {pct(0.90):.2f}  p99 {pct(0.99):.2f}  max {lat[-1] * 1000 if lat else float('nan'):.2f}")
        print(f"seen -> sent inside whiply (ms, line read to action written; histogram bounds): "
              f"p50 <= {hpct(0.50):g}  p90 <= {hpct(0.90):g}  p99 <= {hpct(0.99):g}  "
              f"({inside[-1][1] if inside else 0} actions)")
        print(f"whiply peak RSS {rss / 1024:.1f} MiB; machine: {os.cpu_count()} CPUs, {cpu}")
        return 0 if missing == 0 else 1
    finally:
        w.send_signal(signal.SIGTERM)
        try:
            w.wait(30)
        except subprocess.TimeoutExpired:
            w.kill()
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
