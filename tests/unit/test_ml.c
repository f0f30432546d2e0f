/* test_ml.c - the classifier: features, training, model files, metrics, rules. */
#define _GNU_SOURCE /* memmem */
#include <math.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "helpers.h"
#include "ml/ml.h"
#include "t.h"

#define ASSERT_NEAR(a, b, eps)                                                                     \
    do {                                                                                           \
        double _a = (a), _b = (b);                                                                 \
        if (fabs(_a - _b) > (eps)) T_FAIL("%s == %s: %.9g != %.9g", #a, #b, _a, _b);               \
    } while (0)

/* ---- features ---- */

typedef struct {
    char names[512][64];
    uint32_t buckets[512];
    unsigned kinds[512];
    int n;
} named;

static void collect(void *ud, uint32_t bucket, unsigned kind, const char *name, size_t n)
{
    named *x = ud;
    if (x->n == 512 || n >= 64) return;
    memcpy(x->names[x->n], name, n);
    x->names[x->n][n] = 0;
    x->kinds[x->n] = kind;
    x->buckets[x->n++] = bucket;
}

static bool has_name(const named *x, const char *s)
{
    for (int i = 0; i < x->n; i++)
        if (!strcmp(x->names[i], s)) return true;
    return false;
}

static const wh_ml_fcfg fcfg = {.bits = 18, .word_ngrams = 2, .char_lo = 3, .char_hi = 4};

static void features_of(const char *text, named *out, wh_ml_fv *fv)
{
    wh_arena a;
    wh_arena_init(&a, 4096);
    wh_text t;
    ASSERT(wh_text_build(text, (uint32_t)strlen(text), &a, &t) == WH_OK);
    memset(out, 0, sizeof(*out));
    ASSERT(wh_ml_featurize_named(&fcfg, &t, fv, collect, out));
    wh_arena_free(&a);
}

TEST(features_words_bigrams_chars_symbols_hosts)
{
    named x;
    wh_ml_fv fv = {0};
    features_of("Free NITRO!!! at scam.example.com", &x, &fv);
    ASSERT(has_name(&x, "w:free"));
    ASSERT(has_name(&x, "w:nitro"));
    ASSERT(has_name(&x, "w:free nitro"));
    ASSERT(has_name(&x, "c:_fr"));
    ASSERT(has_name(&x, "c:ree_"));
    ASSERT(has_name(&x, "p:!!!"));
    ASSERT(has_name(&x, "h:scam.example.com"));
    ASSERT(!has_name(&x, "w:nitro free"));
    ASSERT_EQ(fv.n, (uint32_t)x.n); /* one bucket per named occurrence */
    /* values: a unit vector */
    double ss = 0;
    for (uint32_t i = 0; i < fv.nu; i++)
        ss += (double)fv.x[i] * fv.x[i];
    ASSERT_NEAR(ss, 1.0, 1e-5);
    wh_ml_fv_free(&fv);
}

TEST(features_see_through_evasions)
{
    /* leetspeak and spacing look like the words they hide: same word features */
    named a, b, c;
    wh_ml_fv fv = {0};
    features_of("free nitro", &a, &fv);
    features_of("fr33 n1tr0", &b, &fv);
    features_of("f r e e nitro", &c, &fv);
    ASSERT(has_name(&b, "w:free"));
    ASSERT(has_name(&b, "w:free nitro"));
    ASSERT(has_name(&c, "c:free"));
    ASSERT(has_name(&c, "c:_fre"));
    wh_ml_fv_free(&fv);
}

TEST(features_counts_are_sublinear)
{
    named x;
    wh_ml_fv fv = {0};
    features_of("spam spam spam spam", &x, &fv);
    /* the unigram "spam" occurs 4 times: value (1 + ln 4) / norm, above any single one */
    float maxx = 0, minx = 1;
    for (uint32_t i = 0; i < fv.nu; i++) {
        if (fv.x[i] > maxx) maxx = fv.x[i];
        if (fv.x[i] < minx) minx = fv.x[i];
    }
    ASSERT(maxx > minx);
    ASSERT(maxx / minx < 4.0f); /* less than the raw count ratio */
    wh_ml_fv_free(&fv);
}

typedef struct {
    uint32_t b;
    double x;
} bv;

static int bv_cmp(const void *p, const void *q)
{
    const bv *a = p, *b = q;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    return (a->x > b->x) - (a->x < b->x);
}

TEST(features_of_each_kind_weigh_alike)
{
    /* 12 words and their bigrams beside ~200 character n-grams, a symbol run and a host */
    named x;
    wh_ml_fv fv = {0};
    features_of("cheap pills cheap pills now!!! visit pills.example.com today for the best "
                "prices",
                &x, &fv);
    ASSERT(x.n < 512);
    /* the kinds, from the names */
    for (int i = 0; i < x.n; i++) {
        const char *nm = x.names[i];
        unsigned want = nm[0] == 'p'   ? WH_MLK_SYMBOL
                        : nm[0] == 'h' ? WH_MLK_HOST
                        : nm[0] == 'c' ? WH_MLK_CHAR + (unsigned)strlen(nm + 2) - fcfg.char_lo
                                       : WH_MLK_WORD + (strchr(nm, ' ') ? 1 : 0);
        if (x.kinds[i] != want) T_FAIL("%s: kind %u, want %u", nm, x.kinds[i], want);
    }
    /* expected values from the names: (1 + ln count) per (kind, bucket), each kind scaled
     * to length 1/sqrt(kinds) */
    double want_x[512], ss[WH_ML_KINDS] = {0};
    uint32_t key[512];
    int nk = 0;
    for (int i = 0; i < x.n; i++) {
        uint32_t k = x.buckets[i] | x.kinds[i] << WH_ML_KIND_SHIFT;
        int j = 0;
        while (j < nk && key[j] != k)
            j++;
        if (j == nk) key[nk] = k, want_x[nk++] = 0;
        want_x[j] += 1;
    }
    ASSERT_EQ(fv.nu, (uint32_t)nk);
    for (int j = 0; j < nk; j++) {
        want_x[j] = 1 + log(want_x[j]);
        ss[key[j] >> WH_ML_KIND_SHIFT] += want_x[j] * want_x[j];
    }
    int kinds = 0;
    for (int k = 0; k < WH_ML_KINDS; k++)
        kinds += ss[k] > 0;
    ASSERT_EQ(kinds, 6); /* words, bigrams, symbols, hosts, 3- and 4-grams */
    /* fv lists the same (bucket, value) pairs, in its own order */
    bv want[512], got[512];
    double per_kind[WH_ML_KINDS] = {0};
    for (int j = 0; j < nk; j++) {
        uint32_t k = key[j] >> WH_ML_KIND_SHIFT;
        want[j] = (bv){key[j] & WH_ML_BUCKET_MASK, want_x[j] / sqrt(ss[k]) / sqrt(kinds)};
        per_kind[k] += want[j].x * want[j].x;
        ASSERT_NEAR(fv.kscale[k], 1 / sqrt(ss[k]) / sqrt(kinds), 1e-6);
        got[j] = (bv){fv.u[j], fv.x[j]};
    }
    qsort(want, (size_t)nk, sizeof(bv), bv_cmp);
    qsort(got, (size_t)nk, sizeof(bv), bv_cmp);
    double total = 0;
    for (int j = 0; j < nk; j++) {
        ASSERT_EQ(got[j].b, want[j].b);
        ASSERT_NEAR(got[j].x, want[j].x, 1e-6);
        total += got[j].x * got[j].x;
    }
    ASSERT_NEAR(total, 1.0, 1e-5);
    /* the one host weighs as much as the ~70 character 3-grams together */
    ASSERT_NEAR(per_kind[WH_MLK_HOST], per_kind[WH_MLK_CHAR], 1e-6);
    ASSERT_NEAR(per_kind[WH_MLK_WORD], 1.0 / kinds, 1e-6);
    wh_ml_fv_free(&fv);
}

/* ---- training ---- */

static const char *const spam_fix[] = {
    "buy cheap pills now",        "cheap pills online, buy now", "win a free prize now",
    "free money, click here now", "claim your free prize today", "cheap watches, buy today",
    "click here for free money",  "buy now and win cash",        "free cash prize, click now",
    "limited offer: cheap pills",
};
static const char *const ham_fix[] = {
    "see you at the meeting tomorrow", "the meeting moved to friday", "can you review my patch",
    "lunch at noon with the team?",    "thanks for the review",       "the build is green again",
    "notes from the meeting attached", "let us talk about the patch", "who is coming to lunch",
    "the team review is on friday",
};

static void fixture(wh_ml_example *ex, uint32_t *n)
{
    *n = 0;
    for (size_t i = 0; i < WH_ARRAY_LEN(spam_fix); i++)
        ex[(*n)++] = (wh_ml_example){spam_fix[i], (uint32_t)strlen(spam_fix[i]), 1};
    for (size_t i = 0; i < WH_ARRAY_LEN(ham_fix); i++)
        ex[(*n)++] = (wh_ml_example){ham_fix[i], (uint32_t)strlen(ham_fix[i]), 0};
}

static wh_model *train_fixture(uint64_t seed, wh_buf *bytes)
{
    wh_ml_example ex[32];
    uint32_t n;
    fixture(ex, &n);
    wh_ml_train_opts o;
    wh_ml_train_defaults(&o);
    o.f = fcfg;
    o.seed = seed;
    const char *labels[] = {"spam"};
    wh_error terr;
    wh_error merr;
    wh_buf_init(bytes);
    ASSERT(wh_ml_train(&o, labels, 1, ex, n, NULL, bytes, &terr) == WH_OK);
    wh_model *m = wh_model_from_mem(bytes->p, bytes->len, &merr);
    if (!m) T_FAIL("model refused: %.200s", merr.message);
    return m;
}

static float score_of(const wh_model *m, const char *text)
{
    wh_arena a;
    wh_arena_init(&a, 4096);
    wh_text t;
    wh_ml_fv fv = {0};
    float s[WH_ML_MAX_LABELS];
    ASSERT(wh_text_build(text, (uint32_t)strlen(text), &a, &t) == WH_OK);
    ASSERT(wh_model_score(m, &t, &fv, s));
    wh_ml_fv_free(&fv);
    wh_arena_free(&a);
    return s[0];
}

TEST(training_learns_the_fixture)
{
    wh_buf b;
    wh_model *m = train_fixture(1, &b);
    for (size_t i = 0; i < WH_ARRAY_LEN(spam_fix); i++)
        if (score_of(m, spam_fix[i]) < 0.8f)
            T_FAIL("spam '%s' scored %g", spam_fix[i], score_of(m, spam_fix[i]));
    for (size_t i = 0; i < WH_ARRAY_LEN(ham_fix); i++)
        if (score_of(m, ham_fix[i]) > 0.2f)
            T_FAIL("ham '%s' scored %g", ham_fix[i], score_of(m, ham_fix[i]));
    /* unseen sentences made of what it learned, and an evasion of one */
    ASSERT(score_of(m, "click now for cheap cash") > 0.5f);
    ASSERT(score_of(m, "review the meeting notes") < 0.5f);
    ASSERT(score_of(m, "fr33 m0ney, cl1ck h3re") > 0.5f);
    ASSERT_STR(wh_model_label(m, 0), "spam");
    ASSERT_EQ(wh_model_nlabels(m), 1);
    ASSERT_CONTAINS(wh_model_meta(m), "\"examples\":20");
    wh_model_release(m);
    wh_buf_free(&b);
}

TEST(same_seed_same_bytes)
{
    wh_buf a, b, c;
    wh_model *ma = train_fixture(7, &a), *mb = train_fixture(7, &b), *mc = train_fixture(8, &c);
    ASSERT_EQ(a.len, b.len);
    ASSERT(!memcmp(a.p, b.p, a.len));
    ASSERT_STR(wh_model_checksum(ma), wh_model_checksum(mb));
    ASSERT(a.len == c.len && memcmp(a.p, c.p, a.len)); /* another order: other weights */
    wh_model_release(ma);
    wh_model_release(mb);
    wh_model_release(mc);
    wh_buf_free(&a);
    wh_buf_free(&b);
    wh_buf_free(&c);
}

TEST(bagging_averages_the_runs_of_successive_seeds)
{
    wh_ml_example ex[32];
    uint32_t n;
    fixture(ex, &n);
    const char *labels[] = {"spam"};
    wh_error terr;
    wh_error merr;
    wh_ml_train_opts o;
    wh_ml_train_defaults(&o);
    ASSERT_EQ(o.bag, 3u);
    o.f = fcfg;
    o.seed = 5;
    wh_buf bag;
    wh_buf_init(&bag);
    ASSERT(wh_ml_train(&o, labels, 1, ex, n, NULL, &bag, &terr) == WH_OK);
    wh_model *mb = wh_model_from_mem(bag.p, bag.len, &merr);
    ASSERT(mb);
    ASSERT_CONTAINS(wh_model_meta(mb), "\"bag\":3");
    /* the same three runs one by one: run r draws its order from seed + r x 0x9E37... */
    wh_model *run[3];
    wh_buf rb[3];
    o.bag = 1;
    for (int r = 0; r < 3; r++) {
        o.seed = 5 + (uint64_t)r * 0x9E3779B97F4A7C15ULL;
        wh_buf_init(&rb[r]);
        ASSERT(wh_ml_train(&o, labels, 1, ex, n, NULL, &rb[r], &terr) == WH_OK);
        run[r] = wh_model_from_mem(rb[r].p, rb[r].len, &merr);
        ASSERT(run[r]);
    }
    ASSERT(memcmp(rb[0].p, rb[1].p, rb[0].len)); /* the runs differ */
    uint32_t nb = 1u << fcfg.bits, nonzero = 0;
    for (uint32_t i = 0; i < nb; i++) {
        double mean = ((double)wh_model_weight(run[0], i, 0) + wh_model_weight(run[1], i, 0) +
                       wh_model_weight(run[2], i, 0)) /
                      3;
        ASSERT_NEAR(wh_model_weight(mb, i, 0), mean, 1e-5);
        nonzero += mean != 0;
    }
    ASSERT(nonzero > 100);
    ASSERT_NEAR(
        wh_model_bias(mb, 0),
        (wh_model_bias(run[0], 0) + wh_model_bias(run[1], 0) + wh_model_bias(run[2], 0)) / 3, 1e-5);
    for (int r = 0; r < 3; r++) {
        wh_model_release(run[r]);
        wh_buf_free(&rb[r]);
    }
    wh_model_release(mb);
    wh_buf_free(&bag);
}

TEST(multi_label_models_score_each_label)
{
    const char *texts[] = {"you idiot",
                           "you stupid idiot",
                           "i will hurt you",
                           "i will find you",
                           "stupid, i will hurt you",
                           "have a nice day",
                           "good game, well played",
                           "nice stream today"};
    uint64_t bits[] = {1, 1, 2, 2, 3, 0, 0, 0}; /* 1 insult, 2 threat */
    wh_ml_example ex[8];
    for (int i = 0; i < 8; i++)
        ex[i] = (wh_ml_example){texts[i], (uint32_t)strlen(texts[i]), bits[i]};
    wh_ml_train_opts o;
    wh_ml_train_defaults(&o);
    o.f = fcfg;
    o.epochs = 30;
    const char *labels[] = {"insult", "threat"};
    wh_buf b;
    wh_buf_init(&b);
    wh_error terr;
    wh_error merr;
    ASSERT(wh_ml_train(&o, labels, 2, ex, 8, NULL, &b, &terr) == WH_OK);
    wh_model *m = wh_model_from_mem(b.p, b.len, &merr);
    ASSERT(m);
    ASSERT_EQ(wh_model_find_label(m, "threat"), 1);
    wh_arena a;
    wh_arena_init(&a, 4096);
    wh_text t;
    wh_ml_fv fv = {0};
    float s[2];
    ASSERT(wh_text_build("you idiot", 9, &a, &t) == WH_OK);
    ASSERT(wh_model_score(m, &t, &fv, s));
    ASSERT(s[0] > 0.5f && s[1] < 0.5f);
    ASSERT(wh_text_build("i will hurt you", 15, &a, &t) == WH_OK);
    ASSERT(wh_model_score(m, &t, &fv, s));
    ASSERT(s[0] < 0.5f && s[1] > 0.5f);
    wh_ml_fv_free(&fv);
    wh_arena_free(&a);
    wh_model_release(m);
    wh_buf_free(&b);
}

TEST(training_refuses_invalid_utf8)
{
    wh_ml_example ex[1] = {{"bad \xff byte", 10, 1}};
    wh_ml_train_opts o;
    wh_ml_train_defaults(&o);
    o.f = fcfg;
    const char *labels[] = {"spam"};
    wh_buf b;
    wh_buf_init(&b);
    wh_error terr;
    ASSERT(wh_ml_train(&o, labels, 1, ex, 1, NULL, &b, &terr) == WH_EUTF8);
    if (!strstr(terr.message, "example 1: invalid UTF-8 at byte 4"))
        T_FAIL("the refusal says: %.300s", terr.message);
    wh_buf_free(&b);
}

/* ---- model files ---- */

static void expect_refused(const void *p, size_t n, const char *why)
{
    wh_error merr;
    wh_model *m = wh_model_from_mem(p, n, &merr);
    if (m) {
        wh_model_release(m);
        T_FAIL("a bad model was accepted (want \"%s\")", why);
    }
    ASSERT_EQ(merr.code, WH_EINVAL);
    if (!strstr(merr.message, why)) T_FAIL("\"%.300s\" does not say \"%s\"", merr.message, why);
}

TEST(bad_model_files_are_refused_with_the_reason)
{
    wh_buf b;
    wh_model *m = train_fixture(1, &b);
    wh_model_release(m);
    char *p = malloc(b.len);
    memcpy(p, b.p, b.len);
    expect_refused(p, 0, "not a whiply model");
    expect_refused(p, 40, "truncated: 40 bytes, the header alone is 64");
    expect_refused(p, b.len - 100, "truncated");
    expect_refused("hello, world, this is not a model file at all, just some text..", 64,
                   "wrong magic bytes");
    p[8] = 3; /* version */
    expect_refused(p, b.len, "model version 3, but this whiply reads version 2");
    p[8] = 1; /* a model from before features were weighed per kind */
    expect_refused(p, b.len, "model version 1, but this whiply reads version 2");
    p[8] = 2;
    p[b.len / 2] ^= 0x40; /* one bit of one weight */
    expect_refused(p, b.len, "checksum mismatch");
    p[b.len / 2] ^= 0x40;
    wh_error merr;
    m = wh_model_from_mem(p, b.len, &merr);
    ASSERT(m); /* and back to good */
    wh_model_release(m);
    free(p);
    wh_buf_free(&b);
}

/* A hostile file with a valid checksum: the checks behind the checksum still hold. */
static void reseal(char *p, size_t n)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n - sizeof(c)));
    memcpy(p + n - sizeof(c), &c, sizeof(c));
}

TEST(hostile_models_with_a_valid_checksum_are_refused)
{
    const char *texts[] = {"you idiot", "i will hurt you", "have a nice day"};
    uint64_t bits[] = {1, 2, 0};
    wh_ml_example ex[3];
    for (int i = 0; i < 3; i++)
        ex[i] = (wh_ml_example){texts[i], (uint32_t)strlen(texts[i]), bits[i]};
    wh_ml_train_opts o;
    wh_ml_train_defaults(&o);
    o.f = (wh_ml_fcfg){.bits = 10, .word_ngrams = 1, .char_lo = 0, .char_hi = 0};
    const char *labels[] = {"insult", "threat"};
    wh_buf b;
    wh_buf_init(&b);
    wh_error terr;
    ASSERT(wh_ml_train(&o, labels, 2, ex, 3, NULL, &b, &terr) == WH_OK);
    char *p = malloc(b.len);
    /* a weight far out of range: scores could sum to inf - inf = NaN */
    memcpy(p, b.p, b.len);
    float big = 3e38f;
    uint64_t woff;
    memcpy(&woff, p + 32, 8);
    memcpy(p + woff + 8, &big, 4);
    reseal(p, b.len);
    expect_refused(p, b.len, "weight 2 is out of range");
    /* the same label twice ("threat" and "insult" have the same length) */
    memcpy(p, b.p, b.len);
    char *t = memmem(p, b.len, "threat", 7);
    ASSERT(t);
    memcpy(t, "insult", 6);
    reseal(p, b.len);
    expect_refused(p, b.len, "label 'insult' twice");
    /* a label that is not UTF-8 */
    memcpy(p, b.p, b.len);
    t = memmem(p, b.len, "threat", 7);
    t[0] = (char)0xff;
    reseal(p, b.len);
    expect_refused(p, b.len, "bad label names");
    free(p);
    wh_buf_free(&b);
}

/* ---- metrics, against figures worked out by hand ---- */

TEST(metrics_match_hand_computed_figures)
{
    /* predicted positive at 0.5: the first four; tp 0.9 0.8 0.6, fp 0.7, fn 0.3, tn 0.4 0.2 0.1 */
    const float s[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.4f, 0.3f, 0.2f, 0.1f};
    const bool y[] = {1, 1, 0, 1, 0, 1, 0, 0};
    wh_ml_metrics m;
    wh_ml_metrics_compute(s, y, 8, 0.5, &m);
    ASSERT_EQ(m.at.tp, 3);
    ASSERT_EQ(m.at.fp, 1);
    ASSERT_EQ(m.at.tn, 3);
    ASSERT_EQ(m.at.fn, 1);
    ASSERT_NEAR(m.accuracy, 0.75, 1e-12);
    ASSERT_NEAR(m.precision, 0.75, 1e-12);
    ASSERT_NEAR(m.recall, 0.75, 1e-12);
    ASSERT_NEAR(m.f1, 0.75, 1e-12);
    ASSERT_NEAR(m.fpr, 0.25, 1e-12);
    /* positives above negatives in 4 + 4 + 3 + 2 of 16 pairs */
    ASSERT_NEAR(m.auc, 13.0 / 16.0, 1e-12);
    /* at 0.75: tp 2 (0.9 0.8), fp 0, so precision 1 and recall 0.5 */
    wh_ml_metrics_compute(s, y, 8, 0.75, &m);
    ASSERT_NEAR(m.precision, 1.0, 1e-12);
    ASSERT_NEAR(m.recall, 0.5, 1e-12);
    ASSERT_NEAR(m.f1, 2 * 0.5 / 1.5, 1e-12);
    /* without positives (or negatives) ROC-AUC is undefined, not 0 */
    const bool none[] = {0, 0, 0, 0, 0, 0, 0, 0};
    wh_ml_metrics_compute(s, none, 8, 0.5, &m);
    ASSERT(isnan(m.auc));
    ASSERT_EQ(m.at.fp, 4);
    /* ties count one half */
    const float t[] = {0.5f, 0.5f, 0.5f};
    const bool ty[] = {1, 0, 0};
    wh_ml_metrics_compute(t, ty, 3, 0.5, &m);
    ASSERT_NEAR(m.auc, 0.5, 1e-12);
    ASSERT_NEAR(m.fpr, 1.0, 1e-12);
}

/* ---- rules ---- */

static const char *write_model(const char *name)
{
    wh_buf b;
    wh_model *m = train_fixture(1, &b);
    wh_model_release(m);
    const char *p = th_write_tmp(name, "");
    FILE *f = fopen(p, "wb");
    ASSERT(f && fwrite(b.p, 1, b.len, f) == b.len);
    fclose(f);
    wh_buf_free(&b);
    return p;
}

TEST(score_predicate_in_rules_and_decisions)
{
    write_model("spam.whm");
    wh_ruleset *rs = th_rules("version: 1\nmodels:\n  spam: {file: spam.whm}\nrules:\n"
                              "  - id: spammy\n    when: {score: {model: spam, gte: 0.8}}\n"
                              "    action: hold\n");
    const char *d = th_decide(rs, th_msg("buy cheap pills now"));
    ASSERT_CONTAINS(d, "\"action\":\"hold\"");
    ASSERT_CONTAINS(d, "\"scores\":{\"spam\":0.9");
    d = th_decide(rs, th_msg("see you at the meeting tomorrow"));
    ASSERT_CONTAINS(d, "\"action\":\"allow\"");
    ASSERT_CONTAINS(d, "\"scores\":{\"spam\":0.0");
    d = th_decide_explain(rs, th_msg("buy cheap pills now"));
    ASSERT_CONTAINS(d, "\"feature\":\"score\",\"model\":\"spam\",\"value\":0.9");
    ASSERT_CONTAINS(d, "\"score_features\":{\"spam\":[{\"feature\":");
    /* no features at all: explained with none */
    d = th_decide_explain(rs, th_msg(" "));
    ASSERT_CONTAINS(d, "\"score_features\":{\"spam\":[]}");
    wh_ruleset_release(rs);
    /* a band: gte and lt together */
    rs = th_rules(
        "version: 1\nmodels:\n  spam: spam.whm\nrules:\n"
        "  - {id: unsure, when: {score: {model: spam, gte: 0.2, lt: 0.8}}, action: warn}\n");
    ASSERT_CONTAINS(th_decide(rs, th_msg("buy cheap pills now")), "\"action\":\"allow\"");
    wh_ruleset_release(rs);
}

TEST(model_errors_in_rules_are_reported_where_written)
{
    write_model("spam.whm");
    th_write_tmp("broken.whm", "WHIPLYM\0 not really");
    char *t =
        th_lint("version: 1\nmodels:\n  spam: {file: missing.whm}\n  bad: {file: broken.whm}\n"
                "  ok: {file: spam.whm}\nrules:\n"
                "  - {id: a, when: {score: {model: nope, gte: 0.5}}, action: hold}\n"
                "  - {id: b, when: {score: {model: ok, label: ham, gte: 0.5}}, action: hold}\n"
                "  - {id: c, when: {score: {model: ok}}, action: hold}\n"
                "  - {id: d, when: {score: {model: ok, gte: 2}}, action: hold}\n");
    ASSERT_CONTAINS(t, "lint.yaml:3:16: error: model 'spam': ");
    ASSERT_CONTAINS(t, "missing.whm: cannot open: No such file or directory");
    ASSERT_CONTAINS(t, "lint.yaml:4:15: error: model 'bad': ");
    ASSERT_CONTAINS(t, "broken.whm: not a whiply model (too short for the magic bytes)");
    ASSERT_CONTAINS(t, "unknown model 'nope' (define it under 'models:')");
    ASSERT_CONTAINS(t, "model 'ok' has no label 'ham' (its labels: spam)");
    ASSERT_CONTAINS(t, "lint.yaml:9:28: error: 'score' needs a bound");
    ASSERT_NOT_CONTAINS(t, "lint.yaml:10:28: error: 'score' needs a bound");
    ASSERT_CONTAINS(t, "a score bound must be a number from 0 to 1, got '2'");
    free(t);
}
