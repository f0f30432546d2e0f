/* model.c - model files: checks, mapping and scoring (see ml.h and docs/ml.md).
 *
 * Layout (little-endian):
 *   0   magic "WHIPLYM\0"
 *   8   u32 version (WH_ML_VERSION)
 *   12  u32 header size (64)
 *   16  u8 bits, word_ngrams, char_lo, char_hi
 *   20  u32 labels, u32 labels bytes, u32 metadata bytes
 *   32  u64 offset of the weights (a multiple of 64), u64 file size
 *   48  16 zero bytes
 *   64  label names, each NUL-terminated; the metadata JSON, NUL-terminated; zero padding
 *       to 4; one float bias per label; zero padding to 64
 *       the weights: float[2^bits][labels]
 *   end XXH3-128 of every byte before it (canonical, big-endian) */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/json.h"
#include "ml.h"
#include "text/utf8.h"

#define HEADER 64
static const char MAGIC[8] = "WHIPLYM";

struct wh_model {
    atomic_int refs;
    const uint8_t *base;
    size_t size;
    size_t maplen; /* the mapping's length (size may be less after a short read) */
    bool mapped;
    wh_ml_fcfg f;
    uint32_t nlabels;
    const char *labels[WH_ML_MAX_LABELS];
    const char *meta;
    const float *bias;
    const float *w;
    char sum[33];
};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static bool fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

#define ALIGN(x, a) (((x) + (a)-1) / (a) * (a))

/* The header's own checks, on its first bytes (have of them) and the file's size n: a file
 * is refused by these before the rest of it is read. */
static bool check_head(const uint8_t *p, size_t have, size_t n, char *err, size_t errlen)
{
    if (n < 8 || have < 8 || memcmp(p, MAGIC, 8))
        return fail(err, errlen, "not a whiply model (%s)",
                    n < 8 ? "too short for the magic bytes" : "wrong magic bytes");
    if (n < HEADER || have < HEADER)
        return fail(err, errlen, "truncated: %zu bytes, the header alone is %d", n, HEADER);
    uint32_t version = rd32(p + 8);
    if (version != WH_ML_VERSION)
        return fail(err, errlen, "model version %u, but this whiply reads version %d (retrain it)",
                    version, WH_ML_VERSION);
    uint64_t fsize = rd64(p + 40);
    if (fsize != n)
        return fail(err, errlen, "%s: %zu bytes, the header says %llu",
                    n < fsize ? "truncated" : "trailing bytes", n, (unsigned long long)fsize);
    if (rd32(p + 12) != HEADER) return fail(err, errlen, "bad header size %u", rd32(p + 12));
    return true;
}

/* A weight beyond this is no trained model's (L2 keeps them in the tens): refusing them
 * keeps every sum of a score finite. */
#define MAX_WEIGHT 1e6f

static bool valid_name(const char *s, size_t n)
{
    return n && wh_utf8_invalid_at(s, n) == (size_t)-1;
}

/* Every check of a file's bytes, in the order that names the most useful problem first. */
static bool check(wh_model *m, char *err, size_t errlen)
{
    const uint8_t *p = m->base;
    size_t n = m->size;
    if (!check_head(p, n, n, err, errlen)) return false;
    /* the checksum covers everything else, so check it before trusting any other field */
    XXH128_canonical_t want;
    XXH128_canonicalFromHash(&want, XXH3_128bits(p, n - sizeof(want)));
    if (n < HEADER + sizeof(want) || memcmp(&want, p + n - sizeof(want), sizeof(want)))
        return fail(err, errlen, "checksum mismatch: the file is damaged");
    for (int i = 0; i < 16; i++)
        snprintf(m->sum + 2 * i, 3, "%02x", want.digest[i]);
    wh_ml_fcfg f = {p[16], p[17], p[18], p[19]};
    if (f.bits < 10 || f.bits > 24 || f.word_ngrams < 1 || f.word_ngrams > 3 ||
        (f.char_lo && (f.char_lo < 2 || f.char_hi < f.char_lo || f.char_hi > 8)))
        return fail(err, errlen, "bad feature settings (bits %u, words %u, chars %u-%u)", f.bits,
                    f.word_ngrams, f.char_lo, f.char_hi);
    uint32_t nl = rd32(p + 20), lbytes = rd32(p + 24), mbytes = rd32(p + 28);
    uint64_t woff = rd64(p + 32);
    if (nl < 1 || nl > WH_ML_MAX_LABELS) return fail(err, errlen, "bad label count %u", nl);
    uint64_t boff = ALIGN((uint64_t)HEADER + lbytes + mbytes, 4);
    uint64_t wbytes = ((uint64_t)1 << f.bits) * nl * sizeof(float);
    if (woff != ALIGN(boff + 4ull * nl, 64) || woff + wbytes + sizeof(want) != n)
        return fail(err, errlen,
                    "bad section sizes (labels %u bytes, metadata %u, weights at %llu)", lbytes,
                    mbytes, (unsigned long long)woff);
    const char *s = (const char *)p + HEADER, *end = s + lbytes;
    for (uint32_t i = 0; i < nl; i++) {
        const char *z = memchr(s, 0, (size_t)(end - s));
        if (!z || !valid_name(s, (size_t)(z - s)))
            return fail(err, errlen, "bad label names (empty, or not UTF-8)");
        for (uint32_t k = 0; k < i; k++)
            if (!strcmp(m->labels[k], s)) return fail(err, errlen, "label '%s' twice", s);
        m->labels[i] = s;
        s = z + 1;
    }
    if (s != end) return fail(err, errlen, "bad label names");
    if (!mbytes || p[HEADER + lbytes + mbytes - 1] || !valid_name(end, mbytes - 1))
        return fail(err, errlen, "bad metadata");
    /* the metadata is shown as JSON (GET /v1/rules): it must be one object */
    wh_jtok tok[256];
    size_t epos;
    const char *ewhat;
    int nt = wh_json_tokenize((const char *)end, mbytes - 1, tok, 256, 8, &epos, &ewhat);
    if (nt < 1 || tok[0].type != WH_J_OBJECT)
        return fail(err, errlen, "bad metadata (not a JSON object)");
    m->meta = end;
    m->bias = (const float *)(p + boff);
    m->w = (const float *)(p + woff);
    for (uint64_t i = 0; i < wbytes / sizeof(float); i++)
        if (!(fabsf(m->w[i]) <= MAX_WEIGHT)) /* NaN fails too */
            return fail(err, errlen, "weight %llu is out of range (%g)", (unsigned long long)i,
                        (double)m->w[i]);
    for (uint32_t i = 0; i < nl; i++)
        if (!(fabsf(m->bias[i]) <= MAX_WEIGHT))
            return fail(err, errlen, "bias %u is out of range (%g)", i, (double)m->bias[i]);
    m->f = f;
    m->nlabels = nl;
    return true;
}

static wh_model *finish(wh_model *m, char *err, size_t errlen)
{
    if (check(m, err, errlen)) {
        atomic_init(&m->refs, 1);
        return m;
    }
    if (m->mapped)
        munmap((void *)m->base, m->maplen);
    else
        free((void *)m->base);
    free(m);
    return NULL;
}

/* The file is read into an anonymous mapping, made read-only, that every thread and ruleset
 * shares. Not a mapping of the file itself: a model copied over in place (truncated, then
 * written) would turn every read of a mapped page past the new end into SIGBUS and take the
 * daemon down, and a rewrite would change the weights of a model that was checked. The
 * anonymous mapping can also use transparent huge pages (fewer TLB misses on the weights). */
WH_NOIPA static wh_model *model_open_buf(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    wh_model *m = NULL;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        fail(err, errlen, "not a regular file");
        goto bad;
    }
    if (st.st_size == 0) {
        fail(err, errlen, "not a whiply model (the file is empty)");
        goto bad;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        fail(err, errlen, "out of memory");
        goto bad;
    }
    m->size = m->maplen = (size_t)st.st_size;
    {
        /* refuse a file that is no model before reading all of it */
        uint8_t head[HEADER];
        ssize_t got = pread(fd, head, sizeof(head), 0);
        if (!check_head(head, got > 0 ? (size_t)got : 0, m->size, err, errlen)) goto bad;
    }
    p = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fail(err, errlen, "cannot map %zu bytes: %s", m->size, strerror(errno));
        goto bad;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, m->size, MADV_HUGEPAGE);
#endif
    size_t got = 0;
    while (got < m->size) {
        ssize_t r = read(fd, (char *)p + got, m->size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got < m->size) { /* shrank while read: check what there is (says "truncated") */
        m->size = got;
        if (!got) {
            fail(err, errlen, "cannot read: %s", errno ? strerror(errno) : "the file is empty");
            goto bad;
        }
    }
    mprotect(p, m->size, PROT_READ);
    close(fd);
    m->base = p;
    m->mapped = true;
    return finish(m, err, errlen);
bad:
    if (p != MAP_FAILED) munmap(p, m->maplen);
    free(m);
    close(fd);
    return NULL;
}

WH_NOIPA static wh_model *model_from_mem_buf(const void *p, size_t n, char *err, size_t errlen)
{
    wh_model *m = calloc(1, sizeof(*m));
    void *copy = n ? aligned_alloc(64, ALIGN(n, 64)) : NULL;
    if (!m || (n && !copy)) {
        free(m);
        free(copy);
        fail(err, errlen, "out of memory");
        return NULL;
    }
    if (n) memcpy(copy, p, n);
    m->base = copy;
    m->size = n;
    return finish(m, err, errlen);
}

void wh_model_retain(wh_model *m)
{
    atomic_fetch_add(&m->refs, 1);
}

void wh_model_release(wh_model *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    if (m->mapped)
        munmap((void *)m->base, m->maplen);
    else
        free((void *)m->base);
    free(m);
}

uint32_t wh_model_nlabels(const wh_model *m)
{
    return m->nlabels;
}

const char *wh_model_label(const wh_model *m, uint32_t i)
{
    return i < m->nlabels ? m->labels[i] : NULL;
}

int32_t wh_model_find_label(const wh_model *m, const char *name)
{
    for (uint32_t i = 0; i < m->nlabels; i++)
        if (!strcmp(m->labels[i], name)) return (int32_t)i;
    return -1;
}

const wh_ml_fcfg *wh_model_fcfg(const wh_model *m)
{
    return &m->f;
}

const char *wh_model_meta(const wh_model *m)
{
    return m->meta;
}

const char *wh_model_checksum(const wh_model *m)
{
    return m->sum;
}

float wh_model_weight(const wh_model *m, uint32_t bucket, uint32_t label)
{
    return m->w[(size_t)bucket * m->nlabels + label];
}

float wh_model_bias(const wh_model *m, uint32_t label)
{
    return m->bias[label];
}

static inline float sigmoid(float z)
{
    return 1.0f / (1.0f + expf(-z));
}

void wh_model_score_fv(const wh_model *m, const wh_ml_fv *fv, float *out)
{
    const uint32_t *u = fv->u, n = fv->nu;
    const float *x = fv->x;
    if (m->nlabels == 1) {
        /* four sums, so that the loads of independent buckets overlap */
        const float *w = m->w;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        uint32_t i = 0;
        for (; i + 4 <= n; i += 4) {
            s0 += w[u[i]] * x[i];
            s1 += w[u[i + 1]] * x[i + 1];
            s2 += w[u[i + 2]] * x[i + 2];
            s3 += w[u[i + 3]] * x[i + 3];
        }
        for (; i < n; i++)
            s0 += w[u[i]] * x[i];
        out[0] = sigmoid(m->bias[0] + ((s0 + s1) + (s2 + s3)));
        return;
    }
    float acc[WH_ML_MAX_LABELS] = {0};
    uint32_t nl = m->nlabels;
    for (uint32_t i = 0; i < n; i++) {
        const float *row = m->w + (size_t)u[i] * nl;
        for (uint32_t l = 0; l < nl; l++)
            acc[l] += row[l] * x[i];
    }
    for (uint32_t l = 0; l < nl; l++)
        out[l] = sigmoid(m->bias[l] + acc[l]);
}

bool wh_model_score(const wh_model *m, const wh_text *t, wh_ml_fv *fv, float *out)
{
    if (!wh_ml_featurize(&m->f, t, fv)) return false;
    wh_model_score_fv(m, fv, out);
    return true;
}

wh_model *wh_model_open(const char *path, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    wh_model *m = model_open_buf(path, e->message, sizeof(e->message));
    e->code = m ? WH_OK : WH_EINVAL;
    return m;
}

wh_model *wh_model_from_mem(const void *p, size_t n, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    wh_model *m = model_from_mem_buf(p, n, e->message, sizeof(e->message));
    e->code = m ? WH_OK : WH_EINVAL;
    return m;
}
