/* engine.h - one event through the pipeline, in two steps:
 *
 *   analysis  decode -> normalize -> scan -> features -> sketch. Stateless: any worker
 *             thread, any order. The result (wh_analysis) lives in a caller's arena until
 *             the event is decided.
 *   decision  state (rates, repeats, waves, strikes, reputation) -> rules -> verdict ->
 *             escalation -> decision JSON. Runs on the shard that owns the event's channel,
 *             in input order, so a replay decides alike with any number of threads.
 *
 * A wh_worker is one analysis thread's private scratch (arena, decoder, Hyperscan/PCRE2
 * scratch); a wh_decider is one shard's (its state and per-rule marks). The ruleset is
 * shared and immutable. */
#ifndef WH_ENGINE_H
#define WH_ENGINE_H

#include "base/base.h"
#include "engine/event.h"
#include "rules/rules.h"
#include "state/shard.h"
#include "state/sketch.h"
#include "text/normalize.h"
#include "verdict.h"

typedef struct {
    bool explain;  /* add term, text, feature and state values to decisions */
    int max_depth; /* JSON nesting limit of an event (0: WH_MAX_DEPTH) */
} wh_engine_opts;

typedef enum { WH_AN_BLANK = 0, WH_AN_ERROR, WH_AN_EVENT } wh_an_kind;

typedef struct wh_analysis {
    /* first: what routing and prefetching read (one cache line) */
    wh_an_kind kind;
    uint32_t shard; /* EVENT: the shard that owns its channel */
    bool oom;       /* EVENT: normalizing ran out of memory (decided as allow) */
    bool exempt;    /* an exempt role: allowed, no state */
    bool truncated;
    uint64_t chan_key;
    uint64_t user_key; /* the user's (or the mod_action target's) key; 0 without one */
    wh_sketch sk;
    uint32_t nmatches;
    uint8_t *group_hit; /* per match group: a surviving blocked match */
    wh_match *matches;
    wh_str pre;           /* ERROR: the whole output line (with its newline) */
    uint64_t ticks;       /* analysis time, for latency figures */
    float *scores;        /* per score slot of the ruleset's models (messages only), or NULL */
    wh_str score_explain; /* --explain: "slot":[top features],... */
    wh_event ev;          /* strings in the line or the caller's arena */
    wh_features f;        /* link hosts in the caller's arena */
} wh_analysis;

typedef struct wh_worker wh_worker;
typedef struct wh_decider wh_decider;

/* The worker/decider keeps a reference to rs (released by its free). */
wh_worker *wh_worker_new(wh_ruleset *rs, const wh_engine_opts *opts);
void wh_worker_free(wh_worker *w);

/* Analyses one NDJSON line (without its newline). keep holds what the decision needs;
 * line_no (1-based) is used in errors; nshards picks an->shard. */
void wh_analyze(wh_worker *w, const char *line, size_t len, uint64_t line_no, int64_t now_ms,
                wh_arena *keep, uint32_t nshards, wh_analysis *an);

/* The same for an event decoded by the caller (copied into an->ev: its strings must live
 * as long as an), with its text's views when the caller built them for several rulesets
 * (text, from wh_text_build of ev->text; NULL: built here). `whiply replay` decodes and
 * normalizes each event once and analyses it with every ruleset's worker, on a thread each:
 * ev and text are only read, so workers on several threads may share them. */
void wh_analyze_event(wh_worker *w, const wh_event *ev, const wh_text *text, wh_arena *keep,
                      uint32_t nshards, wh_analysis *an);

/* A decider owns the state of one shard; nshards divides the ruleset's caps. */
wh_decider *wh_decider_new(wh_ruleset *rs, const wh_engine_opts *opts, uint32_t nshards);
void wh_decider_free(wh_decider *d);
wh_shard *wh_decider_shard(wh_decider *d); /* NULL when the ruleset keeps no state */
/* How often rule (an index in rs->rules) fired here, enforced or shadow. Any thread. */
uint64_t wh_decider_hits(const wh_decider *d, uint32_t rule);

/* How this shard's messages scored, for metrics (any thread): adds the counts of score slot
 * `slot` in each tenth (bucket i: scores in (i/10, (i+1)/10], 0 in the first) to counts
 * and the sum of the scores in millionths to *sum_millionths. */
#define WH_SCORE_BUCKETS 10
void wh_decider_score_hist(const wh_decider *d, uint32_t slot, uint64_t *counts,
                           uint64_t *sum_millionths);

/* Prefetches the state an analysed event will need: stage 0, then (a few hundred ns later)
 * stage 1, then stage 2 (wave groups), then decide it. Only on the decider's own thread. */
void wh_decide_prefetch(const wh_decider *d, const wh_analysis *an, int stage);

/* Decides an analysed EVENT: updates the state and fills the decider's verdict, which stays
 * valid until the decider decides again (or an is freed). */
const wh_verdict *wh_decide_verdict(wh_decider *d, const wh_analysis *an);
/* wh_decide_verdict, then its decision JSON appended to out: exactly one line. */
wh_action wh_decide(wh_decider *d, const wh_analysis *an, wh_buf *out);

typedef struct {
    bool error;       /* the line was not an event */
    wh_action action; /* valid when !error */
} wh_outcome;

/* Both steps on one line, with the worker's own decider (one shard): for the C API and
 * tests. */
wh_outcome wh_worker_line(wh_worker *w, const char *line, size_t len, uint64_t line_no,
                          int64_t now_ms, wh_buf *out);
wh_decider *wh_worker_decider(wh_worker *w);

/* Appends the error line for an input line that was too long to be read at all. */
void wh_write_line_error(wh_buf *out, uint64_t line_no, const char *code, const char *message);

#endif
