/* fuzz_model.c - bytes -> wh_model_from_mem (the model file loader), twice: as given, and
 * with the trailing checksum recomputed, so that the structural checks behind the checksum
 * are fuzzed too (a random input almost never carries a matching checksum).
 *
 * Checks: a loaded model has 1..64 named labels and feature settings inside their bounds,
 * and scores a text to probabilities in [0, 1]; a refused one says why. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ml/ml.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_model: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void one(const uint8_t *p, size_t n)
{
    wh_error err = {0};
    wh_model *m = wh_model_from_mem(p, n, &err);
    if (!m) {
        CHECK(err.message[0] && err.code != WH_OK);
        return;
    }
    uint32_t nl = wh_model_nlabels(m);
    CHECK(nl >= 1 && nl <= WH_ML_MAX_LABELS);
    for (uint32_t i = 0; i < nl; i++)
        CHECK(wh_model_label(m, i)[0]);
    const wh_ml_fcfg *f = wh_model_fcfg(m);
    CHECK(f->bits >= 10 && f->bits <= 24 && f->word_ngrams >= 1 && f->word_ngrams <= 3);
    wh_arena a;
    wh_arena_init(&a, 4096);
    wh_text t;
    wh_ml_fv fv = {0};
    float s[WH_ML_MAX_LABELS];
    static const char text[] = "Fr33 n1tro!!! at https://scam.example.com, click now";
    CHECK(wh_text_build(text, sizeof(text) - 1, &a, &t) == WH_OK);
    CHECK(wh_model_score(m, &t, &fv, s));
    for (uint32_t i = 0; i < nl; i++)
        CHECK(s[i] >= 0 && s[i] <= 1);
    wh_ml_fv_free(&fv);
    wh_arena_free(&a);
    wh_model_release(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size < 80) return 0;
    uint8_t *p = malloc(size);
    if (!p) return 0;
    memcpy(p, data, size);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, size - sizeof(c)));
    memcpy(p + size - sizeof(c), &c, sizeof(c));
    one(p, size);
    free(p);
    return 0;
}
