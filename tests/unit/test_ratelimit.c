/* test_ratelimit.c - the rate-limit key store: GCRA answers as redis-cell's, eviction against
 * a reference, calendar quotas, persistence, and exact totals under 4 threads. */
#include <pthread.h>

#include "state/ratelimit.h"
#include "t.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void take(wh_ratelimiter *rl, const char *key, const wh_gcra_limit *l, int64_t now,
                 int64_t cost, wh_gcra_result *r)
{
    wh_rl_throttle(rl, key, strlen(key), l, now, cost, r);
}

static wh_rl_stats stats(wh_ratelimiter *rl)
{
    wh_rl_stats s;
    wh_rl_stats_get(rl, &s);
    return s;
}

/* ---- GCRA ---- */

TEST(rl_burst_then_limited_like_redis_cell)
{
    wh_ratelimiter *rl = wh_rl_new(1000);
    ASSERT(rl != NULL);
    /* CL.THROTTLE k 4 5 10: max_burst 4 (limit 5), 5 per 10 s: one every 2 s. */
    wh_gcra_limit l = {.period_ms = 10000, .count = 5, .burst = 5};
    wh_gcra_result r;
    const int64_t t = 1700000000000;
    for (int i = 0; i < 5; i++) {
        take(rl, "user123", &l, t, 1, &r);
        ASSERT(r.allowed);
        ASSERT_EQ(r.limit, 5);
        ASSERT_EQ(r.remaining, 4 - i);
        ASSERT_EQ(r.retry_after_ms, 0);
        ASSERT_EQ(r.reset_after_ms, 2000 * (i + 1));
    }
    take(rl, "user123", &l, t, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.remaining, 0);
    ASSERT_EQ(r.retry_after_ms, 2000);
    ASSERT_EQ(r.reset_after_ms, 10000);
    take(rl, "user123", &l, t + 1999, 1, &r); /* 1 ms early */
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 1);
    take(rl, "user123", &l, t + 2000, 1, &r); /* exactly one emission interval later */
    ASSERT(r.allowed);
    ASSERT_EQ(r.remaining, 0);
    ASSERT_EQ(r.reset_after_ms, 10000);
    take(rl, "user123", &l, t + 2000, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 2000);
    /* redis-cell's README: CL.THROTTLE user123 15 30 60 -> 0, 16, 15, -1 (ours: 0), 2 s */
    wh_gcra_limit readme = {.period_ms = 60000, .count = 30, .burst = 16};
    take(rl, "readme", &readme, t, 1, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.limit, 16);
    ASSERT_EQ(r.remaining, 15);
    ASSERT_EQ(r.retry_after_ms, 0);
    ASSERT_EQ(r.reset_after_ms, 2000);
    /* a take of 3 with 2 left: refused, waiting for exactly one more token */
    for (int i = 0; i < 13; i++)
        take(rl, "readme", &readme, t, 1, &r);
    ASSERT_EQ(r.remaining, 2);
    take(rl, "readme", &readme, t, 3, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.remaining, 2);
    ASSERT_EQ(r.retry_after_ms, 2000);
    ASSERT_EQ(stats(rl).keys, 2);
    ASSERT_EQ(stats(rl).evictions, 0);
    wh_rl_free(rl);
}

TEST(rl_keys_are_independent)
{
    wh_ratelimiter *rl = wh_rl_new(100000);
    wh_gcra_limit l = {.period_ms = 1000, .count = 1, .burst = 2};
    wh_gcra_result r;
    const int64_t t = 5000000;
    take(rl, "a", &l, t, 2, &r);
    ASSERT(r.allowed);
    take(rl, "a", &l, t, 1, &r);
    ASSERT(!r.allowed);
    /* binary keys: a NUL inside, a prefix, the empty key: all different buckets */
    const char ab[] = {'a', '\0'};
    wh_rl_throttle(rl, ab, 2, &l, t, 2, &r);
    ASSERT(r.allowed);
    wh_rl_throttle(rl, "", 0, &l, t, 2, &r);
    ASSERT(r.allowed);
    wh_rl_throttle(rl, NULL, 0, &l, t, 1, &r); /* the empty key again */
    ASSERT(!r.allowed);
    take(rl, "aa", &l, t, 2, &r);
    ASSERT(r.allowed);
    /* a thousand more keys, each with its full burst, and "a" still limited */
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "user:%d", i);
        take(rl, k, &l, t, 1, &r);
        if (!r.allowed || r.remaining != 1) T_FAIL("key %s not fresh", k);
    }
    take(rl, "a", &l, t, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 1000);
    ASSERT_EQ(stats(rl).keys, 4 + 1000);
    wh_rl_free(rl);
}

TEST(rl_cost_zero_only_asks)
{
    wh_ratelimiter *rl = wh_rl_new(1000);
    wh_gcra_limit l = {.period_ms = 10000, .count = 5, .burst = 5};
    wh_gcra_result r;
    const int64_t t = 1700000000000;
    take(rl, "k", &l, t, 0, &r); /* an absent key: full, and nothing is stored */
    ASSERT(r.allowed);
    ASSERT_EQ(r.remaining, 5);
    ASSERT_EQ(r.reset_after_ms, 0);
    ASSERT_EQ(stats(rl).keys, 0);
    take(rl, "k", &l, t, 2, &r);
    ASSERT_EQ(r.remaining, 3);
    for (int i = 0; i < 10; i++) {
        take(rl, "k", &l, t + 1000, 0, &r);
        ASSERT(r.allowed);
        ASSERT_EQ(r.remaining, 3);
        ASSERT_EQ(r.reset_after_ms, 3000);
    }
    take(rl, "k", &l, t, 3, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.remaining, 0);
    take(rl, "k", &l, t, 0, &r); /* empty bucket: asking is still "allowed", 0 left */
    ASSERT(r.allowed);
    ASSERT_EQ(r.remaining, 0);
    take(rl, "k", &l, t, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 2000);
    /* refused takes on an absent key store nothing either */
    take(rl, "other", &l, t, 6, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, -1);
    ASSERT_EQ(stats(rl).keys, 1);
    wh_rl_free(rl);
}

TEST(rl_refuses_bad_arguments_and_survives_huge_costs)
{
    wh_ratelimiter *rl = wh_rl_new(1000);
    wh_gcra_result r;
    const int64_t t = 1700000000000;
    wh_gcra_limit bad = {.period_ms = 1000, .count = 0, .burst = 1};
    take(rl, "k", &bad, t, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, -1);
    wh_gcra_limit l = {.period_ms = 1000, .count = 1, .burst = 3};
    char big[WH_RL_MAX_KEY + 1];
    memset(big, 'x', sizeof(big));
    wh_rl_throttle(rl, big, sizeof(big), &l, t, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, -1);
    wh_rl_throttle(rl, big, WH_RL_MAX_KEY, &l, t, 1, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(stats(rl).keys, 1);
    /* far more than the burst: refused as "never", the same for any size, no overflow */
    wh_rl_throttle(rl, big, WH_RL_MAX_KEY, &l, t, INT64_MAX, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, -1);
    ASSERT_EQ(r.remaining, 2);
    ASSERT_EQ(r.reset_after_ms, 1000);
    wh_rl_throttle(rl, big, WH_RL_MAX_KEY, &l, t, -5, &r); /* negative: only asks */
    ASSERT(r.allowed);
    ASSERT_EQ(r.remaining, 2);
    wh_rl_throttle(rl, big, WH_RL_MAX_KEY, &l, (int64_t)1 << 50, 1, &r); /* absurd clock */
    ASSERT(!r.allowed);
    wh_rl_free(rl);
    ASSERT(wh_rl_new(0) == NULL);
    wh_rl_free(NULL);
}

TEST(rl_changing_count_rescales_tat)
{
    wh_ratelimiter *rl = wh_rl_new(1000);
    wh_gcra_limit a = {.period_ms = 10000, .count = 5, .burst = 5};  /* every 2 s */
    wh_gcra_limit b = {.period_ms = 20000, .count = 10, .burst = 5}; /* the same rate */
    wh_gcra_result r;
    const int64_t t = 1700000000000;
    for (int i = 0; i < 5; i++)
        take(rl, "k", &a, t, 1, &r);
    take(rl, "k", &b, t, 1, &r); /* empty under either: the next token in 2 s */
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 2000);
    take(rl, "k", &b, t + 2000, 1, &r);
    ASSERT(r.allowed);
    take(rl, "k", &a, t + 2000, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 2000);
    /* 1 per hour after 5 per 10 s: the TAT (t + 12 s) is kept as a time, not as a number */
    wh_gcra_limit slow = {.period_ms = 3600000, .count = 1, .burst = 1};
    take(rl, "k", &slow, t + 2000, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 10000);
    /* the extremes wh_gcra_limit_valid allows: a TAT 2^60 ms ahead, then the largest
     * count, stay within int64 (the sanitizer build checks) and stay refused */
    wh_gcra_limit vast = {.period_ms = (int64_t)1 << 40, .count = 1, .burst = 1 << 20};
    wh_gcra_limit fine = {.period_ms = (int64_t)1 << 40, .count = WH_GCRA_MAX_COUNT, .burst = 1};
    take(rl, "x", &vast, t, 1 << 20, &r);
    ASSERT(r.allowed);
    take(rl, "x", &fine, t, 1, &r);
    ASSERT(!r.allowed);
    take(rl, "x", &vast, t, 1, &r);
    ASSERT(!r.allowed);
    wh_rl_free(rl);
}

TEST(rl_full_buckets_are_reclaimed_first_without_counting)
{
    /* cap 3: one stripe of 3 */
    wh_ratelimiter *rl = wh_rl_new(3);
    wh_gcra_limit fast = {.period_ms = 1000, .count = 1, .burst = 2};
    wh_gcra_limit slow = {.period_ms = 100000, .count = 1, .burst = 2};
    wh_gcra_result r;
    const int64_t t = 1000000;
    take(rl, "a", &fast, t, 1, &r); /* full again at t + 1000 */
    take(rl, "b", &slow, t, 1, &r); /* at t + 100000 */
    take(rl, "c", &slow, t, 2, &r); /* at t + 200000, and empty */
    ASSERT_EQ(stats(rl).keys, 3);
    take(rl, "d", &slow, t + 1000, 1, &r); /* a is full: it goes, not counted */
    ASSERT(r.allowed);
    ASSERT_EQ(stats(rl).keys, 3);
    ASSERT_EQ(stats(rl).evictions, 0);
    /* a answers as new, which is what it was: a full bucket */
    take(rl, "a", &fast, t + 1000, 0, &r);
    ASSERT_EQ(r.remaining, 2);
    /* b and c kept their state */
    take(rl, "b", &slow, t + 1000, 0, &r);
    ASSERT_EQ(r.remaining, 1);
    take(rl, "c", &slow, t + 1000, 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.retry_after_ms, 99000);
    wh_rl_free(rl);
}

TEST(rl_full_of_live_buckets_evicts_the_smallest_tat)
{
    wh_ratelimiter *rl = wh_rl_new(3);
    wh_gcra_limit l = {.period_ms = 100000, .count = 1, .burst = 3};
    wh_gcra_result r;
    const int64_t t = 1000000;
    take(rl, "far", &l, t, 3, &r);  /* TAT t + 300 s */
    take(rl, "near", &l, t, 1, &r); /* TAT t + 100 s: closest to full */
    take(rl, "mid", &l, t, 2, &r);  /* TAT t + 200 s */
    take(rl, "new", &l, t + 10, 1, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(stats(rl).keys, 3);
    ASSERT_EQ(stats(rl).evictions, 1);
    take(rl, "far", &l, t + 10, 1, &r);
    ASSERT(!r.allowed);
    take(rl, "mid", &l, t + 10, 0, &r);
    ASSERT_EQ(r.remaining, 1);
    /* near was evicted: it answers as new (3 left, not 2) and its take evicts the smallest
     * TAT again, which is now "new" (t + 10 + 100 s) */
    take(rl, "near", &l, t + 20, 1, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.remaining, 2);
    ASSERT_EQ(stats(rl).evictions, 2);
    take(rl, "new", &l, t + 20, 0, &r);
    ASSERT_EQ(r.remaining, 3);
    wh_rl_free(rl);
}

/* A reference for one stripe: every key's TAT, and at the cap the live bucket with the
 * smallest TAT goes (full ones are as good as absent). */
typedef struct {
    wh_gcra g;
    int64_t full;
} ref_key;

static int64_t ref_full(const ref_key *k, const wh_gcra_limit *l)
{
    return (k->g.tat + l->count - 1) / l->count;
}

/* Returns whether the key was stored anew. */
static bool ref_take(ref_key *keys, int nkeys, uint32_t cap, int k, const wh_gcra_limit *l,
                     int64_t now, int64_t cost, wh_gcra_result *out, uint64_t *evictions)
{
    bool live = keys[k].full > now;
    wh_gcra g = live ? keys[k].g : (wh_gcra){0};
    wh_gcra_take(&g, l, now, cost, out);
    if (!out->allowed) return false;
    ref_key nk = {g, 0};
    nk.full = ref_full(&nk, l);
    if (!live && nk.full > now) {
        uint32_t n = 0;
        int min = -1;
        for (int i = 0; i < nkeys; i++)
            if (keys[i].full > now) {
                n++;
                if (min < 0 || keys[i].full < keys[min].full) min = i;
            }
        if (n == cap) {
            keys[min] = (ref_key){{0}, 0};
            (*evictions)++;
        }
    }
    keys[k] = nk;
    return !live && nk.full > now;
}

/* period 0: none (no bucket refills within the run) */
static void check_against_reference(uint32_t cap, int nkeys, int ops, int64_t period)
{
    wh_ratelimiter *rl = wh_rl_new(cap); /* under 128: one stripe, so the cap is exact */
    ASSERT(rl != NULL);
    ref_key keys[512];
    ASSERT(nkeys <= 512);
    memset(keys, 0, sizeof(keys));
    uint64_t evictions = 0, reclaims = 0;
    int64_t now = 1000000;
    bool refill = period > 0;
    /* Ties in TAT would leave the victim open; these limits make every live TAT distinct.
     * With count 1 a TAT is (a take's time) + k * period: without refills (every time within
     * one period) any burst; with refills, burst 1, where k is always 1. */
    if (!refill) period = 1000000000;
    for (int op = 0; op < ops; op++) {
        now += refill ? 1 + (int64_t)(next() % 3) : 1;
        int k = (int)(next() % (uint64_t)nkeys);
        wh_gcra_limit l = {
            .period_ms = period, .count = 1, .burst = refill ? 1 : 1 + (int64_t)(next() % 4)};
        int64_t cost = next() % 4 ? 1 : (int64_t)(next() % 4); /* mostly 1; 0 asks */
        char name[16];
        snprintf(name, sizeof(name), "k%d", k);
        wh_gcra_result got, want;
        uint64_t held = stats(rl).keys, evicted = evictions;
        take(rl, name, &l, now, cost, &got);
        bool stored = ref_take(keys, nkeys, cap, k, &l, now, cost, &want, &evictions);
        reclaims += stored && held == cap && evictions == evicted; /* a full bucket went */
        if (got.allowed != want.allowed || got.remaining != want.remaining ||
            got.retry_after_ms != want.retry_after_ms || got.reset_after_ms != want.reset_after_ms)
            T_FAIL("op %d key %d cost %lld: got %d/%lld/%lld/%lld, want %d/%lld/%lld/%lld", op, k,
                   (long long)cost, got.allowed, (long long)got.remaining,
                   (long long)got.retry_after_ms, (long long)got.reset_after_ms, want.allowed,
                   (long long)want.remaining, (long long)want.retry_after_ms,
                   (long long)want.reset_after_ms);
        wh_rl_stats s = stats(rl);
        if (s.evictions != evictions)
            T_FAIL("op %d: %llu evictions, want %llu", op, (unsigned long long)s.evictions,
                   (unsigned long long)evictions);
        if (s.keys > cap)
            T_FAIL("op %d: %llu keys over a cap of %u", op, (unsigned long long)s.keys, cap);
    }
    if (evictions < 100) T_FAIL("only %llu evictions", (unsigned long long)evictions);
    if (refill && reclaims < 100) T_FAIL("only %llu reclaims", (unsigned long long)reclaims);
    wh_rl_free(rl);
}

TEST(rl_eviction_matches_a_reference_without_refills)
{
    check_against_reference(8, 24, 100000, 0);
    check_against_reference(100, 300, 200000, 0); /* sweeps and a heap of candidates */
}

TEST(rl_eviction_matches_a_reference_with_refills)
{
    /* periods where keys are live about as often as the cap allows: both full buckets to
     * reclaim and live ones to evict, by the thousand */
    for (int64_t p = 16; p <= 40; p += 8)
        check_against_reference(8, 30, 100000, p);
    for (int64_t p = 300; p <= 380; p += 40)
        check_against_reference(100, 400, 200000, p);
}

TEST(rl_striped_table_holds_most_of_its_cap)
{
    /* 64 stripes of 1024: the stripes fill unevenly, but none evicts near half full */
    wh_ratelimiter *rl = wh_rl_new(65536);
    wh_gcra_limit l = {.period_ms = 1000000, .count = 1, .burst = 10};
    wh_gcra_result r;
    char k[32];
    for (int i = 0; i < 40000; i++) {
        snprintf(k, sizeof(k), "ip:%d", i);
        take(rl, k, &l, 1000, 1, &r);
    }
    ASSERT_EQ(stats(rl).keys, 40000);
    ASSERT_EQ(stats(rl).evictions, 0);
    for (int i = 40000; i < 200000; i++) {
        snprintf(k, sizeof(k), "ip:%d", i);
        take(rl, k, &l, 1000 + i, 1, &r);
        if (!r.allowed) T_FAIL("new key %d refused", i);
    }
    wh_rl_stats s = stats(rl);
    ASSERT_EQ(s.keys, 65536); /* every stripe is at its cap by now */
    ASSERT_EQ(s.evictions, 200000 - 65536);
    wh_rl_free(rl);
}

/* ---- quotas ---- */

#define D_2024_01_01 1704067200000
#define D_2024_01_31 1706659200000
#define D_2024_02_01 1706745600000
#define D_2024_03_01 1709251200000
#define D_2024_03_10 1710028800000
#define D_2024_03_11 1710115200000
#define D_2024_12_01 1733011200000
#define D_2024_12_31 1735603200000
#define D_2025_01_01 1735689600000
#define HOUR 3600000
#define DAY 86400000

static void quota(wh_ratelimiter *rl, const char *key, wh_quota_period p, int64_t limit,
                  int64_t cost, int64_t now, wh_quota_result *r)
{
    wh_rl_quota(rl, key, strlen(key), p, limit, cost, now, r);
}

TEST(quota_window_functions)
{
    ASSERT_STR(wh_quota_period_names[WH_Q_HOUR], "hour");
    ASSERT_STR(wh_quota_period_names[WH_Q_DAY], "day");
    ASSERT_STR(wh_quota_period_names[WH_Q_MONTH], "month");
    int64_t t = D_2024_03_10 + 13 * HOUR + 1234;
    ASSERT_EQ(wh_quota_window_start(WH_Q_HOUR, t), D_2024_03_10 + 13 * HOUR);
    ASSERT_EQ(wh_quota_window_end(WH_Q_HOUR, t), D_2024_03_10 + 14 * HOUR);
    ASSERT_EQ(wh_quota_window_start(WH_Q_DAY, t), D_2024_03_10);
    ASSERT_EQ(wh_quota_window_end(WH_Q_DAY, t), D_2024_03_11);
    ASSERT_EQ(wh_quota_window_start(WH_Q_MONTH, t), D_2024_03_01);
    ASSERT_EQ(wh_quota_window_start(WH_Q_MONTH, D_2024_03_01), D_2024_03_01);
    ASSERT_EQ(wh_quota_window_start(WH_Q_MONTH, D_2024_03_01 - 1), D_2024_02_01);
    ASSERT_EQ(wh_quota_window_end(WH_Q_MONTH, D_2024_02_01), D_2024_03_01); /* leap Feb */
    ASSERT_EQ(wh_quota_window_end(WH_Q_MONTH, D_2024_12_31), D_2025_01_01);
    ASSERT_EQ(wh_quota_window_start(WH_Q_MONTH, D_2025_01_01 - 1), D_2024_12_01);
    /* before 1970: windows still floor, they do not truncate towards zero */
    ASSERT_EQ(wh_quota_window_start(WH_Q_HOUR, -1), -HOUR);
    ASSERT_EQ(wh_quota_window_start(WH_Q_DAY, -1), -DAY);
    ASSERT_EQ(wh_quota_window_start(WH_Q_MONTH, -1), -31LL * DAY);
    ASSERT_EQ(wh_quota_window_end(WH_Q_MONTH, -1), 0);
}

TEST(quota_day_window_boundaries)
{
    wh_ratelimiter *rl = wh_rl_new(100);
    wh_quota_result r;
    const int64_t last_ms = D_2024_03_11 - 1; /* 2024-03-10 23:59:59.999 UTC */
    quota(rl, "acct", WH_Q_DAY, 3, 1, D_2024_03_10, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 1);
    ASSERT_EQ(r.remaining, 2);
    ASSERT_EQ(r.window_start_ms, D_2024_03_10);
    ASSERT_EQ(r.reset_after_ms, DAY);
    quota(rl, "acct", WH_Q_DAY, 3, 2, last_ms, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 3);
    ASSERT_EQ(r.remaining, 0);
    ASSERT_EQ(r.reset_after_ms, 1);
    quota(rl, "acct", WH_Q_DAY, 3, 1, last_ms, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.used, 3);
    ASSERT_EQ(r.window_start_ms, D_2024_03_10);
    quota(rl, "acct", WH_Q_DAY, 3, 1, D_2024_03_11, &r); /* 00:00:00.000: a new window */
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 1);
    ASSERT_EQ(r.remaining, 2);
    ASSERT_EQ(r.window_start_ms, D_2024_03_11);
    ASSERT_EQ(r.reset_after_ms, DAY);
    /* a late caller still in yesterday: the counter stays in today's window */
    quota(rl, "acct", WH_Q_DAY, 3, 1, last_ms, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 2);
    ASSERT_EQ(r.window_start_ms, D_2024_03_11);
    ASSERT_EQ(r.reset_after_ms, DAY + 1);
    /* hours: 13:59:59.999 and 14:00 */
    int64_t h14 = D_2024_03_10 + 14 * HOUR;
    quota(rl, "acct", WH_Q_HOUR, 1, 1, h14 - 1, &r);
    ASSERT(r.allowed);
    quota(rl, "acct", WH_Q_HOUR, 1, 1, h14 - 1, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.reset_after_ms, 1);
    quota(rl, "acct", WH_Q_HOUR, 1, 1, h14, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.reset_after_ms, HOUR);
    wh_rl_free(rl);
}

TEST(quota_month_windows)
{
    wh_ratelimiter *rl = wh_rl_new(100);
    wh_quota_result r;
    quota(rl, "m", WH_Q_MONTH, 2, 2, D_2024_01_01, &r);
    ASSERT(r.allowed);
    quota(rl, "m", WH_Q_MONTH, 2, 1, D_2024_02_01 - 1, &r); /* Jan 31 23:59:59.999 */
    ASSERT(!r.allowed);
    ASSERT_EQ(r.window_start_ms, D_2024_01_01);
    ASSERT_EQ(r.reset_after_ms, 1);
    ASSERT_EQ(D_2024_02_01 - D_2024_01_31, DAY);
    quota(rl, "m", WH_Q_MONTH, 2, 1, D_2024_02_01, &r); /* Feb 1 */
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 1);
    ASSERT_EQ(r.window_start_ms, D_2024_02_01);
    ASSERT_EQ(r.reset_after_ms, D_2024_03_01 - D_2024_02_01);       /* 29 days: 2024 is leap */
    quota(rl, "y", WH_Q_MONTH, 5, 5, D_2024_12_31 + 12 * HOUR, &r); /* December */
    ASSERT(r.allowed);
    ASSERT_EQ(r.window_start_ms, D_2024_12_01);
    ASSERT_EQ(r.reset_after_ms, D_2025_01_01 - (D_2024_12_31 + 12 * HOUR));
    quota(rl, "y", WH_Q_MONTH, 5, 1, D_2025_01_01 - 1, &r);
    ASSERT(!r.allowed);
    quota(rl, "y", WH_Q_MONTH, 5, 1, D_2025_01_01, &r); /* January, the next year */
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 1);
    ASSERT_EQ(r.window_start_ms, D_2025_01_01);
    ASSERT_EQ(r.reset_after_ms, 31LL * DAY);
    wh_rl_free(rl);
}

TEST(quota_refuses_more_than_remaining_and_takes_nothing)
{
    wh_ratelimiter *rl = wh_rl_new(100);
    wh_quota_result r;
    const int64_t t = D_2024_03_10 + 5;
    quota(rl, "k", WH_Q_DAY, 10, 7, t, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.remaining, 3);
    quota(rl, "k", WH_Q_DAY, 10, 4, t, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.used, 7);
    ASSERT_EQ(r.remaining, 3);
    ASSERT_EQ(r.limit, 10);
    quota(rl, "k", WH_Q_DAY, 10, INT64_MAX, t, &r); /* no overflow either */
    ASSERT(!r.allowed);
    ASSERT_EQ(r.used, 7);
    quota(rl, "k", WH_Q_DAY, 10, 3, t, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 10);
    ASSERT_EQ(r.remaining, 0);
    quota(rl, "k", WH_Q_DAY, 10, 0, t, &r); /* cost 0 asks: not over */
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 10);
    quota(rl, "k", WH_Q_DAY, 8, 0, t, &r); /* the limit lowered under what was used */
    ASSERT(!r.allowed);
    ASSERT_EQ(r.remaining, 0);
    /* the same key's other periods are counters of their own */
    quota(rl, "k", WH_Q_HOUR, 10, 10, t, &r);
    ASSERT(r.allowed);
    quota(rl, "k", WH_Q_MONTH, 10, 1, t, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 1);
    /* asking or being refused on a new key stores nothing; bad arguments are refused */
    quota(rl, "fresh", WH_Q_DAY, 5, 0, t, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.remaining, 5);
    quota(rl, "fresh", WH_Q_DAY, 5, 6, t, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(stats(rl).quota_keys, 3);
    quota(rl, "k", (wh_quota_period)7, 10, 1, t, &r);
    ASSERT(!r.allowed);
    char big[WH_RL_MAX_KEY + 1];
    memset(big, 'q', sizeof(big));
    wh_rl_quota(rl, big, sizeof(big), WH_Q_DAY, 10, 1, t, &r);
    ASSERT(!r.allowed);
    wh_rl_quota(rl, big, WH_RL_MAX_KEY, WH_Q_DAY, 10, 1, t, &r);
    ASSERT(r.allowed);
    wh_rl_free(rl);
}

typedef struct {
    int n;
    char key[8][64];
    wh_quota_period p[8];
    int64_t start[8], used[8];
} flushed;

static void on_flush(void *ud, const char *key, size_t keylen, wh_quota_period p,
                     int64_t window_start_ms, int64_t used)
{
    flushed *f = ud;
    if (f->n == 8 || keylen >= 64 || key[keylen] != '\0') {
        f->n = 99;
        return;
    }
    memcpy(f->key[f->n], key, keylen + 1);
    f->p[f->n] = p;
    f->start[f->n] = window_start_ms;
    f->used[f->n++] = used;
}

static int find_flushed(const flushed *f, const char *key, wh_quota_period p)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->key[i], key) && f->p[i] == p) return i;
    return -1;
}

TEST(quota_flush_visits_changed_counters_once)
{
    wh_ratelimiter *rl = wh_rl_new(1000);
    wh_quota_result r;
    const int64_t t = D_2024_03_10 + 5;
    flushed f = {0};
    ASSERT_EQ(wh_rl_quota_flush(rl, on_flush, &f), 0);
    quota(rl, "a", WH_Q_DAY, 10, 2, t, &r);
    quota(rl, "a", WH_Q_DAY, 10, 3, t, &r);
    quota(rl, "b", WH_Q_MONTH, 10, 1, t, &r);
    quota(rl, "a", WH_Q_HOUR, 10, 4, t, &r);
    ASSERT_EQ(wh_rl_quota_flush(rl, on_flush, &f), 3);
    ASSERT_EQ(f.n, 3);
    int i = find_flushed(&f, "a", WH_Q_DAY);
    ASSERT(i >= 0);
    ASSERT_EQ(f.used[i], 5);
    ASSERT_EQ(f.start[i], D_2024_03_10);
    i = find_flushed(&f, "b", WH_Q_MONTH);
    ASSERT(i >= 0);
    ASSERT_EQ(f.used[i], 1);
    ASSERT_EQ(f.start[i], D_2024_03_01);
    ASSERT(find_flushed(&f, "a", WH_Q_HOUR) >= 0);
    memset(&f, 0, sizeof(f));
    ASSERT_EQ(wh_rl_quota_flush(rl, on_flush, &f), 0); /* all clean */
    quota(rl, "a", WH_Q_DAY, 10, 0, t, &r);            /* asks, refusals, restores: clean */
    quota(rl, "b", WH_Q_MONTH, 10, 100, t, &r);
    wh_rl_quota_restore(rl, "c", 1, WH_Q_DAY, D_2024_03_10, 4);
    ASSERT_EQ(wh_rl_quota_flush(rl, on_flush, &f), 0);
    quota(rl, "b", WH_Q_MONTH, 10, 1, t, &r);
    ASSERT_EQ(wh_rl_quota_flush(rl, on_flush, &f), 1);
    ASSERT_STR(f.key[0], "b");
    ASSERT_EQ(f.used[0], 2);
    wh_rl_free(rl);
}

TEST(quota_restore_then_take_continues_the_count)
{
    wh_ratelimiter *rl = wh_rl_new(1000);
    wh_quota_result r;
    const int64_t t = D_2024_03_10 + 10 * HOUR;
    wh_rl_quota_restore(rl, "k", 1, WH_Q_DAY, D_2024_03_10, 7);
    ASSERT_EQ(stats(rl).quota_keys, 1);
    quota(rl, "k", WH_Q_DAY, 10, 3, t, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 10);
    quota(rl, "k", WH_Q_DAY, 10, 1, t, &r);
    ASSERT(!r.allowed);
    /* a counter restored from an older window starts the new one at 0 */
    wh_rl_quota_restore(rl, "old", 3, WH_Q_DAY, D_2024_03_10 - DAY, 9);
    quota(rl, "old", WH_Q_DAY, 10, 10, t, &r);
    ASSERT(r.allowed);
    ASSERT_EQ(r.used, 10);
    /* restoring an older window over a newer counter keeps the newer one */
    wh_rl_quota_restore(rl, "old", 3, WH_Q_DAY, D_2024_03_10 - DAY, 1);
    quota(rl, "old", WH_Q_DAY, 10, 1, t, &r);
    ASSERT(!r.allowed);
    ASSERT_EQ(r.used, 10);
    /* the month counter of a key restored and taken again, then flushed */
    wh_rl_quota_restore(rl, "k", 1, WH_Q_MONTH, D_2024_03_01, 41);
    quota(rl, "k", WH_Q_MONTH, 50, 2, t, &r);
    ASSERT_EQ(r.used, 43);
    flushed f = {0};
    wh_rl_quota_flush(rl, on_flush, &f);
    int i = find_flushed(&f, "k", WH_Q_MONTH);
    ASSERT(i >= 0);
    ASSERT_EQ(f.used[i], 43);
    ASSERT_EQ(f.start[i], D_2024_03_01);
    wh_rl_free(rl);
}

TEST(quota_cap_drops_the_window_that_ends_first)
{
    wh_ratelimiter *rl = wh_rl_new(3); /* one stripe of 3 */
    wh_quota_result r;
    const int64_t t = D_2024_03_10 + 10 * HOUR + 30 * 60000; /* 10:30 */
    quota(rl, "h", WH_Q_HOUR, 5, 1, t - HOUR, &r);           /* 09:00-10:00: over */
    quota(rl, "d", WH_Q_DAY, 5, 2, t, &r);
    quota(rl, "m", WH_Q_MONTH, 5, 3, t, &r);
    quota(rl, "x", WH_Q_HOUR, 5, 1, t, &r); /* "h" goes, its window is over: not counted */
    ASSERT(r.allowed);
    ASSERT_EQ(stats(rl).quota_keys, 3);
    ASSERT_EQ(stats(rl).evictions, 0);
    quota(rl, "y", WH_Q_MONTH, 5, 1, t, &r); /* "x" ends first (11:00): a live eviction */
    ASSERT_EQ(stats(rl).evictions, 1);
    quota(rl, "d", WH_Q_DAY, 5, 0, t, &r);
    ASSERT_EQ(r.used, 2);
    quota(rl, "m", WH_Q_MONTH, 5, 0, t, &r);
    ASSERT_EQ(r.used, 3);
    quota(rl, "x", WH_Q_HOUR, 5, 0, t, &r);
    ASSERT_EQ(r.used, 0);
    /* restore at the cap: an older window than every held one is the one dropped */
    wh_rl_quota_restore(rl, "ancient", 7, WH_Q_DAY, D_2024_01_01, 3);
    quota(rl, "ancient", WH_Q_DAY, 5, 0, D_2024_01_01, &r);
    ASSERT_EQ(r.used, 0);
    quota(rl, "d", WH_Q_DAY, 5, 0, t, &r);
    ASSERT_EQ(r.used, 2);
    wh_rl_free(rl);
}

TEST(quota_cap_evicts_in_window_order_after_a_shuffled_restore)
{
    enum { N = 60 };
    wh_ratelimiter *rl = wh_rl_new(N); /* one stripe of N */
    int perm[N];
    for (int i = 0; i < N; i++)
        perm[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(next() % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    /* counter "h<i>" in the i-th hour from Mar 10, restored in a shuffled order */
    char k[16];
    for (int n = 0; n < N; n++) {
        int i = perm[n];
        snprintf(k, sizeof(k), "h%d", i);
        wh_rl_quota_restore(rl, k, strlen(k), WH_Q_HOUR, D_2024_03_10 + i * HOUR, i + 1);
    }
    ASSERT_EQ(stats(rl).quota_keys, N);
    /* h0 taken in hour 100 moves there: now it ends last of the hours */
    wh_quota_result r;
    quota(rl, "h0", WH_Q_HOUR, 100, 1, D_2024_03_10 + 100 * HOUR, &r);
    ASSERT_EQ(r.used, 1);
    int order[N]; /* the hours by window end */
    for (int i = 0; i < N; i++)
        order[i] = i + 1 < N ? i + 1 : 0;
    /* asked from the day before, every counter is in a later window and keeps its count;
     * each new month counter (ending last) pushes out the hour that ends first */
    const int64_t now = D_2024_03_10 - DAY;
    for (int j = 0; j < N; j++) {
        snprintf(k, sizeof(k), "m%d", j);
        quota(rl, k, WH_Q_MONTH, 5, 1, now, &r);
        ASSERT(r.allowed);
        ASSERT_EQ(stats(rl).evictions, j + 1);
        snprintf(k, sizeof(k), "h%d", order[j]);
        quota(rl, k, WH_Q_HOUR, 100, 0, now, &r);
        if (r.used != 0) T_FAIL("after %d evictions h%d is still held", j + 1, order[j]);
        if (j + 1 < N) {
            int i = order[j + 1];
            snprintf(k, sizeof(k), "h%d", i);
            quota(rl, k, WH_Q_HOUR, 100, 0, now, &r);
            if (r.used != (i ? i + 1 : 1)) T_FAIL("after %d evictions h%d is gone", j + 1, i);
            ASSERT_EQ(r.window_start_ms, D_2024_03_10 + (i ? i : 100) * HOUR);
        }
    }
    ASSERT_EQ(stats(rl).quota_keys, N);
    wh_rl_free(rl);
}

/* ---- threads ---- */

#define NTHREADS 4
#define PHASES 20
#define NKEYS 3

typedef struct {
    wh_ratelimiter *rl;
    pthread_barrier_t *barrier;
    int64_t t0;
    int64_t gcra_allowed[NKEYS], quota_allowed[NKEYS];
} worker;

static const wh_gcra_limit hammer_limit = {.period_ms = 10000, .count = 5, .burst = 5};
static const char *const hammer_keys[NKEYS] = {"shared:a", "shared:b", "shared:c"};

static void *hammer(void *arg)
{
    worker *w = arg;
    for (int ph = 0; ph < PHASES; ph++) {
        /* every thread at the same instant, then all move on one emission interval */
        pthread_barrier_wait(w->barrier);
        int64_t now = w->t0 + ph * 2000;
        for (int i = 0; i < 600; i++) {
            int k = i % NKEYS;
            wh_gcra_result r;
            take(w->rl, hammer_keys[k], &hammer_limit, now, 1, &r);
            w->gcra_allowed[k] += r.allowed;
            wh_quota_result q;
            quota(w->rl, hammer_keys[k], WH_Q_DAY, 1000, 1, w->t0, &q);
            w->quota_allowed[k] += q.allowed;
        }
    }
    return NULL;
}

typedef struct {
    wh_ratelimiter *rl;
    int stop; /* under mu */
    pthread_mutex_t mu;
    int64_t last[NKEYS];
    size_t visits;
} flusher;

static void on_hammer_flush(void *ud, const char *key, size_t keylen, wh_quota_period p,
                            int64_t window_start_ms, int64_t used)
{
    flusher *f = ud;
    for (int k = 0; k < NKEYS; k++)
        if (keylen == strlen(hammer_keys[k]) && !memcmp(key, hammer_keys[k], keylen)) {
            if (used < f->last[k]) f->last[k] = -1; /* one flusher: never backwards */
            if (f->last[k] >= 0) f->last[k] = used;
        }
}

static void *flush_loop(void *arg)
{
    flusher *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        int stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop) return NULL;
        f->visits += wh_rl_quota_flush(f->rl, on_hammer_flush, f);
    }
}

TEST(rl_four_threads_allow_exactly_what_gcra_and_quota_allow)
{
    wh_ratelimiter *rl = wh_rl_new(1 << 16);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    worker w[NTHREADS];
    pthread_t th[NTHREADS], ft;
    flusher f = {.rl = rl};
    pthread_mutex_init(&f.mu, NULL);
    pthread_create(&ft, NULL, flush_loop, &f);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker){.rl = rl, .barrier = &barrier, .t0 = D_2024_03_10 + HOUR};
        pthread_create(&th[i], NULL, hammer, &w[i]);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_lock(&f.mu);
    f.stop = 1;
    pthread_mutex_unlock(&f.mu);
    pthread_join(ft, NULL);
    f.visits += wh_rl_quota_flush(rl, on_hammer_flush, &f);
    for (int k = 0; k < NKEYS; k++) {
        int64_t g = 0, q = 0;
        for (int i = 0; i < NTHREADS; i++) {
            g += w[i].gcra_allowed[k];
            q += w[i].quota_allowed[k];
        }
        /* the burst of 5 at the first instant, then one per 2 s interval */
        ASSERT_EQ(g, 5 + (PHASES - 1));
        ASSERT_EQ(q, 1000);
        ASSERT_EQ(f.last[k], 1000); /* the last flush saw the final count */
    }
    ASSERT(f.visits >= NKEYS);
    ASSERT_EQ(stats(rl).keys, NKEYS);
    ASSERT_EQ(stats(rl).quota_keys, NKEYS);
    pthread_barrier_destroy(&barrier);
    pthread_mutex_destroy(&f.mu);
    wh_rl_free(rl);
}

typedef struct {
    wh_ratelimiter *rl;
    uint64_t seed;
    int64_t allowed;
} churner;

static void *churn(void *arg)
{
    churner *c = arg;
    uint64_t x = c->seed;
    wh_gcra_limit l = {.period_ms = 500, .count = 2, .burst = 3};
    int64_t now = 1000000;
    char k[32];
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += (int64_t)(x % 3);
        snprintf(k, sizeof(k), "u%u", (unsigned)(x % 20000));
        wh_gcra_result r;
        take(c->rl, k, &l, now, (int64_t)(x >> 60) % 3, &r);
        c->allowed += r.allowed;
        if (i % 16 == 0) {
            wh_quota_result q;
            quota(c->rl, k, (wh_quota_period)(x % 3), 3, 1, now * 1000, &q);
        }
    }
    return NULL;
}

TEST(rl_threads_churning_past_the_cap)
{
    /* many more keys than the cap, from 4 threads: the eviction paths under contention
     * (this is the test the sanitizer builds are for) */
    wh_ratelimiter *rl = wh_rl_new(8192);
    churner c[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        c[i] = (churner){.rl = rl, .seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1)};
        pthread_create(&th[i], NULL, churn, &c[i]);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    wh_rl_stats s = stats(rl);
    ASSERT(s.keys <= 8192);
    ASSERT(s.quota_keys <= 8192);
    ASSERT(s.quota_keys > 4096);
    ASSERT(s.evictions > 0);
    for (int i = 0; i < NTHREADS; i++)
        ASSERT(c[i].allowed > 10000);
    wh_rl_free(rl);
}
