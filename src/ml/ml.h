/* ml.h - the built-in text classifier: hashed n-gram features of the normalized views, a
 * one-vs-rest logistic regression per label, and a memory-mapped model file.
 *
 * - Features: word unigrams (and bigrams, trigrams) of the skeleton view, character n-grams
 *   of the squashed view, runs of symbols and the hosts of links, so "fr33 n1tro" and
 *   "f r e e" look like the words they hide; each hashed into one of 2^bits buckets (XXH3 for
 *   words, a multiply-shift of the packed bytes for character n-grams).
 * - Score: sigmoid(bias + sum of weight x value). A feature's value is (1 + ln count), each
 *   kind of feature scaled to the same length and the whole vector to length 1. One weight
 *   row per bucket, one column per label: a feature costs one cache line for every label.
 * - Model: a versioned file (header, labels, metadata JSON, biases, weights, XXH3-128
 *   checksum), mapped read-only and shared by every thread and every ruleset that names it.
 * - Training: AdaGrad SGD with L2, examples in a seeded order, several runs from successive
 *   seeds averaged (bagging); the same data, options and seed give the same model bytes.
 *
 * See docs/ml.md for the file format and the figures. */
#ifndef WH_ML_H
#define WH_ML_H

#include "base/base.h"
#include "text/normalize.h"

#define WH_ML_MAX_LABELS 64
#define WH_ML_MAX_BAG 32
#define WH_ML_VERSION 2 /* 2: each kind of feature scaled to the same length */

/* Kinds of feature, each scaled to the same length in a message's vector. */
enum {
    WH_MLK_WORD = 0,   /* word unigrams; + 1: bigrams, + 2: trigrams */
    WH_MLK_SYMBOL = 3, /* runs of symbols */
    WH_MLK_HOST = 4,   /* hosts of links */
    WH_MLK_CHAR = 5,   /* character n-grams of the shortest length; + 1: one byte longer, ... */
    WH_ML_KINDS = 16
};
#define WH_ML_KIND_SHIFT 24 /* an occurrence is bucket | kind << 24 (bits <= 24) */
#define WH_ML_BUCKET_MASK ((1u << WH_ML_KIND_SHIFT) - 1)

typedef struct {
    uint8_t bits;        /* log2 of the number of buckets (10..24) */
    uint8_t word_ngrams; /* 1: unigrams, 2: and bigrams, 3: and trigrams */
    uint8_t char_lo;     /* character n-grams from char_lo to char_hi bytes (0: none; 2..8) */
    uint8_t char_hi;
} wh_ml_fcfg;

/* A message's features: every occurrence (v: bucket | kind << WH_ML_KIND_SHIFT), then each
 * distinct (kind, bucket) as its bucket (u) with its value (x): (1 + ln count), each kind's
 * values scaled to the same length and the whole vector to length 1. A bucket can appear
 * once per kind in u. */
typedef struct {
    uint32_t *v;
    uint32_t n, cap;
    uint32_t *u;
    float *x;
    uint32_t nu, ucap;
    float kscale[WH_ML_KINDS]; /* what (1 + ln count) of each kind was multiplied by */
    uint32_t *tab;             /* scratch: a hash table of 1 + indices into u (0: free) */
    uint32_t tabcap;
    char *s; /* scratch: the squashed view with single spaces and a space at both ends */
    uint32_t slen, scap;
} wh_ml_fv;

void wh_ml_fv_free(wh_ml_fv *fv);

/* The features of a normalized text into fv (occurrences and distinct values). False when
 * out of memory. */
bool wh_ml_featurize(const wh_ml_fcfg *c, const wh_text *t, wh_ml_fv *fv);

/* The same features, with a readable name for each occurrence ("w:free", "w:free nitro",
 * "c:_fre", "p:!!!", "h:example.com") and its kind (WH_MLK_*): for --explain and tests. name
 * is not NUL-terminated. */
typedef void (*wh_ml_named_fn)(void *ud, uint32_t bucket, unsigned kind, const char *name,
                               size_t n);
bool wh_ml_featurize_named(const wh_ml_fcfg *c, const wh_text *t, wh_ml_fv *scratch,
                           wh_ml_named_fn fn, void *ud);

/* ---- model files ---- */

typedef struct wh_model wh_model;

/* Maps and checks a model file. On failure returns NULL and writes why into err (e.g.
 * "truncated: 100 bytes, the header needs 128"), naming no path: callers add it. */
wh_model *wh_model_open(const char *path, wh_error *e);
/* The same checks on bytes in memory (copied): for tests and the fuzz target. */
wh_model *wh_model_from_mem(const void *p, size_t n, wh_error *e);
void wh_model_retain(wh_model *m);
void wh_model_release(wh_model *m);

uint32_t wh_model_nlabels(const wh_model *m);
const char *wh_model_label(const wh_model *m, uint32_t i);
int32_t wh_model_find_label(const wh_model *m, const char *name); /* -1 when absent */
const wh_ml_fcfg *wh_model_fcfg(const wh_model *m);
const char *wh_model_meta(const wh_model *m);     /* the training metadata, JSON */
const char *wh_model_checksum(const wh_model *m); /* 32 hex digits */
float wh_model_weight(const wh_model *m, uint32_t bucket, uint32_t label);
float wh_model_bias(const wh_model *m, uint32_t label);

/* The probability of every label for a feature vector, into out[nlabels]. */
void wh_model_score_fv(const wh_model *m, const wh_ml_fv *fv, float *out);
/* Featurizes t (with fv as scratch) and scores it. False when out of memory. */
bool wh_model_score(const wh_model *m, const wh_text *t, wh_ml_fv *fv, float *out);

/* ---- training ---- */

typedef struct {
    const char *text; /* not owned */
    uint32_t len;
    uint64_t labels; /* bit i: the example has label i */
} wh_ml_example;

typedef struct {
    wh_ml_fcfg f;
    uint32_t epochs;
    double lr, l2;
    double neg_weight; /* a negative example's loss counts this much (false positives cost
                          more than misses in moderation; default 2) */
    uint64_t seed;
    uint32_t bag;  /* runs averaged, each in its own example order (1..WH_ML_MAX_BAG; default 3) */
    bool progress; /* a progress line on stderr per epoch */
} wh_ml_train_opts;

void wh_ml_train_defaults(wh_ml_train_opts *o);

/* Shuffles v[0..n) (Fisher-Yates) with the sequence of *rng (splitmix64): training's example
 * order and eval's folds. */
void wh_ml_shuffle(uint32_t *v, uint32_t n, uint64_t *rng);

/* Trains one logistic regression per label on examples and writes the model file bytes
 * into out. Fails (with err) on bad text (invalid UTF-8) or out of memory. */
wh_status wh_ml_train(const wh_ml_train_opts *o, const char *const *labels, uint32_t nlabels,
                      const wh_ml_example *ex, uint32_t nex, const char *meta_extra, wh_buf *out,
                      wh_error *e);

/* ---- evaluation ---- */

typedef struct {
    double threshold;
    uint64_t tp, fp, tn, fn;
} wh_ml_confusion;

typedef struct {
    uint64_t n, pos, neg;
    wh_ml_confusion at; /* at the chosen threshold */
    double accuracy, precision, recall, f1, fpr, auc;
} wh_ml_metrics;

/* Metrics of scores against labels (y[i] true for a positive) at threshold (a score >=
 * threshold predicts positive). ROC-AUC counts ties as one half; it is NaN (undefined)
 * without both positives and negatives. */
void wh_ml_metrics_compute(const float *score, const bool *y, uint64_t n, double threshold,
                           wh_ml_metrics *out);
void wh_ml_confusion_at(const float *score, const bool *y, uint64_t n, double threshold,
                        wh_ml_confusion *out);

#endif
