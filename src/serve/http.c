/* http.c - see http.h. */
#define _GNU_SOURCE
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "request.h"
#include "io/event.h"
#include "text/utf8.h"

struct wh_http {
    struct MHD_Daemon *d;
    wh_service *svc;
    const wh_config *cfg;
    uint8_t admin[32];
    bool has_admin;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int inflight;
    _Atomic int conns;
    _Atomic bool stopping;
    /* Slow requests (a reload, a decisions query) run on these threads, not on an event
     * loop: their connections are suspended meanwhile, so the loop goes on serving. */
    pthread_t slow_threads[WH_HTTP_SLOW_THREADS];
    int nslow;
    pthread_mutex_t slow_lock;
    pthread_cond_t slow_cond;
    struct req *slow_head, *slow_tail; /* the queue, oldest first */
    bool slow_quit;
};

typedef struct req req_t;
typedef int (*handler_fn)(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out);

typedef struct {
    const char *method;
    const char *path;
    bool prefix; /* path is a prefix (an id follows) */
    wh_route metric;
    unsigned scope; /* 0: any valid token; UINT32_MAX: none needed */
    handler_fn fn;
    bool slow; /* can take long (a compile, a scan): runs on a slow-request thread */
} route_t;

struct req {
    struct MHD_Connection *conn;
    const route_t *rt;
    /* A request whose answer waits for its audit rows: the connection is suspended (its
     * thread serves other connections) and resumed by the audit writer's notice. */
    uint64_t wait_ticket;
    bool pending;
    _Atomic bool ok;
    int status;
    wh_buf answer;
    wh_store_notice notice;
    wh_buf body;
    bool too_big;
    bool counted; /* in h->inflight */
    bool late;    /* arrived while shutting down */
    uint64_t t0;
    const char *content_type; /* of the response */
    const char *url;
    req_t *next; /* in the slow-request queue */
};

#define NO_AUTH UINT32_MAX

static int error(wh_buf *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int error(wh_buf *out, int status, const char *code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    out->len = 0;
    wh_buf_puts(out, "{\"error\":{\"code\":\"");
    wh_buf_puts(out, code);
    wh_buf_puts(out, "\",\"message\":");
    wh_buf_json_str(out, msg, strlen(msg));
    wh_buf_puts(out, "}}");
    return status;
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

/* One JSON document (Content-Type application/json, parameters allowed) or NDJSON
 * (anything else: application/x-ndjson, text/plain, none). */
static bool is_ndjson(struct MHD_Connection *c)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    return !ct || strncasecmp(ct, "application/json", 16) != 0 ||
           (ct[16] && ct[16] != ';' && ct[16] != ' ');
}

/* ---- handlers ---- */

static int h_events(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    bool nd = is_ndjson(c);
    uint32_t nl = 0, ne = 0;
    wh_sv_status st = wh_service_events(h->svc, r->body.p ? r->body.p : "", r->body.len, !nd, out,
                                        &nl, &ne, &r->wait_ticket);
    switch (st) {
    case WH_SV_OK:
        break;
    case WH_SV_BUSY:
        return error(out, 429, "busy",
                     "the audit queue is full (%lld rows); retry after the Retry-After seconds",
                     (long long)h->cfg->limits.queue);
    case WH_SV_TOO_MANY:
        return error(out, 413, "too_many_events", "a request may carry at most %lld events",
                     (long long)h->cfg->limits.events);
    case WH_SV_UNAVAILABLE:
        return error(out, 503, "audit_unavailable", "the audit store failed: %s",
                     wh_store_error(wh_service_store(h->svc)) ?: "unknown");
    case WH_SV_NOMEM:
        return error(out, 500, "internal", "out of memory");
    }
    if (nd) {
        r->content_type = "application/x-ndjson";
        return 200;
    }
    if (nl == 0) return error(out, 400, "empty", "the body holds no event");
    if (out->len && out->p[out->len - 1] == '\n') out->len--;
    return ne ? 400 : 200;
}

static int h_decisions(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    wh_decision_filter f = {.channel = arg(c, "channel"),
                            .user = arg(c, "user"),
                            .action = arg(c, "action"),
                            .limit = 100};
    const char *since = arg(c, "since"), *limit = arg(c, "limit"), *before = arg(c, "before");
    if (since) {
        int64_t ms;
        size_t n = strlen(since);
        bool digits = strspn(since, "0123456789") == n;
        if (digits)
            f.since_ms = strtoll(since, NULL, 10);
        else if (wh_parse_rfc3339(since, n, &ms))
            f.since_ms = ms;
        else if (wh_parse_duration(since, n, &ms))
            f.since_ms = wh_now_ms() - ms;
        else
            return error(out, 400, "bad_argument",
                         "'since' must be RFC 3339, unix milliseconds or a duration ago (10m), "
                         "not '%s'",
                         since);
    }
    if (limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*end || v < 1 || v > 1000)
            return error(out, 400, "bad_argument", "'limit' must be 1 to 1000, not '%s'", limit);
        f.limit = (int)v;
    }
    if (before) {
        char *end;
        long long v = strtoll(before, &end, 10);
        if (*end || v < 1)
            return error(out, 400, "bad_argument", "'before' must be a row number, not '%s'",
                         before);
        f.before_seq = v;
    }
    if (f.action) {
        bool ok = false;
        for (int a = 0; a < WH_ACT__COUNT; a++)
            ok |= !strcmp(f.action, wh_action_names[a]);
        if (!ok)
            return error(out, 400, "bad_argument",
                         "'action' must be allow, warn, hold, delete, timeout or ban, not '%s'",
                         f.action);
    }
    if (wh_store_decisions(wh_service_store(h->svc), &f, out) != WH_OK)
        return error(out, 503, "store_error", "the decisions cannot be read");
    return 200;
}

static int h_decision(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    const char *id = r->url + strlen(r->rt->path);
    if (!*id) return error(out, 404, "not_found", "give an event id: /v1/decisions/{event_id}");
    wh_status st = wh_store_decision(wh_service_store(h->svc), id, out);
    if (st == WH_EINVAL) return error(out, 404, "not_found", "no decision for event '%s'", id);
    if (st != WH_OK) return error(out, 503, "store_error", "the decisions cannot be read");
    return 200;
}

static int h_review_list(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    const char *status = arg(c, "status"), *limit = arg(c, "limit");
    if (!status) status = "pending";
    if (strcmp(status, "pending") && strcmp(status, "approved") && strcmp(status, "denied") &&
        strcmp(status, "all"))
        return error(out, 400, "bad_argument",
                     "'status' must be pending, approved, denied or all, not '%s'", status);
    int lim = 100;
    if (limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*end || v < 1 || v > 1000)
            return error(out, 400, "bad_argument", "'limit' must be 1 to 1000, not '%s'", limit);
        lim = (int)v;
    }
    if (wh_store_reviews(wh_service_store(h->svc), strcmp(status, "all") ? status : NULL,
                         arg(c, "after"), lim, out) != WH_OK)
        return error(out, 503, "store_error", "the review queue cannot be read");
    return 200;
}

static int h_review_act(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    const char *rest = r->url + strlen(r->rt->path);
    const char *slash = strrchr(rest, '/');
    if (!slash || slash == rest)
        return error(out, 404, "not_found", "use /v1/review/{event_id}/approve or .../deny");
    bool approve;
    if (!strcmp(slash + 1, "approve"))
        approve = true;
    else if (!strcmp(slash + 1, "deny"))
        approve = false;
    else
        return error(out, 404, "not_found", "use /v1/review/{event_id}/approve or .../deny");
    char id[WH_MAX_ID + 1];
    size_t idn = (size_t)(slash - rest);
    if (idn > WH_MAX_ID)
        return error(out, 400, "bad_argument", "an event id is at most %d bytes", WH_MAX_ID);
    memcpy(id, rest, idn);
    id[idn] = 0;
    wh_review_request rq;
    const char *code;
    char msg[256];
    if (!wh_review_request_parse(r->body.p ? r->body.p : "", r->body.len, &rq, &code, msg,
                                 sizeof(msg)))
        return error(out, 400, code, "%s", msg);
    return wh_service_review(h->svc, id, approve, rq.moderator, rq.has_note ? rq.note : NULL, out);
}

static int h_rules(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    wh_service_rules(h->svc, out);
    return 200;
}

static int h_validate(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    return wh_service_validate(h->svc, r->body.p ? r->body.p : "", r->body.len, out) ? 200 : 422;
}

static int h_reload(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    return wh_service_reload(h->svc, "api", out) ? 200 : 422;
}

/* One rate-limit request object: GCRA (key, burst, rate, period, cost) or a quota (key,
 * quota: {limit, per}, cost). Appends the answer object; false (with an error object) when
 * the request is malformed. */
static bool ratelimit_one(wh_http *h, const char *s, size_t n, uint32_t line_no, wh_buf *out)
{
    wh_rl_request rq;
    const char *code;
    char msg[256];
    if (!wh_rl_request_parse(s, n, &rq, &code, msg, sizeof(msg))) {
        wh_buf err;
        wh_buf_init(&err);
        error(&err, 400, code, "%s", msg);
        if (line_no) { /* NDJSON: the error object says which line, as event errors do */
            wh_buf_printf(out, "{\"line\":%u,", line_no);
            wh_buf_append(out, err.p + 1, err.len - 1);
        } else {
            wh_buf_append(out, err.p, err.len);
        }
        wh_buf_free(&err);
        return false;
    }
    wh_ratelimiter *rl = wh_service_ratelimiter(h->svc);
    int64_t now = wh_now_ms();
    wh_buf_puts(out, "{\"key\":");
    wh_buf_json_str(out, rq.key, rq.keylen);
    if (rq.quota) {
        wh_quota_result q;
        wh_rl_quota(rl, rq.key, rq.keylen, rq.per, rq.limit, rq.cost, now, &q);
        wh_service_count_ratelimit(h->svc, true, q.allowed);
        wh_buf_printf(out,
                      ",\"allowed\":%s,\"limit\":%lld,\"used\":%lld,\"remaining\":%lld,"
                      "\"reset_after\":%lld,\"reset_after_ms\":%lld}",
                      q.allowed ? "true" : "false", (long long)q.limit, (long long)q.used,
                      (long long)q.remaining, (long long)((q.reset_after_ms + 999) / 1000),
                      (long long)q.reset_after_ms);
        return true;
    }
    wh_gcra_result g;
    wh_rl_throttle(rl, rq.key, rq.keylen, &rq.gcra, now, rq.cost, &g);
    wh_service_count_ratelimit(h->svc, false, g.allowed);
    /* redis-cell's CL.THROTTLE answer: limit (= burst + 1), remaining, retry_after (-1 when
     * allowed) and reset_after in whole seconds; the _ms fields are exact. */
    int64_t ra = g.allowed ? -1 : g.retry_after_ms < 0 ? -1 : (g.retry_after_ms + 999) / 1000;
    wh_buf_printf(out,
                  ",\"allowed\":%s,\"limit\":%lld,\"remaining\":%lld,\"retry_after\":%lld,"
                  "\"reset_after\":%lld,\"retry_after_ms\":%lld,\"reset_after_ms\":%lld}",
                  g.allowed ? "true" : "false", (long long)g.limit, (long long)g.remaining,
                  (long long)ra, (long long)((g.reset_after_ms + 999) / 1000),
                  (long long)(g.allowed ? -1 : g.retry_after_ms), (long long)g.reset_after_ms);
    return true;
}

static int h_ratelimit(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    const char *b = r->body.p ? r->body.p : "";
    size_t len = r->body.len;
    if (!is_ndjson(c)) {
        bool ok = ratelimit_one(h, b, len, 0, out);
        return ok ? 200 : 400;
    }
    /* Count first: a request over the limit must take nothing. */
    int64_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(b + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - b) : len;
        n += !wh_line_is_blank(b + i, e - i);
        i = e + 1;
    }
    if (n > h->cfg->limits.events) {
        wh_service_count_rejected(h->svc, WH_REJ_EVENTS);
        return error(out, 413, "too_many_requests_in_body",
                     "a request may carry at most %lld rate-limit requests",
                     (long long)h->cfg->limits.events);
    }
    uint32_t line_no = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(b + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - b) : len;
        line_no++;
        if (!wh_line_is_blank(b + i, e - i)) {
            ratelimit_one(h, b + i, e - i, line_no, out);
            wh_buf_putc(out, '\n');
        }
        i = e + 1;
    }
    r->content_type = "application/x-ndjson";
    return 200;
}

static int h_metrics(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    wh_service_metrics(h->svc, out);
    r->content_type = "text/plain; version=0.0.4";
    return 200;
}

static int h_health(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    wh_buf_puts(out, "{\"status\":\"ok\"}");
    return 200;
}

static int h_ready(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    if (atomic_load(&h->stopping)) return error(out, 503, "stopping", "whiply is shutting down");
    const char *e = wh_store_error(wh_service_store(h->svc));
    if (e) return error(out, 503, "audit_unavailable", "%s", e);
    wh_buf_puts(out, "{\"status\":\"ready\"}");
    return 200;
}

static const route_t routes[] = {
    {"POST", "/v1/events", false, WH_RT_EVENTS, WH_SCOPE_EVENTS, h_events, false},
    {"GET", "/v1/decisions", false, WH_RT_DECISIONS, WH_SCOPE_REVIEW, h_decisions, true},
    {"GET", "/v1/decisions/", true, WH_RT_DECISIONS, WH_SCOPE_REVIEW, h_decision, false},
    {"GET", "/v1/review", false, WH_RT_REVIEW, WH_SCOPE_REVIEW, h_review_list, true},
    {"POST", "/v1/review/", true, WH_RT_REVIEW, WH_SCOPE_REVIEW, h_review_act, false},
    {"GET", "/v1/rules", false, WH_RT_RULES, WH_SCOPE_RULES, h_rules, false},
    {"POST", "/v1/rules/validate", false, WH_RT_RULES, WH_SCOPE_RULES, h_validate, true},
    {"POST", "/v1/rules/reload", false, WH_RT_RULES, WH_SCOPE_RULES, h_reload, true},
    {"POST", "/v1/ratelimit", false, WH_RT_RATELIMIT, WH_SCOPE_EVENTS, h_ratelimit, false},
    {"GET", "/metrics", false, WH_RT_METRICS, 0, h_metrics, false},
    {"GET", "/healthz", false, WH_RT_HEALTH, NO_AUTH, h_health, false},
    {"GET", "/readyz", false, WH_RT_HEALTH, NO_AUTH, h_ready, false},
};

static bool path_matches(const route_t *rt, const char *url)
{
    size_t n = strlen(rt->path);
    return rt->prefix ? !strncmp(url, rt->path, n) && url[n] : !strcmp(url, rt->path);
}

/* The route for method + url; *allowed lists the methods the path has when only the
 * method is wrong. */
static const route_t *find_route(const char *method, const char *url, char *allowed, size_t n)
{
    allowed[0] = 0;
    for (size_t i = 0; i < WH_ARRAY_LEN(routes); i++) {
        if (!path_matches(&routes[i], url)) continue;
        if (!strcmp(routes[i].method, method)) return &routes[i];
        size_t l = strlen(allowed);
        snprintf(allowed + l, n - l, "%s%s", l ? ", " : "", routes[i].method);
    }
    return NULL;
}

/* Checks the bearer token in constant time against every configured token hash; returns
 * 0 when allowed, else the HTTP status with out filled. */
static int authorize(wh_http *h, struct MHD_Connection *c, const route_t *rt, wh_buf *out)
{
    if (rt->scope == NO_AUTH) return 0;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0 || !a[7])
        return error(out, 401, "unauthorized",
                     "this endpoint needs a token: Authorization: Bearer <token>");
    const char *tok = a + 7;
    uint8_t hash[32];
    unsigned hl = 32;
    EVP_Digest(tok, strlen(tok), hash, &hl, EVP_sha256(), NULL);
    unsigned scopes = 0;
    const wh_config *cfg = h->cfg;
    for (uint32_t i = 0; i <= cfg->ntokens; i++) {
        const uint8_t *want = i < cfg->ntokens ? cfg->tokens[i].sha256 : h->admin;
        unsigned sc = i < cfg->ntokens ? cfg->tokens[i].scopes : WH_SCOPE_ADMIN;
        if (i == cfg->ntokens && !h->has_admin) break;
        /* No early exit: the time taken does not depend on which token matched. */
        unsigned eq = CRYPTO_memcmp(want, hash, 32) == 0;
        scopes |= sc & (0u - eq);
    }
    if (!scopes) return error(out, 401, "unauthorized", "the token is not valid");
    if (scopes & WH_SCOPE_ADMIN || rt->scope == 0 || (scopes & rt->scope)) return 0;
    char have[64], need[64];
    wh_scope_format(scopes, have, sizeof(have));
    wh_scope_format(rt->scope, need, sizeof(need));
    return error(out, 403, "forbidden", "the token's scopes (%s) do not include %s", have, need);
}

static enum MHD_Result respond(wh_http *h, struct MHD_Connection *c, req_t *r, int status,
                               wh_buf *out, const char *allow)
{
    if (out->oom) {
        out->len = 0;
        out->oom = false;
        status = error(out, 500, "internal", "out of memory");
    }
    if (status != 200 || !r->content_type) r->content_type = "application/json"; /* errors too */
    /* One newline ends the body, except an empty NDJSON answer (no lines: no bytes). */
    bool empty_ndjson = !out->len && !strcmp(r->content_type, "application/x-ndjson");
    if (!empty_ndjson && (!out->len || out->p[out->len - 1] != '\n')) wh_buf_putc(out, '\n');
    struct MHD_Response *resp =
        out->len ? MHD_create_response_from_buffer(out->len, out->p, MHD_RESPMEM_MUST_FREE)
                 : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        wh_buf_free(out);
        return MHD_NO;
    }
    if (out->len) out->p = NULL; /* the response owns it now */
    MHD_add_response_header(resp, "Content-Type", r->content_type);
    if (status == 429 || status == 503) MHD_add_response_header(resp, "Retry-After", "1");
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"whiply\"");
    if (allow) MHD_add_response_header(resp, "Allow", allow);
    if (status == 503 && atomic_load(&h->stopping))
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    wh_service_observe(h->svc, r->rt ? r->rt->metric : WH_RT_OTHER, status, wh_mono_ns() - r->t0);
    return ret;
}

static void on_committed(void *ud, bool ok)
{
    req_t *r = ud;
    atomic_store(&r->ok, ok);
    MHD_resume_connection(r->conn);
}

/* The answer of a request whose connection is suspended: kept in r, and the connection
 * resumed (on_request then sends it) now, or once its audit rows are committed. */
static void answer_later(wh_http *h, req_t *r, int status, wh_buf out)
{
    r->answer = out;
    r->status = status;
    r->pending = true;
    if (r->wait_ticket && status < 500) {
        r->notice = (wh_store_notice){.ticket = r->wait_ticket, .fn = on_committed, .ud = r};
        if (wh_store_notify(wh_service_store(h->svc), &r->notice)) return;
        atomic_store(&r->ok, !wh_store_error(wh_service_store(h->svc)));
    } else {
        atomic_store(&r->ok, true);
    }
    MHD_resume_connection(r->conn);
}

static void *slow_main(void *arg)
{
    wh_http *h = arg;
    pthread_mutex_lock(&h->slow_lock);
    for (;;) {
        while (!h->slow_head && !h->slow_quit)
            pthread_cond_wait(&h->slow_cond, &h->slow_lock);
        req_t *r = h->slow_head;
        if (!r) break; /* quit, and the queue is empty */
        h->slow_head = r->next;
        if (!h->slow_head) h->slow_tail = NULL;
        pthread_mutex_unlock(&h->slow_lock);
        wh_buf out;
        wh_buf_init(&out);
        int status = r->rt->fn(h, r->conn, r, &out);
        answer_later(h, r, status, out);
        pthread_mutex_lock(&h->slow_lock);
    }
    pthread_mutex_unlock(&h->slow_lock);
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    wh_http *h = cls;
    req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r) return MHD_NO;
        wh_buf_init(&r->body);
        r->t0 = wh_mono_ns();
        r->url = url;
        r->conn = c;
        wh_buf_init(&r->answer);
        r->late = atomic_load(&h->stopping);
        *con_cls = r;
        pthread_mutex_lock(&h->lock);
        h->inflight++;
        r->counted = true;
        pthread_mutex_unlock(&h->lock);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big && r->body.len + *upload_size > (size_t)h->cfg->limits.body) {
            r->too_big = true;
            wh_buf_free(&r->body);
            wh_buf_init(&r->body);
        }
        if (!r->too_big) wh_buf_append(&r->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    wh_buf out;
    wh_buf_init(&out);
    char allowed[64];
    int status;
    if (r->pending) { /* resumed: the audit rows are committed, or the store failed */
        r->pending = false;
        out = r->answer;
        wh_buf_init(&r->answer);
        status = r->status;
        if (!atomic_load(&r->ok))
            status = error(&out, 503, "audit_unavailable", "the audit store failed: %s",
                           wh_store_error(wh_service_store(h->svc)) ?: "unknown");
        enum MHD_Result ret = respond(h, c, r, status, &out, NULL);
        wh_buf_free(&out);
        return ret;
    }
    r->rt = find_route(method, url, allowed, sizeof(allowed));
    if (r->late) {
        status = error(&out, 503, "stopping", "whiply is shutting down");
    } else if (atomic_load(&h->conns) > h->cfg->limits.connections) {
        wh_service_count_rejected(h->svc, WH_REJ_CONNECTIONS);
        status = error(&out, 503, "too_many_connections",
                       "more than %lld connections are open; retry later",
                       (long long)h->cfg->limits.connections);
    } else if (!r->rt && allowed[0]) {
        status = error(&out, 405, "method_not_allowed", "%s %s: this path takes %s", method, url,
                       allowed);
        return respond(h, c, r, status, &out, allowed);
    } else if (!r->rt) {
        status = error(&out, 404, "not_found", "no such endpoint: %s %s (docs/api.md lists them)",
                       method, url);
    } else if ((status = authorize(h, c, r->rt, &out)) != 0) {
        /* out is filled */
    } else if (r->too_big) {
        wh_service_count_rejected(h->svc, WH_REJ_BODY);
        status = error(&out, 413, "body_too_large", "the body is over the limit of %lld bytes",
                       (long long)h->cfg->limits.body);
    } else if (r->body.oom) {
        status = error(&out, 500, "internal", "out of memory reading the body");
    } else if (r->rt->slow && h->nslow) {
        /* Run it on a slow-request thread; this loop serves other connections meanwhile. A
         * handler reads the suspended connection's headers there: nothing else touches them
         * until it is resumed. */
        MHD_suspend_connection(c);
        pthread_mutex_lock(&h->slow_lock);
        if (h->slow_tail)
            h->slow_tail->next = r;
        else
            h->slow_head = r;
        h->slow_tail = r;
        pthread_cond_signal(&h->slow_cond);
        pthread_mutex_unlock(&h->slow_lock);
        return MHD_YES;
    } else {
        status = r->rt->fn(h, c, r, &out);
        if (r->wait_ticket && status < 500) {
            /* Answer once the rows are committed, without holding this thread. */
            MHD_suspend_connection(c);
            answer_later(h, r, status, out);
            return MHD_YES;
        }
    }
    enum MHD_Result ret = respond(h, c, r, status, &out, NULL);
    wh_buf_free(&out);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    wh_http *h = cls;
    req_t *r = *con_cls;
    if (!r) return;
    if (r->counted) {
        pthread_mutex_lock(&h->lock);
        if (--h->inflight == 0) pthread_cond_broadcast(&h->idle);
        pthread_mutex_unlock(&h->lock);
    }
    wh_buf_free(&r->body);
    wh_buf_free(&r->answer);
    free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    wh_http *h = cls;
    int d = toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
    atomic_fetch_add(&h->conns, d);
    wh_service_connections(h->svc, d);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    fprintf(stderr, "whiply: http: ");
    vfprintf(stderr, fmt, ap);
}

/* Ends the slow-request threads once they have run what is queued (each resumes its
 * connection, so this must come before the daemon stops). */
static void stop_slow(wh_http *h)
{
    pthread_mutex_lock(&h->slow_lock);
    h->slow_quit = true;
    pthread_cond_broadcast(&h->slow_cond);
    pthread_mutex_unlock(&h->slow_lock);
    for (int i = 0; i < h->nslow; i++)
        pthread_join(h->slow_threads[i], NULL);
    h->nslow = 0;
    pthread_mutex_destroy(&h->slow_lock);
    pthread_cond_destroy(&h->slow_cond);
}

wh_http *wh_http_start(wh_service *svc, const char *listen, const uint8_t *admin_sha256, int *port,
                       char *err, size_t errlen)
{
    wh_http *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->svc = svc;
    h->cfg = wh_service_config(svc);
    if (admin_sha256) {
        memcpy(h->admin, admin_sha256, 32);
        h->has_admin = true;
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->idle, NULL);
    pthread_mutex_init(&h->slow_lock, NULL);
    pthread_cond_init(&h->slow_cond, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6};
    struct sockaddr *addr = (struct sockaddr *)&sa;
    unsigned v6 = 0; /* MHD_USE_IPv6 or _DUAL_STACK for a bracketed address */
    const char *colon = strrchr(listen, ':');
    char host[256];
    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(err, errlen, "listen address '%s' must be HOST:PORT", listen);
        goto fail;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535) {
        snprintf(err, errlen, "listen address '%s': the port must be 0 to 65535", listen);
        goto fail;
    }
    if (!strcmp(host, "localhost")) snprintf(host, sizeof(host), "127.0.0.1");
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* [IPv6]:PORT, as in URLs */
        host[hl - 1] = 0;
        if (inet_pton(AF_INET6, host + 1, &sa6.sin6_addr) != 1) {
            snprintf(err, errlen, "listen address '%s': '%s' is not an IPv6 address", listen,
                     host + 1);
            goto fail;
        }
        sa6.sin6_port = htons((uint16_t)p);
        addr = (struct sockaddr *)&sa6;
        /* [::] is every interface, IPv4 too (mapped); another address is that one only */
        v6 = IN6_IS_ADDR_UNSPECIFIED(&sa6.sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    } else if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa.sin_addr) != 1) {
        snprintf(err, errlen,
                 "listen address '%s': '%s' is not an IPv4 address (an IPv6 address goes in "
                 "brackets: [::1]:8080)",
                 listen, host);
        goto fail;
    }
    sa.sin_port = htons((uint16_t)p);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t pool = h->cfg->http_threads ? h->cfg->http_threads : 2 * (ncpu > 0 ? ncpu : 1);
    while (h->nslow < WH_HTTP_SLOW_THREADS &&
           pthread_create(&h->slow_threads[h->nslow], NULL, slow_main, h) == 0)
        h->nslow++; /* with none, slow requests run on the loops */
    h->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG | v6,
        0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR,
        addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(h->cfg->limits.connections + 64),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned)1, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(pool > 1 ? pool : 0), /* 0: one loop */
        MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s (in use, or not an address of this machine)",
                 listen);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : (int)p;
    return h;
fail:
    stop_slow(h);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->idle);
    free(h);
    return NULL;
}

void wh_http_stop(wh_http *h, int64_t timeout_ms)
{
    if (!h) return;
    atomic_store(&h->stopping, true);
    MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET) close(s);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&h->lock);
    while (h->inflight > 0)
        if (pthread_cond_timedwait(&h->idle, &h->lock, &ts) != 0) break;
    pthread_mutex_unlock(&h->lock);
    stop_slow(h);
    MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->idle);
    free(h);
}
