/* ratelimit.h - the thread-safe key store behind the daemon's rate-limit service: GCRA
 * buckets (state/gcra.h, redis-cell's semantics) and calendar quotas, per key.
 *
 * Time is always the caller's (now_ms, wall clock, ms since the Unix epoch); nothing here
 * reads the clock, so decisions can be replayed and tested exactly.
 *
 * GCRA keys. Keys are striped over 64 mutexes (fewer below a cap of 4096, so that a stripe
 * holds at least 64 keys: a stripe evicts on its own, and tiny stripes would evict long
 * before `cap` keys are held in total). Each stripe is an open-addressing table (linear
 * probing, backward-shift deletion) of 32-byte entries, at most 2/3 full: about 48 bytes
 * per key at the cap. A call is one hash, one lock and a probe of ~2 slots.
 *
 * The keys themselves are not stored, only their 64-bit XXH3 (seeded at random per
 * ratelimiter, so nobody can choose keys that collide or pile up in one probe run). Two
 * keys held at the same time share a bucket if their hashes collide: with n keys held the
 * odds are about n^2 / 2^65 (3e-8 for a million keys), accepted for the memory and the
 * speed it saves. A collision can only make the two keys stricter, never more lenient.
 *
 * A bucket whose TAT is in the past is full: the same as an absent key. Such entries are
 * reclaimed first when a stripe is full (not counted as evictions); a stripe full of live
 * buckets evicts the one closest to full (the smallest TAT), which then answers as new,
 * i.e. more leniently than it would have: that is what `evictions` counts. The key changing
 * its limit's `count` rescales its TAT (rounded up to the ms); period and burst may change
 * freely, as in redis-cell.
 *
 * Quotas: at most `limit` units per calendar window (UTC hour, day or month) per key and
 * period. Their keys are stored in full (they are persisted and listed), in per-stripe
 * chained tables with their own stripe locks. A full stripe drops the counter whose window
 * ends first: one whose window is over (the same as absent, not counted as an eviction),
 * else a live one (counted: its key starts again at 0 used).
 *
 * Ownership: the ratelimiter owns everything it stores; keys passed in are copied (quota)
 * or only hashed (GCRA) and may be freed after the call. */
#ifndef WH_RATELIMIT_H
#define WH_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/gcra.h"

#define WH_RL_MAX_KEY 1024 /* bytes; a longer key is refused */

typedef struct wh_ratelimiter wh_ratelimiter;

/* cap: most GCRA keys and most quota keys held (each); >= 1. NULL on OOM (or cap 0). The
 * tables are allocated up front but only touched (made resident) as they fill. */
wh_ratelimiter *wh_rl_new(uint32_t cap);
void wh_rl_free(wh_ratelimiter *rl); /* NULL is fine */

/* GCRA on key (any bytes, keylen <= WH_RL_MAX_KEY) at now_ms: takes `cost` (0 only asks;
 * negative is 0) and fills *out as wh_gcra_take does. Thread-safe. An invalid limit
 * (!wh_gcra_limit_valid) or a longer key is refused: allowed false, retry_after_ms -1,
 * nothing stored. A key is only stored when its bucket is not full after the call (asking,
 * or being refused, on an absent key stores nothing). */
void wh_rl_throttle(wh_ratelimiter *rl, const char *key, size_t keylen, const wh_gcra_limit *l,
                    int64_t now_ms, int64_t cost, wh_gcra_result *out);

typedef enum { WH_Q_HOUR = 0, WH_Q_DAY, WH_Q_MONTH, WH_Q__COUNT } wh_quota_period;
extern const char *const wh_quota_period_names[WH_Q__COUNT]; /* "hour", "day", "month" */

typedef struct {
    bool allowed;
    int64_t limit, used, remaining; /* used and remaining after this call */
    int64_t window_start_ms;        /* the window's start */
    int64_t reset_after_ms;         /* ms until the next window */
} wh_quota_result;

/* Takes `cost` units (negative is 0) of key's counter for period p when used + cost <= limit
 * (then allowed); otherwise takes nothing (so cost 0 asks whether the quota is not over).
 * A new window starts at 0 used. The same key with different periods is two counters.
 * A counter already in a later window than now_ms's (time going backwards) stays in it.
 * Refused (allowed false, nothing stored): an invalid p, a key over WH_RL_MAX_KEY, or no
 * memory for a new counter (a quota fails closed). Thread-safe. */
void wh_rl_quota(wh_ratelimiter *rl, const char *key, size_t keylen, wh_quota_period p,
                 int64_t limit, int64_t cost, int64_t now_ms, wh_quota_result *out);

/* Start (UTC) of the window containing now_ms, and the start of the next one (months by
 * the calendar, via gmtime_r/timegm). Any valid p; times before 1970 work too. */
int64_t wh_quota_window_start(wh_quota_period p, int64_t now_ms);
int64_t wh_quota_window_end(wh_quota_period p, int64_t now_ms);

/* Persistence: calls fn once for each quota counter changed since the last flush and marks
 * it clean; returns how many were visited. Safe against concurrent wh_rl_quota (and the
 * other calls): each stripe's changed counters are copied under its lock and fn runs with
 * no lock held, so fn may be slow (SQLite) and may even call back into the ratelimiter.
 * key is valid (and NUL-terminated) only during the call. Run one flusher at a time: two
 * would each see different counters, but could write them out of order. A counter evicted
 * before it was flushed is lost with its eviction. When the copy cannot be allocated, that
 * stripe's counters stay changed for the next flush. */
size_t wh_rl_quota_flush(wh_ratelimiter *rl,
                         void (*fn)(void *ud, const char *key, size_t keylen, wh_quota_period p,
                                    int64_t window_start_ms, int64_t used),
                         void *ud);

/* Restores one counter at start-up, not marked changed. window_start_ms is the start of
 * its window (as flushed). A counter already held in a later window is kept instead. When
 * the stripe is full, the counter whose window ends first goes (this one if it is that),
 * counted as an eviction. Invalid p or an over-long key: ignored. */
void wh_rl_quota_restore(wh_ratelimiter *rl, const char *key, size_t keylen, wh_quota_period p,
                         int64_t window_start_ms, int64_t used);

typedef struct {
    uint64_t keys;       /* GCRA buckets held (full ones not yet reclaimed included) */
    uint64_t quota_keys; /* quota counters held */
    uint64_t evictions;  /* live buckets and live counters dropped at a cap, in total */
} wh_rl_stats;
void wh_rl_stats_get(wh_ratelimiter *rl, wh_rl_stats *out);

#endif
