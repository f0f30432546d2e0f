#!/usr/bin/env python3
"""tests/serve/test_twitch.py WHIPLY [NAME] - whiply on Twitch, against a CONTRACT DOUBLE.

Twitch cannot run here. tests/serve/twitch_double.py is a loopback server that implements the
request and response shapes Twitch documents for its chat (IRC with twitch.tv tags) and its
Helix API, with their errors (401 with a token refresh, 429 with Ratelimit-Reset, 5xx): a
contract double, not Twitch. The chat lines the double sends are Twitch's documented
examples. The real `whiply serve` (harness of test_serve.py) connects to it with a
platforms.twitch channel. Prints PASS/FAIL lines and "serve: N passed, N failed".
"""
import contextlib
import datetime
import hashlib
import hmac
import http.client
import json
import os
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import test_serve as ts  # noqa: E402
from test_serve import check, eq  # noqa: E402
from twitch_double import TwitchDouble  # noqa: E402
import test_irc  # noqa: E402  (its actions helpers)

CHAN = "#pixelqueen"
RULES = """version: 1
rules:
  - id: listed-word
    when: {words: [badword]}
    action: ban
    reason: "listed word"
  - id: spoiler
    when: {words: [spoiler]}
    action: {timeout: 10m}
    reason: "no spoilers"
  - id: polite
    when: {words: [heck]}
    action: {warn: "Please keep it friendly"}
  - id: borderline
    when: {words: [borderline]}
    action: hold
  - id: join-burst
    when: {joins: {count: 3, per: 10s}}
    channel_action: {mode: followers_only, for: 2s}
"""

# Twitch's documented PRIVMSG (dev.twitch.tv/docs/irc/tags), in our channel
DOC_PRIVMSG = ("@badge-info=;badges=broadcaster/1;client-nonce=997dcf443c31e258c1d32a8da47b6936;"
               "color=#0000FF;display-name=abc;emotes=;first-msg=0;flags=0-6:S.7;"
               "id=eb24e920-8065-492a-8aea-266a00fc5126;mod=0;room-id=713936733;subscriber=0;"
               "tmi-sent-ts=1642786203573;turbo=0;user-id=713936733;user-type= "
               ":abc!abc@abc.tmi.twitch.tv PRIVMSG " + CHAN + " :HeyGuys")


def privmsg(uid, login, text, msg_id, badges="", extra=""):
    return (f"@badge-info=;badges={badges};color=;display-name={login};emotes=;first-msg=0;"
            f"id={msg_id};mod=0;room-id=713936733;subscriber=0;tmi-sent-ts={int(time.time() * 1000)};"
            f"turbo=0;user-id={uid};user-type={extra} :{login}!{login}@{login}.tmi.twitch.tv "
            f"PRIVMSG {CHAN} :{text}")


SECRET = "eventsub-secret-for-tests"


def start(name):
    tw = TwitchDouble(CHAN[1:])
    d = ts.Daemon(name, extra=f"""outbox: {{backoff: 100ms, backoff_cap: 500ms}}
platforms:
  twitch:
    - name: twitch
      channel: {CHAN[1:]}
      bot_login: whiplybot
      broadcaster_id: "{tw.broadcaster_id}"
      moderator_id: "{tw.moderator_id}"
      client_id: {tw.client_id}
      client_secret: {tw.client_secret}
      access_token: {tw.token}
      refresh_token: {tw.refresh}
      helix_url: http://127.0.0.1:{tw.http_port}/helix
      token_url: http://127.0.0.1:{tw.http_port}/oauth2/token
      irc: {{host: 127.0.0.1, port: {tw.irc_port}, tls: false}}
      reconnect: {{min: 100ms, max: 1s}}
      eventsub_secret: {SECRET}
""")
    d.rules = os.path.join(d.dir, "rules.yaml")
    with open(d.rules, "w") as f:
        f.write(RULES)
    d.start()
    tw.wait_irc(lambda t: any(l == "JOIN " + CHAN for l in t.irc_in))
    return tw, d


@contextlib.contextmanager
def running(name):
    """The double and whiply on it, both stopped at the end."""
    tw, d = start(name)
    try:
        yield tw, d
    finally:
        d.stop(signal.SIGKILL, 10)
        tw.close()


def decision(d, event_id, timeout=30):
    end = time.monotonic() + timeout
    while True:
        st, body, _ = d.json("GET", "/v1/decisions/" + urllib.parse.quote(event_id, safe=""))
        if st == 200:
            return body
        check(time.monotonic() < end, f"no decision for {event_id}")
        time.sleep(0.05)  # polling the API with a deadline


def wait_action(d, pred, status, timeout=30):
    return test_irc.wait_action(d, pred, status, timeout, platform="twitch")


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def the_documented_privmsg_becomes_an_event():
    with running("tw-doc") as (tw, d):
        eq(tw.irc_in[:3], ["CAP REQ :twitch.tv/tags twitch.tv/commands twitch.tv/membership",
                           "PASS oauth:tok-1", "NICK whiplybot"], "the login")
        tw.push(DOC_PRIVMSG)
        x = decision(d, "eb24e920-8065-492a-8aea-266a00fc5126")
        eq(x["action"], "allow", "HeyGuys")
        eq(x["meta"]["msg_id"], "eb24e920-8065-492a-8aea-266a00fc5126", "meta.msg_id from id")
        eq(x["meta"]["room_id"], "713936733", "meta.room_id")
        eq(x["meta"]["login"], "abc", "meta.login")
        # the user is keyed by user-id: the decisions query by user finds it
        st, body, _ = d.json("GET", "/v1/decisions?user=713936733")
        eq([y["id"] for y in body["decisions"]], ["eb24e920-8065-492a-8aea-266a00fc5126"], "by user-id")
        # a raid (USERNOTICE msg-id=raid, Twitch's documented tags) is a join of the raider
        tw.push("@badge-info=;badges=turbo/1;color=#9ACD32;display-name=TestChannel;emotes=;flags=;"
                "id=3d830f12-795c-447d-af3c-ea05e40fbddb;login=testchannel;mod=0;msg-id=raid;"
                "msg-param-displayName=TestChannel;msg-param-login=testchannel;"
                "msg-param-viewerCount=15;room-id=713936733;subscriber=0;"
                "system-msg=15\\sraiders\\sfrom\\sTestChannel\\shave\\sjoined\\n!;"
                "tmi-sent-ts=1507246572675;turbo=1;user-id=123456;user-type= "
                ":tmi.twitch.tv USERNOTICE " + CHAN)
        x = decision(d, "3d830f12-795c-447d-af3c-ea05e40fbddb")
        eq(x["meta"]["raid"], {"from": "testchannel", "viewers": 15}, "the raid's meta")


@test
def a_listed_word_is_banned_through_helix():
    with running("tw-ban") as (tw, d):
        tw.push(privmsg("999001", "spammer", "buy badword now", "m-ban-1"))
        bans = tw.wait_request(lambda r: r[0] == "POST" and r[1] == "/helix/moderation/bans")
        m, path, q, body, hd = bans[0]
        eq(q, {"broadcaster_id": "713936733", "moderator_id": "12826"}, "query")
        eq(body, {"data": {"user_id": "999001", "reason": "listed word"}}, "Ban User body")
        eq(hd.get("Authorization"), "Bearer tok-1", "the token")
        eq(hd.get("Client-Id"), "cid-test", "Client-Id")
        dels = tw.wait_request(lambda r: r[0] == "DELETE" and r[1] == "/helix/moderation/chat")
        eq(dels[0][2].get("message_id"), "m-ban-1", "Delete Chat Messages' message_id")
        wait_action(d, lambda a: a["kind"] == "ban", "done")
        # Twitch echoes the ban as CLEARCHAT: whiply's own, not a moderator's mod_action
        tw.push(f"@room-id=713936733;target-user-id=999001;tmi-sent-ts={int(time.time() * 1000)} "
                f":tmi.twitch.tv CLEARCHAT {CHAN} :spammer")
        # a moderator's timeout of someone else (CLEARCHAT with ban-duration) is one
        tw.push(f"@ban-duration=600;room-id=713936733;target-user-id=555;tmi-sent-ts={int(time.time() * 1000)} "
                f":tmi.twitch.tv CLEARCHAT {CHAN} :someone")
        end = time.monotonic() + 30
        while True:
            st, body, _ = d.json("GET", "/v1/decisions?user=555")
            if body["decisions"]:
                break
            check(time.monotonic() < end, "no mod_action for the moderator's timeout")
            time.sleep(0.05)  # polling the API with a deadline
        st, body, _ = d.json("GET", "/v1/decisions?user=999001")
        eq([x for x in body["decisions"] if "target" in x], [], "whiply's own ban came back")
        # a timeout: Ban User with a duration
        tw.push(privmsg("999002", "leaker", "huge spoiler ahead", "m-to-1"))
        to = tw.wait_request(lambda r: r[1] == "/helix/moderation/bans" and r[3] and
                             r[3]["data"].get("user_id") == "999002")
        eq(to[0][3]["data"].get("duration"), 600, "the timeout's duration")
        # a warn: Warn Chat User with the rule's text
        tw.push(privmsg("999003", "grumpy", "what the heck", "m-w-1"))
        w = tw.wait_request(lambda r: r[1] == "/helix/moderation/warnings")
        eq(w[0][3], {"data": {"user_id": "999003", "reason": "Please keep it friendly"}}, "warn body")


@test
def a_refused_token_is_refreshed_and_the_call_made_again():
    with running("tw-401") as (tw, d):
        tw.expire_token()  # tok-1 is no longer valid: Helix answers 401
        tw.push(privmsg("999010", "spammer", "badword", "m-401"))
        tw.wait_request(lambda r: r[1] == "/oauth2/token")
        ok = tw.wait_request(lambda r: r[1] == "/helix/moderation/bans" and
                             r[4].get("Authorization") == "Bearer tok-3")
        check(ok, "the ban with the refreshed token")
        a = wait_action(d, lambda a: a["kind"] == "ban", "done")
        eq(a["attempts"], 1, "one attempt: the refresh is inside it")
        check(d.wait_line(r"twitch twitch: the access token was refreshed", 5), d.log())


@test
def rate_limits_and_server_errors_are_retried():
    with running("tw-429") as (tw, d):
        tw.fail_next(429)  # the bucket is empty; it refills at Ratelimit-Reset (2 s ahead)
        t0 = time.monotonic()
        tw.push(privmsg("999020", "spammer", "badword", "m-429"))
        a = wait_action(d, lambda a: a["user_id"] == "999020" and "429" in a["detail"], "retry")
        wait_action(d, lambda x: x["id"] == a["id"], "done")
        check(len([r for r in tw.requests if r[1].startswith("/helix/")]) >= 3, "retried after the 429")
        check(time.monotonic() - t0 >= 1.0, "the retry waited for the reset")
        tw.fail_next(503, 2)
        tw.push(privmsg("999021", "spammer2", "badword", "m-503"))
        got = [wait_action(d, lambda a: a["user_id"] == "999021" and a["kind"] == k, "done", timeout=60)
               for k in ("delete", "ban")]
        check(sum(a["attempts"] for a in got) >= 4, "two 5xx answers retried: " + json.dumps(got))


@test
def a_join_burst_switches_followers_only_on_and_off():
    with running("tw-mode") as (tw, d):
        for i in range(5):
            tw.push(f":viewer{i}!viewer{i}@viewer{i}.tmi.twitch.tv JOIN {CHAN}")
        on = tw.wait_request(lambda r: r[1] == "/helix/chat/settings" and r[3].get("follower_mode") is True)
        eq(on[0][3], {"follower_mode": True, "follower_mode_duration": 0}, "followers-only on")
        off = tw.wait_request(lambda r: r[1] == "/helix/chat/settings" and r[3].get("follower_mode") is False)
        eq(off[0][0], "PATCH", "followers-only off after 2 s")


def eventsub(d, mtype, body, msg_id, ts=None, secret=SECRET, sig=None):
    """POSTs body to /v1/eventsub/twitch as Twitch does, signed: HMAC-SHA256 over message id,
    timestamp and body (dev.twitch.tv/docs/eventsub/handling-webhook-events)."""
    raw = json.dumps(body).encode()
    ts = ts or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f123Z")
    mac = hmac.new(secret.encode(), msg_id.encode() + ts.encode() + raw, hashlib.sha256).hexdigest()
    c = http.client.HTTPConnection(d.host, d.port, timeout=30)
    c.request("POST", "/v1/eventsub/twitch", body=raw, headers={
        "Content-Type": "application/json", "Twitch-Eventsub-Message-Id": msg_id,
        "Twitch-Eventsub-Message-Timestamp": ts, "Twitch-Eventsub-Message-Type": mtype,
        "Twitch-Eventsub-Message-Signature": sig or "sha256=" + mac,
        "Twitch-Eventsub-Subscription-Type": body.get("subscription", {}).get("type", "")})
    r = c.getresponse()
    data = r.read().decode()
    c.close()
    return r.status, data, r.getheader("Content-Type")


def sub(stype):
    return {"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "status": "enabled", "type": stype,
            "version": "1", "condition": {"broadcaster_user_id": "713936733"},
            "transport": {"method": "webhook", "callback": "https://example.com/v1/eventsub/twitch"},
            "created_at": "2019-11-16T10:11:12.634234626Z", "cost": 0}


# Twitch's documented channel.chat.message event (eventsub-subscription-types), in our channel
def chat_event(text, message_id, chatter="4145994"):
    return {"subscription": sub("channel.chat.message"), "event": {
        "broadcaster_user_id": "713936733", "broadcaster_user_login": "pixelqueen",
        "broadcaster_user_name": "PixelQueen", "chatter_user_id": chatter,
        "chatter_user_login": "viewer32", "chatter_user_name": "viewer32", "message_id": message_id,
        "message": {"text": text, "fragments": [{"type": "text", "text": text, "cheermote": None,
                                                  "emote": None, "mention": None}]},
        "color": "#00FF7F", "badges": [{"set_id": "subscriber", "id": "12", "info": "16"},
                                       {"set_id": "sub-gifter", "id": "1", "info": ""}],
        "message_type": "text", "cheer": None, "reply": None,
        "channel_points_custom_reward_id": None}}


@test
def eventsub_webhooks_are_verified_and_decided():
    with running("tw-eventsub") as (tw, d):
        # the challenge: answered with the raw challenge, as text
        st, body, ctype = eventsub(d, "webhook_callback_verification",
                                   {"challenge": "pogchamp-kappa-360noscope-vohiyo",
                                    "subscription": sub("channel.chat.message")}, "v-1")
        eq((st, body), (200, "pogchamp-kappa-360noscope-vohiyo"), "the challenge")
        check(ctype.startswith("text/plain"), "the challenge's type: " + ctype)
        # a wrong signature, and a message older than 10 minutes, are refused
        st, body, _ = eventsub(d, "notification", chat_event("hi", "m-x"), "n-bad", sig="sha256=00")
        eq(st, 403, "a bad signature: " + body)
        old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=11)
               ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        st, body, _ = eventsub(d, "notification", chat_event("hi", "m-y"), "n-old", ts=old)
        eq(st, 403, "a stale timestamp: " + body)
        # a chat message with a listed word: decided, and banned through Helix
        st, body, _ = eventsub(d, "notification", chat_event("buy badword", "cc106a89-1814-919d"), "n-1")
        eq(st, 200, "a notification: " + body)
        eq(json.loads(body.splitlines()[0])["action"], "ban", "its decision")
        tw.wait_request(lambda r: r[1] == "/helix/moderation/bans" and r[3]["data"]["user_id"] == "4145994")
        # Twitch sends a message again when it thinks it was lost: taken once
        st, body, _ = eventsub(d, "notification", chat_event("buy badword", "cc106a89-1814-919d"), "n-1")
        eq((st, json.loads(body)), (200, {"duplicate": True}), "a resend")
        st, x, _ = d.json("GET", "/v1/decisions?user=4145994")
        eq(len(x["decisions"]), 1, "one decision for the resent message")
        # channel.moderate: a moderator's timeout is a mod_action (1 strike)
        mod = {"subscription": sub("channel.moderate"), "event": {
            "broadcaster_user_id": "713936733", "broadcaster_user_login": "pixelqueen",
            "broadcaster_user_name": "PixelQueen", "moderator_user_id": "12826",
            "moderator_user_login": "mod_kay", "moderator_user_name": "Mod_Kay", "action": "timeout",
            "timeout": {"user_id": "777", "user_login": "loud", "user_name": "Loud", "reason": "caps",
                        "expires_at": (datetime.datetime.now(datetime.timezone.utc) +
                                       datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")}}}
        st, body, _ = eventsub(d, "notification", mod, "n-2")
        eq(st, 200, "channel.moderate: " + body)
        x = json.loads(body.splitlines()[0])
        eq((x["target"], x["strikes"]), ("777", 1), "the moderator's timeout")
        # automod.message.hold: decided as a message; held here, approved by a moderator ->
        # Manage Held AutoMod Messages ALLOW
        held = {"subscription": sub("automod.message.hold"), "event": {
            "broadcaster_user_id": "713936733", "broadcaster_user_login": "pixelqueen",
            "broadcaster_user_name": "PixelQueen", "user_id": "888", "user_login": "edgy",
            "user_name": "Edgy", "message_id": "held-msg-1",
            "message": {"text": "a borderline joke", "fragments": [{"type": "text", "text": "a borderline joke"}]},
            "category": "aggressive", "level": 1, "held_at": "2026-12-07T23:00:00.00Z"}}
        st, body, _ = eventsub(d, "notification", held, "n-3")
        x = json.loads(body.splitlines()[0])
        eq((x["id"], x["action"], x["meta"]["automod"]), ("held-msg-1", "hold", True), "the held message")
        st, body, _ = d.json("POST", "/v1/review/held-msg-1/approve", '{"moderator":"mod_kay"}')
        eq(st, 200, "approve: " + json.dumps(body))
        r = tw.wait_request(lambda r: r[1] == "/helix/moderation/automod/message")
        eq(r[0][3], {"user_id": "12826", "msg_id": "held-msg-1", "action": "ALLOW"}, "the release")
        st, body, _ = eventsub(d, "notification", chat_event("x", "m-z"), "n-9", secret="wrong")
        eq(st, 403, "another secret")
        c = http.client.HTTPConnection(d.host, d.port, timeout=30)
        c.request("POST", "/v1/eventsub/nosuch", body=b"{}")
        eq(c.getresponse().status, 404, "no such receiver")


def bad_twitch_configs():
    ts.bad_config("tw-missing", "platforms:\n  twitch:\n    - {channel: pq}\n",
                  "'platforms.twitch[0]' needs 'bot_login'")
    ts.bad_config("tw-login", "platforms:\n  twitch:\n    - {channel: '#PQ', bot_login: b, broadcaster_id: '1', "
                  "moderator_id: '2', client_id: c, access_token: t}\n",
                  "'platforms.twitch[0].channel' is the channel's login")
    ts.bad_config("tw-refresh", "platforms:\n  twitch:\n    - {channel: pq, bot_login: b, broadcaster_id: '1', "
                  "moderator_id: '2', client_id: c, access_token: t, refresh_token: r}\n",
                  "a refresh_token needs 'client_secret'")


def main():
    for fn in TESTS:
        if ts.ONLY and ts.ONLY not in fn.__name__:
            continue
        ts.run_plain(fn.__name__.replace("_", " ") + " (Twitch contract double)", fn)
    return ts.run_suite([], [("platforms.twitch config errors", bad_twitch_configs)])


if __name__ == "__main__":
    sys.exit(main())
