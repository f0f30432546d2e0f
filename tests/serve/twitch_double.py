"""tests/serve/twitch_double.py - a CONTRACT DOUBLE of Twitch for the tests: Twitch's chat
(IRC) and its Helix API cannot run here, so this loopback server implements the request and
response shapes Twitch documents (dev.twitch.tv/docs/irc, /docs/api/reference), and their
errors, and records every request for the tests to check. It is not Twitch: what it checks is
what the documentation says, no more.

IRC (plain TCP): CAP REQ of twitch.tv/tags, commands and membership is ACKed; PASS must be
"oauth:" + the valid token, else NOTICE "Login authentication failed" and the connection is
closed (as Twitch does); NICK gets 001-004, 375/372/376; JOIN #channel is echoed with
353/366; PING gets PONG. push(line) sends a line (a documented example) to the client.

Helix (HTTP, under /helix) and the token endpoint (/oauth2/token):
  POST   /moderation/bans?broadcaster_id&moderator_id   {"data":{"user_id","duration"?,"reason"?}} -> 200
  DELETE /moderation/bans?broadcaster_id&moderator_id&user_id                         -> 204
  DELETE /moderation/chat?broadcaster_id&moderator_id[&message_id]                    -> 204
  POST   /moderation/warnings?broadcaster_id&moderator_id {"data":{"user_id","reason"}} -> 200
  PATCH  /chat/settings?broadcaster_id&moderator_id   {"follower_mode":..., ...}          -> 200
  POST   /moderation/automod/message  {"user_id","msg_id","action":"ALLOW"|"DENY"}      -> 204
  POST   /oauth2/token grant_type=refresh_token&refresh_token&client_id&client_secret  -> 200
Every Helix call needs "Authorization: Bearer <valid token>" (else 401 {"error":
"Unauthorized","status":401,"message":"Invalid OAuth token"}) and Client-Id; a malformed
request is 400 with Twitch's error object. Every answer carries Ratelimit-Limit (800),
Ratelimit-Remaining and Ratelimit-Reset (unix seconds). fail_next(status, n) makes the next n
Helix calls answer status (429 with Remaining 0 and a Reset 2 s ahead; 5xx with an error
object); expire_token() makes the current token invalid (a refresh gives a new one).
"""
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TwitchDouble:
    def __init__(self, channel, broadcaster_id="713936733", moderator_id="12826",
                 client_id="cid-test", client_secret="csecret-test"):
        self.channel = channel
        self.broadcaster_id, self.moderator_id = broadcaster_id, moderator_id
        self.client_id, self.client_secret = client_id, client_secret
        self.token, self.refresh = "tok-1", "ref-1"
        self.tokens_issued = 1
        self.lock = threading.Condition()
        self.requests = []  # (method, path, query dict, json body or form, headers)
        self.irc_in = []    # lines the client sent
        self.faults = []    # statuses to answer next
        self.irc_conn = None
        self.remaining = 800
        # IRC
        self.irc = socket.socket()
        self.irc.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.irc.bind(("127.0.0.1", 0))
        self.irc.listen(4)
        self.irc_port = self.irc.getsockname()[1]
        threading.Thread(target=self._irc_accept, daemon=True).start()
        # HTTP
        double = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _do(self):
                double._http(self)

            do_GET = do_POST = do_DELETE = do_PATCH = _do

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client killed mid-request (the tests stop whiply with SIGKILL)

        self.http = Server(("127.0.0.1", 0), H)
        self.http_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    # ---- IRC ----
    def _irc_accept(self):
        while True:
            try:
                conn, _ = self.irc.accept()
            except OSError:
                return
            threading.Thread(target=self._irc_client, args=(conn,), daemon=True).start()

    def _irc_send(self, conn, line):
        try:
            conn.sendall((line + "\r\n").encode())
        except OSError:
            pass

    def _irc_client(self, conn):
        buf, login, authed = b"", None, False
        while True:
            try:
                d = conn.recv(65536)
            except OSError:
                d = b""
            if not d:
                break
            buf += d
            while b"\n" in buf:
                l, buf = buf.split(b"\n", 1)
                line = l.rstrip(b"\r").decode("utf-8", "replace")
                with self.lock:
                    self.irc_in.append(line)
                    self.lock.notify_all()
                cmd = line.split(" ", 1)[0].upper()
                arg = line.split(" ", 1)[1] if " " in line else ""
                if cmd == "CAP" and arg.startswith("REQ"):
                    self._irc_send(conn, ":tmi.twitch.tv CAP * ACK :" + arg.split(":", 1)[1])
                elif cmd == "PASS":
                    authed = arg == "oauth:" + self.token
                elif cmd == "NICK":
                    login = arg.strip()
                    if not authed:
                        self._irc_send(conn, ":tmi.twitch.tv NOTICE * :Login authentication failed")
                        conn.close()
                        return
                    for n, t in (("001", "Welcome, GLHF!"), ("002", "Your host is tmi.twitch.tv"),
                                 ("003", "This server is rather new"), ("004", "-"),
                                 ("375", "-"), ("372", "You are in a maze of twisty passages, all alike."),
                                 ("376", ">")):
                        self._irc_send(conn, f":tmi.twitch.tv {n} {login} :{t}")
                    with self.lock:
                        self.irc_conn = conn
                        self.lock.notify_all()
                elif cmd == "JOIN":
                    ch = arg.strip()
                    self._irc_send(conn, f":{login}!{login}@{login}.tmi.twitch.tv JOIN {ch}")
                    self._irc_send(conn, f":{login}.tmi.twitch.tv 353 {login} = {ch} :{login}")
                    self._irc_send(conn, f":{login}.tmi.twitch.tv 366 {login} {ch} :End of /NAMES list")
                elif cmd == "PING":
                    self._irc_send(conn, ":tmi.twitch.tv PONG tmi.twitch.tv " + arg)
        with self.lock:
            if self.irc_conn is conn:
                self.irc_conn = None

    def wait_irc(self, pred, timeout=30):
        end = time.monotonic() + timeout
        with self.lock:
            while not pred(self):
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("twitch double: condition not met; client said: %s" % self.irc_in[-10:])
                self.lock.wait(left)

    def push(self, line):
        with self.lock:
            conn = self.irc_conn
        if not conn:
            raise AssertionError("twitch double: no client connected")
        self._irc_send(conn, line)

    # ---- Helix ----
    def fail_next(self, status, n=1):
        with self.lock:
            self.faults += [status] * n

    def expire_token(self):
        with self.lock:
            self.tokens_issued += 1
            self.token = "tok-%d" % self.tokens_issued

    def wait_request(self, pred, timeout=30):
        end = time.monotonic() + timeout
        with self.lock:
            while True:
                got = [r for r in self.requests if pred(r)]
                if got:
                    return got
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("twitch double: no such request; got %s" %
                                         [(r[0], r[1], r[4]) for r in self.requests[-8:]])
                self.lock.wait(left)

    def _answer(self, h, status, body=None, reset=None):
        data = b"" if body is None else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Ratelimit-Limit", "800")
        h.send_header("Ratelimit-Remaining", str(0 if status == 429 else self.remaining))
        h.send_header("Ratelimit-Reset", str(reset or int(time.time()) + 60))
        if data:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if data:
            h.wfile.write(data)

    def _error(self, h, status, message, reset=None):
        names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
        self._answer(h, status, {"error": names.get(status, "Error"), "status": status,
                                 "message": message}, reset)

    def _http(self, h):
        u = urllib.parse.urlsplit(h.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        ctype = h.headers.get("Content-Type", "")
        try:
            body = json.loads(raw) if raw and "json" in ctype else dict(urllib.parse.parse_qsl(raw.decode()))
        except ValueError:
            body = None
        with self.lock:
            self.requests.append((h.command, u.path, q, body, dict(h.headers)))
            self.lock.notify_all()
            fault = self.faults.pop(0) if self.faults and u.path.startswith("/helix") else None
            token = self.token
        if u.path == "/oauth2/token":
            if (h.command != "POST" or body.get("grant_type") != "refresh_token" or
                    body.get("refresh_token") != self.refresh or body.get("client_id") != self.client_id or
                    body.get("client_secret") != self.client_secret):
                return self._answer(h, 400, {"status": 400, "message": "Invalid refresh token"})
            with self.lock:
                self.tokens_issued += 1
                self.token = "tok-%d" % self.tokens_issued
                self.refresh = "ref-%d" % self.tokens_issued
                return self._answer(h, 200, {"access_token": self.token, "refresh_token": self.refresh,
                                             "scope": ["moderator:manage:banned_users"],
                                             "token_type": "bearer"})
        if not u.path.startswith("/helix/"):
            return self._error(h, 404, "no such endpoint")
        if h.headers.get("Authorization") != "Bearer " + token:
            return self._error(h, 401, "Invalid OAuth token")
        if h.headers.get("Client-Id") != self.client_id:
            return self._error(h, 401, "Client ID and OAuth token do not match")
        if fault == 429:
            return self._error(h, 429, "Too Many Requests", reset=int(time.time()) + 2)
        if fault:
            return self._error(h, fault, "something went wrong")
        path, m = u.path[len("/helix"):], h.command
        if path != "/moderation/automod/message" and (
                q.get("broadcaster_id") != self.broadcaster_id or q.get("moderator_id") != self.moderator_id):
            return self._error(h, 400, "The broadcaster_id or moderator_id query parameter is missing or wrong")
        if path == "/moderation/bans" and m == "POST":
            d = (body or {}).get("data") or {}
            if not isinstance(d.get("user_id"), str) or not d["user_id"].isdigit():
                return self._error(h, 400, "The user_id field is required")
            if "duration" in d and not (isinstance(d["duration"], int) and 1 <= d["duration"] <= 1209600):
                return self._error(h, 400, "The value in the duration field is not valid")
            return self._answer(h, 200, {"data": [{"broadcaster_id": self.broadcaster_id,
                                                   "moderator_id": self.moderator_id, "user_id": d["user_id"],
                                                   "created_at": "2026-12-07T23:00:00Z",
                                                   "end_time": None if "duration" not in d else "2026-12-07T23:10:00Z"}]})
        if path == "/moderation/bans" and m == "DELETE":
            if not q.get("user_id"):
                return self._error(h, 400, "The user_id query parameter is required")
            return self._answer(h, 204)
        if path == "/moderation/chat" and m == "DELETE":
            return self._answer(h, 204)
        if path == "/moderation/warnings" and m == "POST":
            d = (body or {}).get("data") or {}
            if not d.get("user_id") or not d.get("reason"):
                return self._error(h, 400, "The user_id and reason fields are required")
            return self._answer(h, 200, {"data": [dict(d, broadcaster_id=self.broadcaster_id,
                                                       moderator_id=self.moderator_id)]})
        if path == "/chat/settings" and m == "PATCH":
            known = {"emote_mode", "follower_mode", "follower_mode_duration", "non_moderator_chat_delay",
                     "non_moderator_chat_delay_duration", "slow_mode", "slow_mode_wait_time",
                     "subscriber_mode", "unique_chat_mode"}
            if not isinstance(body, dict) or not body or set(body) - known:
                return self._error(h, 400, "The request body is not valid")
            return self._answer(h, 200, {"data": [dict(body, broadcaster_id=self.broadcaster_id)]})
        if path == "/moderation/automod/message" and m == "POST":
            if (body or {}).get("action") not in ("ALLOW", "DENY") or not body.get("msg_id") or \
                    body.get("user_id") != self.moderator_id:
                return self._error(h, 400, "The request body is not valid")
            return self._answer(h, 204)
        return self._error(h, 404, "no such endpoint")

    def close(self):
        self.http.shutdown()
        self.irc.close()
