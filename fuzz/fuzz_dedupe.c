/* fuzz_dedupe.c - idempotency window files (serve/dedupe.h) through wh_dedupe_parse.
 *
 * The input is the body of a file (framed.h adds the magic and the checksum), and the shard
 * count is read from the file itself. Every entry passed on is read to its last byte, so a
 * length that got past the checks would show up under ASan. */
#include "framed.h"
#include "serve/dedupe.h"

static void touch(void *ud, uint32_t shard, uint64_t key, int64_t last_ms, const char *line,
                  uint32_t len)
{
    uint64_t *sum = ud;
    *sum += shard + key + (uint64_t)last_ms;
    for (uint32_t i = 0; i < len; i++)
        *sum += (unsigned char)line[i];
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    size_t len;
    unsigned char *buf = framed(data, size, WH_DEDUPE_MAGIC, &len);
    if (!buf) return 0;
    uint32_t nshards = 1;
    if (len >= 20) {
        nshards = (uint32_t)buf[16] | (uint32_t)buf[17] << 8 | (uint32_t)buf[18] << 16 |
                  (uint32_t)buf[19] << 24;
        if (nshards == 0 || nshards > WH_DEDUPE_MAX_SHARDS) nshards = 1;
    }
    uint64_t seed = 0, sum = 0;
    const char *why = wh_dedupe_parse(buf, len, nshards, &seed, touch, &sum);
    if (why && sum) abort(); /* nothing may be passed on from a file that does not check out */
    free(buf);
    return 0;
}
