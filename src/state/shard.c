/* shard.c - see shard.h. */
#define _GNU_SOURCE
#include "shard.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "state/sketch.h"
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

/* A NUL-terminated copy of n bytes that need not be NUL-terminated (strndup may look at
 * the byte after them). */
static char *memdup0(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* Stores a member's id inline when it fits; false when out of memory. */
static bool member_set_id(wh_wave_member *m, const char *p, size_t n)
{
    m->big = NULL;
    if (n < sizeof(m->id)) {
        if (n) memcpy(m->id, p, n);
        m->id[n] = 0;
        return true;
    }
    m->id[0] = 0;
    return (m->big = memdup0(p, n)) != NULL;
}

static void waves_free(wh_waves *w)
{
    if (!w) return;
    for (uint32_t i = 0; i < w->ng; i++) {
        for (uint32_t k = 0; k < w->g[i].n; k++)
            if (w->g[i].m[k].big) free(w->g[i].m[k].big);
        free(w->g[i].m);
    }
    free(w->g);
    free(w->bucket);
    free(w);
}

#define WAVE_BUCKETS_MAX (4u * WH_WAVE_GROUPS)

static void chan_ext_free(wh_chan_ext *x)
{
    if (!x) return;
    for (int i = 0; i < WH_CHAN_SLOTS; i++)
        free(x->win[i].t);
    for (uint32_t i = 0; i < x->jcap; i++)
        free(x->j[i].big);
    free(x->j);
    free(x);
}

static void drop_channel(void *payload)
{
    wh_channel *ch = payload;
    waves_free(ch->waves);
    ch->waves = NULL;
    chan_ext_free(ch->x);
    ch->x = NULL;
}

static void drop_user(void *payload)
{
    wh_user_release(payload);
}

wh_shard *wh_shard_new(uint32_t max_users, uint32_t max_channels, int64_t idle_ms)
{
    wh_shard *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->users = wh_table_new(max_users ? max_users : 1, sizeof(wh_user), idle_ms);
    s->chans = wh_table_new(max_channels ? max_channels : 1, sizeof(wh_channel), idle_ms);
    if (!s->users || !s->chans) {
        wh_shard_free(s);
        return NULL;
    }
    wh_table_set_drop(s->chans, drop_channel);
    wh_table_set_drop(s->users, drop_user);
    return s;
}

void wh_shard_free(wh_shard *s)
{
    if (!s) return;
    wh_table_free(s->users);
    wh_table_free(s->chans);
    free(s);
}

uint64_t wh_chan_key(wh_str platform, wh_str channel)
{
    /* hash(channel) seeded by hash(platform): one-shot hashes, no streaming state */
    uint64_t p = XXH3_64bits(platform.p ? platform.p : "", platform.n);
    return XXH3_64bits_withSeed(channel.p ? channel.p : "", channel.n, p ^ 0x9e3779b97f4a7c15ULL);
}

uint64_t wh_user_key(uint64_t chan_key, wh_str user)
{
    uint64_t h = XXH3_64bits_withSeed(user.p ? user.p : "", user.n, chan_key);
    return (chan_key & 0xffff000000000000ULL) | (h & 0x0000ffffffffffffULL);
}

static inline uint32_t bucket_of(const wh_waves *w, uint32_t anchor);

void wh_shard_prefetch(const wh_shard *s, uint64_t user_key, uint64_t chan_key,
                       const uint32_t anchor[2], int stage)
{
    if (user_key) wh_table_prefetch(s->users, user_key, stage);
    wh_table_prefetch(s->chans, chan_key, stage);
    if (stage < 1 || !anchor) return;
    /* channels are few and their entries stay cached: the wave index can be fetched at
     * stage 1, and at stage 2 (the index now cached) the groups it points to */
    const wh_channel *ch = wh_table_peek(s->chans, chan_key);
    if (!ch || !ch->waves || !ch->waves->bucket) return;
    const wh_waves *w = ch->waves;
    for (int a = 0; a < 2; a++) {
        const uint32_t *b = &w->bucket[bucket_of(w, anchor[a])];
        if (stage == 1)
            __builtin_prefetch(b);
        else if (*b && *b <= w->ng)
            __builtin_prefetch(&w->g[*b - 1]);
    }
}

wh_user *wh_shard_user(wh_shard *s, uint64_t key, int64_t now_ms, bool create)
{
    if (create) wh_table_expire(s->users, now_ms);
    return wh_table_get(s->users, key, now_ms, create, NULL);
}

wh_channel *wh_shard_channel(wh_shard *s, uint64_t key, int64_t now_ms, bool create)
{
    if (create) wh_table_expire(s->chans, now_ms);
    return wh_table_get(s->chans, key, now_ms, create, NULL);
}

/* ---- users ---- */

double wh_user_strikes(const wh_user *u, const wh_state_cfg *c, int64_t now_ms)
{
    if (u->strikes <= 0) return 0;
    int64_t dt = now_ms - u->strikes_ms;
    if (dt <= 0) return u->strikes;
    if (c->expire_ms) return dt >= c->expire_ms ? 0 : u->strikes;
    if (c->half_life_ms) return u->strikes * exp2(-(double)dt / (double)c->half_life_ms);
    return u->strikes;
}

void wh_user_add_rep(wh_user *u, const wh_state_cfg *c, double d)
{
    double r = u->rep + d;
    if (r < c->rep_min) r = c->rep_min;
    if (r > c->rep_max) r = c->rep_max;
    u->rep = r;
}

void wh_user_add_strikes(wh_user *u, const wh_state_cfg *c, int64_t now_ms, double w)
{
    double s = wh_user_strikes(u, c, now_ms) + w;
    if (s < 1e-9) s = 0;
    u->strikes = s;
    /* With expire, the clock restarts at a new strike only (taking one back is no strike);
     * with half_life, the value is stored as of now. */
    if (now_ms > u->strikes_ms && (w > 0 || !c->expire_ms)) u->strikes_ms = now_ms;
    if (w > 0) wh_user_add_rep(u, c, c->rep_strike * w);
}

static inline bool recent(int64_t ts, int64_t now_ms, int64_t within_ms)
{
    int64_t age = now_ms - ts;
    return age < within_ms; /* an out-of-order (older "now") event sees it as just now */
}

/* ---- the message log ---- */

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

void wh_user_release(wh_user *u)
{
    free(u->more);
    u->more = NULL;
    u->cap = 0;
    if (u->n > WH_RECENT) u->n = WH_RECENT; /* (never read again without a reset) */
}

/* Moves the log to `cap` slots (heap when cap > WH_RECENT, inline otherwise), keeping the
 * newest entries, oldest first from slot 0. False when out of memory (nothing changed). */
static bool log_resize(wh_user *u, uint32_t cap)
{
    uint32_t keep = u->n < cap ? u->n : cap;
    int64_t t[WH_LOG_MAX];
    uint32_t h[WH_LOG_MAX];
    const int64_t *ots = log_ts(u);
    const uint32_t *oh = log_hash(u);
    for (uint32_t k = 0; k < keep; k++) { /* k-th oldest of the kept */
        uint32_t i = log_idx(u, keep - 1 - k);
        t[k] = ots[i];
        h[k] = oh[i];
    }
    int64_t *more = NULL;
    if (cap > WH_RECENT) {
        more = malloc((size_t)cap * (sizeof(int64_t) + sizeof(uint32_t)));
        if (!more) return false;
    }
    free(u->more);
    u->more = more;
    u->cap = (uint16_t)(more ? cap : 0);
    u->n = (uint16_t)keep;
    if (more) { /* oldest first from slot 0 */
        memcpy(more, t, keep * sizeof(int64_t));
        memcpy(more + cap, h, keep * sizeof(uint32_t));
        u->head = (uint16_t)(keep & (cap - 1));
        return true;
    }
    /* inline, the log keeps step with the sketches: slot j of ts/hash is the message whose
     * sketch is sim[j] (head == sim_head), which lets the inline paths index them alike */
    for (uint32_t k = 0; k < keep; k++) {
        uint32_t j = (u->sim_head - keep + k) & (WH_RECENT - 1);
        u->ts[j] = t[k];
        u->hash[j] = h[k];
    }
    u->head = u->sim_head;
    return true;
}

uint32_t wh_user_count_dup(const wh_user *u, uint64_t hash, int64_t now_ms, int64_t within_ms)
{
    uint32_t n = 0, h = (uint32_t)hash;
    const int64_t *ts = log_ts(u);
    const uint32_t *hs = log_hash(u);
    for (uint32_t i = 0; i < u->n; i++)
        n += hs[i] == h && recent(ts[i], now_ms, within_ms);
    return n;
}

WH_POPCNT_CLONES uint32_t wh_user_count_similar(const wh_user *u, uint64_t sim, double threshold,
                                                int64_t now_ms, int64_t within_ms)
{
    uint32_t n = 0, k = u->n < WH_RECENT ? u->n : WH_RECENT;
    if (!u->more) { /* inline: slot j holds the time of sketch j, and the used slots are 0..n */
        for (uint32_t j = 0; j < k; j++)
            n += recent(u->ts[j], now_ms, within_ms) &&
                 wh_sim_similarity(u->sim[j], sim) >= threshold - 1e-9;
        return n;
    }
    const int64_t *ts = u->more;
    uint32_t mask = u->cap - 1u, li = u->head - 1u, si = u->sim_head - 1u;
    for (uint32_t i = 0; i < k; i++, li--, si--)
        n += recent(ts[li & mask], now_ms, within_ms) &&
             wh_sim_similarity(u->sim[si & (WH_RECENT - 1)], sim) >= threshold - 1e-9;
    return n;
}

bool wh_user_window_over(const wh_user *u, int64_t count, int64_t per_ms, int64_t now_ms)
{
    if (count < 1 || u->n < count) return false;
    return recent(log_ts(u)[log_idx(u, (uint32_t)count - 1)], now_ms, per_ms);
}

void wh_user_remember(wh_user *u, const wh_state_cfg *c, uint64_t hash, uint64_t sim,
                      int64_t now_ms)
{
    uint32_t cap = log_cap(u);
    if (!u->more && (u->n < WH_RECENT || c->log_cap <= WH_RECENT ||
                     !recent(u->ts[u->head], now_ms, c->log_keep_ms))) {
        /* the usual case: inline, in step with the sketches (no growth needed) */
        uint32_t j = u->head;
        u->ts[j] = now_ms;
        u->hash[j] = (uint32_t)hash;
        u->sim[j] = sim;
        u->head = u->sim_head = (uint8_t)((j + 1) & (WH_RECENT - 1));
        if (u->n < WH_RECENT) u->n++;
        return;
    }
    /* full, and the oldest is still inside a window a rule looks at: grow (doubling) */
    if (u->n == cap && cap < c->log_cap && recent(log_ts(u)[u->head], now_ms, c->log_keep_ms)) {
        uint32_t ncap = cap * 2 < c->log_cap ? cap * 2 : c->log_cap;
        if (log_resize(u, ncap)) cap = ncap;
    }
    int64_t *ts = u->more ? u->more : u->ts;
    uint32_t *hs = u->more ? (uint32_t *)(u->more + u->cap) : u->hash;
    ts[u->head] = now_ms;
    hs[u->head] = (uint32_t)hash;
    u->head = (uint16_t)((u->head + 1) & (cap - 1));
    if (u->n < cap) u->n++;
    u->sim[u->sim_head] = sim;
    u->sim_head = (uint8_t)((u->sim_head + 1) & (WH_RECENT - 1));
    /* a heap log whose messages beyond the last 8 are all older than every window goes
     * back inline: a user who was busy once does not keep 1.5 KB for the rest of the day */
    if (u->more && u->n > WH_RECENT) {
        bool stale = true;
        for (uint32_t i = WH_RECENT; i < u->n && stale; i++)
            stale = !recent(ts[log_idx(u, i)], now_ms, c->log_keep_ms);
        if (stale) log_resize(u, WH_RECENT);
    }
}

/* ---- channel windows and joins ---- */

wh_chan_ext *wh_chan_ext_get(wh_channel *ch)
{
    if (!ch->x) ch->x = calloc(1, sizeof(wh_chan_ext));
    return ch->x;
}

/* Rings have power-of-two capacities (an index is a mask). */
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

/* Appends t, growing the ring (doubling, up to the power of two >= count) while its oldest
 * entry is within keep_ms: a window of `count` needs the last `count` times. */
static void tring_push(wh_tring *r, int64_t t, uint32_t count, int64_t keep_ms)
{
    uint32_t max = pow2_at_least(count);
    if (r->n == r->cap && r->cap < max &&
        (r->cap == 0 || recent(tring_at(r, r->n - 1), t, keep_ms))) {
        uint32_t ncap = r->cap ? r->cap * 2 : 8;
        if (ncap > max) ncap = max;
        int64_t *nt = malloc(ncap * sizeof(int64_t));
        if (nt) {
            for (uint32_t k = 0; k < r->n; k++)
                nt[k] = tring_at(r, r->n - 1 - k);
            free(r->t);
            r->t = nt;
            r->cap = ncap;
            r->head = r->n & (ncap - 1);
        }
    }
    if (!r->cap) return;
    r->t[r->head] = t;
    r->head = (r->head + 1) & (r->cap - 1);
    if (r->n < r->cap) r->n++;
}

bool wh_chan_window_take(wh_chan_ext *x, uint32_t slot, const wh_rate_slot *sl, int64_t now_ms)
{
    wh_tring *r = &x->win[slot];
    bool over =
        r->n >= sl->count && recent(tring_at(r, (uint32_t)sl->count - 1), now_ms, sl->period_ms);
    tring_push(r, now_ms, (uint32_t)sl->count, sl->period_ms);
    return over;
}

void wh_chan_remember_join(wh_chan_ext *x, const wh_state_cfg *c, wh_str user_id, uint64_t mask,
                           int64_t now_ms)
{
    if (!c->join_log_cap) return;
    if (x->jn == x->jcap && x->jcap < c->join_log_cap &&
        (x->jcap == 0 || recent(x->j[x->jhead].ts, now_ms, c->join_keep_ms))) {
        uint32_t ncap = x->jcap ? x->jcap * 2 : 16;
        if (ncap > c->join_log_cap) ncap = c->join_log_cap;
        wh_joiner *nj = calloc(ncap, sizeof(wh_joiner));
        if (nj) {
            for (uint32_t k = 0; k < x->jn; k++) /* oldest first */
                nj[k] = x->j[(x->jhead + x->jcap - x->jn + k) % x->jcap];
            free(x->j);
            x->j = nj;
            x->jcap = ncap;
            x->jhead = x->jn % ncap;
        }
    }
    if (!x->jcap) return;
    wh_joiner *e = &x->j[x->jhead];
    free(e->big);
    e->ts = now_ms;
    e->mask = mask;
    e->big = NULL;
    size_t n = user_id.n;
    if (n < sizeof(e->id)) {
        if (n) memcpy(e->id, user_id.p, n);
        e->id[n] = 0;
    } else {
        e->id[0] = 0;
        e->big = memdup0(user_id.p, n); /* NULL when out of memory: the joiner goes unnamed */
    }
    x->jhead = (x->jhead + 1) % x->jcap;
    if (x->jn < x->jcap) x->jn++;
}

/* ---- waves ---- */

/* Empties a group for reuse; its member array stays allocated. */
static void cluster_clear(wh_wave_cluster *g)
{
    for (uint32_t k = 0; k < g->n; k++)
        if (g->m[k].big) free(g->m[k].big); /* (most ids are inline: no call) */
    wh_wave_member *m = g->m;
    uint32_t cap = g->cap;
    memset(g, 0, sizeof(*g));
    g->m = m;
    g->cap = cap;
}

WH_POPCNT_CLONES static double cluster_similarity(const wh_wave_cluster *g, uint64_t sim)
{
    double best = wh_sim_similarity(g->sim, sim);
    uint32_t from = g->n > WH_WAVE_COMPARE ? g->n - WH_WAVE_COMPARE : 0;
    for (uint32_t k = from; k < g->n; k++) {
        double x = wh_sim_similarity(g->m[k].sim, sim);
        if (x > best) best = x;
    }
    return best;
}

static inline uint32_t bucket_of(const wh_waves *w, uint32_t anchor)
{
    /* the top bits of a multiplicative hash (the low ones only mix the anchor's low bits) */
    return (uint32_t)(((uint64_t)(anchor * 2654435761u) * w->nbuckets) >> 32);
}

/* Sizes the index (16 buckets a group, at most WAVE_BUCKETS_MAX) and files every group
 * again under what it was last filed under. Two groups in one bucket: the bigger keeps it
 * (then the more recent), as when a message files its group: a growing pool must not trade
 * a forming wave for a line of chat that happens to share its bucket. */
static bool wave_reindex(wh_waves *w, uint32_t nbuckets)
{
    uint32_t *b = calloc(nbuckets, sizeof(uint32_t));
    if (!b) return false;
    free(w->bucket);
    w->bucket = b;
    w->nbuckets = nbuckets;
    for (uint32_t i = 0; i < w->ng; i++) {
        const wh_wave_cluster *g = &w->g[i];
        if (!g->n) continue;
        for (int a = 0; a < 2; a++) {
            uint32_t *e = &b[bucket_of(w, g->anchor[a])];
            const wh_wave_cluster *o = *e ? &w->g[*e - 1] : NULL;
            if (!o || o->n < g->n || (o->n == g->n && o->last_ms <= g->last_ms)) *e = i + 1;
        }
    }
    return true;
}

static inline bool wave_live(const wh_wave_cluster *g, int64_t now_ms, int64_t within_ms)
{
    return g->live_ms && g->n && recent(g->live_ms, now_ms, within_ms);
}

void wh_wave_mark_live(wh_channel *ch, wh_wave_cluster *g, uint32_t users, int64_t now_ms)
{
    wh_waves *w = ch->waves;
    if (!w || g < w->g || g >= w->g + w->ng) return;
    bool was = g->live_ms != 0;
    if (!was || now_ms >= g->live_ms) {
        if (!was || users > g->live_users) g->live_users = (uint16_t)users;
        g->live_ms = now_ms ? now_ms : 1; /* 0 is "not a known wave" */
    }
    /* listed already, else in a free place or the one whose wave went quiet first */
    uint32_t idx = (uint32_t)(g - w->g) + 1, slot = 0;
    int64_t quiet = INT64_MAX;
    for (uint32_t i = 0; i < WH_WAVE_LIVE; i++) {
        if (w->live[i] == idx) return;
        const wh_wave_cluster *o = w->live[i] && w->live[i] <= w->ng ? &w->g[w->live[i] - 1] : NULL;
        int64_t ol = o ? o->live_ms : INT64_MIN;
        if (ol < quiet) quiet = ol, slot = i;
    }
    w->live[slot] = idx;
}

/* A group to (re)use: a stale one at the cursor, a new slot while the pool may grow, else
 * the least recently active of the next 8 from the cursor. NULL when out of memory. */
static wh_wave_cluster *wave_new_group(wh_waves *w, const wh_state_cfg *c, int64_t now_ms)
{
    if (w->ng && w->cursor < w->ng) {
        wh_wave_cluster *g = &w->g[w->cursor];
        if (!g->n || !recent(g->last_ms, now_ms, c->wave_within_ms)) {
            w->cursor = (w->cursor + 1) % w->ng;
            cluster_clear(g);
            return g;
        }
    }
    if (w->ng < WH_WAVE_GROUPS) {
        if (w->ng == w->capg) {
            uint32_t nc = w->capg ? w->capg * 2 : 16;
            wh_wave_cluster *ng = realloc(w->g, sizeof(*ng) * nc);
            if (!ng) return NULL;
            memset(ng + w->capg, 0, sizeof(*ng) * (nc - w->capg));
            w->g = ng;
            w->capg = nc;
            uint32_t want = 16 * nc < WAVE_BUCKETS_MAX ? 16 * nc : WAVE_BUCKETS_MAX;
            if (want > w->nbuckets && !wave_reindex(w, want)) return NULL;
        }
        return &w->g[w->ng++];
    }
    uint32_t best = w->cursor % w->ng;
    for (uint32_t k = 0; k < 8; k++) {
        uint32_t i = (w->cursor + k) % w->ng;
        if (!w->g[i].n || !recent(w->g[i].last_ms, now_ms, c->wave_within_ms)) {
            best = i;
            break;
        }
        if (w->g[i].last_ms < w->g[best].last_ms ||
            wave_live(&w->g[best], now_ms, c->wave_within_ms))
            best = i;
    }
    w->cursor = (best + 1) % w->ng;
    cluster_clear(&w->g[best]);
    return &w->g[best];
}

wh_wave_cluster *wh_wave_observe(wh_channel *ch, const wh_state_cfg *c, uint64_t user,
                                 wh_str user_id, uint64_t sim, const uint32_t anchor[2],
                                 bool counted, int64_t now_ms, double *similarity)
{
    if (!ch->waves && !(ch->waves = calloc(1, sizeof(wh_waves)))) return NULL;
    wh_waves *w = ch->waves;
    if (!w->bucket && !wave_reindex(w, 256)) return NULL;
    wh_wave_cluster *best = NULL;
    double bs = -1;
    for (int a = 0; a < 2; a++) {
        uint32_t gi = w->bucket[bucket_of(w, anchor[a])];
        if (!gi || gi > w->ng) continue;
        wh_wave_cluster *g = &w->g[gi - 1];
        if (g == best || !g->n || !recent(g->last_ms, now_ms, c->wave_within_ms)) continue;
        double x = cluster_similarity(g, sim);
        if (x >= c->wave_threshold - 1e-9 && x > bs) bs = x, best = g;
    }
    const wh_wave_cluster *found_by_index = best;
    /* The index found no similar group: a known wave, still live, may have lost its place in
     * it (a copy whose only long words were noise refiled it; a bucket went to another group).
     * Compare with those too, so a wave does not split in two and let a run through. */
    for (uint32_t i = 0; found_by_index == NULL && w->live[0] && i < WH_WAVE_LIVE; i++) {
        uint32_t gi = w->live[i];
        if (!gi || gi > w->ng) continue;
        wh_wave_cluster *g = &w->g[gi - 1];
        if (!wave_live(g, now_ms, c->wave_within_ms)) continue;
        double x = cluster_similarity(g, sim);
        if (x >= c->wave_threshold - 1e-9 && x > bs) bs = x, best = g;
    }
    if (!best) {
        if (!(best = wave_new_group(w, c, now_ms))) return NULL;
        best->sim = sim;
        bs = 1;
    }
    /* File the group under this message's anchors (it stays findable by the words its
     * latest messages share), but never over a bigger active group: ordinary chat must not
     * push a forming wave out of the index. */
    uint32_t idx = (uint32_t)(best - w->g) + 1;
    best->anchor[0] = anchor[0];
    best->anchor[1] = anchor[1];
    for (int a = 0; a < 2; a++) {
        uint32_t *b = &w->bucket[bucket_of(w, anchor[a])];
        const wh_wave_cluster *o = *b && *b <= w->ng ? &w->g[*b - 1] : NULL;
        if (!o || o == best || o->n <= best->n + 1 ||
            !recent(o->last_ms, now_ms, c->wave_within_ms))
            *b = idx;
    }
    *similarity = bs;
    /* Members: drop those older than the longest window, then add or refresh this one. */
    uint32_t k = 0;
    bool found = false;
    for (uint32_t i = 0; i < best->n; i++) {
        wh_wave_member *m = &best->m[i];
        if (!recent(m->ts, now_ms, c->wave_within_ms)) {
            if (m->big) free(m->big);
            continue;
        }
        if (m->user == user) {
            m->ts = now_ms > m->ts ? now_ms : m->ts;
            m->sim = sim;
            m->counted |= counted;
            found = true;
        }
        best->m[k++] = *m;
    }
    best->n = k;
    if (!found) {
        if (best->n == WH_WAVE_MEMBERS) { /* full: the oldest member goes */
            if (best->m[0].big) free(best->m[0].big);
            memmove(best->m, best->m + 1, sizeof(wh_wave_member) * (best->n - 1));
            best->n--;
        }
        if (best->n == best->cap) {
            uint32_t nc = best->cap ? best->cap * 2 : 2;
            wh_wave_member *nm = realloc(best->m, sizeof(wh_wave_member) * nc);
            if (!nm) return NULL;
            best->m = nm;
            best->cap = nc;
        }
        wh_wave_member *m = &best->m[best->n];
        m->user = user;
        m->ts = now_ms;
        m->sim = sim;
        m->counted = counted;
        if (!member_set_id(m, user_id.p ? user_id.p : "", user_id.p ? user_id.n : 0)) return NULL;
        best->n++;
    }
    if (now_ms > best->last_ms) best->last_ms = now_ms;
    return best;
}

uint32_t wh_wave_count(const wh_wave_cluster *g, int64_t now_ms, int64_t within_ms,
                       bool only_counted)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->n; i++)
        n += recent(g->m[i].ts, now_ms, within_ms) && (g->m[i].counted || !only_counted);
    return n;
}

void wh_shard_stats_add(const wh_shard *s, wh_shard_stats *into)
{
    into->users += wh_table_count(s->users);
    into->channels += wh_table_count(s->chans);
    into->user_evictions += wh_table_evictions(s->users);
    into->channel_evictions += wh_table_evictions(s->chans);
    into->bytes += wh_table_bytes(s->users) + wh_table_bytes(s->chans);
}

/* ---- snapshots ---- */

static const char MAGIC[8] = {'W', 'H', 'I', 'P', 'L', 'Y', 'S', 'T'};
/* 2: sliding windows (slots carry their mode; users their whole message log; channels their
 * windows, recent joins and named raids). Version 1 files (GCRA-only `rate`) are refused
 * with a message that says so: their cells count the other way. */
/* 3: wave groups carry whether they are a known wave (live_ms, live_users), members whether
 * they count by default (the top bit of the id's length), channels their live waves. A
 * version 2 file loads: no wave is known, and every member counts (as it did then). */
/* 4: the ids of the join rules (XXH3, by bit) after the slots, so a reload that adds, drops or
 * reorders join rules maps each recorded join's filter bits and the named raids to the rules
 * they were recorded for (a version 2 or 3 file maps bit to bit, as it did then). */
#define SNAP_VERSION 4

typedef struct {
    FILE *f;
    XXH3_state_t *h;
    bool bad;
} wr;

static void put(wr *w, const void *p, size_t n)
{
    if (w->bad) return;
    XXH3_64bits_update(w->h, p, n);
    if (fwrite(p, 1, n, w->f) != n) w->bad = true;
}
static void put_u8(wr *w, uint8_t v)
{
    put(w, &v, 1);
}
static void put_u16(wr *w, uint16_t v)
{
    put(w, &v, 2);
}
static void put_u32(wr *w, uint32_t v)
{
    put(w, &v, 4);
}
static void put_u64(wr *w, uint64_t v)
{
    put(w, &v, 8);
}
static void put_i64(wr *w, int64_t v)
{
    put(w, &v, 8);
}
static void put_f64(wr *w, double v)
{
    put(w, &v, 8);
}

static void put_slots(wr *w, const wh_rate_slot *v, uint32_t n)
{
    put_u32(w, n);
    for (uint32_t i = 0; i < n; i++) {
        put_i64(w, v[i].period_ms);
        put_i64(w, v[i].count);
        put_i64(w, v[i].burst);
        put_u8(w, v[i].joins);
        put_u8(w, v[i].gcra);
    }
}

typedef struct {
    wr *w;
    const wh_state_cfg *c;
} save_ctx;

static void save_user(void *ud, uint64_t key, int64_t last_ms, const void *payload)
{
    save_ctx *s = ud;
    const wh_user *u = payload;
    put_u64(s->w, key);
    put_i64(s->w, last_ms);
    put_i64(s->w, u->first_ms);
    put_i64(s->w, u->strikes_ms);
    put_f64(s->w, u->strikes);
    put_f64(s->w, u->rep);
    put_i64(s->w, u->rep_ms);
    put_u32(s->w, u->messages);
    for (uint32_t i = 0; i < s->c->nuser_slots; i++)
        put_i64(s->w, u->tat[i]);
    put_u16(s->w, u->n);
    const int64_t *ts = log_ts(u);
    const uint32_t *hs = log_hash(u);
    for (uint32_t k = 0; k < u->n; k++) { /* oldest first; sketches of the last 8 only */
        uint32_t back = u->n - 1 - k;
        uint32_t i = log_idx(u, back);
        put_i64(s->w, ts[i]);
        put_u64(s->w,
                back < WH_RECENT ? u->sim[(u->sim_head + WH_RECENT - 1 - back) % WH_RECENT] : 0);
        put_u32(s->w, hs[i]);
    }
}

static void save_channel(void *ud, uint64_t key, int64_t last_ms, const void *payload)
{
    save_ctx *s = ud;
    const wh_channel *ch = payload;
    put_u64(s->w, key);
    put_i64(s->w, last_ms);
    for (uint32_t i = 0; i < s->c->nchan_slots; i++)
        put_i64(s->w, ch->tat[i]);
    for (int m = 0; m < WH_MODE__COUNT; m++)
        put_i64(s->w, ch->mode_until[m]);
    const wh_chan_ext *x = ch->x;
    put_u8(s->w, x != NULL);
    if (x) {
        for (uint32_t i = 0; i < s->c->nchan_slots; i++) {
            const wh_tring *r = &x->win[i];
            put_u32(s->w, r->n);
            for (uint32_t k = 0; k < r->n; k++) /* oldest first */
                put_i64(s->w, tring_at(r, r->n - 1 - k));
        }
        put_u64(s->w, x->named);
        put_u32(s->w, x->jn);
        for (uint32_t k = 0; k < x->jn; k++) {
            const wh_joiner *e = &x->j[(x->jhead + x->jcap - x->jn + k) % x->jcap];
            const char *id = e->big ? e->big : e->id;
            size_t l = strlen(id);
            put_i64(s->w, e->ts);
            put_u64(s->w, e->mask);
            put_u16(s->w, (uint16_t)l);
            put(s->w, id, l);
        }
    }
    const wh_waves *w = ch->waves;
    put_u8(s->w, w != NULL);
    if (!w) return;
    put_u32(s->w, w->ng);
    put_u32(s->w, w->cursor);
    for (uint32_t i = 0; i < w->ng; i++) {
        const wh_wave_cluster *g = &w->g[i];
        put_u64(s->w, g->sim);
        put_i64(s->w, g->last_ms);
        put_u32(s->w, g->anchor[0]);
        put_u32(s->w, g->anchor[1]);
        put_u8(s->w, g->reported);
        put_i64(s->w, g->live_ms);
        put_u16(s->w, g->live_users);
        put_u32(s->w, g->n);
        for (uint32_t k = 0; k < g->n; k++) {
            put_u64(s->w, g->m[k].user);
            put_i64(s->w, g->m[k].ts);
            put_u64(s->w, g->m[k].sim);
            /* the id's length, and in the top bit whether the member counts by default */
            const char *id = wh_wave_member_id(&g->m[k]);
            size_t l = strlen(id);
            if (l > 0x7fff) l = 0x7fff;
            put_u16(s->w, (uint16_t)(l | (g->m[k].counted ? 0x8000u : 0)));
            put(s->w, id, l);
        }
    }
    for (uint32_t i = 0; i < WH_WAVE_LIVE; i++)
        put_u32(s->w, w->live[i]);
    /* the index as it is (which group each anchor finds is part of the state) */
    uint32_t nb = 0;
    for (uint32_t b = 0; w->bucket && b < w->nbuckets; b++)
        nb += w->bucket[b] != 0;
    put_u32(s->w, w->bucket ? w->nbuckets : 0);
    put_u32(s->w, nb);
    for (uint32_t b = 0; w->bucket && b < w->nbuckets; b++)
        if (w->bucket[b]) {
            put_u32(s->w, b);
            put_u32(s->w, w->bucket[b]);
        }
}

wh_status wh_state_save(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                        const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    wr w = {fopen(tmp, "wb"), XXH3_createState(), false};
    if (!w.f || !w.h) {
        snprintf(err, errlen, "cannot write state file %s: %s", tmp, strerror(errno));
        if (w.f) fclose(w.f);
        XXH3_freeState(w.h);
        return WH_EIO;
    }
    XXH3_64bits_reset(w.h);
    put(&w, MAGIC, 8);
    put_u32(&w, SNAP_VERSION);
    put_slots(&w, c->user_slots, c->nuser_slots);
    put_slots(&w, c->chan_slots, c->nchan_slots);
    put_u32(&w, c->njoin_rules);
    for (uint32_t i = 0; i < c->njoin_rules; i++)
        put_u64(&w, c->join_ids[i]);
    save_ctx sc = {&w, c};
    uint64_t nu = 0, nc = 0;
    for (uint32_t i = 0; i < n; i++) {
        nu += wh_table_count(shards[i]->users);
        nc += wh_table_count(shards[i]->chans);
    }
    put_u64(&w, nu);
    for (uint32_t i = 0; i < n; i++)
        wh_table_foreach(shards[i]->users, save_user, &sc);
    put_u64(&w, nc);
    for (uint32_t i = 0; i < n; i++)
        wh_table_foreach(shards[i]->chans, save_channel, &sc);
    uint64_t sum = XXH3_64bits_digest(w.h);
    if (!w.bad && fwrite(&sum, 1, 8, w.f) != 8) w.bad = true;
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) w.bad = true;
    if (fclose(w.f) != 0) w.bad = true;
    XXH3_freeState(w.h);
    if (w.bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write state file %s: %s", path, strerror(errno));
        unlink(tmp);
        return WH_EIO;
    }
    return WH_OK;
}

typedef struct {
    const unsigned char *p;
    size_t len, at;
    bool bad;
    const char *what; /* what was being read when it ended */
} rd;

static bool get(rd *r, void *out, size_t n, const char *what)
{
    if (r->bad) return false;
    if (r->len - r->at < n) {
        r->bad = true;
        r->what = what;
        return false;
    }
    memcpy(out, r->p + r->at, n);
    r->at += n;
    return true;
}

#define GET(r, v, what) get((r), &(v), sizeof(v), (what))

/* Values a file may hold: times within the years event times can have (the decoder's
 * bounds, so no difference of two overflows), GCRA cells well inside int64. */
#define TS_MIN (-62167219200000LL)                    /* 0000-01-01 */
#define TS_MAX (253402300799999LL + 400LL * 86400000) /* 9999-12-31, plus a channel mode */
static bool ts_ok(int64_t t)
{
    return t >= TS_MIN && t <= TS_MAX;
}
static bool tat_ok(int64_t t)
{
    return t >= 0 && t <= ((int64_t)1 << 62);
}
static bool bad(rd *r, const char *what)
{
    r->bad = true;
    r->what = what;
    return false;
}

static bool get_slots(rd *r, wh_rate_slot *v, uint32_t *n, uint32_t max)
{
    if (!GET(r, *n, "the rate limits")) return false;
    if (*n > max) {
        r->bad = true;
        r->what = "the number of rate limits";
        return false;
    }
    for (uint32_t i = 0; i < *n; i++) {
        uint8_t j, g;
        if (!GET(r, v[i].period_ms, "a rate limit") || !GET(r, v[i].count, "a rate limit") ||
            !GET(r, v[i].burst, "a rate limit") || !GET(r, j, "a rate limit") ||
            !GET(r, g, "a rate limit"))
            return false;
        v[i].joins = j != 0;
        v[i].gcra = g != 0;
    }
    return true;
}

/* Where a saved slot's cell goes now, or -1. */
static void map_slots(const wh_rate_slot *saved, uint32_t ns, const wh_rate_slot *now, uint32_t nn,
                      int *map)
{
    for (uint32_t i = 0; i < ns; i++) {
        map[i] = -1;
        for (uint32_t k = 0; k < nn; k++)
            if (wh_rate_slot_eq(&saved[i], &now[k])) map[i] = (int)k;
    }
}

static void fail(char *err, size_t errlen, const char *label, const rd *r)
{
    snprintf(err, errlen, "state file %s: truncated or corrupt at byte %zu (reading %s)", label,
             r->at, r->what ? r->what : "?");
}

/* A saved mask of join-rule bits, its bits moved to the rules' bits now (jmap; -1: gone). */
static uint64_t remap_join_bits(uint64_t m, const int8_t *jmap)
{
    uint64_t out = 0;
    for (; m; m &= m - 1) {
        int b = jmap[__builtin_ctzll(m)];
        if (b >= 0) out |= 1ULL << b;
    }
    return out;
}

/* A channel's windows and recent joins; windows follow their limit (cmap), joins' filter
 * bits their rule (jmap), and joins are placed again under the current caps. WH_EINVAL with
 * r->bad set, or WH_ENOMEM. */
static wh_status load_chan_ext(rd *r, wh_channel *ch, const wh_state_cfg *c,
                               const wh_rate_slot *saved, uint32_t ns, const int *cmap,
                               const int8_t *jmap)
{
    if (ch->x) return bad(r, "a channel given twice"), WH_EINVAL;
    wh_chan_ext *x = wh_chan_ext_get(ch);
    if (!x) return WH_ENOMEM;
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t nt;
        if (!GET(r, nt, "a channel window")) return WH_EINVAL;
        if (nt > pow2_at_least(WH_WINDOW_MAX_CHAN_COUNT))
            return bad(r, "a channel window (too long)"), WH_EINVAL;
        for (uint32_t k = 0; k < nt; k++) {
            int64_t t;
            if (!GET(r, t, "a channel window")) return WH_EINVAL;
            if (!ts_ok(t)) return bad(r, "a channel window (time out of range)"), WH_EINVAL;
            if (cmap[i] >= 0 && !saved[i].gcra) {
                const wh_rate_slot *sl = &c->chan_slots[cmap[i]];
                tring_push(&x->win[cmap[i]], t, (uint32_t)sl->count, sl->period_ms);
            }
        }
    }
    uint32_t nj;
    if (!GET(r, x->named, "the named raids") || !GET(r, nj, "the recent joins")) return WH_EINVAL;
    x->named = remap_join_bits(x->named, jmap);
    if (nj > WH_JOIN_LOG_MAX) return bad(r, "the recent joins (too many)"), WH_EINVAL;
    for (uint32_t k = 0; k < nj; k++) {
        int64_t t;
        uint64_t mask;
        uint16_t l;
        const char *what = "a recent join";
        if (!GET(r, t, what) || !GET(r, mask, what) || !GET(r, l, what)) return WH_EINVAL;
        if (!ts_ok(t)) return bad(r, "a recent join (time out of range)"), WH_EINVAL;
        if (r->len - r->at < l) return bad(r, "a recent join's id"), WH_EINVAL;
        wh_chan_remember_join(x, c, (wh_str){(const char *)r->p + r->at, l},
                              remap_join_bits(mask, jmap), t);
        r->at += l;
    }
    return WH_OK;
}

/* A channel's wave groups; WH_EINVAL with r->bad set, or WH_ENOMEM. */
static wh_status load_waves(rd *r, wh_channel *ch, uint32_t ver)
{
    uint32_t ng, cursor;
    if (!GET(r, ng, "the wave groups") || !GET(r, cursor, "the wave groups")) return WH_EINVAL;
    if (ng > WH_WAVE_GROUPS || (ng && cursor >= ng) || (!ng && cursor))
        return bad(r, "the wave groups (bad count)"), WH_EINVAL;
    if (ch->waves) return bad(r, "a channel given twice"), WH_EINVAL;
    wh_waves *w = ch->waves = calloc(1, sizeof(wh_waves));
    if (!w) return WH_ENOMEM;
    if (ng && !(w->g = calloc(ng, sizeof(wh_wave_cluster)))) return WH_ENOMEM;
    w->capg = ng;
    w->cursor = cursor;
    for (uint32_t i = 0; i < ng; i++) {
        wh_wave_cluster *g = &w->g[i];
        w->ng = i + 1;
        uint8_t rep;
        uint32_t nm;
        const char *what = "a wave group";
        if (!GET(r, g->sim, what) || !GET(r, g->last_ms, what) || !GET(r, g->anchor[0], what) ||
            !GET(r, g->anchor[1], what) || !GET(r, rep, what))
            return WH_EINVAL;
        if (ver >= 3 && (!GET(r, g->live_ms, what) || !GET(r, g->live_users, what)))
            return WH_EINVAL;
        if (!GET(r, nm, what)) return WH_EINVAL;
        if (g->live_ms && !ts_ok(g->live_ms)) return bad(r, "a wave group (bad time)"), WH_EINVAL;
        if (nm > WH_WAVE_MEMBERS || !ts_ok(g->last_ms))
            return bad(r, "a wave group (bad member count or time)"), WH_EINVAL;
        g->reported = rep != 0;
        if (nm && !(g->m = calloc(nm, sizeof(wh_wave_member)))) return WH_ENOMEM;
        g->cap = nm;
        for (uint32_t k = 0; k < nm; k++) {
            wh_wave_member *m = &g->m[k];
            uint16_t l;
            what = "a wave member";
            if (!GET(r, m->user, what) || !GET(r, m->ts, what) || !GET(r, m->sim, what) ||
                !GET(r, l, what))
                return WH_EINVAL;
            if (!ts_ok(m->ts)) return bad(r, "a wave member (time out of range)"), WH_EINVAL;
            m->counted = ver >= 3 ? (uint8_t)(l >> 15) : 1;
            if (ver >= 3) l &= 0x7fff;
            if (r->len - r->at < l) return bad(r, "a wave member's id"), WH_EINVAL;
            if (!member_set_id(m, (const char *)r->p + r->at, l)) return WH_ENOMEM;
            r->at += l;
            g->n = k + 1;
        }
    }
    for (uint32_t i = 0; ver >= 3 && i < WH_WAVE_LIVE; i++) {
        if (!GET(r, w->live[i], "the live waves")) return WH_EINVAL;
        if (w->live[i] > ng) return bad(r, "the live waves (bad group)"), WH_EINVAL;
    }
    uint32_t nbk, nb;
    if (!GET(r, nbk, "the wave index") || !GET(r, nb, "the wave index")) return WH_EINVAL;
    if (nbk > WAVE_BUCKETS_MAX || (nbk & (nbk - 1)) || nb > nbk || (!nbk && ng))
        return bad(r, "the wave index (bad size)"), WH_EINVAL;
    if (nbk) {
        if (!(w->bucket = calloc(nbk, sizeof(uint32_t)))) return WH_ENOMEM;
        w->nbuckets = nbk;
    }
    for (uint32_t i = 0; i < nb; i++) {
        uint32_t b, v;
        if (!GET(r, b, "the wave index") || !GET(r, v, "the wave index")) return WH_EINVAL;
        if (b >= nbk || v == 0 || v > ng) return bad(r, "the wave index (bad entry)"), WH_EINVAL;
        w->bucket[b] = v;
    }
    return WH_OK;
}

wh_status wh_state_load_mem(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                            const char *label, const unsigned char *buf, size_t len, char *err,
                            size_t errlen)
{
    if (len < 8 + 4 + 8 || memcmp(buf, MAGIC, 8)) {
        snprintf(err, errlen, "state file %s: not a whiply state file (no WHIPLYST header)", label);
        return WH_EINVAL;
    }
    uint64_t sum;
    memcpy(&sum, buf + len - 8, 8);
    if (XXH3_64bits(buf, len - 8) != sum) {
        snprintf(err, errlen, "state file %s: checksum mismatch (the file is damaged or was cut)",
                 label);
        return WH_EINVAL;
    }
    rd r = {buf, len - 8, 8, false, NULL};
    uint32_t ver;
    GET(&r, ver, "the version");
    if (ver == 1) {
        snprintf(err, errlen,
                 "state file %s: version 1, written before `rate` counted a sliding window; this "
                 "whiply reads version %d. Move the file away (the state rebuilds from events) "
                 "or load it with the whiply that wrote it",
                 label, SNAP_VERSION);
        return WH_EINVAL;
    }
    if (ver != SNAP_VERSION && ver != 2 && ver != 3) {
        snprintf(err, errlen, "state file %s: version %u, this whiply reads version %d", label, ver,
                 SNAP_VERSION);
        return WH_EINVAL;
    }
    wh_rate_slot us[WH_USER_SLOTS], cs[WH_CHAN_SLOTS];
    uint32_t nus = 0, ncs = 0;
    int umap[WH_USER_SLOTS], cmap[WH_CHAN_SLOTS];
    if (!get_slots(&r, us, &nus, WH_USER_SLOTS) || !get_slots(&r, cs, &ncs, WH_CHAN_SLOTS)) {
        fail(err, errlen, label, &r);
        return WH_EINVAL;
    }
    map_slots(us, nus, c->user_slots, c->nuser_slots, umap);
    map_slots(cs, ncs, c->chan_slots, c->nchan_slots, cmap);
    /* saved join-rule bit -> bit now: by rule id from version 4, else bit to bit */
    int8_t jmap[WH_MAX_JOIN_RULES];
    for (int i = 0; i < WH_MAX_JOIN_RULES; i++)
        jmap[i] = ver < 4 && (uint32_t)i < c->njoin_rules ? (int8_t)i : -1;
    if (ver >= 4) {
        uint32_t nj;
        if (!GET(&r, nj, "the join rules")) goto bad;
        if (nj > WH_MAX_JOIN_RULES) {
            bad(&r, "the join rules (too many)");
            goto bad;
        }
        for (uint32_t i = 0; i < nj; i++) {
            uint64_t id;
            if (!GET(&r, id, "the join rules")) goto bad;
            for (uint32_t k = 0; k < c->njoin_rules; k++)
                if (c->join_ids[k] == id) jmap[i] = (int8_t)k;
        }
    }
    uint64_t nu;
    if (!GET(&r, nu, "the number of users")) goto bad;
    for (uint64_t i = 0; i < nu; i++) {
        uint64_t key;
        int64_t last;
        wh_user u;
        memset(&u, 0, sizeof(u));
        int64_t tat[WH_USER_SLOTS];
        uint16_t cnt;
        const char *w = "a user";
        if (!GET(&r, key, w) || !GET(&r, last, w) || !GET(&r, u.first_ms, w) ||
            !GET(&r, u.strikes_ms, w) || !GET(&r, u.strikes, w) || !GET(&r, u.rep, w) ||
            !GET(&r, u.rep_ms, w) || !GET(&r, u.messages, w))
            goto bad;
        for (uint32_t k = 0; k < nus; k++)
            if (!GET(&r, tat[k], w)) goto bad;
        if (!GET(&r, cnt, w)) goto bad;
        bool tats = true;
        for (uint32_t k = 0; k < nus; k++)
            tats &= tat_ok(tat[k]);
        if (cnt > WH_LOG_MAX || !isfinite(u.strikes) || u.strikes < 0 || u.strikes > 1e9 ||
            !isfinite(u.rep) || fabs(u.rep) > 1e9 || !ts_ok(last) || !ts_ok(u.first_ms) ||
            !ts_ok(u.strikes_ms) || !ts_ok(u.rep_ms) || !tats) {
            bad(&r, "a user (a value out of range)");
            goto bad;
        }
        for (uint32_t k = 0; k < cnt; k++) {
            int64_t ts;
            uint64_t sim;
            uint32_t h;
            if (!GET(&r, ts, w) || !GET(&r, sim, w) || !GET(&r, h, w) ||
                (!ts_ok(ts) && !bad(&r, "a user's recent message (time out of range)"))) {
                wh_user_release(&u); /* its heap log, if the log had grown */
                goto bad;
            }
            wh_user_remember(&u, c, h, sim, ts);
        }
        for (uint32_t k = 0; k < nus; k++)
            if (umap[k] >= 0) u.tat[umap[k]] = tat[k];
        wh_user *dst = wh_table_get(shards[wh_shard_of(key, n)]->users, key, last, true, NULL);
        if (dst) {
            wh_user_release(dst); /* a key given twice: the last wins, nothing leaks */
            *dst = u;
        } else {
            wh_user_release(&u);
        }
    }
    uint64_t nc;
    if (!GET(&r, nc, "the number of channels")) goto bad;
    for (uint64_t i = 0; i < nc; i++) {
        uint64_t key;
        int64_t last;
        int64_t tat[WH_CHAN_SLOTS];
        const char *w = "a channel";
        if (!GET(&r, key, w) || !GET(&r, last, w)) goto bad;
        for (uint32_t k = 0; k < ncs; k++)
            if (!GET(&r, tat[k], w)) goto bad;
        bool ok = ts_ok(last);
        for (uint32_t k = 0; k < ncs; k++)
            ok &= tat_ok(tat[k]);
        if (!ok) {
            bad(&r, "a channel (a value out of range)");
            goto bad;
        }
        wh_channel *ch = wh_table_get(shards[wh_shard_of(key, n)]->chans, key, last, true, NULL);
        if (!ch) goto bad;
        for (uint32_t k = 0; k < ncs; k++)
            if (cmap[k] >= 0) ch->tat[cmap[k]] = tat[k];
        for (int m = 0; m < WH_MODE__COUNT; m++)
            if (!GET(&r, ch->mode_until[m], w) ||
                (!ts_ok(ch->mode_until[m]) && !bad(&r, "a channel mode (out of range)")))
                goto bad;
        uint8_t hasx;
        if (!GET(&r, hasx, w)) goto bad;
        if (hasx) {
            wh_status st = load_chan_ext(&r, ch, c, cs, ncs, cmap, jmap);
            if (st == WH_ENOMEM) {
                snprintf(err, errlen, "state file %s: out of memory", label);
                return WH_ENOMEM;
            }
            if (st != WH_OK) goto bad;
        }
        uint8_t has;
        if (!GET(&r, has, w)) goto bad;
        if (has && load_waves(&r, ch, ver) != WH_OK) {
            if (!r.bad) {
                snprintf(err, errlen, "state file %s: out of memory", label);
                return WH_ENOMEM;
            }
            goto bad;
        }
    }
    if (r.at != r.len) {
        snprintf(err, errlen, "state file %s: %zu unexpected bytes at byte %zu", label,
                 r.len - r.at, r.at);
        return WH_EINVAL;
    }
    return WH_OK;
bad:
    fail(err, errlen, label, &r);
    return WH_EINVAL;
}

wh_status wh_state_load(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                        const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    if (wh_read_file(path, &buf, &len) != WH_OK) {
        snprintf(err, errlen, "cannot read state file %s: %s", path, strerror(errno));
        return WH_EIO;
    }
    wh_status st =
        wh_state_load_mem(shards, n, c, path, (const unsigned char *)buf, len, err, errlen);
    free(buf);
    return st;
}
