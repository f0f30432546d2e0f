#!/usr/bin/env python3
"""bench/spam_history.py - the SpamAssassin corpus as a moderated stream, for `whiply replay`.

    bench/spam_history.py .deps/data/spamassassin/test.ndjson > spam-history.ndjson

Real messages with real human labels: each mail (tools/spamassassin.py's NDJSON, made by
`make spam-data`) becomes a message event in one channel, a minute apart, and its label a
moderator's decision about it 30 seconds later: spam a `delete`, ham an `approve`, both
naming the message (ref_event). So every message is labelled, by people, and a replay's
confusion matrix for a ruleset that scores with a classifier can be checked against
`whiply eval` of the same model at the same threshold (bench/replay.sh does).
"""

import json
import sys

T0 = 1795550400000


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else ".deps/data/spamassassin/test.ndjson"
    out = sys.stdout
    with open(src, encoding="utf-8") as f:
        for i, line in enumerate(f):
            m = json.loads(line)
            ts = T0 + i * 60000
            user = "sender-" + m["id"].split("/")[-1]
            out.write(json.dumps({"id": m["id"], "platform": "mail", "channel": "#inbox",
                                  "user": {"id": user}, "text": m["text"], "ts": ts},
                                 ensure_ascii=False) + "\n")
            out.write(json.dumps({"id": "mod-" + m["id"], "type": "mod_action", "platform": "mail",
                                  "channel": "#inbox", "moderator": "corpus", "target": user,
                                  "action": "delete" if m["label"] == "spam" else "approve",
                                  "ref_event": m["id"], "ts": ts + 30000}) + "\n")


if __name__ == "__main__":
    main()
