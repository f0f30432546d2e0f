/* twitch_parse.c - the pure parts of the Twitch adapter (see twitch.h): Twitch's tags, Helix
 * and OAuth answers, EventSub payloads and their signature. No I/O; fuzzed by
 * fuzz/fuzz_twitch.c. */
#define _GNU_SOURCE
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "io/twitch.h"

/* ---------------------------------------------------------------- JSON paths */

#define JTOK_MAX 2048

/* The value of key in the object at token obj, or -1. */
static int jfind(const char *js, const wh_jtok *t, int obj, const char *key)
{
    if (obj < 0 || t[obj].type != WH_J_OBJECT) return -1;
    size_t kn = strlen(key);
    int k = obj + 1;
    for (int i = 0; i < t[obj].size; i++) {
        int v = k + 1;
        if ((size_t)(t[k].end - t[k].start) == kn && !t[k].escaped &&
            !memcmp(js + t[k].start, key, kn))
            return v;
        k = t[v].next;
    }
    return -1;
}

/* "a.b.c" from the object at token root. */
static int jpath(const char *js, const wh_jtok *t, int root, const char *path)
{
    char part[64];
    int cur = root;
    while (*path && cur >= 0) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(part)) return -1;
        memcpy(part, path, n);
        part[n] = 0;
        cur = jfind(js, t, cur, part);
        path += n + (path[n] == '.');
    }
    return cur;
}

/* A string token unescaped into out (NUL-terminated); false when it is not a string or does
 * not fit. */
static bool jstr(const char *js, const wh_jtok *t, int i, char *out, size_t cap)
{
    if (i < 0 || t[i].type != WH_J_STRING) return false;
    size_t n = (size_t)(t[i].end - t[i].start), len = 0, bad;
    if (n + 1 > cap) return false;
    if (!wh_json_unescape(js + t[i].start, n, out, &len, &bad)) return false;
    out[len] = 0;
    return true;
}

/* Tokenizes body; the token count, or <= 0. t must hold JTOK_MAX. */
static int jparse(const char *body, size_t n, wh_jtok *t)
{
    size_t pos;
    const char *what;
    int nt = wh_json_tokenize(body, n, t, JTOK_MAX, 16, &pos, &what);
    return nt > 0 && t[0].type == WH_J_OBJECT ? nt : 0;
}

/* ---------------------------------------------------------------- pure parts */

void wh_twitch_roles(wh_buf *b, wh_str badges, bool mod)
{
    const char *sep = ",\"roles\":[";
    bool has_mod = false;
    for (uint32_t i = 0; i < badges.n;) {
        uint32_t e = i;
        while (e < badges.n && badges.p[e] != ',')
            e++;
        uint32_t sl = i;
        while (sl < e && badges.p[sl] != '/')
            sl++;
        if (sl > i) {
            wh_buf_puts(b, sep);
            wh_buf_json_str(b, badges.p + i, sl - i);
            sep = ",";
            has_mod |= sl - i == 9 && !memcmp(badges.p + i, "moderator", 9);
        }
        i = e + 1;
    }
    if (mod && !has_mod) {
        wh_buf_puts(b, sep);
        wh_buf_puts(b, "\"moderator\"");
        sep = ",";
    }
    if (sep[0] == ',' && !sep[1]) wh_buf_putc(b, ']');
}

bool wh_helix_error(const char *body, size_t n, char *msg, size_t cap)
{
    static wh_jtok t[JTOK_MAX];
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* t is big: one, shared */
    pthread_mutex_lock(&mu);
    bool ok = jparse(body, n, t) > 0 && (jstr(body, t, jfind(body, t, 0, "message"), msg, cap) ||
                                         jstr(body, t, jfind(body, t, 0, "error"), msg, cap));
    pthread_mutex_unlock(&mu);
    return ok;
}

bool wh_twitch_token_parse(const char *body, size_t n, char *access, size_t acap, char *refresh,
                           size_t rcap)
{
    wh_jtok t[64];
    size_t pos;
    const char *what;
    int nt = wh_json_tokenize(body, n, t, 64, 4, &pos, &what);
    if (nt <= 0 || t[0].type != WH_J_OBJECT) return false;
    if (!jstr(body, t, jfind(body, t, 0, "access_token"), access, acap) || !access[0]) return false;
    if (!jstr(body, t, jfind(body, t, 0, "refresh_token"), refresh, rcap)) refresh[0] = 0;
    return true;
}

bool wh_eventsub_signature_ok(const char *secret, const char *id, const char *timestamp,
                              const char *body, size_t n, const char *signature)
{
    if (!secret || !id || !timestamp || !signature || strncmp(signature, "sha256=", 7))
        return false;
    size_t il = strlen(id), tl = strlen(timestamp);
    unsigned char *msg = malloc(il + tl + n + 1);
    if (!msg) return false;
    memcpy(msg, id, il);
    memcpy(msg + il, timestamp, tl);
    if (n) memcpy(msg + il + tl, body, n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    bool ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, il + tl + n, mac, &ml) != NULL;
    free(msg);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    wh_hex_encode(mac, ml, hex);
    const char *got = signature + 7;
    return ok && strlen(got) == 2 * ml && CRYPTO_memcmp(hex, got, 2 * ml) == 0;
}

/* Appends "key":"value" from a string token (or nothing when absent). */
static void put_str(wh_buf *b, const char *key, const char *js, const wh_jtok *t, int i, bool comma)
{
    if (i < 0 || t[i].type != WH_J_STRING) return;
    wh_buf_printf(b, "%s\"%s\":\"", comma ? "," : "", key);
    wh_buf_append(b, js + t[i].start, (size_t)(t[i].end - t[i].start)); /* still escaped */
    wh_buf_putc(b, '"');
}

static wh_status es_fail(char *why, size_t whyn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static wh_status es_fail(char *why, size_t whyn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whyn, fmt, ap);
    va_end(ap);
    return WH_ESYNTAX;
}

/* The event head: id, type, platform, channel (#login of broadcaster_user_login), ts. */
static bool es_head(wh_buf *b, const char *id, const char *type, const char *platform,
                    const char *js, const wh_jtok *t, int ev)
{
    char login[64];
    if (!jstr(js, t, jfind(js, t, ev, "broadcaster_user_login"), login, sizeof(login)))
        return false;
    wh_buf_puts(b, "{\"id\":");
    wh_buf_json_str(b, id, strlen(id));
    wh_buf_printf(b, ",\"type\":\"%s\",\"platform\":", type);
    wh_buf_json_str(b, platform, strlen(platform));
    wh_buf_puts(b, ",\"channel\":\"#");
    wh_buf_append(b, login, strlen(login)); /* a login: [a-z0-9_] (checked below) */
    wh_buf_putc(b, '"');
    for (const char *p = login; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    return true;
}

static void es_message(wh_buf *b, const char *js, const wh_jtok *t, int ev, bool automod)
{
    wh_buf_puts(b, ",\"user\":{");
    size_t open = b->len; /* a key after this one needs a comma */
    int uid = jfind(js, t, ev, automod ? "user_id" : "chatter_user_id");
    int uname = jfind(js, t, ev, automod ? "user_name" : "chatter_user_name");
    put_str(b, "id", js, t, uid, false);
    put_str(b, "name", js, t, uname, b->len > open);
    int badges = jfind(js, t, ev, "badges");
    if (badges >= 0 && t[badges].type == WH_J_ARRAY && t[badges].size > 0) {
        wh_buf_puts(b, b->len > open ? ",\"roles\":[" : "\"roles\":[");
        size_t first = b->len;
        int k = badges + 1;
        for (int i = 0; i < t[badges].size; i++) {
            int set = jfind(js, t, k, "set_id");
            if (set >= 0 && t[set].type == WH_J_STRING) {
                if (b->len > first) wh_buf_putc(b, ',');
                wh_buf_putc(b, '"');
                wh_buf_append(b, js + t[set].start, (size_t)(t[set].end - t[set].start));
                wh_buf_putc(b, '"');
            }
            k = t[k].next;
        }
        wh_buf_putc(b, ']');
    }
    wh_buf_putc(b, '}');
    int text = jpath(js, t, ev, "message.text");
    if (text >= 0 && t[text].type == WH_J_STRING) {
        wh_buf_puts(b, ",\"text\":\"");
        wh_buf_append(b, js + t[text].start, (size_t)(t[text].end - t[text].start));
        wh_buf_putc(b, '"');
    }
    wh_buf_puts(b, ",\"meta\":{");
    size_t mopen = b->len;
    put_str(b, "msg_id", js, t, jfind(js, t, ev, "message_id"), false);
    if (automod) wh_buf_puts(b, b->len > mopen ? ",\"automod\":true" : "\"automod\":true");
    put_str(b, "room_id", js, t, jfind(js, t, ev, "broadcaster_user_id"), b->len > mopen);
    wh_buf_putc(b, '}');
}

/* channel.moderate: the action and its target's field (an object named after the action). */
static const struct {
    const char *action; /* the event's "action" */
    const char *field;  /* the object holding the target */
    const char *as;     /* the mod_action's action */
} moderate_map[] = {
    {"ban", "ban", "ban"},
    {"unban", "unban", "unban"},
    {"timeout", "timeout", "timeout"},
    {"untimeout", "untimeout", "untimeout"},
    {"warn", "warn", "warn"},
    {"delete", "delete", "delete"},
};

wh_status wh_eventsub_events(const char *platform, const char *msg_id, const char *body, size_t n,
                             wh_buf *out, uint32_t *n_events, char *why, size_t whyn)
{
    *n_events = 0;
    wh_jtok *t = malloc(JTOK_MAX * sizeof(*t));
    if (!t) return es_fail(why, whyn, "out of memory");
    wh_status st = WH_OK;
    size_t mark = out->len;
    char type[80], ts[40];
    int ev;
    if (jparse(body, n, t) <= 0) {
        st = es_fail(why, whyn, "the body is not a JSON object");
        goto done;
    }
    if (!jstr(body, t, jpath(body, t, 0, "subscription.type"), type, sizeof(type))) {
        st = es_fail(why, whyn, "no subscription.type");
        goto done;
    }
    ev = jfind(body, t, 0, "event");
    if (ev < 0 || t[ev].type != WH_J_OBJECT) {
        st = es_fail(why, whyn, "no event object");
        goto done;
    }
    bool chat = !strcmp(type, "channel.chat.message"), held = !strcmp(type, "automod.message.hold");
    if (chat || held) {
        /* the chat message's own id: the same message read from IRC is the same event */
        char mid[128];
        if (!jstr(body, t, jfind(body, t, ev, "message_id"), mid, sizeof(mid)) || !mid[0])
            snprintf(mid, sizeof(mid), "%s", msg_id);
        if (!es_head(out, mid, "message", platform, body, t, ev)) {
            st = es_fail(why, whyn, "%s: no valid event.broadcaster_user_login", type);
            goto done;
        }
        es_message(out, body, t, ev, held);
        if (held && jstr(body, t, jfind(body, t, ev, "held_at"), ts, sizeof(ts))) {
            wh_buf_puts(out, ",\"ts\":");
            wh_buf_json_str(out, ts, strlen(ts));
        }
        wh_buf_puts(out, "}\n");
        *n_events = 1;
    } else if (!strcmp(type, "channel.moderate")) {
        char action[32];
        if (!jstr(body, t, jfind(body, t, ev, "action"), action, sizeof(action))) {
            st = es_fail(why, whyn, "channel.moderate: no event.action");
            goto done;
        }
        size_t k = 0;
        while (k < WH_ARRAY_LEN(moderate_map) && strcmp(moderate_map[k].action, action))
            k++;
        if (k == WH_ARRAY_LEN(moderate_map)) goto done; /* a mode switch, a raid, ...: nothing */
        int obj = jfind(body, t, ev, moderate_map[k].field);
        int target = jfind(body, t, obj, "user_id");
        if (target < 0 || t[target].type != WH_J_STRING) {
            st = es_fail(why, whyn, "channel.moderate %s: no event.%s.user_id", action,
                         moderate_map[k].field);
            goto done;
        }
        if (!es_head(out, msg_id, "mod_action", platform, body, t, ev)) {
            st = es_fail(why, whyn, "channel.moderate: no valid event.broadcaster_user_login");
            goto done;
        }
        put_str(out, "moderator", body, t, jfind(body, t, ev, "moderator_user_login"), true);
        put_str(out, "target", body, t, target, true);
        wh_buf_printf(out, ",\"action\":\"%s\"", moderate_map[k].as);
        int64_t secs = 0;
        char exp[40];
        int64_t exp_ms = 0, now = wh_now_ms();
        if (!strcmp(action, "timeout") &&
            jstr(body, t, jfind(body, t, obj, "expires_at"), exp, sizeof(exp)) &&
            wh_parse_rfc3339(exp, strlen(exp), &exp_ms) && exp_ms > now)
            secs = (exp_ms - now + 999) / 1000;
        if (secs) wh_buf_printf(out, ",\"duration_s\":%lld", (long long)secs);
        put_str(out, "ref_event", body, t, jfind(body, t, obj, "message_id"), true);
        wh_buf_puts(out, "}\n");
        *n_events = 1;
    }
done:
    if (st != WH_OK) out->len = mark;
    free(t);
    return st;
}
