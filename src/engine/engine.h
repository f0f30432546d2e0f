/* engine.h - one event through the pipeline: decode -> normalize -> scan -> features ->
 * rules -> verdict -> decision JSON. A wh_worker is one thread's private state (arena,
 * decoder, Hyperscan/PCRE2 scratch); the ruleset is shared and immutable. */
#ifndef WH_ENGINE_H
#define WH_ENGINE_H

#include "base/base.h"
#include "io/event.h"
#include "rules/rules.h"

typedef struct {
    bool explain; /* add term, text and feature values to decisions */
} wh_engine_opts;

typedef struct wh_worker wh_worker;

/* The worker keeps a reference to rs (released by wh_worker_free). */
wh_worker *wh_worker_new(wh_ruleset *rs, const wh_engine_opts *opts);
void wh_worker_free(wh_worker *w);

typedef struct {
    bool error;       /* the line was not an event */
    wh_action action; /* valid when !error */
} wh_outcome;

/* Decides one NDJSON line (without its newline) and appends exactly one JSON line (with
 * its newline) to out. line_no is the 1-based input line number, used in errors. */
wh_outcome wh_worker_line(wh_worker *w, const char *line, size_t len, uint64_t line_no,
                          int64_t now_ms, wh_buf *out);

/* Appends the error line for an input line that was too long to be read at all. */
void wh_write_line_error(wh_buf *out, uint64_t line_no, const char *code, const char *message);

#endif
