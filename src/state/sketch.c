/* sketch.c - see sketch.h. */
#include "sketch.h"

#include "base/base.h"

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

/* Tabulation hashing of a 3-gram: three table lookups, XORed (3-independent, so as good
 * as a strong hash for SimHash). The tables are filled from a fixed seed. */
static uint64_t tab[3][256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT; /* two first callers at once: one fills */

static void tab_init(void)
{
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 256; i++)
            tab[k][i] = wh_splitmix64(&x);
}

/* Carry-save adder: (h, l) = a + b + c, bitwise. */
#define CSA(h, l, a, b, c)                                                                         \
    do {                                                                                           \
        uint64_t u_ = (a) ^ (b);                                                                   \
        h = ((a) & (b)) | (u_ & (c));                                                              \
        l = u_ ^ (c);                                                                              \
    } while (0)

#define PLANES 16 /* bit-sliced counters: up to 65,535 grams (MAX_REDUCED keeps far below) */

/* Adds x (one bit per position) at weight 2^k to the bit-sliced counters. */
static inline void plane_add(uint64_t *p, unsigned k, uint64_t x)
{
    while (x && k < PLANES) {
        uint64_t c = p[k] & x;
        p[k] ^= x;
        x = c;
        k++;
    }
}

static inline uint64_t gram(const char *r, uint32_t i)
{
    return tab[0][(unsigned char)r[i]] ^ tab[1][(unsigned char)r[i + 1]] ^
           tab[2][(unsigned char)r[i + 2]];
}

/* The anchors and the distinct length, folded in word by word (the first 255 words):
 * - anchors: the two smallest keys, a key being the word's tier (0: 5+ bytes, 1: 3-4,
 *   2: shorter, 3: a word with a digit) in the top 2 bits and its hash below, so long words
 *   come first and a spam copy's random number or tag never takes the place of the words its
 *   copies share;
 * - distinct length: a word equal to one of the 4 before it counts no more (repetition
 *   is what makes "KEKW KEKW KEKW" look long). */
typedef struct {
    uint32_t a0, a1, len, nw;
    uint64_t p1, p2, p3, p4; /* the last 4 words (hash and length); no word has length 2^32-1 */
} summary;

static inline __attribute__((always_inline)) void summary_add(summary *sm, uint32_t h, uint32_t l,
                                                              uint32_t counted, bool noise)
{
    uint32_t x = h * 0x9e3779b1u;
    x ^= x >> 15;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    static const uint8_t tier_of[8] = {2, 2, 2, 1, 1, 0, 0, 0};
    uint32_t tier = noise ? 3 : tier_of[l < 7 ? l : 7];
    uint32_t key = tier << 30 | (x >> 2);
    if (key < sm->a0)
        sm->a1 = sm->a0, sm->a0 = key;
    else if (key < sm->a1 && key != sm->a0)
        sm->a1 = key;
    /* a repeat of one of the 4 words before (hash and length) */
    uint64_t me = (uint64_t)h << 32 | l;
    bool dup = (me == sm->p1) | (me == sm->p2) | (me == sm->p3) | (me == sm->p4);
    sm->p4 = sm->p3, sm->p3 = sm->p2, sm->p2 = sm->p1, sm->p1 = me;
    sm->len += dup ? 0 : (sm->len ? 1 : 0) + counted;
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

#include <emmintrin.h>

/* Bytes [0, n) of s: t gets them lowered (kept) or as spaces, km the kept bits, dm the
 * digit bits, rm the bits of letters that are the third or later of a run of one letter
 * ("gooo": the last two o), 64 bytes a word; bits past n are 0. *digits and *runs say
 * whether dm and rm have any bit set. */
static void classify(const char *s, uint32_t n, unsigned char *t, uint64_t *km, uint64_t *dm,
                     uint64_t *rm, uint32_t nblk, bool *digits, bool *runs)
{
    const __m128i A = _mm_set1_epi8('A'), a = _mm_set1_epi8('a'), zero = _mm_set1_epi8('0');
    const __m128i r25 = _mm_set1_epi8(25), r9 = _mm_set1_epi8(9), sp = _mm_set1_epi8(' ');
    const __m128i b20 = _mm_set1_epi8(0x20), nul = _mm_setzero_si128();
    __m128i prev = sp; /* the 16 lowered bytes before these */
    uint64_t any_digit = 0, any_run = 0;
    for (uint32_t b = 0; b < nblk; b++) {
        uint64_t k64 = 0, d64 = 0, r64 = 0;
        for (uint32_t q = 0; q < 4; q++) {
            uint32_t off = b * 64 + q * 16;
            __m128i x;
            if (off + 16 <= n) {
                x = _mm_loadu_si128((const __m128i *)(s + off));
            } else {
                unsigned char tmp[16] = {0};
                if (off < n) memcpy(tmp, s + off, n - off);
                x = _mm_loadu_si128((const __m128i *)tmp);
            }
            /* c in [lo, lo + w]  <=>  min(c - lo, w) == c - lo (unsigned bytes) */
            __m128i up = _mm_sub_epi8(x, A), lo = _mm_sub_epi8(x, a), dg = _mm_sub_epi8(x, zero);
            __m128i is_up = _mm_cmpeq_epi8(_mm_min_epu8(up, r25), up);
            __m128i is_lo = _mm_cmpeq_epi8(_mm_min_epu8(lo, r25), lo);
            __m128i is_dg = _mm_cmpeq_epi8(_mm_min_epu8(dg, r9), dg);
            __m128i is_hi = _mm_cmplt_epi8(x, nul);
            __m128i keep = _mm_or_si128(_mm_or_si128(is_up, is_lo), _mm_or_si128(is_dg, is_hi));
            __m128i conv = _mm_add_epi8(x, _mm_and_si128(is_up, b20));
            __m128i o = _mm_or_si128(_mm_and_si128(keep, conv), _mm_andnot_si128(keep, sp));
            _mm_storeu_si128((__m128i *)(t + off), o);
            /* o shifted by one and two bytes, the bytes before o's first coming from prev */
            __m128i o1 = _mm_or_si128(_mm_slli_si128(o, 1), _mm_srli_si128(prev, 15));
            __m128i o2 = _mm_or_si128(_mm_slli_si128(o, 2), _mm_srli_si128(prev, 14));
            __m128i run = _mm_and_si128(_mm_cmpeq_epi8(o, o1), _mm_cmpeq_epi8(o, o2));
            run = _mm_and_si128(run, _mm_or_si128(is_up, is_lo));
            prev = o;
            k64 |= (uint64_t)(uint32_t)_mm_movemask_epi8(keep) << (q * 16);
            d64 |= (uint64_t)(uint32_t)_mm_movemask_epi8(is_dg) << (q * 16);
            r64 |= (uint64_t)(uint32_t)_mm_movemask_epi8(run) << (q * 16);
        }
        km[b] = k64;
        dm[b] = d64;
        rm[b] = r64;
        any_digit |= d64;
        any_run |= r64;
    }
    *digits = any_digit != 0;
    *runs = any_run != 0;
}

/* How many bits of m are set in [i, e). */
static inline uint32_t bits_in(const uint64_t *m, uint32_t i, uint32_t e)
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

/* The first bit at or after i that is set (want) or clear (!want); nblk * 64 if none. */
static inline uint32_t next_bit(const uint64_t *m, uint32_t nblk, uint32_t i, bool want)
{
    for (uint32_t b = i / 64; b < nblk; b++) {
        uint64_t w = want ? m[b] : ~m[b];
        if (b == i / 64) w &= ~(uint64_t)0 << (i % 64);
        if (w) return b * 64 + (uint32_t)__builtin_ctzll(w);
    }
    return nblk * 64;
}

/* Where the words go: r (every word, for the hash), the summary, and the SimHash's text,
 * which leaves out words with a digit. Until the first such word that text is r itself
 * (plain == UINT32_MAX); then it is r2, its length plain. */
typedef struct {
    const unsigned char *t;
    const uint64_t *dm, *rm;
    uint32_t nblk;
    bool digits, runs; /* any digit, any run of 3+ letters in the text: else no word has one */
    char *r, *r2;
    uint32_t k, plain;
    summary sm;
} wordsink;

/* Appends the word t[i, e) to r (after a space) and to the word list, unless it is an id
 * (15+ digits). t and r have 16 bytes of slack: words are copied and hashed 8 bytes at a
 * time. */
static inline __attribute__((always_inline)) void add_word(wordsink *ws, uint32_t i, uint32_t e)
{
    const unsigned char *t = ws->t;
    uint32_t len = e - i, k = ws->k, k0 = k;
    bool digit = ws->digits && next_bit(ws->dm, ws->nblk, i, true) < e;
    if (len >= 15 && digit && next_bit(ws->dm, ws->nblk, i, false) >= e) return; /* an id */
    char *r = ws->r;
    if (k) r[k++] = ' ';
    uint64_t h = len, c;
    memcpy(&c, t + i, 8); /* the first 8 bytes: most words have no more */
    memcpy(r + k, &c, 8);
    if (len < 8) c &= ~(uint64_t)0 >> (8 * (8 - len));
    h = (h ^ c) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    for (uint32_t j = 8; j < len; j += 8) {
        memcpy(&c, t + i + j, 8);
        memcpy(r + k + j, &c, 8);
        if (len - j < 8) c &= ~(uint64_t)0 >> (8 * (8 - (len - j)));
        h = (h ^ c) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    ws->k = k + len;
    /* a letter repeated more than twice counts twice: "GOOOOOOOOOOOO" is as long as "goo"
     * (a stretched word is hype, not text); digits count as they are. A run's third letter
     * and on are rm's bits; the two before them are letters of the same word. */
    uint32_t stretched = ws->runs ? bits_in(ws->rm, i, e) : 0;
    if (ws->sm.nw < 255) {
        ws->sm.nw++;
        summary_add(&ws->sm, (uint32_t)(h ^ (h >> 32)), len, len - stretched, digit);
    }
    /* the text the SimHash reads leaves out words with a digit: a spam copy's random number or
     * tag ("buy followers 48213", "... #x7k2q") is noise, not what makes two texts alike */
    if (digit) {
        if (ws->plain == UINT32_MAX) { /* the first: the words before it are r's */
            memcpy(ws->r2, r, k0);
            ws->plain = k0;
        }
    } else if (ws->plain != UINT32_MAX) {
        uint32_t k2 = ws->plain;
        if (k2) ws->r2[k2++] = ' ';
        memcpy(ws->r2 + k2, t + i, len);
        ws->plain = k2 + len;
    }
}

void wh_sketch_text(const char *s, uint32_t n, wh_sketch *out)
{
    wh_sketch_text_opt(s, n, 0, out);
}

void wh_sketch_text_opt(const char *s, uint32_t n, uint32_t sim_from, wh_sketch *out)
{
    pthread_once(&tab_once, tab_init);
    /* Classify 16 bytes at a time (SSE2): what the reduction keeps (letters, digits,
     * non-ASCII; capitals lowered) and what is a digit, as bit masks. Then walk the words
     * (runs of kept bytes) with the masks: copy each into r with one space before it and
     * hash it. A per-byte loop with a branch per byte cost ten times more. Words of 15+
     * digits (platform ids in emote and mention markup) are left out. */
    uint32_t lim = n < MAX_REDUCED - 1 ? n : MAX_REDUCED - 1;
    unsigned char t[MAX_REDUCED + 16];
    uint64_t km[MAX_REDUCED / 64 + 1], dm[MAX_REDUCED / 64 + 1], rm[MAX_REDUCED / 64 + 1];
    uint32_t nblk = (lim + 63) / 64;
    bool digits, runs;
    classify(s, lim, t, km, dm, rm, nblk, &digits, &runs);
    char rb[MAX_REDUCED + 16], r2[MAX_REDUCED + 16];
    wordsink sink = {
        t,
        dm,
        rm,
        nblk,
        digits,
        runs,
        rb,
        r2,
        0,
        UINT32_MAX,
        {UINT32_MAX, UINT32_MAX, 0, 0, ~(uint64_t)0, ~(uint64_t)0, ~(uint64_t)0, ~(uint64_t)0}};
    /* runs of set bits in km are the words: their starts and ends (the first byte after) from
     * the bits where km changes, a block's carry-in being the last bit of the one before */
    uint16_t st[MAX_REDUCED / 2 + 1], en[MAX_REDUCED / 2 + 1];
    uint32_t ns = 0, ne = 0;
    uint64_t cin = 0;
    for (uint32_t b = 0; b < nblk; b++) {
        uint64_t m = km[b], prev = m << 1 | cin;
        uint64_t sb = m & ~prev, eb = ~m & prev;
        cin = m >> 63;
        for (; sb; sb &= sb - 1)
            st[ns++] = (uint16_t)(b * 64 + (uint32_t)__builtin_ctzll(sb));
        for (; eb; eb &= eb - 1)
            en[ne++] = (uint16_t)(b * 64 + (uint32_t)__builtin_ctzll(eb));
    }
    if (ne < ns) en[ne++] = (uint16_t)lim; /* the last word runs to the end */
    for (uint32_t w = 0; w < ns; w++)
        add_word(&sink, st[w], en[w]);
    out->anchor[0] = sink.sm.a0;
    out->anchor[1] = sink.sm.a1 != UINT32_MAX ? sink.sm.a1 : sink.sm.a0;
    out->length = sink.sm.len;
    char *r = rb;
    uint32_t k = sink.k, k2 = sink.plain == UINT32_MAX ? k : sink.plain;
    if (k == 0) {
        out->hash = 0;
        out->sim = 0;
        return;
    }
    out->hash = XXH3_64bits(r, k) | 1; /* never 0: 0 is "no text" */
    if (out->length < sim_from) {
        out->sim = 0;
        return;
    }
    if (sink.plain != UINT32_MAX && k2 >= SIM_PLAIN_MIN) {
        /* the words without digits, when there are enough of them */
        r = r2;
        k = k2;
    }
    if (k < 3) {
        out->sim = XXH3_64bits_withSeed(r, k, 0x5157);
        return;
    }
    /* SimHash: a signature bit is set when more than half the 3-gram hashes set it. The
     * 64 counters are bit-sliced (plane k holds bit k of every counter) and the grams are
     * added eight at a time with a carry-save adder tree (Harley-Seal), so a gram costs
     * about six word operations instead of 64 increments. */
    uint64_t p[PLANES] = {0};
    uint32_t ngrams = k - 2, i = 0;
    uint64_t ones = 0, twos = 0, fours = 0, eights, twosA, twosB, foursA, foursB;
    for (; i + 8 <= ngrams; i += 8) {
        CSA(twosA, ones, ones, gram(r, i), gram(r, i + 1));
        CSA(twosB, ones, ones, gram(r, i + 2), gram(r, i + 3));
        CSA(foursA, twos, twos, twosA, twosB);
        CSA(twosA, ones, ones, gram(r, i + 4), gram(r, i + 5));
        CSA(twosB, ones, ones, gram(r, i + 6), gram(r, i + 7));
        CSA(foursB, twos, twos, twosA, twosB);
        CSA(eights, fours, fours, foursA, foursB);
        plane_add(p, 3, eights);
    }
    if (i < ngrams) { /* the last 1-7 grams through the same tree, zeros for the missing */
        uint64_t g[8] = {0};
        for (uint32_t j = 0; i + j < ngrams; j++)
            g[j] = gram(r, i + j);
        CSA(twosA, ones, ones, g[0], g[1]);
        CSA(twosB, ones, ones, g[2], g[3]);
        CSA(foursA, twos, twos, twosA, twosB);
        CSA(twosA, ones, ones, g[4], g[5]);
        CSA(twosB, ones, ones, g[6], g[7]);
        CSA(foursB, twos, twos, twosA, twosB);
        CSA(eights, fours, fours, foursA, foursB);
        plane_add(p, 3, eights);
    }
    p[0] = ones, p[1] = twos, p[2] = fours;
    /* count > ngrams / 2, compared bit-sliced from the top plane down */
    uint32_t half = ngrams / 2;
    uint64_t gt = 0, eq = ~(uint64_t)0;
    /* planes above the count's top bit are all zero and change nothing: start below them */
    for (int b = 31 - __builtin_clz(ngrams | 1) + 1; b >= 0; b--) {
        if (half >> b & 1) {
            eq &= p[b];
        } else {
            gt |= eq & p[b];
            eq &= ~p[b];
        }
    }
    uint64_t sim = gt;
    out->sim = sim;
}
