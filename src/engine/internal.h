/* internal.h - what the engine's files share (not part of any interface): the worker and
 * decider records, the evaluation context of a decision, and the conditions' entry points.
 *
 *   analyze.c        decode -> normalize -> scan -> features -> sketch -> scores
 *   eval.c           the conditions of a rule against an analysed event and the state
 *   decide.c         state -> rules -> verdict -> consequences (wh_decide_verdict)
 *   decision_json.c  the decision JSON of a verdict */
#ifndef WH_ENGINE_INTERNAL_H
#define WH_ENGINE_INTERNAL_H

#include "engine.h"

/* Paths most events never take are kept out of line, so that the per-event code stays small
 * in the instruction cache (which Hyperscan's code needs too). */
#define WH_COLD __attribute__((cold, noinline))

#define MAX_MATCHES 256
#define MAX_REPORTED_MATCHES WH_VERDICT_MAX_MATCHES
#define MAX_TARGETS WH_VERDICT_MAX_TARGETS

struct wh_worker {
    wh_ruleset *rs;
    wh_engine_opts opts;
    wh_decoder *dec;
    wh_arena arena; /* per event: the text views */
    wh_arena keep;  /* per event, for wh_worker_line */
    wh_match_scratch *ms;
    wh_match matches[MAX_MATCHES];
    wh_ml_fv fv;     /* classifier features */
    wh_decider *own; /* wh_worker_line's decider (made on first use) */
};

struct wh_decider {
    wh_ruleset *rs;
    wh_engine_opts opts;
    wh_shard *shard;        /* NULL when the ruleset keeps no state */
    uint8_t *fired;         /* per rule: 0 no, 1 enforced, 2 shadow */
    wh_action *act;         /* per rule: the action it takes (its ladder step when it escalates) */
    uint32_t *dur;          /* per rule: timeout seconds */
    _Atomic uint64_t *hits; /* per rule: times it fired (enforced or shadow), for metrics */
    _Atomic uint64_t *score_hist; /* per score slot: WH_SCORE_BUCKETS counts, then the sum of
                                     scores in millionths, for metrics */
    /* the last verdict and what it points to */
    wh_verdict v;
    wh_buf vb; /* the reason, the targets' ids, the --explain fragments */
    wh_verdict_match vm[MAX_REPORTED_MATCHES];
    uint32_t toff[MAX_TARGETS], tlen[MAX_TARGETS], ntargets; /* targets, as offsets in vb */
    bool has_targets;
    wh_str tstr[MAX_TARGETS];
};

/* Why a message counts toward a wave by default (`from: suspects`): a chorus of established
 * chatters ("LETS GOOO", "happy birthday") is not a spam wave; a burst of fresh or unknown
 * accounts with one text, or one text carrying links or mentions, is. One row a reason, in
 * the order --explain lists them. */
enum {
    WAVE_WHY_LINKS = 1u << 0,
    WAVE_WHY_MENTIONS = 1u << 1,
    WAVE_WHY_FRESH = 1u << 2,
    WAVE_WHY_NEW = 1u << 3,
    WAVE_WHY_REP = 1u << 4,
};
extern const char *const wh_wave_why_names[5];

typedef struct {
    const wh_analysis *an;
    const wh_ruleset *rs;
    const wh_state_cfg *cfg;
    int64_t now;
    wh_user *user;          /* NULL: no state or no user identity */
    const wh_channel *chan; /* NULL: no state, or the rules keep no channel entries */
    double strikes;         /* active strikes before this event */
    int first;              /* first message in the channel: 1, 0, or -1 unknown */
    bool over_u[WH_USER_SLOTS], over_c[WH_CHAN_SLOTS];
    wh_wave_cluster *wave; /* the group of similar messages this one joined, or NULL */
    double wave_sim;
    bool wave_true;      /* set by a wave predicate that held */
    bool wave_all;       /* ... and one of them counts everyone (`from: everyone`) */
    uint32_t wave_users; /* ... the largest `users` of them */
    int64_t wave_within;
    uint32_t wave_why;  /* why this message counts toward a wave by default (WAVE_WHY_*), 0: not */
    bool joins_assumed; /* `joins` holds: a join rule's other conditions (its filters) alone */
    uint64_t join_mask; /* join rules whose filters this join matched (wh_rule.join_bit) */
} eval_ctx;

/* The reasons (WAVE_WHY_*) this message counts toward a wave by default; 0: none. */
uint32_t wh_wave_why(const wh_analysis *an, const wh_user *u, double strikes, int64_t now);
/* Whether condition n holds for the event and state of c. */
bool wh_eval(eval_ctx *c, const wh_cond *n);
/* --explain: the values of the predicates that held in the rules that fired, as the
 * comma-separated elements the decision's "matches" array ends with; and the user's state
 * (",\"state\":{...}"). Both before this event's consequences. */
void wh_explain_values(const uint8_t *fired, eval_ctx *ctx, wh_buf *out);
void wh_explain_state(const eval_ctx *ctx, wh_buf *out);

/* (inlined: it runs for most rules of most events, and join_record calls it too) */
static inline __attribute__((always_inline)) bool rule_applies(const wh_rule *r, const wh_event *ev)
{
    if (r->platforms.n && !wh_strset_has(&r->platforms, ev->platform)) return false;
    if (r->channels.n && !wh_strset_has(&r->channels, ev->channel)) return false;
    if (r->roles.n) {
        bool any = false;
        for (uint32_t i = 0; i < ev->nroles && !any; i++)
            any = wh_strset_has(&r->roles, ev->roles[i]);
        if (!any) return false;
    }
    for (uint32_t i = 0; i < ev->nroles; i++)
        if (wh_strset_has(&r->exempt_roles, ev->roles[i])) return false;
    return true;
}

/* Who the user is: the id when the event has one, else the name. */
static inline wh_str user_identity(const wh_event *ev)
{
    return ev->user_id.n ? ev->user_id : ev->user_name;
}

#endif
