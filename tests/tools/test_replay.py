#!/usr/bin/env python3
"""tests/tools/test_replay.py WHIPLY - `whiply replay` as a user runs it.

The heart of it: on a generated history (bench/gen_history.py), the replay's confusion
matrices, coverage, per-rule counts and changed decisions must equal a reference computed
here independently: the decisions of `whiply check` for each ruleset, and the ground truth's
rules of docs/experiments.md written again in Python. Also the command line: exit codes,
errors naming file and line, both report formats, and the generator's determinism.
Prints PASS/FAIL lines (tests/run.sh counts them). Standard library only.
"""

import html.parser
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
WHIPLY = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "whiply"))
GEN = os.path.join(ROOT, "bench", "gen_history.py")
RULES = os.path.join(ROOT, "examples", "rules.yaml")
CANDIDATE = os.path.join(ROOT, "examples", "candidate.yaml")
ACTS = ["allow", "warn", "hold", "delete", "timeout", "ban"]
results = []


def case(fn):
    try:
        if fn() == "SKIP":
            print(f"SKIP {fn.__name__}")
            return
        print(f"PASS {fn.__name__}")
        results.append(True)
    except Exception as e:  # noqa: BLE001 - a test's failure, whatever it is
        print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
        results.append(False)


def run(*args, ok=True):
    p = subprocess.run([WHIPLY, *args], capture_output=True, text=True, cwd=TMP, timeout=600)
    if ok and p.returncode != 0:
        raise AssertionError(f"whiply {' '.join(args)} exited {p.returncode}: {p.stderr[-2000:]}")
    return p


def eq(a, b, what):
    if a != b:
        raise AssertionError(f"{what}: {a!r} != {b!r}")


# ---- the reference: ground truth as docs/experiments.md says, decisions from `whiply check` ----

REMOVE = {"warn": 1, "delete": 3, "remove": 3, "deny": 3, "timeout": 4, "ban": 5}


def chan_user(ev, who):
    return (ev.get("platform", "").lower(), ev.get("channel", "").lower(), who)


def ground_truth(events, labels, attribute_ms=600000, min_action=1):
    label, source, removed_at, by_id, last = {}, {}, {}, {}, {}
    msgs = []
    for ev in events:
        if ev.get("type", "message") == "message":
            if ev["id"] not in by_id:
                by_id[ev["id"]] = ev
            msgs.append(ev)
            u = ev.get("user", {})
            who = u.get("id") or u.get("name")
            if who:
                last[chan_user(ev, who)] = ev
        elif ev.get("type") == "mod_action":
            act = ev.get("action")
            if act in REMOVE:
                if REMOVE[act] < min_action:
                    continue
                kind = "remove"
            elif act in ("approve", "unban", "untimeout"):
                kind = "ok"
            else:
                continue
            if "ref_event" in ev:
                m = by_id.get(ev["ref_event"])
            elif kind == "remove" and attribute_ms and ev.get("target"):
                m = last.get(chan_user(ev, ev["target"]))
                if m is not None and ev["ts"] - m["ts"] > attribute_ms:
                    m = None
            else:
                m = None
            if m is None:
                continue
            mid = m["id"]
            source[mid] = "human"
            if kind == "remove":
                if label.get(mid) != "harmful" or mid not in removed_at:
                    removed_at[mid] = max(ev["ts"], m["ts"])
                label[mid] = "harmful"
            else:
                label[mid] = "ok"
                removed_at.pop(mid, None)
    for l in labels:
        if l["id"] in by_id and l["id"] not in source:
            label[l["id"]] = "harmful" if l["label"] in ("harmful", "removed", "remove", True) else "ok"
    return msgs, label, removed_at


def decisions(rules, history):
    p = run("check", "--rules", rules, "--in", history, "--no-cache")
    return [json.loads(l) for l in p.stdout.splitlines()]


def reference(rules, events, labels, history, min_action=1):
    msgs, label, removed_at = ground_truth(events, labels, min_action=min_action)
    dec = {}
    for ev, d in zip(events, decisions(rules, history)):
        eq(d["id"], ev["id"], "check's order")
        if ev.get("type", "message") == "message":
            dec.setdefault(ev["id"], d)
    cm = {"tp": 0, "fp": 0, "tn": 0, "fn": 0, "unlabelled_acted": 0, "unlabelled_allowed": 0}
    covered = acted_n = 0
    for m in msgs:
        d = dec[m["id"]]
        acted = ACTS.index(d["action"]) >= min_action
        lab = label.get(m["id"])
        if lab == "harmful":
            cm["tp" if acted else "fn"] += 1
        elif lab == "ok":
            cm["fp" if acted else "tn"] += 1
        else:
            cm["unlabelled_acted" if acted else "unlabelled_allowed"] += 1
        if m["id"] in removed_at:
            acted_n += 1
            covered += acted
    return {"confusion": cm, "coverage": (covered, acted_n), "decisions": dec, "msgs": msgs}


def setup():
    global TMP
    TMP = tempfile.mkdtemp(prefix="whiply-replay-")
    subprocess.run([sys.executable, GEN, "--events", "30000", "--seed", "7", "--out",
                    os.path.join(TMP, "h.ndjson"), "--labels", os.path.join(TMP, "l.ndjson")],
                   check=True, timeout=300)


def load(path):
    with open(os.path.join(TMP, path), encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


# ---- cases ----

def replay_matches_check_and_the_ground_truth_rules():
    events, labels = load("h.ndjson"), load("l.ndjson")
    run("replay", "--rules", RULES, "--rules", CANDIDATE, "--in", "h.ndjson", "--labels", "l.ndjson",
        "--report", "r.json", "--no-cache")
    rep = json.load(open(os.path.join(TMP, "r.json"), encoding="utf-8"))
    refs = [reference(r, events, labels, "h.ndjson") for r in (RULES, CANDIDATE)]
    for got, ref in zip(rep["rulesets"], refs):
        eq(got["confusion"], ref["confusion"], f"{got['name']} confusion")
        cov = got["figures"]["coverage"]
        eq((cov["k"], cov["n"]), ref["coverage"], f"{got['name']} coverage")
        if sum(ref["confusion"][k] for k in ("tp", "fp", "tn", "fn")) < 500:
            raise AssertionError("too few labelled messages for this test to mean much")
    # every changed decision, by the two deciding rules
    base, cand = refs[0]["decisions"], refs[1]["decisions"]
    changed = sum(1 for m in refs[0]["msgs"] if base[m["id"]]["action"] != cand[m["id"]]["action"])
    cmp = rep["comparisons"][0]
    eq(cmp["changed"]["messages"], changed, "changed decisions")
    eq(sum(g["count"] for g in cmp["changed"]["groups"]), changed, "groups add up")
    for g in cmp["changed"]["groups"]:
        for ex in g["examples"]:
            eq(base[ex["id"]]["action"], ex["base"], f"example {ex['id']} base action")
            eq(cand[ex["id"]]["action"], ex["candidate"], f"example {ex['id']} candidate action")
            eq(base[ex["id"]].get("rules", [None])[0] if ex["base"] != "allow" else None,
               g["base_rule"] if ex["base"] != "allow" else None, "base rule")


def min_action_delete_changes_what_counts():
    events, labels = load("h.ndjson"), load("l.ndjson")
    run("replay", "--rules", RULES, "--in", "h.ndjson", "--labels", "l.ndjson", "--min-action", "delete",
        "--report", "d.json", "--no-cache")
    rep = json.load(open(os.path.join(TMP, "d.json"), encoding="utf-8"))
    ref = reference(RULES, events, labels, "h.ndjson", min_action=3)
    eq(rep["rulesets"][0]["confusion"], ref["confusion"], "confusion at delete")


def html_report_is_self_contained_and_escaped():
    with open(os.path.join(TMP, "x.ndjson"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"id": "<b>id</b>", "channel": "#c", "user": {"id": "u"},
                            "text": "heck <script>alert('x')</script> darn", "ts": 1}) + "\n")
        f.write(json.dumps({"id": "a", "type": "mod_action", "channel": "#c", "target": "u",
                            "action": "ban", "ref_event": "<b>id</b>", "ts": 5}) + "\n")
    with open(os.path.join(TMP, "r.yaml"), "w", encoding="utf-8") as f:
        f.write("version: 1\nrules:\n  - id: darn\n    when: {words: [darn]}\n    action: delete\n")
    run("replay", "--rules", "r.yaml", "--rules", RULES, "--in", "x.ndjson", "--report", "x.html", "--no-cache")
    page = open(os.path.join(TMP, "x.html"), encoding="utf-8").read()
    if "<script" in page or "<b>id</b>" in page:
        raise AssertionError("input text reached the page unescaped")
    for bad in ("src=", "href=", "http://", "https://", "@import", "url("):
        if bad in page:
            raise AssertionError(f"the page refers to something outside it: {bad}")

    class Check(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.text = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

        def handle_data(self, data):
            self.text.append(data)

    c = Check()
    c.feed(page)
    text = "".join(c.text)
    if "heck <script>alert('x')</script> darn" not in text:
        raise AssertionError("the example's text is not shown as text")
    if "svg" not in c.tags:
        raise AssertionError("no chart")


def json_to_stdout_and_summary_to_stderr():
    p = run("replay", "--rules", RULES, "--in", "h.ndjson", "--no-cache")
    rep = json.loads(p.stdout)
    eq(rep["whiply_replay"], 1, "format")
    if "accuracy" not in p.stderr or "coverage" not in p.stderr:
        raise AssertionError(f"no summary on stderr: {p.stderr}")


def bad_input_lines_are_counted_and_named():
    with open(os.path.join(TMP, "bad.ndjson"), "w", encoding="utf-8") as f:
        f.write('{"id":"a","text":"hi","ts":1}\nnot json\n\n{"text":"no id"}\n' + "x" * 1100000 + "\n"
                '{"id":"b","text":"heck","ts":2}')  # and a last line without a newline
    p = run("replay", "--rules", RULES, "--in", "bad.ndjson", "--no-cache")
    rep = json.loads(p.stdout)["input"]
    eq((rep["lines"], rep["events"], rep["errors"], rep["messages"]), (6, 2, 3, 2), "counts")
    eq([(e["line"], e["code"]) for e in rep["first_errors"]],
       [(2, "bad_json"), (4, "missing_id"), (5, "line_too_long")], "errors")


def exit_codes_and_errors_name_the_problem():
    p = run("replay", "--rules", os.path.join(ROOT, "tests", "lint", "errors.yaml"), "--in", "h.ndjson", ok=False)
    eq(p.returncode, 2, "rules that do not load")
    p = run("replay", "--rules", RULES, "--in", "/nonexistent/h.ndjson", ok=False)
    eq(p.returncode, 1, "input that cannot be opened")
    with open(os.path.join(TMP, "badl.ndjson"), "w", encoding="utf-8") as f:
        f.write('{"id":"a","label":"ok"}\n{"id":"b","label":"maybe"}\n')
    p = run("replay", "--rules", RULES, "--in", "h.ndjson", "--labels", "badl.ndjson", ok=False)
    eq(p.returncode, 64, "a bad labels line")
    if "badl.ndjson: line 2: \"label\" must be" not in p.stderr:
        raise AssertionError(f"the error does not name file and line: {p.stderr}")
    for args in (["--min-action", "allow"], ["--unlabelled", "maybe"], ["--attribute", "soon"], []):
        p = run("replay", *(["--rules", RULES] if args else []), *args, ok=False)
        eq(p.returncode, 64, f"usage {args}")


def spamassassin_stream_agrees_with_eval():
    """Real mails, real labels: the replay's confusion matrix of a classifier rule equals
    whiply eval's at the same threshold (needs `make spam-data`; said SKIP otherwise)."""
    spam = os.path.join(ROOT, ".deps", "data", "spamassassin")
    train, test = os.path.join(spam, "train.ndjson"), os.path.join(spam, "test.ndjson")
    if not (os.path.exists(train) and os.path.exists(test)):
        return "SKIP"
    with open(os.path.join(TMP, "spam.ndjson"), "wb") as f:
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "spam_history.py"), test], stdout=f, check=True)
    run("train", "--data", train, "--out", "spam.whm", "--bits", "18", "--quiet")
    with open(os.path.join(TMP, "spam.yaml"), "w", encoding="utf-8") as f:
        f.write("version: 1\nmodels:\n  spam: {file: spam.whm}\nrules:\n  - id: m\n    when: {score: "
                "{model: spam, gte: 0.5}}\n    action: delete\n")
    rep = json.loads(run("replay", "--rules", "spam.yaml", "--in", "spam.ndjson", "--no-cache").stdout)
    ev = run("eval", "--model", "spam.whm", "--data", test, "--json").stdout
    c = rep["rulesets"][0]["confusion"]
    want = json.loads(ev)
    conf = want["labels"]["spam"]["confusion"]
    eq({k: c[k] for k in ("tp", "fp", "tn", "fn")}, {k: conf[k] for k in ("tp", "fp", "tn", "fn")}, "confusion")
    eq(rep["ground_truth"]["labels"]["unlabelled"], 0, "every mail labelled")


def generator_is_deterministic():
    a = subprocess.run([sys.executable, GEN, "--events", "3000", "--seed", "5"], capture_output=True, check=True).stdout
    b = subprocess.run([sys.executable, GEN, "--events", "3000", "--seed", "5"], capture_output=True, check=True).stdout
    c = subprocess.run([sys.executable, GEN, "--events", "3000", "--seed", "6"], capture_output=True, check=True).stdout
    eq(a == b, True, "same seed, same bytes")
    eq(a == c, False, "another seed, another history")
    eq(len(a.splitlines()), 3000, "events")


if __name__ == "__main__":
    setup()
    for fn in (replay_matches_check_and_the_ground_truth_rules, min_action_delete_changes_what_counts,
               html_report_is_self_contained_and_escaped, json_to_stdout_and_summary_to_stderr,
               bad_input_lines_are_counted_and_named, exit_codes_and_errors_name_the_problem,
               spamassassin_stream_agrees_with_eval, generator_is_deterministic):
        case(fn)
    subprocess.run(["rm", "-rf", TMP])
    sys.exit(0 if all(results) else 1)
