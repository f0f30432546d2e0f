#!/usr/bin/env python3
"""tests/serve/test_irc.py WHIPLY [NAME] - whiply on real IRC servers: ngIRCd and InspIRCd.

Each test starts a real IRC server (Debian's ngircd or inspircd, a config written to a
temporary folder, loopback, a free port, in the foreground), the real `whiply serve` with a
`platforms.irc` network on it (harness of test_serve.py), and IRC clients written here with
the standard library: a human channel operator ("mod") who watches, and users who talk.
Nothing is mocked. Waiting is for a line on a socket, a log line or a decision, never a
fixed sleep. Prints PASS/FAIL lines and "serve: N passed, N failed" like test_serve.py.

What each server offers, as these tests rely on (docs/platforms.md, "IRC"):
  ngIRCd 26   CHANMODES=beI,k,l,imMnOPQRstVz, PREFIX=(qaohv): no quiet, so a timeout is a
              KICK; +M (only registered users speak); no IRCv3 tags. An IRC operator may set
              channel modes (OperCanUseMode), which is how whiply gets +o.
  InspIRCd 3  CHANMODES=b,k,l,MRimnprst, EXTBAN=,RUm with m_muteban: a timeout is
              MODE +b m:*!*@host; message-tags, server-time, msgid and account-tag; an IRC
              operator with m_override gives itself +o.
"""
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import test_serve as ts  # noqa: E402
from test_serve import check, eq  # noqa: E402

TESTS = []
CHAN = "#test"
OPER_PASS = "oper-secret-7"

RULES = """version: 1
rules:
  - id: listed-word
    when: {words: [badword]}
    action: ban
    reason: "listed word"
  - id: flood
    when: {rate: {count: 3, per: 10s}}
    action: {timeout: 60s}
    reason: "flood"
  - id: polite
    when: {words: [heck]}
    action: {warn: "Please keep it friendly"}
  - id: join-burst
    when: {joins: {count: 5, per: 10s}}
    channel_action: {mode: followers_only, for: 2s}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("the IRC server exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            # the server is starting: poll the port (there is no readiness event to wait for)
            time.sleep(0.05)
    raise RuntimeError("the IRC server did not listen on %d" % port)


class IrcServer:
    """ngIRCd or InspIRCd in the foreground on a free loopback port; restartable on it."""

    def __init__(self, kind, name, tls=False):
        self.kind = kind
        self.dir = os.path.join(ts.TMP, name + "-" + kind)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.proc = None
        if tls:  # a self-signed certificate for 127.0.0.1, made with the openssl command
            self.cert = os.path.join(self.dir, "cert.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=whiply test", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", os.path.join(self.dir, "key.pem"), "-out", self.cert],
                           check=True, capture_output=True)
        self.conf = os.path.join(self.dir, kind + ".conf")
        with open(self.conf, "w") as f:
            f.write(self.ngircd_conf() if kind == "ngircd" else self.inspircd_conf())

    def ngircd_conf(self):
        return f"""[Global]
Name = irc.ngircd.test
Info = whiply test server
Listen = 127.0.0.1
Ports = {self.port}
MotdPhrase = test
PidFile = {self.dir}/ngircd.pid
[Limits]
MaxNickLength = 30
MaxConnectionsIP = 0
PingTimeout = 120
[Options]
PAM = no
Ident = no
DNS = no
OperCanUseMode = yes
[Operator]
Name = whiply
Password = {OPER_PASS}
[Operator]
Name = mod
Password = {OPER_PASS}
"""

    def inspircd_conf(self):
        return f"""<server name="irc.inspircd.test" description="whiply test server" network="Test">
<admin name="test" nick="test" email="test@example.invalid">
<bind address="127.0.0.1" port="{self.port}" type="clients">
<connect allow="*" timeout="60" pingfreq="120" recvq="65536" sendq="1048576" threshold="1000"
  commandrate="100000" fakelag="off" localmax="1000" globalmax="1000" useident="no"
  resolvehostnames="no" limit="5000">
<options defaultmodes="nt">
<security hidebans="no" restrictbannedusers="yes" genericoper="no">
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="11" maxhost="64" maxquit="255"
  maxtopic="307" maxkick="255" maxreal="128" maxaway="200">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{self.dir}/inspircd.log">
<pid file="{self.dir}/inspircd.pid">
<class name="all" commands="*" privs="*" usermodes="*" chanmodes="*">
<type name="bot" classes="all" override="*">
<oper name="whiply" password="{OPER_PASS}" host="*@*" type="bot">
<oper name="mod" password="{OPER_PASS}" host="*@*" type="bot">
<module name="cap">
<module name="ircv3">
<module name="ircv3_servertime">
<module name="ircv3_msgid">
<module name="ircv3_accounttag">
<module name="ircv3_ctctags">
<module name="services_account">
<module name="muteban">
<module name="override">
""" + (f"""<module name="ssl_gnutls">
<sslprofile name="tls" provider="gnutls" certfile="{self.dir}/cert.pem" keyfile="{self.dir}/key.pem"
  dhfile="" hash="sha256" requestclientcert="no">
<bind address="127.0.0.1" port="{self.tls_port}" type="clients" sslprofile="tls">
""" if self.tls_port else "")

    def start(self):
        if self.kind == "ngircd":
            exe = shutil.which("ngircd") or "/usr/sbin/ngircd"
            cmd = [exe, "--nodaemon", "--config", self.conf]
        else:
            exe = shutil.which("inspircd") or "/usr/sbin/inspircd"
            cmd = [exe, "--nofork", "--runasroot", "--config=" + self.conf]
        if not os.path.exists(exe):
            raise RuntimeError(f"{self.kind} is not installed (make test installs it)")
        self.log = open(os.path.join(self.dir, "server.out"), "a")
        # in its own folder and without core files: InspIRCd 3 with GnuTLS may crash as it
        # exits on SIGTERM, which the tests do not judge (the restart test waits for its port)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir,
                                     preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
        wait_port(self.port, self.proc)
        return self

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
            self.log.close()


class Client:
    """A plain IRC client: registers, answers PING, keeps every line it reads."""

    def __init__(self, port, nick):
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.settimeout(None)
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick} of the tests")
        self.wait(r"^(@\S+ )?:\S+ 001 ")

    def _read(self):
        buf = b""
        while True:
            try:
                d = self.sock.recv(65536)
            except OSError:
                d = b""
            if not d:
                break
            buf += d
            while b"\n" in buf:
                l, buf = buf.split(b"\n", 1)
                l = l.rstrip(b"\r").decode("utf-8", "replace")
                m = re.match(r"^(@\S+ )?PING (.*)$", l)
                if m:
                    self.send("PONG " + m.group(2))
                with self.cond:
                    self.lines.append(l)
                    self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def send(self, line):
        try:
            self.sock.sendall((line + "\r\n").encode())
        except OSError:
            pass

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait(self, pattern, timeout=30, start=0):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = end - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"{self.nick}: no line matching {pattern!r} within "
                                         f"{timeout} s; last lines: {self.lines[-8:]}")
                self.cond.wait(left)

    def join(self, chan=CHAN):
        m = self.mark()
        self.send("JOIN " + chan)
        self.wait(rf" 366 {re.escape(self.nick)} {re.escape(chan)} ", start=m)

    def op_self(self, chan=CHAN):
        """An IRC operator gives itself +o: the human channel operator of the tests."""
        m = self.mark()
        self.send(f"OPER {self.nick} {OPER_PASS}")
        self.wait(r" 381 ", start=m)
        self.send(f"MODE {chan} +o {self.nick}")
        wait_op(self, self.nick)

    def close(self):
        self.send("QUIT :bye")
        try:
            self.sock.close()
        except OSError:
            pass


def joined(srv, clients, nick, op=False):
    """A client of the test that has joined the channel; with op, the human channel operator
    (and whiply an operator too, before anyone talks)."""
    c = Client(srv.port, nick)
    clients.append(c)
    c.join()
    if op:
        c.op_self()
        wait_whiply_op(c)
    return c


def wait_whiply_op(mod, timeout=30):
    wait_op(mod, "whiply", timeout)


def wait_op(mod, who, timeout=30):
    """The mod asks NAMES until who is listed as a channel operator."""
    end = time.monotonic() + timeout
    while True:
        m = mod.mark()
        mod.send("NAMES " + CHAN)
        line = mod.wait(rf" 366 {mod.nick} {CHAN} ", start=m)
        with mod.cond:
            names = [l for l in mod.lines[m:] if f" 353 {mod.nick} " in l]
        if any(re.search(rf"[ :][~&%+]*@[~&%+]*{who}\b", n) for n in names):
            return
        if time.monotonic() > end:
            raise AssertionError(f"{who} is not a channel operator: {names} {line}")
        # wait for the next move (a JOIN or a MODE it sets), then ask again
        try:
            mod.wait(r"(JOIN|MODE) ", timeout=1, start=m)
        except AssertionError:
            pass


def daemon_for(name, srv, extra_net=""):
    d = ts.Daemon(name, extra=f"""platforms:
  irc:
    - name: testnet
      host: 127.0.0.1
      port: {srv.port}
      nick: whiply
      channels: ["{CHAN}"]
      oper: {{name: whiply, password: {OPER_PASS}}}
      reconnect: {{min: 100ms, max: 1s}}
      flood: {{burst: 10, every: 100ms}}
{extra_net}""")
    d.rules = os.path.join(d.dir, "rules.yaml")
    with open(d.rules, "w") as f:
        f.write(RULES)
    return d.start()


def decisions(d, **q):
    st, body, _ = d.json("GET", "/v1/decisions?" + urllib.parse.urlencode(q))
    eq(st, 200, "GET /v1/decisions")
    return body["decisions"]


def wait_decision(d, pred, what, timeout=30, **q):
    end = time.monotonic() + timeout
    while True:
        got = decisions(d, **q)
        for x in got:
            if pred(x):
                return x
        if time.monotonic() > end:
            raise AssertionError(f"no decision {what} within {timeout} s: {got[:5]}")
        time.sleep(0.05)  # polling the API with a deadline: decisions have no push channel


def actions(d, **q):
    st, body, _ = d.json("GET", "/v1/actions?" + urllib.parse.urlencode(q))
    eq(st, 200, "GET /v1/actions")
    return body["actions"]


def wait_action(d, pred, status, timeout=30, platform="testnet"):
    end = time.monotonic() + timeout
    while True:
        got = [a for a in actions(d, platform=platform) if pred(a)]
        if got and got[0]["status"] == status:
            return got[0]
        if time.monotonic() > end:
            raise AssertionError(f"no {status} action within {timeout} s: {got}")
        time.sleep(0.05)  # polling the API with a deadline: outcomes have no push channel


def metric(d, name):
    st, body, _ = d.req("GET", "/metrics")
    m = re.search(r"^" + re.escape(name) + r"\{network=\"testnet\"\} (\d+)$", body, re.M)
    return int(m.group(1)) if m else None


def cleanup(clients, d, srv):
    for c in clients:
        c.close()
    if d and d.proc:
        d.stop(signal.SIGKILL, 10)
    srv.stop()


def server_test(kind):
    def deco(fn):
        def run():
            srv = IrcServer(kind, fn.__name__).start()
            d = None
            clients = []
            try:
                d = daemon_for(fn.__name__ + "-" + kind, srv)
                fn(srv, d, clients)
            except Exception:
                if d:
                    print(d.log()[-3000:], flush=True)
                raise
            finally:
                cleanup(clients, d, srv)
        run.__name__ = f"{kind}: {fn.__name__}".replace("_", " ")
        TESTS.append(run)
        return fn
    return deco


# ---------------------------------------------------------------------------------------


def reads_chat(srv, d, clients):
    """Messages, joins, parts and a human operator's ban arrive as events, decided."""
    mod = joined(srv, clients, "mod", op=True)
    check(d.wait_line(r"irc testnet: joined #test", 30), "whiply did not join: " + d.log())
    dave = joined(srv, clients, "dave")
    dave.send(f"PRIVMSG {CHAN} :hello everyone")
    # dave's join and his message: the message is the newer
    end = time.monotonic() + 30
    while len(decisions(d, user="dave")) < 2:
        check(time.monotonic() < end, "no decisions for dave's join and message")
        time.sleep(0.05)  # polling the API with a deadline
    x = decisions(d, user="dave")[0]
    if srv.kind == "inspircd":  # msgid and server-time: the server's own id is the event's
        check(not x["id"].startswith("irc-testnet-"), "InspIRCd gives a msgid: " + json.dumps(x))
        eq(x.get("meta", {}).get("msg_id"), x["id"], "meta.msg_id")
    else:  # ngIRCd has no msgid: network, time and a counter
        check(re.match(r"^irc-testnet-\d{13}-\d+$", x["id"]), "made-up id: " + x["id"])
    # a human operator's ban of dave (a nick mask) is a mod_action: 3 strikes by default
    mod.send(f"MODE {CHAN} +b dave!*@*")
    x = wait_decision(d, lambda x: x.get("target") == "dave", "for the ban of dave", user="dave")
    eq(x["action"], "allow", "a mod_action's decision")
    eq(x.get("strikes"), 3, "a ban weighs 3 strikes")
    # and its reversal: unban clears them
    mod.send(f"MODE {CHAN} -b dave!*@*")
    wait_decision(d, lambda x: x.get("target") == "dave" and x.get("strikes") == 0,
                  "for the unban of dave", user="dave")
    # a kick by a human is counted as a timeout (1 strike)
    eve = joined(srv, clients, "eve")
    eve.send(f"PRIVMSG {CHAN} :hi")
    wait_decision(d, lambda x: x["action"] == "allow", "for eve's message", user="eve")
    mod.send(f"KICK {CHAN} eve :calm down")
    wait_decision(d, lambda x: x.get("target") == "eve" and x.get("strikes") == 1,
                  "for the kick of eve", user="eve")
    st = d.req("GET", "/metrics")[1]
    check(re.search(r'whiply_irc_events_total\{network="testnet"\} ([5-9]|\d\d)', st),
          "events counted: " + st[-2000:])


def acts_on_chat(srv, d, clients):
    """A listed word is banned and kicked, a flood timed out, and after a restart of the
    server whiply is back in the channel and acts again."""
    mod = joined(srv, clients, "mod", op=True)
    alice = joined(srv, clients, "alice")
    m = mod.mark()
    alice.send(f"PRIVMSG {CHAN} :you are a badword")
    mod.wait(rf":whiply!\S+ MODE {CHAN} \+b :?\*!\*@127\.0\.0\.1", start=m)
    mod.wait(rf":whiply!\S+ KICK {CHAN} alice :listed word", start=m)
    # the outbox records each outcome: the ban carried out, and where the message had a
    # msgid (InspIRCd), the delete that IRC cannot do
    ban = wait_action(d, lambda a: a["kind"] == "ban" and a["user_name"] == "alice", "done")
    check(f"MODE {CHAN} +b *!*@127.0.0.1" in ban["detail"], "the ban's detail: " + ban["detail"])
    if srv.kind == "inspircd":
        dl = wait_action(d, lambda a: a["kind"] == "delete" and a["user_name"] == "alice",
                         "unsupported")
        check("no message deletion" in dl["detail"], "the delete's detail: " + dl["detail"])
    # whiply's own ban is not a moderator's action: no mod_action comes back from it
    eq([x for x in decisions(d, user="alice") if "target" in x], [], "mod_actions about alice")
    mod.send(f"MODE {CHAN} -b *!*@127.0.0.1")  # everyone here is 127.0.0.1
    mod.wait(rf":mod!\S+ MODE {CHAN} -b :?\*!\*@127\.0\.0\.1")

    # a flood: the 4th message in 10 s is over the rate; timeout = quiet or kick
    carol = joined(srv, clients, "carol")
    m = mod.mark()
    for i in range(6):
        carol.send(f"PRIVMSG {CHAN} :spam line {i}")
    if srv.kind == "inspircd":
        mod.wait(rf":whiply!\S+ MODE {CHAN} \+b :?m:\*!\*@127\.0\.0\.1", start=m)
        mod.send(f"MODE {CHAN} -b m:*!*@127.0.0.1")
    else:
        mod.wait(rf":whiply!\S+ KICK {CHAN} carol :flood", start=m)

    # the server restarts: whiply reconnects, joins again and acts again
    connects = metric(d, "whiply_irc_connects_total")
    for c in clients:
        c.close()
    clients.clear()
    srv.stop()
    srv.start()
    mod = joined(srv, clients, "mod", op=True)
    check(metric(d, "whiply_irc_connects_total") > connects, "a new connection was counted")
    erin = joined(srv, clients, "erin")
    m = mod.mark()
    erin.send(f"PRIVMSG {CHAN} :badword again")
    mod.wait(rf":whiply!\S+ KICK {CHAN} erin :listed word", start=m)


def warns_and_switches_modes(srv, d, clients):
    """A warn is a NOTICE to the user; a join burst's followers_only is +M (only registered
    users may speak, on both servers), lifted when its time is up."""
    mod = joined(srv, clients, "mod", op=True)
    frank = joined(srv, clients, "frank")
    m = frank.mark()
    frank.send(f"PRIVMSG {CHAN} :what the heck")
    frank.wait(rf":whiply!\S+ NOTICE frank :\[{CHAN}\] Please keep it friendly", start=m)
    m = mod.mark()
    for i in range(5):  # with mod and frank, the 6th join in 10 s is over the limit
        joined(srv, clients, f"joiner{i}")
    mod.wait(rf":whiply!\S+ MODE {CHAN} :?\+M", start=m)
    mod.wait(rf":whiply!\S+ MODE {CHAN} :?-M", start=m, timeout=30)
    a = wait_action(d, lambda a: a["kind"] == "channel_mode", "done")
    eq(a["mode"], "followers_only", "the channel action's mode")


def a_moderators_ban_from_the_dashboard_reaches_the_channel(srv, d, clients):
    """POST /v1/moderate with the network as platform: the mod_action is decided and audited,
    and the ban is an operation of the outbox that the IRC executor carries out (MODE +b and
    KICK, seen by a client on the real server); GET /v1/actions shows it done."""
    mod = joined(srv, clients, "mod", op=True)
    gina = joined(srv, clients, "gina")
    gina.send(f"PRIVMSG {CHAN} :hello from gina")
    wait_decision(d, lambda x: True, "of gina's message", user="gina")
    m = mod.mark()
    body = json.dumps({"platform": "testnet", "channel": CHAN, "user": "gina", "action": "ban",
                       "note": "spam in DMs"})
    st, out, _ = d.req("POST", "/v1/moderate", body, token="review")
    eq(st, 200, out)
    r = json.loads(out)
    check("operation" in r and "error" not in r["operation"], out)
    mod.wait(rf":whiply!\S+ MODE {CHAN} \+b :?\*!\*@127\.0\.0\.1", start=m)
    mod.wait(rf":whiply!\S+ KICK {CHAN} gina :spam in DMs", start=m)
    a = wait_action(d, lambda a: a["id"] == r["operation"]["id"], "done")
    eq((a["kind"], a["channel"], a["user_id"], a["event_id"]), ("ban", CHAN, "gina", "api:" + r["event"]["id"]), a)
    check("banned and kicked" in a["detail"], a["detail"])
    # the moderator's action is in the audit trail, as whiply's decision of its mod_action
    rows = d.json("GET", "/v1/audit?" + urllib.parse.urlencode({"event_id": r["event"]["id"]}))[1]["rows"]
    check(any(x["kind"] == "decision" for x in rows), rows)


for kind in ("ngircd", "inspircd"):
    server_test(kind)(a_moderators_ban_from_the_dashboard_reaches_the_channel)
    server_test(kind)(reads_chat)
    server_test(kind)(acts_on_chat)
    server_test(kind)(warns_and_switches_modes)


def tls_with_a_checked_certificate():
    """TLS to InspIRCd (GnuTLS): with the server's certificate as ca_file whiply connects,
    joins and reads chat; a network that trusts only the system's CAs refuses the
    self-signed certificate and says why."""
    srv = IrcServer("inspircd", "tls", tls=True).start()
    wait_port(srv.tls_port, srv.proc)
    d = None
    clients = []
    try:
        d = ts.Daemon("tls-inspircd", extra=f"""platforms:
  irc:
    - name: testnet
      host: 127.0.0.1
      port: {srv.tls_port}
      tls: true
      ca_file: {srv.cert}
      nick: whiply
      channels: ["{CHAN}"]
    - name: untrusted
      host: 127.0.0.1
      port: {srv.tls_port}
      tls: true
      nick: whiply2
      channels: ["{CHAN}"]
      reconnect: {{min: 5s, max: 5s}}
""")
        d.start()
        check(d.wait_line(r"irc testnet: connected to 127\.0\.0\.1:\d+ \(TLS\)", 30), d.log())
        check(d.wait_line(r"irc testnet: joined #test", 30), d.log())
        check(d.wait_line(r"irc untrusted: TLS with 127\.0\.0\.1 failed: self-signed certificate", 30),
              "the untrusted network's refusal: " + d.log())
        check(not d.wait_line(r"irc untrusted: joined", 0.1), "a refused certificate was used")
        u = joined(srv, clients, "ursula")
        u.send(f"PRIVMSG {CHAN} :over TLS")
        end = time.monotonic() + 30
        while not decisions(d, user="ursula"):
            check(time.monotonic() < end, "no decision for a message read over TLS")
            time.sleep(0.05)  # polling the API with a deadline
    finally:
        cleanup(clients, d, srv)


TESTS.append(tls_with_a_checked_certificate)


def actions_go_ahead_of_joins():
    """With a budget of one line every 2 s and five channels to join, a ban in the first
    channel is written before the last JOIN: actions jump the queue."""
    srv = IrcServer("ngircd", "prio").start()
    d = None
    clients = []
    chans = ["#a1", "#a2", "#a3", "#a4", "#a5"]
    try:
        mod = Client(srv.port, "mod")
        clients.append(mod)
        for ch in chans:  # the mod is in every channel first, and sees whiply's JOINs
            mod.join(ch)
        alice = Client(srv.port, "alice")
        clients.append(alice)
        alice.join("#a1")
        d = ts.Daemon("prio-ngircd", extra=f"""platforms:
  irc:
    - name: testnet
      host: 127.0.0.1
      port: {srv.port}
      nick: whiply
      channels: [{", ".join('"%s"' % c for c in chans)}]
      oper: {{name: whiply, password: {OPER_PASS}}}
      flood: {{burst: 1, every: 2s}}
""")
        d.rules = os.path.join(d.dir, "rules.yaml")
        with open(d.rules, "w") as f:
            f.write(RULES)
        d.start()
        mod.wait(r":whiply!\S+ MODE #a1 :?\+o :?whiply", timeout=60)  # op in #a1 (an action)
        m = mod.mark()
        alice.send("PRIVMSG #a1 :badword")
        kick = mod.wait(r":whiply!\S+ KICK #a1 alice", start=m, timeout=60)
        with mod.cond:
            before = mod.lines[:mod.lines.index(kick)]
        joined_before = [c for c in chans if any(re.search(rf":whiply!\S+ JOIN :?{c}$", l) for l in before)]
        check(len(joined_before) < len(chans), "every JOIN went before the ban: " + str(joined_before))
        mod.wait(r":whiply!\S+ JOIN :?#a5$", timeout=60)  # and the joins go on after it
    finally:
        cleanup(clients, d, srv)


TESTS.append(actions_go_ahead_of_joins)


def bad_platform_configs():
    ts.bad_config("irc-no-channels", "platforms:\n  irc:\n    - {name: n, host: h, nick: w}\n",
                  "'platforms.irc[0]' needs 'channels' (at least one)")
    ts.bad_config("irc-bad-chan", "platforms:\n  irc:\n    - name: n\n      host: h\n      nick: w\n"
                  "      channels: [test]\n", ".yaml:6:18: error: 'platforms.irc[0].channels': 'test' "
                  "is not a channel name")
    ts.bad_config("irc-port", "platforms:\n  irc:\n    - {name: n, host: h, nick: w, channels: ['#a'], "
                  "port: 70000}\n", "'platforms.irc[0].port' is 70000; it must be between 1 and 65535")
    ts.bad_config("irc-key", "platforms:\n  irc:\n    - {name: n, host: h, nick: w, channels: ['#a'], "
                  "flood: {burts: 3}}\n", "unknown option 'platforms.irc[0].flood.burts'")
    ts.bad_config("irc-nick", "platforms:\n  irc:\n    - {name: n, host: h, nick: 'a b', channels: ['#a']}\n",
                  "'platforms.irc[0].nick' must be one word")
    ts.bad_config("irc-env", "platforms:\n  irc:\n    - {name: n, host: h, nick: w, channels: ['#a'], "
                  "sasl_user: u, sasl_pass_env: WHIPLY_TEST_UNSET_VAR}\n",
                  "'platforms.irc[0].sasl_pass_env': the environment variable WHIPLY_TEST_UNSET_VAR is not set")
    ts.bad_config("irc-dup", "platforms:\n  irc:\n    - {name: n, host: h, nick: w, channels: ['#a']}\n"
                  "    - {name: N, host: h, nick: w, channels: ['#a']}\n", "the name 'N' is taken by a platforms.irc item")
    ts.bad_config("platform-unknown", "platforms:\n  discord: []\n", "unknown platform 'platforms.discord' (irc, twitch)")


def run_named(fn):
    if ts.ONLY and ts.ONLY not in fn.__name__:
        return
    try:
        fn()
        ts.results["pass"] += 1
        print("PASS serve: " + fn.__name__, flush=True)
    except Exception as e:
        ts.results["fail"] += 1
        print("FAIL serve: %s: %s" % (fn.__name__, str(e)[:3000]), flush=True)


def main():
    try:
        for t in TESTS:
            run_named(t)
    finally:
        pass
    return ts.run_suite([], [("platforms config errors name the key and line", bad_platform_configs)])


if __name__ == "__main__":
    sys.exit(main())
