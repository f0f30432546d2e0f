/* dedupe.c - the idempotency window's file (see dedupe.h). */
#include "dedupe.h"

#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static void put(wh_buf *b, uint64_t v, int n)
{
    uint8_t p[8];
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    wh_buf_append(b, p, (size_t)n);
}

static uint64_t get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void wh_dedupe_begin(wh_buf *b, uint64_t seed, uint32_t nshards)
{
    wh_buf_append(b, WH_DEDUPE_MAGIC, 8);
    put(b, seed, 8);
    put(b, nshards, 4);
}

size_t wh_dedupe_shard(wh_buf *b)
{
    size_t at = b->len;
    put(b, 0, 4);
    return at;
}

void wh_dedupe_shard_count(wh_buf *b, size_t at, uint32_t count)
{
    if (b->oom || at + 4 > b->len) return;
    for (int i = 0; i < 4; i++)
        ((uint8_t *)b->p)[at + (size_t)i] = (uint8_t)(count >> (8 * i));
}

void wh_dedupe_entry(wh_buf *b, uint64_t key, int64_t last_ms, const char *line, uint32_t len)
{
    put(b, key, 8);
    put(b, (uint64_t)last_ms, 8);
    put(b, len, 4);
    if (len) wh_buf_append(b, line, len);
}

void wh_dedupe_finish(wh_buf *b)
{
    put(b, b->oom ? 0 : XXH3_64bits(b->p, b->len), 8);
}

#define HEADER 20 /* magic, seed, shards */
#define ENTRY 20  /* key, last use, length */

const char *wh_dedupe_parse(const void *p, size_t n, uint32_t nshards, uint64_t *seed,
                            wh_dedupe_fn fn, void *ud)
{
    const unsigned char *s = p;
    if (n < HEADER + 8 || memcmp(s, WH_DEDUPE_MAGIC, 8)) return "is not an idempotency window";
    if (get(s + n - 8, 8) != XXH3_64bits(s, n - 8)) return "is damaged (checksum mismatch)";
    if (get(s + 16, 4) != nshards) return "was saved with another number of shards (threads)";
    const unsigned char *end = s + n - 8;
    /* the whole file is checked before any entry is passed on */
    for (int pass = 0; pass < 2; pass++) {
        const unsigned char *q = s + HEADER;
        for (uint32_t sh = 0; sh < nshards; sh++) {
            if (end - q < 4) return "is truncated";
            uint32_t cnt = (uint32_t)get(q, 4);
            q += 4;
            for (uint32_t k = 0; k < cnt; k++) {
                if (end - q < ENTRY) return "is truncated";
                uint32_t len = (uint32_t)get(q + 16, 4);
                if ((uint64_t)(end - q - ENTRY) < len) return "is truncated";
                if (pass)
                    fn(ud, sh, get(q, 8), (int64_t)get(q + 8, 8), (const char *)q + ENTRY, len);
                q += ENTRY + len;
            }
        }
        if (q != end) return "has bytes after its entries";
    }
    *seed = get(s + 8, 8);
    return NULL;
}
