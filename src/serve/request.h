/* request.h - decoding the small JSON bodies of the HTTP API: a rate-limit request and a
 * moderator's review verdict. Separate from http.c so that they can be fuzzed
 * (fuzz/fuzz_request.c) without a server. */
#ifndef WH_REQUEST_H
#define WH_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/gcra.h"
#include "state/ratelimit.h"

#define WH_RL_KEY_MAX 1024

typedef struct {
    char key[WH_RL_KEY_MAX + 1]; /* UTF-8, no NUL inside */
    size_t keylen;
    int64_t cost;        /* 0..1000000, default 1 */
    bool quota;          /* a quota (per, limit), else a GCRA limit */
    wh_quota_period per; /* quota */
    int64_t limit;       /* quota: >= 1 */
    wh_gcra_limit gcra;  /* GCRA: valid (wh_gcra_limit_valid) */
} wh_rl_request;

typedef struct {
    char moderator[256]; /* UTF-8, not empty */
    char note[2048];     /* UTF-8 */
    bool has_note;
} wh_review_request;

/* Sign-in (POST /v1/session): {"token": "..."}. */
typedef struct {
    char token[512];
    size_t len;
} wh_signin_request;

/* A moderator's manual action (POST /v1/actions), which becomes a mod_action event. */
#define WH_ACTION_NAMES "warn, timeout, ban or unban"
typedef struct {
    char platform[128], channel[256], user[256];
    char action[16];    /* warn, timeout, ban, unban */
    int64_t duration_s; /* timeout: 1 to 1209600 (14 days); else 0 */
    char note[512];
    bool has_note;
} wh_action_request;

/* The panic switch of a channel (POST /v1/channels/CHANNEL/panic): {"for_s": N, "platform":
 * optional, "note": optional}; for_s 0 switches it off. */
#define WH_PANIC_MAX_FOR_S 604800 /* 7 days (the engine's WH_PANIC_MAX_S) */
typedef struct {
    char platform[128];
    int64_t for_s; /* 0 to WH_PANIC_MAX_FOR_S */
    char note[512];
    bool has_note;
} wh_panic_request;

/* What one GET /v1/stream subscriber wants (its query: channel, action, allow). */
#define WH_STREAM_KINDS 8     /* kinds of decision a filter can name (the actions) */
#define WH_STREAM_CHANNELS 16 /* channels a filter may name */
#define WH_STREAM_ALLOW_DEFAULT 50
#define WH_STREAM_ALLOW_MAX 100000
typedef struct {
    char *channels[WH_STREAM_CHANNELS]; /* exact names; none: every channel (owned) */
    uint32_t nchannels;
    uint32_t kinds;      /* a bit per kind; 0: every kind */
    int32_t allow_per_s; /* plain allows sent a second at most; -1: every one */
} wh_stream_filter;
/* channel: names separated by commas; action: kind names (of kind_names[0..nkinds))
 * separated by commas; allow: "all" or 0 to WH_STREAM_ALLOW_MAX (NULL: the default). Each may
 * be NULL (no filter). False, with msg saying which parameter is wrong and why, on a bad one
 * (nothing is then owned by f). */
bool wh_stream_filter_parse(const char *channel, const char *action, const char *allow,
                            const char *const *kind_names, unsigned nkinds, wh_stream_filter *f,
                            char *msg, size_t msglen);
void wh_stream_filter_free(wh_stream_filter *f);

/* Each returns true when the body is valid; else false with *code (bad_json, bad_field,
 * bad_utf8) and msg (what is wrong and where) set. */
bool wh_rl_request_parse(const char *s, size_t n, wh_rl_request *r, const char **code, char *msg,
                         size_t msglen);
bool wh_review_request_parse(const char *s, size_t n, wh_review_request *r, const char **code,
                             char *msg, size_t msglen);
bool wh_signin_request_parse(const char *s, size_t n, wh_signin_request *r, const char **code,
                             char *msg, size_t msglen);
bool wh_action_request_parse(const char *s, size_t n, wh_action_request *r, const char **code,
                             char *msg, size_t msglen);
bool wh_panic_request_parse(const char *s, size_t n, wh_panic_request *r, const char **code,
                            char *msg, size_t msglen);

/* Why s[0..n) cannot be an identifier, a path or a header value (NULL when it can): a
 * control character (C0 or DEL; a tab is allowed where tab_ok), or bytes that are not
 * UTF-8; the reason is written to why. Control characters are refused because C strings
 * end at NUL: "a\0b" would be "a" to one reader and "a\0b" to another. */
const char *wh_bad_bytes(const char *s, size_t n, bool tab_ok, char *why, size_t wn);
/* Percent-decodes the path p[0..n) into out (n + 1 bytes; NUL-terminated, *outlen bytes).
 * False, with why set, when an escape is malformed or the decoded path holds what
 * wh_bad_bytes refuses. */
bool wh_path_decode(const char *p, size_t n, char *out, size_t *outlen, char *why, size_t wn);

#endif
