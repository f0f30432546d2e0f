/* verdict.h - what a decision is, as data: the action and everything that goes with it
 * (duration, warn message, strikes, the rules that fired, the reason, the channel action,
 * the targets of a wave or raid, the matched spans, the shadow rules). wh_decide_verdict
 * fills one; the decision JSON (decision_json.c) is one encoder of it, and whatever carries
 * actions out (the action outbox, adapters) reads the struct.
 *
 * A verdict belongs to the decider that made it and points into the ruleset, the analysis
 * and the decider's own buffers: it is valid until the decider decides again, or the
 * analysis is freed, whichever comes first. Copy what must live longer. */
#ifndef WH_VERDICT_H
#define WH_VERDICT_H

#include "base/base.h"
#include "rules/rules.h"

struct wh_analysis;

#define WH_VERDICT_MAX_MATCHES 32 /* spans a decision reports (more: matches_truncated) */
#define WH_VERDICT_MAX_TARGETS 256

typedef enum {
    WH_VK_DECIDED = 0, /* the rules ran (a message, or a join with state) */
    WH_VK_PASS,        /* allowed without running the rules: an exempt role, or an event
                          the rules do not look at */
    WH_VK_MOD_ACTION,  /* a moderator's action: the target's standing is updated */
    WH_VK_OOM,         /* out of memory normalizing the text: allowed, with an error */
} wh_verdict_kind;

/* A matched span reported with the decision. */
typedef struct {
    uint32_t rule;    /* index in the ruleset's rules */
    uint32_t pattern; /* index in the ruleset's patterns (its term: pats[pattern].source) */
    wh_view_id view;
    uint32_t rs, re; /* bytes of the event's text */
} wh_verdict_match;

typedef struct wh_verdict {
    wh_verdict_kind kind;
    wh_action action;
    uint32_t duration_s;  /* TIMEOUT: seconds */
    const char *message;  /* WARN: the deciding rule's message to the user, or NULL */
    int32_t rule;         /* the deciding rule (index in rs->rules), or -1 */
    int64_t strike;       /* the user's whole strikes after this decision, or -1: none added */
    wh_str reason;        /* the deciding rule's reason, placeholders filled ({} when none) */
    const uint8_t *fired; /* per rule (rs->nrules): 0 no, 1 enforced, 2 shadow */
    const wh_action *act; /* per rule that fired: the action it would take */
    uint32_t nfired, nshadow;
    /* a channel mode switched on by the first enforced rule that asks for one */
    int32_t chan_mode; /* wh_chan_mode, or -1 */
    uint32_t chan_for_s;
    /* users the action also reaches: a completed wave's senders or a raid's joiners */
    const wh_str *targets;
    uint32_t ntargets;
    bool has_targets; /* a wave or raid named its members (possibly none left) */
    const wh_verdict_match *matches;
    uint32_t nmatches;
    bool matches_truncated;
    /* MOD_ACTION: the target and its standing after the action (has_standing) */
    wh_str mod_target;
    bool has_standing;
    uint64_t standing_strikes;
    double standing_rep;
    /* the channel's panic switch: a `panic` mod_action set it (MOD_ACTION), or a rule fired
     * while it was on (DECIDED); panic_until in event time, 0: switched off */
    bool has_panic;
    int64_t panic_until;
    /* --explain: the values of the predicates that held and the user's state, rendered as
     * JSON fragments when the decision was made (the state moves on after it) */
    wh_str explain_values, explain_state;
    /* what the encoder needs besides */
    const wh_ruleset *rs;
    const struct wh_analysis *an;
    bool explain;
} wh_verdict;

/* Appends the decision JSON of v: exactly one line, with its newline. */
void wh_verdict_json(const wh_verdict *v, wh_buf *out);

/* Numbers as decisions write them: a whole number without a point, else 4 significant
 * digits; a probability with 5 (so 0.99996 does not print as 1), null if not finite. */
void wh_json_double(wh_buf *b, double v);
void wh_json_score(wh_buf *b, float v);

#endif
