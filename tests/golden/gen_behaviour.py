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
    # alice: 12 messages 500 ms apart; the limit is at most 5 in any 10 s (a sliding window):
    # the 6th and every one after it are over (every message counts, flagged or not)
    for k in range(12):
        ev.append(msg(f"alice-{k + 1}", t + k * 500, "alice", f"message {k + 1} from alice"))
    # bob chats normally meanwhile: never over
    for k in range(4):
        ev.append(msg(f"bob-{k + 1}", t + k * 3000, "bob", f"bob says hi {k + 1}"))
    # a moderator floods too: exempt
    for k in range(8):
        ev.append(msg(f"mod-{k + 1}", t + 100 + k * 100, "themod", "!rules", roles=["moderator"]))
    # alice comes back after a pause: 5 messages in 4 ms are allowed; a 6th exactly 10 s after
    # the first of them is allowed (the first has left the window: 5 in it, this one included)
    t2 = t + 30_000
    ev.append(msg("alice-back-1", t2, "alice", "sorry about that"))
    for k in range(4):
        ev.append(msg(f"alice-back-{k + 2}", t2 + 1 + k, "alice", f"burst {k}"))
    ev.append(msg("alice-boundary-exact", t2 + 10_000, "alice", "exactly on time"))
    # ... and bea's 6th, 1 ms earlier, is over (6 in one window)
    ev.append(msg("bea-1", t2, "bea", "hello"))
    for k in range(4):
        ev.append(msg(f"bea-{k + 2}", t2 + 1 + k, "bea", f"burst {k}"))
    ev.append(msg("bea-boundary-early", t2 + 9_999, "bea", "one ms early"))
    # the case: one message a second; the 6th is over, not the 10th (GCRA's reading)
    t5 = t + 200_000
    for k in range(10):
        ev.append(msg(f"ivan-{k + 1}", t5 + k * 1000, "ivan", f"line {k + 1}"))
    # the same in #bursty, where the limit is `mode: gcra` (a bucket of 5 refilled one per 2 s):
    # the 9 first pass, as GCRA intends
    for k in range(10):
        ev.append(msg(f"gcra-{k + 1}", t5 + k * 1000, "ivan", f"line {k + 1}", channel="#bursty"))
    # a channel flood: 25 users at once -> slow mode once, not again while it is on; the late
    # messages are still over (25 in the last 10 s) without a second channel action
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
    # two copies, nine other lines, the third copy: still the third within the minute
    lines = ["anyone seen the new patch", "the boss fight was wild", "my cat just walked by",
             "is the stream lagging", "what keyboard is that", "that combo was clean",
             "brb getting water", "ok back now", "who won the last match"]
    t6 = t + 500_000
    ev.append(msg("henry-copy-1", t6, "henry", "check out my speedrun vod"))
    ev.append(msg("henry-copy-2", t6 + 2000, "henry", "check out my speedrun vod"))
    for k, x in enumerate(lines):
        ev.append(msg(f"henry-line-{k + 1}", t6 + 4000 + k * 2000, "henry", x))
    ev.append(msg("henry-copy-3", t6 + 30_000, "henry", "Check out my speedrun VOD!"))
    # in #slow the window is 10 minutes: the third copy 9 minutes after the first, with 40
    # other lines between, is caught; a fourth 1 ms less than 10 minutes after the second is
    # the third again (the first has left the window), and one after 10 minutes of silence is
    # allowed
    t7 = t + 1_000_000
    ev.append(msg("ida-copy-1", t7, "ida", "vote for my clip in the contest", channel="#slow"))
    words = ["pizza", "rocket", "guitar", "winter", "tunnel", "marble", "violet", "copper",
             "saddle", "lantern", "harbor", "pepper", "meadow", "falcon", "walnut", "canyon",
             "button", "velvet", "orchid", "glacier", "anchor", "biscuit", "cobalt", "dragon",
             "ember", "fossil", "garnet", "hazel", "igloo", "jigsaw", "kettle", "lemon",
             "magnet", "nectar", "oyster", "puzzle", "quartz", "raven", "sprout", "tundra"]
    other = [f"{words[k]} {words[(k * 7 + 3) % 40]} {words[(k * 13 + 11) % 40]}" for k in range(40)]
    for k in range(20):
        ev.append(msg(f"ida-line-{k + 1}", t7 + 10_000 + k * 12_000, "ida", other[k],
                      channel="#slow"))
    ev.append(msg("ida-copy-2", t7 + 250_000, "ida", "vote for my clip in the contest", channel="#slow"))
    for k in range(20):
        ev.append(msg(f"ida-more-{k + 1}", t7 + 260_000 + k * 12_000, "ida", other[20 + k],
                      channel="#slow"))
    ev.append(msg("ida-copy-3", t7 + 540_000, "ida", "vote for my clip in the contest", channel="#slow"))
    ev.append(msg("ida-copy-4", t7 + 849_999, "ida", "vote for my clip in the contest", channel="#slow"))
    ev.append(msg("ida-copy-5", t7 + 1_600_000, "ida", "vote for my clip in the contest", channel="#slow"))
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
    # 11 minutes later another burst: followers-only again (the first raid ended: it names
    # its joiners afresh)
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


def raid80():
    """The issue's raid: `joins: {count: 40, per: 10s}` with `account_age: "< 1d"` and ban;
    80 joins 25 ms apart (two in three fresh accounts), then a trickle of 20 more, one every
    400 ms, then a straggler after the window has emptied. The same joins in #gcra meet the
    limit in `mode: gcra` (a bucket of 40 refilled at 4 a second), for comparison."""
    ev, t = [], T0
    old = "2020-01-01T00:00:00Z"
    fresh = "2026-09-21T10:00:00Z"
    for ch, tag in (("#main", "raid"), ("#gcra", "gcra")):
        def join(i, ts, k):
            return {"id": f"{tag}-{i}", "type": "join", "platform": "twitch", "channel": ch,
                    "user": {"id": f"{tag}er{k}", "created_at": fresh if k % 3 else old},
                    "ts": ts}
        for k in range(80):
            ev.append(join(k + 1, t + k * 25, k))
        for k in range(20):
            ev.append(join(81 + k, t + 2000 + (k + 1) * 400, 80 + k))
        ev.append(join(101, t + 30_000, 100))
    ev.sort(key=lambda e: e["ts"])
    write("raid80", ev)


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


def docs_example():
    """The 91-event stream of docs/rules.md's complete behaviour example (#pixelqueen):
    chat, a raid of 60 joins 50 ms apart (every third account made that morning), one user
    posting 12 messages in 2.2 s, one pasting the same line three times, nine accounts
    posting variants of an ad 2 s apart, links, and two moderator actions."""
    def iso(h, m, s_ms):
        return f"2026-11-24T{h:02d}:{m:02d}:{s_ms // 1000:02d}.{s_ms % 1000:03d}Z"

    def user(uid, name, created, roles=None):
        u = {"id": uid, "name": name}
        if roles:
            u["roles"] = roles
        u["created_at"] = created
        return u

    def m(i, u, text, ts):
        return {"id": i, "type": "message", "platform": "twitch", "channel": "#pixelqueen",
                "user": u, "text": text, "ts": ts}

    ev = []
    gus = user("u-1044", "grumpy_gus", "2022-06-01T10:00:00Z")
    ev.append(m("c-1", user("u-1010", "cozy_kat", "2021-03-03T03:00:00Z"), "hi chat, hi pixel", iso(20, 0, 0)))
    ev.append(m("c-2", gus, "this map again?", iso(20, 0, 30_000)))
    for k in range(60):
        created = "2026-11-24T08:00:00Z" if k % 3 == 2 else "2024-05-01T12:00:00Z"
        ev.append({"id": f"j-{k + 1}", "type": "join", "platform": "twitch", "channel": "#pixelqueen",
                   "user": {"id": f"u-{7000 + k}", "name": f"raider_{k}", "created_at": created},
                   "ts": iso(20, 1, k * 50)})
    sam = user("u-1077", "spammy_sam", "2023-01-01T00:00:00Z")
    for k in range(12):
        ev.append(m(f"f-{k + 1}", sam, f"POG {k}", iso(20, 2, k * 200)))
    cat = user("u-1088", "copycat", "2020-01-01T00:00:00Z")
    for k, x in enumerate(["Follow my channel for daily speedruns!",
                           "follow my channel   for daily SPEEDRUNS", "Follow my channel for daily speedruns!"]):
        ev.append(m(f"d-{k + 1}", cat, x, iso(20, 3, k * 10_000)))
    ad = "get BEST viewers and followers cheap at bigfollows dot shop"
    tails = [" now", " 24/7", " !!", " today", " ok", " 100%", " pls", " :)", " <3"]
    for k in range(9):
        ev.append(m(f"w-{k + 1}", user(f"u-{9000 + k}", f"promo_{k}", "2025-01-01T00:00:00Z"),
                    ad + tails[k], iso(20, 4, k * 2000)))
    ev.append(m("l-1", user("u-1099", "freshie", "2026-11-22T15:00:00Z"),
                "my clip of that fail: clips.twitch.tv/AbcDef", iso(20, 5, 0)))
    ev.append(m("l-2", user("u-1100", "nightowl_88", "2019-01-01T00:00:00Z", ["subscriber"]),
                "the vod: youtube.com/watch?v=dQw4w9WgXcQ", iso(20, 5, 5000)))
    ev.append({"id": "m-1", "type": "mod_action", "platform": "twitch", "channel": "#pixelqueen",
               "moderator": "mod_kay", "target": "u-1099", "action": "approve",
               "ts": iso(20, 5, 20_000), "ref_event": "l-1"})
    ev.append({"id": "m-2", "type": "mod_action", "platform": "twitch", "channel": "#pixelqueen",
               "moderator": "mod_kay", "target": "u-1044", "action": "timeout",
               "ts": iso(20, 6, 0), "duration_s": 600})
    ev.append(m("l-3", gus, "whatever, look: youtube.com/watch?v=x", iso(20, 7, 0)))
    assert len(ev) == 91
    with open(os.path.join(HERE, "docs-behaviour", "events.ndjson"), "w") as f:
        for e in ev:
            f.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")


def hype():
    """Issue 15, item 3: a chorus of established chatters is not a spam wave; a burst of fresh
    or unknown accounts with one text, or one text with links or mentions, is. The rule is
    the one docs/rules.md suggests (users: 8, within: 30s, min_length: 20), counting only
    suspects by default; #everyone opts out with `from: everyone`."""
    ev, t = [], T0
    old = "2024-03-01T00:00:00Z"  # two and a half years before T0
    fresh = "2026-09-21T13:00:00Z"  # an hour before T0
    chat = ["hi chat", "good morning", "this run is clean", "what a play", "gg"]
    # #hype: 200 regulars, known to whiply (3 messages each over the 20 minutes before)
    for k in range(200):
        for j in range(3):
            ev.append(msg(f"hist-{k + 1}-{j + 1}", t + j * 400_000 + k * 1_000, f"reg{k}",
                          chat[(k + j) % len(chat)], channel="#hype"))
    t1 = t + 1_300_000
    # ... all type the hype line in 20 s: stretched letters do not count toward min_length
    for k in range(200):
        ev.append(msg(f"gooo-{k + 1}", t1 + k * 100, f"reg{k}", "LETS GOOOOOOOOOOOOOO",
                      channel="#hype"))
    # ... and then wish the streamer a happy birthday (25 letters: long enough), with 6 fresh
    # accounts among them: 6 suspects, fewer than 8, so no wave
    t2 = t1 + 60_000
    for k in range(200):
        ev.append(msg(f"bday-{k + 1}", t2 + k * 100, f"reg{k}", "Happy birthday pixelqueen",
                      channel="#hype"))
    for k in range(6):
        ev.append(msg(f"bday-fresh-{k + 1}", t2 + 50 + k * 3000, f"newfan{k}",
                      "Happy birthday pixelqueen", channel="#hype", created_at=fresh))
    # #platform: regulars the platform vouches for (not their first message, old accounts),
    # whiply never saw them before: not counted
    for k in range(30):
        ev.append(msg(f"plat-{k + 1}", t + k * 200, f"vet{k}", "Happy birthday pixelqueen",
                      channel="#platform", created_at=old, first_message=False))
    # #fresh: ten accounts created an hour ago, the same text: a wave at the 8th, which names
    # the 8; the 9th and 10th are caught one by one
    for k in range(10):
        ev.append(msg(f"fresh-{k + 1}", t + k * 700, f"promo{k}", "Happy birthday pixelqueen",
                      channel="#fresh", created_at=fresh, first_message=True))
    # #links: regulars the platform vouches for, but the text carries a link: counted
    for k in range(10):
        ev.append(msg(f"link-{k + 1}", t + k * 700, f"old{k}",
                      "go follow my friend at twitch.tv/pixelfriend", channel="#links",
                      created_at=old, first_message=False))
    # #everyone: the same chorus under `from: everyone`: every message counts (the 8th and on)
    for k in range(10):
        for j in range(3):
            ev.append(msg(f"ev-hist-{k + 1}-{j + 1}", t + j * 400_000 + k * 1_000, f"fan{k}",
                          chat[(k + j) % len(chat)], channel="#everyone"))
        ev.append(msg(f"ev-bday-{k + 1}", t2 + k * 100, f"fan{k}", "Happy birthday pixelqueen",
                      channel="#everyone"))
    ev.sort(key=lambda e: (e["ts"], e["id"]))
    write("hype", ev)


def _mix(x):
    """A fixed integer mix (splitmix64's finaliser): deterministic variety, no randomness."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


CHAT_WORDS = ("speedrun boss fight clutch timing checkpoint inventory strategy tutorial "
              "graphics soundtrack controller keyboard streamer moderator emote subscriber "
              "tournament ranked casual sandbox dungeon platform puzzle racing shooter "
              "strategy stealth survival crafting building farming fishing mining trading "
              "backseat lagging buffering highlight replay comeback throwing grinding "
              "farming looting healing tanking sniping camping rushing flanking baiting "
              "yesterday tomorrow tonight weekend morning evening honestly actually literally "
              "probably definitely maybe").split()


def chat_line(k):
    """A line of ordinary chat, different enough from every other to start a group of its
    own (five words of a fixed vocabulary, picked by k)."""
    if k == 20:  # anchors "zorika" and "mimifi": the buckets of "followers" and "today"
        return "zorika and mimifi so good lol"
    return " ".join(CHAT_WORDS[_mix(k * 8 + j) % len(CHAT_WORDS)] for j in range(5))


def wave_split():
    """Issue 15, item 2: a spam wave must not split. 50 accounts post the same ad, each with a
    few Cyrillic look-alike letters and a number, 0.7 s apart, with chat between. Built from
    how groups are found: a message looks its group up under its two anchor words
    (state/sketch.h). chat-21 is a line whose anchors fall in the index buckets of the ad's
    anchors ("followers", "today"); the 33rd group of the channel (a line of chat after the
    32nd copy) grows the pool from 32 to 64, and the index was then rebuilt in slot order,
    giving both buckets to chat-21: the 33rd copy found no group and started a second one.
    The 32nd copy mentions a chatter and ends in a 5-digit number, its two anchors then (so
    it found no group either). Before: accounts 10-31 caught, 32-41 let through, 42-50
    caught (the second group reached 10). Now: 10-50 caught, none through."""
    ev, t = [], T0
    ad = "Want more viewers? Buy real followers at bigfollows dot com today"
    cyr = {"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "y": "у"}
    fresh = "2026-09-21T09:00:00Z"
    spam_ts = [t + 1000 + k * 700 for k in range(50)]
    for k in range(50):
        chars = list(ad)
        spots = [i for i, c in enumerate(chars) if c in cyr]
        for j in range(3):  # three look-alikes, in places that differ from copy to copy
            i = spots[_mix(k * 3 + j) % len(spots)]
            chars[i] = cyr[ad[i]]
        text = "".join(chars) + " " + str(100 + _mix(1000 + k) % 9000)  # 3-4 digits
        if k == 31:
            text = "@mikazed " + "".join(chars) + " 10003"
        ev.append(msg(f"spam-{k + 1}", spam_ts[k], f"spam{k + 1}", text, created_at=fresh))
    # chat: 31 lines before the 32nd copy, one between the 32nd and the 33rd (the 33rd group of
    # the channel: the pool grows from 32 to 64), then more
    chat_ts = [t + 500 + k * 700 for k in range(31)] + [spam_ts[31] + 300]
    chat_ts += [spam_ts[32] + 350 + k * 700 for k in range(17)]
    for k, ts in enumerate(chat_ts):
        ev.append(msg(f"chat-{k + 1}", ts, f"viewer{k % 20}", chat_line(k)))
    # 57 s after the last copy (the wave still live: less than `within` since it last held),
    # an account that waited posts the same ad: caught, though only 6 accounts posted it
    # within 60 s; 2 minutes later the wave is over: a copy starts a new count (allowed)
    late = spam_ts[-1] + 57_000
    ev.append(msg("spam-late", late, "spam51", ad + " 4417", created_at=fresh))
    ev.append(msg("spam-after", late + 120_000, "spam52", ad + " 8120", created_at=fresh))
    ev.sort(key=lambda e: (e["ts"], e["id"]))
    write("wave-split", ev)


def raid300():
    """Issue 15, item 2: a 300-account raid over 2 minutes (one copy every 400 ms), two
    templates of the same ad (every 7th the other one), look-alike letters, emoji around a
    third of the copies, a number after each and a tag (`#k3x9a`) after a fifth, with 400
    lines of chat between. Before: first caught at the 14th account, 40 let through after
    (the other template, and copies whose number or tag pushed them under the threshold).
    Now: first caught at the 10th, none through, no chat caught."""
    ev, t = [], T0
    tpl_a = "Want more viewers? Buy real followers at bigfollows dot com today"
    tpl_b = "Get cheap viewers and followers now at bigfollows dot com"
    cyr = {"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "y": "у"}
    emoji = ["🔥", "💯", "🚀", "👉", "✅"]
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    fresh = "2026-09-21T09:00:00Z"
    for k in range(300):
        base = tpl_b if k % 7 == 3 else tpl_a
        chars = list(base)
        spots = [i for i, c in enumerate(chars) if c in cyr]
        for j in range(3):
            i = spots[_mix(k * 3 + j) % len(spots)]
            chars[i] = cyr[base[i]]
        text = "".join(chars)
        m = _mix(5000 + k)
        if m % 3 == 0:
            text = emoji[m % 5] + " " + text + " " + emoji[(m >> 8) % 5]
        text += " " + str(10 + m % 999990)
        if m % 5 == 0:
            text += " #" + "".join(alnum[(m >> (6 * j)) % 36] for j in range(5))
        ev.append(msg(f"spam-{k + 1}", t + k * 400, f"spam{k + 1}", text, created_at=fresh))
    for k in range(400):
        ev.append(msg(f"chat-{k + 1}", t + 150 + k * 300, f"viewer{k % 50}", chat_line(1000 + k)))
    ev.sort(key=lambda e: (e["ts"], e["id"]))
    write("raid300", ev)


def examples():
    """examples/behaviour.ndjson: the five streams above in one, merged by time, each in
    channels of its own and with its name in front of every id."""
    names = ["flood", "duplicates", "waves", "raids", "escalation"]
    chans = {"flood": {"#main": "#flood", "#bursty": "#flood-bursty"},
             "duplicates": {"#main": "#copypasta", "#slow": "#copypasta-slow"},
             "waves": {"#main": "#wave", "#other": "#wave-other"}, "raids": {"#main": "#raid"},
             "escalation": {"#main": "#regulars"}}
    ev = []
    for name in names:
        with open(os.path.join(HERE, "behaviour-" + name, "events.ndjson")) as f:
            for line in f:
                e = json.loads(line)
                e = {k: (name + "/" + v if k == "id" else chans[name][v] if k == "channel" else v)
                     for k, v in e.items()}
                ev.append(e)
    ev.sort(key=lambda e: e["ts"])
    with open(os.path.join(HERE, "..", "..", "examples", "behaviour.ndjson"), "w") as f:
        for e in ev:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")


flood()
duplicates()
waves()
hype()
wave_split()
raid300()
raids()
raid80()
escalation()
docs_example()
examples()
