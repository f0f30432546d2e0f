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
 * released with the matching function named next to it. */
#ifndef WHIPLY_H
#define WHIPLY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct whiply_engine whiply_engine;

typedef enum {
    WHIPLY_OK = 0,
    WHIPLY_ERULES = 2, /* the rules do not load; the diagnostics say why */
    WHIPLY_ENOMEM = 3,
    WHIPLY_EINVAL = 4,
} whiply_status;

typedef struct {
    const char *cache_dir; /* compiled-database cache; NULL: none */
    int explain;           /* add term, text and feature values to decisions */
} whiply_options;

/* Loads and compiles a rules file. On WHIPLY_ERULES, *diagnostics (free with whiply_free)
 * holds one "file:line:col: error: message" line per problem. */
whiply_status whiply_engine_open(const char *rules_path, const whiply_options *opts,
                                 whiply_engine **out, char **diagnostics);

/* A second engine on the same ruleset, for another thread. */
whiply_status whiply_engine_clone(const whiply_engine *e, whiply_engine **out);

/* Decides one event (one JSON object, as in docs/api.md). *decision (free with whiply_free)
 * is one JSON line without the trailing newline: the decision, or an error object when the
 * event is malformed. now_ms is the receive time used when the event has no "ts". */
whiply_status whiply_decide(whiply_engine *e, const char *event, size_t len, long long now_ms,
                            char **decision, size_t *decision_len);

void whiply_engine_close(whiply_engine *e);
void whiply_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
