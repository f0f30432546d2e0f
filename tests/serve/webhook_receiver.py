#!/usr/bin/env python3
"""tests/serve/webhook_receiver.py SECRET [--faults] - a webhook receiver, as a real endpoint
of whiply's signed webhooks and alerts would be: a separate process on loopback (the standard
library's http.server, HTTP/1.1 keep-alive) that prints "port N" on stdout once it listens.

POST /hook      a signed webhook (Standard Webhooks): the signature is verified with SECRET
                (base64 after "whsec_"; webhook-id, webhook-timestamp within 5 minutes,
                webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>"). With
                --faults, one request in ten is answered 429 (Retry-After: 1) and one in
                fifty 500, before anything is accepted. An id is accepted once; a delivery
                of an id already accepted is answered 200 and counted as a duplicate.
POST /dead      always 503 (an endpoint that never recovers), until POST /control {"dead":
                false} makes it answer like /hook.
POST /discord, /slack
                an incoming webhook for alerts: the JSON body is kept as it came.
GET /stats      what arrived: {"accepted": {webhook-id: payload}, "duplicates": N,
                "bad_signatures": N, "requests": N, "faults": N, "alerts": {"discord": [...],
                "slack": [...]}, "first_ms": {webhook-id: ms}}
"""
import base64
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = sys.argv[1]
FAULTS = "--faults" in sys.argv
KEY = base64.b64decode(SECRET[6:] if SECRET.startswith("whsec_") else SECRET)

lock = threading.Lock()
state = {"accepted": {}, "duplicates": 0, "bad_signatures": 0, "requests": 0, "faults": 0,
         "alerts": {"discord": [], "slack": []}, "first_ms": {}, "dead": True,
         "bad_reasons": []}


def verify(headers, body):
    """None when the delivery is signed as Standard Webhooks says, else why not."""
    mid, ts, sig = (headers.get("webhook-id"), headers.get("webhook-timestamp"),
                    headers.get("webhook-signature"))
    if not mid or not ts or not sig:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        if abs(time.time() - int(ts)) > 300:
            return "timestamp outside 5 minutes"
    except ValueError:
        return "timestamp not an integer"
    want = base64.b64encode(hmac.new(KEY, f"{mid}.{ts}.".encode() + body,
                                     hashlib.sha256).digest()).decode()
    for s in sig.split(" "):  # several signatures may be sent, space-separated
        v, _, b64 = s.partition(",")
        if v == "v1" and hmac.compare_digest(b64, want):
            return None
    return "no v1 signature matches"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without this, Nagle holds the second until
        # the client's delayed ACK of the first (tens of ms a request on keep-alive)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def answer(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/stats":
            return self.answer(404)
        with lock:
            body = json.dumps(state).encode()
        self.answer(200, body, [("Content-Type", "application/json")])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/control":
            with lock:
                state.update(json.loads(body))
            return self.answer(200)
        if self.path in ("/discord", "/slack"):
            with lock:
                state["alerts"][self.path[1:]].append(json.loads(body))
            return self.answer(204)
        if self.path not in ("/hook", "/dead"):
            return self.answer(404)
        with lock:
            state["requests"] += 1
            n = state["requests"]
            if self.path == "/dead" and state["dead"]:
                state["faults"] += 1
                return self.answer(503)
        why = verify(self.headers, body)
        if why:
            with lock:
                state["bad_signatures"] += 1
                state["bad_reasons"].append(why)
            return self.answer(400, why.encode())
        if FAULTS and n % 10 == 0:
            with lock:
                state["faults"] += 1
            return self.answer(429, b"slow down", [("Retry-After", "1")])
        if FAULTS and n % 50 == 25:
            with lock:
                state["faults"] += 1
            return self.answer(500, b"oops")
        mid = self.headers["webhook-id"]
        with lock:
            if mid in state["accepted"]:
                state["duplicates"] += 1
            else:
                state["accepted"][mid] = json.loads(body)
                state["first_ms"][mid] = int(time.time() * 1000)
        self.answer(200)


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print("port %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
