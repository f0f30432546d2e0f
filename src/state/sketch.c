/* sketch.c - see sketch.h. */
#include "sketch.h"

#include <stdbool.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#define MAX_REDUCED 4096 /* longer texts are sketched by their first 4 KiB (and their length) */

/* Tabulation hashing of a 3-gram: three table lookups, XORed (3-independent, so as good
 * as a strong hash for SimHash). The tables are filled from a fixed seed. */
static uint64_t tab[3][256];
static int tab_ready;
static void keep_init(void);

static void tab_init(void)
{
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 256; i++) {
            uint64_t z = (x += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            tab[k][i] = z ^ (z >> 31);
        }
    keep_init();
    __atomic_store_n(&tab_ready, 1, __ATOMIC_RELEASE);
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

/* byte -> what the reduction keeps: the byte itself (lowercased), or 0 for a separator */
static unsigned char keep_tab[256];

static void keep_init(void)
{
    for (int c = 0; c < 256; c++)
        keep_tab[c] = (unsigned char)((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80
                                          ? c
                                      : c >= 'A' && c <= 'Z' ? c + 32
                                                             : 0);
}

typedef struct {
    uint32_t h, len;
} word_t;

/* The slow path, for texts with a word of 15+ digits: drops those words (and a space) from
 * r and lists the words again. Returns the new length. */
static uint32_t drop_ids(char *r, uint32_t k, word_t *words, uint32_t *nw)
{
    uint32_t o = 0;
    *nw = 0;
    for (uint32_t i = 0; i < k;) {
        uint32_t e = i, h = 0;
        bool digits = true;
        while (e < k && r[e] != ' ') {
            unsigned char c = (unsigned char)r[e++];
            digits &= c <= '9';
            h = ((h << 5) | (h >> 27)) ^ c;
        }
        if (!(digits && e - i >= 15)) {
            if (o) r[o++] = ' ';
            memmove(r + o, r + i, e - i);
            o += e - i;
            if (*nw < 255) words[(*nw)++] = (word_t){h, e - i};
        }
        i = e + 1;
    }
    return o;
}

/* The anchors and the distinct length, from the list of word hashes:
 * - anchors: the two smallest keys, a key being the word's tier (0: 5+ bytes, 1: 3-4,
 *   2: shorter) in the top 2 bits and its hash below, so long words come first;
 * - distinct length: a word equal to one of the 8 before it counts no more (repetition
 *   is what makes "KEKW KEKW KEKW" look long). */
static void words_summary(const word_t *words, uint32_t nw, uint32_t anchor[2], uint32_t *length)
{
    uint32_t a0 = UINT32_MAX, a1 = UINT32_MAX, len = 0;
    for (uint32_t i = 0; i < nw; i++) {
        uint32_t x = words[i].h * 0x9e3779b1u;
        x ^= x >> 15;
        x *= 0x85ebca6bu;
        x ^= x >> 13;
        uint32_t l = words[i].len, tier = l >= 5 ? 0 : l >= 3 ? 1 : 2;
        uint32_t key = tier << 30 | (x >> 2);
        if (key < a0)
            a1 = a0, a0 = key;
        else if (key < a1 && key != a0)
            a1 = key;
        bool dup = false;
        for (uint32_t j = i > 8 ? i - 8 : 0; j < i; j++)
            dup |= words[j].h == words[i].h && words[j].len == l;
        len += dup ? 0 : (len ? 1 : 0) + l;
    }
    anchor[0] = a0;
    anchor[1] = a1 != UINT32_MAX ? a1 : a0;
    *length = len;
}

uint64_t wh_sketch_sim_reference(const char *r, uint32_t k)
{
    if (!__atomic_load_n(&tab_ready, __ATOMIC_ACQUIRE)) tab_init();
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

void wh_sketch_text(const char *s, uint32_t n, wh_sketch *out)
{
    wh_sketch_text_opt(s, n, true, out);
}

void wh_sketch_text_opt(const char *s, uint32_t n, bool with_sim, wh_sketch *out)
{
    if (!__atomic_load_n(&tab_ready, __ATOMIC_ACQUIRE)) tab_init(); /* idempotent */
    /* One branch-free pass (a mispredicted branch per byte or per word cost more than all
     * the rest): reduce to letters, digits and single spaces, and hash each word as it
     * goes (rotate-xor), storing it at the word's end. Then the words (anchors, distinct
     * length). Words of 15+ digits (platform ids in emote and mention markup) are dropped
     * afterwards, on the rare texts that have one. */
    char r[MAX_REDUCED];
    word_t words[256];
    uint32_t k = 0, nw = 0, h = 0, wl = 0, dg = 1, ids = 0;
    unsigned char prev = 0;
    uint32_t lim = n < MAX_REDUCED - 1 ? n : MAX_REDUCED - 1;
    for (uint32_t i = 0; i < lim; i++) {
        unsigned char c = keep_tab[(unsigned char)s[i]];
        uint32_t sep = c == 0, end = sep & (prev != 0);
        r[k] = (char)(c | (' ' & -(int)sep));
        k += (c | prev) != 0; /* a separator is written once, after a kept byte */
        ids |= end & dg & (wl >= 15);
        words[nw].h = h;
        words[nw].len = wl;
        nw += end & (nw < 255);
        uint32_t keep = (uint32_t)-(int32_t)!sep;
        h = (((h << 5) | (h >> 27)) ^ c) & keep;
        wl = (wl + 1) & keep;
        dg = (dg & (c <= '9')) | sep;
        prev = c;
    }
    if (prev) { /* the last word */
        ids |= dg & (wl >= 15);
        words[nw].h = h;
        words[nw].len = wl;
        nw += nw < 255;
    }
    if (k && r[k - 1] == ' ') k--;
    if (__builtin_expect(ids != 0, 0)) k = drop_ids(r, k, words, &nw);
    words_summary(words, nw, out->anchor, &out->length);
    if (k == 0) {
        out->hash = 0;
        out->sim = 0;
        return;
    }
    out->hash = XXH3_64bits(r, k) | 1; /* never 0: 0 is "no text" */
    if (!with_sim) {
        out->sim = 0;
        return;
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
    p[0] = ones, p[1] = twos, p[2] = fours;
    for (; i < ngrams; i++)
        plane_add(p, 0, gram(r, i));
    /* count > ngrams / 2, compared bit-sliced from the top plane down */
    uint32_t half = ngrams / 2;
    uint64_t gt = 0, eq = ~(uint64_t)0;
    for (int b = PLANES - 1; b >= 0; b--) {
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
