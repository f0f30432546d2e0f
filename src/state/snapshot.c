/* snapshot.c - the behaviour state file: save and load, versioned (see shard.h,
 * docs/api.md "State files"). */
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
/* 5: channels carry their panic switch (panic_until) after their modes; an earlier file loads
 * with the switch off. */
#define SNAP_VERSION 5

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
    uint32_t part, nparts; /* nparts 0: every entry */
    uint64_t counted;
} save_ctx;

static bool in_part(const save_ctx *s, uint64_t key)
{
    return !s->nparts || wh_shard_of(key, s->nparts) == s->part;
}

static void count_entry(void *ud, uint64_t key, int64_t last_ms, const void *payload)
{
    (void)last_ms;
    (void)payload;
    save_ctx *s = ud;
    s->counted += in_part(s, key);
}

static void save_user(void *ud, uint64_t key, int64_t last_ms, const void *payload)
{
    save_ctx *s = ud;
    if (!in_part(s, key)) return;
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
    if (!in_part(s, key)) return;
    const wh_channel *ch = payload;
    put_u64(s->w, key);
    put_i64(s->w, last_ms);
    for (uint32_t i = 0; i < s->c->nchan_slots; i++)
        put_i64(s->w, ch->tat[i]);
    for (int m = 0; m < WH_MODE__COUNT; m++)
        put_i64(s->w, ch->mode_until[m]);
    put_i64(s->w, ch->panic_until);
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

/* Writes the state (of one partition when nparts) to w.f; false when a write failed. */
static bool write_state(wr *w, wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                        uint32_t part, uint32_t nparts)
{
    XXH3_64bits_reset(w->h);
    put(w, MAGIC, 8);
    put_u32(w, SNAP_VERSION);
    put_slots(w, c->user_slots, c->nuser_slots);
    put_slots(w, c->chan_slots, c->nchan_slots);
    put_u32(w, c->njoin_rules);
    for (uint32_t i = 0; i < c->njoin_rules; i++)
        put_u64(w, c->join_ids[i]);
    save_ctx sc = {w, c, part, nparts, 0};
    for (uint32_t i = 0; i < n; i++)
        wh_table_foreach(shards[i]->users, count_entry, &sc);
    put_u64(w, sc.counted);
    for (uint32_t i = 0; i < n; i++)
        wh_table_foreach(shards[i]->users, save_user, &sc);
    sc.counted = 0;
    for (uint32_t i = 0; i < n; i++)
        wh_table_foreach(shards[i]->chans, count_entry, &sc);
    put_u64(w, sc.counted);
    for (uint32_t i = 0; i < n; i++)
        wh_table_foreach(shards[i]->chans, save_channel, &sc);
    uint64_t sum = XXH3_64bits_digest(w->h);
    if (!w->bad && fwrite(&sum, 1, 8, w->f) != 8) w->bad = true;
    return !w->bad;
}

WH_NOIPA static wh_status state_save_buf(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
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
    write_state(&w, shards, n, c, 0, 0);
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

WH_NOIPA static wh_status state_save_part_buf(wh_shard *const *shards, uint32_t n,
                                              const wh_state_cfg *c, uint32_t part, uint32_t nparts,
                                              char **out, size_t *len, char *err, size_t errlen)
{
    *out = NULL;
    *len = 0;
    wr w = {open_memstream(out, len), XXH3_createState(), false};
    if (!w.f || !w.h) {
        snprintf(err, errlen, "partition %u's state: out of memory", part);
        if (w.f) fclose(w.f);
        free(*out);
        *out = NULL;
        XXH3_freeState(w.h);
        return WH_ENOMEM;
    }
    write_state(&w, shards, n, c, part, nparts);
    if (fclose(w.f) != 0) w.bad = true;
    XXH3_freeState(w.h);
    if (w.bad) {
        snprintf(err, errlen, "partition %u's state: out of memory", part);
        free(*out);
        *out = NULL;
        *len = 0;
        return WH_ENOMEM;
    }
    return WH_OK;
}

typedef struct {
    uint32_t part, nparts;
} part_pred;

static bool key_in_part(void *ud, uint64_t key)
{
    const part_pred *p = ud;
    return wh_shard_of(key, p->nparts) == p->part;
}

void wh_state_drop_part(wh_shard *const *shards, uint32_t n, uint32_t part, uint32_t nparts)
{
    part_pred p = {part, nparts};
    for (uint32_t i = 0; i < n; i++) {
        wh_table_remove_if(shards[i]->users, key_in_part, &p);
        wh_table_remove_if(shards[i]->chans, key_in_part, &p);
    }
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
                wh_tring_push(&x->win[cmap[i]], t, (uint32_t)sl->count, sl->period_ms);
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
            if (!wh_member_set_id(m, (const char *)r->p + r->at, l)) return WH_ENOMEM;
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

WH_NOIPA static wh_status state_load_mem_buf(wh_shard *const *shards, uint32_t n,
                                             const wh_state_cfg *c, const char *label,
                                             const unsigned char *buf, size_t len, char *err,
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
    if (ver != SNAP_VERSION && ver != 2 && ver != 3 && ver != 4) {
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
        if (ver >= 5 && (!GET(&r, ch->panic_until, w) ||
                         (!ts_ok(ch->panic_until) && !bad(&r, "a panic switch (out of range)"))))
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

WH_NOIPA static wh_status state_load_buf(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                                         const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    if (wh_read_file(path, &buf, &len) != WH_OK) {
        snprintf(err, errlen, "cannot read state file %s: %s", path, strerror(errno));
        return WH_EIO;
    }
    wh_status st =
        state_load_mem_buf(shards, n, c, path, (const unsigned char *)buf, len, err, errlen);
    free(buf);
    return st;
}

/* ---- the same, with the one error record ---- */

wh_status wh_state_save(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                        const char *path, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    e->message[0] = 0;
    return e->code = state_save_buf(shards, n, c, path, e->message, sizeof(e->message));
}

wh_status wh_state_load(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                        const char *path, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    e->message[0] = 0;
    return e->code = state_load_buf(shards, n, c, path, e->message, sizeof(e->message));
}

wh_status wh_state_save_part(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                             uint32_t part, uint32_t nparts, char **out, size_t *len, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    e->message[0] = 0;
    return e->code = state_save_part_buf(shards, n, c, part, nparts, out, len, e->message,
                                         sizeof(e->message));
}

wh_status wh_state_load_mem(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                            const char *label, const unsigned char *buf, size_t len, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    e->message[0] = 0;
    return e->code =
               state_load_mem_buf(shards, n, c, label, buf, len, e->message, sizeof(e->message));
}
