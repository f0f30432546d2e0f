/* twitch.c - see twitch.h: the Helix executor and the EventSub receivers (the pure parts are
 * in twitch_parse.c). */
#define _GNU_SOURCE
#include "twitch.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "serve/ingest.h"

/* ---------------------------------------------------------------- Helix */

#define RECENT 64 /* whiply's own recent bans and deletes, to tell them from a moderator's */
#define REVERT_MAX 1000

typedef struct revert {
    struct revert *next;
    int64_t at_ms;
    char body[128]; /* the PATCH /chat/settings body that turns the mode off */
} revert_t;

struct wh_helix {
    char *helix_url, *token_url, *client_id, *client_secret, *broadcaster, *moderator, *name;
    char *ca_file;
    bool verify;
    pthread_mutex_t mu; /* token, refresh, recent, reverts */
    char token[512], refresh[512];
    struct {
        char id[64];
        int64_t at_ms;
    } recent[RECENT];
    uint32_t recent_next;
    int64_t limited_until_ms; /* Ratelimit-Remaining was 0: the bucket refills at this time */
    revert_t *reverts;
    uint32_t nreverts;
    pthread_t th;
    pthread_cond_t cv;
    bool stop;
};

typedef struct {
    long status;
    wh_buf body;
    int64_t remaining, reset_s; /* -1: absent */
    char err[CURL_ERROR_SIZE];
} hresp;

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    wh_buf_append((wh_buf *)ud, p, sz * nm);
    return sz * nm;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    hresp *r = ud;
    size_t n = sz * nm;
    static const struct {
        const char *name;
        size_t off;
    } hs[] = {{"ratelimit-remaining:", offsetof(hresp, remaining)},
              {"ratelimit-reset:", offsetof(hresp, reset_s)}};
    for (size_t i = 0; i < WH_ARRAY_LEN(hs); i++) {
        size_t hl = strlen(hs[i].name);
        if (n > hl && !strncasecmp(p, hs[i].name, hl)) {
            char v[32];
            size_t vl = n - hl < sizeof(v) - 1 ? n - hl : sizeof(v) - 1;
            memcpy(v, p + hl, vl);
            v[vl] = 0;
            *(int64_t *)((char *)r + hs[i].off) = strtoll(v, NULL, 10);
        }
    }
    return n;
}

/* One HTTP request (method, url, body or NULL) with the current token: r filled. */
static bool http(wh_helix *h, const char *method, const char *url, const char *ctype,
                 const char *body, bool auth, hresp *r)
{
    CURL *cu = curl_easy_init();
    if (!cu) return false;
    struct curl_slist *hd = NULL;
    char line[600];
    if (auth) {
        pthread_mutex_lock(&h->mu);
        snprintf(line, sizeof(line), "Authorization: Bearer %s", h->token);
        pthread_mutex_unlock(&h->mu);
        hd = curl_slist_append(hd, line);
        snprintf(line, sizeof(line), "Client-Id: %s", h->client_id);
        hd = curl_slist_append(hd, line);
    }
    if (ctype) {
        snprintf(line, sizeof(line), "Content-Type: %s", ctype);
        hd = curl_slist_append(hd, line);
    }
    wh_buf_init(&r->body);
    r->remaining = r->reset_s = -1;
    r->err[0] = 0;
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(cu, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, r->err);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    if (h->ca_file) curl_easy_setopt(cu, CURLOPT_CAINFO, h->ca_file);
    if (!h->verify) {
        curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode rc = curl_easy_perform(cu);
    r->status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &r->status);
    else if (!r->err[0])
        snprintf(r->err, sizeof(r->err), "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hd);
    curl_easy_cleanup(cu);
    return rc == CURLE_OK;
}

/* POST token_url grant_type=refresh_token: a new token pair (RFC 6749, 6). */
static bool refresh_token(wh_helix *h, char *why, size_t whyn)
{
    pthread_mutex_lock(&h->mu);
    bool can = h->refresh[0] && h->client_secret;
    char rt[512];
    snprintf(rt, sizeof(rt), "%s", h->refresh);
    pthread_mutex_unlock(&h->mu);
    if (!can) {
        snprintf(why, whyn, "the token was refused and there is no refresh_token to renew it");
        return false;
    }
    CURL *cu = curl_easy_init();
    char *e1 = cu ? curl_easy_escape(cu, rt, 0) : NULL;
    char *e2 = cu ? curl_easy_escape(cu, h->client_id, 0) : NULL;
    char *e3 = cu ? curl_easy_escape(cu, h->client_secret, 0) : NULL;
    char *form = NULL;
    if (e1 && e2 && e3 &&
        asprintf(&form, "grant_type=refresh_token&refresh_token=%s&client_id=%s&client_secret=%s",
                 e1, e2, e3) < 0)
        form = NULL;
    curl_free(e1);
    curl_free(e2);
    curl_free(e3);
    if (cu) curl_easy_cleanup(cu);
    if (!form) return false;
    hresp r;
    bool ok = http(h, "POST", h->token_url, "application/x-www-form-urlencoded", form, false, &r);
    OPENSSL_cleanse(form, strlen(form));
    free(form);
    char access[512], refresh[512];
    if (ok && r.status == 200 &&
        wh_twitch_token_parse(r.body.p ? r.body.p : "", r.body.len, access, sizeof(access), refresh,
                              sizeof(refresh))) {
        pthread_mutex_lock(&h->mu);
        snprintf(h->token, sizeof(h->token), "%s", access);
        if (refresh[0]) snprintf(h->refresh, sizeof(h->refresh), "%s", refresh);
        pthread_mutex_unlock(&h->mu);
        fprintf(stderr, "whiply: twitch %s: the access token was refreshed\n", h->name);
    } else {
        char msg[200] = "";
        if (r.body.p) wh_helix_error(r.body.p, r.body.len, msg, sizeof(msg));
        snprintf(why, whyn, "the token refresh failed: %s%s%s", ok ? "HTTP " : r.err, ok ? "" : "",
                 msg[0] ? msg
                 : ok   ? "no token"
                        : "");
        ok = false;
    }
    wh_buf_free(&r.body);
    return ok;
}

static void res_set(wh_op_result *res, wh_op_result_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void res_set(wh_op_result *res, wh_op_result_code code, const char *fmt, ...)
{
    res->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
}

static void remember(wh_helix *h, const char *id)
{
    if (!id || !*id) return;
    pthread_mutex_lock(&h->mu);
    snprintf(h->recent[h->recent_next].id, sizeof(h->recent[0].id), "%s", id);
    h->recent[h->recent_next].at_ms = wh_now_ms();
    h->recent_next = (h->recent_next + 1) % RECENT;
    pthread_mutex_unlock(&h->mu);
}

bool wh_helix_recent(wh_helix *h, const char *id, size_t n)
{
    int64_t now = wh_now_ms();
    bool found = false;
    pthread_mutex_lock(&h->mu);
    for (uint32_t i = 0; i < RECENT && !found; i++)
        found = now - h->recent[i].at_ms < 30000 && strlen(h->recent[i].id) == n &&
                !memcmp(h->recent[i].id, id, n);
    pthread_mutex_unlock(&h->mu);
    return found;
}

/* One Helix call with the outcome mapped: 2xx done, 401 refresh once and again, 429 retry at
 * Ratelimit-Reset, 5xx and network retry, other 4xx failed (ok_4xx: a message of Twitch's
 * that means it is already so, as "is already banned", is done). */
static void call(wh_helix *h, const char *method, const char *path, const char *query,
                 const char *body, const char *what, const char *ok_4xx, wh_op_result *res)
{
    int64_t now = wh_now_ms();
    pthread_mutex_lock(&h->mu);
    int64_t until = h->limited_until_ms;
    pthread_mutex_unlock(&h->mu);
    if (until > now) { /* the bucket is empty: do not spend a request on a 429 */
        res->retry_after_ms = until - now;
        return res_set(res, WH_OPR_RETRY, "%s: Helix's rate limit bucket is empty until its reset",
                       what);
    }
    char url[1024];
    snprintf(url, sizeof(url), "%s%s?%s", h->helix_url, path, query);
    hresp r;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool ok = http(h, method, url, body ? "application/json" : NULL, body, true, &r);
        if (!ok) {
            res_set(res, WH_OPR_RETRY, "%s: %s", what, r.err);
            wh_buf_free(&r.body);
            return;
        }
        if (r.remaining == 0 && r.reset_s > 0) {
            pthread_mutex_lock(&h->mu);
            h->limited_until_ms = r.reset_s * 1000;
            pthread_mutex_unlock(&h->mu);
        }
        if (r.status != 401 || attempt) break;
        char why[300];
        wh_buf_free(&r.body);
        if (!refresh_token(h, why, sizeof(why)))
            return res_set(res, WH_OPR_RETRY, "%s: %s", what, why);
    }
    char msg[200] = "";
    if (r.body.p) wh_helix_error(r.body.p, r.body.len, msg, sizeof(msg));
    if (r.status >= 200 && r.status < 300) {
        res_set(res, WH_OPR_DONE, "%s: HTTP %ld", what, r.status);
    } else if (r.status == 429) {
        int64_t wait = r.reset_s > 0 ? r.reset_s * 1000 - wh_now_ms() : 0;
        res->retry_after_ms = wait > 0 ? wait : 1000;
        res_set(res, WH_OPR_RETRY, "%s: HTTP 429 (rate limited; the bucket refills at %lld)", what,
                (long long)r.reset_s);
    } else if (r.status >= 500 || r.status == 401) {
        res_set(res, WH_OPR_RETRY, "%s: HTTP %ld %s", what, r.status, msg);
    } else if (ok_4xx && msg[0] && strcasestr(msg, ok_4xx)) {
        res_set(res, WH_OPR_DONE, "%s: already so (HTTP %ld %s)", what, r.status, msg);
    } else {
        res_set(res, WH_OPR_FAILED, "%s: HTTP %ld %s", what, r.status, msg);
    }
    wh_buf_free(&r.body);
}

/* Helix's chat settings for channel_action's modes, on and off. */
static const struct {
    const char *mode;
    const char *on, *off;
} settings[] = {
    {"followers_only", "{\"follower_mode\":true,\"follower_mode_duration\":0}",
     "{\"follower_mode\":false}"},
    {"slow", "{\"slow_mode\":true,\"slow_mode_wait_time\":30}", "{\"slow_mode\":false}"},
    {"subscribers_only", "{\"subscriber_mode\":true}", "{\"subscriber_mode\":false}"},
    {"emote_only", "{\"emote_mode\":true}", "{\"emote_mode\":false}"},
};

static void *revert_main(void *arg)
{
    wh_helix *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        int64_t now = wh_now_ms(), next = -1;
        revert_t *due = NULL;
        for (revert_t **pp = &h->reverts; *pp; pp = &(*pp)->next)
            if ((*pp)->at_ms <= now) {
                due = *pp;
                *pp = due->next;
                h->nreverts--;
                break;
            } else if (next < 0 || (*pp)->at_ms < next) {
                next = (*pp)->at_ms;
            }
        if (due) {
            pthread_mutex_unlock(&h->mu);
            char q[256];
            snprintf(q, sizeof(q), "broadcaster_id=%s&moderator_id=%s", h->broadcaster,
                     h->moderator);
            wh_op_result res = {0};
            call(h, "PATCH", "/chat/settings", q, due->body, "chat settings back", NULL, &res);
            if (res.code == WH_OPR_RETRY) { /* try again in a while */
                due->at_ms = wh_now_ms() + (res.retry_after_ms > 0 ? res.retry_after_ms : 5000);
                pthread_mutex_lock(&h->mu);
                due->next = h->reverts;
                h->reverts = due;
                h->nreverts++;
                continue;
            }
            if (res.code != WH_OPR_DONE)
                fprintf(stderr, "whiply: twitch %s: %s\n", h->name, res.detail);
            free(due);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        if (next < 0) {
            pthread_cond_wait(&h->cv, &h->mu);
        } else {
            struct timespec ts = wh_deadline_ms(next - now);
            pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

void wh_helix_execute(void *ud, const wh_op *op, wh_op_result *res)
{
    wh_helix *h = ud;
    res->retry_after_ms = 0;
    char q[512], body[1200], reason[520];
    wh_buf rb;
    wh_buf_init(&rb);
    const char *why = op->reason[0] ? op->reason : op->message[0] ? op->message : "whiply";
    /* reason: at most 500 characters (Helix) */
    snprintf(reason, sizeof(reason), "%.500s", why);
    wh_buf_json_str(&rb, reason, strlen(reason));
    const char *user = op->user_id;
    snprintf(q, sizeof(q), "broadcaster_id=%s&moderator_id=%s", h->broadcaster, h->moderator);
    bool need_user = op->kind == WH_OP_WARN || op->kind == WH_OP_TIMEOUT || op->kind == WH_OP_BAN ||
                     op->kind == WH_OP_UNBAN || op->kind == WH_OP_UNTIMEOUT;
    for (const char *p = user; need_user && *p; p++)
        if (*p < '0' || *p > '9') {
            res_set(res, WH_OPR_FAILED, "'%s' is not a Twitch user id (digits)", user);
            goto out;
        }
    if (need_user && !*user) {
        res_set(res, WH_OPR_FAILED, "no Twitch user id for the target");
        goto out;
    }
    switch (op->kind) {
    case WH_OP_BAN:
    case WH_OP_TIMEOUT: {
        uint32_t d = op->duration_s;
        if (op->kind == WH_OP_TIMEOUT && d < 1) d = 1;
        if (d > 1209600) d = 1209600; /* Helix: a timeout is 1 s to 2 weeks */
        if (op->kind == WH_OP_TIMEOUT)
            snprintf(body, sizeof(body),
                     "{\"data\":{\"user_id\":\"%s\",\"duration\":%u,\"reason\":%s}}", user, d,
                     wh_buf_cstr(&rb));
        else
            snprintf(body, sizeof(body), "{\"data\":{\"user_id\":\"%s\",\"reason\":%s}}", user,
                     wh_buf_cstr(&rb));
        remember(h, user);
        call(h, "POST", "/moderation/bans", q, body,
             op->kind == WH_OP_BAN ? "Ban User" : "Ban User (timeout)", "already banned", res);
        break;
    }
    case WH_OP_UNBAN:
    case WH_OP_UNTIMEOUT: {
        size_t l = strlen(q);
        snprintf(q + l, sizeof(q) - l, "&user_id=%s", user);
        call(h, "DELETE", "/moderation/bans", q, NULL, "Unban User", "not banned", res);
        break;
    }
    case WH_OP_DELETE: {
        if (!op->msg_id[0]) {
            res_set(res, WH_OPR_FAILED, "no message id (meta.msg_id) to delete");
            goto out;
        }
        CURL *cu = curl_easy_init();
        char *e = cu ? curl_easy_escape(cu, op->msg_id, 0) : NULL;
        size_t l = strlen(q);
        snprintf(q + l, sizeof(q) - l, "&message_id=%s", e ? e : "");
        curl_free(e);
        if (cu) curl_easy_cleanup(cu);
        remember(h, op->msg_id);
        call(h, "DELETE", "/moderation/chat", q, NULL, "Delete Chat Messages", NULL, res);
        break;
    }
    case WH_OP_WARN: {
        wh_buf m;
        wh_buf_init(&m);
        wh_buf_json_str(&m, op->message[0] ? op->message : reason,
                        strlen(op->message[0] ? op->message : reason));
        snprintf(body, sizeof(body), "{\"data\":{\"user_id\":\"%s\",\"reason\":%s}}", user,
                 wh_buf_cstr(&m));
        wh_buf_free(&m);
        call(h, "POST", "/moderation/warnings", q, body, "Warn Chat User", NULL, res);
        break;
    }
    case WH_OP_CHANNEL_MODE: {
        size_t k = 0;
        while (k < WH_ARRAY_LEN(settings) && strcmp(settings[k].mode, op->mode))
            k++;
        if (k == WH_ARRAY_LEN(settings)) {
            res_set(res, WH_OPR_UNSUPPORTED, "Twitch has no chat setting for '%s'", op->mode);
            goto out;
        }
        call(h, "PATCH", "/chat/settings", q, settings[k].on, "Update Chat Settings", NULL, res);
        if (res->code == WH_OPR_DONE && op->duration_s) {
            revert_t *rv = calloc(1, sizeof(*rv));
            pthread_mutex_lock(&h->mu);
            if (rv && h->nreverts < REVERT_MAX) {
                rv->at_ms = wh_now_ms() + (int64_t)op->duration_s * 1000;
                snprintf(rv->body, sizeof(rv->body), "%s", settings[k].off);
                rv->next = h->reverts;
                h->reverts = rv;
                h->nreverts++;
                rv = NULL;
                pthread_cond_signal(&h->cv);
            }
            pthread_mutex_unlock(&h->mu);
            free(rv);
        }
        break;
    }
    case WH_OP_RELEASE:
    case WH_OP_DENY: {
        if (!op->msg_id[0]) {
            res_set(res, WH_OPR_FAILED, "no message id (meta.msg_id) of the held message");
            goto out;
        }
        wh_buf m;
        wh_buf_init(&m);
        wh_buf_json_str(&m, op->msg_id, strlen(op->msg_id));
        snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"msg_id\":%s,\"action\":\"%s\"}",
                 h->moderator, wh_buf_cstr(&m), op->kind == WH_OP_RELEASE ? "ALLOW" : "DENY");
        wh_buf_free(&m);
        call(h, "POST", "/moderation/automod/message", "", body, "Manage Held AutoMod Messages",
             NULL, res);
        break;
    }
    default:
        res_set(res, WH_OPR_FAILED, "not a Twitch operation");
    }
out:
    wh_buf_free(&rb);
}

void wh_helix_token(wh_helix *h, char *out, size_t cap)
{
    pthread_mutex_lock(&h->mu);
    snprintf(out, cap, "%s", h->token);
    pthread_mutex_unlock(&h->mu);
}

wh_helix *wh_helix_new(const wh_irc_config *cfg, wh_error *e)
{
    wh_helix *h = calloc(1, sizeof(*h));
    if (!h) {
        wh_error_set(e, WH_ENOMEM, "twitch %s: out of memory", cfg->name);
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT); /* counted: the first call initializes */
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    char **dst[] = {&h->helix_url,   &h->token_url, &h->client_id, &h->client_secret,
                    &h->broadcaster, &h->moderator, &h->name,      &h->ca_file};
    const char *src[] = {cfg->helix_url,      cfg->token_url,    cfg->client_id, cfg->client_secret,
                         cfg->broadcaster_id, cfg->moderator_id, cfg->name,      cfg->ca_file};
    for (size_t i = 0; i < WH_ARRAY_LEN(dst); i++)
        *dst[i] = src[i] ? strdup(src[i]) : NULL;
    h->verify = cfg->tls_verify;
    snprintf(h->token, sizeof(h->token), "%s", cfg->access_token ? cfg->access_token : "");
    snprintf(h->refresh, sizeof(h->refresh), "%s", cfg->refresh_token ? cfg->refresh_token : "");
    if (pthread_create(&h->th, NULL, revert_main, h) != 0) {
        wh_error_set(e, WH_EIO, "twitch %s: cannot start its thread", cfg->name);
        h->th = 0;
        wh_helix_free(h);
        return NULL;
    }
    return h;
}

void wh_helix_free(wh_helix *h)
{
    if (!h) return;
    if (h->th) {
        pthread_mutex_lock(&h->mu);
        h->stop = true;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->th, NULL);
    }
    for (revert_t *r = h->reverts, *nx; r; r = nx) {
        nx = r->next;
        free(r);
    }
    char **f[] = {&h->helix_url,   &h->token_url, &h->client_id, &h->client_secret,
                  &h->broadcaster, &h->moderator, &h->name,      &h->ca_file};
    for (size_t i = 0; i < WH_ARRAY_LEN(f); i++)
        free(*f[i]);
    OPENSSL_cleanse(h->token, sizeof(h->token));
    OPENSSL_cleanse(h->refresh, sizeof(h->refresh));
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

/* ---------------------------------------------------------------- EventSub receivers */

#define SEEN_IDS 4096

typedef struct receiver {
    struct receiver *next;
    char *platform, *secret;
    char (*seen)[64]; /* the last SEEN_IDS message ids, a ring */
    uint32_t seen_next;
} receiver;

static pthread_mutex_t recv_mu = PTHREAD_MUTEX_INITIALIZER;
static receiver *receivers;

wh_status wh_eventsub_add(const char *platform, const char *secret)
{
    receiver *r = calloc(1, sizeof(*r));
    if (!r || !(r->platform = strdup(platform)) || !(r->secret = strdup(secret)) ||
        !(r->seen = calloc(SEEN_IDS, sizeof(*r->seen)))) {
        if (r) {
            free(r->platform);
            free(r->secret);
            free(r);
        }
        return WH_ENOMEM;
    }
    pthread_mutex_lock(&recv_mu);
    r->next = receivers;
    receivers = r;
    pthread_mutex_unlock(&recv_mu);
    return WH_OK;
}

void wh_eventsub_remove(const char *platform)
{
    pthread_mutex_lock(&recv_mu);
    for (receiver **pp = &receivers; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->platform, platform)) {
            receiver *r = *pp;
            *pp = r->next;
            OPENSSL_cleanse(r->secret, strlen(r->secret));
            free(r->secret);
            free(r->platform);
            free(r->seen);
            free(r);
            break;
        }
    pthread_mutex_unlock(&recv_mu);
}

static int es_error(wh_buf *out, int status, const char *code, const char *msg)
{
    wh_buf_printf(out, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    wh_buf_json_str(out, msg, strlen(msg));
    wh_buf_puts(out, "}}");
    return status;
}

int wh_eventsub_receive(wh_service *svc, const char *platform, const char *msg_id,
                        const char *timestamp, const char *signature, const char *type,
                        const char *body, size_t n, wh_buf *out, const char **ctype,
                        uint64_t *ticket)
{
    *ticket = 0;
    *ctype = "application/json";
    char secret[256];
    bool dup = false, found = false;
    pthread_mutex_lock(&recv_mu);
    for (receiver *r = receivers; r; r = r->next)
        if (!strcmp(r->platform, platform)) {
            found = true;
            snprintf(secret, sizeof(secret), "%s", r->secret);
            for (uint32_t i = 0; msg_id && i < SEEN_IDS && !dup; i++)
                dup = !strcmp(r->seen[i], msg_id);
        }
    pthread_mutex_unlock(&recv_mu);
    if (!found)
        return es_error(out, 404, "not_found",
                        "no platforms.twitch item with an eventsub_secret has this name");
    if (!msg_id || !timestamp || !signature || !type || !*msg_id || strlen(msg_id) >= 64)
        return es_error(out, 400, "bad_request",
                        "an EventSub request has Twitch-Eventsub-Message-Id, -Timestamp, "
                        "-Signature and -Type headers");
    bool ok = wh_eventsub_signature_ok(secret, msg_id, timestamp, body, n, signature);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (!ok)
        return es_error(out, 403, "bad_signature",
                        "Twitch-Eventsub-Message-Signature does not match the body");
    int64_t at;
    if (!wh_parse_rfc3339(timestamp, strlen(timestamp), &at) ||
        llabs(wh_now_ms() - at) > 10 * 60 * 1000)
        return es_error(out, 403, "stale",
                        "Twitch-Eventsub-Message-Timestamp is more than 10 minutes away from now "
                        "(a replayed message)");
    if (dup) { /* Twitch sends again what it thinks was lost: handled already */
        wh_buf_puts(out, "{\"duplicate\":true}");
        return 200;
    }
    int status = 200;
    if (!strcmp(type, "webhook_callback_verification")) {
        char challenge[512];
        if (!wh_json_get_string(body, n, "challenge", challenge, sizeof(challenge)))
            return es_error(out, 400, "bad_request", "a verification without a challenge");
        wh_buf_puts(out, challenge);
        *ctype = "text/plain";
        fprintf(stderr, "whiply: twitch %s: EventSub subscription verified\n", platform);
    } else if (!strcmp(type, "revocation")) {
        char why[200] = "";
        fprintf(stderr, "whiply: twitch %s: an EventSub subscription was revoked: %.*s\n", platform,
                (int)(n < 300 ? n : 300), body);
        (void)why;
        wh_buf_puts(out, "{}");
    } else if (!strcmp(type, "notification")) {
        wh_buf ev;
        wh_buf_init(&ev);
        uint32_t ne = 0;
        char why[200];
        if (wh_eventsub_events(platform, msg_id, body, n, &ev, &ne, why, sizeof(why)) != WH_OK) {
            wh_buf_free(&ev);
            return es_error(out, 400, "bad_event", why);
        }
        if (ne) {
            wh_ingest_req in = {.body = ev.p, .len = ev.len, .out = out};
            wh_status st = wh_ingest_submit(svc, &in);
            *ticket = in.ticket;
            *ctype = "application/x-ndjson";
            if (st != WH_OK) {
                wh_buf_free(&ev);
                out->len = 0;
                *ctype = "application/json";
                *ticket = 0;
                return es_error(out, st == WH_EBUSY ? 503 : 500, "busy",
                                "the event was not taken now; Twitch sends it again");
            }
        } else {
            wh_buf_puts(out, "{}");
        }
        wh_buf_free(&ev);
    } else {
        return es_error(out, 400, "bad_request", "an unknown Twitch-Eventsub-Message-Type");
    }
    pthread_mutex_lock(&recv_mu); /* handled: a resend is answered without doing it again */
    for (receiver *r = receivers; r; r = r->next)
        if (!strcmp(r->platform, platform)) {
            snprintf(r->seen[r->seen_next], sizeof(r->seen[0]), "%s", msg_id);
            r->seen_next = (r->seen_next + 1) % SEEN_IDS;
        }
    pthread_mutex_unlock(&recv_mu);
    return status;
}
