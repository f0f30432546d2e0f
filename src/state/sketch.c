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
    uint32_t a[2], b[2], c[2]; /* smallest hashes of words of 5+ bytes, of 3-4, of shorter */
    uint32_t len;        /* distinct-word length */
    uint32_t nseen;
    uint32_t seen[32]; /* distinct words so far (hash | 1); beyond 24, words count in full */
} words_acc;

static inline void word_end(words_acc *w, uint32_t h, uint32_t len)
{
    h |= 1;
    uint32_t *m = len >= 5 ? w->a : len >= 3 ? w->b : w->c;
    if (h < m[0])
        m[1] = m[0], m[0] = h;
    else if (h < m[1] && h != m[0])
        m[1] = h;
    if (w->nseen < 24) {
        uint32_t slot = (h * 2654435761u) >> 27;
        while (w->seen[slot] && w->seen[slot] != h)
            slot = (slot + 1) & 31;
        if (w->seen[slot] == h) return; /* seen: counts once */
        w->seen[slot] = h;
        w->nseen++;
    }
    w->len += (w->len ? 1 : 0) + len;
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
    /* Two passes, both light on branches (a mispredicted branch per byte cost more than
     * the rest): 1. reduce to letters, digits and single spaces, branch-free; 2. per word,
     * an FNV-1a hash (anchors, distinct length), dropping words of 15+ digits (platform ids
     * in emote and mention markup reach the views as such words). */
    char r[MAX_REDUCED];
    uint32_t k = 0;
    unsigned char prev = 0;
    uint32_t lim = n < MAX_REDUCED - 1 ? n : MAX_REDUCED - 1;
    for (uint32_t i = 0; i < lim; i++) {
        unsigned char c = keep_tab[(unsigned char)s[i]];
        r[k] = c ? (char)c : ' ';
        k += (c | prev) != 0; /* a separator is written once, after a kept byte */
        prev = c;
    }
    if (k && r[k - 1] == ' ') k--;
    words_acc w;
    w.a[0] = w.a[1] = w.b[0] = w.b[1] = w.c[0] = w.c[1] = UINT32_MAX;
    w.len = w.nseen = 0;
    memset(w.seen, 0, sizeof(w.seen));
    for (uint32_t i = 0; i < k;) {
        uint32_t e = i, wh = 2166136261u;
        unsigned digits = 1;
        while (e < k && r[e] != ' ') {
            unsigned char c = (unsigned char)r[e++];
            digits &= c <= '9';
            wh = (wh ^ c) * 16777619u;
        }
        if (digits && e - i >= 15) { /* drop the word and the space before it */
            uint32_t from = e < k ? e + 1 : e, to = i;
            if (e == k && i) to = i - 1; /* the last word: drop the space before it */
            memmove(r + to, r + from, k - from);
            k -= from - to;
            continue; /* the next word now starts at i (or the text ended) */
        }
        word_end(&w, wh, e - i);
        i = e + 1;
    }
    out->length = w.len;
    /* Anchors: the two smallest hashes, taken from long words first (distinctive: "the" or
     * "and" would file a spam wave under the same words as half the chat). */
    uint32_t cand[6] = {w.a[0], w.a[1], w.b[0], w.b[1], w.c[0], w.c[1]}, na = 0;
    out->anchor[0] = out->anchor[1] = UINT32_MAX;
    for (int i = 0; i < 6 && na < 2; i++)
        if (cand[i] != UINT32_MAX) out->anchor[na++] = cand[i];
    if (na == 1) out->anchor[1] = out->anchor[0];
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
