/* shard.c - see shard.h. */
#define _GNU_SOURCE
#include "shard_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "state/sketch.h"
#include "state/table.h"

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
bool wh_member_set_id(wh_wave_member *m, const char *p, size_t n)
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

/* ---- the message log ---- */

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
/* Appends t, growing the ring (doubling, up to the power of two >= count) while its oldest
 * entry is within keep_ms: a window of `count` needs the last `count` times. */
void wh_tring_push(wh_tring *r, int64_t t, uint32_t count, int64_t keep_ms)
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
    wh_tring_push(r, now_ms, (uint32_t)sl->count, sl->period_ms);
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

void wh_shard_stats_add(const wh_shard *s, wh_shard_stats *into)
{
    into->users += wh_table_count(s->users);
    into->channels += wh_table_count(s->chans);
    into->user_evictions += wh_table_evictions(s->users);
    into->channel_evictions += wh_table_evictions(s->chans);
    into->bytes += wh_table_bytes(s->users) + wh_table_bytes(s->chans);
}
