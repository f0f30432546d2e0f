/* http.c - see http.h. */
#define _GNU_SOURCE
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
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

#include "dash.h"
#include "ingest.h"
#include "outbox_impl.h"
#include "request.h"
#include "base/json.h"
#include "io/twitch.h"
#include "engine/event.h"
#include "text/utf8.h"

/* One open connection, as the connection guard sees it. libmicrohttpd times a connection out
 * only after a silence, so a client that sends a byte every few seconds (slowloris) or
 * stays idle holds its slot for ever; the guard gives the request head an absolute
 * deadline, an idle connection another, and when the connections reach their limit it
 * closes the ones that have no request in progress, oldest first, so that clients that do
 * send requests (and /healthz) keep being served. It closes a connection by shutting its
 * socket down: the connection's own loop then sees the end of the stream and closes it.
 * libmicrohttpd tells NOTIFY_CLOSED before it closes the socket, and the entry leaves the
 * list then, under conn_lock, so the guard never shuts down a descriptor reused by another
 * connection. */
typedef enum { C_HEAD, C_BUSY, C_IDLE } conn_state;
typedef struct conn {
    int fd;
    conn_state state;
    bool closing;     /* shut down by the guard; not counted in h->live */
    int64_t since_ms; /* when it entered its state */
    struct conn *prev, *next;
} conn_t;

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
    /* the connection guard (conn_t) */
    pthread_mutex_t conn_lock;
    pthread_cond_t guard_cond;
    conn_t *chead, *ctail; /* open connections, least recently changed state first */
    int live;              /* open ones the guard is not closing */
    pthread_t guard;
    bool guard_started, guard_quit;
    /* libmicrohttpd's own messages, at most LOG_BURST a LOG_WINDOW_MS (an attack must not
     * turn into a flood of log lines) */
    pthread_mutex_t log_lock;
    int64_t log_window_ms;
    int log_n, log_dropped;
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
    const char *url;          /* the path, percent-decoded by url_check (path_buf) */
    char *path_buf;
    char bad_url[200]; /* why the request line cannot be served ("" when it can) */
    bool started;      /* its head was seen by on_request */
    bool responded;    /* answered before its body: the rest of the body is discarded */
    bool close;        /* the answer closes the connection */
    req_t *next;       /* in the slow-request queue */
    /* who asks (authorize): scopes, the token's or session's name, the session if any */
    unsigned scopes;
    char who[64];
    bool by_cookie;
    wh_session sess;
    char sid[WH_SESSION_ID_HEX + 1];
    /* a dashboard handler's own response (an asset, a stream) and cookie */
    struct MHD_Response *own;
    char set_cookie[256];
};

#define NO_AUTH UINT32_MAX

int wh_http_verror(wh_buf *out, int status, const char *code, const char *fmt, va_list ap)
{
    char msg[600];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* A message may quote what the client sent (a method, a path): never as bytes that are
     * not UTF-8, which would make the JSON answer invalid. */
    for (size_t at, n = strlen(msg); (at = wh_utf8_invalid_at(msg, n)) != (size_t)-1;)
        msg[at] = '?';
    out->len = 0;
    wh_buf_puts(out, "{\"error\":{\"code\":\"");
    wh_buf_puts(out, code);
    wh_buf_puts(out, "\",\"message\":");
    wh_buf_json_str(out, msg, strlen(msg));
    wh_buf_puts(out, "}}");
    return status;
}

static int error(wh_buf *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int error(wh_buf *out, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wh_http_verror(out, status, code, fmt, ap);
    va_end(ap);
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

/* A list's `limit` argument (NULL: *lim stays); false when it is not 1 to 1000. */
static bool limit_arg(const char *limit, int *lim)
{
    if (!limit) return true;
    char *end;
    long v = strtol(limit, &end, 10);
    if (*end || v < 1 || v > 1000) return false;
    *lim = (int)v;
    return true;
}

int wh_http_status(wh_status st)
{
    switch (st) {
    case WH_OK:
        return 200;
    case WH_EINVAL:
    case WH_ESYNTAX:
    case WH_EUTF8:
        return 400;
    case WH_ELIMIT:
        return 413;
    case WH_ERULES:
        return 422;
    case WH_EBUSY:
        return 429;
    case WH_EUNAVAILABLE:
    case WH_EIO:
    case WH_ECORRUPT:
        return 503;
    case WH_ENOMEM:
        break;
    }
    return 500;
}

/* The answer of an events request with nl output lines, ne of them errors: NDJSON as they
 * are (status ok); one event (application/json) its line alone, 400 when it is an error. */
static int lines_answer(req_t *r, bool nd, uint32_t nl, uint32_t ne, int ok, wh_buf *out)
{
    if (nd) {
        r->content_type = "application/x-ndjson";
        return ok;
    }
    if (nl == 0) return error(out, 400, "empty", "the body holds no event");
    if (out->len && out->p[out->len - 1] == '\n') out->len--;
    return ne ? 400 : ok;
}

/* bus.http: publish: the events go onto the bus for their partitions' owners to decide. */
static int h_events_to_bus(wh_http *h, req_t *r, bool nd, wh_buf *out)
{
    uint32_t nl = 0, ne = 0;
    wh_status st = wh_service_sink_events(h->svc, r->body.p, r->body.len, !nd, out, &nl, &ne);
    switch (st) {
    case WH_OK:
        break;
    case WH_EUNAVAILABLE:
        return error(out, 503, "bus_unavailable",
                     "bus.http is publish and the bus is not connected (yet); retry");
    case WH_ELIMIT:
        return error(out, wh_http_status(st), "too_many_events",
                     "a request may carry at most %lld events", (long long)h->cfg->limits.events);
    default:
        return error(out, wh_http_status(st), "internal", "%s", wh_status_str(st));
    }
    return lines_answer(r, nd, nl, ne, 202, out);
}

static int h_events(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    bool nd = is_ndjson(c);
    if (h->cfg->bus.http && !strcmp(h->cfg->bus.http, "publish"))
        return h_events_to_bus(h, r, nd, out);
    /* on_request answers once r->wait_ticket is committed (this thread does not wait) */
    wh_ingest_req in = {.body = r->body.p, .len = r->body.len, .single = !nd, .out = out};
    wh_status st = wh_ingest_submit(h->svc, &in);
    uint32_t nl = in.nlines, ne = in.nerrors;
    r->wait_ticket = in.ticket;
    switch (st) {
    case WH_OK:
        break;
    case WH_EBUSY:
        return error(out, wh_http_status(st), "busy",
                     "the audit queue is full (%lld rows); retry after the Retry-After seconds",
                     (long long)h->cfg->limits.queue);
    case WH_ELIMIT:
        return error(out, wh_http_status(st), "too_many_events",
                     "a request may carry at most %lld events", (long long)h->cfg->limits.events);
    case WH_EUNAVAILABLE:
        return error(out, wh_http_status(st), "audit_unavailable", "the audit store failed: %s",
                     wh_store_error(wh_service_store(h->svc)) ?: "unknown");
    default:
        return error(out, wh_http_status(st), "internal", "%s", wh_status_str(st));
    }
    return lines_answer(r, nd, nl, ne, 200, out);
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
    if (!limit_arg(limit, &f.limit))
        return error(out, 400, "bad_argument", "'limit' must be 1 to 1000, not '%s'", limit);
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
    if (strlen(id) > WH_MAX_ID)
        return error(out, 400, "bad_argument", "an event id is at most %d bytes, not %zu",
                     WH_MAX_ID, strlen(id));
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
    if (!limit_arg(limit, &lim))
        return error(out, 400, "bad_argument", "'limit' must be 1 to 1000, not '%s'", limit);
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
    /* It does not wait for the database (this is an event loop): on_request answers once
     * r->wait_ticket is committed, or 503 when the store fails first. */
    return wh_service_review(h->svc, id, approve, rq.moderator, rq.has_note ? rq.note : NULL, out,
                             &r->wait_ticket);
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

/* 200 while the process answers; "audit" says what the background check of the audit trail
 * found (checking, ok, damaged with its reason). */
static int h_health(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    wh_store_health sh;
    wh_store_health_get(wh_service_store(h->svc), &sh);
    wh_buf_printf(out, "{\"status\":\"ok\",\"audit\":\"%s\"", sh.state);
    if (sh.reason[0]) {
        wh_buf_puts(out, ",\"audit_reason\":");
        wh_buf_json_str(out, sh.reason, strlen(sh.reason));
    }
    wh_buf_printf(out, ",\"audit_rows_verified\":%llu}", (unsigned long long)sh.rows_verified);
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

/* The newest signed audit checkpoint and the key that signed it (docs/api.md). */
static int h_audit_checkpoint(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    if (wh_store_checkpoint_json(wh_service_store(h->svc), out) != WH_OK)
        return error(out, 404, "not_found",
                     "no signed checkpoint yet (store.signing_key: none, or no rows)");
    return 200;
}

#define READERS (WH_SCOPE_REVIEW | WH_SCOPE_READ)

/* ---- the action outbox (docs/api.md, "Actions") ---- */

static int h_actions(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    static const char *const statuses[] = {"pending", "retry", "due",
                                           "done",    "dead",  "unsupported"};
    wh_op_filter f = {.status = arg(c, "status"),
                      .platform = arg(c, "platform"),
                      .channel = arg(c, "channel"),
                      .after = arg(c, "after"),
                      .limit = 100};
    const char *limit = arg(c, "limit");
    if (!limit_arg(limit, &f.limit))
        return error(out, 400, "bad_argument", "'limit' must be 1 to 1000, not '%s'", limit);
    bool known = !f.status;
    for (size_t i = 0; f.status && i < WH_ARRAY_LEN(statuses); i++)
        known |= !strcmp(f.status, statuses[i]);
    if (!known)
        return error(out, 400, "bad_argument",
                     "'status' must be pending, retry, due (both), done, dead or unsupported, "
                     "not '%s'",
                     f.status);
    if (wh_outbox_list(wh_service_outbox(h->svc), &f, out) != WH_OK)
        return error(out, 503, "store_error", "the outbox cannot be read");
    return 200;
}

/* An action id from the path: 32 hex digits, or a 404 in out. */
static bool action_id(const char *s, size_t n, char id[33])
{
    if (n != 32) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    memcpy(id, s, 32);
    id[32] = 0;
    return true;
}

static int h_action(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    const char *rest = r->url + strlen(r->rt->path);
    char id[33];
    if (!action_id(rest, strlen(rest), id))
        return error(out, 404, "not_found", "an action id is 32 hex digits: /v1/actions/{id}");
    wh_status st = wh_outbox_get(wh_service_outbox(h->svc), id, out);
    if (st == WH_EINVAL) return error(out, 404, "not_found", "no action '%s'", id);
    if (st != WH_OK) return error(out, 503, "store_error", "the outbox cannot be read");
    return 200;
}

static int h_action_retry(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    const char *rest = r->url + strlen(r->rt->path);
    const char *slash = strchr(rest, '/');
    char id[33];
    if (!slash || strcmp(slash, "/retry") || !action_id(rest, (size_t)(slash - rest), id))
        return error(out, 404, "not_found", "use POST /v1/actions/{id}/retry");
    char who[128] = "api";
    if (r->body.len && !wh_json_get_string(r->body.p, r->body.len, "moderator", who, sizeof(who)))
        return error(out, 400, "bad_request",
                     "the body is optional; when given, {\"moderator\": NAME} (a string of at "
                     "most 127 bytes)");
    return wh_outbox_retry(wh_service_outbox(h->svc), id, who, out, &r->wait_ticket);
}

static int h_action_request(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    return wh_outbox_request(wh_service_outbox(h->svc), r->body.p ? r->body.p : "", r->body.len,
                             out, &r->wait_ticket);
}

/* POST /v1/eventsub/PLATFORM: Twitch's EventSub webhooks (io/twitch.h), signed by Twitch
 * instead of a bearer token. */
static int h_eventsub(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    const char *platform = r->url + strlen(r->rt->path);
#define EH(name) MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Twitch-Eventsub-Message-" name)
    return wh_eventsub_receive(h->svc, platform, EH("Id"), EH("Timestamp"), EH("Signature"),
                               EH("Type"), r->body.p ? r->body.p : "", r->body.len, out,
                               &r->content_type, &r->wait_ticket);
#undef EH
}

static const route_t routes[] = {
    {"POST", "/v1/events", false, WH_RT_EVENTS, WH_SCOPE_EVENTS, h_events, false},
    {"GET", "/v1/decisions", false, WH_RT_DECISIONS, READERS, h_decisions, true},
    {"GET", "/v1/decisions/", true, WH_RT_DECISIONS, READERS, h_decision, false},
    {"GET", "/v1/review", false, WH_RT_REVIEW, READERS, h_review_list, true},
    {"POST", "/v1/review/", true, WH_RT_REVIEW, WH_SCOPE_REVIEW, h_review_act, false},
    {"GET", "/v1/rules", false, WH_RT_RULES, WH_SCOPE_RULES | READERS, h_rules, false},
    {"POST", "/v1/rules/validate", false, WH_RT_RULES, WH_SCOPE_RULES, h_validate, true},
    {"POST", "/v1/rules/reload", false, WH_RT_RULES, WH_SCOPE_RULES, h_reload, true},
    {"POST", "/v1/ratelimit", false, WH_RT_RATELIMIT, WH_SCOPE_EVENTS, h_ratelimit, false},
    {"GET", "/metrics", false, WH_RT_METRICS, 0, h_metrics, false},
    {"GET", "/healthz", false, WH_RT_HEALTH, NO_AUTH, h_health, false},
    {"GET", "/readyz", false, WH_RT_HEALTH, NO_AUTH, h_ready, false},
    {"GET", "/v1/audit/checkpoint", false, WH_RT_AUDIT, 0, h_audit_checkpoint, false},
    {"GET", "/v1/actions", false, WH_RT_ACTIONS, READERS, h_actions, true},
    {"POST", "/v1/actions", false, WH_RT_ACTIONS, WH_SCOPE_REVIEW, h_action_request, false},
    {"GET", "/v1/actions/", true, WH_RT_ACTIONS, READERS, h_action, false},
    {"POST", "/v1/actions/", true, WH_RT_ACTIONS, WH_SCOPE_REVIEW, h_action_retry, false},
    {"POST", "/v1/eventsub/", true, WH_RT_EVENTS, NO_AUTH, h_eventsub, false},
};

/* The dashboard's routes (docs/dashboard.md): each row's handler is dash_fns[] of the same
 * index, in dash.c, called through h_dash. */
static int h_dash(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out);
static const route_t dash_routes[] = {
    {"GET", "/", false, WH_RT_OTHER, NO_AUTH, h_dash, false},
    {"GET", "/assets/", true, WH_RT_OTHER, NO_AUTH, h_dash, false},
    {"POST", "/v1/session", false, WH_RT_OTHER, NO_AUTH, h_dash, false},
    {"GET", "/v1/session", false, WH_RT_OTHER, 0, h_dash, false},
    {"DELETE", "/v1/session", false, WH_RT_OTHER, 0, h_dash, false},
    {"GET", "/v1/stream", false, WH_RT_OTHER, READERS | WH_SCOPE_RULES, h_dash, false},
    {"POST", "/v1/moderate", false, WH_RT_REVIEW, WH_SCOPE_REVIEW, h_dash, false},
    {"GET", "/v1/audit", false, WH_RT_AUDIT, READERS, h_dash, true},
    {"GET", "/v1/audit/verify", false, WH_RT_AUDIT, READERS, h_dash, true},
    {"GET", "/v1/rules/history", false, WH_RT_RULES, WH_SCOPE_RULES | READERS, h_dash, false},
    {"POST", "/v1/rules/dryrun", false, WH_RT_RULES, WH_SCOPE_RULES, h_dash, true},
    {"POST", "/v1/channels/", true, WH_RT_REVIEW, WH_SCOPE_REVIEW, h_dash, false},
    {"GET", "/v1/channels", false, WH_RT_REVIEW, READERS, h_dash, false},
};
static const wh_dash_fn dash_fns[] = {
    wh_dash_asset,      wh_dash_asset,  wh_dash_sign_in,  wh_dash_whoami, wh_dash_sign_out,
    wh_dash_stream_get, wh_dash_action, wh_dash_audit,    wh_dash_verify, wh_dash_history,
    wh_dash_dryrun,     wh_dash_panic,  wh_dash_channels,
};
_Static_assert(WH_ARRAY_LEN(dash_fns) == WH_ARRAY_LEN(dash_routes), "one handler a route");

/* A dashboard route (dash.h): the request as dash.c sees it, and back. */
static int h_dash(wh_http *h, struct MHD_Connection *c, req_t *r, wh_buf *out)
{
    wh_dash_req q = {.svc = h->svc,
                     .conn = c,
                     .method = r->rt->method,
                     .url = r->url,
                     .body = r->body.p,
                     .len = r->body.len,
                     .scopes = r->scopes,
                     .who = r->who,
                     .session = r->by_cookie ? &r->sess : NULL,
                     .session_id = r->by_cookie ? r->sid : NULL};
    int status = dash_fns[r->rt - dash_routes](&q, out);
    if (q.content_type) r->content_type = q.content_type;
    r->own = q.resp;
    r->wait_ticket = q.ticket;
    memcpy(r->set_cookie, q.set_cookie, sizeof(r->set_cookie));
    return status;
}

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
    static const struct {
        const route_t *v;
        size_t n;
    } tables[] = {{routes, WH_ARRAY_LEN(routes)}, {dash_routes, WH_ARRAY_LEN(dash_routes)}};
    for (size_t t = 0; t < WH_ARRAY_LEN(tables); t++) {
        for (size_t i = 0; i < tables[t].n; i++) {
            const route_t *rt = &tables[t].v[i];
            if (!path_matches(rt, url)) continue;
            if (!strcmp(rt->method, method)) return rt;
            size_t l = strlen(allowed);
            snprintf(allowed + l, n - l, "%s%s", l ? ", " : "", rt->method);
        }
    }
    return NULL;
}

/* The scopes of a token (0: not valid) and its name, checked in constant time against every
 * configured token hash. */
static unsigned token_scopes(wh_http *h, const char *tok, size_t tn, char *name, size_t nn)
{
    uint8_t hash[32];
    unsigned hl = 32;
    EVP_Digest(tok, tn, hash, &hl, EVP_sha256(), NULL);
    unsigned scopes = 0;
    const wh_config *cfg = h->cfg;
    const char *who = NULL;
    for (uint32_t i = 0; i <= cfg->ntokens; i++) {
        const uint8_t *want = i < cfg->ntokens ? cfg->tokens[i].sha256 : h->admin;
        unsigned sc = i < cfg->ntokens ? cfg->tokens[i].scopes : WH_SCOPE_ADMIN;
        if (i == cfg->ntokens && !h->has_admin) break;
        /* No early exit: the time taken does not depend on which token matched. */
        unsigned eq = CRYPTO_memcmp(want, hash, 32) == 0;
        scopes |= sc & (0u - eq);
        if (eq && !who) who = i < cfg->ntokens ? cfg->tokens[i].name : "admin";
    }
    if (name && nn) snprintf(name, nn, "%s", who ? who : "");
    return scopes;
}

static unsigned token_check(void *ud, const char *tok, size_t n, char *name, size_t nn)
{
    return token_scopes(ud, tok, n, name, nn);
}

/* Who asks: a bearer token, else the dashboard's session cookie (whose requests that change
 * something must come from the dashboard's own page: Origin and X-CSRF-Token). Returns 0 when
 * the route is allowed, else the HTTP status with out filled. */
static int authorize(wh_http *h, struct MHD_Connection *c, req_t *r, const char *method,
                     wh_buf *out)
{
    const route_t *rt = r->rt;
    if (rt->scope == NO_AUTH) return 0;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie");
    const char *sid = NULL;
    size_t sidn = 0;
    unsigned scopes = 0;
    if (a) {
        if (strncasecmp(a, "Bearer ", 7) != 0 || !a[7])
            return error(out, 401, "unauthorized",
                         "this endpoint needs a token: Authorization: Bearer <token>");
        const char *tok = a + 7;
        size_t tn = strlen(tok);
        while (tn && (tok[tn - 1] == ' ' || tok[tn - 1] == '\t')) /* a field's trailing OWS */
            tn--;
        scopes = token_scopes(h, tok, tn, r->who, sizeof(r->who));
        if (!scopes) return error(out, 401, "unauthorized", "the token is not valid");
    } else if (cookie && wh_cookie_find(cookie, strlen(cookie), WH_SESSION_COOKIE, &sid, &sidn) &&
               wh_session_get(wh_dash_sessions(wh_service_dash(h->svc)), sid, sidn, &r->sess)) {
        r->by_cookie = true;
        memcpy(r->sid, sid, WH_SESSION_ID_HEX);
        r->sid[WH_SESSION_ID_HEX] = 0;
        snprintf(r->who, sizeof(r->who), "%s", r->sess.name);
        scopes = r->sess.scopes;
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            const char *why = wh_session_check_origin(
                &r->sess, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"),
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token"));
            if (why) return error(out, 403, "csrf", "%s", why);
        }
    } else {
        return error(out, 401, "unauthorized",
                     cookie && sid ? "the session is not valid (signed out or expired): sign in "
                                     "again"
                                   : "this endpoint needs a token: Authorization: Bearer <token>");
    }
    r->scopes = scopes;
    if (scopes & WH_SCOPE_ADMIN || rt->scope == 0 || (scopes & rt->scope)) return 0;
    char have[64], need[64];
    wh_scope_format(scopes, have, sizeof(have));
    wh_scope_format(rt->scope, need, sizeof(need));
    return error(out, 403, "forbidden", "the token's scopes (%s) do not include %s%s", have,
                 rt->scope & (rt->scope - 1) ? "any of " : "", need);
}

static enum MHD_Result respond(wh_http *h, struct MHD_Connection *c, req_t *r, int status,
                               wh_buf *out, const char *allow)
{
    if (r->own && status < 400 && !out->oom) { /* a dashboard handler's own response */
        struct MHD_Response *own = r->own;
        r->own = NULL;
        if (r->close) MHD_add_response_header(own, "Connection", "close");
        enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, own);
        MHD_destroy_response(own);
        wh_service_observe(h->svc, r->rt ? r->rt->metric : WH_RT_OTHER, status,
                           wh_mono_ns() - r->t0);
        return ret;
    }
    if (r->own) {
        MHD_destroy_response(r->own);
        r->own = NULL;
    }
    if (out->oom) {
        out->len = 0;
        out->oom = false;
        status = error(out, 500, "internal", "out of memory");
    }
    if (status != 200 || !r->content_type) r->content_type = "application/json"; /* errors too */
    /* One newline ends the body, except an empty NDJSON answer (no lines: no bytes) and a
     * raw text/plain one (EventSub's challenge must come back byte for byte). */
    bool empty_ndjson = !out->len && !strcmp(r->content_type, "application/x-ndjson");
    bool raw = !strcmp(r->content_type, "text/plain");
    if (!empty_ndjson && !raw && (!out->len || out->p[out->len - 1] != '\n'))
        wh_buf_putc(out, '\n');
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
    if (r->set_cookie[0]) MHD_add_response_header(resp, "Set-Cookie", r->set_cookie);
    wh_dash_security_headers(resp, false);
    if (r->close || (status == 503 && atomic_load(&h->stopping)))
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

/* ---- the connection guard (conn_t) ---- */

static void conn_unlink(wh_http *h, conn_t *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        h->chead = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        h->ctail = k->prev;
    k->prev = k->next = NULL;
}

static void conn_append(wh_http *h, conn_t *k)
{
    k->prev = h->ctail;
    k->next = NULL;
    if (h->ctail)
        h->ctail->next = k;
    else
        h->chead = k;
    h->ctail = k;
}

/* Under conn_lock. */
static void conn_close(wh_http *h, conn_t *k, wh_reject why)
{
    if (k->closing) return;
    shutdown(k->fd, SHUT_RDWR);
    k->closing = true;
    h->live--;
    wh_service_count_rejected(h->svc, why);
}

/* Under conn_lock: closes connections without a request in progress, least recently
 * active first, until at most `limit` are open; never `keep` (the newcomer they make room
 * for: when every other one is busy, it is told so with a 503). */
static void conn_make_room(wh_http *h, int limit, const conn_t *keep)
{
    for (conn_t *k = h->chead; k && h->live > limit; k = k->next)
        if (!k->closing && k->state != C_BUSY && k != keep) conn_close(h, k, WH_REJ_EVICTED);
}

/* The connection's state becomes st (only from `from`, unless that is -1). */
static void conn_set_from(wh_http *h, struct MHD_Connection *c, int from, conn_state st)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_t *k = ci ? ci->socket_context : NULL;
    if (!k) return;
    pthread_mutex_lock(&h->conn_lock);
    if (k->state != st && (from < 0 || (int)k->state == from)) {
        conn_unlink(h, k);
        k->state = st;
        k->since_ms = wh_now_ms();
        conn_append(h, k);
    }
    pthread_mutex_unlock(&h->conn_lock);
}

static void conn_set(wh_http *h, struct MHD_Connection *c, conn_state st)
{
    conn_set_from(h, c, -1, st);
}

static void *guard_main(void *arg)
{
    wh_http *h = arg;
    const wh_config *cfg = h->cfg;
    pthread_mutex_lock(&h->conn_lock);
    while (!h->guard_quit) {
        struct timespec ts = wh_deadline_ms(100);
        pthread_cond_timedwait(&h->guard_cond, &h->conn_lock, &ts);
        int64_t now = wh_now_ms();
        for (conn_t *k = h->chead; k; k = k->next) {
            if (k->closing) continue;
            if (k->state == C_HEAD && now - k->since_ms > cfg->limits.head_ms)
                conn_close(h, k, WH_REJ_HEAD_TIMEOUT);
            else if (k->state == C_IDLE && now - k->since_ms > cfg->limits.idle_ms)
                conn_close(h, k, WH_REJ_IDLE);
        }
    }
    pthread_mutex_unlock(&h->conn_lock);
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    wh_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_t *k = calloc(1, sizeof(*k));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = k;
        atomic_fetch_add(&h->conns, 1);
        wh_service_connections(h->svc, 1);
        if (!k) return;
        k->fd = ci ? ci->connect_fd : -1;
        k->state = C_HEAD;
        k->since_ms = wh_now_ms();
        pthread_mutex_lock(&h->conn_lock);
        conn_append(h, k);
        if (k->fd < 0)
            k->closing = true; /* cannot be shut down: never chosen, never counted */
        else
            h->live++;
        /* A newcomer past the limit takes the place of a connection that sends nothing. */
        if (h->live > h->cfg->limits.connections)
            conn_make_room(h, (int)h->cfg->limits.connections, k);
        pthread_mutex_unlock(&h->conn_lock);
        return;
    }
    conn_t *k = *socket_context;
    atomic_fetch_sub(&h->conns, 1);
    wh_service_connections(h->svc, -1);
    if (!k) return;
    pthread_mutex_lock(&h->conn_lock);
    conn_unlink(h, k);
    if (!k->closing) h->live--;
    pthread_mutex_unlock(&h->conn_lock);
    free(k);
    *socket_context = NULL;
}

/* ---- the request head ---- */

/* The request line, before libmicrohttpd unescapes it (its unescaping stops at a %00, so
 * "/v1/decisions/a%00b" would be looked up as "a"): decodes the path into r->url, or says
 * in r->bad_url why it cannot be served. */
static void url_check(req_t *r, const char *uri)
{
    size_t n = strcspn(uri, "?"), len = 0;
    r->path_buf = malloc(n + 1);
    r->url = r->path_buf ? r->path_buf : "";
    if (!r->path_buf)
        snprintf(r->bad_url, sizeof(r->bad_url), "out of memory");
    else
        wh_path_decode(uri, n, r->path_buf, &len, r->bad_url, sizeof(r->bad_url));
}

/* libmicrohttpd calls this with the raw request line's URI, before anything else of the
 * request: the request's state starts here (and on_completed frees it). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    wh_http *h = cls;
    req_t *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    wh_buf_init(&r->body);
    wh_buf_init(&r->answer);
    r->t0 = wh_mono_ns();
    r->conn = c;
    r->late = atomic_load(&h->stopping);
    /* The next request on a kept-alive connection: its head has limits.head_timeout from
     * now (a new connection's deadline runs from its accept, and is not moved). */
    conn_set_from(h, c, C_IDLE, C_HEAD);
    url_check(r, uri);
    return r;
}

typedef struct {
    char why[200];
    int ncl;              /* Content-Length headers */
    uint64_t cl;          /* the first one's value */
    bool cl_bad;          /* not a number, or two that differ */
    bool te;              /* Transfer-Encoding */
    bool te_chunked;      /* ... and it is exactly chunked */
    const char *prev_end; /* the end of the previous header's value */
} head_scan;

/* Every header of the request: framing (RFC 9112 section 6.3) and control bytes. */
static enum MHD_Result head_one(void *cls, enum MHD_ValueKind kind, const char *key, size_t klen,
                                const char *value, size_t vlen)
{
    head_scan *hs = cls;
    if (hs->why[0]) return MHD_NO;
    /* libmicrohttpd 0.9.75 (Debian 12) takes a header value up to its first NUL and drops
     * the rest of the line: "Bearer <token>\0junk" reads as "Bearer <token>". The line's
     * bytes are still in its buffer, in order, each line's end replaced by NULs: whatever
     * lies between the end of one value and the start of the next header, or the blank
     * line after the last, other than those NULs, was hidden behind a NUL. */
    if (hs->prev_end && key > hs->prev_end && key - hs->prev_end <= 4) {
        for (const char *q = hs->prev_end; q < key; q++)
            if (*q) {
                snprintf(hs->why, sizeof(hs->why), "a header before '%.*s' holds a NUL byte",
                         (int)(klen < 64 ? klen : 64), key);
                return MHD_NO;
            }
    } else if (hs->prev_end && key > hs->prev_end && key - hs->prev_end < 64 * 1024) {
        snprintf(hs->why, sizeof(hs->why), "a header before '%.*s' holds a NUL byte",
                 (int)(klen < 64 ? klen : 64), key);
        return MHD_NO;
    }
    hs->prev_end = value ? value + vlen : NULL;
    char why[96];
    if (wh_bad_bytes(value ? value : "", vlen, true, why, sizeof(why))) {
        snprintf(hs->why, sizeof(hs->why), "the header '%.*s' holds %s",
                 (int)(klen < 64 ? klen : 64), key, why);
        return MHD_NO;
    }
    if (klen == 14 && !strncasecmp(key, "Content-Length", 14)) {
        char *end;
        errno = 0;
        unsigned long long v = value && *value ? strtoull(value, &end, 10) : 0;
        bool num = value && *value >= '0' && *value <= '9' && !*end && errno == 0;
        if (!num || (hs->ncl && v != hs->cl)) hs->cl_bad = true;
        if (!hs->ncl) hs->cl = v;
        hs->ncl++;
    } else if (klen == 17 && !strncasecmp(key, "Transfer-Encoding", 17)) {
        hs->te_chunked = !hs->te && value && !strcasecmp(value, "chunked");
        hs->te = true;
    }
    return MHD_YES;
}

/* The last header's value must be followed by line ends (NULs) only: see head_one. */
static bool head_tail_ok(const head_scan *hs)
{
    return !hs->prev_end || (hs->prev_end[0] == 0 && hs->prev_end[1] == 0);
}

typedef struct {
    char why[200];
} args_scan;

static enum MHD_Result arg_one(void *cls, enum MHD_ValueKind kind, const char *key, size_t klen,
                               const char *value, size_t vlen)
{
    args_scan *as = cls;
    char why[96];
    if (wh_bad_bytes(key, klen, false, why, sizeof(why)) ||
        (value && wh_bad_bytes(value, vlen, false, why, sizeof(why)))) {
        snprintf(as->why, sizeof(as->why), "the query argument '%.*s' holds %s",
                 (int)(klen < 64 ? klen : 64), key, why);
        return MHD_NO;
    }
    return MHD_YES;
}

/* Everything that can be decided from the request's head, before any of its body is read,
 * so that a request to be refused costs no memory: framing, the request line, the route,
 * the token, the declared length, the connection limit. 0 when the body may come; else
 * the status, with out filled (and *allow for a 405). */
static int head_check(wh_http *h, struct MHD_Connection *c, req_t *r, const char *method,
                      wh_buf *out, char *allow, size_t allow_n)
{
    head_scan hs = {0};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, head_one, &hs);
    if (!hs.why[0] && !head_tail_ok(&hs))
        snprintf(hs.why, sizeof(hs.why), "the last header holds a NUL byte");
    if (!hs.why[0] && hs.te && hs.ncl)
        snprintf(hs.why, sizeof(hs.why),
                 "both Content-Length and Transfer-Encoding: the body's length is ambiguous");
    else if (!hs.why[0] && hs.te && !hs.te_chunked)
        snprintf(hs.why, sizeof(hs.why), "Transfer-Encoding must be chunked, once");
    else if (!hs.why[0] && hs.cl_bad)
        snprintf(hs.why, sizeof(hs.why),
                 "Content-Length must be one number (two that differ, or not a number)");
    if (hs.why[0]) {
        /* The body cannot be told from a next request: answer, and close (RFC 9112 6.3). */
        r->close = true;
        wh_service_count_rejected(h->svc, WH_REJ_BAD_REQUEST);
        return error(out, 400, "bad_request", "%s", hs.why);
    }
    bool has_body = hs.te || (hs.ncl && hs.cl > 0);
    r->close = has_body; /* an answer before the body: the body is not read */
    args_scan as = {{0}};
    if (!r->bad_url[0]) MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, arg_one, &as);
    if (r->bad_url[0] || as.why[0])
        return error(out, 400, "bad_argument", "%s", r->bad_url[0] ? r->bad_url : as.why);
    r->rt = find_route(method, r->url, allow, allow_n);
    if (r->late) return error(out, 503, "stopping", "whiply is shutting down");
    if (!r->rt && allow[0])
        return error(out, 405, "method_not_allowed", "%s %s: this path takes %s", method, r->url,
                     allow);
    if (!r->rt)
        return error(out, 404, "not_found", "no such endpoint: %s %s (docs/api.md lists them)",
                     method, r->url);
    int st = authorize(h, c, r, method, out);
    if (st) return st;
    if (hs.ncl && hs.cl > (uint64_t)h->cfg->limits.body) {
        wh_service_count_rejected(h->svc, WH_REJ_BODY);
        return error(out, 413, "body_too_large",
                     "the body is %llu bytes; the limit is %lld (limits.body)",
                     (unsigned long long)hs.cl, (long long)h->cfg->limits.body);
    }
    /* Past the limit even after closing every connection that sends nothing: every one is
     * busy. /healthz still answers: it says the process is alive, which it is. */
    pthread_mutex_lock(&h->conn_lock);
    bool full = h->live > h->cfg->limits.connections;
    pthread_mutex_unlock(&h->conn_lock);
    if (full && r->rt->scope != NO_AUTH) {
        wh_service_count_rejected(h->svc, WH_REJ_CONNECTIONS);
        return error(out, 503, "too_many_connections",
                     "more than %lld connections are busy; retry later",
                     (long long)h->cfg->limits.connections);
    }
    /* The body's room at once, for the length declared (within limits.body): no doublings. */
    if (hs.ncl && hs.cl) wh_buf_reserve(&r->body, (size_t)hs.cl);
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    wh_http *h = cls;
    req_t *r = *con_cls;
    if (!r) return MHD_NO; /* on_uri ran out of memory */
    wh_buf out;
    wh_buf_init(&out);
    char allowed[64] = "";
    int status;
    if (!r->started) { /* the head is in: decide what can be decided without the body */
        r->started = true;
        conn_set(h, c, C_BUSY);
        pthread_mutex_lock(&h->lock);
        h->inflight++;
        r->counted = true;
        pthread_mutex_unlock(&h->lock);
        status = head_check(h, c, r, method, &out, allowed, sizeof(allowed));
        if (!status) return MHD_YES;
        r->responded = true;
        enum MHD_Result ret = respond(h, c, r, status, &out, status == 405 ? allowed : NULL);
        wh_buf_free(&out);
        return ret;
    }
    if (r->responded) { /* answered from its head; what comes of the body is dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big && r->body.len + *upload_size > (size_t)h->cfg->limits.body) {
            r->too_big = true; /* a chunked body past the limit: read on, keep nothing */
            wh_buf_free(&r->body);
            wh_buf_init(&r->body);
        }
        if (!r->too_big) wh_buf_append(&r->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
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
    r->close = false; /* the body was read: the connection may serve the next request */
    if (r->too_big) {
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
    conn_set(h, c, C_IDLE);
    if (!r) return;
    if (r->counted) {
        pthread_mutex_lock(&h->lock);
        if (--h->inflight == 0) pthread_cond_broadcast(&h->idle);
        pthread_mutex_unlock(&h->lock);
    }
    wh_buf_free(&r->body);
    wh_buf_free(&r->answer);
    if (r->own) MHD_destroy_response(r->own);
    free(r->path_buf);
    free(r);
    *con_cls = NULL;
}

#define LOG_WINDOW_MS 10000
#define LOG_BURST 20

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    wh_http *h = cls;
    int64_t now = wh_now_ms();
    pthread_mutex_lock(&h->log_lock);
    int dropped = 0;
    if (now - h->log_window_ms >= LOG_WINDOW_MS) {
        dropped = h->log_dropped;
        h->log_window_ms = now;
        h->log_n = h->log_dropped = 0;
    }
    bool say = h->log_n++ < LOG_BURST;
    if (!say) h->log_dropped++;
    pthread_mutex_unlock(&h->log_lock);
    if (dropped)
        fprintf(stderr, "whiply: http: (%d more messages in the last %d s not shown)\n", dropped,
                LOG_WINDOW_MS / 1000);
    if (!say) return;
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
}

static void stop_guard(wh_http *h)
{
    pthread_mutex_lock(&h->conn_lock);
    h->guard_quit = true;
    pthread_cond_signal(&h->guard_cond);
    pthread_mutex_unlock(&h->conn_lock);
    if (h->guard_started) pthread_join(h->guard, NULL);
    h->guard_started = false;
}

static void http_free(wh_http *h)
{
    pthread_mutex_destroy(&h->slow_lock);
    pthread_cond_destroy(&h->slow_cond);
    pthread_mutex_destroy(&h->conn_lock);
    pthread_cond_destroy(&h->guard_cond);
    pthread_mutex_destroy(&h->log_lock);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->idle);
    free(h);
}

WH_NOIPA static wh_http *http_start_buf(wh_service *svc, const char *listen,
                                        const uint8_t *admin_sha256, int *port, char *err,
                                        size_t errlen)
{
    wh_http *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->svc = svc;
    h->cfg = wh_service_config(svc);
    wh_dash_set_token_check(wh_service_dash(svc), token_check, h);
    if (admin_sha256) {
        memcpy(h->admin, admin_sha256, 32);
        h->has_admin = true;
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->idle, NULL);
    pthread_mutex_init(&h->slow_lock, NULL);
    pthread_cond_init(&h->slow_cond, NULL);
    pthread_mutex_init(&h->conn_lock, NULL);
    pthread_cond_init(&h->guard_cond, NULL);
    pthread_mutex_init(&h->log_lock, NULL);
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
    if (pthread_create(&h->guard, NULL, guard_main, h) != 0) {
        snprintf(err, errlen, "cannot start the connection guard thread");
        goto fail;
    }
    h->guard_started = true;
    /* libmicrohttpd's own silence timeout stays as a backstop, past the guard's absolute
     * deadlines (which come first, and are counted). Past the connection limit, 64 more are
     * accepted so that the guard can close idle ones for them (and the refusal be a clear
     * 503 rather than a reset). */
    int64_t quiet_ms = h->cfg->limits.idle_ms > h->cfg->limits.head_ms ? h->cfg->limits.idle_ms
                                                                       : h->cfg->limits.head_ms;
    unsigned idle_s = (unsigned)((quiet_ms + 999) / 1000) + 10;
    h->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG | v6,
        0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR,
        addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(h->cfg->limits.connections + 64),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)h->cfg->limits.per_address,
        MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(pool > 1 ? pool : 0), /* 0: one loop */
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
    stop_guard(h);
    http_free(h);
    return NULL;
}

void wh_http_stop(wh_http *h, int64_t timeout_ms)
{
    if (!h) return;
    atomic_store(&h->stopping, true);
    MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET) close(s);
    /* event streams never end by themselves: end them, so that they are not waited for */
    wh_stream_close(wh_dash_stream(wh_service_dash(h->svc)));
    struct timespec ts = wh_deadline_ms(timeout_ms);
    pthread_mutex_lock(&h->lock);
    while (h->inflight > 0)
        if (pthread_cond_timedwait(&h->idle, &h->lock, &ts) != 0) break;
    pthread_mutex_unlock(&h->lock);
    stop_slow(h);
    MHD_stop_daemon(h->d);
    stop_guard(h); /* after the daemon: its last NOTIFY_CLOSED calls take conn_lock */
    wh_dash_set_token_check(wh_service_dash(h->svc), NULL, NULL);
    http_free(h);
}

wh_http *wh_http_start(wh_service *svc, const char *listen, const uint8_t *admin_sha256, int *port,
                       wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    wh_http *h = http_start_buf(svc, listen, admin_sha256, port, e->message, sizeof(e->message));
    e->code = h ? WH_OK : WH_EIO;
    return h;
}
