#!/usr/bin/env python3
"""bench/ml.py - the helpers of bench/ml.sh (python3 stdlib only).

    ml.py files DATA.ndjson DIR NAME     DIR/NAME.labels (ham|spam a line), DIR/NAME.ft
                                         (fastText: "__label__L text" a line), DIR/NAME.txt
                                         (the texts alone), DIR/NAME/*.eml + DIR/NAME.list
                                         (one mail per message) + .spam.list/.ham.list
    ml.py score NAME LABELS SCORES TRAIN_S CLASSIFY_S
                                         one result row (JSON) from P(spam) a line
    ml.py whiply EVAL_JSON TRAIN_S CLASSIFY_S
                                         the same row from `whiply eval --json`
    ml.py table ROWS.ndjson              the table, and the verdict when whiply is in it

Every classifier is scored at one threshold: P(spam) >= THRESHOLD is spam. The definitions
(the same as whiply eval's): precision tp/(tp+fp), recall tp/(tp+fn), F1 their harmonic mean,
FPR fp/(fp+tn) (ham called spam, over all ham), a ratio with a zero denominator is 0; AUC is
the probability that a random spam scores above a random ham, ties counting one half.
"""

import json
import os
import sys

THRESHOLD = 0.5
BAR_ACCURACY, BAR_FPR = 0.990, 0.005


def files(data, folder, name):
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    out = {k: open(os.path.join(folder, name + k), "w", encoding="utf-8")
           for k in (".labels", ".ft", ".txt", ".list", ".spam.list", ".ham.list")}
    with open(data, encoding="utf-8") as f:
        for i, line in enumerate(f):
            r = json.loads(line)
            label, text = r["label"], r["text"]
            subject, _, body = text.partition("\n\n")
            mail = os.path.join(folder, name, f"{i:05d}.eml")
            with open(mail, "w", encoding="utf-8") as m:
                m.write(f"Subject: {subject}\n\n{body}\n")
            flat = " ".join(text.split())  # fastText reads one line per example
            out[".labels"].write(label + "\n")
            out[".ft"].write(f"__label__{label} {flat}\n")
            out[".txt"].write(flat + "\n")
            out[".list"].write(mail + "\n")
            out[f".{label}.list"].write(mail + "\n")
    for f in out.values():
        f.close()


def ratio(a, b):
    return a / b if b else 0.0


def auc(labels, scores):
    """Mann-Whitney U over average ranks (ties share their rank)."""
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = [r for r, l in zip(ranks, labels) if l]
    npos, nneg = len(pos), len(labels) - len(pos)
    return ratio(sum(pos) - npos * (npos + 1) / 2, npos * nneg)


def metrics(tp, fp, tn, fn):
    p, r = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {"n": tp + fp + tn + fn, "accuracy": ratio(tp + tn, tp + fp + tn + fn),
            "precision": p, "recall": r, "f1": ratio(2 * p * r, p + r), "fpr": ratio(fp, fp + tn),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def score(name, labels_path, scores_path, train_s, classify_s):
    with open(labels_path) as f:
        labels = [line.strip() == "spam" for line in f]
    with open(scores_path) as f:
        scores = [min(1.0, max(0.0, float(line))) for line in f]  # fastText's can pass 1
    if len(labels) != len(scores):
        sys.exit(f"ml.py: {name}: {len(scores)} scores for {len(labels)} messages")
    tp = sum(1 for l, s in zip(labels, scores) if l and s >= THRESHOLD)
    fp = sum(1 for l, s in zip(labels, scores) if not l and s >= THRESHOLD)
    npos = sum(labels)
    return {"name": name, **metrics(tp, fp, len(labels) - npos - fp, npos - tp),
            "auc": auc(labels, scores), "train_s": float(train_s),
            "messages_per_s": ratio(len(labels), float(classify_s))}


def whiply(eval_path, train_s, classify_s):
    """The row from whiply's confusion matrix, so that it is computed as the peers' are; the
    figures whiply prints must agree (they are rounded to 6 decimals)."""
    with open(eval_path) as f:
        text = f.read()
    try:
        e = json.loads(text)
    except ValueError:  # anything printed before the JSON line
        e = json.loads(text.strip().splitlines()[-1])
    s = e["labels"]["spam"]
    if e.get("threshold", THRESHOLD) != THRESHOLD:
        sys.exit(f"ml.py: whiply eval used threshold {e['threshold']}, not {THRESHOLD}")
    row = {"name": "whiply", **metrics(**{k: s["confusion"][k] for k in ("tp", "fp", "tn", "fn")}),
           "auc": s["auc"], "train_s": float(train_s),
           "messages_per_s": ratio(e["n"], float(classify_s)), "self_messages_per_s": e.get("messages_per_s")}
    for k in ("accuracy", "precision", "recall", "f1", "fpr"):
        if abs(row[k] - s[k]) > 1e-5:
            print(f"ml.py: note: whiply eval says {k} {s[k]}, its confusion matrix {row[k]:.6f}",
                  file=sys.stderr)
    if row["n"] != e["n"]:
        sys.exit(f"ml.py: whiply eval: n {e['n']}, confusion matrix {row['n']}")
    return row


def table(rows_path):
    with open(rows_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    pct = lambda v: f"{100 * v:.2f}%"
    print(f"{'classifier':<16} {'accuracy':>9} {'precision':>9} {'recall':>8} {'F1':>8} "
          f"{'FPR':>7} {'AUC':>7} {'FP':>4} {'FN':>4} {'train s':>8} {'msgs/s':>9}")
    for r in rows:
        print(f"{r['name']:<16} {pct(r['accuracy']):>9} {pct(r['precision']):>9} "
              f"{pct(r['recall']):>8} {pct(r['f1']):>8} {pct(r['fpr']):>7} {r['auc']:>7.4f} "
              f"{r['fp']:>4} {r['fn']:>4} {r['train_s']:>8.2f} {r['messages_per_s']:>9,.0f}")
    w = next((r for r in rows if r["name"] == "whiply"), None)
    peers = [r for r in rows if r["name"] != "whiply"]
    if w is None:
        return
    if w.get("self_messages_per_s"):
        print(f"(whiply eval's own figure, without process start and model load: "
              f"{w['self_messages_per_s']:,.0f} msgs/s)")
    best = max(peers, key=lambda r: (r["accuracy"], -r["fpr"])) if peers else None
    bar = w["accuracy"] >= BAR_ACCURACY and w["fpr"] <= BAR_FPR
    peer_ok = best is None or (w["accuracy"] >= best["accuracy"] and w["fpr"] <= best["fpr"])
    line = (f"verdict: whiply accuracy {pct(w['accuracy'])}, FPR {pct(w['fpr'])}: "
            f"{'reaches' if bar else 'MISSES'} the bar (accuracy >= {pct(BAR_ACCURACY)}, "
            f"FPR <= {pct(BAR_FPR)})")
    if best:
        line += (f"; {'no worse than' if peer_ok else 'WORSE than'} the better peer, "
                 f"{best['name']} ({pct(best['accuracy'])}, FPR {pct(best['fpr'])}), "
                 f"on both accuracy and FPR")
    print(line + (": all met" if bar and peer_ok else ""))


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if cmd == "files" and len(args) == 3:
        files(*args)
    elif cmd == "score" and len(args) == 5:
        print(json.dumps(score(*args)))
    elif cmd == "whiply" and len(args) == 3:
        print(json.dumps(whiply(*args)))
    elif cmd == "table" and len(args) == 1:
        table(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
