/* features.c - hashed n-gram features of the normalized views (see ml.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ml.h"

#define SEED_WORD 0x77686970ULL /* one seed per kind of feature, so a word and a */
#define SEED_SYMBOL 0x73796d62ULL
#define SEED_HOST 0x686f7374ULL
#define MUL_CHAR 0x9E3779B97F4A7C15ULL /* character n-gram of the same bytes differ */
#define MAX_WORD_NGRAMS 3
#define MAX_CHAR_N 8

void wh_ml_fv_free(wh_ml_fv *fv)
{
    free(fv->v);
    free(fv->u);
    free(fv->x);
    free(fv->tab);
    free(fv->s);
    memset(fv, 0, sizeof(*fv));
}

/* At most this many feature occurrences a text (a text of 1 MiB with character 2- to
 * 8-grams has about 7.3M): sizes stay far from uint32_t overflow. */
#define MAX_OCCURRENCES (1u << 28)

static bool fv_reserve(wh_ml_fv *fv, uint64_t extra)
{
    uint64_t need = (uint64_t)fv->n + extra;
    if (need <= fv->cap) return true;
    if (need > MAX_OCCURRENCES) return false;
    uint32_t cap = fv->cap ? fv->cap : 256;
    while (cap < need)
        cap *= 2;
    uint32_t *v = realloc(fv->v, (size_t)cap * sizeof(uint32_t));
    if (!v) return false;
    fv->v = v;
    fv->cap = cap;
    return true;
}

static inline bool word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint32_t bucket_of(uint64_t h, unsigned bits)
{
    return (uint32_t)(h >> (64 - bits));
}

/* An occurrence: its bucket, and its kind above WH_ML_KIND_SHIFT. */
static inline uint32_t occ(uint32_t bucket, unsigned kind)
{
    return bucket | (uint32_t)kind << WH_ML_KIND_SHIFT;
}

/* The squashed view with every run of separators turned into one space, a space at both
 * ends, and 8 zero bytes after it (the character n-grams load 8 bytes at a time). */
static bool compact(const wh_view *q, wh_ml_fv *fv)
{
    if (q->len > MAX_OCCURRENCES) return false;
    uint32_t need = q->len + 2 + 8;
    if (need > fv->scap) {
        uint32_t cap = fv->scap ? fv->scap : 256;
        while (cap < need)
            cap *= 2;
        char *s = realloc(fv->s, cap);
        if (!s) return false;
        fv->s = s;
        fv->scap = cap;
    }
    char *o = fv->s;
    uint32_t k = 0;
    o[k++] = ' ';
    for (uint32_t i = 0; i < q->len; i++) {
        unsigned char c = (unsigned char)q->s[i];
        if (word_byte(c))
            o[k++] = (char)c;
        else if (o[k - 1] != ' ')
            o[k++] = ' ';
    }
    if (o[k - 1] != ' ') o[k++] = ' ';
    memset(o + k, 0, 8);
    fv->slen = k;
    return true;
}

static inline uint64_t char_gram(const char *p, unsigned n)
{
    uint64_t x;
    memcpy(&x, p, 8);
    x &= n == 8 ? ~0ULL : (1ULL << (8 * n)) - 1;
    return (x ^ ((uint64_t)n << 59)) * MUL_CHAR;
}

/* One walk over the features, for both the hot path (named == NULL: bucket indices into fv)
 * and --explain (each feature with its name). */
static inline __attribute__((always_inline)) bool walk(const wh_ml_fcfg *c, const wh_text *t,
                                                       wh_ml_fv *fv, wh_ml_named_fn named, void *ud)
{
    const unsigned bits = c->bits;
    fv->n = 0;
    /* words of the skeleton view, and their n-grams */
    const wh_view *sk = &t->v[WH_VIEW_SKELETON];
    const unsigned char *s = (const unsigned char *)sk->s;
    uint32_t len = sk->len;
    uint64_t prev[MAX_WORD_NGRAMS - 1] = {0, 0};
    wh_str pw[MAX_WORD_NGRAMS - 1] = {{NULL, 0}, {NULL, 0}};
    uint32_t nwords = 0;
    /* unigrams from v[0], bigrams from v[W], trigrams from v[2W], then closed up: each kind
     * in one run (weigh sums kind after kind) */
    const uint32_t W = len / 2 + 2; /* more than the words: each needs a byte and a separator */
    if (!fv_reserve(fv, (uint64_t)W * c->word_ngrams)) return false;
    uint32_t *const wv = fv->v;
    for (uint32_t i = 0; i < len;) {
        if (!word_byte(s[i])) {
            i++;
            continue;
        }
        uint32_t b = i;
        while (i < len && word_byte(s[i]))
            i++;
        uint64_t h = XXH3_64bits_withSeed(s + b, i - b, SEED_WORD);
        wv[nwords] = occ(bucket_of(h, bits), WH_MLK_WORD);
        if (named) {
            char nm[2 + MAX_WORD_NGRAMS * 121];
            nm[0] = 'w', nm[1] = ':';
            for (int k = (int)(c->word_ngrams > nwords + 1 ? nwords : c->word_ngrams - 1u); k >= 0;
                 k--) {
                /* the n-gram ending here with k words before this one */
                size_t l2 = 2;
                for (int j = k - 1; j >= 0; j--) {
                    uint32_t m = pw[j].n < 120 ? pw[j].n : 120;
                    memcpy(nm + l2, pw[j].p, m), l2 += m, nm[l2++] = ' ';
                }
                uint32_t m = i - b < 120 ? i - b : 120;
                memcpy(nm + l2, s + b, m), l2 += m;
                uint64_t hh = h;
                for (int j = 0; j < k; j++)
                    hh = mix64(prev[j] * 31 + hh + (uint64_t)(j + 1));
                named(ud, bucket_of(hh, bits), WH_MLK_WORD + (unsigned)k, nm, l2);
            }
        }
        uint64_t hh = h;
        for (uint32_t j = 0; j + 1 < c->word_ngrams && j < nwords; j++) {
            hh = mix64(prev[j] * 31 + hh + (uint64_t)(j + 1));
            wv[(j + 1) * W + nwords - 1 - j] = occ(bucket_of(hh, bits), WH_MLK_WORD + 1 + j);
        }
        for (int j = MAX_WORD_NGRAMS - 2; j > 0; j--)
            prev[j] = prev[j - 1], pw[j] = pw[j - 1];
        prev[0] = h;
        pw[0] = (wh_str){(const char *)s + b, i - b};
        nwords++;
    }
    fv->n = nwords;
    for (uint32_t j = 1; j < c->word_ngrams && j < nwords; j++) {
        memmove(wv + fv->n, wv + j * W, (nwords - j) * sizeof(uint32_t));
        fv->n += nwords - j;
    }
    /* runs of symbols in the folded view ("$", "!!!", "://"; the first 3 bytes), and the
     * hosts of links */
    const wh_view *fo = &t->v[WH_VIEW_FOLDED];
    const unsigned char *f = (const unsigned char *)fo->s;
    for (uint32_t i = 0; i < fo->len;) {
        unsigned char ch = f[i];
        if (ch >= 0x80 || ch <= ' ' || word_byte(ch)) {
            i++;
            continue;
        }
        uint32_t b = i;
        while (i < fo->len && f[i] < 0x80 && f[i] > ' ' && !word_byte(f[i]))
            i++;
        uint32_t n = i - b < 3 ? i - b : 3;
        uint64_t h = XXH3_64bits_withSeed(f + b, n, SEED_SYMBOL);
        if (!fv_reserve(fv, 1)) return false;
        fv->v[fv->n++] = occ(bucket_of(h, bits), WH_MLK_SYMBOL);
        if (named) {
            char nm[5] = {'p', ':'};
            memcpy(nm + 2, f + b, n);
            named(ud, bucket_of(h, bits), WH_MLK_SYMBOL, nm, 2 + n);
        }
    }
    uint32_t nlinks = t->f.nlinks < WH_MAX_LINKS ? t->f.nlinks : WH_MAX_LINKS;
    for (uint32_t i = 0; i < nlinks; i++) {
        wh_str host = t->f.links[i].host;
        uint64_t h = XXH3_64bits_withSeed(host.p, host.n, SEED_HOST);
        if (!fv_reserve(fv, 1)) return false;
        fv->v[fv->n++] = occ(bucket_of(h, bits), WH_MLK_HOST);
        if (named) {
            char nm[2 + 120] = {'h', ':'};
            uint32_t m = host.n < 120 ? host.n : 120;
            memcpy(nm + 2, host.p, m);
            named(ud, bucket_of(h, bits), WH_MLK_HOST, nm, 2 + m);
        }
    }
    /* character n-grams of the squashed view */
    if (!c->char_lo) return true;
    if (!compact(&t->v[WH_VIEW_SQUASHED], fv)) return false;
    const char *q = fv->s;
    uint32_t ql = fv->slen;
    if (!fv_reserve(fv, (uint64_t)ql * (uint64_t)(c->char_hi - c->char_lo + 1))) return false;
    uint32_t *v = fv->v + fv->n;
    for (unsigned n = c->char_lo; n <= c->char_hi; n++) {
        if (ql < n) break;
        const unsigned kind = WH_MLK_CHAR + n - c->char_lo;
        const uint32_t tag = occ(0, kind);
        for (uint32_t i = 0; i + n <= ql; i++) {
            uint32_t bk = bucket_of(char_gram(q + i, n), bits);
            *v++ = bk | tag;
            if (named) {
                char nm[2 + MAX_CHAR_N];
                nm[0] = 'c', nm[1] = ':';
                for (unsigned k = 0; k < n; k++)
                    nm[2 + k] = q[i + k] == ' ' ? '_' : q[i + k];
                named(ud, bk, kind, nm, 2 + n);
            }
        }
    }
    fv->n = (uint32_t)(v - fv->v);
    return true;
}

/* Occurrences -> distinct (kind, bucket) pairs with (1 + ln count), each kind scaled to the
 * same length and the whole to length 1: sublinear counts, so that neither a long text nor
 * one word said fifty times outweighs the rest, and every kind of feature weighing alike,
 * so that a text's thousands of character n-grams do not drown its hundred words (5-fold
 * cross-validation on the SpamAssassin training split: raw counts / sqrt(n) 98.9%; one
 * length for all 99.01%, a length per kind 99.07%, over six dealings of the folds;
 * bench/RESULTS.md). A hash table instead of a sort: O(n). */
static bool weigh(wh_ml_fv *fv)
{
    uint32_t need = 64; /* fv->n <= MAX_OCCURRENCES: 4n fits; a quarter full at most, so that
                           most look-ups end at their first slot */
    while (need < 4 * fv->n)
        need *= 2;
    if (need > fv->tabcap) {
        free(fv->tab);
        fv->tab = malloc(need * sizeof(uint32_t));
        fv->tabcap = fv->tab ? need : 0;
        if (!fv->tab) return false;
    }
    if (fv->n > fv->ucap) {
        uint32_t cap = fv->cap;
        uint32_t *u = realloc(fv->u, cap * sizeof(uint32_t));
        if (u) fv->u = u;
        float *x = realloc(fv->x, cap * sizeof(float));
        if (x) fv->x = x;
        if (!u || !x) return false;
        fv->ucap = cap;
    }
    unsigned shift = 64 - (unsigned)__builtin_ctz(need);
    uint32_t mask = need - 1, nu = 0;
    memset(fv->tab, 0, need * sizeof(uint32_t));
    uint32_t *tab = fv->tab, *u = fv->u;
    float *xs = fv->x;
    for (uint32_t i = 0; i < fv->n; i++) {
        uint32_t b = fv->v[i];
        uint32_t slot = (uint32_t)(((uint64_t)b * 0x9E3779B97F4A7C15ULL) >> shift);
        for (;; slot = (slot + 1) & mask) {
            uint32_t e = tab[slot]; /* 1 + the index into u, or 0: free */
            if (!e) {
                tab[slot] = nu + 1;
                u[nu] = b;
                xs[nu++] = 1;
                break;
            }
            if (u[e - 1] == b) {
                xs[e - 1] += 1;
                break;
            }
        }
    }
    /* first occurrences come kind after kind (walk writes each kind in one run): a sum in a
     * register while the kind stays, not a chain of adds through ss[] */
    float ss[WH_ML_KINDS] = {0}, acc = 0;
    uint32_t cur = nu ? fv->u[0] >> WH_ML_KIND_SHIFT : 0;
    for (uint32_t i = 0; i < nu; i++) {
        float x = fv->x[i];
        if (x != 1) fv->x[i] = x = 1 + logf(x);
        uint32_t k = fv->u[i] >> WH_ML_KIND_SHIFT;
        if (k != cur) {
            ss[cur] += acc;
            acc = 0;
            cur = k;
        }
        acc += x * x;
    }
    ss[cur] += acc;
    uint32_t present = 0;
    for (unsigned k = 0; k < WH_ML_KINDS; k++)
        present |= (uint32_t)(ss[k] > 0) << k;
    const float kinds = (float)__builtin_popcount(present);
    memset(fv->kscale, 0, sizeof(fv->kscale));
    for (uint32_t p = present; p; p &= p - 1) {
        unsigned k = (unsigned)__builtin_ctz(p);
        fv->kscale[k] = 1 / sqrtf(ss[k] * kinds);
    }
    for (uint32_t i = 0; i < nu; i++) {
        uint32_t e = fv->u[i];
        fv->x[i] *= fv->kscale[e >> WH_ML_KIND_SHIFT];
        fv->u[i] = e & WH_ML_BUCKET_MASK;
    }
    fv->nu = nu;
    return true;
}

bool wh_ml_featurize(const wh_ml_fcfg *c, const wh_text *t, wh_ml_fv *fv)
{
    return walk(c, t, fv, NULL, NULL) && weigh(fv);
}

bool wh_ml_featurize_named(const wh_ml_fcfg *c, const wh_text *t, wh_ml_fv *scratch,
                           wh_ml_named_fn fn, void *ud)
{
    return walk(c, t, scratch, fn, ud) && weigh(scratch);
}
