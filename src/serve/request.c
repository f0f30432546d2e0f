/* request.c - see request.h. */
#define _GNU_SOURCE
#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/json.h"
#include "text/utf8.h"

typedef struct {
    const char *s;
    wh_jtok tok[64];
    int n;
} jdoc;

static bool fail(const char **code, char *msg, size_t msglen, const char *c, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static bool fail(const char **code, char *msg, size_t msglen, const char *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    *code = c;
    return false;
}

static bool jparse(jdoc *d, const char *s, size_t n, const char **code, char *msg, size_t msglen)
{
    size_t pos = 0;
    const char *what = "";
    d->s = s;
    d->n = wh_json_tokenize(s, n, d->tok, 64, 8, &pos, &what);
    if (d->n < 0)
        return fail(code, msg, msglen, "bad_json", "the body is not valid JSON: %s at byte %zu",
                    what, pos + 1);
    if (d->n == 0 || d->tok[0].type != WH_J_OBJECT)
        return fail(code, msg, msglen, "bad_json", "the body must be a JSON object");
    return true;
}

/* The value of key among the members of the object at token o, or -1. */
static int jget_in(const jdoc *d, int o, const char *key)
{
    size_t kl = strlen(key);
    for (int j = o + 1; j + 1 < d->tok[o].next && j + 1 < d->n; j = d->tok[j + 1].next) {
        const wh_jtok *k = &d->tok[j];
        if ((size_t)(k->end - k->start) == kl && !memcmp(d->s + k->start, key, kl)) return j + 1;
    }
    return -1;
}

/* A string value, unescaped, NUL-terminated, into buf: 1 ok, 0 absent or not a string,
 * -1 too long, -2 not UTF-8 (or a bad escape), -3 with a NUL inside. */
static int jstr(const jdoc *d, int i, char *buf, size_t cap, size_t *len)
{
    if (i < 0 || d->tok[i].type != WH_J_STRING) return 0;
    size_t n = (size_t)(d->tok[i].end - d->tok[i].start), out = 0, bad = 0;
    if (n + 1 > cap) return -1; /* unescaping never lengthens */
    if (!wh_json_unescape(d->s + d->tok[i].start, n, buf, &out, &bad)) return -2;
    buf[out] = 0;
    if (wh_utf8_invalid_at(buf, out) != (size_t)-1) return -2;
    if (memchr(buf, 0, out)) return -3;
    if (len) *len = out;
    return 1;
}

/* The first C0 control character or DEL in s[0..n), or -1: identifiers have none (as in
 * events: io/event.c). */
static int control_at(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return (int)i;
    return -1;
}

/* An integer value (false: absent, not a number or not an integer). */
static bool jint(const jdoc *d, int i, int64_t *v)
{
    if (i < 0 || d->tok[i].type != WH_J_PRIMITIVE) return false;
    char tmp[24];
    size_t n = (size_t)(d->tok[i].end - d->tok[i].start);
    if (n == 0 || n >= sizeof(tmp)) return false;
    memcpy(tmp, d->s + d->tok[i].start, n);
    tmp[n] = 0;
    char *end;
    long long x = strtoll(tmp, &end, 10);
    if (*end) return false;
    *v = x;
    return true;
}

bool wh_rl_request_parse(const char *s, size_t n, wh_rl_request *r, const char **code, char *msg,
                         size_t msglen)
{
    jdoc d;
    memset(r, 0, sizeof(*r));
    r->cost = 1;
    if (!jparse(&d, s, n, code, msg, msglen)) return false;
    int k = jstr(&d, jget_in(&d, 0, "key"), r->key, sizeof(r->key), &r->keylen);
    if (k == -2 || k == -3)
        return fail(code, msg, msglen, "bad_utf8", "\"key\" must be UTF-8 without NUL");
    if (k != 1 || r->keylen == 0)
        return fail(code, msg, msglen, "bad_field",
                    "\"key\" (a string of 1 to %d bytes) is required", WH_RL_KEY_MAX);
    int ci = jget_in(&d, 0, "cost");
    if (ci >= 0 && (!jint(&d, ci, &r->cost) || r->cost < 0 || r->cost > 1000000))
        return fail(code, msg, msglen, "bad_field",
                    "\"cost\" must be an integer from 0 to 1000000");
    int qi = jget_in(&d, 0, "quota");
    if (qi >= 0) {
        if (d.tok[qi].type != WH_J_OBJECT)
            return fail(code, msg, msglen, "bad_field", "\"quota\" must be an object {limit, per}");
        char per[16];
        int pi = jget_in(&d, qi, "per");
        int found = -1;
        if (jstr(&d, pi, per, sizeof(per), NULL) == 1)
            for (int q = 0; q < WH_Q__COUNT; q++)
                if (!strcmp(per, wh_quota_period_names[q])) found = q;
        if (!jint(&d, jget_in(&d, qi, "limit"), &r->limit) || r->limit < 1 || found < 0)
            return fail(code, msg, msglen, "bad_field",
                        "\"quota\" needs \"limit\" (an integer >= 1) and \"per\" (hour, day or "
                        "month)");
        r->quota = true;
        r->per = (wh_quota_period)found;
        return true;
    }
    int64_t burst, rate, period;
    if (!jint(&d, jget_in(&d, 0, "burst"), &burst) || !jint(&d, jget_in(&d, 0, "rate"), &rate) ||
        !jint(&d, jget_in(&d, 0, "period"), &period))
        return fail(code, msg, msglen, "bad_field",
                    "a rate limit needs integers \"burst\", \"rate\" and \"period\" (seconds), or "
                    "a \"quota\"");
    bool in_range = burst >= 0 && burst < (1 << 20) && period >= 1 && period <= 100000000 &&
                    rate >= 1 && rate <= WH_GCRA_MAX_COUNT;
    if (in_range)
        r->gcra = (wh_gcra_limit){.period_ms = period * 1000, .count = rate, .burst = burst + 1};
    if (!in_range || !wh_gcra_limit_valid(&r->gcra))
        return fail(code, msg, msglen, "bad_field",
                    "\"burst\" must be 0 to 1048575, \"rate\" 1 to %d, \"period\" 1 to 10^8 "
                    "seconds",
                    WH_GCRA_MAX_COUNT);
    return true;
}

bool wh_review_request_parse(const char *s, size_t n, wh_review_request *r, const char **code,
                             char *msg, size_t msglen)
{
    jdoc d;
    memset(r, 0, sizeof(*r));
    if (!jparse(&d, s, n, code, msg, msglen)) return false;
    size_t ml = 0;
    int m = jstr(&d, jget_in(&d, 0, "moderator"), r->moderator, sizeof(r->moderator), &ml);
    if (m == -2) return fail(code, msg, msglen, "bad_utf8", "\"moderator\" must be UTF-8");
    /* -3: a NUL, reported as the control character it is (strlen stops at it) */
    int at = m == 1 ? control_at(r->moderator, ml) : m == -3 ? (int)strlen(r->moderator) : -1;
    if (at >= 0)
        return fail(code, msg, msglen, "bad_field",
                    "\"moderator\" contains a control character (U+%04X at byte %d of its "
                    "value); identifiers may not",
                    (unsigned char)r->moderator[at], at + 1);
    if (m != 1 || !r->moderator[0])
        return fail(code, msg, msglen, "bad_field",
                    "\"moderator\" (a string of at most 255 bytes) is required");
    int ni = jget_in(&d, 0, "note");
    if (ni >= 0 && d.tok[ni].type == WH_J_STRING) {
        int k = jstr(&d, ni, r->note, sizeof(r->note), NULL);
        if (k == -2) return fail(code, msg, msglen, "bad_utf8", "\"note\" must be UTF-8");
        if (k == -3)
            return fail(code, msg, msglen, "bad_field",
                        "\"note\" contains a NUL character (lines and tabs are fine)");
        if (k != 1)
            return fail(code, msg, msglen, "bad_field",
                        "\"note\" must be a string of at most 2047 bytes");
        r->has_note = true;
    }
    return true;
}

/* An identifier field (UTF-8, no control character) into buf: 1 ok, 0 absent, or false
 * returned through fail with what is wrong. */
static int ident(const jdoc *d, const char *key, char *buf, size_t cap, bool required,
                 const char **code, char *msg, size_t msglen)
{
    size_t len = 0;
    int k = jstr(d, jget_in(d, 0, key), buf, cap, &len);
    if (k == -2) return fail(code, msg, msglen, "bad_utf8", "\"%s\" must be UTF-8", key), -1;
    int at = k == 1 ? control_at(buf, len) : k == -3 ? 0 : -1;
    if (at >= 0)
        return fail(code, msg, msglen, "bad_field",
                    "\"%s\" contains a control character at byte %d; identifiers may not", key,
                    at + 1),
               -1;
    if (k == -1 || (k == 0 && jget_in(d, 0, key) >= 0) || (k != 1 && required) ||
        (k == 1 && !len && required))
        return fail(code, msg, msglen, "bad_field", "\"%s\" (a string of 1 to %zu bytes) is %s",
                    key, cap - 1, required ? "required" : "optional, but must be one"),
               -1;
    return k == 1;
}

bool wh_signin_request_parse(const char *s, size_t n, wh_signin_request *r, const char **code,
                             char *msg, size_t msglen)
{
    jdoc d;
    memset(r, 0, sizeof(*r));
    if (!jparse(&d, s, n, code, msg, msglen)) return false;
    if (ident(&d, "token", r->token, sizeof(r->token), true, code, msg, msglen) < 0) return false;
    r->len = strlen(r->token);
    return true;
}

/* The optional "note" (a moderator's words for the audit row). */
static bool note(const jdoc *d, char *buf, size_t cap, bool *has, const char **code, char *msg,
                 size_t msglen)
{
    int ni = jget_in(d, 0, "note");
    if (ni < 0) return true;
    int k = jstr(d, ni, buf, cap, NULL);
    if (k != 1)
        return fail(code, msg, msglen, k == -2 ? "bad_utf8" : "bad_field",
                    "\"note\" must be a UTF-8 string of at most %zu bytes without NUL", cap - 1);
    *has = true;
    return true;
}

bool wh_action_request_parse(const char *s, size_t n, wh_action_request *r, const char **code,
                             char *msg, size_t msglen)
{
    jdoc d;
    memset(r, 0, sizeof(*r));
    if (!jparse(&d, s, n, code, msg, msglen)) return false;
    if (ident(&d, "platform", r->platform, sizeof(r->platform), false, code, msg, msglen) < 0 ||
        ident(&d, "channel", r->channel, sizeof(r->channel), true, code, msg, msglen) < 0 ||
        ident(&d, "user", r->user, sizeof(r->user), true, code, msg, msglen) < 0 ||
        ident(&d, "action", r->action, sizeof(r->action), true, code, msg, msglen) < 0)
        return false;
    static const char *const actions[] = {"warn", "timeout", "ban", "unban"};
    bool known = false;
    for (size_t i = 0; i < WH_ARRAY_LEN(actions); i++)
        known |= !strcmp(r->action, actions[i]);
    if (!known)
        return fail(code, msg, msglen, "bad_field",
                    "\"action\" must be " WH_ACTION_NAMES ", not '%s'", r->action);
    int di = jget_in(&d, 0, "duration_s");
    bool timeout = !strcmp(r->action, "timeout");
    if (timeout && (!jint(&d, di, &r->duration_s) || r->duration_s < 1 || r->duration_s > 1209600))
        return fail(code, msg, msglen, "bad_field",
                    "a timeout needs \"duration_s\": an integer from 1 to 1209600 (14 days)");
    if (!timeout && di >= 0)
        return fail(code, msg, msglen, "bad_field", "\"duration_s\" is for a timeout only");
    return note(&d, r->note, sizeof(r->note), &r->has_note, code, msg, msglen);
}

bool wh_panic_request_parse(const char *s, size_t n, wh_panic_request *r, const char **code,
                            char *msg, size_t msglen)
{
    jdoc d;
    memset(r, 0, sizeof(*r));
    if (!jparse(&d, s, n, code, msg, msglen)) return false;
    if (ident(&d, "platform", r->platform, sizeof(r->platform), false, code, msg, msglen) < 0)
        return false;
    if (!jint(&d, jget_in(&d, 0, "for_s"), &r->for_s) || r->for_s < 0 ||
        r->for_s > WH_PANIC_MAX_FOR_S)
        return fail(code, msg, msglen, "bad_field",
                    "\"for_s\" must be an integer from 0 (switch it off) to %d (7 days)",
                    WH_PANIC_MAX_FOR_S);
    return note(&d, r->note, sizeof(r->note), &r->has_note, code, msg, msglen);
}

/* ---- the request line and headers ---- */

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

const char *wh_bad_bytes(const char *s, size_t n, bool tab_ok, char *why, size_t wn)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && !(tab_ok && ch == '\t')) || ch == 0x7f) {
            snprintf(why, wn, "a control character (byte 0x%02x) at byte %zu", ch, i + 1);
            return why;
        }
    }
    size_t at = wh_utf8_invalid_at(s, n);
    if (at != (size_t)-1) {
        snprintf(why, wn, "bytes that are not UTF-8 at byte %zu", at + 1);
        return why;
    }
    return NULL;
}

bool wh_path_decode(const char *p, size_t n, char *out, size_t *outlen, char *why, size_t wn)
{
    size_t o = 0;
    why[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            out[o++] = p[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = hi >= 0 ? hexval(p[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            snprintf(why, wn,
                     "the path has a '%%' at byte %zu that is not followed by two hex "
                     "digits",
                     i + 1);
            break;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = 0;
    *outlen = o;
    char what[96];
    if (!why[0] && wh_bad_bytes(out, o, false, what, sizeof(what)))
        snprintf(why, wn, "the path (percent-decoded) holds %s", what);
    return !why[0];
}

void wh_stream_filter_free(wh_stream_filter *f)
{
    for (uint32_t i = 0; i < f->nchannels; i++)
        free(f->channels[i]);
    f->nchannels = 0;
}

bool wh_stream_filter_parse(const char *channel, const char *action, const char *allow,
                            const char *const *kind_names, unsigned nkinds, wh_stream_filter *f,
                            char *msg, size_t msglen)
{
    const char *code;
    *f = (wh_stream_filter){.allow_per_s = WH_STREAM_ALLOW_DEFAULT};
    for (const char *p = channel; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char why[128];
        if (!n) {
            fail(&code, msg, msglen, "bad_request", "channel: an empty name in the list");
            goto fail;
        }
        if (n > 255 || wh_bad_bytes(p, n, false, why, sizeof(why))) {
            fail(&code, msg, msglen, "bad_request", "channel: name %u %s", f->nchannels + 1,
                 n > 255 ? "is longer than 255 bytes" : why);
            goto fail;
        }
        if (f->nchannels == WH_STREAM_CHANNELS) {
            fail(&code, msg, msglen, "bad_request", "channel: more than %d names",
                 WH_STREAM_CHANNELS);
            goto fail;
        }
        if (!(f->channels[f->nchannels] = strndup(p, n))) {
            fail(&code, msg, msglen, "internal", "out of memory");
            goto fail;
        }
        f->nchannels++;
        p += n + (e != NULL);
    }
    for (const char *p = action; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        unsigned k = 0;
        while (k < nkinds && k < WH_STREAM_KINDS &&
               !(strlen(kind_names[k]) == n && !memcmp(kind_names[k], p, n)))
            k++;
        if (k == nkinds || k == WH_STREAM_KINDS) {
            fail(&code, msg, msglen, "bad_request", "action: '%.*s' is not an action",
                 (int)(n > 64 ? 64 : n), p);
            goto fail;
        }
        f->kinds |= 1u << k;
        p += n + (e != NULL);
    }
    if (allow && !strcmp(allow, "all")) {
        f->allow_per_s = -1;
    } else if (allow) {
        char *end;
        long v = strtol(allow, &end, 10);
        if (!*allow || *end || *allow == '-' || *allow == '+' || v > WH_STREAM_ALLOW_MAX) {
            fail(&code, msg, msglen, "bad_request",
                 "allow: '%.32s' is neither 'all' nor a number from 0 to %d", allow,
                 WH_STREAM_ALLOW_MAX);
            goto fail;
        }
        f->allow_per_s = (int32_t)v;
    }
    return true;
fail:
    wh_stream_filter_free(f);
    return false;
}
