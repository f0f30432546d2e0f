/* whiply.h - the public C API for embedding the whiply engine.
 *
 * One whiply_engine holds a compiled ruleset, one thread's scratch and, when the rules
 * have behaviour predicates (rates, duplicates, waves, strikes...), the state they keep.
 * It is not safe to use from two threads at once: give each thread its own, made with
 * whiply_engine_clone, which shares the (immutable, reference-counted) ruleset instead of
 * compiling it again. A clone starts with empty state of its own, so send all the events
 * of one channel to the same engine, in order.
 *
 * Ownership: every pointer returned through an out-parameter belongs to the caller and is
 * released with the matching function named next to it, except the strings of a
 * whiply_verdict and the JSON of whiply_verdict_json, which belong to the engine (see
 * there).
 *
 * Building against the installed library: cc app.c $(pkg-config --cflags --libs whiply).
 * For libwhiply.a instead of libwhiply.so, name it (-l:libwhiply.a in place of -lwhiply) and
 * take the libraries it needs from pkg-config --static --libs whiply (docs/api.md). */
#ifndef WHIPLY_H
#define WHIPLY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The shared library exports these names and nothing else. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define WHIPLY_API __attribute__((visibility("default")))
#else
#define WHIPLY_API
#endif

typedef struct whiply_engine whiply_engine;

typedef enum {
    WHIPLY_OK = 0,
    WHIPLY_ERULES = 2, /* the rules do not load; the diagnostics say why */
    WHIPLY_ENOMEM = 3,
    WHIPLY_EINVAL = 4,
} whiply_status;

/* The library's version, "MAJOR.MINOR.PATCH" (static storage). */
WHIPLY_API const char *whiply_version(void);

/* A short English phrase for st ("out of memory"), "unknown status" for a value that is
 * not a whiply_status (static storage). */
WHIPLY_API const char *whiply_strerror(whiply_status st);

/* ---- options ----
 *
 * Two ways to pass them. New code: whiply_opts, an opaque handle with one setter per option,
 * given to whiply_engine_open_opts; options added later get a setter of their own, so code
 * written against this header keeps compiling and linking. The plain struct whiply_options
 * and whiply_engine_open are the first version's; they stay for existing callers and get
 * no new fields. */

typedef struct whiply_opts whiply_opts;

/* Options with the defaults: no database cache, no explanations, the default JSON nesting
 * limit of an event. NULL when out of memory. Free with whiply_opts_free. */
WHIPLY_API whiply_opts *whiply_opts_new(void);
WHIPLY_API void whiply_opts_free(whiply_opts *o);

/* Where compiled Hyperscan databases are cached, so that a second open of the same rules
 * skips the compile; NULL: no cache. The string is copied. */
WHIPLY_API whiply_status whiply_opts_set_cache_dir(whiply_opts *o, const char *dir);
/* Non-zero: decisions (the JSON) name the terms, texts and feature values that fired. */
WHIPLY_API whiply_status whiply_opts_set_explain(whiply_opts *o, int explain);
/* How deeply an event's JSON may nest, 2 to 32 (the default); WHIPLY_EINVAL otherwise. A
 * deeper event is a "too_deep" error. */
WHIPLY_API whiply_status whiply_opts_set_max_depth(whiply_opts *o, int depth);

typedef struct {
    const char *cache_dir; /* compiled-database cache; NULL: none */
    int explain;           /* add term, text and feature values to decisions */
} whiply_options;

/* Loads and compiles a rules file; opts may be NULL (the defaults) and is not kept. On
 * WHIPLY_ERULES, *diagnostics (free with whiply_free) holds one "file:line:col: error:
 * message" line per problem. */
WHIPLY_API whiply_status whiply_engine_open_opts(const char *rules_path, const whiply_opts *opts,
                                                 whiply_engine **out, char **diagnostics);
/* The same with the first version's options struct. */
WHIPLY_API whiply_status whiply_engine_open(const char *rules_path, const whiply_options *opts,
                                            whiply_engine **out, char **diagnostics);

/* A second engine on the same ruleset, for another thread. */
WHIPLY_API whiply_status whiply_engine_clone(const whiply_engine *e, whiply_engine **out);

/* ---- deciding ---- */

/* Decides one event (one JSON object, as in docs/api.md). *decision (free with whiply_free)
 * is one JSON line without the trailing newline: the decision, or an error object when the
 * event is malformed. now_ms is the receive time used when the event has no "ts". */
WHIPLY_API whiply_status whiply_decide(whiply_engine *e, const char *event, size_t len,
                                       long long now_ms, char **decision, size_t *decision_len);

/* The actions, weakest first (the order in which the strongest wins). */
typedef enum {
    WHIPLY_ACTION_ALLOW = 0,
    WHIPLY_ACTION_WARN,
    WHIPLY_ACTION_HOLD,
    WHIPLY_ACTION_DELETE,
    WHIPLY_ACTION_TIMEOUT,
    WHIPLY_ACTION_BAN,
} whiply_action;

/* "allow", "warn", ... as decisions write them; NULL for a value that is not an action. */
WHIPLY_API const char *whiply_action_name(whiply_action a);

/* A term or regex of a rule that fired, found in the event's text. */
typedef struct {
    const char *rule;  /* the rule's id */
    const char *view;  /* the view of the text it was found in, as decisions name it */
    size_t start, end; /* bytes [start, end) of the verdict's text */
} whiply_match;

/* A decision as data: the same facts as its JSON (docs/api.md, "The decision").
 *
 * Every pointer in it points into the engine that filled it: the strings stay valid until
 * that engine decides again (whiply_decide, whiply_decide_verdict) or is closed. Copy what
 * must live longer. Strings are NUL-terminated; "or NULL" says when there may be none. The
 * caller allocates the struct, so its size is part of the library's ABI: fields are added
 * only with a new major version (soname libwhiply.so.N). */
typedef struct {
    const char *id; /* the event's id; NULL for a malformed line whose id could not be read */
    whiply_action action;
    unsigned duration_s;      /* TIMEOUT: seconds; 0 otherwise */
    const char *message;      /* WARN: the deciding rule's text for the user, or NULL */
    const char *rule;         /* the deciding rule's id, or NULL when no rule fired */
    const char *reason;       /* the deciding rule's reason, placeholders filled, or NULL */
    long long strike;         /* the user's whole strikes after this decision, or -1: none added */
    const char *const *rules; /* every enforced rule that fired, in the order they ran */
    size_t nrules;
    /* a channel mode the decision switches on, or NULL ("followers_only", "slow", ...) */
    const char *channel_mode;
    unsigned channel_duration_s;
    /* users the action also reaches: a completed wave's senders or a raid's joiners */
    const char *const *targets;
    size_t ntargets;
    const whiply_match *matches; /* what the rules that fired found in the text */
    size_t nmatches;
    int matches_truncated; /* there were more than a decision reports */
    const char *text;      /* the event's text, JSON escapes undone (what the match */
    size_t text_len;       /* spans count bytes of), or NULL: none */
    /* Non-zero when the rules did not decide the line: it was not an event (error_code
     * "bad_json", "bad_utf8", "too_deep", "missing_id"... as docs/api.md lists; only id may
     * be set besides), or its text could not be normalized ("internal"). action is then
     * WHIPLY_ACTION_ALLOW. */
    int error;
    const char *error_code;    /* or NULL */
    const char *error_message; /* a sentence naming the problem (and its byte), or NULL */
} whiply_verdict;

/* Decides one event, as whiply_decide does, and fills *out with the verdict (see
 * whiply_verdict for how long its strings live). A malformed event is WHIPLY_OK with
 * out->error set. */
WHIPLY_API whiply_status whiply_decide_verdict(whiply_engine *e, const char *event, size_t len,
                                               long long now_ms, whiply_verdict *out);

/* The decision JSON of the event e decided last (one line, no newline, NUL-terminated: what
 * whiply_decide would have returned), without deciding it again. *json belongs to e and
 * lives as the verdict's strings do. WHIPLY_EINVAL when e has decided nothing yet. */
WHIPLY_API whiply_status whiply_verdict_json(whiply_engine *e, const char **json, size_t *len);

WHIPLY_API void whiply_engine_close(whiply_engine *e);
WHIPLY_API void whiply_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
