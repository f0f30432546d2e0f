/* normalize.h - the text views of ARCHITECTURE.md, built once per event.
 *
 *   raw       the text as sent
 *   folded    NFKC + case fold (utf8proc), zero-width/format chars removed, quotes/dashes lumped
 *   skeleton  folded + UTS #39 confusables / fancy fonts / accents mapped to ASCII (generated
 *             table, see tools/gen_skeleton.c), zalgo marks dropped, leetspeak mapped inside
 *             letter runs
 *   squashed  skeleton with separators turned to spaces and runs of >= 3 spaced-out single
 *             letters joined ("f u c k" -> "fuck"); real words are never joined
 *
 * Every view byte maps back to a [start, end) range of raw bytes, so a match in any view
 * can be reported as a span of the text the user actually sent. All memory comes from the
 * caller's arena. */
#ifndef WH_NORMALIZE_H
#define WH_NORMALIZE_H

#include "base/base.h"

typedef enum {
    WH_VIEW_RAW = 0,
    WH_VIEW_FOLDED,
    WH_VIEW_SKELETON,
    WH_VIEW_SQUASHED,
    WH_VIEW_COLLAPSED, /* internal: squashed with letter runs collapsed and l -> i; only for
                          the Hyperscan prefilter of word lists (no offset map) */
    WH_VIEW__COUNT
} wh_view_id;
#define WH_VIEW__PUBLIC WH_VIEW_COLLAPSED /* views a rule may name */
/* Bytes past the collapsed view's terminator that may be read (never used): the matcher
 * reads its separators 64 bytes at a time. */
#define WH_VIEW_PAD 64

extern const char *const wh_view_names[WH_VIEW__COUNT];
bool wh_view_from_name(const char *name, size_t n, wh_view_id *out);

typedef struct {
    const char *s; /* NUL-terminated */
    uint32_t len;
    const uint32_t *start; /* raw start of each byte; NULL means identity */
    const uint32_t *end;   /* raw end of each byte; NULL means identity (start + 1) */
} wh_view;

#define WH_MAX_LINKS 16

typedef struct {
    uint32_t start, end; /* raw byte span of the whole link */
    wh_str host;         /* lowercased host, in the arena */
} wh_link;

typedef struct {
    uint32_t length;    /* code points */
    uint32_t letters;   /* L* */
    uint32_t upper;     /* Lu, Lt */
    uint32_t digits;    /* N* */
    uint32_t spaces;    /* Z*, ASCII whitespace */
    uint32_t symbols;   /* everything else visible (P*, S*) */
    uint32_t marks;     /* combining marks (zalgo) */
    uint32_t max_run;   /* longest run of one repeated code point */
    uint32_t non_latin; /* letters outside the Latin script */
    uint32_t mentions;  /* @name */
    uint32_t nlinks;    /* links found (may exceed WH_MAX_LINKS; only that many are kept) */
    wh_link links[WH_MAX_LINKS];
} wh_features;

typedef struct {
    wh_view v[WH_VIEW__COUNT];
    wh_features f;
    bool ascii;
    bool same_rf; /* raw and folded are the same bytes */
    bool same_fs; /* folded and skeleton are the same bytes */
} wh_text;

/* Builds all views and features of raw[0..n) (valid UTF-8). */
wh_status wh_text_build(const char *raw, uint32_t n, wh_arena *a, wh_text *out);

/* The ASCII text's pass of wh_text_build (exposed for its test): raw[0..n) lowercased into
 * fo and sk (n bytes each, not terminated; each needs 16 bytes of room past n, which it
 * may overwrite), the class counts and max_run into f, whether a leetspeak character
 * occurs, whether two doubled letters follow each other ("ffuu"). */
void wh_ascii_pass(const char *raw, uint32_t n, char *fo, char *sk, wh_features *f, bool *leet,
                   bool *pairs);

/* Maps a [from, to) span of a view to a raw span. */
void wh_view_to_raw(const wh_view *v, uint32_t from, uint32_t to, uint32_t *rs, uint32_t *re);

/* The collapsed form of a squashed string (see WH_VIEW_COLLAPSED), into out (n + 1 bytes). */
uint32_t wh_collapse(const char *s, uint32_t n, char *out);

/* Normalizes a rule term to the given view (NUL-terminated, arena memory). */
const char *wh_normalize_term(const char *term, size_t n, wh_view_id view, wh_arena *a,
                              uint32_t *out_len);

#endif
