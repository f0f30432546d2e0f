/* dash.c - the dashboard's side of the daemon (see dash.h). */
#define _GNU_SOURCE
#include "dash.h"

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

/* One event kept for dry runs: its line, its decision, its text (for examples). */
typedef struct {
    int64_t at_ms;
    uint32_t line_len, dec_len, text_len;
    char data[]; /* line, decision, text */
} recent_t;

typedef struct {
    char hash[17], previous[17], by[32];
    unsigned nrules;
    int64_t loaded_ms;
    char *source;
} ruleset_t;

struct wh_dash {
    wh_stream *stream;
    wh_sessions *sessions;
    wh_token_check_fn token_check;
    void *token_ud;
    pthread_mutex_t recent_lock;
    recent_t *recent[WH_DASH_RECENT];
    uint32_t rhead, rcount; /* oldest at rhead */
    size_t rbytes;
    pthread_mutex_t hist_lock;
    ruleset_t hist[WH_DASH_RULESETS]; /* newest at (hhead + hcount - 1) */
    uint32_t hhead, hcount;
};

wh_dash *wh_dash_new(void)
{
    wh_dash *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->stream = wh_stream_new();
    d->sessions = wh_sessions_new();
    if (!d->stream || !d->sessions) {
        wh_stream_free(d->stream);
        wh_sessions_free(d->sessions);
        free(d);
        return NULL;
    }
    pthread_mutex_init(&d->recent_lock, NULL);
    pthread_mutex_init(&d->hist_lock, NULL);
    return d;
}

void wh_dash_free(wh_dash *d)
{
    if (!d) return;
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

void wh_dash_decided(wh_dash *d, const wh_event *ev, const char *line, size_t line_len,
                     const char *decision, size_t dn, int64_t now_ms)
{
    if (!d) return;
    recent_t *r = malloc(sizeof(*r) + line_len + dn + ev->text.n);
    if (r) {
        r->at_ms = now_ms;
        r->line_len = (uint32_t)line_len;
        r->dec_len = (uint32_t)dn;
        r->text_len = ev->text.n;
        memcpy(r->data, line, line_len);
        memcpy(r->data + line_len, decision, dn);
        if (ev->text.n) memcpy(r->data + line_len + dn, ev->text.p, ev->text.n);
        size_t sz = line_len + dn + ev->text.n;
        pthread_mutex_lock(&d->recent_lock);
        while (d->rcount &&
               (d->rcount == WH_DASH_RECENT || d->rbytes + sz > WH_DASH_RECENT_BYTES)) {
            recent_t *o = d->recent[d->rhead];
            d->rbytes -= o->line_len + o->dec_len + o->text_len;
            free(o);
            d->rhead = (d->rhead + 1) % WH_DASH_RECENT;
            d->rcount--;
        }
        d->recent[(d->rhead + d->rcount++) % WH_DASH_RECENT] = r;
        d->rbytes += sz;
        pthread_mutex_unlock(&d->recent_lock);
    }
    if (!wh_stream_active(d->stream)) return;
    wh_buf b;
    wh_buf_init(&b);
    wh_buf_puts(&b, "{\"at_ms\":");
    wh_buf_i64(&b, now_ms);
    wh_buf_puts(&b, ",\"event\":{");
    put_str(&b, "id", ev->id.p, ev->id.n, false);
    put_cstr(&b, "type", wh_event_type_names[ev->type], true);
    put_str(&b, "platform", ev->platform.p, ev->platform.n, true);
    put_str(&b, "channel", ev->channel.p, ev->channel.n, true);
    wh_buf_puts(&b, ",\"user\":{");
    put_str(&b, "id", ev->user_id.p, ev->user_id.n, false);
    put_str(&b, "name", ev->user_name.p, ev->user_name.n, true);
    wh_buf_putc(&b, '}');
    if (ev->type == WH_EV_MOD_ACTION) {
        put_str(&b, "moderator", ev->moderator.p, ev->moderator.n, true);
        put_str(&b, "target", ev->target.p, ev->target.n, true);
        put_str(&b, "action", ev->mod_action.p, ev->mod_action.n, true);
    }
    put_str(&b, "text", ev->text.p, ev->text.n, true);
    wh_buf_puts(&b, "},\"decision\":");
    wh_buf_append(&b, decision, dn);
    wh_buf_putc(&b, '}');
    if (!b.oom) wh_stream_publish(d->stream, "decision", b.p, b.len);
    wh_buf_free(&b);
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
    q->resp = wh_stream_response(dash_of(q)->stream, q->conn);
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

int wh_dash_action(wh_dash_req *q, wh_buf *out)
{
    wh_action_request rq;
    const char *code;
    char msg[256];
    if (!wh_action_request_parse(q->body ? q->body : "", q->len, &rq, &code, msg, sizeof(msg)))
        return err(out, 400, code, "%s", msg);
    uint8_t rnd[6];
    char hex[13];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) return err(out, 500, "internal", "no random bytes");
    wh_hex_encode(rnd, sizeof(rnd), hex);
    hex[12] = 0;
    char id[96];
    snprintf(id, sizeof(id), "manual:%s:%lld-%s", rq.action, (long long)wh_now_ms(), hex);
    wh_buf ev, dec;
    wh_buf_init(&ev);
    wh_buf_init(&dec);
    wh_buf_putc(&ev, '{');
    put_cstr(&ev, "id", id, false);
    put_cstr(&ev, "type", "mod_action", true);
    put_cstr(&ev, "platform", rq.platform, true);
    put_cstr(&ev, "channel", rq.channel, true);
    put_cstr(&ev, "moderator", q->who ? q->who : "dashboard", true);
    put_cstr(&ev, "target", rq.user, true);
    put_cstr(&ev, "action", rq.action, true);
    if (rq.duration_s) wh_buf_printf(&ev, ",\"duration_s\":%lld", (long long)rq.duration_s);
    if (rq.has_note) put_cstr(&ev, "note", rq.note, true);
    wh_buf_putc(&ev, '}');
    wh_ingest_req in = {.body = ev.p, .len = ev.len, .single = true, .out = &dec};
    wh_status st = ev.oom ? WH_ENOMEM : wh_ingest_submit(q->svc, &in);
    int status = 200;
    if (st == WH_EBUSY)
        status = err(out, 429, "busy",
                     "the audit queue is full; retry after the Retry-After "
                     "seconds");
    else if (st != WH_OK)
        status = err(out, wh_http_status(st), "store_error", "the action could not be recorded: %s",
                     wh_status_str(st));
    else if (in.nerrors)
        status = err(out, 400, "bad_event", "the action's event was refused: %.*s",
                     (int)(dec.len > 300 ? 300 : dec.len), dec.p);
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
        q->ticket = in.ticket > op_ticket ? in.ticket : op_ticket;
        wh_buf_puts(out, "{\"event\":");
        wh_buf_append(out, ev.p, ev.len);
        wh_buf_puts(out, ",\"decision\":");
        wh_buf_append(out, dec.p, dec.len && dec.p[dec.len - 1] == '\n' ? dec.len - 1 : dec.len);
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
    /* A copy of the recent events (the ring moves on meanwhile). */
    pthread_mutex_lock(&d->recent_lock);
    uint32_t n = d->rcount;
    recent_t **snap = malloc(sizeof(*snap) * (n ? n : 1));
    for (uint32_t i = 0; snap && i < n; i++) {
        recent_t *r = d->recent[(d->rhead + i) % WH_DASH_RECENT];
        size_t sz = sizeof(*r) + r->line_len + r->dec_len + r->text_len;
        if ((snap[i] = malloc(sz))) memcpy(snap[i], r, sz);
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
        wh_outcome oa = wh_worker_line(wa, r->data, r->line_len, i + 1, r->at_ms, &da);
        wh_outcome ob = wh_worker_line(wb, r->data, r->line_len, i + 1, r->at_ms, &db);
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
            put_str(out, "text", r->data + r->line_len + r->dec_len, r->text_len, true);
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
