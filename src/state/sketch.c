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

/* Drops words of 15 or more digits (platform ids: a Discord custom emoji <:kekw:7735...>
 * or a mention <@1234...> reaches the text views as a word and a long number), so that
 * emote-only messages are as short as they look and never form a wave. */
static uint32_t drop_ids(char *r, uint32_t k)
{
    uint32_t o = 0;
    for (uint32_t i = 0; i < k;) {
        uint32_t e = i;
        bool digits = true;
        while (e < k && r[e] != ' ') {
            digits &= r[e] >= '0' && r[e] <= '9';
            e++;
        }
        if (!(digits && e - i >= 15)) {
            if (o) r[o++] = ' ';
            memmove(r + o, r + i, e - i);
            o += e - i;
        }
        i = e + 1;
    }
    return o;
}

/* Bytes of the text counting each distinct word once ("KEKW KEKW KEKW" is 4 long), and the
 * anchors: the two smallest hashes of words of 3+ bytes (of any words when there are not
 * two such). */
static uint32_t words_pass(const char *r, uint32_t k, uint32_t anchor[2])
{
    uint32_t a[2] = {UINT32_MAX, UINT32_MAX}, b[2] = {UINT32_MAX, UINT32_MAX};
    uint64_t seen[128] = {0}; /* open addressing; more distinct words than fit count in full */
    uint32_t len = 0, nseen = 0;
    for (uint32_t i = 0; i < k;) {
        uint32_t e = i;
        while (e < k && r[e] != ' ')
            e++;
        uint64_t h = XXH3_64bits(r + i, e - i) | 1;
        uint32_t h32 = (uint32_t)(h >> 32);
        uint32_t *m = e - i >= 3 ? a : b; /* long words, short words */
        if (h32 < m[0])
            m[1] = m[0], m[0] = h32;
        else if (h32 < m[1] && h32 != m[0])
            m[1] = h32;
        bool dup = false;
        if (nseen < 96) {
            uint32_t slot = (uint32_t)h & 127;
            while (seen[slot] && seen[slot] != h)
                slot = (slot + 1) & 127;
            dup = seen[slot] == h;
            if (!dup) seen[slot] = h, nseen++;
        }
        if (!dup) len += (len ? 1 : 0) + (e - i);
        i = e + 1;
    }
    anchor[0] = a[0] != UINT32_MAX ? a[0] : b[0];
    anchor[1] = a[1] != UINT32_MAX ? a[1] : a[0] != UINT32_MAX ? b[0] : b[1];
    if (anchor[1] == UINT32_MAX) anchor[1] = anchor[0];
    return len;
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
    if (!__atomic_load_n(&tab_ready, __ATOMIC_ACQUIRE)) tab_init(); /* idempotent */
    char r[MAX_REDUCED];
    uint32_t k = 0;
    bool space = false;
    for (uint32_t i = 0; i < n && k < MAX_REDUCED; i++) {
        unsigned char c = (unsigned char)s[i];
        bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32), keep = true;
        if (!keep) {
            space = k > 0;
            continue;
        }
        if (space && k < MAX_REDUCED - 1) r[k++] = ' ';
        space = false;
        r[k++] = (char)c;
    }
    k = drop_ids(r, k);
    out->length = words_pass(r, k, out->anchor);
    if (k == 0) {
        out->hash = 0;
        out->sim = 0;
        return;
    }
    out->hash = XXH3_64bits(r, k) | 1; /* never 0: 0 is "no text" */
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
