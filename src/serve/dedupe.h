/* dedupe.h - the file of the daemon's idempotency window (DATA/dedupe.snap), saved with the
 * behaviour state so that a client retrying across a restart is answered as before. Separate
 * from service.c so that the parser can be fuzzed (fuzz/fuzz_dedupe.c) without a server.
 *
 * Little-endian: "WHDEDUP1"; the key seed (u64); the shards (u32); per shard, its entries
 * (u32), each its key (u64), last use (i64, ms), decision line length (u32) and line, least
 * recently used first; then XXH3-64 of every byte before it. */
#ifndef WH_DEDUPE_H
#define WH_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define WH_DEDUPE_MAGIC "WHDEDUP1"
#define WH_DEDUPE_MAX_SHARDS 64

/* Writing: begin, then per shard: wh_dedupe_shard, its entries, and their number with
 * wh_dedupe_shard_count (the writer learns it only while it writes them: it leaves out
 * decisions not yet committed); then finish (which adds the checksum). Out of memory shows
 * in b->oom. */
void wh_dedupe_begin(wh_buf *b, uint64_t seed, uint32_t nshards);
/* Returns where the shard's count goes, for wh_dedupe_shard_count. */
size_t wh_dedupe_shard(wh_buf *b);
void wh_dedupe_shard_count(wh_buf *b, size_t at, uint32_t count);
void wh_dedupe_entry(wh_buf *b, uint64_t key, int64_t last_ms, const char *line, uint32_t len);
void wh_dedupe_finish(wh_buf *b);

typedef void (*wh_dedupe_fn)(void *ud, uint32_t shard, uint64_t key, int64_t last_ms,
                             const char *line, uint32_t len);

/* Checks a file's bytes against nshards. NULL when it checks out: *seed is set and every
 * entry is passed to fn, in file order; nothing is passed before the whole file has been
 * checked. Otherwise why not ("is damaged (checksum mismatch)", ...), and fn is not called. */
const char *wh_dedupe_parse(const void *p, size_t n, uint32_t nshards, uint64_t *seed,
                            wh_dedupe_fn fn, void *ud);

#endif
