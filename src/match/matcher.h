/* matcher.h - every pattern of a ruleset compiled into one Hyperscan database per view.
 *
 * Hyperscan finds which patterns occur (one scan per view per event); PCRE2 then runs
 * only the patterns that fired, to confirm prefilter-only patterns and to recover exact
 * spans; a word term only around the words where Hyperscan saw it end, so a message's cost
 * grows with its length, not with its length times the distinct terms in it. Compiled databases are
 * cached on disk under a hash of the patterns, their order, their flags, the Hyperscan version and
 * the CPU platform.
 *
 * Ownership: wh_matcher owns copies of every pattern string. A wh_matcher is immutable
 * once built and shared by all threads; each thread owns a wh_match_scratch. */
#ifndef WH_MATCHER_H
#define WH_MATCHER_H

#include "base/base.h"
#include "text/normalize.h"

typedef enum { WH_PAT_WORD, WH_PAT_REGEX } wh_pat_kind;

typedef struct {
    wh_pat_kind kind;
    wh_view_id view;
    const char *source; /* as written (the term, or the regex) */
    const char *expr;   /* for WORD: the normalized term with '*' markers; REGEX: the regex */
    uint32_t group;     /* the predicate (match group) it belongs to */
    int32_t permit_set; /* >= 0: a permitted (unless_words) pattern of that set */
    int32_t cancel_set; /* >= 0: spans inside a match of that permit set do not count */
    bool prefix_star, suffix_star; /* WORD only */
    bool literal; /* WORD only: a term with no letters or digits (an emoji): exact bytes */
} wh_pattern_spec;

typedef struct wh_matcher wh_matcher;
typedef struct wh_match_scratch wh_match_scratch;

typedef struct {
    uint32_t pattern; /* index into the specs given to wh_matcher_build */
    wh_view_id view;
    uint32_t vs, ve; /* span in the view */
    uint32_t rs, re; /* span in the raw text */
} wh_match;

/* Compile-time diagnostics for one pattern. */
typedef void (*wh_pattern_error_fn)(void *ud, uint32_t pattern, const char *message);

typedef struct {
    const char *cache_dir; /* NULL: no on-disk cache */
    bool *cache_hit;       /* optional out: every database came from the cache */
} wh_matcher_opts;

/* Checks one regex alone: NULL when usable, else a malloc'd message. PCRE2 always; Hyperscan
 * too with full (costly: the ruleset's database reports the same errors when it is built). */
char *wh_regex_check(const char *regex, wh_view_id view, bool full);

wh_status wh_matcher_build(const wh_pattern_spec *specs, uint32_t n, const wh_matcher_opts *opts,
                           wh_pattern_error_fn on_error, void *ud, wh_matcher **out);
void wh_matcher_free(wh_matcher *m);

wh_match_scratch *wh_match_scratch_new(const wh_matcher *m);
void wh_match_scratch_free(wh_match_scratch *s);

/* Scans the views of one text. Permitted patterns cancel the spans they cover; every other
 * pattern with at least one span left is "confirmed" (see wh_match_confirmed), however many
 * spans there are. out[] receives up to cap of the surviving spans, in pattern order then
 * position; *truncated is set when some were not stored. Returns the number stored. */
uint32_t wh_matcher_scan(const wh_matcher *m, wh_match_scratch *s, const wh_text *t, wh_match *out,
                         uint32_t cap, bool *truncated);
/* The patterns confirmed by the last scan (ascending indexes). */
const uint32_t *wh_match_confirmed(const wh_match_scratch *s, uint32_t *n);

/* Tests only: with whole set, PCRE2 searches every reported pattern's whole view from offset
 * 0 instead of the windows around Hyperscan's end offsets; the reference the windows must
 * agree with, span for span. */
void wh_match_scratch_set_whole(wh_match_scratch *s, bool whole);

#endif
