#!/usr/bin/env python3
"""bench/outbox.py [WHIPLY] [EVENTS] - the action outbox's throughput: every decision delivered
as a signed webhook to the real receiver of the tests (tests/serve/webhook_receiver.py
--faults: 429 with Retry-After: 1 to one request in ten, 500 to one in fifty).

Prints deliveries/s sustained (from the first event posted to the last delivery accepted),
p50/p99/max of decision -> accepted delivery (the payload's timestamp, set when the decision
is made, to the receiver's clock at acceptance: one machine, one clock), what was lost and
doubled as the receiver counts them, and the daemon's peak RSS. Not a test: nothing here
asserts a time."""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests/serve"))
sys.argv = [sys.argv[0]] + sys.argv[1:]
WHIPLY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "build/whiply")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


def main():
    tmp = tempfile.mkdtemp(prefix="whiply-bench-outbox-")
    recv = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/serve/webhook_receiver.py"),
                             SECRET, "--faults"], stdout=subprocess.PIPE, text=True)
    rport = int(recv.stdout.readline().split()[1])
    cfg = os.path.join(tmp, "whiply.yaml")
    with open(cfg, "w") as f:
        f.write("listen: 127.0.0.1:0\nstore: {signing_key: none, checkpoints: none}\n"
                "webhooks:\n  - {name: sink, url: 'http://127.0.0.1:%d/hook', secret: '%s',"
                " events: [decision]}\n" % (rport, SECRET))
    d = subprocess.Popen([WHIPLY, "serve", "--config", cfg, "--data", os.path.join(tmp, "data"),
                          "--rules", os.path.join(ROOT, "examples/rules.yaml")],
                         stderr=subprocess.PIPE, text=True)
    port = None
    for line in d.stderr:
        if "listening on http://127.0.0.1:" in line:
            port = int(line.strip().rsplit(":", 1)[1])
            break
    token = open(os.path.join(tmp, "data/admin.token")).read().strip()
    lines = [json.dumps({"id": "b-%d" % i, "channel": "#c%d" % (i % 50), "platform": "twitch",
                         "user": {"id": "u%d" % (i % 5000)}, "text": "hello chat number %d" % i})
             for i in range(N)]
    t0 = time.time()
    for i in range(0, N, 500):
        body = ("\n".join(lines[i:i + 500]) + "\n").encode()
        req = urllib.request.Request("http://127.0.0.1:%d/v1/events" % port, data=body,
                                     headers={"Authorization": "Bearer " + token})
        urllib.request.urlopen(req, timeout=120).read()
    posted = time.time() - t0
    want = {"b-%d" % i for i in range(N)}
    while True:
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % rport, timeout=60) as r:
            st = json.loads(r.read())
        got = {p["data"]["id"] for p in st["accepted"].values()}
        if want <= got or time.time() - t0 > 600:
            break
        time.sleep(0.2)
    last = max(st["first_ms"].values()) / 1000.0
    rss = 0
    with open("/proc/%d/status" % d.pid) as f:
        for l in f:
            if l.startswith("VmHWM:"):
                rss = int(l.split()[1]) // 1024
    lat = sorted(st["first_ms"][k] - datetime.fromisoformat(
        p["timestamp"].replace("Z", "+00:00")).timestamp() * 1000
        for k, p in st["accepted"].items())
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print("outbox: %d decisions posted in %.2f s; %d deliveries accepted in %.2f s: %.0f "
          "deliveries/s" % (N, posted, len(got), last - t0, len(got) / (last - t0)))
    print("  decision -> delivery: p50 %.0f ms, p99 %.0f ms, max %.0f ms" %
          (pct(0.5), pct(0.99), lat[-1]))
    print("  receiver: %d requests, %d faults (429/500), %d bad signatures, lost %d, "
          "delivered again %d (accepted once each)" % (st["requests"], st["faults"],
                                                       st["bad_signatures"], len(want - got),
                                                       st["duplicates"]))
    print("  daemon peak RSS: %d MiB" % rss)
    d.terminate()
    d.wait(60)
    recv.kill()
    recv.wait()
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
