/* webhook.c - signed webhooks and alerts, POSTed with libcurl (see webhook.h). */
#define _GNU_SOURCE
#include "webhook.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

/* ---- the POST both share ---- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr, (void)ud;
    return size * nmemb;
}

static CURL *handle_new(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT); /* counted: the first call initializes */
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "whiply/" WHIPLY_VERSION);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* only http(s), and a redirect is an answer, not a place to go (no signed body sent
     * anywhere the configuration did not name) */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    return h;
}

/* POSTs body to url with headers on h and maps the answer to a result (webhook.h). */
static void post(CURL *h, const char *url, struct curl_slist *headers, const char *body, size_t n,
                 int64_t timeout_ms, wh_op_result *res)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 5000 ? timeout_ms : 5000));
    CURLcode rc = curl_easy_perform(h);
    res->retry_after_ms = 0;
    if (rc != CURLE_OK) {
        res->code = WH_OPR_RETRY;
        snprintf(res->detail, sizeof(res->detail), "network: %s", curl_easy_strerror(rc));
        return;
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_off_t ra = 0;
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        res->retry_after_ms = (int64_t)ra * 1000;
    if (code >= 200 && code < 300) {
        res->code = WH_OPR_DONE;
        res->retry_after_ms = 0;
    } else if (code == 429 || code >= 500) {
        res->code = WH_OPR_RETRY;
    } else {
        res->code = WH_OPR_FAILED;
        res->retry_after_ms = 0;
    }
    snprintf(res->detail, sizeof(res->detail), "HTTP %ld%s", code,
             res->retry_after_ms ? " (Retry-After)" : "");
}

/* An executor of either kind: its configuration and its connection. */
typedef struct {
    const void *c;
    CURL *h;
} poster;

static poster *poster_new(const void *c)
{
    poster *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->c = c;
    if (!(p->h = handle_new())) {
        free(p);
        return NULL;
    }
    return p;
}

static void poster_free(poster *p)
{
    if (!p) return;
    curl_easy_cleanup(p->h);
    free(p);
}

/* ---- webhooks ---- */

struct wh_webhook {
    poster p;
};

wh_webhook *wh_webhook_new(const wh_webhook_cfg *c)
{
    return (wh_webhook *)poster_new(c);
}

void wh_webhook_free(wh_webhook *w)
{
    poster_free((poster *)w);
}

static void b64(const uint8_t *p, size_t n, char *out, size_t outn)
{
    if (outn < 4 * ((n + 2) / 3) + 1) {
        out[0] = 0;
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

void wh_webhook_sign(const uint8_t *key, size_t kn, const char *id, int64_t ts, const char *body,
                     size_t n, char *out, size_t outn)
{
    /* HMAC-SHA256 over "id.timestamp.body" (the Standard Webhooks signature scheme) */
    char head[200];
    int hn = snprintf(head, sizeof(head), "%s.%lld.", id, (long long)ts);
    uint8_t mac[32];
    unsigned ml = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *x = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    bool ok = x && EVP_MAC_init(x, key, kn, params) &&
              EVP_MAC_update(x, (const unsigned char *)head, (size_t)hn) &&
              EVP_MAC_update(x, (const unsigned char *)body, n) &&
              EVP_MAC_final(x, mac, &outl, sizeof(mac));
    ml = (unsigned)outl;
    EVP_MAC_CTX_free(x);
    EVP_MAC_free(m);
    char sig[64];
    if (!ok || ml != 32) memset(mac, 0, sizeof(mac));
    b64(mac, 32, sig, sizeof(sig));
    snprintf(out, outn, "v1,%s", sig);
}

void wh_webhook_exec(void *ud, const wh_op *op, wh_op_result *res)
{
    const poster *w = ud;
    const wh_webhook_cfg *c = w->c;
    int64_t ts = wh_now_ms() / 1000;
    size_t n = strlen(op->payload);
    char sig[100], h_id[80], h_ts[64], h_sig[128];
    wh_webhook_sign(c->secret, c->secret_n, op->id, ts, op->payload, n, sig, sizeof(sig));
    snprintf(h_id, sizeof(h_id), "webhook-id: %s", op->id);
    snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %lld", (long long)ts);
    snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", sig);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, h_id);
    h = curl_slist_append(h, h_ts);
    h = curl_slist_append(h, h_sig);
    if (!h) {
        res->code = WH_OPR_RETRY;
        snprintf(res->detail, sizeof(res->detail), "out of memory");
        return;
    }
    post(w->h, c->url, h, op->payload, n, c->timeout_ms, res);
    curl_slist_free_all(h);
}

/* ---- alerts ---- */

struct wh_alerter {
    poster p;
};

wh_alerter *wh_alert_new(const wh_alert_cfg *c)
{
    return (wh_alerter *)poster_new(c);
}

void wh_alert_free(wh_alerter *a)
{
    poster_free((poster *)a);
}

/* The default line of an item, per format. */
static const char *const default_tmpl[2] = {
    "**{kind}** in {channel}: {user_name} ({user}): \"{text}\" [{rule}] {link}",
    "*{kind}* in {channel}: {user_name} ({user}): \"{text}\" [{rule}] {link}"};

/* Text for the chat: Slack reads &, < and > as markup (its docs ask for them escaped); for
 * Discord a user's text must not ping anyone (allowed_mentions below) or run on forever. */
static void put_text(wh_buf *b, const char *s, size_t max, bool slack)
{
    size_t n = strlen(s), i = 0;
    for (; i < n && i < max; i++) {
        char c = s[i];
        if (c == '\n' || c == '\r')
            wh_buf_putc(b, ' ');
        else if (slack && c == '&')
            wh_buf_puts(b, "&amp;");
        else if (slack && c == '<')
            wh_buf_puts(b, "&lt;");
        else if (slack && c == '>')
            wh_buf_puts(b, "&gt;");
        else
            wh_buf_putc(b, c);
    }
    /* never cut a UTF-8 sequence: drop a partial one */
    if (i < n) {
        while (b->len && ((unsigned char)b->p[b->len - 1] & 0xC0) == 0x80)
            b->len--;
        if (b->len && (unsigned char)b->p[b->len - 1] >= 0xC0) b->len--;
        wh_buf_puts(b, "…");
    }
}

/* The approve/deny link of an item: DASHBOARD/#/review/ID (a dead letter: #/actions/OP). */
static void put_link(wh_buf *b, const wh_alert_cfg *c, const char *kind, const char *id, bool slack)
{
    const char *base = c->dashboard_url ? c->dashboard_url : "http://127.0.0.1:8080";
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    bool dead = !strcmp(kind, "dead_letter");
    wh_buf url;
    wh_buf_init(&url);
    wh_buf_printf(&url, "%.*s/#/%s/", (int)bl, base, dead ? "actions" : "review");
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~:", *p))
            wh_buf_putc(&url, (char)*p);
        else
            wh_buf_printf(&url, "%%%02X", *p);
    }
    const char *label = dead ? "retry" : "approve/deny";
    if (slack)
        wh_buf_printf(b, "<%.*s|%s>", (int)url.len, url.p, label);
    else
        wh_buf_printf(b, "[%s](%.*s)", label, (int)url.len, url.p);
    wh_buf_free(&url);
}

/* One item's line from the template. */
static void render_line(wh_buf *b, const wh_alert_cfg *c, const char *item)
{
    size_t n = strlen(item);
    bool slack = c->slack;
    char kind[32] = "", id[200] = "", op[40] = "";
    wh_json_get_string(item, n, "kind", kind, sizeof(kind));
    wh_json_get_string(item, n, "event_id", id, sizeof(id));
    wh_json_get_string(item, n, "op", op, sizeof(op));
    const char *t = c->template ? c->template : default_tmpl[slack];
    for (const char *p = t; *p; p++) {
        const char *e = *p == '{' ? strchr(p, '}') : NULL;
        if (!e || e - p > 20) {
            wh_buf_putc(b, *p);
            continue;
        }
        char name[24];
        snprintf(name, sizeof(name), "%.*s", (int)(e - p - 1), p + 1);
        p = e;
        if (!strcmp(name, "link")) {
            put_link(b, c, kind, *op ? op : id, slack);
            continue;
        }
        if (!strcmp(name, "kind")) {
            put_text(b, !strcmp(kind, "dead_letter") ? "dead letter" : kind, 40, slack);
            continue;
        }
        char v[1024];
        if (!wh_json_get_string(item, n, name, v, sizeof(v))) {
            if (strcmp(name, "targets") != 0) continue; /* unknown or empty: nothing */
            /* a wave's or raid's members, named */
            wh_jtok tok[300];
            size_t pos;
            const char *what;
            int nt = wh_json_tokenize(item, n, tok, 300, 4, &pos, &what);
            for (int i = 1; nt > 0 && i + 1 < nt; i = tok[i + 1].next) {
                if (tok[i].end - tok[i].start != 7 || memcmp(item + tok[i].start, "targets", 7))
                    continue;
                for (int k = i + 2; k < tok[i + 1].next; k = tok[k].next) {
                    if (k > i + 2) wh_buf_puts(b, ", ");
                    snprintf(v, sizeof(v), "%.*s", tok[k].end - tok[k].start, item + tok[k].start);
                    put_text(b, v, 64, slack);
                }
            }
            continue;
        }
        put_text(b, v, !strcmp(name, "text") ? 200 : 300, slack);
    }
}

void wh_alert_render(const wh_alert_cfg *c, const wh_op *const *ops, uint32_t n, wh_buf *out)
{
    /* a headline naming what and where, then one line per item, in blocks of at most 3,000
     * bytes (Slack's section text; Discord's embed description allows 4,096) */
    uint32_t kinds[5] = {0};
    static const char *const kn[5] = {"hold", "wave", "raid", "dead_letter", "other"};
    char channel[256] = "";
    bool one_channel = true;
    for (uint32_t i = 0; i < n; i++) {
        char k[32] = "", ch[256] = "";
        const char *it = ops[i]->payload;
        wh_json_get_string(it, strlen(it), "kind", k, sizeof(k));
        int j = 0;
        while (j < 4 && strcmp(kn[j], k))
            j++;
        kinds[j]++;
        wh_json_get_string(it, strlen(it), "channel", ch, sizeof(ch));
        if (!i) snprintf(channel, sizeof(channel), "%s", ch);
        if (strcmp(ch, channel)) one_channel = false;
    }
    wh_buf head;
    wh_buf_init(&head);
    wh_buf_puts(&head, "whiply: ");
    static const char *const label[5] = {"held for review", "spam wave", "raid",
                                         "dead-lettered action", "alert"};
    bool first = true;
    for (int j = 0; j < 5; j++) {
        if (!kinds[j]) continue;
        wh_buf_printf(&head, "%s%u %s%s", first ? "" : ", ", kinds[j], label[j],
                      kinds[j] > 1 && j >= 1 ? "s" : "");
        first = false;
    }
    if (one_channel && *channel) {
        wh_buf_puts(&head, " in ");
        put_text(&head, channel, 100, c->slack);
    }
    wh_buf blocks[WH_ALERT_MAX_ITEMS];
    uint32_t nb = 0;
    wh_buf line;
    wh_buf_init(&line);
    for (uint32_t i = 0; i < n && i < WH_ALERT_MAX_ITEMS; i++) {
        line.len = 0;
        render_line(&line, c, ops[i]->payload);
        if (!nb || blocks[nb - 1].len + line.len + 1 > 3000) wh_buf_init(&blocks[nb++]);
        wh_buf *bl = &blocks[nb - 1];
        if (bl->len) wh_buf_putc(bl, '\n');
        wh_buf_append(bl, line.p, line.len < 2990 ? line.len : 2990);
    }
    if (c->slack) {
        wh_buf_puts(out, "{\"text\":");
        wh_buf_json_str(out, head.p, head.len);
        wh_buf_puts(out, ",\"blocks\":[{\"type\":\"header\",\"text\":{\"type\":\"plain_text\","
                         "\"text\":");
        wh_buf_json_str(out, head.p, head.len < 150 ? head.len : 150);
        wh_buf_puts(out, "}}");
        for (uint32_t i = 0; i < nb; i++) {
            wh_buf_puts(out, ",{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
            wh_buf_json_str(out, blocks[i].p, blocks[i].len);
            wh_buf_puts(out, "}}");
        }
        wh_buf_puts(out, "]}");
    } else {
        wh_buf_puts(out, "{\"content\":");
        wh_buf_json_str(out, head.p, head.len);
        wh_buf_puts(out, ",\"embeds\":[");
        for (uint32_t i = 0; i < nb; i++) {
            wh_buf_puts(out, i ? ",{" : "{");
            if (!i) wh_buf_puts(out, "\"title\":\"Moderation needed\",");
            wh_buf_puts(out, "\"color\":15105570,\"description\":");
            wh_buf_json_str(out, blocks[i].p, blocks[i].len);
            wh_buf_putc(out, '}');
        }
        wh_buf_puts(out, "],\"allowed_mentions\":{\"parse\":[]}}");
    }
    for (uint32_t i = 0; i < nb; i++)
        wh_buf_free(&blocks[i]);
    wh_buf_free(&line);
    wh_buf_free(&head);
}

void wh_alert_exec(void *ud, const wh_op *const *ops, uint32_t n, wh_op_result *res)
{
    const poster *a = ud;
    const wh_alert_cfg *c = a->c;
    wh_buf body;
    wh_buf_init(&body);
    wh_alert_render(c, ops, n, &body);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h || body.oom) {
        res->code = WH_OPR_RETRY;
        snprintf(res->detail, sizeof(res->detail), "out of memory");
    } else {
        post(a->h, c->url, h, body.p, body.len, c->timeout_ms, res);
    }
    curl_slist_free_all(h);
    wh_buf_free(&body);
}
