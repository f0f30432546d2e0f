/* shard_impl.h - what the state's files share (not an interface): the shard record, the
 * message log's and the rings' accessors, the wave index's bucket.
 *
 *   shard.c     users, channels, the message log, channel windows and joins
 *   waves.c     wave groups: filing a message, counting, live waves
 *   snapshot.c  the state file (save, load) */
#ifndef WH_SHARD_IMPL_H
#define WH_SHARD_IMPL_H

#include "shard.h"
#include "state/table.h"

/* The comparisons of sketches count bits; x86-64's baseline has no POPCNT instruction, so
 * these loops get a second build that uses it, picked at load time on CPUs that have it. */
#if defined(__x86_64__) && defined(__has_attribute) && !defined(__clang__)
#if __has_attribute(target_clones) && !defined(__SANITIZE_ADDRESS__) /* gcc (clang 14 does         \
                                                   not export a clone's plain symbol) */
#define WH_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#endif
#endif
#ifndef WH_POPCNT_CLONES
#define WH_POPCNT_CLONES
#endif

struct wh_shard {
    wh_table *users, *chans;
};

#define WAVE_BUCKETS_MAX (4u * WH_WAVE_GROUPS)

static inline bool recent(int64_t ts, int64_t now_ms, int64_t within_ms)
{
    int64_t age = now_ms - ts;
    return age < within_ms; /* an out-of-order (older "now") event sees it as just now */
}

static inline uint32_t log_cap(const wh_user *u)
{
    return u->more ? u->cap : WH_RECENT;
}
static inline const int64_t *log_ts(const wh_user *u)
{
    return u->more ? u->more : u->ts;
}
static inline const uint32_t *log_hash(const wh_user *u)
{
    return u->more ? (const uint32_t *)(u->more + u->cap) : u->hash;
}
/* The ring index of the i-th most recent entry (0: the newest); i < n. Capacities are
 * powers of two (8 .. WH_LOG_MAX; wh_state_cfg.log_cap is rounded up at load), so this is
 * a mask, not a division, on the path of every message. */
static inline uint32_t log_idx(const wh_user *u, uint32_t i)
{
    return (u->head - 1u - i) & (log_cap(u) - 1);
}

static inline int64_t tring_at(const wh_tring *r, uint32_t i)
{
    return r->t[(r->head - 1u - i) & (r->cap - 1)];
}

static inline uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 8;
    while (p < n)
        p *= 2;
    return p;
}

static inline uint32_t bucket_of(const wh_waves *w, uint32_t anchor)
{
    /* the top bits of a multiplicative hash (the low ones only mix the anchor's low bits) */
    return (uint32_t)(((uint64_t)(anchor * 2654435761u) * w->nbuckets) >> 32);
}

/* Sets a wave member's id (a copy when it does not fit inline); false when out of memory. */
bool wh_member_set_id(wh_wave_member *m, const char *p, size_t n);
/* Appends t to a window ring, growing it while its oldest entry is within keep_ms. */
void wh_tring_push(wh_tring *r, int64_t t, uint32_t count, int64_t keep_ms);

#endif
