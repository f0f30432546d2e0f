/* sketch.c - see sketch.h. */
#include "sketch.h"

#include "base/base.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

/* The SimHash leaves out words with a digit when the other words make at least this many
 * bytes: in "POG 3" the number is half the text (a flood of counted lines stays distinct),
 * in an ad it is noise. */
#define SIM_PLAIN_MIN 20
#define MAX_REDUCED 4096 /* longer texts are sketched by their first 4 KiB (and their length) */
#define MAX_WORDS 255    /* the anchors and the distinct length look at the first 255 words */

/* The work is built twice: for any x86-64 (SSE2), and for CPUs with AVX2, BMI1/2 and POPCNT
 * (32 bytes a step in classify; three-operand vector instructions, andn, blsr, tzcnt and
 * popcnt elsewhere), picked once at run time. */
#define V3 __attribute__((target("avx2,bmi,bmi2,popcnt")))
#define INLINE static inline __attribute__((always_inline))

/* Tabulation hashing of a 3-gram: three table lookups, XORed (3-independent, so as good
 * as a strong hash for SimHash). The tables are filled from a fixed seed. */
static uint64_t tab[3][256];
/* tab[1], tab[0], tab[2], tab[1] of a byte: what a pair of grams needs of it, 16 bytes a load
 * (see gram2) */
static uint64_t row[256][4] __attribute__((aligned(32)));
static bool have_v3;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT; /* two first callers at once: one fills */

static void tab_init(void)
{
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 256; i++)
            tab[k][i] = wh_splitmix64(&x);
    for (int i = 0; i < 256; i++) {
        row[i][0] = tab[1][i];
        row[i][1] = tab[0][i];
        row[i][2] = tab[2][i];
        row[i][3] = tab[1][i];
    }
    __builtin_cpu_init();
    have_v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
              __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
}

static inline uint64_t gram(const char *r, uint32_t i)
{
    return tab[0][(unsigned char)r[i]] ^ tab[1][(unsigned char)r[i + 1]] ^
           tab[2][(unsigned char)r[i + 2]];
}

uint64_t wh_sketch_sim_reference(const char *r, uint32_t k)
{
    pthread_once(&tab_once, tab_init);
    if (k < 3) return XXH3_64bits_withSeed(r, k, 0x5157);
    uint32_t cnt[64] = {0}, ngrams = k - 2;
    for (uint32_t i = 0; i < ngrams; i++) {
        uint64_t h = gram(r, i);
        for (int b = 0; b < 64; b++)
            cnt[b] += (uint32_t)(h >> b & 1);
    }
    uint64_t sim = 0;
    for (int b = 0; b < 64; b++)
        if (cnt[b] > ngrams / 2) sim |= (uint64_t)1 << b;
    return sim;
}

static inline uint64_t load64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t load32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- the bytes ----
 *
 * classify: bytes [0, n) of s to t, lowered (what the reduction keeps: letters, digits,
 * non-ASCII; capitals lowered) or as spaces, and to bit masks, 64 bytes a word, bits past n
 * 0: mk[KEPT] the kept bytes, mk[DIGITS] the digits, mk[LETTERS] the letters, mk[SAME] the
 * bytes equal (lowered) to the one before. 32 bytes a step. */
enum { KEPT, DIGITS, LETTERS, SAME };
typedef uint64_t masks[4][MAX_REDUCED / 64];

/* Bytes [0, m) of p, 0 < m < 16, zero-filled: read with loads that stay inside them (the
 * text's end may be the end of its memory), not with a copy to the stack and back. */
INLINE __m128i load_part(const char *p, uint32_t m)
{
    uint64_t lo, hi = 0;
    if (m >= 8) {
        lo = load64(p);
        if (m > 8) hi = load64(p + m - 8) >> (8 * (16 - m));
    } else if (m >= 4) {
        lo = load32(p) | (uint64_t)load32(p + m - 4) << (8 * (m - 4));
    } else {
        lo = (unsigned char)p[0] | (uint64_t)(unsigned char)p[m / 2] << (8 * (m / 2)) |
             (uint64_t)(unsigned char)p[m - 1] << (8 * (m - 1));
    }
    return _mm_set_epi64x((long long)hi, (long long)lo);
}

/* Bytes [0, m) of p, 0 < m < 32, zero-filled, as two halves. */
INLINE void load_part32(const char *p, uint32_t m, __m128i *lo, __m128i *hi)
{
    if (m >= 16) {
        *lo = _mm_loadu_si128((const __m128i *)p);
        *hi = m > 16 ? load_part(p + 16, m - 16) : _mm_setzero_si128();
    } else {
        *lo = load_part(p, m);
        *hi = _mm_setzero_si128();
    }
}

/* The lowered bytes of x and its masks (bits 0-15); before: the 16 lowered bytes before x.
 * c in [lo, lo + w] <=> min(c - lo, w) == c - lo (unsigned bytes), and a letter is a byte
 * whose lowercase (| 0x20) is in [a, z]. */
INLINE __m128i class16(__m128i x, __m128i before, uint32_t m[4])
{
    const __m128i b20 = _mm_set1_epi8(0x20);
    __m128i lc = _mm_sub_epi8(_mm_or_si128(x, b20), _mm_set1_epi8('a'));
    __m128i dg = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    __m128i is_al = _mm_cmpeq_epi8(_mm_min_epu8(lc, _mm_set1_epi8(25)), lc);
    __m128i is_dg = _mm_cmpeq_epi8(_mm_min_epu8(dg, _mm_set1_epi8(9)), dg);
    __m128i as_is = _mm_or_si128(is_dg, _mm_cmplt_epi8(x, _mm_setzero_si128()));
    __m128i keep = _mm_or_si128(is_al, as_is);
    /* letters | 0x20, digits and non-ASCII as they are, the rest ' ' (0x20) */
    __m128i o = _mm_or_si128(_mm_and_si128(x, keep), _mm_andnot_si128(as_is, b20));
    __m128i o1 = _mm_or_si128(_mm_slli_si128(o, 1), _mm_srli_si128(before, 15));
    m[KEPT] = (uint32_t)_mm_movemask_epi8(keep);
    m[DIGITS] = (uint32_t)_mm_movemask_epi8(is_dg);
    m[LETTERS] = (uint32_t)_mm_movemask_epi8(is_al);
    m[SAME] = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(o, o1));
    return o;
}

static void classify(const char *s, uint32_t n, unsigned char *t, masks mk)
{
    __m128i prev = _mm_set1_epi8(' '); /* the 16 lowered bytes before these */
    for (uint32_t b = 0; b * 64 < n; b++) {
        uint32_t m[2][4] = {{0}}; /* the masks of the block's two halves */
        for (uint32_t h = 0; h < 2 && b * 64 + h * 32 < n; h++) {
            uint32_t off = b * 64 + h * 32, m0[4], m1[4];
            __m128i x0, x1;
            if (off + 32 <= n) {
                x0 = _mm_loadu_si128((const __m128i *)(s + off));
                x1 = _mm_loadu_si128((const __m128i *)(s + off + 16));
            } else {
                load_part32(s + off, n - off, &x0, &x1);
            }
            __m128i o0 = class16(x0, prev, m0);
            prev = class16(x1, o0, m1);
            _mm_storeu_si128((__m128i *)(t + off), o0);
            _mm_storeu_si128((__m128i *)(t + off + 16), prev);
            for (int j = 0; j < 4; j++)
                m[h][j] = m0[j] | m1[j] << 16;
        }
        for (int j = 0; j < 4; j++)
            mk[j][b] = m[0][j] | (uint64_t)m[1][j] << 32;
    }
}

V3 static void classify_v3(const char *s, uint32_t n, unsigned char *t, masks mk)
{
    const __m256i b20 = _mm256_set1_epi8(0x20), ca = _mm256_set1_epi8('a');
    const __m256i c0 = _mm256_set1_epi8('0'), r25 = _mm256_set1_epi8(25);
    const __m256i r9 = _mm256_set1_epi8(9), zero = _mm256_setzero_si256();
    __m256i prev = _mm256_set1_epi8(' '); /* the 32 lowered bytes before these */
    for (uint32_t b = 0; b * 64 < n; b++) {
        uint32_t m[2][4] = {{0}};
        for (uint32_t h = 0; h < 2 && b * 64 + h * 32 < n; h++) {
            uint32_t off = b * 64 + h * 32;
            __m256i x;
            if (off + 32 <= n) {
                x = _mm256_loadu_si256((const __m256i *)(s + off));
            } else {
                __m128i lo, hi;
                load_part32(s + off, n - off, &lo, &hi);
                x = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
            }
            /* as class16 */
            __m256i lc = _mm256_sub_epi8(_mm256_or_si256(x, b20), ca);
            __m256i dg = _mm256_sub_epi8(x, c0);
            __m256i is_al = _mm256_cmpeq_epi8(_mm256_min_epu8(lc, r25), lc);
            __m256i is_dg = _mm256_cmpeq_epi8(_mm256_min_epu8(dg, r9), dg);
            __m256i as_is = _mm256_or_si256(is_dg, _mm256_cmpgt_epi8(zero, x));
            __m256i keep = _mm256_or_si256(is_al, as_is);
            __m256i o = _mm256_or_si256(_mm256_and_si256(x, keep), _mm256_andnot_si256(as_is, b20));
            _mm256_storeu_si256((__m256i *)(t + off), o);
            /* o one byte later: each 16-byte lane's first byte from the lane before it */
            __m256i o1 = _mm256_alignr_epi8(o, _mm256_permute2x128_si256(prev, o, 0x21), 15);
            prev = o;
            m[h][KEPT] = (uint32_t)_mm256_movemask_epi8(keep);
            m[h][DIGITS] = (uint32_t)_mm256_movemask_epi8(is_dg);
            m[h][LETTERS] = (uint32_t)_mm256_movemask_epi8(is_al);
            m[h][SAME] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(o, o1));
        }
        for (int j = 0; j < 4; j++)
            mk[j][b] = m[0][j] | (uint64_t)m[1][j] << 32;
    }
}

/* ---- the words ---- */

/* Whether a bit of m is set in [i, e), i < e. */
INLINE bool any_in(const uint64_t *m, uint32_t i, uint32_t e)
{
    uint32_t b = i / 64, last = (e - 1) / 64;
    uint64_t w = m[b] >> (i % 64);
    if (b == last) return (w << (64 - (e - i))) != 0; /* the word is in one block */
    if (w) return true;
    for (b++; b < last; b++)
        if (m[b]) return true;
    return (m[last] << (63 - (e - 1) % 64)) != 0;
}

/* How many bits of m are set in [i, e). */
INLINE uint32_t bits_in(const uint64_t *m, uint32_t i, uint32_t e)
{
    uint32_t n = 0;
    for (uint32_t b = i / 64; b * 64 < e; b++) {
        uint64_t w = m[b];
        if (b == i / 64) w &= ~(uint64_t)0 << (i % 64);
        if ((b + 1) * 64 > e) w &= ~(~(uint64_t)0 << (e % 64));
        n += (uint32_t)__builtin_popcountll(w);
    }
    return n;
}

/* What a word's length (up to 8) says: the mask of its bytes in 8, and its tier (0 for 5+
 * bytes, 1 for 3-4, 2 for shorter; 3, for a word with a digit, is TIER_DIGIT; see
 * summarize). */
static const struct {
    uint64_t low;
    uint32_t tier;
} bylen[9] = {
    {0, 2u << 30},          {0xff, 2u << 30},         {0xffff, 2u << 30},
    {0xffffff, 1u << 30},   {0xffffffff, 1u << 30},   {0xffffffffffULL, 0},
    {0xffffffffffffULL, 0}, {0xffffffffffffffULL, 0}, {~(uint64_t)0, 0},
};
#define TIER_DIGIT (3u << 30)

/* The hash of a word p[0, len): 8 bytes a step, the last step's missing bytes 0. low: the
 * mask of the first step. */
INLINE uint64_t word_hash(const unsigned char *p, uint32_t len, uint64_t low)
{
    uint64_t h = len, c = load64(p) & low; /* most words have no more */
    h = (h ^ c) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    for (uint32_t j = 8; j < len; j += 8) {
        c = load64(p + j);
        if (len - j < 8) c &= bylen[len - j].low;
        h = (h ^ c) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return h;
}

/* Copies p[0, m) to q 16 bytes a step (both have 16 bytes of slack). */
INLINE void copy16(char *q, const unsigned char *p, uint32_t m)
{
    _mm_storeu_si128((__m128i *)q, _mm_loadu_si128((const __m128i *)p));
    for (uint32_t j = 16; j < m; j += 16) /* most words have no more */
        _mm_storeu_si128((__m128i *)(q + j), _mm_loadu_si128((const __m128i *)(p + j)));
}

/* What the summary needs of a word. */
typedef struct {
    uint64_t me;  /* hash << 32 | length (what makes a repeat); no word has length 2^32-1 */
    uint32_t key; /* tier << 30 | mixed hash >> 2 (see summarize) */
    uint32_t at;  /* where it starts in t */
} wordrec;

/* The words, each a run of kept bytes of t (t[-1] is a space, and so are the 16 bytes after
 * the text), go to r (every word, for the hash) and the SimHash's text r2, which leaves out
 * words with a digit, both with a space before each word (r[0] and r2[0] are spaces); and to
 * rec, the first 255 of them, for the summary. Words of 15+ digits (ids) go nowhere. */
typedef struct {
    const unsigned char *t;
    const uint16_t *edges; /* word w is [edges[2w], edges[2w + 1]) */
    uint32_t nwords;
    const uint64_t *dm; /* the digits */
    char *r, *r2;
    wordrec *rec;
} wordsin;

typedef struct {
    uint32_t k;  /* bytes in r */
    uint32_t k2; /* bytes in r2; UINT32_MAX until the first word with a digit (r2 is r) */
    uint32_t nw; /* words in rec */
} wordsout;

/* Fills *rp for the word t[i, i + len): low, tier as bylen[min(len, 8)] (or TIER_DIGIT). */
INLINE void record(wordrec *rp, const unsigned char *t, uint32_t i, uint32_t len, uint64_t low,
                   uint32_t tier)
{
    uint64_t h = word_hash(t + i, len, low);
    uint32_t h32 = (uint32_t)(h ^ (h >> 32)), x = h32 * 0x9e3779b1u;
    x ^= x >> 15;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    rp->me = (uint64_t)h32 << 32 | len;
    rp->key = tier | (x >> 2);
    rp->at = i;
}

/* A text without digits: every word goes to rec (the first 255) and to r, in two loops that
 * each keep few values (in one loop they did not fit in the registers). */
INLINE wordsout walk_plain(const wordsin *in)
{
    const unsigned char *t = in->t;
    const uint16_t *ep = in->edges;
    uint32_t nwords = in->nwords, nw = nwords < MAX_WORDS ? nwords : MAX_WORDS;
    for (uint32_t w = 0; w < nw; w++) {
        uint32_t i = ep[2 * w], len = ep[2 * w + 1] - i;
        uint32_t bl = len < 8 ? len : 8;
        record(&in->rec[w], t, i, len, bylen[bl].low, bylen[bl].tier);
    }
    char *q = in->r;
    for (uint32_t w = 0; w < nwords; w++) {
        uint32_t i = ep[2 * w], len = ep[2 * w + 1] - i;
        copy16(q, t + i - 1, len + 1); /* the space before it, and it */
        q += len + 1;
    }
    return (wordsout){(uint32_t)(q - in->r), UINT32_MAX, nw};
}

/* A text with digits: the ids go nowhere, and r2 leaves out the words with a digit. */
INLINE wordsout walk_digits(const wordsin *in)
{
    const unsigned char *t = in->t;
    const uint16_t *ep = in->edges, *eend = ep + 2 * in->nwords;
    char *q = in->r, *q2 = NULL; /* where the next word goes (in r2: once it is written) */
    wordrec *rp = in->rec, *rlast = rp + MAX_WORDS;
    for (; ep < eend; ep += 2) {
        uint32_t i = ep[0], len = ep[1] - i, bl = len < 8 ? len : 8, tier = bylen[bl].tier;
        bool digit = any_in(in->dm, i, i + len);
        if (digit) {
            if (len >= 15 && bits_in(in->dm, i, i + len) == len) continue; /* an id */
            tier = TIER_DIGIT;
        }
        record(rp, t, i, len, bylen[bl].low, tier);
        rp = rp < rlast ? rp + 1 : rp; /* rec[MAX_WORDS] takes the words past the first 255 */
        copy16(q, t + i - 1, len + 1);
        /* the text the SimHash reads leaves out words with a digit: a spam copy's random
         * number or tag ("buy followers 48213", "... #x7k2q") is noise, not what makes two
         * texts alike */
        if (digit) {
            if (!q2) { /* the first: the words before it are r's */
                memcpy(in->r2, in->r, (size_t)(q - in->r));
                q2 = in->r2 + (q - in->r);
            }
        } else if (q2) {
            copy16(q2, t + i - 1, len + 1);
            q2 += len + 1;
        }
        q += len + 1;
    }
    return (wordsout){(uint32_t)(q - in->r), q2 ? (uint32_t)(q2 - in->r2) : UINT32_MAX,
                      (uint32_t)(rp - in->rec)};
}

/* Out of line: inlined, the walks' values took the registers from each other's. */
static __attribute__((noinline)) wordsout walk_plain_base(const wordsin *in)
{
    return walk_plain(in);
}
V3 static __attribute__((noinline)) wordsout walk_plain_v3(const wordsin *in)
{
    return walk_plain(in);
}
static __attribute__((noinline)) wordsout walk_digits_base(const wordsin *in)
{
    return walk_digits(in);
}
V3 static __attribute__((noinline)) wordsout walk_digits_v3(const wordsin *in)
{
    return walk_digits(in);
}

/* The anchors and the distinct length, from the first 255 words (rec[-4..-1] are not words:
 * their me is ~0):
 * - anchors: the two smallest keys, a key being the word's tier (0: 5+ bytes, 1: 3-4,
 *   2: shorter, 3: a word with a digit) in the top 2 bits and its hash below, so long words
 *   come first and a spam copy's random number or tag never takes the place of the words its
 *   copies share;
 * - distinct length: a word equal to one of the 4 before it counts no more (repetition
 *   is what makes "KEKW KEKW KEKW" look long), and a word counts its bytes less cut[w], its
 *   stretched letters (no cut: none). */
INLINE void summarize(const wordrec *rec, uint32_t nw, const uint16_t *cut, wh_sketch *out)
{
    uint32_t a0 = UINT32_MAX, a1 = UINT32_MAX, len = 0;
    for (uint32_t w = 0; w < nw; w++) {
        const wordrec *p = rec + w;
        uint64_t me = p->me;
        uint32_t key = p->key;
        if (key < a0)
            a1 = a0, a0 = key;
        else if (key < a1 && key != a0)
            a1 = key;
        /* a repeat of one of the 4 words before (hash and length) counts nothing */
        if (me != p[-1].me && me != p[-2].me && me != p[-3].me && me != p[-4].me)
            len += (len ? 1 : 0) + (uint32_t)me - (cut ? cut[w] : 0);
    }
    out->anchor[0] = a0;
    out->anchor[1] = a1 != UINT32_MAX ? a1 : a0;
    out->length = len;
}

/* ---- the SimHash ---- */

#define PLANES 16 /* bit-sliced counters: a lane counts at most 2,047 grams (11 planes) */

/* Carry-save adder on two lanes: (h, l) = a + b + c, bitwise. */
#define CSA2(h, l, a, b, c)                                                                        \
    do {                                                                                           \
        __m128i u_ = _mm_xor_si128(a, b);                                                          \
        h = _mm_or_si128(_mm_and_si128(a, b), _mm_and_si128(u_, c));                               \
        l = _mm_xor_si128(u_, c);                                                                  \
    } while (0)

/* The hashes of grams i and i + 1 (low, high lane) from the rows of bytes r[i..i + 3]: tab[0]
 * of the first and tab[2] of the last, and (tab[1], tab[0]) of the second and (tab[2],
 * tab[1]) of the third, each one load. */
INLINE __m128i gram2(const uint64_t *a, const uint64_t *b, const uint64_t *c, const uint64_t *d)
{
    __m128d w = _mm_loadh_pd(_mm_load_sd((const double *)&a[1]), (const double *)&d[2]);
    return _mm_xor_si128(_mm_xor_si128(_mm_castpd_si128(w), _mm_load_si128((const __m128i *)b)),
                         _mm_load_si128((const __m128i *)&c[2]));
}

/* The hashes of the 2n grams from q as n pairs; with m < 2n grams left, those past them 0. */
INLINE void grams(const unsigned char *q, __m128i *v, uint32_t n, uint32_t m)
{
    /* each pair's rows: the last two of the pair before and two more */
    const uint64_t *ra = row[q[0]], *rb = row[q[1]], *rc, *rd;
    for (uint32_t j = 0; j < n; j++) {
        rc = row[q[2 * j + 2]], rd = row[q[2 * j + 3]];
        v[j] = gram2(ra, rb, rc, rd);
        ra = rc, rb = rd;
    }
    if (m < 2 * n) {
        /* lane l of pair j is kept when 2j + l < m: keep[16 - m + 2j + l] */
        static const uint64_t keep[32] = {~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull,
                                          ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull};
        for (uint32_t j = 0; j < n; j++)
            v[j] = _mm_and_si128(v[j], _mm_loadu_si128((const __m128i *)&keep[16 - m + 2 * j]));
    }
}

/* A signature bit is set when more than half the 3-gram hashes set it. The 64 counters are
 * bit-sliced (plane b holds bit b of every counter), two grams side by side (each lane counts
 * every other gram), and the grams are added sixteen at a time with a carry-save adder tree
 * (Harley-Seal), so a gram costs a few vector operations instead of 64 increments.
 * r[0, k), k >= 3, and 16 more bytes that are read (not counted). */
INLINE uint64_t simhash(const unsigned char *r, uint32_t k)
{
    const __m128i zero = _mm_setzero_si128();
    uint32_t ngrams = k - 2, i = 0, rounds = 0;
    /* planes 0-3, and 4 to top - 1 */
    __m128i ones = zero, twos = zero, fours = zero, eights = zero, pl[PLANES];
    uint32_t top = 4;
    while (i < ngrams) {
        uint32_t m = ngrams - i;
        __m128i v[8], twosA, twosB, foursA, foursB, add8; /* what the round adds at weight 8 */
        if (m > 8) {
            grams(r + i, v, 8, m);
            CSA2(twosA, ones, ones, v[0], v[1]);
            CSA2(twosB, ones, ones, v[2], v[3]);
            CSA2(foursA, twos, twos, twosA, twosB);
            CSA2(twosA, ones, ones, v[4], v[5]);
            CSA2(twosB, ones, ones, v[6], v[7]);
            CSA2(foursB, twos, twos, twosA, twosB);
            CSA2(add8, fours, fours, foursA, foursB);
            i += 16;
        } else { /* the last 1-8 grams: half the tree */
            grams(r + i, v, 4, m);
            CSA2(twosA, ones, ones, v[0], v[1]);
            CSA2(twosB, ones, ones, v[2], v[3]);
            CSA2(foursA, twos, twos, twosA, twosB);
            add8 = _mm_and_si128(fours, foursA);
            fours = _mm_xor_si128(fours, foursA);
            i += 8;
        }
        __m128i c = _mm_and_si128(eights, add8);
        eights = _mm_xor_si128(eights, add8);
        /* after n rounds a lane has counted at most 8n, so the planes from 4 on hold at most
         * n / 2: one more plane when n / 2 reaches a power of 2 */
        rounds++;
        if (rounds >= 2 && (rounds & (rounds - 1)) == 0) pl[top++] = zero;
        for (uint32_t b = 4; b < top; b++) {
            __m128i d = _mm_and_si128(pl[b], c);
            pl[b] = _mm_xor_si128(pl[b], c);
            c = d;
        }
    }
    /* the two lanes' counts added (a ripple-carry adder, plane by plane from the lowest) and
     * compared with ngrams / 2 on the way: gt is whether the sum's bits so far make more than
     * half's */
    uint32_t half = ngrams / 2;
    uint64_t carry = 0, gt = 0;
    for (uint32_t b = 0; b < top; b++) {
        __m128i v = b == 0 ? ones : b == 1 ? twos : b == 2 ? fours : b == 3 ? eights : pl[b];
        uint64_t x = (uint64_t)_mm_cvtsi128_si64(v);
        uint64_t y = (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v));
        uint64_t u = x ^ y, sum = u ^ carry;
        carry = (x & y) | (u & carry);
        gt = half >> b & 1 ? sum & gt : sum | gt;
    }
    /* the sum's last bit is the carry, and the bits above it are 0 */
    gt = half >> top & 1 ? carry & gt : carry | gt;
    return half >> top >> 1 ? 0 : gt;
}

/* ---- the sketch ---- */

INLINE void sketch(const char *s, uint32_t n, uint32_t sim_from, wh_sketch *out, const bool v3)
{
    /* Classify 32 bytes at a time: what the reduction keeps and what is a digit, as bit masks.
     * Then walk the words (runs of kept bytes) with the masks: copy each into r with one
     * space before it and hash it. A per-byte loop with a branch per byte cost ten times
     * more. */
    uint32_t lim = n < MAX_REDUCED - 1 ? n : MAX_REDUCED - 1, nblk = (lim + 63) / 64;
    unsigned char tb[MAX_REDUCED + 48], *t = tb + 1; /* t[-1]: the space before a first word */
    masks mk;
    if (v3)
        classify_v3(s, lim, t, mk);
    else
        classify(s, lim, t, mk);
    tb[0] = ' ';
    _mm_storeu_si128((__m128i *)(t + lim), _mm_set1_epi8(' '));
    /* runs of set bits in mk[KEPT] are the words: their starts and ends (the first byte
     * after) are the bits where it changes, a block's carry-in being the last bit of the one
     * before; they come in turn, so edges[2w] and edges[2w + 1] are word w's. A letter is the
     * third or later of a run of one letter ("goooo": the last two o) when it and the byte
     * before are the same as the byte before them: those go to mk[SAME]. */
    uint16_t edges[MAX_REDUCED + 4];
    uint32_t ne = 0;
    uint64_t cin = 0, scin = 0, any_digit = 0, any_run = 0;
    for (uint32_t b = 0; b < nblk; b++) {
        uint64_t m = mk[KEPT][b], ed = m ^ (m << 1 | cin);
        cin = m >> 63;
        uint64_t same = mk[SAME][b], run = mk[LETTERS][b] & same & (same << 1 | scin);
        scin = same >> 63;
        mk[SAME][b] = run;
        any_digit |= mk[DIGITS][b];
        any_run |= run;
        if (v3) { /* four at a time (tzcnt: one instruction, 64 for 0) */
            uint16_t *o = edges + ne;
            ne += (uint32_t)__builtin_popcountll(ed);
            for (; ed; o += 4)
                for (int j = 0; j < 4; j++) {
                    o[j] = (uint16_t)(b * 64 + (ed ? (uint32_t)__builtin_ctzll(ed) : 64));
                    ed &= ed - 1;
                }
        } else {
            for (; ed; ed &= ed - 1)
                edges[ne++] = (uint16_t)(b * 64 + (uint32_t)__builtin_ctzll(ed));
        }
    }
    if (ne & 1) edges[ne++] = (uint16_t)lim; /* the last word runs to the end */
    char rb[MAX_REDUCED + 32], r2b[MAX_REDUCED + 32];
    wordrec recb[4 + MAX_WORDS + 1], *rec = recb + 4;
    for (int w = 0; w < 4; w++)
        recb[w].me = ~(uint64_t)0;
    wordsin in = {t, edges, ne / 2, mk[DIGITS], rb, r2b, rec};
    wordsout wo = any_digit ? (v3 ? walk_digits_v3(&in) : walk_digits_base(&in))
                            : (v3 ? walk_plain_v3(&in) : walk_plain_base(&in));
    /* a letter repeated more than twice counts twice: "GOOOOOOOOOOOO" is as long as "goo" (a
     * stretched word is hype, not text); digits count as they are. A run's third letter and on
     * are in a word with the two before them. */
    uint16_t cut[MAX_WORDS + 1];
    if (any_run)
        for (uint32_t w = 0; w < wo.nw; w++)
            cut[w] = (uint16_t)bits_in(mk[SAME], rec[w].at, rec[w].at + (uint32_t)rec[w].me);
    summarize(rec, wo.nw, any_run ? cut : NULL, out);
    if (wo.k == 0) {
        out->hash = 0;
        out->sim = 0;
        return;
    }
    char *r = rb + 1;
    uint32_t k = wo.k - 1;
    out->hash = XXH3_64bits(r, k) | 1; /* never 0: 0 is "no text" */
    if (out->length < sim_from) {
        out->sim = 0;
        return;
    }
    if (wo.k2 != UINT32_MAX && wo.k2 >= SIM_PLAIN_MIN + 1) {
        /* the words without digits, when there are enough of them (r2 is k2 - 1 bytes) */
        r = r2b + 1;
        k = wo.k2 - 1;
    }
    if (k < 3) {
        out->sim = XXH3_64bits_withSeed(r, k, 0x5157);
        return;
    }
    _mm_storeu_si128((__m128i *)(r + k), _mm_setzero_si128()); /* what simhash reads past r */
    out->sim = simhash((const unsigned char *)r, k);
}

static void sketch_base(const char *s, uint32_t n, uint32_t sim_from, wh_sketch *out)
{
    sketch(s, n, sim_from, out, false);
}

V3 static void sketch_v3(const char *s, uint32_t n, uint32_t sim_from, wh_sketch *out)
{
    sketch(s, n, sim_from, out, true);
}

void wh_sketch_text(const char *s, uint32_t n, wh_sketch *out)
{
    wh_sketch_text_opt(s, n, 0, out);
}

void wh_sketch_text_opt(const char *s, uint32_t n, uint32_t sim_from, wh_sketch *out)
{
    pthread_once(&tab_once, tab_init);
    if (have_v3)
        sketch_v3(s, n, sim_from, out);
    else
        sketch_base(s, n, sim_from, out);
}
