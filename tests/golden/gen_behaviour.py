#!/usr/bin/env python3
"""Writes the events of the behaviour golden streams (tests/golden/behaviour-*/events.ndjson).

Run once when a scenario changes; the expected decisions are then reviewed by hand and
committed. Deterministic: no randomness, fixed timestamps (unix ms)."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1_790_000_000_000  # 2026-09-21T14:13:20Z


def msg(i, ts, user, text, channel="#main", **extra):
    e = {"id": i, "platform": "twitch", "channel": channel, "user": {"id": user},
         "text": text, "ts": ts}
    for k, v in extra.items():
        if k in ("roles", "created_at", "first_message"):
            e["user"][k] = v
        else:
            e[k] = v
    return e


def write(name, events):
    with open(os.path.join(HERE, "behaviour-" + name, "events.ndjson"), "w") as f:
        for e in events:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")


def flood():
    ev, t = [], T0
    # alice: 12 messages 500 ms apart; the limit is 5 per 10 s (burst 5, one more every 2 s)
    for k in range(12):
        ev.append(msg(f"alice-{k + 1}", t + k * 500, "alice", f"message {k + 1} from alice"))
    # bob chats normally meanwhile: never over
    for k in range(4):
        ev.append(msg(f"bob-{k + 1}", t + k * 3000, "bob", f"bob says hi {k + 1}"))
    # a moderator floods too: exempt
    for k in range(8):
        ev.append(msg(f"mod-{k + 1}", t + 100 + k * 100, "themod", "!rules", roles=["moderator"]))
    # alice comes back after a pause: allowed again; then exactly at the GCRA boundary
    t2 = t + 30_000
    ev.append(msg("alice-back-1", t2, "alice", "sorry about that"))
    for k in range(5):
        ev.append(msg(f"alice-back-{k + 2}", t2 + 1 + k, "alice", f"burst {k}"))
    ev.append(msg("alice-boundary-early", t2 + 1999, "alice", "one ms early"))
    ev.append(msg("alice-boundary-exact", t2 + 2000, "alice", "exactly on time"))
    # a channel flood: 25 users at once -> slow mode once, not again while it is on
    t3 = t + 60_000
    for k in range(25):
        ev.append(msg(f"crowd-{k + 1}", t3 + k * 10, f"viewer{k}", "POGGERS"))
    for k in range(5):
        ev.append(msg(f"crowd-late-{k + 1}", t3 + 1000 + k, f"late{k}", "what happened"))
    ev.sort(key=lambda e: e["ts"])
    write("flood", ev)


def duplicates():
    ev, t = [], T0
    # copy-paste with evasions: spacing, case, punctuation, homoglyphs count as the same
    texts = ["follow my channel pls", "FOLLOW  my channel pls!!!", "f0ll0w my channel pls",
             "fоllоw my сhannel pls"]  # Cyrillic о and с in the last one
    for k, x in enumerate(texts):
        ev.append(msg(f"carol-{k + 1}", t + k * 10_000, "carol", x))
    # the window boundary: 3 copies, the first exactly 60 s before the third: not 3 "within"
    for k, dt in enumerate([0, 30_000, 60_000]):
        ev.append(msg(f"dave-{k + 1}", t + 100_000 + dt, "dave", "is anyone here"))
    # ... and 1 ms inside it
    for k, dt in enumerate([0, 30_000, 59_999]):
        ev.append(msg(f"erin-{k + 1}", t + 100_000 + dt, "erin", "is anyone here"))
    # near-duplicates: the same pitch with a counter
    for k in range(4):
        ev.append(msg(f"frank-{k + 1}", t + 200_000 + k * 5000, "frank",
                      f"buy cheap followers and viewers at bigfollows dot com {k + 1}"))
    # different messages of one user are not duplicates
    for k, x in enumerate(["good game", "what a play", "that was close", "gg everyone"]):
        ev.append(msg(f"gina-{k + 1}", t + 300_000 + k * 2000, "gina", x))
    # the same text from different users is not a duplicate (that is a wave)
    for k in range(4):
        ev.append(msg(f"hype-{k + 1}", t + 400_000 + k * 100, f"fan{k}", "LETS GOOOO"))
    ev.sort(key=lambda e: e["ts"])
    write("duplicates", ev)


def waves():
    ev, t = [], T0
    spam = "Want more viewers? Buy real followers at bigfollows dot com today"
    variants = [spam + " 1", spam.replace("o", "о") + " 22",  # Cyrillic о
                spam.upper() + " xk3", spam + " !!!", "𝐖𝐚𝐧𝐭 more viewers? Buy real followers at bigfollows dot com today",
                spam + " 7", spam + " zz9", spam + " 8"]
    chat = ["hello everyone", "what rank is he", "this song slaps", "gg", "is this live?",
            "first time here", "LUL", "he is cracked at this game", "o7", "nice shot"]
    for k in range(24):
        ev.append(msg(f"chat-{k + 1}", t + k * 1000, f"viewer{k % 12}", chat[k % len(chat)]))
    for k, v in enumerate(variants):
        ev.append(msg(f"spam-{k + 1}", t + 2500 + k * 2000, f"bot{k + 1}", v))
    # the same wave in another channel starts its own count
    for k in range(3):
        ev.append(msg(f"other-{k + 1}", t + 3000 + k * 1000, f"bot{k + 1}", spam + f" {k}",
                      channel="#other"))
    # hype is short text from many users: never a wave (min_length)
    for k in range(12):
        ev.append(msg(f"hype-{k + 1}", t + 40_000 + k * 50, f"fan{k}", "W W W"))
    # the window: 4 similar messages, then the 5th 31 s after the first ones: no wave
    for k in range(4):
        ev.append(msg(f"slow-{k + 1}", t + 100_000 + k * 100, f"slow{k}",
                      "join my discord server for free skins and giveaways now"))
    ev.append(msg("slow-5", t + 131_000, "slow4",
                  "join my discord server for free skins and giveaways now"))
    ev.sort(key=lambda e: e["ts"])
    write("waves", ev)


def raids():
    ev, t = [], T0
    old = "2020-01-01T00:00:00Z"
    fresh = "2026-09-21T10:00:00Z"  # hours before T0
    # normal joins, spread out
    for k in range(5):
        ev.append({"id": f"join-{k + 1}", "type": "join", "platform": "twitch", "channel": "#main",
                   "user": {"id": f"regular{k}", "created_at": old}, "ts": t + k * 5000})
    # a raid: 30 joins in 3 s, every third a fresh account
    t2 = t + 60_000
    for k in range(30):
        ev.append({"id": f"raid-{k + 1}", "type": "join", "platform": "twitch", "channel": "#main",
                   "user": {"id": f"raider{k}", "created_at": fresh if k % 3 == 0 else old},
                   "ts": t2 + k * 100})
    # 11 minutes later another burst: followers-only again
    t3 = t2 + 11 * 60_000
    for k in range(12):
        ev.append({"id": f"raid2-{k + 1}", "type": "join", "platform": "twitch", "channel": "#main",
                   "user": {"id": f"second{k}", "created_at": old}, "ts": t3 + k * 10})
    # links: fresh account, first message (event flag and whiply's own memory), old account
    t4 = t + 30_000
    ev.append(msg("link-fresh", t4, "newbie", "free stuff at https://example.com",
                  created_at=fresh))
    ev.append(msg("link-first-flag", t4 + 1, "flagged", "see https://example.org",
                  created_at=old, first_message=True))
    ev.append(msg("chat-old", t4 + 2, "veteran", "hi all", created_at=old))
    ev.append(msg("link-old", t4 + 3, "veteran", "clip: https://clips.twitch.tv/abc",
                  created_at=old))
    ev.append(msg("link-unseen", t4 + 4, "lurker", "https://example.net", created_at=old))
    ev.sort(key=lambda e: e["ts"])
    write("raids", ev)


def escalation():
    ev, t = [], T0
    # mallory insults five times, a minute apart: warn, 60s, 10m, 1d, ban
    for k in range(5):
        ev.append(msg(f"mallory-{k + 1}", t + k * 60_000, "mallory", "you are an idiot"))
    # oscar offends twice, behaves for 3 hours (strikes halve every hour), offends again: warn
    ev.append(msg("oscar-1", t, "oscar", "what a moron"))
    ev.append(msg("oscar-2", t + 60_000, "oscar", "moron"))
    for k in range(3):
        ev.append(msg(f"oscar-nice-{k + 1}", t + (k + 1) * 3_600_000, "oscar", "good stream today"))
    ev.append(msg("oscar-3", t + 3 * 3_600_000 + 60_000, "oscar", "idiot"))
    # peggy earns reputation with ordinary messages (1 a minute at most), then may post links
    # (two messages 30 s apart earn one point)
    for k in range(6):
        ev.append(msg(f"peggy-{k + 1}", t + k * 30_000, "peggy", f"chatting {k + 1}"))
    for k in range(2):
        ev.append(msg(f"peggy-more-{k + 1}", t + 180_000 + k * 60_000, "peggy", "still here"))
    ev.append(msg("peggy-link", t + 300_000, "peggy", "the patch notes: https://example.com/notes"))
    ev.append(msg("quinn-link", t + 300_001, "quinn", "https://example.com/notes"))
    # moderators: a timeout counts as a strike, approve takes one back, unban clears them
    t5 = t + 400_000
    ev.append(msg("rob-1", t5, "rob", "hello"))
    for k, a in enumerate(["timeout", "timeout"]):
        ev.append({"id": f"mod-{k + 1}", "type": "mod_action", "platform": "twitch",
                   "channel": "#main", "moderator": "themod", "target": "rob", "action": a,
                   "duration_s": 600, "ts": t5 + 1000 + k})
    ev.append(msg("rob-link", t5 + 2000, "rob", "https://example.com"))
    ev.append({"id": "mod-approve", "type": "mod_action", "platform": "twitch", "channel": "#main",
               "moderator": "themod", "target": "rob", "action": "approve",
               "ref_event": "rob-link", "ts": t5 + 3000})
    ev.append({"id": "mod-ban", "type": "mod_action", "platform": "twitch", "channel": "#main",
               "moderator": "themod", "target": "rob", "action": "ban", "ts": t5 + 4000})
    ev.append({"id": "mod-unban", "type": "mod_action", "platform": "twitch", "channel": "#main",
               "moderator": "themod", "target": "rob", "action": "unban", "ts": t5 + 5000})
    ev.append(msg("rob-2", t5 + 6000, "rob", "thanks, sorry"))
    ev.sort(key=lambda e: e["ts"])
    write("escalation", ev)


flood()
duplicates()
waves()
raids()
escalation()
