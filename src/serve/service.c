/* service.c - see service.h. */
#define _GNU_SOURCE
#include "internal.h"
#include "ingest.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/engine.h"
#include "dash.h"
#include "dedupe.h"
#include "outbox_impl.h"
#include "state/table.h"
#include "rules/rules.h"

const char *const wh_route_names[WH_RT__COUNT] = {"events",    "decisions", "review", "rules",
                                                  "ratelimit", "metrics",   "health", "audit",
                                                  "actions",   "other"};

void wh_dedupe_drop(void *payload)
{
    dedupe_entry *e = payload;
    free(e->line);
    e->line = NULL;
}

typedef struct {
    wh_buf *b;
    uint64_t durable;
    uint32_t count;
} dd_save_ctx;

/* Only a decision whose audit rows are committed may be answered from the file after a
 * restart: one whose commit failed, or is still waiting (the database locked by another
 * process), is left out, and a retry of it after a restart is decided and audited then. */
static void dd_save_one(void *ud, uint64_t key, int64_t last_ms, const void *payload)
{
    dd_save_ctx *c = ud;
    const dedupe_entry *e = payload;
    if (!e->line || e->ticket > c->durable) return;
    wh_dedupe_entry(c->b, key, last_ms, e->line, e->len);
    c->count++;
}

/* DATA/dedupe.snap's bytes (serve/dedupe.h) into b, under every shard's dec_lock: the
 * tickets cannot change meanwhile, and the durable ticket is read after they are taken, so
 * every entry at or below it is committed. */
static void dedupe_serialize(wh_service *s, uint32_t nshards, wh_buf *b)
{
    dd_save_ctx c = {b, wh_store_durable(s->store), 0};
    wh_dedupe_begin(b, s->dedupe_seed, nshards);
    for (uint32_t i = 0; i < nshards; i++) {
        size_t at = wh_dedupe_shard(b);
        c.count = 0;
        wh_table_foreach(s->dedupe[i], dd_save_one, &c);
        wh_dedupe_shard_count(b, at, c.count);
    }
    wh_dedupe_finish(b);
}

/* b's bytes to path through path.tmp, synced, then renamed: a crash leaves the old file or
 * the new one, never half of one. No lock held: the bytes are a copy. */
static bool write_file_atomic(const char *path, const wh_buf *b, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = b->oom ? NULL : fopen(tmp, "wb");
    bool ok = f && fwrite(b->p, 1, b->len, f) == b->len;
    if (f) {
        bool synced = fflush(f) == 0 && fsync(fileno(f)) == 0;
        bool closed = fclose(f) == 0; /* always, even when the sync failed */
        ok = ok && synced && closed;
    }
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        snprintf(err, errlen, "cannot write %s: %s", path,
                 b->oom ? "out of memory" : strerror(errno));
        unlink(tmp);
    }
    return ok;
}

typedef struct {
    wh_service *s;
    uint64_t loaded;
} dd_load_ctx;

static void dd_load_one(void *ud, uint32_t shard, uint64_t key, int64_t last_ms, const char *line,
                        uint32_t len)
{
    dd_load_ctx *c = ud;
    bool created = false;
    dedupe_entry *e = len ? wh_table_get(c->s->dedupe[shard], key, last_ms, true, &created) : NULL;
    if (e && created && (e->line = malloc(len))) {
        memcpy(e->line, line, len);
        e->len = len;
        e->ticket = 0; /* committed before the file was saved */
        c->loaded++;
    }
}

/* Loads DATA/dedupe.snap into the empty tables; a file that does not check out is left
 * alone with a line on stderr, and the window starts empty. */
static void dedupe_load(wh_service *s, uint32_t nshards, const char *path)
{
    if (access(path, F_OK) != 0) return;
    char *p = NULL;
    size_t n = 0;
    dd_load_ctx c = {s, 0};
    uint64_t seed = 0;
    const char *why = wh_read_file(path, &p, &n) != WH_OK
                          ? "cannot be read"
                          : wh_dedupe_parse(p, n, nshards, &seed, dd_load_one, &c);
    free(p);
    if (why) {
        fprintf(stderr, "whiply: %s %s: the idempotency window starts empty\n", path, why);
        return;
    }
    s->dedupe_seed = seed;
    fprintf(stderr, "whiply: idempotency window: %llu event ids remembered from the last run\n",
            (unsigned long long)c.loaded);
}

static void gen_free(gen_t *g)
{
    if (!g) return;
    for (uint32_t i = 0; i < g->npool; i++)
        wh_worker_free(g->pool[i]);
    free(g->pool);
    for (uint32_t i = 0; g->dec && i < g->nshards; i++) {
        wh_decider_free(g->dec[i]);
        pthread_mutex_destroy(&g->dec_lock[i]);
    }
    free(g->dec);
    free(g->dec_lock);
    pthread_mutex_destroy(&g->pool_lock);
    wh_ruleset_release(g->rs);
    free(g->source);
    free(g);
}

static gen_t *gen_new(wh_ruleset *rs, uint32_t nshards, const wh_engine_opts *eo)
{
    gen_t *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->rs = rs;
    wh_ruleset_retain(rs);
    g->nshards = nshards;
    g->loaded_ms = wh_now_ms();
    pthread_mutex_init(&g->pool_lock, NULL);
    g->dec = calloc(nshards, sizeof(*g->dec));
    g->dec_lock = calloc(nshards, sizeof(*g->dec_lock));
    if (!g->dec || !g->dec_lock) goto fail;
    for (uint32_t i = 0; i < nshards; i++) {
        pthread_mutex_init(&g->dec_lock[i], NULL);
        if (!(g->dec[i] = wh_decider_new(rs, eo, nshards))) goto fail;
    }
    char *text = NULL;
    size_t len = 0;
    if (wh_read_file_max(rs->path, WH_RULES_FILE_MAX, &text, &len) == WH_OK) g->source = text;
    return g;
fail:
    if (!g->dec_lock) g->nshards = 0;
    gen_free(g);
    return NULL;
}

wh_worker *wh_gen_worker_get(gen_t *g, const wh_engine_opts *eo)
{
    pthread_mutex_lock(&g->pool_lock);
    wh_worker *w = g->npool ? g->pool[--g->npool] : NULL;
    pthread_mutex_unlock(&g->pool_lock);
    return w ? w : wh_worker_new(g->rs, eo);
}

void wh_gen_worker_put(gen_t *g, wh_worker *w)
{
    pthread_mutex_lock(&g->pool_lock);
    if (g->npool == g->cappool) {
        uint32_t cap = g->cappool ? g->cappool * 2 : 8;
        wh_worker **p = realloc(g->pool, sizeof(*p) * cap);
        if (!p) {
            pthread_mutex_unlock(&g->pool_lock);
            wh_worker_free(w);
            return;
        }
        g->pool = p;
        g->cappool = cap;
    }
    g->pool[g->npool++] = w;
    pthread_mutex_unlock(&g->pool_lock);
}

static void gen_shards(gen_t *g, wh_shard **out)
{
    for (uint32_t i = 0; i < g->nshards; i++)
        out[i] = wh_decider_shard(g->dec[i]);
}

/* Loads rules (from text when given, else the file). Validation lints each regex alone as
 * well, to name every one Hyperscan rejects; serving loads skip that (slow). */
static wh_ruleset *load_rules(const wh_config *c, const char *label, const char *text, size_t len,
                              wh_buf *diag_json, char **diag_text)
{
    const char *path = c->rules;
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts lo = {.cache_dir = c->cache_dir, .compile = true, .lint = text != NULL};
    wh_status st;
    if (text) {
        char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash) *slash = 0;
        st = wh_ruleset_load_mem(label, slash ? dir : ".", text, len, &lo, &d, &rs);
        free(dir);
    } else {
        st = wh_ruleset_load(path, &lo, &d, &rs);
    }
    if (st != WH_OK && diag_json) {
        wh_buf_puts(diag_json, "[");
        for (uint32_t i = 0; i < d.n; i++) {
            wh_buf_puts(diag_json, i ? ",{\"file\":" : "{\"file\":");
            wh_buf_json_str(diag_json, d.v[i].file, strlen(d.v[i].file));
            wh_buf_printf(diag_json, ",\"line\":%u,\"col\":%u,\"message\":", d.v[i].line,
                          d.v[i].col);
            wh_buf_json_str(diag_json, d.v[i].message, strlen(d.v[i].message));
            wh_buf_putc(diag_json, '}');
        }
        wh_buf_puts(diag_json, "]");
    }
    if (st != WH_OK && diag_text) *diag_text = wh_diags_text(&d);
    wh_diags_free(&d);
    return st == WH_OK ? rs : NULL;
}

static void system_row(wh_service *s, const char *action, const char *body)
{
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    wh_rec *r = wh_rec_add(&b, WH_REC_SYSTEM);
    wh_rec_set(&b, r, WH_RF_ACTION, action, strlen(action));
    wh_rec_set(&b, r, WH_RF_BODY, body, strlen(body));
    uint64_t t = wh_store_submit(s->store, &b);
    if (t) wh_store_wait(s->store, t);
    wh_rec_batch_free(&b);
}

wh_service *wh_service_open(const wh_config *c, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    wh_service *s = calloc(1, sizeof(*s));
    if (!s) {
        wh_error_set(e, WH_ENOMEM, "out of memory");
        return NULL;
    }
    s->cfg = c;
    s->eo.max_depth = (int)c->limits.json_depth;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* A reload waiting for the write lock must not starve behind a stream of requests. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->gen_rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&s->reload_lock, NULL);
    pthread_mutex_init(&s->review_lock, NULL);
    pthread_mutex_init(&s->hits_lock, NULL);
    pthread_rwlock_init(&s->sink_rw, NULL);
    s->rl = wh_rl_new((uint32_t)c->ratelimit_keys);
    s->dash = wh_dash_new();
    if (!s->rl || !s->dash) {
        wh_error_set(e, WH_ENOMEM, "out of memory");
        goto fail;
    }
    wh_store_opts so = {.sync_full = c->store.sync_full,
                        .preallocate = c->store.preallocate,
                        .queue = c->limits.queue,
                        .audit_keep_ms = c->retention.audit_ms,
                        .review_keep_ms = c->retention.review_ms,
                        .retention_every_ms = c->retention.every_ms,
                        .quotas = s->rl,
                        .signing_key = c->store.signing_key,
                        .checkpoints = c->store.checkpoints,
                        .checkpoint_url = c->store.checkpoint_url,
                        .sign_rows = c->store.sign_rows,
                        .sign_ms = c->store.sign_ms,
                        .start_afresh = c->start_afresh};
    s->store = wh_store_open(c->data, &so, e); /* e->code: WH_EIO */
    if (!s->store) goto fail;
    /* before the first decision: operations left from a previous run are carried out now */
    if (!(s->outbox = wh_outbox_new(s->store, c, e))) goto fail;
    wh_store_load_quotas(s->store, s->rl);
    char *dtext = NULL;
    wh_ruleset *rs = load_rules(c, NULL, NULL, 0, NULL, &dtext);
    if (!rs) {
        wh_error_set(e, WH_ERULES, "the rules do not load:\n%s", dtext ? dtext : "");
        free(dtext);
        goto fail;
    }
    s->g = gen_new(rs, (uint32_t)c->threads, &s->eo);
    wh_ruleset_release(rs);
    if (!s->g) {
        wh_error_set(e, WH_ENOMEM, "out of memory");
        goto fail;
    }
    if (c->limits.dedupe > 0) {
        for (uint32_t i = 0; i < s->g->nshards; i++) {
            s->dedupe[i] = wh_table_new((uint32_t)c->limits.dedupe, sizeof(dedupe_entry), 0);
            if (!s->dedupe[i]) {
                wh_error_set(e, WH_ENOMEM, "out of memory");
                goto fail;
            }
            wh_table_set_drop(s->dedupe[i], wh_dedupe_drop);
        }
        s->dedupe_seed = wh_random_seed();
        if (asprintf(&s->dedupe_path, "%s/dedupe.snap", c->data) < 0) s->dedupe_path = NULL;
        if (s->dedupe_path) dedupe_load(s, s->g->nshards, s->dedupe_path);
    }
    if (asprintf(&s->state_path, "%s/state.snap", c->data) < 0) s->state_path = NULL;
    if (s->state_path && s->g->rs->state.enabled && access(s->state_path, F_OK) == 0) {
        wh_shard *sh[64];
        gen_shards(s->g, sh);
        wh_error e2;
        if (wh_state_load(sh, s->g->nshards, &s->g->rs->state, s->state_path, &e2) != WH_OK) {
            /* The engine still serves, with empty state; the file is kept for a look. */
            char bad[4200];
            snprintf(bad, sizeof(bad), "%s.bad", s->state_path);
            rename(s->state_path, bad);
            fprintf(stderr, "whiply: the saved state was not loaded (%s); moved to %s\n",
                    e2.message, bad);
            for (uint32_t i = 0; i < s->g->nshards; i++) {
                wh_decider_free(s->g->dec[i]);
                if (!(s->g->dec[i] = wh_decider_new(s->g->rs, &s->eo, s->g->nshards))) {
                    wh_error_set(e, WH_ENOMEM, "out of memory");
                    goto fail;
                }
            }
        }
    }
    wh_dash_ruleset_loaded(s->dash, s->g->rs->hash, NULL, s->g->rs->nrules, s->g->source, "start");
    char body[256];
    snprintf(body, sizeof(body), "{\"event\":\"start\",\"ruleset\":\"%s\",\"version\":\"%s\"}",
             s->g->rs->hash, WHIPLY_VERSION);
    system_row(s, "start", body);
    return s;
fail:
    wh_service_close(s);
    return NULL;
}

wh_status wh_service_snapshot(wh_service *s, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    char *err = e->message;
    size_t errlen = sizeof(e->message);
    bool ok = true;
    wh_buf dd;
    wh_buf_init(&dd);
    pthread_rwlock_rdlock(&s->gen_rw);
    gen_t *g = s->g;
    for (uint32_t i = 0; i < g->nshards; i++)
        pthread_mutex_lock(&g->dec_lock[i]);
    if (g->rs->state.enabled && s->state_path) {
        wh_shard *sh[64];
        gen_shards(g, sh);
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.tmp", s->state_path);
        ok = wh_state_save(sh, g->nshards, &g->rs->state, tmp, e) == WH_OK;
        if (ok && rename(tmp, s->state_path) != 0) {
            wh_error_set(e, WH_EIO, "cannot rename %s: %s", tmp, strerror(errno));
            ok = false;
        }
    }
    /* the idempotency window, taken with the state it belongs to; written after the locks */
    bool with_dd = ok && s->dedupe_path;
    if (with_dd) dedupe_serialize(s, g->nshards, &dd);
    for (uint32_t i = 0; i < g->nshards; i++)
        pthread_mutex_unlock(&g->dec_lock[i]);
    pthread_rwlock_unlock(&s->gen_rw);
    if (with_dd) ok = write_file_atomic(s->dedupe_path, &dd, err, errlen);
    wh_buf_free(&dd);
    e->code = ok ? WH_OK : WH_EIO;
    return e->code;
}

/* Runs fn on the serving generation's shards with every decider's lock held. */
static wh_status with_shards(wh_service *s,
                             wh_status (*fn)(gen_t *g, wh_shard **sh, void *ud, wh_error *e),
                             void *ud, wh_error *e)
{
    pthread_rwlock_rdlock(&s->gen_rw);
    gen_t *g = s->g;
    for (uint32_t i = 0; i < g->nshards; i++)
        pthread_mutex_lock(&g->dec_lock[i]);
    wh_shard *sh[64];
    gen_shards(g, sh);
    wh_status st = fn(g, sh, ud, e);
    for (uint32_t i = 0; i < g->nshards; i++)
        pthread_mutex_unlock(&g->dec_lock[i]);
    pthread_rwlock_unlock(&s->gen_rw);
    return st;
}

typedef struct {
    uint32_t part, nparts;
    char **out;
    size_t *len;
    const unsigned char *in;
    size_t inlen;
} part_io;

static wh_status part_save_fn(gen_t *g, wh_shard **sh, void *ud, wh_error *e)
{
    part_io *io = ud;
    *io->out = NULL;
    *io->len = 0;
    if (!g->rs->state.enabled) return WH_OK;
    return wh_state_save_part(sh, g->nshards, &g->rs->state, io->part, io->nparts, io->out, io->len,
                              e);
}

static wh_status part_load_fn(gen_t *g, wh_shard **sh, void *ud, wh_error *e)
{
    part_io *io = ud;
    if (!g->rs->state.enabled) return WH_OK;
    wh_state_drop_part(sh, g->nshards, io->part, io->nparts);
    if (!io->in || !io->inlen) return WH_OK;
    char label[64];
    snprintf(label, sizeof(label), "partition %u's snapshot", io->part);
    return wh_state_load_mem(sh, g->nshards, &g->rs->state, label, io->in, io->inlen, e);
}

wh_status wh_service_part_save(wh_service *s, uint32_t part, uint32_t nparts, char **out,
                               size_t *len, wh_error *e)
{
    part_io io = {part, nparts, out, len, NULL, 0};
    return with_shards(s, part_save_fn, &io, e);
}

wh_status wh_service_part_load(wh_service *s, uint32_t part, uint32_t nparts,
                               const unsigned char *buf, size_t len, wh_error *e)
{
    part_io io = {part, nparts, NULL, NULL, buf, len};
    return with_shards(s, part_load_fn, &io, e);
}

void wh_service_close(wh_service *s)
{
    if (!s) return;
    /* the workers stop first (a call in progress ends; what is due stays in the table) */
    wh_outbox_free(s->outbox);
    s->outbox = NULL;
    if (s->g && s->store) {
        wh_error err;
        if (wh_service_snapshot(s, &err) != WH_OK)
            fprintf(stderr, "whiply: the state was not saved: %s\n", err.message);
        system_row(s, "stop", "{\"event\":\"stop\"}");
    }
    wh_store_close(s->store);
    /* The store calls every notice before it closes: no verdict is in flight any more. */
    while (s->claims)
        wh_claim_release(s->claims);
    gen_free(s->g);
    for (int i = 0; i < 64; i++)
        wh_table_free(s->dedupe[i]);
    wh_rl_free(s->rl);
    wh_dash_free(s->dash);
    for (uint32_t i = 0; i < s->nold_hits; i++)
        free(s->old_hits[i].id);
    free(s->old_hits);
    free(s->state_path);
    free(s->dedupe_path);
    pthread_rwlock_destroy(&s->gen_rw);
    pthread_mutex_destroy(&s->reload_lock);
    pthread_mutex_destroy(&s->review_lock);
    pthread_mutex_destroy(&s->hits_lock);
    pthread_rwlock_destroy(&s->sink_rw);
    free(s);
}

wh_ratelimiter *wh_service_ratelimiter(wh_service *s)
{
    return s->rl;
}
wh_store *wh_service_store(wh_service *s)
{
    return s->store;
}
wh_outbox *wh_service_outbox(wh_service *s)
{
    return s->outbox;
}
const wh_config *wh_service_config(wh_service *s)
{
    return s->cfg;
}

/* ---- rules ---- */

static void keep_hits(wh_service *s, gen_t *g)
{
    wh_shard_stats ss = {0};
    for (uint32_t k = 0; k < g->nshards; k++) {
        wh_shard *sh = wh_decider_shard(g->dec[k]);
        if (sh) wh_shard_stats_add(sh, &ss);
    }
    atomic_fetch_add(&s->old_user_evictions, ss.user_evictions);
    atomic_fetch_add(&s->old_channel_evictions, ss.channel_evictions);
    pthread_mutex_lock(&s->hits_lock);
    for (uint32_t ri = 0; ri < g->rs->nrules; ri++) {
        uint64_t n = 0;
        for (uint32_t k = 0; k < g->nshards; k++)
            n += wh_decider_hits(g->dec[k], ri);
        if (!n) continue;
        const char *id = g->rs->rules[ri].id;
        uint32_t i = 0;
        while (i < s->nold_hits && strcmp(s->old_hits[i].id, id))
            i++;
        if (i == s->nold_hits) {
            void *v = realloc(s->old_hits, sizeof(*s->old_hits) * (s->nold_hits + 1));
            if (!v) continue;
            s->old_hits = v;
            s->old_hits[i].id = strdup(id);
            s->old_hits[i].n = 0;
            if (!s->old_hits[i].id) continue;
            s->nold_hits++;
        }
        s->old_hits[i].n += n;
    }
    pthread_mutex_unlock(&s->hits_lock);
}

bool wh_service_reload(wh_service *s, const char *why, wh_buf *out)
{
    pthread_mutex_lock(&s->reload_lock);
    wh_buf diags;
    wh_buf_init(&diags);
    char *diag_text = NULL;
    wh_ruleset *rs = load_rules(s->cfg, NULL, NULL, 0, &diags, &diag_text);
    bool ok = false;
    if (!rs) {
        atomic_fetch_add(&s->reloads_failed, 1);
        wh_buf_puts(out, "{\"error\":{\"code\":\"rules_invalid\",\"message\":");
        char msg[600];
        snprintf(msg, sizeof(msg), "%s does not load; the previous rules keep serving",
                 s->cfg->rules);
        wh_buf_json_str(out, msg, strlen(msg));
        wh_buf_puts(out, ",\"diagnostics\":");
        wh_buf_append(out, diags.p, diags.len);
        wh_buf_puts(out, "}}");
        fprintf(stderr, "whiply: reload (%s) refused, the previous rules keep serving:\n%s", why,
                diag_text ? diag_text : "");
        goto done;
    }
    gen_t *ng = gen_new(rs, (uint32_t)s->cfg->threads, &s->eo);
    wh_ruleset_release(rs);
    if (!ng) {
        wh_buf_puts(out, "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
        goto done;
    }
    char old_hash[17];
    pthread_rwlock_wrlock(&s->gen_rw);
    gen_t *og = s->g;
    snprintf(old_hash, sizeof(old_hash), "%s", og->rs->hash);
    /* The state moves through the snapshot format, which places entries by the new shard
     * count and keeps rate cells whose limits the new rules still have. */
    wh_error err = {0};
    if (og->rs->state.enabled && ng->rs->state.enabled && s->state_path) {
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.reload", s->state_path);
        wh_shard *osh[64], *nsh[64];
        gen_shards(og, osh);
        gen_shards(ng, nsh);
        if (wh_state_save(osh, og->nshards, &og->rs->state, tmp, &err) != WH_OK ||
            wh_state_load(nsh, ng->nshards, &ng->rs->state, tmp, &err) != WH_OK)
            fprintf(stderr, "whiply: reload: the state did not carry over (%s)\n", err.message);
        unlink(tmp);
    }
    s->g = ng;
    pthread_rwlock_unlock(&s->gen_rw);
    keep_hits(s, og);
    gen_free(og);
    atomic_fetch_add(&s->reloads_ok, 1);
    ok = true;
    char body[512];
    snprintf(body, sizeof(body),
             "{\"event\":\"reload\",\"from\":\"%s\",\"to\":\"%s\",\"rules\":%u,\"by\":\"%s\"}",
             old_hash, ng->rs->hash, ng->rs->nrules, why);
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    wh_rec *r = wh_rec_add(&b, WH_REC_RELOAD);
    wh_rec_set(&b, r, WH_RF_ACTION, "reload", 6);
    wh_rec_set(&b, r, WH_RF_BODY, body, strlen(body));
    uint64_t t = wh_store_submit(s->store, &b);
    if (t) wh_store_wait(s->store, t);
    wh_rec_batch_free(&b);
    wh_buf_printf(out, "{\"ruleset\":\"%s\",\"previous\":\"%s\",\"rules\":%u}", ng->rs->hash,
                  old_hash, ng->rs->nrules);
    wh_dash_ruleset_loaded(s->dash, ng->rs->hash, old_hash, ng->rs->nrules, ng->source, why);
    fprintf(stderr, "whiply: rules reloaded (%s): %s -> %s, %u rules\n", why, old_hash,
            ng->rs->hash, ng->rs->nrules);
done:
    free(diag_text);
    wh_buf_free(&diags);
    pthread_mutex_unlock(&s->reload_lock);
    return ok;
}

bool wh_service_validate(wh_service *s, const char *text, size_t len, wh_buf *out)
{
    wh_buf diags;
    wh_buf_init(&diags);
    wh_ruleset *rs = load_rules(s->cfg, "<posted rules>", text, len, &diags, NULL);
    if (rs) {
        wh_buf_printf(out, "{\"valid\":true,\"ruleset\":\"%s\",\"rules\":%u}", rs->hash,
                      rs->nrules);
        wh_ruleset_release(rs);
    } else {
        wh_buf_puts(out, "{\"valid\":false,\"error\":{\"code\":\"rules_invalid\",\"message\":"
                         "\"the posted rules do not load; the diagnostics say why\","
                         "\"diagnostics\":");
        wh_buf_append(out, diags.p, diags.len);
        wh_buf_puts(out, "}}");
    }
    wh_buf_free(&diags);
    return rs != NULL;
}

wh_ruleset *wh_service_load_text(wh_service *s, const char *text, size_t len, wh_buf *diag_json)
{
    return load_rules(s->cfg, "<posted rules>", text, len, diag_json, NULL);
}

struct wh_dash *wh_service_dash(wh_service *s)
{
    return s->dash;
}

void wh_service_rules(wh_service *s, wh_buf *out)
{
    pthread_rwlock_rdlock(&s->gen_rw);
    gen_t *g = s->g;
    wh_buf_printf(out, "{\"ruleset\":\"%s\",\"path\":", g->rs->hash);
    wh_buf_json_str(out, g->rs->path, strlen(g->rs->path));
    wh_buf_printf(out, ",\"loaded_at_ms\":%lld,\"rules\":[", (long long)g->loaded_ms);
    for (uint32_t i = 0; i < g->rs->nrules; i++) {
        const wh_rule *r = &g->rs->rules[i];
        wh_buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
        wh_buf_json_str(out, r->id, strlen(r->id));
        wh_buf_printf(out, ",\"action\":\"%s\",\"mode\":\"%s\",\"priority\":%lld,\"line\":%u}",
                      wh_action_names[r->action], r->shadow ? "shadow" : "enforce",
                      (long long)r->priority, r->line);
    }
    wh_buf_puts(out, "],\"models\":[");
    for (uint32_t i = 0; i < g->rs->nmodels; i++) {
        const wh_rmodel *rm = &g->rs->models[i];
        wh_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        wh_buf_json_str(out, rm->name, strlen(rm->name));
        wh_buf_puts(out, ",\"file\":");
        wh_buf_json_str(out, rm->path, strlen(rm->path));
        wh_buf_puts(out, ",\"labels\":[");
        for (uint32_t l = 0; l < wh_model_nlabels(rm->model); l++) {
            const char *lab = wh_model_label(rm->model, l);
            if (l) wh_buf_putc(out, ',');
            wh_buf_json_str(out, lab, strlen(lab));
        }
        wh_buf_printf(out, "],\"checksum\":\"%s\",\"trained\":%s}", wh_model_checksum(rm->model),
                      wh_model_meta(rm->model));
    }
    wh_buf_puts(out, "],\"source\":");
    if (g->source)
        wh_buf_json_str(out, g->source, strlen(g->source));
    else
        wh_buf_puts(out, "null");
    wh_buf_putc(out, '}');
    pthread_rwlock_unlock(&s->gen_rw);
}
