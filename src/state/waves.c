/* waves.c - wave groups: similar messages of many users in a channel (see shard.h,
 * docs/rules.md "wave"). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "shard_impl.h"
#include "state/sketch.h"
#include "state/table.h"

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
        if (!wh_member_set_id(m, user_id.p ? user_id.p : "", user_id.p ? user_id.n : 0))
            return NULL;
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
