/* replay.c - several rulesets over one recorded stream, measured against the humans in it
 * (replay.h; the ground truth's rules are in docs/experiments.md). */
#define _GNU_SOURCE /* getline */
#include "exp/replay.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "state/shard.h"
#include "text/normalize.h"

#define SNIPPET 160
#define LAT_EVERY 8 /* one event in 8 is timed (two clock reads per ruleset cost ~3%) */

enum { SRC_NONE = 0, SRC_HUMAN, SRC_SAMPLE };

typedef struct {
    uint32_t id_off, id_len; /* in r->ids */
    uint32_t snip;           /* offset + 1 of its text in r->snips, 0: none kept */
    uint8_t label, source;   /* wh_label, SRC_* */
    uint8_t sample;          /* the sampled review's label of it (wh_label) */
    int64_t ts_ms;
    int64_t human_ms; /* when a human removed it (a harmful label from the stream), else 0 */
} msg;

/* What one ruleset made of one message. */
typedef struct {
    uint8_t act;
    int32_t rule;   /* deciding rule, -1 */
    uint32_t fired; /* first entry in the ruleset's fired pool */
    uint32_t nfired;
} mdec;

typedef struct {
    wh_ruleset *rs;
    char *name;
    wh_worker *w;
    wh_decider *d;
    wh_arena keep;
    mdec *dec;       /* per message */
    uint32_t *fired; /* rule index | shadow << 31 | action << 24 of rules that acted */
    size_t nfired, capfired;
    uint64_t *lat_ns;
    size_t nlat, caplat;
    uint64_t actions[WH_ACT__COUNT];
    uint64_t decided; /* events, for sampling latencies */
    /* its thread */
    struct wh_replay *r;
    uint32_t k;
    pthread_t th;
    bool started, oom;
} arm;

/* Lines are read into a batch, decoded and normalized by the reading thread, then decided
 * by every ruleset's thread at once while the next batch is read (two batches in turn). */
#define BATCH_LINES 2048
#define BATCH_BYTES ((size_t)4 << 20)

typedef struct {
    wh_event ev;
    wh_text text;
    bool has_text;
    uint32_t mi; /* a message's index in r->msgs */
} bev;

typedef struct {
    wh_buf bytes; /* the lines, copied */
    uint32_t off[BATCH_LINES], len[BATCH_LINES];
    uint64_t line_no[BATCH_LINES];
    uint32_t nlines;
    bev *ev; /* BATCH_LINES: the decoded events */
    uint32_t nev;
    wh_arena arena;                    /* the events' unescaped strings and text views */
    mdec *dec[WH_REPLAY_MAX_RULESETS]; /* per ruleset, per event */
} batch;

/* An open-addressing map from a 64-bit key to a 32-bit value (keys never 0). */
typedef struct {
    uint64_t *keys;
    uint32_t *vals;
    size_t mask, n;
} u64map;

struct wh_replay {
    wh_replay_opts o;
    arm arms[WH_REPLAY_MAX_RULESETS];
    uint32_t narms;
    wh_decoder *dec;
    batch b[2];
    batch *cur, *pending; /* being filled; being decided (or NULL) */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen; /* batches handed to the threads */
    uint32_t busy;
    bool quit;
    msg *msgs;
    size_t nmsg, capmsg;
    wh_buf ids, snips;
    u64map by_id;       /* id hash -> message index (collisions chained by probing, ids compared) */
    u64map by_user;     /* (channel, user) key -> their last message */
    u64map snip_groups; /* (candidate, base rule, candidate rule) -> examples kept */
    /* labels of the sampled review: id hash -> index in sample[] */
    u64map by_label;
    struct {
        uint32_t id_off, id_len;
        uint8_t label;
    } * sample;
    size_t nsample, capsample;
    wh_buf sample_ids;
    wh_arena out; /* the result's strings */
    wh_replay_result res;
    bool finished, failed;
};

void wh_replay_opts_default(wh_replay_opts *o)
{
    *o = (wh_replay_opts){.min_action = WH_ACT_WARN, .attribute_ms = 10 * 60 * 1000, .examples = 3};
}

/* ---- maps ---- */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then mixed: ids are short */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL;
    h = wh_splitmix64_mix(h);
    return h ? h : 1;
}

static bool map_grow(u64map *m)
{
    size_t cap = m->mask ? (m->mask + 1) * 2 : 1024;
    uint64_t *k = calloc(cap, sizeof(*k));
    uint32_t *v = malloc(cap * sizeof(*v));
    if (!k || !v) {
        free(k);
        free(v);
        return false;
    }
    for (size_t i = 0; m->mask && i <= m->mask; i++) {
        if (!m->keys[i]) continue;
        size_t j = m->keys[i] & (cap - 1);
        while (k[j])
            j = (j + 1) & (cap - 1);
        k[j] = m->keys[i];
        v[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = k;
    m->vals = v;
    m->mask = cap - 1;
    return true;
}

static void map_free(u64map *m)
{
    free(m->keys);
    free(m->vals);
}

/* The slot of key: the first holding it, or the empty one where it would go. */
static size_t map_slot(const u64map *m, uint64_t key)
{
    size_t j = key & m->mask;
    while (m->keys[j] && m->keys[j] != key)
        j = (j + 1) & m->mask;
    return j;
}

static bool map_put(u64map *m, uint64_t key, uint32_t val)
{
    if ((m->n + 1) * 4 > (m->mask + 1) * 3 && !map_grow(m)) return false;
    size_t j = map_slot(m, key);
    if (!m->keys[j]) m->n++;
    m->keys[j] = key;
    m->vals[j] = val;
    return true;
}

static bool map_get(const u64map *m, uint64_t key, uint32_t *val)
{
    if (!m->mask) return false;
    size_t j = map_slot(m, key);
    if (!m->keys[j]) return false;
    *val = m->vals[j];
    return true;
}

/* Ids: the hash of the id is the key; two ids with one hash (one in 2^64 per pair) would
 * share a slot, so the id is compared and a clash is treated as a miss. */
static bool msg_by_id(const wh_replay *r, const char *id, size_t n, uint32_t *idx)
{
    uint32_t i;
    if (!map_get(&r->by_id, hash_bytes(id, n), &i)) return false;
    const msg *m = &r->msgs[i];
    if (m->id_len != n || memcmp(r->ids.p + m->id_off, id, n)) return false;
    *idx = i;
    return true;
}

/* ---- life cycle ---- */

static void *arm_main(void *p);
static void stop_threads(wh_replay *r);

wh_status wh_replay_new(wh_ruleset *const *rs, const char *const *names, uint32_t n,
                        const wh_replay_opts *o, wh_replay **out, wh_error *e)
{
    *out = NULL;
    if (n == 0 || n > WH_REPLAY_MAX_RULESETS)
        return wh_error_set(e, WH_EINVAL, "a replay takes 1 to %d rulesets, not %u",
                            WH_REPLAY_MAX_RULESETS, n);
    wh_replay *r = calloc(1, sizeof(*r));
    if (!r) return wh_error_set(e, WH_ENOMEM, "out of memory");
    if (o)
        r->o = *o;
    else
        wh_replay_opts_default(&r->o);
    if (r->o.examples > 8) r->o.examples = 8;
    wh_arena_init(&r->out, 16 * 1024);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->go, NULL);
    pthread_cond_init(&r->done, NULL);
    wh_buf_init(&r->ids);
    wh_buf_init(&r->snips);
    wh_buf_init(&r->sample_ids);
    r->dec = wh_decoder_new();
    bool ok = r->dec && map_grow(&r->by_id) && map_grow(&r->by_user) && map_grow(&r->snip_groups) &&
              map_grow(&r->by_label);
    for (int i = 0; i < 2; i++) {
        batch *b = &r->b[i];
        wh_buf_init(&b->bytes);
        wh_arena_init(&b->arena, 1 << 20);
        b->ev = malloc(BATCH_LINES * sizeof(*b->ev));
        ok = ok && b->ev;
        for (uint32_t k = 0; k < n; k++)
            ok = ok && (b->dec[k] = malloc(BATCH_LINES * sizeof(mdec)));
    }
    r->cur = &r->b[0];
    for (uint32_t i = 0; ok && i < n; i++) {
        arm *a = &r->arms[i];
        r->narms++;
        a->rs = rs[i];
        wh_ruleset_retain(rs[i]);
        wh_arena_init(&a->keep, 64 * 1024);
        a->name = strdup(names[i]);
        a->w = wh_worker_new(rs[i], NULL);
        a->d = wh_decider_new(rs[i], NULL, 1);
        a->r = r;
        a->k = i;
        ok = a->name && a->w && a->d && !pthread_create(&a->th, NULL, arm_main, a);
        a->started = ok;
    }
    if (!ok) {
        wh_replay_free(r);
        return wh_error_set(e, WH_ENOMEM, "out of memory starting the replay");
    }
    *out = r;
    return WH_OK;
}

void wh_replay_free(wh_replay *r)
{
    if (!r) return;
    stop_threads(r);
    for (int i = 0; i < 2; i++) {
        wh_buf_free(&r->b[i].bytes);
        wh_arena_free(&r->b[i].arena);
        free(r->b[i].ev);
        for (uint32_t k = 0; k < WH_REPLAY_MAX_RULESETS; k++)
            free(r->b[i].dec[k]);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->go);
    pthread_cond_destroy(&r->done);
    for (uint32_t i = 0; i < r->narms; i++) {
        arm *a = &r->arms[i];
        wh_decider_free(a->d);
        wh_worker_free(a->w);
        wh_arena_free(&a->keep);
        wh_ruleset_release(a->rs);
        free(a->name);
        free(a->dec);
        free(a->fired);
        free(a->lat_ns);
    }
    wh_replay_result *res = &r->res;
    for (uint32_t i = 0; i < res->nrs; i++)
        free(res->rs[i].rules);
    for (uint32_t i = 0; res->cmp && i + 1 < res->nrs; i++)
        free(res->cmp[i].groups);
    free(res->rs);
    free(res->cmp);
    wh_decoder_free(r->dec);
    wh_arena_free(&r->out);
    free(r->msgs);
    free(r->sample);
    wh_buf_free(&r->ids);
    wh_buf_free(&r->snips);
    wh_buf_free(&r->sample_ids);
    map_free(&r->by_id);
    map_free(&r->by_user);
    map_free(&r->snip_groups);
    map_free(&r->by_label);
    free(r);
}

/* Room for one more element in *v (capacity *cap, elements of size bytes). */
static bool reserve_one(void **v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) return true;
    size_t c = *cap ? *cap * 2 : 4096;
    void *p = realloc(*v, c * size);
    if (!p) return false;
    *v = p;
    *cap = c;
    return true;
}

/* ---- the sampled review ---- */

wh_status wh_replay_label_line(wh_replay *r, const char *line, size_t len, uint64_t line_no,
                               wh_error *e)
{
    char id[WH_LABEL_ID_MAX + 1];
    wh_label lab;
    wh_error le;
    if (wh_label_decode(line, len, id, &lab, &le) != WH_OK)
        return wh_error_set(e, WH_ESYNTAX, "line %llu: %s", (unsigned long long)line_no,
                            le.message);
    if (lab == WH_LABEL_NONE) return WH_OK;
    size_t n = strlen(id);
    uint64_t h = hash_bytes(id, n);
    uint32_t at;
    if (map_get(&r->by_label, h, &at)) { /* a later line for the same id wins */
        r->sample[at].label = (uint8_t)lab;
        return WH_OK;
    }
    if (!reserve_one((void **)&r->sample, r->nsample, &r->capsample, sizeof(*r->sample)))
        return wh_error_set(e, WH_ENOMEM, "out of memory");
    r->sample[r->nsample].id_off = (uint32_t)r->sample_ids.len;
    r->sample[r->nsample].id_len = (uint32_t)n;
    r->sample[r->nsample].label = (uint8_t)lab;
    wh_buf_append(&r->sample_ids, id, n);
    if (r->sample_ids.oom || !map_put(&r->by_label, h, (uint32_t)r->nsample))
        return wh_error_set(e, WH_ENOMEM, "out of memory");
    r->nsample++;
    return WH_OK;
}

wh_status wh_replay_labels_file(wh_replay *r, const char *path, wh_error *e)
{
    FILE *f = fopen(path, "r");
    if (!f) return wh_error_set(e, WH_EIO, "cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t no = 0;
    wh_status st = WH_OK;
    wh_error le;
    while (st == WH_OK && (n = getline(&line, &cap, f)) >= 0) {
        no++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        st = wh_replay_label_line(r, line, (size_t)n, no, &le);
    }
    if (st == WH_OK && ferror(f))
        st = wh_error_set(e, WH_EIO, "cannot read %s: %s", path, strerror(errno));
    else if (st != WH_OK)
        wh_error_set(e, st, "%s: %s", path, le.message);
    free(line);
    fclose(f);
    return st;
}

/* ---- the stream ---- */

static void line_error(wh_replay *r, uint64_t line_no, const char *code, const char *message)
{
    wh_replay_result *res = &r->res;
    if (res->errors < WH_REPLAY_MAX_ERRORS) {
        res->first_errors[res->errors].line = line_no;
        snprintf(res->first_errors[res->errors].code, sizeof(res->first_errors[0].code), "%s",
                 code);
        snprintf(res->first_errors[res->errors].message, sizeof(res->first_errors[0].message), "%s",
                 message);
    }
    res->errors++;
}

static bool grow_msgs(wh_replay *r)
{
    size_t cap = r->capmsg ? r->capmsg * 2 : 4096;
    msg *m = realloc(r->msgs, cap * sizeof(*m));
    if (!m) return false;
    r->msgs = m;
    for (uint32_t i = 0; i < r->narms; i++) {
        mdec *d = realloc(r->arms[i].dec, cap * sizeof(*d));
        if (!d) return false;
        r->arms[i].dec = d;
    }
    r->capmsg = cap;
    return true;
}

static bool push_fired(arm *a, uint32_t v)
{
    if (!reserve_one((void **)&a->fired, a->nfired, &a->capfired, sizeof(*a->fired))) return false;
    a->fired[a->nfired++] = v;
    return true;
}

static bool push_latency(arm *a, uint64_t ns)
{
    if (!reserve_one((void **)&a->lat_ns, a->nlat, &a->caplat, sizeof(*a->lat_ns))) return false;
    a->lat_ns[a->nlat++] = ns;
    return true;
}

static wh_str user_of(const wh_event *ev)
{
    return ev->user_id.n ? ev->user_id : ev->user_name;
}

/* Keeps the first bytes of a message's text for the report's examples (at a character). */
static uint32_t keep_snippet(wh_replay *r, wh_str text)
{
    uint32_t n = text.n;
    if (n > SNIPPET) {
        n = SNIPPET;
        while (n > 0 && ((uint8_t)text.p[n] & 0xC0) == 0x80)
            n--;
    }
    uint32_t off = (uint32_t)r->snips.len;
    wh_buf_append(&r->snips, text.p, n);
    wh_buf_putc(&r->snips, 0);
    return r->snips.oom ? 0 : off + 1;
}

static uint64_t group_key(uint32_t cand, int32_t base_rule, int32_t cand_rule)
{
    uint64_t k = ((uint64_t)cand << 48) ^ ((uint64_t)(uint32_t)(base_rule + 1) << 24) ^
                 (uint64_t)(uint32_t)(cand_rule + 1);
    return wh_splitmix64_mix(k) | 1;
}

/* A message decided differently by a candidate than by the base: its text is kept while its
 * group (the two deciding rules) has fewer examples than the report shows. */
static void note_change(wh_replay *r, msg *m, size_t mi, const wh_event *ev)
{
    for (uint32_t k = 1; k < r->narms && !m->snip; k++) {
        const mdec *b = &r->arms[0].dec[mi], *c = &r->arms[k].dec[mi];
        if (b->act == c->act) continue;
        uint64_t key = group_key(k, b->rule, c->rule);
        uint32_t have = 0;
        map_get(&r->snip_groups, key, &have);
        if (have >= r->o.examples) continue;
        if (!map_put(&r->snip_groups, key, have + 1)) return;
        m->snip = keep_snippet(r, ev->text);
    }
}

static wh_status record_message(wh_replay *r, const wh_event *ev, size_t *mi)
{
    if (r->nmsg == r->capmsg && !grow_msgs(r)) return WH_ENOMEM;
    size_t i = r->nmsg;
    msg *m = &r->msgs[i];
    memset(m, 0, sizeof(*m));
    m->id_off = (uint32_t)r->ids.len;
    m->id_len = ev->id.n;
    m->ts_ms = ev->ts_ms;
    wh_buf_append(&r->ids, ev->id.p, ev->id.n);
    if (r->ids.oom) return WH_ENOMEM;
    uint32_t prev;
    uint64_t h = hash_bytes(ev->id.p, ev->id.n);
    /* an id seen before keeps its first message: labels name that one */
    if (!map_get(&r->by_id, h, &prev) && !map_put(&r->by_id, h, (uint32_t)i)) return WH_ENOMEM;
    wh_str who = user_of(ev);
    if (who.n && !map_put(&r->by_user, wh_user_key(wh_chan_key(ev->platform, ev->channel), who) | 1,
                          (uint32_t)i))
        return WH_ENOMEM;
    r->nmsg++;
    *mi = i;
    return WH_OK;
}

/* How a human moderator's action reads as ground truth. */
typedef enum { HA_OTHER, HA_REMOVE, HA_APPROVE, HA_REVERSE } human_kind;

static const struct {
    const char *name;
    human_kind kind;
    wh_action level; /* REMOVE: the automated action it is as strong as */
} human_actions[] = {
    {"warn", HA_REMOVE, WH_ACT_WARN},        {"delete", HA_REMOVE, WH_ACT_DELETE},
    {"remove", HA_REMOVE, WH_ACT_DELETE},    {"deny", HA_REMOVE, WH_ACT_DELETE},
    {"timeout", HA_REMOVE, WH_ACT_TIMEOUT},  {"ban", HA_REMOVE, WH_ACT_BAN},
    {"approve", HA_APPROVE, WH_ACT_ALLOW},   {"unban", HA_REVERSE, WH_ACT_ALLOW},
    {"untimeout", HA_REVERSE, WH_ACT_ALLOW},
};

static void human_action(wh_replay *r, const wh_event *ev)
{
    wh_replay_result *res = &r->res;
    human_kind kind = HA_OTHER;
    wh_action level = WH_ACT_ALLOW;
    for (size_t i = 0; i < WH_ARRAY_LEN(human_actions); i++)
        if (wh_str_eq(ev->mod_action, human_actions[i].name, strlen(human_actions[i].name))) {
            kind = human_actions[i].kind;
            level = human_actions[i].level;
        }
    if (kind == HA_OTHER) {
        res->other_actions++;
        return;
    }
    if (kind == HA_REMOVE && level < r->o.min_action) {
        res->below_min++;
        return;
    }
    uint32_t mi;
    bool found = false;
    if (ev->ref_event.n) {
        found = msg_by_id(r, ev->ref_event.p, ev->ref_event.n, &mi);
    } else if (kind == HA_REMOVE && r->o.attribute_ms > 0 && ev->target.n) {
        uint64_t key = wh_user_key(wh_chan_key(ev->platform, ev->channel), ev->target) | 1;
        found =
            map_get(&r->by_user, key, &mi) && ev->ts_ms - r->msgs[mi].ts_ms <= r->o.attribute_ms;
        res->attributed += found;
    }
    if (!found) {
        res->unattributed++;
        return;
    }
    msg *m = &r->msgs[mi];
    m->source = SRC_HUMAN; /* the latest human word on a message wins */
    if (kind == HA_REMOVE) {
        res->removals++;
        if (m->label != WH_LABEL_HARMFUL || !m->human_ms) /* the first removal's time */
            m->human_ms = ev->ts_ms < m->ts_ms ? m->ts_ms : ev->ts_ms;
        m->label = WH_LABEL_HARMFUL;
    } else {
        kind == HA_APPROVE ? res->approvals++ : res->reversals++;
        m->label = WH_LABEL_OK;
        m->human_ms = 0;
    }
}

/* One ruleset's thread: decides every event of each batch it is handed, in order. */
static bool arm_run(arm *a, batch *b)
{
    const wh_action min = a->r->o.min_action;
    for (uint32_t i = 0; i < b->nev; i++) {
        const bev *e = &b->ev[i];
        bool timed = a->decided++ % LAT_EVERY == 0;
        uint64_t t0 = timed ? wh_mono_ns() : 0;
        wh_arena_reset(&a->keep);
        wh_analysis an;
        wh_analyze_event(a->w, &e->ev, e->has_text ? &e->text : NULL, &a->keep, 1, &an);
        const wh_verdict *v = wh_decide_verdict(a->d, &an);
        if (timed && !push_latency(a, wh_mono_ns() - t0)) return false;
        if (e->ev.type != WH_EV_MESSAGE) continue;
        a->actions[v->action]++;
        mdec *d = &b->dec[a->k][i];
        *d = (mdec){(uint8_t)v->action, v->rule, (uint32_t)a->nfired, 0};
        if (v->kind != WH_VK_DECIDED || !(v->nfired || v->nshadow)) continue;
        for (uint32_t ri = 0; ri < a->rs->nrules; ri++) {
            if (!v->fired[ri] || v->act[ri] < min) continue;
            uint32_t f = ri | (uint32_t)v->act[ri] << 24 | (uint32_t)(v->fired[ri] == 2) << 31;
            if (!push_fired(a, f)) return false;
            d->nfired++;
        }
    }
    return true;
}

static void *arm_main(void *p)
{
    arm *a = p;
    wh_replay *r = a->r;
    uint64_t seen = 0;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->gen == seen && !r->quit)
            pthread_cond_wait(&r->go, &r->mu);
        if (r->quit) break;
        seen = r->gen;
        batch *b = r->pending;
        pthread_mutex_unlock(&r->mu);
        bool ok = a->oom || arm_run(a, b);
        pthread_mutex_lock(&r->mu);
        a->oom = !ok;
        if (--r->busy == 0) pthread_cond_signal(&r->done);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void wait_arms(wh_replay *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->busy)
        pthread_cond_wait(&r->done, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static void stop_threads(wh_replay *r)
{
    wait_arms(r);
    pthread_mutex_lock(&r->mu);
    r->quit = true;
    pthread_cond_broadcast(&r->go);
    pthread_mutex_unlock(&r->mu);
    for (uint32_t k = 0; k < r->narms; k++)
        if (r->arms[k].started) pthread_join(r->arms[k].th, NULL);
    for (uint32_t k = 0; k < r->narms; k++)
        r->arms[k].started = false;
}

/* The reading thread's part of a batch: decode, normalize, record the messages and read
 * the human actions, in input order. */
static wh_status batch_decode(wh_replay *r, batch *b)
{
    wh_replay_result *res = &r->res;
    wh_arena_reset(&b->arena);
    b->nev = 0;
    for (uint32_t i = 0; i < b->nlines; i++) {
        const char *line = b->bytes.p + b->off[i];
        bev *e = &b->ev[b->nev];
        wh_decode_error err;
        if (b->len[i] == UINT32_MAX) {
            line_error(r, b->line_no[i], "line_too_long", "the line is over 1 MiB");
            continue;
        }
        if (!wh_event_decode(r->dec, line, b->len[i], &b->arena, WH_NOW, &e->ev, &err)) {
            line_error(r, b->line_no[i], err.code, err.message);
            continue;
        }
        res->events++;
        e->has_text = false;
        if (e->ev.type == WH_EV_MESSAGE) {
            size_t mi;
            e->has_text = wh_text_build(e->ev.text.p, e->ev.text.n, &b->arena, &e->text) == WH_OK;
            if (record_message(r, &e->ev, &mi) != WH_OK) return WH_ENOMEM;
            e->mi = (uint32_t)mi;
        } else if (e->ev.type == WH_EV_MOD_ACTION) {
            human_action(r, &e->ev);
        }
        b->nev++;
    }
    return WH_OK;
}

/* The reading thread's part once a batch is decided: its decisions filed by message, the
 * texts of changed decisions kept for the report. */
static wh_status batch_post(wh_replay *r, batch *b)
{
    for (uint32_t k = 0; k < r->narms; k++)
        if (r->arms[k].oom) return WH_ENOMEM;
    for (uint32_t i = 0; i < b->nev; i++) {
        const bev *e = &b->ev[i];
        if (e->ev.type != WH_EV_MESSAGE) continue;
        bool changed = false;
        for (uint32_t k = 0; k < r->narms; k++) {
            r->arms[k].dec[e->mi] = b->dec[k][i];
            changed |= k > 0 && b->dec[k][i].act != b->dec[0][i].act;
        }
        if (changed) note_change(r, &r->msgs[e->mi], e->mi, &e->ev);
    }
    b->nlines = 0;
    b->bytes.len = 0;
    return r->snips.oom ? WH_ENOMEM : WH_OK;
}

/* Decodes the batch being filled, waits for the one being decided and files it, and hands
 * the new one to the threads. */
static wh_status submit(wh_replay *r)
{
    batch *b = r->cur;
    if (b->bytes.oom || batch_decode(r, b) != WH_OK) return WH_ENOMEM;
    wait_arms(r);
    if (r->pending && batch_post(r, r->pending) != WH_OK) return WH_ENOMEM;
    pthread_mutex_lock(&r->mu);
    r->pending = b;
    r->busy = r->narms;
    r->gen++;
    pthread_cond_broadcast(&r->go);
    pthread_mutex_unlock(&r->mu);
    r->cur = b == &r->b[0] ? &r->b[1] : &r->b[0];
    return WH_OK;
}

/* Everything read so far, decided and filed. */
static wh_status drain(wh_replay *r)
{
    if (r->cur->nlines && submit(r) != WH_OK) return WH_ENOMEM;
    wait_arms(r);
    wh_status st = r->pending ? batch_post(r, r->pending) : WH_OK;
    r->pending = NULL;
    return st;
}

wh_status wh_replay_line(wh_replay *r, const char *line, size_t len)
{
    wh_replay_result *res = &r->res;
    res->lines++;
    /* a line too long is not read (the reader may pass only its first bytes): it goes into
     * the batch without its bytes, so that errors are reported in line order */
    bool too_long = len > WH_MAX_LINE;
    if (!too_long && wh_line_is_blank(line, len)) return WH_OK;
    batch *b = r->cur;
    b->off[b->nlines] = (uint32_t)b->bytes.len;
    b->len[b->nlines] = too_long ? UINT32_MAX : (uint32_t)len;
    b->line_no[b->nlines++] = res->lines;
    if (!too_long) wh_buf_append(&b->bytes, line, len);
    if (b->nlines == BATCH_LINES || b->bytes.len >= BATCH_BYTES) return submit(r);
    return b->bytes.oom ? WH_ENOMEM : WH_OK;
}

/* ---- measuring ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Percentiles by the nearest rank of sorted v[0..n). */
static double rank_of(const int64_t *v, size_t n, double q)
{
    size_t i = (size_t)ceil(q * (double)n);
    return (double)v[i ? i - 1 : 0];
}

static wh_dist dist_of(int64_t *v, size_t n)
{
    wh_dist d = {NAN, NAN, NAN, n};
    if (!n) return d;
    qsort(v, n, sizeof(*v), cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    d.p50 = rank_of(v, n, 0.5);
    d.p90 = rank_of(v, n, 0.9);
    d.mean = sum / (double)n;
    return d;
}

/* The label a message is measured with (unlabelled ones count as fine when asked). */
static uint8_t label_of(const wh_replay *r, const msg *m)
{
    if (m->label == WH_LABEL_NONE && r->o.unlabelled_ok) return WH_LABEL_OK;
    return m->label;
}

static bool hides(uint8_t act)
{
    return act >= WH_ACT_HOLD; /* a warning leaves the message in chat */
}

/* Sampled labels fill the messages no human in the stream labelled. */
static void apply_sample(wh_replay *r)
{
    wh_replay_result *res = &r->res;
    res->sample_labels = r->nsample;
    for (size_t i = 0; i < r->nsample; i++) {
        uint32_t mi;
        if (!msg_by_id(r, r->sample_ids.p + r->sample[i].id_off, r->sample[i].id_len, &mi)) {
            res->sample_unknown++;
            continue;
        }
        msg *m = &r->msgs[mi];
        m->sample = r->sample[i].label;
        if (m->source == SRC_HUMAN) {
            res->sample_conflicts += m->label != r->sample[i].label;
            continue;
        }
        m->label = r->sample[i].label;
        m->source = SRC_SAMPLE;
        res->sample_applied++;
    }
}

static void confusion_add(wh_confusion *c, uint8_t label, bool acted)
{
    if (label == WH_LABEL_HARMFUL)
        acted ? c->tp++ : c->fn++;
    else if (label == WH_LABEL_OK)
        acted ? c->fp++ : c->tn++;
    else
        acted ? c->unl_acted++ : c->unl_allowed++;
}

/* Accuracy, false-positive rate, precision and recall of a confusion matrix. */
static void shares_of(const wh_confusion *c, wh_interval *acc, wh_interval *fpr, wh_interval *prec,
                      wh_interval *rec)
{
    uint64_t pos = c->tp + c->fn, neg = c->fp + c->tn;
    *acc = wh_wilson(c->tp + c->tn, pos + neg, WH_Z95);
    *fpr = wh_wilson(c->fp, neg, WH_Z95);
    *prec = wh_wilson(c->tp, c->tp + c->fp, WH_Z95);
    *rec = wh_wilson(c->tp, pos, WH_Z95);
}

static wh_status measure_ruleset(wh_replay *r, uint32_t k, int64_t *vis, int64_t *lat)
{
    const arm *a = &r->arms[k];
    wh_ruleset_result *o = &r->res.rs[k];
    const wh_action min = r->o.min_action;
    o->name = a->name;
    o->rs = a->rs;
    memcpy(o->actions, a->actions, sizeof(o->actions));
    uint32_t nr = a->rs->nrules;
    wh_rule_result *rr = calloc(nr ? nr : 1, sizeof(*rr));
    if (!rr) return WH_ENOMEM;
    size_t nh = 0;
    uint64_t first = 0;
    for (size_t i = 0; i < r->nmsg; i++) {
        const msg *m = &r->msgs[i];
        const mdec *d = &a->dec[i];
        uint8_t lab = label_of(r, m);
        bool acted = d->act >= min;
        confusion_add(&o->cm, lab, acted);
        if (m->sample) confusion_add(&o->cm_sample, m->sample, acted);
        if (m->human_ms && m->source == SRC_HUMAN && m->label == WH_LABEL_HARMFUL) {
            o->human_acted++;
            o->covered += acted;
            lat[nh] = m->human_ms - m->ts_ms;
            vis[nh] = hides(d->act) ? 0 : lat[nh];
            first += hides(d->act);
            nh++;
        }
        for (uint32_t f = 0; f < d->nfired; f++) {
            uint32_t e = a->fired[d->fired + f];
            wh_rule_result *x = &rr[e & 0xFFFFFF];
            x->fired++;
            x->tp += lab == WH_LABEL_HARMFUL;
            x->fp += lab == WH_LABEL_OK;
            if (!acted && e >> 31) { /* a shadow rule acting where the verdict did not */
                x->add++;
                x->add_harmful += lab == WH_LABEL_HARMFUL;
                x->add_ok += lab == WH_LABEL_OK;
            }
        }
    }
    const wh_confusion *c = &o->cm;
    uint64_t pos = c->tp + c->fn;
    shares_of(c, &o->accuracy, &o->fpr, &o->precision, &o->recall);
    shares_of(&o->cm_sample, &o->accuracy_sample, &o->fpr_sample, &o->precision_sample,
              &o->recall_sample);
    o->coverage = wh_wilson(o->covered, o->human_acted, WH_Z95);
    o->hidden = first;
    o->first = wh_wilson(first, nh, WH_Z95);
    o->visible_ms = dist_of(vis, nh);
    o->human_ms = dist_of(lat, nh);
    /* the rules that fired, enforced ones first, each in the ruleset's order */
    wh_rule_result *out = calloc(nr ? nr : 1, sizeof(*out));
    if (!out) {
        free(rr);
        return WH_ENOMEM;
    }
    uint32_t n = 0;
    for (int shadow = 0; shadow < 2; shadow++)
        for (uint32_t ri = 0; ri < nr; ri++) {
            if (!rr[ri].fired || a->rs->rules[ri].shadow != shadow) continue;
            wh_rule_result x = rr[ri];
            x.rule = ri;
            x.precision = wh_wilson(x.tp, x.tp + x.fp, WH_Z95);
            x.recall = wh_wilson(x.tp, pos, WH_Z95);
            x.precision_if =
                wh_wilson(c->tp + x.add_harmful, c->tp + c->fp + x.add_harmful + x.add_ok, WH_Z95);
            x.recall_if = wh_wilson(c->tp + x.add_harmful, pos, WH_Z95);
            out[n++] = x;
        }
    free(rr);
    o->rules = out;
    o->nrules = n;
    if (a->nlat) {
        uint64_t *l = a->lat_ns;
        qsort(l, a->nlat, sizeof(*l), cmp_u64);
        o->engine_p50_us = (double)l[(a->nlat - 1) / 2] / 1000;
        o->engine_p99_us = (double)l[(size_t)((double)(a->nlat - 1) * 0.99)] / 1000;
    }
    return WH_OK;
}

/* The paired table of a yes/no question put to base and candidate, as candidate - base. */
typedef struct {
    uint64_t a, b, c, d; /* both, base only, candidate only, neither */
} table;

static void table_add(table *t, bool base, bool cand)
{
    base ? (cand ? t->a++ : t->b++) : (cand ? t->c++ : t->d++);
}

static wh_paired paired_of(const table *t)
{
    wh_paired p = {t->a, t->b, t->c, t->d, NAN, NAN, {NAN, NAN, NAN}, {0, 0, 1, 1}};
    uint64_t n = t->a + t->b + t->c + t->d;
    if (n) {
        p.base = (double)(t->a + t->b) / (double)n;
        p.cand = (double)(t->a + t->c) / (double)n;
    }
    p.diff = wh_newcombe_paired(t->a, t->c, t->b, t->d, WH_Z95); /* first margin: candidate */
    p.test = wh_mcnemar_test(t->b, t->c);
    return p;
}

typedef struct {
    uint64_t key;
    uint32_t msg;
} change;

static int cmp_change(const void *x, const void *y)
{
    const change *a = x, *b = y;
    if (a->key != b->key) return (a->key > b->key) - (a->key < b->key);
    return (a->msg > b->msg) - (a->msg < b->msg);
}

static int cmp_group(const void *x, const void *y)
{
    const wh_change_group *a = x, *b = y;
    if (a->count != b->count) return a->count < b->count ? 1 : -1;
    if (a->base_rule != b->base_rule)
        return (a->base_rule > b->base_rule) - (a->base_rule < b->base_rule);
    return (a->cand_rule > b->cand_rule) - (a->cand_rule < b->cand_rule);
}

static wh_status compare(wh_replay *r, uint32_t k, wh_comparison *o)
{
    const mdec *bd = r->arms[0].dec, *cd = r->arms[k].dec;
    const wh_action min = r->o.min_action;
    table acc = {0}, fpr = {0}, cov = {0}, rec = {0};
    double sum = 0, sum2 = 0;
    uint64_t nv = 0;
    size_t nch = 0;
    change *ch = malloc((r->nmsg ? r->nmsg : 1) * sizeof(*ch));
    if (!ch) return WH_ENOMEM;
    o->cand = k;
    for (size_t i = 0; i < r->nmsg; i++) {
        const msg *m = &r->msgs[i];
        uint8_t lab = label_of(r, m);
        bool ba = bd[i].act >= min, ca = cd[i].act >= min;
        if (lab != WH_LABEL_NONE)
            table_add(&acc, ba == (lab == WH_LABEL_HARMFUL), ca == (lab == WH_LABEL_HARMFUL));
        if (lab == WH_LABEL_OK) table_add(&fpr, ba, ca);
        if (lab == WH_LABEL_HARMFUL) table_add(&rec, ba, ca);
        if (m->human_ms && m->source == SRC_HUMAN && m->label == WH_LABEL_HARMFUL) {
            table_add(&cov, ba, ca);
            double lat = (double)(m->human_ms - m->ts_ms);
            double dv = (hides(cd[i].act) ? 0 : lat) - (hides(bd[i].act) ? 0 : lat);
            sum += dv;
            sum2 += dv * dv;
            nv++;
        }
        if (bd[i].act != cd[i].act) {
            uint64_t key = (uint64_t)(uint32_t)(bd[i].rule + 1) << 32 | (uint32_t)(cd[i].rule + 1);
            ch[nch++] = (change){key, (uint32_t)i};
        }
    }
    o->accuracy = paired_of(&acc);
    o->fpr = paired_of(&fpr);
    o->coverage = paired_of(&cov);
    o->recall = paired_of(&rec);
    o->visible_diff_ms = (wh_interval){NAN, NAN, NAN};
    if (nv) {
        double mean = sum / (double)nv;
        double var = nv > 1 ? (sum2 - (double)nv * mean * mean) / (double)(nv - 1) : 0;
        double half = WH_Z95 * sqrt(var > 0 ? var / (double)nv : 0);
        o->visible_diff_ms = (wh_interval){mean, mean - half, mean + half};
    }
    o->changed = nch;
    qsort(ch, nch, sizeof(*ch), cmp_change);
    size_t ng = 0;
    for (size_t i = 0; i < nch; i++)
        ng += i == 0 || ch[i].key != ch[i - 1].key;
    o->groups = calloc(ng ? ng : 1, sizeof(*o->groups));
    if (!o->groups) {
        free(ch);
        return WH_ENOMEM;
    }
    wh_change_group *g = NULL;
    for (size_t i = 0; i < nch; i++) {
        if (i == 0 || ch[i].key != ch[i - 1].key) {
            g = &o->groups[o->ngroups++];
            g->base_rule = (int32_t)(ch[i].key >> 32) - 1;
            g->cand_rule = (int32_t)(uint32_t)ch[i].key - 1;
        }
        uint32_t mi = ch[i].msg;
        const msg *m = &r->msgs[mi];
        uint8_t lab = label_of(r, m);
        g->count++;
        bool ca = cd[mi].act >= min, ba = bd[mi].act >= min;
        g->now_acting += ca && !ba;
        g->now_allowed += ba && !ca;
        g->harmful += lab == WH_LABEL_HARMFUL;
        g->ok += lab == WH_LABEL_OK;
        if (m->snip && g->nex < r->o.examples) {
            char *id = wh_arena_strndup(&r->out, r->ids.p + m->id_off, m->id_len);
            if (!id) {
                free(ch);
                return WH_ENOMEM;
            }
            g->ex[g->nex++] = (wh_example){id, r->snips.p + m->snip - 1, (wh_label)lab,
                                           (wh_action)bd[mi].act, (wh_action)cd[mi].act};
        }
    }
    free(ch);
    qsort(o->groups, o->ngroups, sizeof(*o->groups), cmp_group);
    return WH_OK;
}

const wh_replay_result *wh_replay_finish(wh_replay *r)
{
    wh_replay_result *res = &r->res;
    if (r->finished) return r->failed ? NULL : res;
    r->finished = true;
    if (drain(r) != WH_OK) {
        r->failed = true;
        return NULL;
    }
    stop_threads(r);
    res->opts = r->o;
    res->messages = r->nmsg;
    apply_sample(r);
    for (size_t i = 0; i < r->nmsg; i++) {
        const msg *m = &r->msgs[i];
        res->harmful += m->label == WH_LABEL_HARMFUL;
        res->ok += m->label == WH_LABEL_OK;
        res->from_humans += m->source == SRC_HUMAN;
        res->from_sample += m->source == SRC_SAMPLE;
    }
    res->unlabelled = r->nmsg - res->harmful - res->ok;
    res->rs = calloc(r->narms, sizeof(*res->rs));
    res->cmp = r->narms > 1 ? calloc(r->narms - 1, sizeof(*res->cmp)) : NULL;
    int64_t *vis = malloc((r->nmsg ? r->nmsg : 1) * sizeof(*vis));
    int64_t *lat = malloc((r->nmsg ? r->nmsg : 1) * sizeof(*lat));
    bool ok = res->rs && vis && lat && (r->narms == 1 || res->cmp);
    if (ok) res->nrs = r->narms;
    for (uint32_t k = 0; ok && k < r->narms; k++)
        ok = measure_ruleset(r, k, vis, lat) == WH_OK;
    for (uint32_t k = 1; ok && k < r->narms; k++)
        ok = compare(r, k, &res->cmp[k - 1]) == WH_OK;
    free(vis);
    free(lat);
    r->failed = !ok;
    return ok ? res : NULL;
}
