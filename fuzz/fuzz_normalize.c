/* fuzz_normalize.c - valid UTF-8 text through wh_text_build (and the behaviour sketch).
 *
 * Invalid UTF-8 is rejected up front (the decoder guarantees wh_text_build never sees it).
 * For every view: the bytes are valid UTF-8, every byte maps back to a raw span
 * [start, end) with start < end <= raw length, and the derived views are NUL-terminated.
 * wh_view_to_raw and the link spans are checked the same way. The input buffer is
 * libFuzzer's exact-size copy, so reading raw[n] is caught by ASan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/sketch.h"
#include "text/normalize.h"
#include "text/utf8.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_normalize: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Views from WH_VIEW__PUBLIC on (when the header has it) are internal prefilter views
 * without an offset map: their bytes are checked, their map is not. */
#ifdef WH_VIEW__PUBLIC
#define MAPPED_VIEWS WH_VIEW__PUBLIC
#else
#define MAPPED_VIEWS WH_VIEW__COUNT
#endif

static void check_view(const wh_view *v, int vi, const char *raw, uint32_t n)
{
    CHECK(v->s != NULL || v->len == 0);
    if (vi == WH_VIEW_RAW) {
        /* the raw view is the caller's text itself: no copy, identity map */
        CHECK(v->s == raw && v->len == n && !v->start && !v->end);
    } else {
        CHECK(v->s[v->len] == 0);
    }
    CHECK(wh_utf8_invalid_at(v->s, v->len) == (size_t)-1);
    if (vi >= MAPPED_VIEWS) return;
    if (!v->start) {
        /* identity: view byte i is raw byte i */
        CHECK(v->len <= n);
    }
    for (uint32_t i = 0; i < v->len; i++) {
        uint32_t s = v->start ? v->start[i] : i;
        uint32_t e = v->end ? v->end[i] : s + 1;
        CHECK(s <= n && e <= n);
        CHECK(s < e);
    }
    /* whole view, and a few sub-spans, through the public mapping */
    uint32_t rs, re;
    if (v->len) {
        wh_view_to_raw(v, 0, v->len, &rs, &re);
        CHECK(rs <= re && re <= n);
        uint32_t mid = v->len / 2;
        wh_view_to_raw(v, mid, v->len, &rs, &re);
        CHECK(rs <= n && re <= n);
        wh_view_to_raw(v, 0, mid ? mid : 1, &rs, &re);
        CHECK(rs <= n && re <= n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *raw = (const char *)data;
    if (size > UINT32_MAX || wh_utf8_invalid_at(raw, size) != (size_t)-1) return -1;
    uint32_t n = (uint32_t)size;

    wh_arena a;
    wh_arena_init(&a, 4096);
    wh_text t;
    wh_status st = wh_text_build(raw, n, &a, &t);
    CHECK(st == WH_OK);
    for (int vi = 0; vi < WH_VIEW__COUNT; vi++)
        check_view(&t.v[vi], vi, raw, n);
    CHECK(t.ascii == wh_is_ascii(raw, n));
    const wh_features *f = &t.f;
    CHECK(f->length <= n);
    CHECK(f->letters <= f->length && f->upper <= f->letters);
    CHECK(f->max_run <= f->length);
    uint32_t kept = f->nlinks < WH_MAX_LINKS ? f->nlinks : WH_MAX_LINKS;
    for (uint32_t i = 0; i < kept; i++) {
        const wh_link *l = &f->links[i];
        CHECK(l->start < l->end && l->end <= n);
        CHECK(l->host.n == 0 || l->host.p != NULL);
    }
    /* the sketch of the squashed view (what duplicate/similar/wave remember), and of the
     * raw bytes, which are no view at all: any bytes must be safe */
    wh_sketch sk, sk2;
    wh_sketch_text(t.v[WH_VIEW_SQUASHED].s, t.v[WH_VIEW_SQUASHED].len, &sk);
    CHECK(sk.length <= t.v[WH_VIEW_SQUASHED].len);
    CHECK(sk.hash != 0 || sk.length == 0); /* no words, no hash */
    wh_sketch_text(raw, n, &sk2);
    wh_sketch_text(t.v[WH_VIEW_SQUASHED].s, t.v[WH_VIEW_SQUASHED].len, &sk2);
    CHECK(sk2.hash == sk.hash && sk2.sim == sk.sim && sk2.length == sk.length);
    wh_arena_free(&a);
    return 0;
}
