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
#include "dedupe.h"
#include "state/table.h"
#include "rules/rules.h"

const char *const wh_route_names[WH_RT__COUNT] = {
    "events", "decisions", "review", "rules", "ratelimit", "metrics", "health", "audit", "other"};

void wh_histo_add(wh_histo *h, uint64_t ns, uint64_t n)
{
    double sec = (double)ns * 1e-9;
    size_t i = 0;
    while (i < NB && sec > wh_lat_bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->b[i], n, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns * n, memory_order_relaxed);
}

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
    char *err = e->message;
    size_t errlen = sizeof(e->message);
    e->code = WH_EIO; /* the store, unless said otherwise below */
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
    s->rl = wh_rl_new((uint32_t)c->ratelimit_keys);
    if (!s->rl) {
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
    s->store = wh_store_open(c->data, &so, err, errlen);
    if (!s->store) goto fail;
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
        char e2[512];
        if (wh_state_load(sh, s->g->nshards, &s->g->rs->state, s->state_path, e2, sizeof(e2)) !=
            WH_OK) {
            /* The engine still serves, with empty state; the file is kept for a look. */
            char bad[4200];
            snprintf(bad, sizeof(bad), "%s.bad", s->state_path);
            rename(s->state_path, bad);
            fprintf(stderr, "whiply: the saved state was not loaded (%s); moved to %s\n", e2, bad);
            for (uint32_t i = 0; i < s->g->nshards; i++) {
                wh_decider_free(s->g->dec[i]);
                if (!(s->g->dec[i] = wh_decider_new(s->g->rs, &s->eo, s->g->nshards))) {
                    wh_error_set(e, WH_ENOMEM, "out of memory");
                    goto fail;
                }
            }
        }
    }
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
        ok = wh_state_save(sh, g->nshards, &g->rs->state, tmp, err, errlen) == WH_OK;
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

static void claim_release(struct review_claim *c);

void wh_service_close(wh_service *s)
{
    if (!s) return;
    if (s->g && s->store) {
        wh_error err;
        if (wh_service_snapshot(s, &err) != WH_OK)
            fprintf(stderr, "whiply: the state was not saved: %s\n", err.message);
        system_row(s, "stop", "{\"event\":\"stop\"}");
    }
    wh_store_close(s->store);
    /* The store calls every notice before it closes: no verdict is in flight any more. */
    while (s->claims)
        claim_release(s->claims);
    gen_free(s->g);
    for (int i = 0; i < 64; i++)
        wh_table_free(s->dedupe[i]);
    wh_rl_free(s->rl);
    for (uint32_t i = 0; i < s->nold_hits; i++)
        free(s->old_hits[i].id);
    free(s->old_hits);
    free(s->state_path);
    free(s->dedupe_path);
    pthread_rwlock_destroy(&s->gen_rw);
    pthread_mutex_destroy(&s->reload_lock);
    pthread_mutex_destroy(&s->review_lock);
    pthread_mutex_destroy(&s->hits_lock);
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
const wh_config *wh_service_config(wh_service *s)
{
    return s->cfg;
}

/* ---- reviews ---- */

static void json_error(wh_buf *out, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void json_error(wh_buf *out, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    wh_buf_puts(out, "{\"error\":{\"code\":\"");
    wh_buf_puts(out, code);
    wh_buf_puts(out, "\",\"message\":");
    wh_buf_json_str(out, msg, strlen(msg));
    wh_buf_puts(out, "}}");
}

static void put_kv(wh_buf *b, const char *k, const char *v, bool first)
{
    if (!first) wh_buf_putc(b, ',');
    wh_buf_json_str(b, k, strlen(k));
    wh_buf_putc(b, ':');
    if (v)
        wh_buf_json_str(b, v, strlen(v));
    else
        wh_buf_puts(b, "null");
}

/* A verdict in flight: its event id is claimed from the decision until its review row is
 * committed or the store failed (the notice's call), whichever comes first. */
typedef struct review_claim {
    wh_store_notice notice;
    wh_service *s;
    struct review_claim *next;
    char id[];
} review_claim;

/* Claims event_id for one verdict; NULL when another holds it (or out of memory: *nomem). */
static review_claim *claim_take(wh_service *s, const char *event_id, bool *nomem)
{
    size_t n = strlen(event_id);
    review_claim *c = calloc(1, sizeof(*c) + n + 1);
    *nomem = !c;
    if (!c) return NULL;
    memcpy(c->id, event_id, n + 1);
    c->s = s;
    pthread_mutex_lock(&s->review_lock);
    for (review_claim *o = s->claims; o; o = o->next) {
        if (!strcmp(o->id, event_id)) {
            pthread_mutex_unlock(&s->review_lock);
            free(c);
            return NULL;
        }
    }
    c->next = s->claims;
    s->claims = c;
    pthread_mutex_unlock(&s->review_lock);
    return c;
}

static void claim_release(review_claim *c)
{
    wh_service *s = c->s;
    pthread_mutex_lock(&s->review_lock);
    for (review_claim **p = &s->claims; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&s->review_lock);
    free(c);
}

/* The writer's notice: the review row is committed (the item is resolved in the database,
 * so a later verdict reads it as such) or the store failed (the item stays pending). */
static void claim_done(void *ud, bool ok)
{
    WH_UNUSED(ok);
    claim_release(ud);
}

/* The verdict's mod_action event (serve/api.md: "review:<verb>:<id>"), as JSON. */
static void review_event(wh_buf *ev, const wh_review_item *it, const char *verb,
                         const char *event_id, const char *moderator)
{
    wh_buf_puts(ev, "{\"id\":");
    char rid[400];
    snprintf(rid, sizeof(rid), "review:%s:%s", verb, event_id);
    wh_buf_json_str(ev, rid, strlen(rid));
    wh_buf_puts(ev, ",\"type\":\"mod_action\"");
    put_kv(ev, "platform", it->platform ? it->platform : "", false);
    put_kv(ev, "channel", it->channel ? it->channel : "", false);
    put_kv(ev, "moderator", moderator, false);
    put_kv(ev, "target", it->user, false);
    put_kv(ev, "action", verb, false);
    put_kv(ev, "ref_event", event_id, false);
    wh_buf_putc(ev, '}');
}

/* Nothing here waits for the database: an HTTP event loop calls it. The item is read (a
 * WAL read, which another process's write lock does not block), the event id claimed so
 * that a second verdict is refused at once, the mod_action decided and both rows queued;
 * the caller answers once *ticket_out is committed (or waits for it here when ticket_out is
 * NULL). The claim is released by the writer once the review row is committed, when the
 * item reads as resolved. */
int wh_service_review(wh_service *s, const char *event_id, bool approve, const char *moderator,
                      const char *note, wh_buf *out, uint64_t *ticket_out)
{
    if (ticket_out) *ticket_out = 0;
    int status = 200;
    bool nomem = false, reserved = false;
    wh_review_item it = {0};
    wh_buf ev, dec, rec;
    wh_buf_init(&ev);
    wh_buf_init(&dec);
    wh_buf_init(&rec);
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    review_claim *claim = claim_take(s, event_id, &nomem);
    if (!claim) {
        if (nomem) {
            json_error(out, "internal", "out of memory");
            status = 500;
        } else {
            json_error(out, "already_resolved", "a verdict on event '%s' is being recorded",
                       event_id);
            status = 409;
        }
        goto done;
    }
    switch (wh_store_review_get(s->store, event_id, &it)) {
    case WH_OK:
        break;
    case WH_EINVAL:
        json_error(out, "not_found", "event '%s' is not in the review queue", event_id);
        status = 404;
        goto done;
    case WH_ECORRUPT: /* inserted or altered outside whiply: no verdict may act on it */
        json_error(out, "review_item_not_in_audit",
                   "event '%s' is in the review queue but the audit trail does not vouch for "
                   "it ('whiply audit verify' says more)",
                   event_id);
        status = 409;
        goto done;
    default:
        json_error(out, "store_error", "the review queue cannot be read");
        status = 503;
        goto done;
    }
    if (strcmp(it.status, "pending") != 0) {
        json_error(out, "already_resolved", "event '%s' was already %s", event_id, it.status);
        status = 409;
        goto done;
    }
    /* The review row's room first: once the mod_action is decided (the behaviour state
     * changed), its row must not be refused. */
    if (!wh_store_reserve(s->store, 1)) {
        wh_service_count_rejected(s, WH_REJ_QUEUE);
        json_error(out, "busy", "the audit queue is full; retry after the Retry-After seconds");
        status = 429;
        goto done;
    }
    reserved = true;
    const char *verb = approve ? "approve" : "deny";
    /* The moderator's verdict reaches the behaviour state as a mod_action event (strikes,
     * reputation), decided and audited like any other. */
    review_event(&ev, &it, verb, event_id, moderator);
    /* through the ingest seam like any event; the review row's ticket below covers its rows */
    wh_ingest_req in = {.body = ev.p, .len = ev.len, .single = true, .out = &dec};
    wh_status sv = wh_ingest_submit(s, &in);
    if (sv != WH_OK) {
        bool busy = sv == WH_EBUSY;
        json_error(out, busy ? "busy" : "store_error", "the review could not be recorded; %s",
                   busy ? "retry after the Retry-After seconds" : "try again");
        status = busy ? 429 : 503;
        goto done;
    }
    wh_buf_putc(&rec, '{');
    put_kv(&rec, "event_id", event_id, true);
    put_kv(&rec, "action", verb, false);
    put_kv(&rec, "moderator", moderator, false);
    put_kv(&rec, "note", note, false);
    wh_buf_puts(&rec, ",\"decision\":");
    wh_buf_puts(&rec, it.decision ? it.decision : "null");
    wh_buf_putc(&rec, '}');
    b.reserved = true;
    wh_rec *r = wh_rec_add(&b, WH_REC_REVIEW);
    wh_rec_set(&b, r, WH_RF_EVENT_ID, event_id, strlen(event_id));
    if (it.channel) wh_rec_set(&b, r, WH_RF_CHANNEL, it.channel, strlen(it.channel));
    if (it.user) wh_rec_set(&b, r, WH_RF_USER, it.user, strlen(it.user));
    wh_rec_set(&b, r, WH_RF_ACTION, verb, strlen(verb));
    wh_rec_set(&b, r, WH_RF_BODY, rec.p, rec.len);
    wh_rec_set(&b, r, WH_RF_MODERATOR, moderator, strlen(moderator));
    if (note) wh_rec_set(&b, r, WH_RF_NOTE, note, strlen(note));
    /* after the mod_action's rows: its ticket covers them too */
    uint64_t t = rec.oom ? 0 : wh_store_submit(s->store, &b);
    if (!t) {
        json_error(out, "store_error", "the review could not be recorded; try again");
        status = 503;
        goto done;
    }
    reserved = false; /* used */
    claim->notice = (wh_store_notice){.ticket = t, .fn = claim_done, .ud = claim};
    if (wh_store_notify(s->store, &claim->notice)) claim = NULL; /* the writer releases it */
    wh_buf_puts(out, "{\"event_id\":");
    wh_buf_json_str(out, event_id, strlen(event_id));
    wh_buf_puts(out, ",\"status\":");
    wh_buf_puts(out, approve ? "\"approved\"" : "\"denied\"");
    wh_buf_puts(out, ",\"moderator\":");
    wh_buf_json_str(out, moderator, strlen(moderator));
    wh_buf_puts(out, ",\"mod_action\":");
    wh_buf_append(out, dec.p, dec.len && dec.p[dec.len - 1] == '\n' ? dec.len - 1 : dec.len);
    wh_buf_putc(out, '}');
    if (ticket_out) {
        *ticket_out = t;
    } else if (!wh_store_wait(s->store, t)) {
        out->len = 0;
        json_error(out, "audit_unavailable", "the audit store failed: %s",
                   wh_store_error(s->store) ?: "unknown");
        status = 503;
    }
done:
    if (reserved) wh_store_unreserve(s->store, 1);
    if (claim) claim_release(claim);
    wh_rec_batch_free(&b);
    wh_buf_free(&rec);
    wh_buf_free(&dec);
    wh_buf_free(&ev);
    wh_review_item_free(&it);
    return status;
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
    char err[512] = "";
    if (og->rs->state.enabled && ng->rs->state.enabled && s->state_path) {
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.reload", s->state_path);
        wh_shard *osh[64], *nsh[64];
        gen_shards(og, osh);
        gen_shards(ng, nsh);
        if (wh_state_save(osh, og->nshards, &og->rs->state, tmp, err, sizeof(err)) != WH_OK ||
            wh_state_load(nsh, ng->nshards, &ng->rs->state, tmp, err, sizeof(err)) != WH_OK)
            fprintf(stderr, "whiply: reload: the state did not carry over (%s)\n", err);
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

/* ---- metrics ---- */

void wh_service_observe(wh_service *s, wh_route r, int status, uint64_t ns)
{
    size_t i = 0;
    while (i < NS && status_codes[i] != status)
        i++;
    atomic_fetch_add_explicit(&s->http[r][i], 1, memory_order_relaxed);
    wh_histo_add(&s->http_lat[r], ns, 1);
}

void wh_service_count_ratelimit(wh_service *s, bool quota, bool allowed)
{
    atomic_fetch_add_explicit(&s->rl_answers[quota][allowed], 1, memory_order_relaxed);
}

void wh_service_count_rejected(wh_service *s, wh_reject why)
{
    atomic_fetch_add_explicit(&s->rejected[why], 1, memory_order_relaxed);
}

void wh_service_connections(wh_service *s, int delta)
{
    atomic_fetch_add(&s->connections, delta);
}

static void histo_out(wh_buf *b, const char *name, const char *label, const wh_histo *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= NB; i++) {
        cum += atomic_load_explicit(&h->b[i], memory_order_relaxed);
        if (i < NB)
            wh_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, *label ? "," : "",
                          wh_lat_bounds[i], (unsigned long long)cum);
        else
            wh_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, *label ? "," : "",
                          (unsigned long long)cum);
    }
    const char *o = *label ? "{" : "", *c = *label ? "}" : "";
    wh_buf_printf(b, "%s_sum%s%s%s %.9f\n%s_count%s%s%s %llu\n", name, o, label, c,
                  (double)atomic_load(&h->sum_ns) * 1e-9, name, o, label, c,
                  (unsigned long long)cum);
}

static void help(wh_buf *b, const char *name, const char *type, const char *text)
{
    wh_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

void wh_service_metrics(wh_service *s, wh_buf *b)
{
    help(b, "whiply_events_total", "counter", "Events decided.");
    wh_buf_printf(b, "whiply_events_total %llu\n", (unsigned long long)atomic_load(&s->events));
    help(b, "whiply_events_replayed_total", "counter",
         "Events sent again with a recent id: answered as before, not decided again.");
    wh_buf_printf(b, "whiply_events_replayed_total %llu\n",
                  (unsigned long long)atomic_load(&s->replayed));
    help(b, "whiply_event_errors_total", "counter", "Input lines that were not events.");
    wh_buf_printf(b, "whiply_event_errors_total %llu\n",
                  (unsigned long long)atomic_load(&s->errors));
    help(b, "whiply_decisions_total", "counter", "Decisions by action.");
    for (int a = 0; a < WH_ACT__COUNT; a++)
        wh_buf_printf(b, "whiply_decisions_total{action=\"%s\"} %llu\n", wh_action_names[a],
                      (unsigned long long)atomic_load(&s->actions[a]));
    help(b, "whiply_rule_hits_total", "counter", "Times a rule fired (enforced or shadow).");
    pthread_rwlock_rdlock(&s->gen_rw);
    gen_t *g = s->g;
    pthread_mutex_lock(&s->hits_lock);
    for (uint32_t ri = 0; ri < g->rs->nrules; ri++) {
        uint64_t n = 0;
        for (uint32_t k = 0; k < g->nshards; k++)
            n += wh_decider_hits(g->dec[k], ri);
        for (uint32_t i = 0; i < s->nold_hits; i++)
            if (!strcmp(s->old_hits[i].id, g->rs->rules[ri].id)) n += s->old_hits[i].n;
        wh_buf_puts(b, "whiply_rule_hits_total{rule=");
        wh_buf_json_str(b, g->rs->rules[ri].id, strlen(g->rs->rules[ri].id));
        wh_buf_printf(b, "} %llu\n", (unsigned long long)n);
    }
    pthread_mutex_unlock(&s->hits_lock);
    wh_shard_stats ss = {0};
    for (uint32_t k = 0; k < g->nshards; k++) {
        pthread_mutex_lock(&g->dec_lock[k]);
        wh_shard *sh = wh_decider_shard(g->dec[k]);
        if (sh) wh_shard_stats_add(sh, &ss);
        pthread_mutex_unlock(&g->dec_lock[k]);
    }
    help(b, "whiply_ruleset_info", "gauge", "The ruleset serving (its hash).");
    wh_buf_printf(b, "whiply_ruleset_info{ruleset=\"%s\"} 1\n", g->rs->hash);
    help(b, "whiply_score", "histogram",
         "Classifier scores of the messages decided since the rules were loaded.");
    for (uint32_t slot = 0; slot < g->rs->nscores; slot++) {
        uint64_t counts[WH_SCORE_BUCKETS] = {0}, sum = 0, cum = 0;
        for (uint32_t k = 0; k < g->nshards; k++)
            wh_decider_score_hist(g->dec[k], slot, counts, &sum);
        const char *sn = g->rs->score_names[slot];
        for (int i = 0; i < WH_SCORE_BUCKETS; i++) {
            cum += counts[i];
            wh_buf_puts(b, "whiply_score_bucket{score=");
            wh_buf_json_str(b, sn, strlen(sn));
            wh_buf_printf(b, ",le=\"%.1f\"} %llu\n", (double)(i + 1) / WH_SCORE_BUCKETS,
                          (unsigned long long)cum);
        }
        wh_buf_puts(b, "whiply_score_bucket{score=");
        wh_buf_json_str(b, sn, strlen(sn));
        wh_buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        wh_buf_puts(b, "whiply_score_sum{score=");
        wh_buf_json_str(b, sn, strlen(sn));
        wh_buf_printf(b, "} %.6f\n", (double)sum / 1e6);
        wh_buf_puts(b, "whiply_score_count{score=");
        wh_buf_json_str(b, sn, strlen(sn));
        wh_buf_printf(b, "} %llu\n", (unsigned long long)cum);
    }
    help(b, "whiply_model_info", "gauge", "The classifiers the rules load (checksum, labels).");
    for (uint32_t i = 0; i < g->rs->nmodels; i++) {
        const wh_rmodel *rm = &g->rs->models[i];
        wh_buf_puts(b, "whiply_model_info{model=");
        wh_buf_json_str(b, rm->name, strlen(rm->name));
        wh_buf_printf(b, ",checksum=\"%s\",labels=", wh_model_checksum(rm->model));
        wh_buf tmp;
        wh_buf_init(&tmp);
        for (uint32_t l = 0; l < wh_model_nlabels(rm->model); l++)
            wh_buf_printf(&tmp, "%s%s", l ? "," : "", wh_model_label(rm->model, l));
        wh_buf_json_str(b, tmp.p ? tmp.p : "", tmp.len);
        wh_buf_free(&tmp);
        wh_buf_puts(b, "} 1\n");
    }
    pthread_rwlock_unlock(&s->gen_rw);
    help(b, "whiply_state_entries", "gauge", "Behaviour state entries held.");
    wh_buf_printf(b, "whiply_state_entries{kind=\"user\"} %llu\n", (unsigned long long)ss.users);
    wh_buf_printf(b, "whiply_state_entries{kind=\"channel\"} %llu\n",
                  (unsigned long long)ss.channels);
    help(b, "whiply_state_evictions_total", "counter", "State entries evicted at the cap.");
    wh_buf_printf(b, "whiply_state_evictions_total{kind=\"user\"} %llu\n",
                  (unsigned long long)(ss.user_evictions + atomic_load(&s->old_user_evictions)));
    wh_buf_printf(
        b, "whiply_state_evictions_total{kind=\"channel\"} %llu\n",
        (unsigned long long)(ss.channel_evictions + atomic_load(&s->old_channel_evictions)));
    help(b, "whiply_state_bytes", "gauge", "Memory of the behaviour state tables.");
    wh_buf_printf(b, "whiply_state_bytes %llu\n", (unsigned long long)ss.bytes);

    wh_store_stats st;
    wh_store_stats_get(s->store, &st);
    help(b, "whiply_audit_queue_depth", "gauge", "Audit rows waiting to be written.");
    wh_buf_printf(b, "whiply_audit_queue_depth %llu\n", (unsigned long long)st.queued);
    help(b, "whiply_audit_queue_capacity", "gauge", "Most audit rows queued before 429.");
    wh_buf_printf(b, "whiply_audit_queue_capacity %lld\n", (long long)s->cfg->limits.queue);
    help(b, "whiply_audit_rows_total", "counter", "Audit rows committed since start.");
    wh_buf_printf(b, "whiply_audit_rows_total %llu\n", (unsigned long long)st.written);
    help(b, "whiply_audit_commits_total", "counter", "Audit transactions committed.");
    wh_buf_printf(b, "whiply_audit_commits_total %llu\n", (unsigned long long)st.commits);
    help(b, "whiply_audit_commit_seconds_total", "counter", "Time spent committing.");
    wh_buf_printf(b, "whiply_audit_commit_seconds_total %.6f\n", (double)st.commit_ns * 1e-9);
    help(b, "whiply_audit_head_seq", "gauge", "Sequence number of the newest audit row.");
    wh_buf_printf(b, "whiply_audit_head_seq %llu\n", (unsigned long long)st.last_seq);
    help(b, "whiply_audit_failed", "gauge", "1 when the audit store failed (writes refused).");
    wh_buf_printf(b, "whiply_audit_failed %d\n", wh_store_error(s->store) ? 1 : 0);
    wh_store_health sh;
    wh_store_health_get(s->store, &sh);
    help(b, "whiply_audit_damaged", "gauge",
         "1 when the audit trail's check found damage (/healthz says why).");
    wh_buf_printf(b, "whiply_audit_damaged %d\n", strcmp(sh.state, "damaged") == 0);
    help(b, "whiply_audit_check_done", "gauge", "1 once the background check of the trail ended.");
    wh_buf_printf(b, "whiply_audit_check_done %d\n", strcmp(sh.state, "checking") != 0);
    help(b, "whiply_audit_rows_verified", "gauge", "Audit rows the background check walked.");
    wh_buf_printf(b, "whiply_audit_rows_verified %llu\n", (unsigned long long)sh.rows_verified);
    help(b, "whiply_audit_signed_seq", "gauge", "Newest audit row covered by a signed checkpoint.");
    wh_buf_printf(b, "whiply_audit_signed_seq %llu\n", (unsigned long long)sh.signed_seq);
    help(b, "whiply_review_pending", "gauge", "Held events waiting for a moderator.");
    wh_buf_printf(b, "whiply_review_pending %llu\n", (unsigned long long)st.pending_reviews);

    help(b, "whiply_ratelimit_decisions_total", "counter", "Rate-limit service answers.");
    for (int q = 0; q < 2; q++)
        for (int a = 1; a >= 0; a--)
            wh_buf_printf(b, "whiply_ratelimit_decisions_total{kind=\"%s\",result=\"%s\"} %llu\n",
                          q ? "quota" : "gcra", a ? "allowed" : "limited",
                          (unsigned long long)atomic_load(&s->rl_answers[q][a]));
    wh_rl_stats rls;
    wh_rl_stats_get(s->rl, &rls);
    help(b, "whiply_ratelimit_keys", "gauge", "Keys held by the rate-limit service.");
    wh_buf_printf(b, "whiply_ratelimit_keys{kind=\"gcra\"} %llu\n", (unsigned long long)rls.keys);
    wh_buf_printf(b, "whiply_ratelimit_keys{kind=\"quota\"} %llu\n",
                  (unsigned long long)rls.quota_keys);
    help(b, "whiply_ratelimit_evictions_total", "counter", "Rate-limit keys evicted at the cap.");
    wh_buf_printf(b, "whiply_ratelimit_evictions_total %llu\n", (unsigned long long)rls.evictions);

    help(b, "whiply_reloads_total", "counter", "Rules reloads by result.");
    wh_buf_printf(b, "whiply_reloads_total{result=\"ok\"} %llu\n",
                  (unsigned long long)atomic_load(&s->reloads_ok));
    wh_buf_printf(b, "whiply_reloads_total{result=\"refused\"} %llu\n",
                  (unsigned long long)atomic_load(&s->reloads_failed));
    help(b, "whiply_rejected_total", "counter", "Requests refused by a limit.");
    static const char *const reject_names[WH_REJ__COUNT] = {
        "queue", "connections", "body", "events", "head_timeout", "idle", "evicted", "bad_request"};
    for (int i = 0; i < WH_REJ__COUNT; i++)
        wh_buf_printf(b, "whiply_rejected_total{reason=\"%s\"} %llu\n", reject_names[i],
                      (unsigned long long)atomic_load(&s->rejected[i]));
    help(b, "whiply_http_connections", "gauge", "Open HTTP connections.");
    wh_buf_printf(b, "whiply_http_connections %lld\n", (long long)atomic_load(&s->connections));
    help(b, "whiply_http_requests_total", "counter", "HTTP requests by route and status.");
    for (int r = 0; r < WH_RT__COUNT; r++)
        for (size_t i = 0; i <= NS; i++) {
            uint64_t n = atomic_load_explicit(&s->http[r][i], memory_order_relaxed);
            if (!n) continue;
            if (i < NS)
                wh_buf_printf(b, "whiply_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                              wh_route_names[r], status_codes[i], (unsigned long long)n);
            else
                wh_buf_printf(b, "whiply_http_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                              wh_route_names[r], (unsigned long long)n);
        }
    help(b, "whiply_http_request_duration_seconds", "histogram", "HTTP request latency.");
    for (int r = 0; r < WH_RT__COUNT; r++) {
        char label[64];
        snprintf(label, sizeof(label), "route=\"%s\"", wh_route_names[r]);
        histo_out(b, "whiply_http_request_duration_seconds", label, &s->http_lat[r]);
    }
    help(b, "whiply_engine_seconds_per_event", "histogram",
         "Analysis and decision time per event (a request's time over its events).");
    histo_out(b, "whiply_engine_seconds_per_event", "", &s->engine_lat);
}
