/* ratelimit.c - see ratelimit.h.
 *
 * Eviction without a scan per insert: a stripe keeps a small min-heap of candidates (the
 * buckets with the smallest full_ms it knows of) and theta, a bound such that every entry
 * not in the heap has full_ms >= theta. A bucket's full_ms only ever grows, so a candidate's
 * recorded full_ms is a lower bound: the heap's top, once checked against the entry, is the
 * stripe's smallest if it is <= theta. When the heap runs dry or theta falls below its top,
 * one pass over the stripe drops every full bucket at once and ranks the rest again. A pass
 * costs O(slots) and yields kcand/2 = slots/24 candidates, each used up by one eviction (or
 * by a take on it), so at the cap an insert costs O(log kcand) plus a few dozen slots read
 * in order, amortized, instead of a scan of the stripe. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/base.h"

#define MAX_STRIPES 64
#define MIN_PER_STRIPE 64
#define MAX_TIME ((int64_t)1 << 42) /* ms, year 2109: keeps now_ms * count in gcra.c in range */

const char *const wh_quota_period_names[WH_Q__COUNT] = {"hour", "day", "month"};

/* Fixed window lengths; 0 = by the calendar. Indexed by wh_quota_period. */
static const int64_t window_ms[WH_Q__COUNT] = {3600000, 86400000, 0};

/* ---- GCRA stripes ---- */

typedef struct {
    uint64_t h;      /* the key's hash, never 0; 0 marks an empty slot */
    int64_t tat;     /* wh_gcra's TAT, scaled by count */
    int64_t full_ms; /* when the bucket is full again: ceil(tat / count); only grows */
    uint32_t count;  /* the limit's count tat is scaled by */
    uint32_t unused;
} gent;

typedef struct {
    uint64_t h;
    int64_t full_ms; /* as last seen: a lower bound of the entry's */
} cand;

typedef struct __attribute__((aligned(64))) { /* a cache line of its own: no false sharing */
    pthread_mutex_t lock;
    gent *slots;     /* in slots_mem, aligned so that no entry straddles two cache lines */
    void *slots_mem; /* calloc'd (pages untouched until used), 64 bytes over */
    uint32_t nslots, cap, count;
    uint32_t ncand, kcand; /* heap size and capacity */
    cand *cand;            /* a min-heap on full_ms */
    int64_t theta;         /* every entry not in the heap has full_ms >= theta */
    uint64_t evictions;
} gstripe;

/* ---- quota stripes ---- */

typedef struct qent {
    struct qent *chain;         /* next in its hash bucket */
    struct qent *dprev, *dnext; /* the changed list (when dirty) */
    uint64_t h;
    int64_t start_ms, end_ms, used;
    uint32_t hpos; /* its index in the stripe's heap */
    uint32_t keylen;
    uint8_t period;
    bool dirty;
    char key[]; /* keylen bytes and a NUL */
} qent;

typedef struct __attribute__((aligned(64))) {
    pthread_mutex_t lock;
    qent **buckets; /* chains; mask + 1 buckets, >= cap */
    uint32_t mask, cap, count;
    /* A min-heap on end_ms, the counter whose window ends first on top: periods mix, and
     * restored counters come in any order, so no list would stay ordered for free. */
    qent **heap;
    qent *dirty;
    uint64_t evictions;
} qstripe;

struct wh_ratelimiter {
    uint64_t seed;
    uint32_t nstripes; /* a power of two <= 64 */
    gstripe *g;
    qstripe *q;
};

/* ---- time ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q - (a % b != 0 && (a < 0) != (b < 0));
}

static bool month_tm(int64_t ms, struct tm *tm)
{
    time_t sec = (time_t)floor_div(ms, 1000);
    if (!gmtime_r(&sec, tm)) return false;
    tm->tm_mday = 1;
    tm->tm_hour = tm->tm_min = tm->tm_sec = 0;
    tm->tm_isdst = 0;
    return true;
}

int64_t wh_quota_window_start(wh_quota_period p, int64_t now_ms)
{
    if ((unsigned)p >= WH_Q__COUNT || now_ms <= -MAX_TIME || now_ms >= MAX_TIME) return now_ms;
    int64_t len = window_ms[p];
    if (len) return floor_div(now_ms, len) * len;
    struct tm tm;
    if (!month_tm(now_ms, &tm)) return now_ms;
    return (int64_t)timegm(&tm) * 1000;
}

int64_t wh_quota_window_end(wh_quota_period p, int64_t now_ms)
{
    if ((unsigned)p >= WH_Q__COUNT || now_ms <= -MAX_TIME || now_ms >= MAX_TIME) return now_ms;
    int64_t len = window_ms[p];
    if (len) return floor_div(now_ms, len) * len + len;
    struct tm tm;
    if (!month_tm(now_ms, &tm)) return now_ms;
    tm.tm_mon++; /* timegm carries December into January */
    return (int64_t)timegm(&tm) * 1000;
}

/* ---- construction ---- */

static uint32_t stripe_cap(const wh_ratelimiter *rl, uint32_t cap, uint32_t i)
{
    return cap / rl->nstripes + (i < cap % rl->nstripes);
}

wh_ratelimiter *wh_rl_new(uint32_t cap)
{
    if (cap == 0) return NULL;
    wh_ratelimiter *rl = calloc(1, sizeof(*rl));
    if (!rl) return NULL;
    rl->seed = wh_random_seed();
    rl->nstripes = 1;
    while (rl->nstripes < MAX_STRIPES && (uint64_t)rl->nstripes * 2 * MIN_PER_STRIPE <= cap)
        rl->nstripes *= 2;
    rl->g = aligned_alloc(64, rl->nstripes * sizeof(gstripe));
    rl->q = aligned_alloc(64, rl->nstripes * sizeof(qstripe));
    if (!rl->g || !rl->q) {
        free(rl->g);
        free(rl->q);
        free(rl);
        return NULL;
    }
    memset(rl->g, 0, rl->nstripes * sizeof(gstripe));
    memset(rl->q, 0, rl->nstripes * sizeof(qstripe));
    bool ok = true;
    for (uint32_t i = 0; i < rl->nstripes; i++) {
        gstripe *g = &rl->g[i];
        qstripe *q = &rl->q[i];
        pthread_mutex_init(&g->lock, NULL);
        pthread_mutex_init(&q->lock, NULL);
        g->cap = q->cap = stripe_cap(rl, cap, i);
        g->nslots = g->cap + g->cap / 2 + 1; /* at most 2/3 full, and never without a hole */
        g->kcand = g->cap / 8 < 8 ? 8 : g->cap / 8 > 1024 ? 1024 : g->cap / 8;
        g->theta = INT64_MAX; /* empty: nothing outside the heap */
        g->slots_mem = calloc((size_t)g->nslots * sizeof(gent) + 64, 1);
        g->slots = (gent *)(((uintptr_t)g->slots_mem + 63) & ~(uintptr_t)63);
        g->cand = malloc(g->kcand * sizeof(cand));
        uint32_t nb = 1;
        while (nb < q->cap)
            nb *= 2;
        q->mask = nb - 1;
        q->buckets = calloc(nb, sizeof(qent *));
        q->heap = malloc(q->cap * sizeof(qent *));
        ok = ok && g->slots_mem && g->cand && q->buckets && q->heap;
    }
    if (!ok) {
        wh_rl_free(rl);
        return NULL;
    }
    return rl;
}

void wh_rl_free(wh_ratelimiter *rl)
{
    if (!rl) return;
    for (uint32_t i = 0; i < rl->nstripes; i++) {
        gstripe *g = &rl->g[i];
        qstripe *q = &rl->q[i];
        free(g->slots_mem);
        free(g->cand);
        for (uint32_t b = 0; q->buckets && b <= q->mask; b++)
            for (qent *e = q->buckets[b], *next; e; e = next) {
                next = e->chain;
                free(e);
            }
        free(q->buckets);
        free(q->heap);
        pthread_mutex_destroy(&g->lock);
        pthread_mutex_destroy(&q->lock);
    }
    free(rl->g);
    free(rl->q);
    free(rl);
}

/* ---- the GCRA table ---- */

/* Home slot from the low 32 bits (the stripe came from the top ones), by multiply-shift:
 * any slot count works, so the table is sized to the cap, not to a power of two. */
static inline uint32_t g_home(const gstripe *s, uint64_t h)
{
    return (uint32_t)(((h & 0xffffffffu) * s->nslots) >> 32);
}

/* The slot holding h, or the empty slot where it would go (*found false). */
static inline uint32_t g_find(const gstripe *s, uint64_t h, bool *found)
{
    uint32_t i = g_home(s, h);
    for (;;) {
        uint64_t x = s->slots[i].h;
        if (x == h || x == 0) {
            *found = x != 0;
            return i;
        }
        if (++i == s->nslots) i = 0;
    }
}

/* Backward-shift deletion: no tombstones, so probe runs never grow with churn. */
static void g_delete(gstripe *s, uint32_t i)
{
    for (uint32_t j = i;;) {
        if (++j == s->nslots) j = 0;
        if (!s->slots[j].h) break;
        uint32_t k = g_home(s, s->slots[j].h);
        /* the entry at j may move back into the hole at i unless its home is in (i, j] */
        bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i].h = 0;
    s->count--;
}

static void heap_down(cand *c, uint32_t n, uint32_t i, bool max)
{
    for (;;) {
        uint32_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && (max ? c[l].full_ms > c[m].full_ms : c[l].full_ms < c[m].full_ms)) m = l;
        if (r < n && (max ? c[r].full_ms > c[m].full_ms : c[r].full_ms < c[m].full_ms)) m = r;
        if (m == i) return;
        cand t = c[i];
        c[i] = c[m];
        c[m] = t;
        i = m;
    }
}

static void heap_up(cand *c, uint32_t i, bool max)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (max ? c[p].full_ms >= c[i].full_ms : c[p].full_ms <= c[i].full_ms) return;
        cand t = c[i];
        c[i] = c[p];
        c[p] = t;
        i = p;
    }
}

static void cand_pop(gstripe *s)
{
    s->cand[0] = s->cand[--s->ncand];
    heap_down(s->cand, s->ncand, 0, false);
}

/* Drops every bucket full at now_ms, then takes the kcand/2 smallest full_ms of the rest
 * as candidates (half, so that new small ones find room) and theta as the smallest of the
 * others. Returns how many were dropped. */
static uint32_t g_sweep(gstripe *s, int64_t now_ms)
{
    uint32_t dropped = 0;
    /* A deletion can pull a later entry into slot i (checked again) or wrap an earlier one
     * forward (already known live, harmless to check again). */
    for (uint32_t i = 0; i < s->nslots; i++)
        while (s->slots[i].h && s->slots[i].full_ms <= now_ms) {
            g_delete(s, i);
            dropped++;
        }
    uint32_t k = s->kcand / 2;
    s->ncand = 0;
    s->theta = INT64_MAX;
    for (uint32_t i = 0; i < s->nslots; i++) {
        const gent *e = &s->slots[i];
        if (!e->h) continue;
        if (s->ncand < k) { /* a max-heap while selecting: its top is the one to give up */
            s->cand[s->ncand] = (cand){e->h, e->full_ms};
            heap_up(s->cand, s->ncand++, true);
        } else if (e->full_ms < s->cand[0].full_ms) {
            if (s->cand[0].full_ms < s->theta) s->theta = s->cand[0].full_ms;
            s->cand[0] = (cand){e->h, e->full_ms};
            heap_down(s->cand, s->ncand, 0, true);
        } else if (e->full_ms < s->theta) {
            s->theta = e->full_ms;
        }
    }
    for (uint32_t i = s->ncand / 2; i-- > 0;)
        heap_down(s->cand, s->ncand, i, false);
    return dropped;
}

/* Frees one slot of a full stripe: the bucket with the smallest full_ms goes (a full one
 * first, as it is the smallest; only a live one counts as an eviction). */
static void g_make_room(gstripe *s, int64_t now_ms)
{
    for (;;) {
        if (s->ncand == 0 && g_sweep(s, now_ms) > 0) return;
        bool found;
        uint32_t i = g_find(s, s->cand[0].h, &found);
        if (!found) { /* cannot happen: candidates leave the heap before their entry goes */
            cand_pop(s);
            continue;
        }
        int64_t v = s->slots[i].full_ms;
        if (v > s->cand[0].full_ms) { /* taken since it was ranked: rank it again */
            if (v < s->theta) {
                s->cand[0].full_ms = v;
                heap_down(s->cand, s->ncand, 0, false);
            } else {
                cand_pop(s); /* >= theta: an ordinary entry now */
            }
            continue;
        }
        if (v > s->theta) { /* something outside the heap may be smaller: rank again */
            s->ncand = 0;
            continue;
        }
        cand_pop(s);
        g_delete(s, i);
        if (v > now_ms) s->evictions++;
        return;
    }
}

static void refuse_gcra(const wh_gcra_limit *l, wh_gcra_result *out)
{
    *out = (wh_gcra_result){.allowed = false, .limit = l ? l->burst : 0, .retry_after_ms = -1};
}

void wh_rl_throttle(wh_ratelimiter *rl, const char *key, size_t keylen, const wh_gcra_limit *l,
                    int64_t now_ms, int64_t cost, wh_gcra_result *out)
{
    if (!l || !wh_gcra_limit_valid(l) || keylen > WH_RL_MAX_KEY || (!key && keylen) ||
        now_ms <= -MAX_TIME || now_ms >= MAX_TIME) {
        refuse_gcra(l, out);
        return;
    }
    if (cost < 0) cost = 0;
    /* More than the burst is never allowed and answers the same for any such cost; capping
     * it keeps T * cost in gcra.c from overflowing. */
    if (cost > l->burst) cost = l->burst + 1;
    uint64_t h = XXH3_64bits_withSeed(key, keylen, rl->seed);
    h += h == 0;
    gstripe *s = &rl->g[(h >> 58) & (rl->nstripes - 1)];
    pthread_mutex_lock(&s->lock);
    bool found;
    uint32_t i = g_find(s, h, &found);
    gent *e = &s->slots[i];
    wh_gcra g = {0};
    if (found && e->count == (uint32_t)l->count) {
        g.tat = e->tat;
    } else if (found) { /* another count scales TAT differently: go through ms, rounded up
                         * (and bounded, for a TAT years ahead under a limit so slow) */
        int64_t bound = ((int64_t)1 << 62) / l->count;
        g.tat = (e->full_ms < bound ? e->full_ms : bound) * l->count;
    }
    wh_gcra_take(&g, l, now_ms, cost, out);
    if (out->allowed) {
        int64_t full = now_ms + out->reset_after_ms; /* = ceil(tat / count) */
        if (found) {
            e->tat = g.tat;
            e->count = (uint32_t)l->count;
            if (full > e->full_ms) e->full_ms = full;
        } else if (full > now_ms) { /* a full bucket is not stored: absent is the same */
            if (s->count == s->cap) {
                g_make_room(s, now_ms);
                i = g_find(s, h, &found); /* the deletion may have shifted the run */
                e = &s->slots[i];
            }
            *e = (gent){.h = h, .tat = g.tat, .full_ms = full, .count = (uint32_t)l->count};
            s->count++;
            if (full < s->theta) {
                if (s->ncand < s->kcand) {
                    s->cand[s->ncand] = (cand){h, full};
                    heap_up(s->cand, s->ncand++, false);
                } else {
                    s->theta = full; /* left outside the heap: theta must still bound it */
                }
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- the quota table ---- */

static uint64_t q_hash(const wh_ratelimiter *rl, const char *key, size_t keylen, wh_quota_period p)
{
    return XXH3_64bits_withSeed(key, keylen, rl->seed ^ ((uint64_t)(p + 1) * 0x9E3779B97F4A7C15u));
}

static qstripe *q_stripe(const wh_ratelimiter *rl, uint64_t h)
{
    return &rl->q[(h >> 58) & (rl->nstripes - 1)];
}

static qent *q_find(const qstripe *s, uint64_t h, const char *key, size_t keylen, wh_quota_period p)
{
    for (qent *e = s->buckets[h & s->mask]; e; e = e->chain)
        if (e->h == h && e->keylen == keylen && e->period == p && !memcmp(e->key, key, keylen))
            return e;
    return NULL;
}

static void q_heap_swap(qstripe *s, uint32_t i, uint32_t j)
{
    qent *t = s->heap[i];
    s->heap[i] = s->heap[j];
    s->heap[j] = t;
    s->heap[i]->hpos = i;
    s->heap[j]->hpos = j;
}

/* Restores the heap order around i after heap[i]'s end_ms changed (or it was put there). */
static void q_heap_fix(qstripe *s, uint32_t i)
{
    while (i > 0 && s->heap[(i - 1) / 2]->end_ms > s->heap[i]->end_ms) {
        q_heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < s->count && s->heap[l]->end_ms < s->heap[m]->end_ms) m = l;
        if (r < s->count && s->heap[r]->end_ms < s->heap[m]->end_ms) m = r;
        if (m == i) return;
        q_heap_swap(s, i, m);
        i = m;
    }
}

/* Moves e to a later window. */
static void q_move(qstripe *s, qent *e, int64_t start_ms, int64_t end_ms)
{
    e->start_ms = start_ms;
    e->end_ms = end_ms;
    q_heap_fix(s, e->hpos);
}

static void q_mark_dirty(qstripe *s, qent *e)
{
    if (e->dirty) return;
    e->dirty = true;
    e->dprev = NULL;
    e->dnext = s->dirty;
    if (s->dirty) s->dirty->dprev = e;
    s->dirty = e;
}

static void q_remove(qstripe *s, qent *e)
{
    qent **pp = &s->buckets[e->h & s->mask];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    uint32_t i = e->hpos;
    s->count--;
    if (i != s->count) {
        s->heap[i] = s->heap[s->count];
        s->heap[i]->hpos = i;
        q_heap_fix(s, i);
    }
    if (e->dirty) {
        if (e->dprev)
            e->dprev->dnext = e->dnext;
        else
            s->dirty = e->dnext;
        if (e->dnext) e->dnext->dprev = e->dprev;
    }
    free(e);
}

static qent *q_insert(qstripe *s, uint64_t h, const char *key, size_t keylen, wh_quota_period p,
                      int64_t start_ms, int64_t end_ms, int64_t used)
{
    qent *e = malloc(sizeof(*e) + keylen + 1);
    if (!e) return NULL;
    *e = (qent){.h = h,
                .start_ms = start_ms,
                .end_ms = end_ms,
                .used = used,
                .keylen = (uint32_t)keylen,
                .period = (uint8_t)p};
    if (keylen) memcpy(e->key, key, keylen);
    e->key[keylen] = '\0';
    e->chain = s->buckets[h & s->mask];
    s->buckets[h & s->mask] = e;
    e->hpos = s->count;
    s->heap[s->count++] = e;
    q_heap_fix(s, e->hpos);
    return e;
}

static bool quota_args_ok(const char *key, size_t keylen, wh_quota_period p, int64_t t)
{
    return (unsigned)p < WH_Q__COUNT && keylen <= WH_RL_MAX_KEY && (key || !keylen) &&
           t > -MAX_TIME && t < MAX_TIME;
}

void wh_rl_quota(wh_ratelimiter *rl, const char *key, size_t keylen, wh_quota_period p,
                 int64_t limit, int64_t cost, int64_t now_ms, wh_quota_result *out)
{
    if (limit < 0) limit = 0;
    if (cost < 0) cost = 0;
    *out = (wh_quota_result){.allowed = false, .limit = limit};
    if (!quota_args_ok(key, keylen, p, now_ms)) return;
    int64_t start = wh_quota_window_start(p, now_ms), end = wh_quota_window_end(p, now_ms);
    uint64_t h = q_hash(rl, key, keylen, p);
    qstripe *s = q_stripe(rl, h);
    pthread_mutex_lock(&s->lock);
    qent *e = q_find(s, h, key, keylen, p);
    int64_t used = 0;
    if (e && e->start_ms >= start) { /* this window (or a later one: time went back) */
        start = e->start_ms;
        end = e->end_ms;
        used = e->used;
    }
    bool allowed = used <= limit && cost <= limit - used; /* used + cost <= limit, no overflow */
    if (allowed && cost > 0) {
        if (!e) {
            if (s->count == s->cap) {
                if (s->heap[0]->end_ms > now_ms) s->evictions++;
                q_remove(s, s->heap[0]);
            }
            e = q_insert(s, h, key, keylen, p, start, end, 0);
        } else if (e->start_ms != start) {
            q_move(s, e, start, end);
        }
        if (e) {
            e->used = used + cost;
            q_mark_dirty(s, e);
            used += cost;
        } else {
            allowed = false; /* no memory for the counter: fail closed */
        }
    }
    pthread_mutex_unlock(&s->lock);
    out->allowed = allowed;
    out->used = used;
    out->remaining = limit > used ? limit - used : 0;
    out->window_start_ms = start;
    out->reset_after_ms = end - now_ms;
}

void wh_rl_quota_restore(wh_ratelimiter *rl, const char *key, size_t keylen, wh_quota_period p,
                         int64_t window_start_ms, int64_t used)
{
    if (!quota_args_ok(key, keylen, p, window_start_ms)) return;
    if (used < 0) used = 0;
    int64_t start = wh_quota_window_start(p, window_start_ms);
    int64_t end = wh_quota_window_end(p, window_start_ms);
    uint64_t h = q_hash(rl, key, keylen, p);
    qstripe *s = q_stripe(rl, h);
    pthread_mutex_lock(&s->lock);
    qent *e = q_find(s, h, key, keylen, p);
    if (e) {
        if (e->start_ms <= start) {
            if (e->start_ms != start) q_move(s, e, start, end);
            e->used = used;
        }
    } else {
        bool room = true;
        if (s->count == s->cap) {
            s->evictions++;
            if (s->heap[0]->end_ms <= end)
                q_remove(s, s->heap[0]);
            else
                room = false; /* this one ends first: it is the one that goes */
        }
        if (room) q_insert(s, h, key, keylen, p, start, end, used);
    }
    pthread_mutex_unlock(&s->lock);
}

typedef struct {
    int64_t start_ms, used;
    uint32_t keylen, period;
    /* then keylen bytes and a NUL, padded to 8 */
} frec;

static size_t frec_size(uint32_t keylen)
{
    return (sizeof(frec) + keylen + 1 + 7) & ~(size_t)7;
}

size_t wh_rl_quota_flush(wh_ratelimiter *rl,
                         void (*fn)(void *ud, const char *key, size_t keylen, wh_quota_period p,
                                    int64_t window_start_ms, int64_t used),
                         void *ud)
{
    size_t visited = 0;
    for (uint32_t i = 0; i < rl->nstripes; i++) {
        qstripe *s = &rl->q[i];
        pthread_mutex_lock(&s->lock);
        size_t bytes = 0;
        for (qent *e = s->dirty; e; e = e->dnext)
            bytes += frec_size(e->keylen);
        char *buf = bytes ? malloc(bytes) : NULL;
        if (!buf) { /* nothing changed, or no memory: they stay for the next flush */
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        /* Copied under the lock, written out without it: takers never wait for SQLite. */
        char *w = buf;
        for (qent *e = s->dirty, *next; e; e = next) {
            next = e->dnext;
            frec *r = (frec *)w;
            *r = (frec){e->start_ms, e->used, e->keylen, e->period};
            memcpy(w + sizeof(frec), e->key, e->keylen + 1);
            w += frec_size(e->keylen);
            e->dirty = false;
            e->dprev = e->dnext = NULL;
        }
        s->dirty = NULL;
        pthread_mutex_unlock(&s->lock);
        for (char *r = buf; r < w; r += frec_size(((frec *)r)->keylen)) {
            const frec *f = (const frec *)r;
            fn(ud, r + sizeof(frec), f->keylen, (wh_quota_period)f->period, f->start_ms, f->used);
            visited++;
        }
        free(buf);
    }
    return visited;
}

void wh_rl_stats_get(wh_ratelimiter *rl, wh_rl_stats *out)
{
    *out = (wh_rl_stats){0};
    for (uint32_t i = 0; i < rl->nstripes; i++) {
        gstripe *g = &rl->g[i];
        pthread_mutex_lock(&g->lock);
        out->keys += g->count;
        out->evictions += g->evictions;
        pthread_mutex_unlock(&g->lock);
        qstripe *q = &rl->q[i];
        pthread_mutex_lock(&q->lock);
        out->quota_keys += q->count;
        out->evictions += q->evictions;
        pthread_mutex_unlock(&q->lock);
    }
}
