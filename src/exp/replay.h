/* replay.h - `whiply replay`: several rulesets decide one recorded stream side by side, and
 * what they decided is measured against what the human moderators in the stream did.
 *
 * One pass over the input: each line is decoded once and its text normalized once
 * (wh_analyze_event); every ruleset then scans and decides it with a worker and a decider
 * of its own (its own state: strikes, rates, waves), exactly as `whiply check` would with
 * one shard. Human actions label the messages they name (docs/experiments.md, "Ground
 * truth"); wh_replay_finish measures every ruleset and compares each with the first.
 *
 * Threads: call a wh_replay from one thread at a time. Inside, that thread reads, decodes and
 * normalizes a batch of lines while a thread per ruleset (started by wh_replay_new, stopped
 * by wh_replay_finish or wh_replay_free) decides the batch before; each ruleset still decides
 * every event in input order. It keeps a reference to each ruleset.
 *
 * Memory: about 60 bytes per message, 16 more per message and ruleset, and two batches of
 * input with their decoded events and text views: 160 MiB for a million events and two
 * rulesets (bench/RESULTS.md). */
#ifndef WH_EXP_REPLAY_H
#define WH_EXP_REPLAY_H

#include "base/base.h"
#include "exp/labels.h"
#include "exp/stats.h"
#include "rules/rules.h"

#define WH_REPLAY_MAX_RULESETS 8
#define WH_REPLAY_MAX_ERRORS 5 /* bad lines reported by line (all are counted) */

typedef struct {
    wh_action min_action; /* an action at least this strong counts as acting, for the
                             rulesets and for the humans (default warn) */
    int64_t attribute_ms; /* a human removal without ref_event labels the target's last
                             message in the channel when it is at most this old (default
                             10 minutes; 0: never) */
    bool unlabelled_ok;   /* messages no human touched count as fine (default: left out) */
    uint32_t examples;    /* changed decisions shown per group (default 3) */
} wh_replay_opts;

void wh_replay_opts_default(wh_replay_opts *o);

typedef struct wh_replay wh_replay;

/* rs[0..n): the rulesets (the first is the base of comparisons), names[i] how the report
 * names each (copied). */
wh_status wh_replay_new(wh_ruleset *const *rs, const char *const *names, uint32_t n,
                        const wh_replay_opts *o, wh_replay **out, wh_error *e);
void wh_replay_free(wh_replay *r);

/* A sampled review's labels file (labels.h), read before or after the stream. A bad line
 * stops it: WH_ESYNTAX with e naming path:line and what is wrong. */
wh_status wh_replay_labels_file(wh_replay *r, const char *path, wh_error *e);
/* One labels line (line_no for errors); the file reader's step, and the fuzz target's. */
wh_status wh_replay_label_line(wh_replay *r, const char *line, size_t len, uint64_t line_no,
                               wh_error *e);

/* One input line (without its newline), decided by every ruleset. A line that is not an
 * event is counted (the first WH_REPLAY_MAX_ERRORS with their line and why) and the replay
 * goes on. WH_ENOMEM only when memory ran out. */
wh_status wh_replay_line(wh_replay *r, const char *line, size_t len);

/* A confusion matrix of acting against the labels. */
typedef struct {
    uint64_t tp, fp, tn, fn;         /* acted on harmful, acted on fine, ... */
    uint64_t unl_acted, unl_allowed; /* messages without a label */
} wh_confusion;

typedef struct {
    double p50, p90, mean;
    uint64_t n;
} wh_dist;

typedef struct {
    uint32_t rule;   /* index in the ruleset */
    uint64_t fired;  /* messages it fired on with an acting action */
    uint64_t tp, fp; /* of those, harmful and fine */
    wh_interval precision, recall;
    /* shadow rules: what enforcing it would add to the ruleset's own verdicts */
    uint64_t add, add_harmful, add_ok;
    wh_interval precision_if, recall_if; /* the ruleset with this rule enforced */
} wh_rule_result;

typedef struct {
    const char *name;
    const wh_ruleset *rs;
    wh_confusion cm;
    uint64_t actions[WH_ACT__COUNT];
    wh_interval accuracy, fpr, coverage, precision, recall;
    /* the same on the sampled review's messages alone, by its labels: a random sample, so
     * free of the bias of what humans happened to touch (docs/experiments.md) */
    wh_confusion cm_sample;
    wh_interval accuracy_sample, fpr_sample, precision_sample, recall_sample;
    uint64_t human_acted, covered; /* coverage's n and k */
    wh_dist human_ms;              /* human latency on the messages humans removed */
    wh_dist visible_ms;            /* how long they stayed visible with this ruleset deciding */
    uint64_t hidden;   /* of them, those this ruleset hid (hold or stronger) before any human */
    wh_interval first; /* hidden / human_acted */
    double engine_p50_us, engine_p99_us; /* measured analysis + decision time (sampled) */
    wh_rule_result *rules; /* every rule that fired with an acting action, enforced first */
    uint32_t nrules;
} wh_ruleset_result;

/* A paired figure: the same messages judged under the base and the candidate. */
typedef struct {
    uint64_t a, b, c, d; /* both yes, base only, candidate only, neither */
    double base, cand;   /* the "yes" shares */
    wh_interval diff;    /* candidate - base, Newcombe's interval */
    wh_mcnemar test;
} wh_paired;

typedef struct {
    const char *id;   /* the message's id */
    const char *text; /* its first 160 bytes (cut at a character) */
    wh_label label;
    wh_action base, cand;
} wh_example;

typedef struct {
    int32_t base_rule, cand_rule; /* deciding rules (-1: none) */
    uint64_t count, now_acting, now_allowed, harmful, ok;
    wh_example ex[8];
    uint32_t nex;
} wh_change_group;

typedef struct {
    uint32_t cand;                             /* index of the candidate ruleset (the base is 0) */
    wh_paired accuracy, fpr, coverage, recall; /* correct, acted on fine, acted on removed */
    wh_interval visible_diff_ms;               /* mean change in visible time (normal interval) */
    uint64_t changed;
    wh_change_group *groups; /* by count, largest first */
    uint32_t ngroups;
} wh_comparison;

typedef struct {
    uint64_t lines, events, errors, messages;
    struct {
        uint64_t line;
        char code[24], message[160];
    } first_errors[WH_REPLAY_MAX_ERRORS];
    /* ground truth */
    uint64_t removals, approvals, reversals; /* human actions that labelled a message */
    uint64_t attributed;   /* removals without ref_event, labelled by target and channel */
    uint64_t unattributed; /* labelling actions that named no message of the stream */
    uint64_t below_min, other_actions;
    uint64_t harmful, ok, from_humans, from_sample, unlabelled;
    uint64_t sample_labels, sample_applied, sample_conflicts, sample_unknown;
    wh_replay_opts opts;
    wh_ruleset_result *rs;
    uint32_t nrs;
    wh_comparison *cmp; /* nrs - 1 */
} wh_replay_result;

/* Measures everything (once; later calls return the same result). The result belongs to r. */
const wh_replay_result *wh_replay_finish(wh_replay *r);

/* The report as JSON (one object, docs/experiments.md) and as a self-contained HTML page
 * (inline SVG charts, every text escaped), appended to out. input names the stream. */
void wh_replay_json(const wh_replay_result *res, const char *input, wh_buf *out);
void wh_replay_html(const wh_replay_result *res, const char *input, wh_buf *out);

#endif
