/* train.c - one-vs-rest logistic regression on hashed features (see ml.h).
 *
 * Every example is featurized once into (bucket, value) pairs, the values scoring uses. Then each
 * epoch visits the examples in an order drawn from the seed and takes one AdaGrad step per label,
 * with L2 applied to the weights the example touches. With bag > 1 the whole training runs that
 * many times, each from its own seed, and the weights are averaged: the average of linear models
 * is one linear model (its score is the mean of their log-odds), so bagging costs training time
 * and nothing at scoring. One thread and a fixed order of float operations: the same inputs give
 * the same bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ml.h"
#include "text/utf8.h"

void wh_ml_train_defaults(wh_ml_train_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->f = (wh_ml_fcfg){.bits = 20, .word_ngrams = 2, .char_lo = 3, .char_hi = 5};
    o->epochs = 10;
    o->lr = 0.5;
    o->l2 = 1e-6;
    o->neg_weight = 2;
    o->seed = 1;
    o->bag = 3;
}

void wh_ml_shuffle(uint32_t *v, uint32_t n, uint64_t *rng)
{
    for (uint32_t i = n ? n - 1 : 0; i > 0; i--) {
        uint32_t j = (uint32_t)(wh_splitmix64(rng) % (i + 1));
        uint32_t t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

typedef struct {
    uint64_t *off; /* example i: pairs [off[i], off[i+1]) */
    uint32_t *idx;
    float *x;
    uint64_t n, cap;
} csr;

static bool csr_push(csr *c, uint32_t idx, float x)
{
    if (c->n == c->cap) {
        uint64_t cap = c->cap ? c->cap * 2 : 1 << 20;
        uint32_t *i2 = realloc(c->idx, cap * sizeof(uint32_t));
        if (!i2) return false;
        c->idx = i2;
        float *x2 = realloc(c->x, cap * sizeof(float));
        if (!x2) return false;
        c->x = x2;
        c->cap = cap;
    }
    c->idx[c->n] = idx;
    c->x[c->n++] = x;
    return true;
}

static void put32(wh_buf *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wh_buf_append(b, p, 4);
}

static void put64(wh_buf *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

static void pad(wh_buf *b, size_t a)
{
    static const char z[64];
    if (b->len % a) wh_buf_append(b, z, a - b->len % a);
}

/* Floats, little-endian, clamped to +-1e5: far beyond any trained weight, and well inside
 * what the loader accepts (1e6). */
static void put_weights(wh_buf *b, const float *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        float x = v[i] > 1e5f ? 1e5f : v[i] < -1e5f ? -1e5f : v[i];
        uint32_t u;
        memcpy(&u, &x, 4);
        put32(b, u);
    }
}

/* The model file bytes (layout in model.c). */
static bool serialize(const wh_ml_train_opts *o, const char *const *labels, uint32_t nl,
                      const char *meta, const float *bias, const float *w, wh_buf *out)
{
    out->len = 0;
    size_t lbytes = 0;
    for (uint32_t i = 0; i < nl; i++)
        lbytes += strlen(labels[i]) + 1;
    size_t mbytes = strlen(meta) + 1;
    uint64_t boff = (64 + lbytes + mbytes + 3) / 4 * 4;
    uint64_t woff = (boff + 4ull * nl + 63) / 64 * 64;
    uint64_t wn = ((uint64_t)1 << o->f.bits) * nl;
    uint64_t fsize = woff + wn * 4 + 16;
    if (!wh_buf_reserve(out, fsize)) return false;
    wh_buf_append(out, "WHIPLYM", 8);
    put32(out, WH_ML_VERSION);
    put32(out, 64);
    uint8_t f[4] = {o->f.bits, o->f.word_ngrams, o->f.char_lo, o->f.char_hi};
    wh_buf_append(out, f, 4);
    put32(out, nl);
    put32(out, (uint32_t)lbytes);
    put32(out, (uint32_t)mbytes);
    put64(out, woff);
    put64(out, fsize);
    pad(out, 64);
    for (uint32_t i = 0; i < nl; i++)
        wh_buf_append(out, labels[i], strlen(labels[i]) + 1);
    wh_buf_append(out, meta, mbytes);
    pad(out, 4);
    put_weights(out, bias, nl);
    pad(out, 64);
    put_weights(out, w, wn);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(out->p, out->len));
    wh_buf_append(out, &c, sizeof(c));
    return out->len == fsize;
}

static bool featurize_all(const wh_ml_train_opts *o, const wh_ml_example *ex, uint32_t nex, csr *c,
                          char *err, size_t errlen)
{
    wh_arena a;
    wh_arena_init(&a, 1 << 20);
    wh_ml_fv fv = {0};
    bool ok = true;
    c->off[0] = 0;
    for (uint32_t i = 0; i < nex && ok; i++) {
        wh_arena_reset(&a);
        size_t bad = wh_utf8_invalid_at(ex[i].text, ex[i].len);
        if (bad != (size_t)-1) {
            snprintf(err, errlen, "example %u: invalid UTF-8 at byte %zu", i + 1, bad);
            ok = false;
            break;
        }
        wh_text t;
        if (wh_text_build(ex[i].text, ex[i].len, &a, &t) != WH_OK ||
            !wh_ml_featurize(&o->f, &t, &fv)) {
            snprintf(err, errlen, "out of memory");
            ok = false;
            break;
        }
        for (uint32_t k = 0; k < fv.nu && ok; k++)
            ok = csr_push(c, fv.u[k], fv.x[k]);
        if (!ok) snprintf(err, errlen, "out of memory");
        c->off[i + 1] = c->n;
        if (o->progress && (i + 1) % 5000 == 0)
            fprintf(stderr, "train: features of %u/%u examples\n", i + 1, nex);
    }
    wh_ml_fv_free(&fv);
    wh_arena_free(&a);
    return ok;
}

/* One training run: o->epochs passes over the examples in orders drawn from *rng. */
static void train_run(const wh_ml_train_opts *o, const csr *c, const wh_ml_example *ex,
                      uint32_t nex, uint32_t nl, uint32_t *order, uint64_t *rng, float *w, float *g,
                      float *bias, float *gb, uint32_t run, uint32_t bag)
{
    const float lr = (float)o->lr, l2 = (float)o->l2, eps = 1e-8f, negw = (float)o->neg_weight;
    for (uint32_t ep = 0; ep < o->epochs; ep++) {
        wh_ml_shuffle(order, nex, rng);
        double loss = 0;
        for (uint32_t k = 0; k < nex; k++) {
            uint32_t e = order[k];
            uint64_t b = c->off[e], end = c->off[e + 1];
            for (uint32_t l = 0; l < nl; l++) {
                float z = bias[l];
                for (uint64_t q = b; q < end; q++)
                    z += w[(size_t)c->idx[q] * nl + l] * c->x[q];
                float p = 1.0f / (1.0f + expf(-z));
                float y = (ex[e].labels >> l) & 1 ? 1.0f : 0.0f;
                float d = (p - y) * (y ? 1.0f : negw);
                loss -= y ? log(fmax(p, 1e-12)) : log(fmax(1 - p, 1e-12));
                for (uint64_t q = b; q < end; q++) {
                    size_t wi = (size_t)c->idx[q] * nl + l;
                    float gr = d * c->x[q] + l2 * w[wi];
                    g[wi] += gr * gr;
                    w[wi] -= lr * gr / (sqrtf(g[wi]) + eps);
                }
                gb[l] += d * d;
                bias[l] -= lr * d / (sqrtf(gb[l]) + eps);
            }
        }
        if (o->progress)
            fprintf(stderr, "train: run %u/%u, epoch %u/%u, log loss %.5f\n", run + 1, bag, ep + 1,
                    o->epochs, loss / ((double)nex * nl));
    }
}

WH_NOIPA static wh_status ml_train_buf(const wh_ml_train_opts *o, const char *const *labels,
                                       uint32_t nl, const wh_ml_example *ex, uint32_t nex,
                                       const char *meta_extra, wh_buf *out, char *err,
                                       size_t errlen)
{
    if (nl < 1 || nl > WH_ML_MAX_LABELS || !nex) {
        snprintf(err, errlen, nex ? "between 1 and %d labels" : "no examples", WH_ML_MAX_LABELS);
        return WH_EINVAL;
    }
    wh_status st = WH_ENOMEM;
    csr c = {0};
    c.off = malloc(((size_t)nex + 1) * sizeof(uint64_t));
    size_t nb = (size_t)1 << o->f.bits;
    const uint32_t bag = o->bag ? o->bag : 1;
    float *w = calloc(nb * nl, sizeof(float)), *g = calloc(nb * nl, sizeof(float));
    float *wsum = bag > 1 ? calloc(nb * nl, sizeof(float)) : w;
    float bias[WH_ML_MAX_LABELS], gb[WH_ML_MAX_LABELS], bsum[WH_ML_MAX_LABELS] = {0};
    uint32_t *order = malloc((size_t)nex * sizeof(uint32_t));
    wh_buf meta;
    wh_buf_init(&meta);
    if (!c.off || !w || !g || !wsum || !order) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (!featurize_all(o, ex, nex, &c, err, errlen)) {
        st = strstr(err, "UTF-8") ? WH_EUTF8 : WH_ENOMEM;
        goto done;
    }
    for (uint32_t run = 0; run < bag; run++) {
        /* run 0 draws from the seed itself: --bag 1 is one plain run */
        uint64_t rng = o->seed + run * 0x9E3779B97F4A7C15ULL;
        for (uint32_t i = 0; i < nex; i++)
            order[i] = i;
        if (run) {
            memset(w, 0, nb * nl * sizeof(float));
            memset(g, 0, nb * nl * sizeof(float));
        }
        memset(bias, 0, sizeof(bias));
        memset(gb, 0, sizeof(gb));
        train_run(o, &c, ex, nex, nl, order, &rng, w, g, bias, gb, run, bag);
        if (bag == 1) {
            memcpy(bsum, bias, sizeof(bias));
            break;
        }
        /* the running mean, so that no sum of bag weights can overflow */
        const float k = 1.0f / (float)(run + 1);
        for (size_t i = 0; i < nb * nl; i++)
            wsum[i] += (w[i] - wsum[i]) * k;
        for (uint32_t l = 0; l < nl; l++)
            bsum[l] += (bias[l] - bsum[l]) * k;
    }
    wh_buf_printf(&meta,
                  "{\"format\":%d,\"examples\":%u,\"features\":{\"bits\":%u,\"word_ngrams\":%u,"
                  "\"char_ngrams\":[%u,%u]},\"epochs\":%u,\"lr\":%g,\"l2\":%g,"
                  "\"negative_weight\":%g,\"seed\":%llu,\"bag\":%u",
                  WH_ML_VERSION, nex, o->f.bits, o->f.word_ngrams, o->f.char_lo, o->f.char_hi,
                  o->epochs, o->lr, o->l2, o->neg_weight, (unsigned long long)o->seed, bag);
    if (meta_extra && *meta_extra) {
        wh_buf_putc(&meta, ',');
        wh_buf_puts(&meta, meta_extra);
    }
    wh_buf_putc(&meta, '}');
    const char *ms = wh_buf_cstr(&meta);
    if (meta.oom || !ms || !serialize(o, labels, nl, ms, bsum, wsum, out)) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    st = WH_OK;
done:
    free(c.off);
    free(c.idx);
    free(c.x);
    if (wsum != w) free(wsum);
    free(w);
    free(g);
    free(order);
    wh_buf_free(&meta);
    return st;
}

wh_status wh_ml_train(const wh_ml_train_opts *o, const char *const *labels, uint32_t nl,
                      const wh_ml_example *ex, uint32_t nex, const char *meta_extra, wh_buf *out,
                      wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    e->message[0] = 0;
    return e->code = ml_train_buf(o, labels, nl, ex, nex, meta_extra, out, e->message,
                                  sizeof(e->message));
}
