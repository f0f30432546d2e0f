/* session.h - the dashboard's sign-in sessions (docs/dashboard.md, "Sign-in and scopes").
 *
 * A browser signs in by posting an API token once (POST /v1/session); the daemon checks it
 * as it checks a bearer token and answers with a session: a random id in an HttpOnly,
 * SameSite=Strict cookie (script cannot read it, other sites cannot send it) and a random
 * CSRF token in the body, which the page keeps in memory and sends back in X-CSRF-Token
 * with every request that changes something. The session has the token's scopes and name,
 * never the token. Sessions live in memory: a restart signs everyone out.
 *
 * Thread-safe (one lock, held for a lookup). At most WH_SESSIONS_MAX at once; past that the
 * least recently used goes. A session expires after WH_SESSION_IDLE_MS without a request,
 * and after WH_SESSION_MAX_MS in any case. */
#ifndef WH_SESSION_H
#define WH_SESSION_H

#include "base/base.h"

#define WH_SESSION_COOKIE "whiply_session"
#define WH_SESSIONS_MAX 4096
#define WH_SESSION_IDLE_MS (12LL * 3600 * 1000)
#define WH_SESSION_MAX_MS (7LL * 24 * 3600 * 1000)
#define WH_SESSION_ID_HEX 64 /* 32 random bytes */

typedef struct wh_sessions wh_sessions;

typedef struct {
    unsigned scopes;
    char name[64];
    char csrf[WH_SESSION_ID_HEX + 1];
} wh_session;

wh_sessions *wh_sessions_new(void);
void wh_sessions_free(wh_sessions *ss);

/* A new session for a token's scopes and name: its id (the cookie's value) and its record
 * (with the CSRF token). False when random bytes cannot be had. */
bool wh_session_create(wh_sessions *ss, unsigned scopes, const char *name,
                       char id[WH_SESSION_ID_HEX + 1], wh_session *out);
/* The session of a cookie value, its idle time restarted; false when unknown or expired. The
 * comparison takes the same time whichever session matches, or none. */
bool wh_session_get(wh_sessions *ss, const char *id, size_t n, wh_session *out);
/* Signs a session out (nothing when unknown). */
void wh_session_drop(wh_sessions *ss, const char *id, size_t n);

/* The value of cookie `name` in a Cookie header (RFC 6265: "a=1; b=2"): false when absent.
 * *val points into header. */
bool wh_cookie_find(const char *header, size_t n, const char *name, const char **val, size_t *vlen);

/* Whether a state-changing request signed in by cookie comes from the dashboard's own page:
 * its Origin (scheme://host[:port]) names the same host[:port] as its Host header, and its
 * X-CSRF-Token equals the session's (constant time). NULL when it does; else why not. */
const char *wh_session_check_origin(const wh_session *s, const char *origin, const char *host,
                                    const char *csrf);

#endif
