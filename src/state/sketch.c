/* sketch.c - see sketch.h. */
#include "sketch.h"

#include <stdbool.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#define MAX_REDUCED 4096 /* longer texts are sketched by their first 4 KiB (and their length) */

/* spread[x]: byte k of the result is bit k of x, so that eight 8-bit counters can be
 * incremented by one 64-bit add. */
static uint64_t spread[256];
static int spread_ready;

static void spread_init(void)
{
    for (unsigned x = 0; x < 256; x++) {
        uint64_t v = 0;
        for (unsigned k = 0; k < 8; k++)
            if (x >> k & 1) v |= (uint64_t)1 << (8 * k);
        spread[x] = v;
    }
    __atomic_store_n(&spread_ready, 1, __ATOMIC_RELEASE);
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

void wh_sketch_text(const char *s, uint32_t n, wh_sketch *out)
{
    if (!__atomic_load_n(&spread_ready, __ATOMIC_ACQUIRE)) spread_init(); /* idempotent */
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
    out->length = k;
    if (k == 0) {
        out->hash = 0;
        out->sim = 0;
        return;
    }
    out->hash = XXH3_64bits(r, k) | 1; /* never 0: 0 is "no text" */
    if (k < 3) {
        out->sim = mix64(XXH3_64bits(r, k));
        return;
    }
    /* SimHash: for each 3-gram hash, +1 to the counter of every set bit; a signature bit
     * is set when more than half the 3-grams set it. 8-bit lanes, flushed every 255. */
    uint32_t total[64] = {0};
    uint64_t acc[8] = {0};
    uint32_t ngrams = k - 2, pending = 0;
    for (uint32_t i = 0; i < ngrams; i++) {
        uint32_t g = (uint32_t)(unsigned char)r[i] | (uint32_t)(unsigned char)r[i + 1] << 8 |
                     (uint32_t)(unsigned char)r[i + 2] << 16;
        uint64_t h = mix64(g + 0x9e3779b97f4a7c15ULL);
        for (unsigned j = 0; j < 8; j++)
            acc[j] += spread[(h >> (8 * j)) & 0xff];
        if (++pending == 255 || i + 1 == ngrams) {
            for (unsigned j = 0; j < 8; j++) {
                for (unsigned b = 0; b < 8; b++)
                    total[j * 8 + b] += (uint32_t)(acc[j] >> (8 * b)) & 0xff;
                acc[j] = 0;
            }
            pending = 0;
        }
    }
    uint64_t sim = 0;
    for (unsigned j = 0; j < 8; j++)
        for (unsigned b = 0; b < 8; b++)
            if (2 * total[j * 8 + b] > ngrams) sim |= (uint64_t)1 << (j * 8 + b);
    out->sim = sim;
}
