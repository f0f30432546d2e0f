/* session.c - see session.h. */
#define _GNU_SOURCE
#include "session.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char id[WH_SESSION_ID_HEX];
    bool used;
    int64_t created_ms, seen_ms;
    wh_session s;
} entry_t;

struct wh_sessions {
    pthread_mutex_t lock;
    entry_t v[WH_SESSIONS_MAX];
};

wh_sessions *wh_sessions_new(void)
{
    wh_sessions *ss = calloc(1, sizeof(*ss));
    if (ss) pthread_mutex_init(&ss->lock, NULL);
    return ss;
}

void wh_sessions_free(wh_sessions *ss)
{
    if (!ss) return;
    pthread_mutex_destroy(&ss->lock);
    OPENSSL_cleanse(ss->v, sizeof(ss->v));
    free(ss);
}

static bool random_hex(char out[WH_SESSION_ID_HEX + 1])
{
    uint8_t b[WH_SESSION_ID_HEX / 2];
    if (RAND_bytes(b, sizeof(b)) != 1) return false;
    wh_hex_encode(b, sizeof(b), out);
    out[WH_SESSION_ID_HEX] = 0;
    return true;
}

static bool expired(const entry_t *e, int64_t now)
{
    return now - e->seen_ms > WH_SESSION_IDLE_MS || now - e->created_ms > WH_SESSION_MAX_MS;
}

bool wh_session_create(wh_sessions *ss, unsigned scopes, const char *name,
                       char id[WH_SESSION_ID_HEX + 1], wh_session *out)
{
    memset(out, 0, sizeof(*out));
    out->scopes = scopes;
    snprintf(out->name, sizeof(out->name), "%s", name);
    if (!random_hex(id) || !random_hex(out->csrf)) return false;
    int64_t now = wh_now_ms();
    pthread_mutex_lock(&ss->lock);
    /* a free or expired slot, else the least recently used */
    entry_t *slot = &ss->v[0];
    for (size_t i = 0; i < WH_SESSIONS_MAX; i++) {
        entry_t *e = &ss->v[i];
        if (!e->used || expired(e, now)) {
            slot = e;
            break;
        }
        if (e->seen_ms < slot->seen_ms) slot = e;
    }
    memcpy(slot->id, id, WH_SESSION_ID_HEX);
    slot->used = true;
    slot->created_ms = slot->seen_ms = now;
    slot->s = *out;
    pthread_mutex_unlock(&ss->lock);
    return true;
}

/* The entry of id (every entry compared, in constant time), or NULL. Under the lock. */
static entry_t *lookup(wh_sessions *ss, const char *id, size_t n)
{
    if (n != WH_SESSION_ID_HEX) return NULL;
    entry_t *found = NULL;
    for (size_t i = 0; i < WH_SESSIONS_MAX; i++) {
        entry_t *e = &ss->v[i];
        bool eq = CRYPTO_memcmp(e->id, id, WH_SESSION_ID_HEX) == 0;
        if (eq && e->used) found = e;
    }
    return found;
}

bool wh_session_get(wh_sessions *ss, const char *id, size_t n, wh_session *out)
{
    int64_t now = wh_now_ms();
    pthread_mutex_lock(&ss->lock);
    entry_t *e = lookup(ss, id, n);
    if (e && expired(e, now)) {
        e->used = false;
        e = NULL;
    }
    if (e) {
        e->seen_ms = now;
        *out = e->s;
    }
    pthread_mutex_unlock(&ss->lock);
    return e != NULL;
}

void wh_session_drop(wh_sessions *ss, const char *id, size_t n)
{
    pthread_mutex_lock(&ss->lock);
    entry_t *e = lookup(ss, id, n);
    if (e) memset(e, 0, sizeof(*e));
    pthread_mutex_unlock(&ss->lock);
}

bool wh_cookie_find(const char *h, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n;) {
        while (i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == ';'))
            i++;
        size_t start = i;
        while (i < n && h[i] != ';')
            i++;
        size_t end = i; /* one "name=value" pair: [start, end) */
        while (end > start && (h[end - 1] == ' ' || h[end - 1] == '\t'))
            end--;
        const char *eq = memchr(h + start, '=', end - start);
        if (eq && (size_t)(eq - (h + start)) == nl && !memcmp(h + start, name, nl)) {
            const char *v = eq + 1;
            size_t l = (size_t)(h + end - v);
            if (l >= 2 && v[0] == '"' && v[l - 1] == '"') v++, l -= 2; /* a quoted value */
            *val = v;
            *vlen = l;
            return true;
        }
    }
    return false;
}

const char *wh_session_check_origin(const wh_session *s, const char *origin, const char *host,
                                    const char *csrf)
{
    if (!origin || !*origin)
        return "a request that changes something, signed in by cookie, must carry Origin";
    const char *sep = strstr(origin, "://");
    if (!host || !*host || !sep || strcmp(sep + 3, host) != 0)
        return "the request's Origin is not this dashboard's (cross-site requests are refused)";
    size_t n = csrf ? strlen(csrf) : 0;
    if (n != WH_SESSION_ID_HEX || CRYPTO_memcmp(csrf, s->csrf, WH_SESSION_ID_HEX) != 0)
        return "the X-CSRF-Token header is missing or is not this session's";
    return NULL;
}
