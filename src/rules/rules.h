/* rules.h - the compiled ruleset: YAML rules (libfyaml) -> rule tree + one matcher.
 *
 * A wh_ruleset is immutable after load and reference-counted, so that a reload can build
 * a new one beside the old and events in flight finish on the one they started with. */
#ifndef WH_RULES_H
#define WH_RULES_H

#include <stdatomic.h>

#include "base/base.h"
#include "base/diag.h"
#include "match/matcher.h"
#include "ml/ml.h"

/* The largest rules file and list file read (docs/rules.md): a file is read whole into
 * memory, and its text and compiled form several times over, at every reload. Only regular
 * files are read: rules pointed at a device or a FIFO are refused, not read forever. */
#define WH_RULES_FILE_MAX ((size_t)16 << 20)
#define WH_LIST_FILE_MAX ((size_t)64 << 20)

typedef enum {
    WH_ACT_ALLOW = 0,
    WH_ACT_WARN,
    WH_ACT_HOLD,
    WH_ACT_DELETE,
    WH_ACT_TIMEOUT,
    WH_ACT_BAN,
    WH_ACT__COUNT
} wh_action;

extern const char *const wh_action_names[WH_ACT__COUNT];

typedef enum {
    WH_F_LENGTH = 0,
    WH_F_LETTERS,
    WH_F_CAPS_RATIO,
    WH_F_SYMBOL_RATIO,
    WH_F_REPEATED,
    WH_F_ZALGO,
    WH_F_MENTIONS,
    WH_F_EMOTES,
    WH_F_NON_LATIN_RATIO,
    WH_F_LINKS,
    WH_F__COUNT
} wh_feature_id;

extern const char *const wh_feature_names[WH_F__COUNT];

typedef enum { WH_OP_GT, WH_OP_GE, WH_OP_LT, WH_OP_LE, WH_OP_EQ, WH_OP_NE } wh_cmp_op;

typedef struct {
    wh_cmp_op op;
    double v;
} wh_cmp;

bool wh_cmp_holds(wh_cmp c, double x);

typedef enum {
    WH_C_ALL,
    WH_C_ANY,
    WH_C_NOT,
    WH_C_MATCH,
    WH_C_NUM,
    WH_C_LINKS,
    /* behaviour (state) predicates */
    WH_C_RATE,    /* over a rate limit (sliding window or GCRA): slot, chan_scope */
    WH_C_DUP,     /* the same normalized text count times within */
    WH_C_SIMILAR, /* near-duplicates (sketch similarity >= threshold) */
    WH_C_WAVE,    /* count distinct users in the channel, similar text, within */
    WH_C_AGE,     /* account age (ms) compared by cmp */
    WH_C_FIRST,   /* first message in the channel == flag */
    WH_C_REP,     /* reputation compared by cmp */
    WH_C_STRIKES, /* active strikes compared by cmp */
    WH_C_JOINS,   /* join burst (a raid): over a channel limit on join events */
    WH_C_SCORE,   /* a classifier's score (slot) compared by cmp */
    WH_C_PANIC,   /* the channel's panic switch is on == flag */
    WH_C__COUNT
} wh_cond_kind;

typedef struct {
    char **hosts; /* lowercased; a host matches itself and its subdomains */
    uint32_t n;
} wh_hostset;

typedef struct wh_cond wh_cond;
struct wh_cond {
    wh_cond_kind kind;
    const struct wh_pred_eval
        *eval; /* what the kind means (src/engine/pred.h); NULL: all, any, not */
    uint32_t line, col;
    wh_cond **kids; /* ALL, ANY, NOT */
    uint32_t nkids;
    uint32_t group;         /* MATCH: the match group */
    wh_feature_id feat;     /* NUM */
    wh_cmp cmp;             /* NUM; LINKS count */
    bool has_count;         /* LINKS */
    wh_hostset allow, deny; /* LINKS */
    bool has_allow, has_deny;
    uint32_t slot;       /* RATE, JOINS: rate slot (user or channel slots); SCORE: score slot */
    bool chan_scope;     /* RATE: channel scope */
    uint32_t count;      /* DUP, SIMILAR: messages; WAVE: distinct users */
    int64_t within_ms;   /* DUP, SIMILAR, WAVE */
    double threshold;    /* SIMILAR, WAVE: 0..1 */
    uint32_t min_length; /* WAVE: shorter messages (bytes of the reduced text, see
                            state/sketch.h) never count */
    bool flag;           /* FIRST: the value; WAVE: `from: everyone` (else suspects only) */
};

/* A limit that state keeps one counter for, per user or per channel: by default a sliding
 * window (at most `count` events in any `period_ms`: the times of the last `count` events are
 * kept), or with `gcra` a GCRA cell (a bucket of `burst` refilled at count/period). */
typedef struct {
    int64_t period_ms, count, burst; /* burst = count for a window */
    bool joins;                      /* counts join events (channel scope only) */
    bool gcra;                       /* mode: gcra */
} wh_rate_slot;

/* Limits written alike share one counter, and a snapshot's counters follow their limit. */
static inline bool wh_rate_slot_eq(const wh_rate_slot *a, const wh_rate_slot *b)
{
    return a->period_ms == b->period_ms && a->count == b->count && a->burst == b->burst &&
           a->joins == b->joins && a->gcra == b->gcra;
}

/* Bounds of a sliding window's `count`: a user's window lives in the user's message log
 * (WH_LOG_MAX times at most); a channel's in a ring of its own, grown as the channel gets
 * busy (8 bytes a message). GCRA keeps one number whatever the count. */
#define WH_WINDOW_MAX_USER_COUNT 128
#define WH_WINDOW_MAX_CHAN_COUNT 10000
/* A user's message log (time, text hash): what sliding windows and `duplicate` look back
 * at. The last 8 are inline; a user with more recent messages than that, within the longest
 * window a rule needs, gets a heap log of up to WH_LOG_MAX (12 bytes each). */
#define WH_LOG_MAX 128
/* The joins a channel remembers for a raid's targets (48 bytes each, grown as needed). */
#define WH_JOIN_LOG_MAX 1024
#define WH_MAX_JOIN_RULES 64 /* join rules whose raids name targets */

#define WH_USER_SLOTS 4
#define WH_CHAN_SLOTS 8

/* One step of an escalation ladder: an action (timeout with its duration). */
typedef struct {
    uint8_t action;
    uint32_t duration_s;
} wh_step;

#define WH_MAX_STEPS 16

typedef enum {
    WH_MODE_FOLLOWERS_ONLY = 0,
    WH_MODE_SLOW,
    WH_MODE_SUBSCRIBERS_ONLY,
    WH_MODE_EMOTE_ONLY,
    WH_MODE__COUNT
} wh_chan_mode;

extern const char *const wh_chan_mode_names[WH_MODE__COUNT];

/* Moderator actions that change a user's standing (mod_action events). */
typedef enum {
    WH_MOD_WARN = 0,
    WH_MOD_TIMEOUT,
    WH_MOD_BAN,
    WH_MOD_DENY,
    WH_MOD__WEIGHTED
} wh_mod_kind;

typedef struct {
    bool enabled;                 /* the ruleset keeps state at all */
    uint32_t max_users;           /* entries per (platform, channel, user), all shards */
    uint32_t max_channels;        /* entries per (platform, channel) */
    int64_t idle_ms;              /* entries idle longer are forgotten (0 never) */
    wh_step ladder[WH_MAX_STEPS]; /* default escalation ladder */
    uint32_t nladder;
    int64_t half_life_ms; /* strikes decay: halve every half_life... */
    int64_t expire_ms;    /* ...or all reset after expire without a new strike */
    double rep_message, rep_approve, rep_strike, rep_min, rep_max;
    int64_t rep_interval_ms;
    double mod_weight[WH_MOD__WEIGHTED];
    wh_rate_slot user_slots[WH_USER_SLOTS], chan_slots[WH_CHAN_SLOTS];
    uint32_t nuser_slots, nchan_slots;
    bool need_hash, need_sim, need_wave;
    bool need_panic;      /* a `panic` condition: channel entries keep the panic switch */
    bool need_similar;    /* a `similar` rule: every message's SimHash is kept in the user's log */
    uint32_t sim_from;    /* the SimHash is computed for messages this long (wh_sketch_text_opt):
                             0 with a `similar` rule, else wave_min_length; UINT32_MAX: never */
    bool need_chan;       /* channel entries: channel rates, joins, waves or channel_action */
    uint32_t log_cap;     /* a user's message log, most entries (8 .. WH_LOG_MAX) */
    int64_t log_keep_ms;  /* the longest window the log serves (entries older may go) */
    bool need_log;        /* messages are logged: duplicate, similar or a user window */
    uint32_t njoin_rules; /* rules with `joins` (their filters are recorded per join) */
    uint64_t join_ids[WH_MAX_JOIN_RULES]; /* by bit: XXH3 of each join rule's id, so a snapshot
                                             maps the bits it saved to the rules loaded now */
    uint32_t join_log_cap;    /* joins remembered per channel for targets (<= WH_JOIN_LOG_MAX) */
    int64_t join_keep_ms;     /* the longest join window */
    double wave_threshold;    /* the lowest threshold of any wave rule (clusters use it) */
    int64_t wave_within_ms;   /* the longest window of any wave rule */
    uint32_t wave_min_length; /* the smallest min_length of any wave rule */
    uint32_t wave_max_users;  /* the largest users of any wave rule */
} wh_state_cfg;

typedef struct {
    char **v;
    uint32_t n;
} wh_strset;

bool wh_strset_has(const wh_strset *s, wh_str x); /* ASCII case-insensitive */

typedef struct {
    char *id;
    char *description;
    char *reason;  /* template, may be NULL */
    char *message; /* warn text, may be NULL */
    int64_t priority;
    bool shadow;
    wh_action action;
    uint32_t duration_s;
    wh_cond *when;
    bool escalate;   /* the ladder picks the action by active strikes */
    wh_step *ladder; /* own ladder, or NULL for the ruleset's */
    uint32_t nladder;
    double weight;       /* strikes an enforced action adds (default 1) */
    int8_t chan_mode;    /* channel_action mode, or -1 */
    uint32_t chan_for_s; /* channel_action duration */
    bool on_join;        /* applies to join events (has `joins`), else to messages */
    bool implicit_allow; /* no action, only a channel_action: allows, but sets no floor */
    bool has_wave;       /* a wave predicate may name targets */
    int16_t join_slot;   /* the channel slot of its (first) `joins`, or -1 */
    uint8_t join_bit;    /* its bit in a join's filter mask (< WH_MAX_JOIN_RULES), or 255 */
    bool req_links;      /* the condition cannot hold on a message without links */
    int32_t req_group;   /* a match group the condition cannot hold without, or -1: lets the
                            engine skip most rules of a message in one test */
    wh_strset roles, exempt_roles, channels, platforms;
    uint32_t line, col, order;
} wh_rule;

/* A match group: the patterns of one `words` or `regex` predicate. */
typedef struct {
    int32_t permit_set; /* the unless_words set that can cancel its matches, or -1 */
    uint32_t rule;      /* index of the owning rule */
} wh_group;

typedef struct {
    uint32_t group;
    int32_t permit_set;
    uint32_t rule;
    const char *source; /* the term/regex as written */
    uint32_t line, col; /* where it was written (the list file line for list terms) */
    const char *file;
} wh_pattern_info;

/* What the engine tests first for every rule and event, packed apart from the rules (8
 * bytes each instead of a 192-byte rule per test: the loop over rules stays in a few cache
 * lines). */
typedef struct {
    int32_t req_group; /* wh_rule.req_group */
    uint8_t on_join;   /* wh_rule.on_join */
    uint8_t req_links; /* wh_rule.req_links */
    uint8_t scoped;    /* the rule has platforms, channels, roles or exempt_roles */
    uint8_t pad;
} wh_rule_gate;

/* A classifier the rules name (`models:`): its labels fill score slots slot0 .. slot0 +
 * labels - 1, named "model" (one label) or "model.label" in decisions. */
typedef struct {
    char *name;
    char *path; /* the file, as resolved */
    wh_model *model;
    uint32_t slot0;
} wh_rmodel;

typedef struct wh_ruleset {
    atomic_int refs;
    wh_rule *rules;      /* sorted: priority desc, then file order */
    wh_rule_gate *gates; /* one per rule, same order */
    uint32_t nrules;
    wh_group *groups;
    uint32_t ngroups;
    uint32_t npermit_sets;
    wh_pattern_info *pats;
    uint32_t npats;
    wh_matcher *matcher;
    wh_strset exempt_roles;
    wh_state_cfg state;
    wh_rmodel *models;
    uint32_t nmodels;
    uint32_t nscores;   /* score slots: the labels of every model */
    char **score_names; /* per slot, as decisions name it */
    char hash[17];      /* identifies the ruleset in decisions */
    char *path;
    wh_arena arena; /* owns every string and node above */
} wh_ruleset;

typedef struct {
    const char *cache_dir; /* Hyperscan database cache; NULL disables */
    bool compile;          /* false: check only, do not build the matcher */
    bool lint;             /* also compile each regex alone in Hyperscan, to name every one it
                              rejects (slow for big rulesets; loads for serving skip it) */
} wh_load_opts;

/* Loads and compiles a rules file. Every problem found is added to diags; the ruleset is
 * returned only when there were none. */
wh_status wh_ruleset_load(const char *path, const wh_load_opts *opts, wh_diags *diags,
                          wh_ruleset **out);
/* The same, from YAML text in memory; list files resolve relative to base_dir. */
wh_status wh_ruleset_load_mem(const char *label, const char *base_dir, const char *text, size_t len,
                              const wh_load_opts *opts, wh_diags *diags, wh_ruleset **out);
void wh_ruleset_retain(wh_ruleset *rs);
void wh_ruleset_release(wh_ruleset *rs);

#endif
