#!/usr/bin/env python3
"""bench/gen_history.py - a seeded, synthetic chat community's history, with its human
moderators' actions, for `whiply replay` (docs/experiments.md).

    bench/gen_history.py --events 1000000 --seed 42 --out history.ndjson --labels labels.ndjson

No public chat history with moderators' actions exists to measure against, so this one is
made up, on written-down assumptions (all in ASSUMPTIONS below and docs/experiments.md):
who posts what, how often it breaks the channel's rules, and how the human moderators of the
recorded history answered it. Every message has a hidden truth (does it break the rules?);
the humans see it imperfectly: they miss some harmful messages (more when chat is busy),
act with a lognormal delay, sometimes remove an innocent message, and sometimes correct
themselves. A careful reviewer labels a small random sample (--labels): the sampled review.

The same arguments give byte-identical output. Standard library only.
"""

import argparse
import heapq
import json
import math
import os
import random
import sys

# Every number the history rests on, in one place. Shares are per message unless said.
ASSUMPTIONS = {
    "rate_per_s": 14.0,  # messages per second over all channels (a busy Twitch channel)
    "regulars": 4000,  # the community's regulars; each message picks one by a Zipf law
    "subscriber_share": 0.3,  # regulars with the subscriber role
    "newcomer_share": 0.06,  # messages from someone new (account days old, first message)
    "troll_share": 0.015,  # messages from trolls (harmful 70% of the time)
    "spam_share": 0.01,  # messages from spam bots (always harmful)
    "regular_slip": 0.01,  # a regular's message that breaks the rules (swearing, a slur)
    "raid_every_s": 3 * 3600,  # a hostile raid: many new accounts join and paste spam
    "raid_size": (40, 150),
    "hype_every_s": 1800,  # a hype moment: 60 s of caps, emote walls and GOOOOO (innocent)
    "hype_len_s": 60,
    "hype_rate_factor": 4.0,
    "human_catch": 0.78,  # a harmful message that a human moderator removes
    "human_catch_busy": 0.45,  # ... during a raid or hype moment
    "human_latency_median_s": 25.0,  # lognormal delay from message to a human's action
    "human_latency_sigma": 0.9,
    "human_busy_factor": 2.0,  # delays are that much longer when chat is busy
    "human_ref_share": 0.7,  # a human action naming the message (ref_event); else the user
    "human_false_removal": 0.002,  # an innocent message a human removes anyway
    "human_self_correct": 0.35,  # ... of which (timeouts) are lifted later: untimeout
    "old_automod_holds": 0.9,  # the recorded AutoMod held links from users without a role
    "review_resolved": 0.85,  # held messages a human approved or denied
    "sample_share": 0.01,  # messages in the careful sampled review (--labels)
    "sample_error": 0.01,  # the reviewer's own mistakes
}

CHANNELS = [("twitch", "#pixelqueen", 0.6), ("twitch", "#speedrunsam", 0.3), ("discord", "#general", 0.1)]

CHAT = [
    "gg", "nice run", "what game is this?", "lol", "LUL", "hi chat", "hello from Brazil",
    "that jump was clean", "how many deaths so far?", "is this any% or 100%?", "first time here",
    "pog", "sub 50 pace??", "she's cracked at this game", "monkaS", "chat is wild today",
    "did anyone see the clip from yesterday?", "what keyboard is that?", "good luck on the run",
    "the music in this level slaps", "KEKW", "i'm from Scunthorpe, hi", "cocktail hour in chat",
    "that boss is an assassin", "my therapist says I watch too much speedrun", "grapes are good",
    "hola a todos", "¡qué jugada tan buena!", "quelle partie", "das war knapp", "o7",
    "what's the world record?", "take a break if you need it", "hydrate chat", "HeyGuys",
    "that skip saves like 4 seconds", "can you explain the route?", "was that a frame perfect trick",
]
# Chat is said many ways: an opener, a thought, sometimes a number or a name.
OPENERS = ["", "ok", "wait", "honestly", "lol", "chat", "bro", "yo", "hmm", "omg", "ngl", "btw",
           "tbh", "real talk", "imo", "hey pixel", "sam", "dude", "yes", "no way"]
THOUGHTS = ["that was clean", "this route is wild", "how is she so fast", "i missed the skip",
            "what category is this", "the music goes hard", "nice save", "that boss took forever",
            "gonna try this game later", "my run died there too", "the timer looks good",
            "we are so back", "is there a bonus level", "the new patch changed that",
            "who made the splits", "need a tutorial for that", "can't believe it worked",
            "pb incoming", "just got home from work", "eating dinner with the stream"]
EMOTES = ["Kreygasm", "PogChamp", "LUL", "KEKW", "HeyGuys", "monkaS", "PepeHands", "catJAM"]
HYPE = ["LETS GOOOOOOOOOOOOOOOOOOO", "WORLD RECORD PACE HYPE HYPE HYPE", "AAAAAAAAAAAAAAAAAAAAAA",
        "WHAT WAS THAT PLAY OMG OMG OMG", "POGGERS POGGERS POGGERS POGGERS"]
GOOD_LINKS = ["https://clips.twitch.tv/CleverClip", "https://youtu.be/dQw4w9WgXcQ",
              "https://www.speedrun.com/game/leaderboards", "https://wiki.example.org/route",
              "https://github.com/someone/autosplitter"]
PROFANE = ["fuck", "shit", "bitch", "asshole", "bastard", "dickhead"]
EVASIONS = ["f u c k", "sh1t", "b!tch", "fuuuuuck", "a$$hole", "ｆｕｃｋ"]
INSULTS = ["you're trash at this game", "nobody likes you, just leave", "worst streamer ever lmao",
           "imagine being this bad", "go back to your basement", "you should quit streaming"]
HARASS = ["kys", "kill yourself", "k y s loser"]
SPAM = ["free nitro here: https://{host}/claim", "FREE STEAM GIFTS https://{host}/gift",
        "claim your free skins at https://{host}/skins", "get followers cheap https://{host}",
        "best viewers and followers at {host2} dot com", "follow me for follow back!! {tag}"]
SCAM_HOSTS = ["grabify.link", "stopify.co", "gamingfun.me", "screenshare.pics", "discord-gifts.ru"]
SPAM_HOSTS2 = ["bigfollows", "cheapviewers", "viewbot-pro"]


def read_slurs():
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "lists", "slurs.txt")
    try:
        with open(path, encoding="utf-8") as f:
            words = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    except OSError:
        words = []
    return words or ["slur"]


class History:
    def __init__(self, seed, events):
        self.rng = random.Random(seed)
        self.n_events = events
        self.slurs = read_slurs()
        a = ASSUMPTIONS
        self.t0 = 1795550400000  # 2026-11-24T18:00:00Z
        self.ids = 0
        self.pending = []  # (time, seq, event): human actions waiting for their time
        self.seq = 0
        self.written = 0
        self.labels = []
        self.regulars = [f"r-{i}" for i in range(a["regulars"])]
        self.subs = set(self.rng.sample(self.regulars, int(a["subscriber_share"] * a["regulars"])))
        w = [1.0 / (i + 1) ** 0.9 for i in range(a["regulars"])]
        tot = sum(w)
        self.cum = []
        acc = 0.0
        for x in w:
            acc += x / tot
            self.cum.append(acc)
        self.trolls = [f"t-{i}" for i in range(80)]
        self.newcomer = 0
        self.bot = 0
        self.timed_out = {}  # user -> until (ms): a removed user is quiet for a while

    # ---- people ----
    def regular(self):
        x = self.rng.random()
        lo, hi = 0, len(self.cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.cum[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        return self.regulars[lo]

    def channel(self):
        x = self.rng.random()
        for p, c, share in CHANNELS:
            if x < share:
                return p, c
            x -= share
        return CHANNELS[0][0], CHANNELS[0][1]

    # ---- output ----
    def emit(self, out, ev):
        out.write(json.dumps(ev, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        self.written += 1

    def later(self, t, ev):
        self.seq += 1
        heapq.heappush(self.pending, (t, self.seq, ev))

    def flush_until(self, out, t):
        while self.pending and self.pending[0][0] <= t and self.written < self.n_events:
            at, _, ev = heapq.heappop(self.pending)
            ev["ts"] = at
            self.emit(out, ev)

    def iso(self, ms):
        import datetime
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    # ---- what people write, and whether it breaks the rules ----
    def chat_text(self):
        r = self.rng
        if r.random() < 0.6:
            t = f"{r.choice(OPENERS)} {r.choice(THOUGHTS)}".strip()
            if r.random() < 0.3:
                t += f" {r.choice(['at', 'like', 'around', 'after'])} {r.randint(2, 59)} {r.choice(['seconds', 'minutes', 'tries', 'deaths'])}"
        else:
            t = r.choice(CHAT)
        if r.random() < 0.25:
            t += " " + r.choice(EMOTES)
        if r.random() < 0.03:
            t += " " + r.choice(GOOD_LINKS)
        return t

    def harmful_text(self, who):
        """(text, kind): kind picks the human's action (delete, timeout, ban)."""
        r = self.rng
        x = r.random()
        if who == "spam":
            s = r.choice(SPAM)
            return s.format(host=r.choice(SCAM_HOSTS), host2=r.choice(SPAM_HOSTS2),
                            tag="@" + self.regular()), "ban"
        if x < 0.35:
            return f"this is {r.choice(PROFANE)} {r.choice(['boring', 'rigged', 'lame', 'stupid'])}", "delete"
        if x < 0.5:
            return f"what a {r.choice(EVASIONS)} run", "delete"
        if x < 0.75:
            return r.choice(INSULTS), "timeout"  # no word a filter knows
        if x < 0.9:
            return f"@{self.regular()} {r.choice(HARASS)}", "timeout"
        return f"{r.choice(self.slurs)} {r.choice(['lol', 'get out', ''])}".strip(), "timeout"

    # ---- the humans ----
    def latency(self, busy):
        a = ASSUMPTIONS
        d = a["human_latency_median_s"] * math.exp(self.rng.gauss(0, a["human_latency_sigma"]))
        if busy:
            d *= a["human_busy_factor"]
        return int(min(d, 1800) * 1000) + self.rng.randrange(1000)

    def mod_action(self, ts, plat, chan, target, action, ref, duration=None):
        self.ids += 1
        ev = {"id": f"a-{self.ids}", "type": "mod_action", "platform": plat, "channel": chan,
              "moderator": self.rng.choice(["mod_kay", "mod_bob", "mod_anna"]), "target": target,
              "action": action}
        if ref:
            ev["ref_event"] = ref
        if duration:
            ev["duration_s"] = duration
        self.later(ts, ev)

    def humans_answer(self, ev, harmful, kind, busy, held):
        a = ASSUMPTIONS
        r = self.rng
        ts = ev["ts"]
        user = ev["user"]["id"]
        plat, chan = ev["platform"], ev["channel"]
        if held and r.random() < a["review_resolved"]:  # the old AutoMod's review queue
            self.mod_action(ts + self.latency(busy) * 2, plat, chan, user,
                            "deny" if harmful else "approve", ev["id"])
            return
        if harmful:
            if r.random() >= (a["human_catch_busy"] if busy else a["human_catch"]):
                return  # missed
            lat = self.latency(busy)
            ref = ev["id"] if r.random() < a["human_ref_share"] or kind == "delete" else None
            dur = {"timeout": r.choice([60, 600, 3600])}.get(kind)
            self.mod_action(ts + lat, plat, chan, user, kind, ref, dur)
            if kind in ("timeout", "ban"):
                self.timed_out[user] = ts + lat + (dur or 10**9) * 1000
            return
        if r.random() < a["human_false_removal"] * (3 if busy else 1):
            lat = self.latency(busy)
            self.mod_action(ts + lat, plat, chan, user, "timeout", ev["id"], 60)
            if r.random() < a["human_self_correct"]:
                self.mod_action(ts + lat + self.latency(False) * 4, plat, chan, user, "untimeout", ev["id"])

    # ---- the stream ----
    def run(self, out):
        a = ASSUMPTIONS
        r = self.rng
        t = self.t0
        next_raid = t + int(r.uniform(0.3, 1.0) * a["raid_every_s"] * 1000)
        next_hype = t + int(r.uniform(0.2, 1.0) * a["hype_every_s"] * 1000)
        hype_until = raid_until = 0
        while self.written < self.n_events:
            hype = t < hype_until
            raid = t < raid_until
            rate = a["rate_per_s"] * (a["hype_rate_factor"] if hype else 1.0)
            t += max(1, int(r.expovariate(rate) * 1000))
            self.flush_until(out, t)
            if self.written >= self.n_events:
                break
            if t >= next_hype:
                hype_until = t + a["hype_len_s"] * 1000
                next_hype = t + int(r.uniform(0.5, 1.5) * a["hype_every_s"] * 1000)
            if t >= next_raid:
                raid_until = t + 90 * 1000
                next_raid = t + int(r.uniform(0.5, 1.5) * a["raid_every_s"] * 1000)
                self.raid(out, t)
                continue
            self.message(out, t, hype, raid)
        # what is still pending happened after the recording stopped

    def raid(self, out, t):
        r = self.rng
        plat, chan = "twitch", "#pixelqueen"
        n = r.randint(*ASSUMPTIONS["raid_size"])
        text = r.choice(["{e} RAID {e} this channel sucks {e}", "follow raidboss_tv for free followers",
                         "{e} {e} {e} we run this chat now {e} {e}"]).replace("{e}", "TwitchUnity")
        for i in range(n):
            if self.written >= self.n_events:
                return
            self.bot += 1
            uid = f"raid-{self.bot}"
            self.ids += 1
            ts = t + i * r.randrange(20, 120)
            self.emit(out, {"id": f"j-{self.ids}", "type": "join", "platform": plat, "channel": chan,
                            "user": {"id": uid, "name": f"raider_{self.bot}",
                                     "created_at": self.iso(ts - r.randrange(3600, 86400) * 1000)},
                            "ts": ts})
            if r.random() < 0.6 and self.written < self.n_events:
                self.ids += 1
                ev = {"id": f"e-{self.ids}", "platform": plat, "channel": chan,
                      "user": {"id": uid, "name": f"raider_{self.bot}", "first_message": True,
                               "created_at": self.iso(ts - 7200 * 1000)},
                      "text": text, "ts": ts + r.randrange(500, 5000)}
                self.emit(out, ev)
                self.sample(ev, True)
                self.humans_answer(ev, True, "ban", True, False)

    def sample(self, ev, harmful):
        a = ASSUMPTIONS
        if self.rng.random() < a["sample_share"]:
            truth = harmful != (self.rng.random() < a["sample_error"])
            self.labels.append({"id": ev["id"], "label": "harmful" if truth else "ok"})

    def message(self, out, t, hype, raid):
        a = ASSUMPTIONS
        r = self.rng
        plat, chan = self.channel()
        x = r.random()
        roles = []
        meta = None
        first = None
        if x < a["spam_share"]:
            self.bot += 1
            user, who = f"s-{self.bot}", "spam"
            first = True
        elif x < a["spam_share"] + a["troll_share"]:
            user, who = r.choice(self.trolls), "troll"
        elif x < a["spam_share"] + a["troll_share"] + a["newcomer_share"]:
            self.newcomer += 1
            user, who = f"n-{(self.newcomer - 1) // 3}", "newcomer"  # three messages each
        else:
            user, who = self.regular(), "regular"
            if user in self.subs:
                roles = ["subscriber"]
        if self.timed_out.get(user, 0) > t:
            user, who, roles = self.regular(), "regular", []
        if who == "spam":
            harmful = True
        elif who == "troll":
            harmful = r.random() < 0.7
        else:
            harmful = r.random() < a["regular_slip"]
        kind = "delete"
        if harmful:
            text, kind = self.harmful_text(who)
        elif hype and who == "regular" and r.random() < 0.6:
            text = r.choice(HYPE)
            if r.random() < 0.5:
                text = " ".join(r.choice(EMOTES) for _ in range(r.randint(3, 18)))
                pos, parts = 0, []
                for w in text.split(" "):
                    parts.append(f"{EMOTES.index(w) + 25}:{pos}-{pos + len(w) - 1}")
                    pos += len(w) + 1
                meta = {"emotes": "/".join(parts)}
        else:
            text = self.chat_text()
        self.ids += 1
        ev = {"id": f"e-{self.ids}", "platform": plat, "channel": chan,
              "user": {"id": user, "name": user.replace("-", "_"), "roles": roles}, "text": text, "ts": t}
        if who == "spam":  # bots are days old
            ev["user"]["created_at"] = self.iso(t - r.randrange(3600, 3 * 86400) * 1000)
        elif who == "newcomer":  # newcomers are any age
            ev["user"]["created_at"] = self.iso(t - ((self.newcomer - 1) // 3 % 1000 + 1) * 86400000)
        if who in ("regular", "troll"):
            first = False  # Twitch's first-msg tag: known chatters are not new here
        elif who == "newcomer":
            first = (self.newcomer - 1) % 3 == 0
        ev["user"]["first_message"] = first
        if meta:
            ev["meta"] = meta
        self.emit(out, ev)
        self.sample(ev, harmful)
        held = "https://" in text and not roles and r.random() < a["old_automod_holds"]
        self.humans_answer(ev, harmful, kind, hype or raid, held)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default="-")
    ap.add_argument("--labels", help="write the sampled review's labels here")
    ap.add_argument("--assumptions", action="store_true", help="print the assumptions as JSON")
    args = ap.parse_args()
    if args.assumptions:
        json.dump(ASSUMPTIONS, sys.stdout, indent=1)
        print()
        return
    h = History(args.seed, args.events)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    with out:
        h.run(out)
    if args.labels:
        with open(args.labels, "w", encoding="utf-8") as f:
            for l in h.labels:
                f.write(json.dumps(l, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
