/* dash.c - the dashboard's side of the daemon (see dash.h). */
#define _GNU_SOURCE
#include "dash.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "assets.h"
#include "http.h"
#include "ingest.h"
#include "internal.h"
#include "outbox_impl.h"
#include "request.h"

/* One decided event, copied off the deciding path: kept for dry runs (its line), and what
 * the stream sends of it (the event's fields and its decision). */
enum {
    F_LINE,
    F_DECISION,
    F_TEXT,
    F_ID,
    F_PLATFORM,
    F_CHANNEL,
    F_USER_ID,
    F_USER_NAME,
    F_MODERATOR,
    F_TARGET,
    F_MOD_ACTION,
    F__COUNT
};
typedef struct {
    int64_t at_ms;
    uint8_t type, action;
    bool plain_allow;
    uint32_t off[F__COUNT + 1]; /* field i is data[off[i]..off[i+1]) */
    char data[];
} recent_t;

static wh_str field(const recent_t *r, int f)
{
    return (wh_str){r->data + r->off[f], r->off[f + 1] - r->off[f]};
}

static size_t recent_size(const recent_t *r)
{
    return sizeof(*r) + r->off[F__COUNT];
}

/* Decided events handed to the feed thread, in the order they were handed. */
typedef struct batch {
    struct batch *next;
    uint32_t n;
    recent_t *r[];
} batch_t;

typedef struct {
    char hash[17], previous[17], by[32];
    unsigned nrules;
    int64_t loaded_ms;
    char *source;
} ruleset_t;

/* A channel's panic switch, as its last panic decision set it. */
typedef struct {
    char platform[128], channel[256], by[64];
    int64_t until_ms, set_ms;
} panic_t;

static int panic_cmp(const void *a, const void *b)
{
    int64_t x = ((const panic_t *)a)->until_ms, y = ((const panic_t *)b)->until_ms;
    return (x > y) - (x < y);
}

struct wh_dash {
    wh_stream *stream;
    /* the handoff: deciding threads append batches, the feed thread takes them all */
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond, q_done;
    batch_t *q_head, *q_tail;
    uint32_t q_n;                  /* events waiting */
    uint64_t q_handed, q_finished; /* batches handed, and handled by the feed thread */
    bool q_quit;
    pthread_t feeder;
    _Atomic uint64_t lost;
    wh_sessions *sessions;
    wh_token_check_fn token_check;
    void *token_ud;
    pthread_mutex_t recent_lock;
    recent_t *recent[WH_DASH_RECENT];
    uint32_t rhead, rcount; /* oldest at rhead */
    size_t rbytes;
    panic_t panic[WH_DASH_PANICS]; /* channels whose panic switch is on (under recent_lock) */
    uint32_t npanic;
    pthread_mutex_t hist_lock;
    ruleset_t hist[WH_DASH_RULESETS]; /* newest at (hhead + hcount - 1) */
    uint32_t hhead, hcount;
};

static void *feed_main(void *arg);
static void panic_note(wh_dash *d, const recent_t *r);

wh_dash *wh_dash_new(void)
{
    wh_dash *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->stream = wh_stream_new(wh_action_names, WH_ACT__COUNT);
    d->sessions = wh_sessions_new();
    if (!d->stream || !d->sessions) goto fail;
    pthread_mutex_init(&d->recent_lock, NULL);
    pthread_mutex_init(&d->hist_lock, NULL);
    pthread_mutex_init(&d->q_lock, NULL);
    pthread_cond_init(&d->q_cond, NULL);
    pthread_cond_init(&d->q_done, NULL);
    if (pthread_create(&d->feeder, NULL, feed_main, d) != 0) {
        pthread_mutex_destroy(&d->recent_lock);
        pthread_mutex_destroy(&d->hist_lock);
        pthread_mutex_destroy(&d->q_lock);
        pthread_cond_destroy(&d->q_cond);
        pthread_cond_destroy(&d->q_done);
        goto fail;
    }
    return d;
fail:
    wh_stream_free(d->stream);
    wh_sessions_free(d->sessions);
    free(d);
    return NULL;
}

void wh_dash_free(wh_dash *d)
{
    if (!d) return;
    pthread_mutex_lock(&d->q_lock);
    d->q_quit = true;
    pthread_cond_signal(&d->q_cond);
    pthread_mutex_unlock(&d->q_lock);
    pthread_join(d->feeder, NULL); /* it handles what was handed first */
    pthread_mutex_destroy(&d->q_lock);
    pthread_cond_destroy(&d->q_cond);
    pthread_cond_destroy(&d->q_done);
    wh_stream_free(d->stream);
    wh_sessions_free(d->sessions);
    for (uint32_t i = 0; i < d->rcount; i++)
        free(d->recent[(d->rhead + i) % WH_DASH_RECENT]);
    for (uint32_t i = 0; i < d->hcount; i++)
        free(d->hist[(d->hhead + i) % WH_DASH_RULESETS].source);
    pthread_mutex_destroy(&d->recent_lock);
    pthread_mutex_destroy(&d->hist_lock);
    free(d);
}

wh_stream *wh_dash_stream(wh_dash *d)
{
    return d->stream;
}

wh_sessions *wh_dash_sessions(wh_dash *d)
{
    return d->sessions;
}

void wh_dash_set_token_check(wh_dash *d, wh_token_check_fn fn, void *ud)
{
    d->token_check = fn;
    d->token_ud = ud;
}

/* ---- what happened ---- */

static void put_str(wh_buf *b, const char *key, const char *p, size_t n, bool comma)
{
    if (comma) wh_buf_putc(b, ',');
    wh_buf_printf(b, "\"%s\":", key);
    wh_buf_json_str(b, p ? p : "", p ? n : 0);
}

static void put_cstr(wh_buf *b, const char *key, const char *s, bool comma)
{
    put_str(b, key, s, s ? strlen(s) : 0, comma);
}

static void put_wstr(wh_buf *b, const char *key, wh_str s, bool comma)
{
    put_str(b, key, s.p, s.n, comma);
}

void wh_dash_batch_add(wh_dash_batch *b, const wh_event *ev, wh_action action, bool notable,
                       const char *line, size_t line_len, const char *decision, size_t dn,
                       int64_t now_ms)
{
    if (b->oom) return;
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 16;
        void **v = realloc(b->r, sizeof(*v) * cap);
        if (!v) {
            b->oom = true;
            return;
        }
        b->r = v;
        b->cap = cap;
    }
    const wh_str f[F__COUNT] = {
        [F_LINE] = {line, (uint32_t)line_len},
        [F_DECISION] = {decision, (uint32_t)dn},
        [F_TEXT] = ev->text,
        [F_ID] = ev->id,
        [F_PLATFORM] = ev->platform,
        [F_CHANNEL] = ev->channel,
        [F_USER_ID] = ev->user_id,
        [F_USER_NAME] = ev->user_name,
        [F_MODERATOR] = ev->moderator,
        [F_TARGET] = ev->target,
        [F_MOD_ACTION] = ev->mod_action,
    };
    size_t sz = 0;
    for (int i = 0; i < F__COUNT; i++)
        sz += f[i].n;
    recent_t *r = malloc(sizeof(*r) + sz);
    if (!r) {
        b->oom = true;
        return;
    }
    r->at_ms = now_ms;
    r->type = (uint8_t)ev->type;
    r->action = (uint8_t)action;
    r->plain_allow = action == WH_ACT_ALLOW && !notable;
    uint32_t o = 0;
    for (int i = 0; i < F__COUNT; i++) {
        r->off[i] = o;
        if (f[i].n) memcpy(r->data + o, f[i].p, f[i].n);
        o += f[i].n;
    }
    r->off[F__COUNT] = o;
    b->r[b->n++] = r;
}

void wh_dash_hand_off(wh_dash *d, wh_dash_batch *b)
{
    if (!b->n) goto done;
    batch_t *bt = d ? malloc(sizeof(*bt) + sizeof(bt->r[0]) * b->n) : NULL;
    bool queued = false;
    if (bt) {
        bt->next = NULL;
        bt->n = b->n;
        memcpy(bt->r, b->r, sizeof(bt->r[0]) * b->n);
        pthread_mutex_lock(&d->q_lock);
        /* a feed thread that cannot keep up loses events; deciding never waits for it */
        if (d->q_n + b->n <= WH_DASH_HANDOFF && !d->q_quit) {
            if (d->q_tail)
                d->q_tail->next = bt;
            else
                d->q_head = bt;
            d->q_tail = bt;
            d->q_n += b->n;
            d->q_handed++;
            queued = true;
            pthread_cond_signal(&d->q_cond);
        }
        pthread_mutex_unlock(&d->q_lock);
    }
    if (!queued) {
        free(bt);
        for (uint32_t i = 0; i < b->n; i++)
            free(b->r[i]);
        if (d) {
            atomic_fetch_add_explicit(&d->lost, b->n, memory_order_relaxed);
            wh_stream_lost(d->stream, b->n);
        }
    }
done:
    free(b->r);
    *b = (wh_dash_batch){0};
}

/* The stream's "decision" event of r. */
static bool format_decision(void *ud, wh_buf *b)
{
    const recent_t *r = ud;
    wh_buf_puts(b, "{\"at_ms\":");
    wh_buf_i64(b, r->at_ms);
    wh_buf_puts(b, ",\"event\":{");
    put_wstr(b, "id", field(r, F_ID), false);
    put_cstr(b, "type", wh_event_type_names[r->type], true);
    put_wstr(b, "platform", field(r, F_PLATFORM), true);
    put_wstr(b, "channel", field(r, F_CHANNEL), true);
    wh_buf_puts(b, ",\"user\":{");
    put_wstr(b, "id", field(r, F_USER_ID), false);
    put_wstr(b, "name", field(r, F_USER_NAME), true);
    wh_buf_putc(b, '}');
    if (r->type == WH_EV_MOD_ACTION) {
        put_wstr(b, "moderator", field(r, F_MODERATOR), true);
        put_wstr(b, "target", field(r, F_TARGET), true);
        put_wstr(b, "action", field(r, F_MOD_ACTION), true);
    }
    put_wstr(b, "text", field(r, F_TEXT), true);
    wh_buf_puts(b, "},\"decision\":");
    wh_str dec = field(r, F_DECISION);
    wh_buf_append(b, dec.p, dec.n);
    wh_buf_putc(b, '}');
    return true;
}

/* Under recent_lock: r joins the recent events (the oldest go past a count or a size). */
static void recent_add(wh_dash *d, recent_t *r)
{
    size_t sz = r->off[F__COUNT];
    while (d->rcount && (d->rcount == WH_DASH_RECENT || d->rbytes + sz > WH_DASH_RECENT_BYTES)) {
        recent_t *o = d->recent[d->rhead];
        d->rbytes -= o->off[F__COUNT];
        free(o);
        d->rhead = (d->rhead + 1) % WH_DASH_RECENT;
        d->rcount--;
    }
    d->recent[(d->rhead + d->rcount++) % WH_DASH_RECENT] = r;
    d->rbytes += sz;
}

/* The feed thread: the stream (filters, sampling, formatting) and the recent events, off the
 * deciding threads. */
static void *feed_main(void *arg)
{
    wh_dash *d = arg;
    int64_t flushed = 0;
    bool unflushed = false;
    pthread_mutex_lock(&d->q_lock);
    for (;;) {
        /* The subscribers' connections are woken at most every WH_DASH_FLUSH_MS: one wake-up
         * and one large write for many events, not one for each (what it costs the daemon
         * with three dashboards open is in bench/RESULTS.md). */
        while (!d->q_head && !d->q_quit) {
            if (!unflushed) {
                pthread_cond_wait(&d->q_cond, &d->q_lock);
                continue;
            }
            int64_t wait = flushed + WH_DASH_FLUSH_MS - wh_now_ms();
            if (wait <= 0) break;
            struct timespec ts = wh_deadline_ms(wait);
            if (pthread_cond_timedwait(&d->q_cond, &d->q_lock, &ts) == ETIMEDOUT) break;
        }
        batch_t *bt = d->q_head;
        d->q_head = d->q_tail = NULL;
        d->q_n = 0;
        uint64_t handed = d->q_handed;
        bool quit = d->q_quit;
        pthread_mutex_unlock(&d->q_lock);
        int64_t now = wh_now_ms();
        for (batch_t *x = bt; x; x = x->next)
            for (uint32_t i = 0; i < x->n && wh_stream_active(d->stream); i++) {
                recent_t *r = x->r[i];
                wh_str ch = field(r, F_CHANNEL);
                wh_stream_item it = {ch.p, ch.n, r->action, r->plain_allow, now};
                wh_stream_offer(d->stream, &it, format_decision, r);
                unflushed = true;
            }
        if (unflushed && (now - flushed >= WH_DASH_FLUSH_MS || (!bt && !quit) || quit)) {
            wh_stream_flush(d->stream);
            flushed = now;
            unflushed = false;
        }
        if (bt) {
            pthread_mutex_lock(&d->recent_lock);
            for (batch_t *x = bt; x; x = x->next)
                for (uint32_t i = 0; i < x->n; i++) {
                    panic_note(d, x->r[i]);
                    recent_add(d, x->r[i]);
                }
            pthread_mutex_unlock(&d->recent_lock);
        }
        while (bt) {
            batch_t *nx = bt->next;
            free(bt);
            bt = nx;
        }
        pthread_mutex_lock(&d->q_lock);
        d->q_finished = handed;
        pthread_cond_broadcast(&d->q_done);
        if (quit && !d->q_head) break;
    }
    pthread_mutex_unlock(&d->q_lock);
    return NULL;
}

/* Waits until the feed thread has handled every batch handed before the call. */
static void feed_sync(wh_dash *d)
{
    pthread_mutex_lock(&d->q_lock);
    uint64_t want = d->q_handed;
    while (d->q_finished < want)
        pthread_cond_wait(&d->q_done, &d->q_lock);
    pthread_mutex_unlock(&d->q_lock);
}

void wh_dash_reviewed(wh_dash *d, const char *event_id, const char *status, const char *moderator,
                      const char *channel, const char *user)
{
    if (!d || !wh_stream_active(d->stream)) return;
    wh_buf b;
    wh_buf_init(&b);
    wh_buf_putc(&b, '{');
    put_cstr(&b, "event_id", event_id, false);
    put_cstr(&b, "status", status, true);
    put_cstr(&b, "moderator", moderator, true);
    put_cstr(&b, "channel", channel, true);
    put_cstr(&b, "user", user, true);
    wh_buf_puts(&b, ",\"at_ms\":");
    wh_buf_i64(&b, wh_now_ms());
    wh_buf_putc(&b, '}');
    if (!b.oom) wh_stream_publish(d->stream, "review", b.p, b.len);
    wh_buf_free(&b);
}

void wh_dash_ruleset_loaded(wh_dash *d, const char *hash, const char *previous, unsigned nrules,
                            const char *source, const char *why)
{
    if (!d) return;
    int64_t now = wh_now_ms();
    pthread_mutex_lock(&d->hist_lock);
    if (d->hcount == WH_DASH_RULESETS) {
        free(d->hist[d->hhead].source);
        d->hhead = (d->hhead + 1) % WH_DASH_RULESETS;
        d->hcount--;
    }
    ruleset_t *r = &d->hist[(d->hhead + d->hcount++) % WH_DASH_RULESETS];
    snprintf(r->hash, sizeof(r->hash), "%s", hash);
    snprintf(r->previous, sizeof(r->previous), "%s", previous ? previous : "");
    snprintf(r->by, sizeof(r->by), "%s", why);
    r->nrules = nrules;
    r->loaded_ms = now;
    r->source = source ? strdup(source) : NULL;
    pthread_mutex_unlock(&d->hist_lock);
    if (!previous || !wh_stream_active(d->stream)) return;
    char body[200];
    int k = snprintf(body, sizeof(body),
                     "{\"ruleset\":\"%s\",\"previous\":\"%s\",\"rules\":%u,\"by\":\"%s\","
                     "\"at_ms\":%lld}",
                     r->hash, r->previous, nrules, r->by, (long long)now);
    wh_stream_publish(d->stream, "reload", body, (size_t)k);
}

/* ---- HTTP ---- */

static int err(wh_buf *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int err(wh_buf *out, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wh_http_verror(out, status, code, fmt, ap);
    va_end(ap);
    return status;
}

static const char *arg(wh_dash_req *q, const char *name)
{
    const char *v = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

static const char *header(wh_dash_req *q, const char *name)
{
    return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

static wh_dash *dash_of(wh_dash_req *q)
{
    return wh_service_dash(q->svc);
}

void wh_dash_security_headers(struct MHD_Response *resp, bool page)
{
    /* The page loads its own script and style and nothing else: no inline script or style,
     * no other origin, no plugin, no framing. An API answer may load nothing at all. */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            page ? "default-src 'none'; script-src 'self'; style-src 'self'; "
                                   "img-src 'self' data:; connect-src 'self'; "
                                   "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
                                 : "default-src 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

const wh_asset *wh_asset_find(const char *name)
{
    for (unsigned i = 0; i < wh_nassets; i++)
        if (!strcmp(wh_assets[i].name, name)) return &wh_assets[i];
    return NULL;
}

int wh_dash_asset(wh_dash_req *q, wh_buf *out)
{
    const char *name = !strcmp(q->url, "/") ? "index.html" : q->url + strlen("/assets/");
    const wh_asset *a = wh_asset_find(name);
    if (!a || !strcmp(name, "index.html") != !strcmp(q->url, "/"))
        return err(out, 404, "not_found", "no such file: %s", q->url);
    char etag[40];
    snprintf(etag, sizeof(etag), "\"%s\"", wh_assets_tag);
    const char *inm = header(q, "If-None-Match");
    bool fresh = inm && !strcmp(inm, etag);
    const char *ae = header(q, "Accept-Encoding");
    bool gz = ae && strstr(ae, "gzip") && !fresh;
    q->resp =
        fresh ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
        : gz  ? MHD_create_response_from_buffer(a->gzlen, (void *)a->gz, MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!q->resp) return err(out, 500, "internal", "out of memory");
    MHD_add_response_header(q->resp, "Content-Type", a->mime);
    if (gz) MHD_add_response_header(q->resp, "Content-Encoding", "gzip");
    MHD_add_response_header(q->resp, "Vary", "Accept-Encoding");
    MHD_add_response_header(q->resp, "ETag", etag);
    /* revalidated each time (a 304 costs nothing): a new build is never served stale */
    MHD_add_response_header(q->resp, "Cache-Control", "no-cache");
    wh_dash_security_headers(q->resp, !strcmp(name, "index.html"));
    return fresh ? 304 : 200;
}

int wh_dash_stream_get(wh_dash_req *q, wh_buf *out)
{
    wh_stream_filter f;
    char msg[256];
    if (!wh_stream_filter_parse(arg(q, "channel"), arg(q, "action"), arg(q, "allow"),
                                wh_action_names, WH_ACT__COUNT, &f, msg, sizeof(msg)))
        return err(out, 400, "bad_request", "%s", msg);
    q->resp = wh_stream_response(dash_of(q)->stream, q->conn, &f);
    if (!q->resp) return err(out, 500, "internal", "out of memory");
    MHD_add_response_header(q->resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(q->resp, "Cache-Control", "no-store");
    MHD_add_response_header(q->resp, "X-Accel-Buffering", "no"); /* nginx: do not buffer */
    wh_dash_security_headers(q->resp, false);
    return 200;
}

static void put_scopes(wh_buf *out, unsigned scopes)
{
    char s[96];
    wh_scope_format(scopes, s, sizeof(s));
    wh_buf_puts(out, "\"scopes\":[");
    for (char *p = s, *tok; (tok = strsep(&p, ","));)
        if (*tok) wh_buf_printf(out, "%s\"%s\"", out->p[out->len - 1] == '[' ? "" : ",", tok);
    wh_buf_putc(out, ']');
}

/* Whether a Secure cookie can be set: the request came over TLS through a proxy. */
static bool over_tls(wh_dash_req *q)
{
    const char *p = header(q, "X-Forwarded-Proto");
    return p && !strcasecmp(p, "https");
}

int wh_dash_sign_in(wh_dash_req *q, wh_buf *out)
{
    wh_dash *d = dash_of(q);
    /* a sign-in from another site's page would sign the browser in as someone else */
    const char *origin = header(q, "Origin"), *host = header(q, "Host");
    const char *sep = origin ? strstr(origin, "://") : NULL;
    if (origin && (!sep || !host || strcmp(sep + 3, host)))
        return err(out, 403, "bad_origin", "sign-in from another origin (%s) is refused", origin);
    wh_signin_request rq;
    const char *code;
    char msg[256];
    if (!wh_signin_request_parse(q->body ? q->body : "", q->len, &rq, &code, msg, sizeof(msg)))
        return err(out, 400, code, "%s", msg);
    char name[64] = "";
    unsigned scopes =
        d->token_check ? d->token_check(d->token_ud, rq.token, rq.len, name, sizeof(name)) : 0;
    memset(rq.token, 0, sizeof(rq.token));
    if (!scopes) return err(out, 401, "unauthorized", "the token is not valid");
    char id[WH_SESSION_ID_HEX + 1];
    wh_session s;
    if (!wh_session_create(d->sessions, scopes, name, id, &s))
        return err(out, 500, "internal", "no random bytes for a session");
    snprintf(q->set_cookie, sizeof(q->set_cookie),
             WH_SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", id,
             (long long)(WH_SESSION_MAX_MS / 1000), over_tls(q) ? "; Secure" : "");
    wh_buf_puts(out, "{\"name\":");
    wh_buf_json_str(out, s.name, strlen(s.name));
    wh_buf_putc(out, ',');
    put_scopes(out, scopes);
    wh_buf_printf(out, ",\"csrf\":\"%s\"}", s.csrf);
    return 200;
}

int wh_dash_whoami(wh_dash_req *q, wh_buf *out)
{
    wh_buf_puts(out, "{\"name\":");
    wh_buf_json_str(out, q->who ? q->who : "", q->who ? strlen(q->who) : 0);
    wh_buf_putc(out, ',');
    put_scopes(out, q->scopes);
    if (q->session)
        wh_buf_printf(out, ",\"csrf\":\"%s\"}", q->session->csrf);
    else
        wh_buf_puts(out, ",\"csrf\":null}");
    return 200;
}

int wh_dash_sign_out(wh_dash_req *q, wh_buf *out)
{
    if (q->session_id) wh_session_drop(dash_of(q)->sessions, q->session_id, strlen(q->session_id));
    snprintf(q->set_cookie, sizeof(q->set_cookie),
             WH_SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    wh_buf_puts(out, "{\"signed_out\":true}");
    return 200;
}

/* ---- manual actions: a mod_action event through the ingest seam ---- */

/* A moderator's mod_action event (target: NULL for a channel's), decided through the ingest
 * seam and audited: 200 with its event in *ev and its decision line in *dec (*id its id), or an
 * error written to out. */
static int submit_mod_action(wh_dash_req *q, const char *action, const char *platform,
                             const char *channel, const char *target, int64_t duration_s,
                             const char *note, char id[96], wh_buf *ev, wh_buf *dec,
                             uint64_t *ticket, wh_buf *out)
{
    uint8_t rnd[6];
    char hex[13];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) return err(out, 500, "internal", "no random bytes");
    wh_hex_encode(rnd, sizeof(rnd), hex);
    hex[12] = 0;
    snprintf(id, 96, "manual:%s:%lld-%s", action, (long long)wh_now_ms(), hex);
    wh_buf_putc(ev, '{');
    put_cstr(ev, "id", id, false);
    put_cstr(ev, "type", "mod_action", true);
    put_cstr(ev, "platform", platform, true);
    put_cstr(ev, "channel", channel, true);
    put_cstr(ev, "moderator", q->who ? q->who : "dashboard", true);
    if (target) put_cstr(ev, "target", target, true);
    put_cstr(ev, "action", action, true);
    if (duration_s || !target) wh_buf_printf(ev, ",\"duration_s\":%lld", (long long)duration_s);
    if (note) put_cstr(ev, "note", note, true);
    wh_buf_putc(ev, '}');
    wh_ingest_req in = {.body = ev->p, .len = ev->len, .single = true, .out = dec};
    wh_status st = ev->oom ? WH_ENOMEM : wh_ingest_submit(q->svc, &in);
    *ticket = in.ticket;
    if (st == WH_EBUSY)
        return err(out, 429, "busy",
                   "the audit queue is full; retry after the Retry-After seconds");
    if (st != WH_OK)
        return err(out, wh_http_status(st), "store_error", "the action could not be recorded: %s",
                   wh_status_str(st));
    if (in.nerrors)
        return err(out, 400, "bad_event", "the action's event was refused: %.*s",
                   (int)(dec->len > 300 ? 300 : dec->len), dec->p);
    if (dec->len && dec->p[dec->len - 1] == '\n') dec->len--;
    return 200;
}

int wh_dash_action(wh_dash_req *q, wh_buf *out)
{
    wh_action_request rq;
    const char *code;
    char msg[256], id[96];
    if (!wh_action_request_parse(q->body ? q->body : "", q->len, &rq, &code, msg, sizeof(msg)))
        return err(out, 400, code, "%s", msg);
    wh_buf ev, dec;
    wh_buf_init(&ev);
    wh_buf_init(&dec);
    uint64_t ticket = 0;
    int status = submit_mod_action(q, rq.action, rq.platform, rq.channel, rq.user, rq.duration_s,
                                   rq.has_note ? rq.note : NULL, id, &ev, &dec, &ticket, out);
    /* The moderator's action is carried out on its platform too, when whiply acts there: an
     * operation of the outbox, requested as POST /v1/actions would (the mod_action event
     * above only updates whiply's standing of the user; a human's own action on the
     * platform arrives as such an event and is not carried out again). */
    wh_buf opb, opout;
    wh_buf_init(&opb);
    wh_buf_init(&opout);
    uint64_t op_ticket = 0;
    wh_outbox *ob = wh_service_outbox(q->svc);
    if (status == 200 && wh_outbox_has_executor(ob, rq.platform)) {
        wh_buf_putc(&opb, '{');
        put_cstr(&opb, "id", id, false);
        put_cstr(&opb, "kind", rq.action, true);
        put_cstr(&opb, "platform", rq.platform, true);
        put_cstr(&opb, "channel", rq.channel, true);
        put_cstr(&opb, "user_id", rq.user, true);
        put_cstr(&opb, "moderator", q->who ? q->who : "dashboard", true);
        if (rq.has_note) put_cstr(&opb, "reason", rq.note, true);
        if (rq.duration_s) wh_buf_printf(&opb, ",\"duration_s\":%lld", (long long)rq.duration_s);
        wh_buf_putc(&opb, '}');
        int ost = opb.oom ? 500 : wh_outbox_request(ob, opb.p, opb.len, &opout, &op_ticket);
        if (ost >= 300) { /* recorded in whiply, not sent to the platform: say so */
            opout.len = 0;
            wh_buf_puts(&opout, "{\"error\":\"the operation could not be queued\"}");
            op_ticket = 0;
        }
    }
    if (status == 200) {
        q->ticket = ticket > op_ticket ? ticket : op_ticket;
        wh_buf_puts(out, "{\"event\":");
        wh_buf_append(out, ev.p, ev.len);
        wh_buf_puts(out, ",\"decision\":");
        wh_buf_append(out, dec.p, dec.len);
        if (opout.len) {
            wh_buf_puts(out, ",\"operation\":");
            wh_buf_append(out, opout.p, opout.len);
        }
        wh_buf_putc(out, '}');
    }
    wh_buf_free(&opb);
    wh_buf_free(&opout);
    wh_buf_free(&ev);
    wh_buf_free(&dec);
    return status;
}

/* ---- the panic switch ---- */

/* The number after "key": in a decision line, or INT64_MIN when it has none. */
static int64_t decision_i64(const char *p, size_t n, const char *key)
{
    char pat[40];
    int pl = snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *at = memmem(p, n, pat, (size_t)pl);
    if (!at || at + pl >= p + n) return INT64_MIN;
    char tmp[24];
    size_t k = 0;
    for (const char *c = at + pl;
         c < p + n && k < sizeof(tmp) - 1 && (*c == '-' || (*c >= '0' && *c <= '9')); c++)
        tmp[k++] = *c;
    tmp[k] = 0;
    return k ? strtoll(tmp, NULL, 10) : INT64_MIN;
}

static bool same(const char *s, wh_str w)
{
    return strlen(s) == w.n && !memcmp(s, w.p, w.n);
}

/* Under recent_lock, on the feed thread: a decided panic mod_action sets its channel's row
 * (a decision without panic_until changed nothing: no rule looks at `panic`). */
static void panic_note(wh_dash *d, const recent_t *r)
{
    if (r->type != WH_EV_MOD_ACTION) return;
    wh_str a = field(r, F_MOD_ACTION), dec = field(r, F_DECISION);
    if (a.n != 5 || memcmp(a.p, "panic", 5)) return;
    int64_t until = decision_i64(dec.p, dec.n, "panic_until");
    if (until == INT64_MIN) return;
    wh_str pf = field(r, F_PLATFORM), ch = field(r, F_CHANNEL), by = field(r, F_MODERATOR);
    panic_t *p = NULL;
    for (uint32_t i = 0; i < d->npanic && !p; i++)
        if (same(d->panic[i].platform, pf) && same(d->panic[i].channel, ch)) p = &d->panic[i];
    if (!p && until == 0) return;
    if (!p) {
        if (d->npanic == WH_DASH_PANICS) { /* the one that ends first makes room */
            uint32_t o = 0;
            for (uint32_t i = 1; i < d->npanic; i++)
                if (d->panic[i].until_ms < d->panic[o].until_ms) o = i;
            p = &d->panic[o];
        } else {
            p = &d->panic[d->npanic++];
        }
        snprintf(p->platform, sizeof(p->platform), "%.*s", (int)pf.n, pf.p);
        snprintf(p->channel, sizeof(p->channel), "%.*s", (int)ch.n, ch.p);
    }
    if (until == 0) { /* switched off: the row goes */
        *p = d->panic[--d->npanic];
        return;
    }
    p->until_ms = until;
    p->set_ms = r->at_ms;
    snprintf(p->by, sizeof(p->by), "%.*s", (int)by.n, by.p);
}

/* POST /v1/channels/CHANNEL/panic: {"for_s": N, "platform": optional}. */
int wh_dash_panic(wh_dash_req *q, wh_buf *out)
{
    static const char pre[] = "/v1/channels/", suf[] = "/panic";
    size_t ul = strlen(q->url), pl = sizeof(pre) - 1, sl = sizeof(suf) - 1;
    if (ul <= pl + sl || strcmp(q->url + ul - sl, suf))
        return err(out, 404, "not_found",
                   "no such endpoint: POST /v1/channels/CHANNEL/panic (the channel URL-encoded, "
                   "%%23 for #)");
    char channel[256];
    size_t cl = ul - pl - sl;
    if (cl >= sizeof(channel)) return err(out, 400, "bad_field", "the channel is over 255 bytes");
    memcpy(channel, q->url + pl, cl);
    channel[cl] = 0;
    wh_panic_request rq;
    const char *code;
    char msg[256], id[96];
    if (!wh_panic_request_parse(q->body ? q->body : "", q->len, &rq, &code, msg, sizeof(msg)))
        return err(out, 400, code, "%s", msg);
    wh_buf ev, dec;
    wh_buf_init(&ev);
    wh_buf_init(&dec);
    uint64_t ticket = 0;
    int status = submit_mod_action(q, "panic", rq.platform, channel, NULL, rq.for_s,
                                   rq.has_note ? rq.note : NULL, id, &ev, &dec, &ticket, out);
    if (status == 200) {
        q->ticket = ticket;
        int64_t until = decision_i64(dec.p, dec.len, "panic_until");
        wh_buf_puts(out, "{\"event\":");
        wh_buf_append(out, ev.p, ev.len);
        wh_buf_puts(out, ",\"decision\":");
        wh_buf_append(out, dec.p, dec.len);
        wh_buf_puts(out, ",\"panic_until\":");
        if (until == INT64_MIN) {
            wh_buf_puts(out, "null,\"warning\":\"no rule of the serving ruleset has a 'panic' "
                             "condition: the switch changes nothing\"");
        } else {
            wh_buf_i64(out, until);
        }
        wh_buf_putc(out, '}');
    }
    wh_buf_free(&ev);
    wh_buf_free(&dec);
    return status;
}

/* GET /v1/channels: the channels whose panic switch is on (as the decisions since the start
 * set it), soonest to end first. */
int wh_dash_channels(wh_dash_req *q, wh_buf *out)
{
    wh_dash *d = dash_of(q);
    feed_sync(d); /* a switch decided before this request is in the rows */
    int64_t now = wh_now_ms();
    pthread_mutex_lock(&d->recent_lock);
    panic_t rows[WH_DASH_PANICS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->npanic; i++)
        if (d->panic[i].until_ms > now) rows[n++] = d->panic[i];
    pthread_mutex_unlock(&d->recent_lock);
    qsort(rows, n, sizeof(rows[0]), panic_cmp);
    wh_buf_puts(out, "{\"channels\":[");
    for (uint32_t i = 0; i < n; i++) {
        wh_buf_puts(out, i ? ",{" : "{");
        put_cstr(out, "platform", rows[i].platform, false);
        put_cstr(out, "channel", rows[i].channel, true);
        wh_buf_puts(out, ",\"panic_until\":");
        wh_buf_i64(out, rows[i].until_ms);
        wh_buf_puts(out, ",\"since_ms\":");
        wh_buf_i64(out, rows[i].set_ms);
        put_cstr(out, "by", rows[i].by, true);
        wh_buf_putc(out, '}');
    }
    wh_buf_puts(out, "]}");
    return 200;
}

/* ---- the mod log ---- */

/* A time argument: unix milliseconds, RFC 3339, or a duration ago (10m); false if none. */
static bool time_arg(const char *v, int64_t *ms)
{
    size_t n = strlen(v);
    if (strspn(v, "0123456789") == n) {
        *ms = strtoll(v, NULL, 10);
        return true;
    }
    if (wh_parse_rfc3339(v, n, ms)) return true;
    int64_t ago;
    if (!wh_parse_duration(v, n, &ago)) return false;
    *ms = wh_now_ms() - ago;
    return true;
}

int wh_dash_audit(wh_dash_req *q, wh_buf *out)
{
    wh_audit_filter f = {.kind = arg(q, "kind"),
                         .event_id = arg(q, "event_id"),
                         .channel = arg(q, "channel"),
                         .user = arg(q, "user"),
                         .action = arg(q, "action"),
                         .rule = arg(q, "rule"),
                         .moderator = arg(q, "moderator"),
                         .limit = 100};
    static const char *const kinds[] = {"decision", "review", "reload", "system", "checkpoint"};
    if (f.kind) {
        bool ok = false;
        for (size_t i = 0; i < WH_ARRAY_LEN(kinds); i++)
            ok |= !strcmp(f.kind, kinds[i]);
        if (!ok)
            return err(out, 400, "bad_argument",
                       "'kind' must be decision, review, reload, system or checkpoint, not '%s'",
                       f.kind);
    }
    const char *since = arg(q, "since"), *until = arg(q, "until"), *limit = arg(q, "limit"),
               *before = arg(q, "before"), *format = arg(q, "format");
    if (since && !time_arg(since, &f.since_ms))
        return err(out, 400, "bad_argument",
                   "'since' must be RFC 3339, unix milliseconds or a duration ago (10m), not '%s'",
                   since);
    if (until && !time_arg(until, &f.until_ms))
        return err(out, 400, "bad_argument",
                   "'until' must be RFC 3339, unix milliseconds or a duration ago (10m), not '%s'",
                   until);
    if (format && !strcmp(format, "ndjson"))
        f.format = WH_AUDIT_NDJSON;
    else if (format && !strcmp(format, "csv"))
        f.format = WH_AUDIT_CSV;
    else if (format && strcmp(format, "json"))
        return err(out, 400, "bad_argument", "'format' must be json, ndjson or csv, not '%s'",
                   format);
    int max = f.format == WH_AUDIT_JSON ? 1000 : 100000;
    if (f.format != WH_AUDIT_JSON) f.limit = max;
    if (limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*end || v < 1 || v > max)
            return err(out, 400, "bad_argument", "'limit' must be 1 to %d, not '%s'", max, limit);
        f.limit = (int)v;
    }
    if (before) {
        char *end;
        long long v = strtoll(before, &end, 10);
        if (*end || v < 1)
            return err(out, 400, "bad_argument", "'before' must be a row number, not '%s'", before);
        f.before_seq = v;
    }
    if (wh_store_audit_search(wh_service_store(q->svc), &f, out) != WH_OK)
        return err(out, 503, "store_error", "the audit trail cannot be read");
    if (f.format == WH_AUDIT_NDJSON) q->content_type = "application/x-ndjson";
    if (f.format == WH_AUDIT_CSV) q->content_type = "text/csv; charset=utf-8";
    return 200;
}

int wh_dash_verify(wh_dash_req *q, wh_buf *out)
{
    const wh_config *cfg = wh_service_config(q->svc);
    char *db = NULL, *report = NULL;
    size_t rlen = 0;
    if (asprintf(&db, "%s/whiply.db", cfg->data) < 0) return err(out, 500, "internal", "memory");
    FILE *f = open_memstream(&report, &rlen);
    if (!f) {
        free(db);
        return err(out, 500, "internal", "out of memory");
    }
    wh_verify_opts vo = {0};
    int64_t t0 = wh_now_ms();
    int rc = wh_audit_verify(db, &vo, f);
    fclose(f);
    wh_buf_printf(out, "{\"result\":%d,\"ok\":%s,\"took_ms\":%lld,\"report\":", rc,
                  rc == 0 ? "true" : "false", (long long)(wh_now_ms() - t0));
    wh_buf_json_str(out, report ? report : "", rlen);
    wh_store_health h;
    wh_store_health_get(wh_service_store(q->svc), &h);
    wh_buf_printf(out,
                  ",\"background\":{\"state\":\"%s\",\"rows_verified\":%llu,\"reason\":", h.state,
                  (unsigned long long)h.rows_verified);
    wh_buf_json_str(out, h.reason, strlen(h.reason));
    wh_buf_puts(out, "},\"checkpoint\":");
    size_t mark = out->len;
    if (wh_store_checkpoint_json(wh_service_store(q->svc), out) != WH_OK) {
        out->len = mark;
        wh_buf_puts(out, "null");
    }
    wh_buf_putc(out, '}');
    free(report);
    free(db);
    return 200;
}

/* ---- rules: the history and the dry run ---- */

int wh_dash_history(wh_dash_req *q, wh_buf *out)
{
    wh_dash *d = dash_of(q);
    wh_buf_puts(out, "{\"rulesets\":[");
    pthread_mutex_lock(&d->hist_lock);
    for (uint32_t i = 0; i < d->hcount; i++) {
        const ruleset_t *r = &d->hist[(d->hhead + d->hcount - 1 - i) % WH_DASH_RULESETS];
        wh_buf_puts(out, i ? ",{" : "{");
        put_cstr(out, "ruleset", r->hash, false);
        put_cstr(out, "previous", r->previous[0] ? r->previous : NULL, true);
        put_cstr(out, "by", r->by, true);
        wh_buf_printf(out, ",\"rules\":%u,\"loaded_at_ms\":%lld,\"source\":", r->nrules,
                      (long long)r->loaded_ms);
        if (r->source)
            wh_buf_json_str(out, r->source, strlen(r->source));
        else
            wh_buf_puts(out, "null");
        wh_buf_putc(out, '}');
    }
    pthread_mutex_unlock(&d->hist_lock);
    wh_buf_puts(out, "]}");
    return 200;
}

/* The "rules":[...] of a decision line, as text ("" when it has none). */
static wh_str rules_of(const char *dec, size_t n)
{
    static const char key[] = "\"rules\":[";
    const char *p = memmem(dec, n, key, sizeof(key) - 1);
    if (!p) return (wh_str){"", 0};
    p += sizeof(key) - 1;
    const char *e = memchr(p, ']', (size_t)(dec + n - p));
    return e ? (wh_str){p, (uint32_t)(e - p)} : (wh_str){"", 0};
}

static wh_action action_of(const char *dec, size_t n)
{
    static const char key[] = "\"action\":\"";
    const char *p = memmem(dec, n, key, sizeof(key) - 1);
    if (p) {
        p += sizeof(key) - 1;
        for (int a = 0; a < WH_ACT__COUNT; a++) {
            size_t l = strlen(wh_action_names[a]);
            if ((size_t)(dec + n - p) > l && !memcmp(p, wh_action_names[a], l) && p[l] == '"')
                return (wh_action)a;
        }
    }
    return WH_ACT_ALLOW;
}

/* The length of the line at p (to its newline). */
static size_t line_len(const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    return nl ? (size_t)(nl - p) : n;
}

#define DRY_MAX_RULES 256
#define DRY_EXAMPLES 5

typedef struct {
    char id[128];
    uint32_t changed;
    uint32_t nex;
    uint32_t ex[DRY_EXAMPLES]; /* indexes into the snapshot */
} dry_rule;

typedef struct {
    dry_rule *v;
    uint32_t n;
} dry_rules;

static void dry_count(dry_rules *dr, const char *id, size_t n, uint32_t idx)
{
    dry_rule *r = NULL;
    for (uint32_t i = 0; i < dr->n && !r; i++)
        if (strlen(dr->v[i].id) == n && !memcmp(dr->v[i].id, id, n)) r = &dr->v[i];
    if (!r && dr->n < DRY_MAX_RULES) {
        r = &dr->v[dr->n++];
        snprintf(r->id, sizeof(r->id), "%.*s", (int)n, id);
    }
    if (!r) return;
    r->changed++;
    if (r->nex < DRY_EXAMPLES) r->ex[r->nex++] = idx;
}

/* Whether the quoted id q[0..n) (with its quotes) is one of list's items. */
static bool in_list(wh_str list, const char *q, size_t n)
{
    for (const char *p = list.p, *end = list.p + list.n; p < end;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t l = (size_t)((c ? c : end) - p);
        if (l == n && !memcmp(p, q, n)) return true;
        p += l + 1;
    }
    return false;
}

/* Each rule of a that is not in b, counted for event idx; how many there were. */
static int dry_diff(dry_rules *dr, wh_str a, wh_str b, uint32_t idx)
{
    int k = 0;
    for (const char *p = a.p, *end = a.p + a.n; p < end;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t l = (size_t)((c ? c : end) - p);
        if (l >= 2 && !in_list(b, p, l)) {
            dry_count(dr, p + 1, l - 2, idx);
            k++;
        }
        p += l + 1;
    }
    return k;
}

static void put_side(wh_buf *out, const char *key, wh_action a, wh_str rules)
{
    wh_buf_printf(out, ",\"%s\":{\"action\":\"%s\",\"rules\":[", key, wh_action_names[a]);
    wh_buf_append(out, rules.p, rules.n);
    wh_buf_puts(out, "]}");
}

int wh_dash_dryrun(wh_dash_req *q, wh_buf *out)
{
    wh_service *s = q->svc;
    wh_dash *d = dash_of(q);
    wh_buf diags;
    wh_buf_init(&diags);
    wh_ruleset *cand = wh_service_load_text(s, q->body ? q->body : "", q->len, &diags);
    if (!cand) {
        out->len = 0;
        wh_buf_puts(out, "{\"error\":{\"code\":\"rules_invalid\",\"message\":\"the posted rules do "
                         "not load; the diagnostics say why\",\"diagnostics\":");
        wh_buf_append(out, diags.p, diags.len);
        wh_buf_puts(out, "}}");
        wh_buf_free(&diags);
        return 422;
    }
    wh_buf_free(&diags);
    pthread_rwlock_rdlock(&s->gen_rw);
    wh_ruleset *cur = s->g->rs;
    wh_ruleset_retain(cur);
    pthread_rwlock_unlock(&s->gen_rw);
    /* A copy of the recent events (the ring moves on meanwhile), with every event decided
     * before this request. */
    feed_sync(d);
    pthread_mutex_lock(&d->recent_lock);
    uint32_t n = d->rcount;
    recent_t **snap = malloc(sizeof(*snap) * (n ? n : 1));
    for (uint32_t i = 0; snap && i < n; i++) {
        recent_t *r = d->recent[(d->rhead + i) % WH_DASH_RECENT];
        if ((snap[i] = malloc(recent_size(r)))) memcpy(snap[i], r, recent_size(r));
    }
    pthread_mutex_unlock(&d->recent_lock);
    int status = 200;
    /* Both rulesets decide the same events in order from an empty state, each in a scratch
     * engine of its own: the differences are the rules', not the state's. */
    wh_worker *wa = wh_worker_new(cur, &s->eo), *wb = wh_worker_new(cand, &s->eo);
    uint32_t *changed = malloc(sizeof(*changed) * (n ? n : 1));
    dry_rules dr = {calloc(DRY_MAX_RULES, sizeof(dry_rule)), 0};
    wh_buf da, db;
    wh_buf_init(&da);
    wh_buf_init(&db);
    if (!snap || !wa || !wb || !changed || !dr.v) {
        status = err(out, 500, "internal", "out of memory");
        goto done;
    }
    uint64_t counts[2][WH_ACT__COUNT] = {{0}};
    uint32_t nchanged = 0, decided = 0;
    /* the decisions of each event are kept for the examples: offsets into da and db */
    uint32_t *offa = malloc(sizeof(uint32_t) * 2 * (n ? n : 1)), *offb = offa ? offa + n : NULL;
    if (!offa) {
        status = err(out, 500, "internal", "out of memory");
        goto done;
    }
    uint64_t t0 = wh_mono_ns();
    for (uint32_t i = 0; i < n; i++) {
        recent_t *r = snap[i];
        if (!r) continue;
        offa[i] = (uint32_t)da.len;
        offb[i] = (uint32_t)db.len;
        wh_str line = field(r, F_LINE);
        wh_outcome oa = wh_worker_line(wa, line.p, line.n, i + 1, r->at_ms, &da);
        wh_outcome ob = wh_worker_line(wb, line.p, line.n, i + 1, r->at_ms, &db);
        if (oa.error || ob.error) continue;
        decided++;
        counts[0][oa.action]++;
        counts[1][ob.action]++;
        wh_str ra = rules_of(da.p + offa[i], da.len - offa[i]);
        wh_str rb = rules_of(db.p + offb[i], db.len - offb[i]);
        if (oa.action == ob.action && ra.n == rb.n && !memcmp(ra.p, rb.p, ra.n)) continue;
        changed[nchanged++] = i;
        /* a change is the doing of the rules that came or went; else (the same rules, another
         * action) of the rules that decide now */
        int k = dry_diff(&dr, rb, ra, i);
        k += dry_diff(&dr, ra, rb, i);
        if (!k) dry_diff(&dr, rb.n ? rb : ra, (wh_str){"", 0}, i);
    }
    uint64_t took_us = (wh_mono_ns() - t0) / 1000;
    wh_buf_printf(out, "{\"events\":%u,\"decided\":%u,\"changed\":%u,\"took_us\":%llu", n, decided,
                  nchanged, (unsigned long long)took_us);
    put_cstr(out, "serving", cur->hash, true);
    put_cstr(out, "candidate", cand->hash, true);
    for (int side = 0; side < 2; side++) {
        wh_buf_printf(out, ",\"%s\":{", side ? "after" : "before");
        for (int a = 0; a < WH_ACT__COUNT; a++)
            wh_buf_printf(out, "%s\"%s\":%llu", a ? "," : "", wh_action_names[a],
                          (unsigned long long)counts[side][a]);
        wh_buf_putc(out, '}');
    }
    wh_buf_puts(out, ",\"by_rule\":[");
    for (uint32_t k = 0; k < dr.n; k++) {
        dry_rule *ru = &dr.v[k];
        wh_buf_puts(out, k ? ",{" : "{");
        put_cstr(out, "rule", ru->id, false);
        wh_buf_printf(out, ",\"changed\":%u,\"examples\":[", ru->changed);
        for (uint32_t e = 0; e < ru->nex; e++) {
            uint32_t i = ru->ex[e];
            recent_t *r = snap[i];
            const char *pa = da.p + offa[i], *pb = db.p + offb[i];
            size_t la = line_len(pa, da.len - offa[i]), lb = line_len(pb, db.len - offb[i]);
            wh_buf_puts(out, e ? ",{" : "{");
            /* the id and where, read back from the decision (the event's own id) */
            static const char idk[] = "{\"id\":";
            if (la > sizeof(idk) && !memcmp(pa, idk, sizeof(idk) - 1)) {
                const char *q0 = pa + sizeof(idk) - 1;
                const char *q1 = memchr(q0 + 1, '"', la - (sizeof(idk) - 1) - 1);
                while (q1 && q1[-1] == '\\')
                    q1 = memchr(q1 + 1, '"', (size_t)(pa + la - q1 - 1));
                wh_buf_puts(out, "\"id\":");
                if (q1)
                    wh_buf_append(out, q0, (size_t)(q1 - q0 + 1));
                else
                    wh_buf_puts(out, "null");
            } else {
                wh_buf_puts(out, "\"id\":null");
            }
            put_wstr(out, "text", field(r, F_TEXT), true);
            put_side(out, "before", action_of(pa, la), rules_of(pa, la));
            put_side(out, "after", action_of(pb, lb), rules_of(pb, lb));
            wh_buf_putc(out, '}');
        }
        wh_buf_puts(out, "]}");
    }
    wh_buf_puts(out, "]}");
    if (out->oom) status = err(out, 500, "internal", "out of memory");
    free(offa);
done:
    wh_buf_free(&da);
    wh_buf_free(&db);
    free(dr.v);
    free(changed);
    if (wa) wh_worker_free(wa);
    if (wb) wh_worker_free(wb);
    for (uint32_t i = 0; snap && i < n; i++)
        free(snap[i]);
    free(snap);
    wh_ruleset_release(cur);
    wh_ruleset_release(cand);
    return status;
}
