/* test_state.c - GCRA against exact references on random traffic. */
#include "state/gcra.h"
#include "t.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

TEST(gcra_burst_then_limited)
{
    wh_gcra_limit l = {.period_ms = 10000, .count = 5, .burst = 5}; /* 5 per 10 s */
    wh_gcra g = {0};
    wh_gcra_result r;
    for (int i = 0; i < 5; i++) {
        wh_gcra_take(&g, &l, 1000000, 1, &r);
        ASSERT(r.allowed);
        ASSERT_EQ(r.remaining, 4 - i);
    }
    wh_gcra_take(&g, &l, 1000000, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 2000); /* one emission interval */
    ASSERT_EQ(r.reset_after_ms, 10000);
    wh_gcra_take(&g, &l, 1001999, 1, &r); /* 1 ms early: still limited */
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 1);
    wh_gcra_take(&g, &l, 1002000, 1, &r); /* exactly on time */
    ASSERT(r.allowed);
}

TEST(gcra_steady_rate_always_allowed_and_exact_with_uneven_intervals)
{
    /* An interval of exactly 3333 ms: one request per interval is always allowed. */
    wh_gcra_limit l = {.period_ms = 9999, .count = 3, .burst = 1};
    wh_gcra g = {0};
    wh_gcra_result r;
    for (int64_t k = 0; k < 3000; k++) {
        wh_gcra_take(&g, &l, 5000000 + k * 3333, 1, &r);
        if (!r.allowed) T_FAIL("request %lld denied", (long long)k);
    }
    wh_gcra_take(&g, &l, 5000000 + 3000 * 3333 - 1, 1, &r); /* 1 ms early */
    ASSERT(!r.allowed);
    /* 3 per 10 s is an interval of 3333.33 ms: 3333 ms later is too early, 3334 is fine,
     * and scaled integers decide it exactly, however long the run. */
    wh_gcra_limit u = {.period_ms = 10000, .count = 3, .burst = 1};
    wh_gcra h = {0};
    int64_t t = 7000000;
    wh_gcra_take(&h, &u, t, 1, &r);
    ASSERT(r.allowed);
    wh_gcra_take(&h, &u, t + 3333, 1, &r);
    ASSERT(!r.allowed);
    wh_gcra_take(&h, &u, t + 3334, 1, &r);
    ASSERT(r.allowed);
    /* three in 10,000 ms exactly, a million times over: all allowed, none early */
    wh_gcra h2 = {0};
    for (int64_t k = 0; k < 1000000; k++) {
        wh_gcra_take(&h2, &u, 10000000 + k * 10000, 3, &r); /* a burst of 3 needs burst 3 */
        if (r.allowed) T_FAIL("a burst of 3 over a burst limit of 1 was allowed");
    }
    wh_gcra_limit u3 = {.period_ms = 10000, .count = 3, .burst = 3};
    wh_gcra h3 = {0};
    for (int64_t k = 0; k < 1000000; k++) {
        wh_gcra_take(&h3, &u3, 10000000 + k * 10000, 3, &r);
        if (!r.allowed) T_FAIL("period %lld: 3 per 10 s denied", (long long)k);
    }
}

TEST(gcra_equals_a_continuous_token_bucket_on_random_traffic)
{
    /* Reference: a bucket of `burst` tokens refilled at count/period, in exact rationals
     * (tokens scaled by period_ms * count). GCRA must decide every request the same. */
    for (int round = 0; round < 200; round++) {
        wh_gcra_limit l = {.period_ms = 1 + (int64_t)(next() % 60000),
                           .count = 1 + (int64_t)(next() % 50),
                           .burst = 1 + (int64_t)(next() % 10)};
        wh_gcra g = {0};
        int64_t unit = l.period_ms; /* one token, scaled by count */
        int64_t cap = l.burst * unit;
        int64_t tokens = cap, last = 0, t = 1000000;
        for (int i = 0; i < 2000; i++) {
            t += (int64_t)(next() % (uint64_t)(2 * l.period_ms / l.count + 2));
            int64_t q = 1 + (int64_t)(next() % 3 == 0);
            if (last) tokens += (t - last) * l.count;
            if (tokens > cap) tokens = cap;
            last = t;
            bool want = tokens >= q * unit;
            if (want) tokens -= q * unit;
            wh_gcra_result r;
            wh_gcra_take(&g, &l, t, q, &r);
            if (r.allowed != want)
                T_FAIL("round %d request %d (t=%lld q=%lld): gcra %d, bucket %d", round, i,
                       (long long)t, (long long)q, r.allowed, want);
        }
    }
}

TEST(gcra_sliding_window_bound_on_random_traffic)
{
    /* The documented difference from a sliding log: in any window of one period GCRA
     * allows at most burst + count requests (a sliding log: count). */
    wh_gcra_limit l = {.period_ms = 10000, .count = 5, .burst = 5};
    wh_gcra g = {0};
    int64_t times[20000];
    int n = 0;
    int64_t t = 0;
    for (int i = 0; i < 20000; i++) {
        t += (int64_t)(next() % 4000);
        wh_gcra_result r;
        wh_gcra_take(&g, &l, t, 1, &r);
        if (r.allowed) times[n++] = t;
    }
    for (int i = 0, j = 0; i < n; i++) {
        while (times[i] - times[j] >= l.period_ms)
            j++;
        if (i - j + 1 > l.burst + l.count) T_FAIL("%d allowed within one period", i - j + 1);
    }
    ASSERT(n > 1000);
}

TEST(gcra_limits_validated_and_time_backwards_is_no_time)
{
    wh_gcra_limit bad = {.period_ms = 0, .count = 1, .burst = 1};
    ASSERT(!wh_gcra_limit_valid(&bad));
    wh_gcra_limit l = {.period_ms = 1000, .count = 1, .burst = 1};
    ASSERT(wh_gcra_limit_valid(&l));
    wh_gcra g = {0};
    wh_gcra_result r;
    wh_gcra_take(&g, &l, 50000, 1, &r);
    ASSERT(r.allowed);
    wh_gcra_take(&g, &l, 40000, 1, &r); /* an older event: denied, not a refill */
    ASSERT(!r.allowed);
    wh_gcra_take(&g, &l, 50000, 5, &r); /* more than the burst: never */
    ASSERT_EQ(r.retry_after_ms, -1);
}

/* ---- the state table, against a naive reference ---- */
#include "state/table.h"

typedef struct {
    uint64_t key;
    int64_t last;
    uint64_t seq; /* recency order */
    uint64_t value;
    bool live;
} ref_entry;

TEST(table_matches_a_naive_lru_with_ttl)
{
    enum { CAP = 16, KEYS = 48, OPS = 200000 };
    for (int round = 0; round < 4; round++) {
        int64_t ttl = round == 0 ? 0 : 50 * round;
        wh_table *t = wh_table_new(CAP, sizeof(uint64_t), ttl);
        ASSERT(t != NULL);
        ref_entry ref[KEYS] = {{0}};
        uint64_t seq = 0, evictions = 0;
        int64_t now = 1000;
        for (int op = 0; op < OPS; op++) {
            now += (int64_t)(next() % 7);
            uint32_t k = (uint32_t)(next() % KEYS);
            /* Keys that collide in a small index: many share their low bits. */
            uint64_t key = ((uint64_t)k << 40) | (k % 5);
            if (next() % 16 == 0) {
                wh_table_expire(t, now);
                for (int i = 0; i < KEYS; i++)
                    if (ref[i].live && ttl > 0 && now - ref[i].last > ttl) ref[i].live = false;
            }
            bool create = next() % 4 != 0;
            bool created = false;
            uint64_t *p = wh_table_get(t, key, now, create, &created);
            /* Idle past the TTL but not swept yet: forgotten all the same (found as new, in
             * place, when created; not found otherwise). */
            bool stale = ref[k].live && ttl > 0 && now - ref[k].last > ttl;
            if (stale && !create) {
                if (p) T_FAIL("op %d: key %u found idle past the TTL", op, k);
                continue;
            }
            if (stale) {
                if (!p || !created || *p != 0) T_FAIL("op %d: stale key %u not zeroed", op, k);
            } else if (ref[k].live) {
                if (!p || created) T_FAIL("op %d: key %u lost", op, k);
                if (*p != ref[k].value) T_FAIL("op %d: key %u payload changed", op, k);
            } else if (!create) {
                if (p) T_FAIL("op %d: key %u found after it was dropped", op, k);
                continue;
            } else {
                if (!p || !created || *p != 0) T_FAIL("op %d: key %u not created zeroed", op, k);
                int live = 0, oldest = -1;
                for (int i = 0; i < KEYS; i++)
                    if (ref[i].live) {
                        live++;
                        if (oldest < 0 || ref[i].seq < ref[oldest].seq) oldest = i;
                    }
                if (live == CAP) {
                    ref[oldest].live = false; /* the least recently active goes */
                    evictions++;
                }
                ref[k] = (ref_entry){.key = key, .live = true};
            }
            ref[k].last = now > ref[k].last ? now : ref[k].last;
            ref[k].seq = ++seq;
            *p = ref[k].value = next();
        }
        uint32_t live = 0;
        for (int i = 0; i < KEYS; i++)
            live += ref[i].live;
        ASSERT_EQ(wh_table_count(t), live);
        ASSERT_EQ(wh_table_evictions(t), evictions);
        wh_table_free(t);
    }
}

static void count_entries(void *ud, uint64_t key, int64_t last_ms, const void *payload)
{
    (void)key;
    (void)payload;
    int64_t *prev = ud;
    if (last_ms < *prev) prev[1] = 1; /* out of recency order */
    prev[0] = last_ms;
}

TEST(table_million_users_memory_and_order)
{
    wh_table *t = wh_table_new(1000000, 64, 0);
    ASSERT(t != NULL);
    for (uint64_t u = 0; u < 1500000; u++) {
        bool created;
        uint8_t *p = wh_table_get(t, u * 0x9E3779B97F4A7C15ull, (int64_t)u, true, &created);
        ASSERT(p && created);
        p[0] = 1;
    }
    ASSERT_EQ(wh_table_count(t), 1000000);
    ASSERT_EQ(wh_table_evictions(t), 500000);
    /* the oldest half was evicted: the first users are gone, the last are there */
    ASSERT(wh_table_get(t, 0, 2000000, false, NULL) == NULL);
    ASSERT(wh_table_get(t, 1499999 * 0x9E3779B97F4A7C15ull, 2000000, false, NULL) != NULL);
    int64_t st[2] = {0, 0};
    wh_table_foreach(t, count_entries, st);
    ASSERT_EQ(st[1], 0);
    /* 64-byte payloads: 96 bytes an entry plus 8 of index, about 104 MB for a million */
    ASSERT(wh_table_bytes(t) < 120u * 1000 * 1000);
    wh_table_free(t);
}
