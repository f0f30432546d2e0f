/* dash.h - what the moderators' dashboard needs from the daemon beyond the JSON API
 * (docs/dashboard.md): the embedded page, sessions, the event stream, the recent events a
 * dry run re-decides, the history of loaded rulesets, manual actions and the audit search.
 *
 * The service owns one wh_dash (service.c makes it at open and frees it at close). The
 * ingest seam, review.c and reloads tell it what happened (wh_dash_decided, _reviewed,
 * _ruleset_loaded): each is cheap, and publishes to the stream only when someone listens.
 *
 * HTTP: each handler here is one row of http.c's route table (its `dash` column), called
 * with a wh_dash_req that http.c fills from the request after it checked the route's scope. */
#ifndef WH_DASH_H
#define WH_DASH_H

#include <microhttpd.h>

#include "engine/engine.h"
#include "serve/service.h"
#include "serve/session.h"
#include "serve/stream.h"

/* The recent events a dry run re-decides: at most this many, and this many bytes. */
#define WH_DASH_RECENT 10000
#define WH_DASH_RECENT_BYTES ((size_t)16 << 20)
/* Rulesets remembered for the history view (their sources). */
#define WH_DASH_RULESETS 16

typedef struct wh_dash wh_dash;

wh_dash *wh_dash_new(void);
void wh_dash_free(wh_dash *d);
wh_stream *wh_dash_stream(wh_dash *d);
wh_sessions *wh_dash_sessions(wh_dash *d);

/* An event was decided (not a retry answered from the idempotency window, not a replay):
 * its input line, its decision line (without the newline) and when it was received. Kept
 * for dry runs, and published as a "decision" stream event. Any thread. */
void wh_dash_decided(wh_dash *d, const wh_event *ev, const char *line, size_t line_len,
                     const char *decision, size_t dn, int64_t now_ms);
/* A held event was approved or denied: a "review" stream event. */
void wh_dash_reviewed(wh_dash *d, const char *event_id, const char *status, const char *moderator,
                      const char *channel, const char *user);
/* A ruleset began to serve (why: "start", "api", "signal"...): history, and a "reload"
 * stream event unless it is the first. */
void wh_dash_ruleset_loaded(wh_dash *d, const char *hash, const char *previous, unsigned nrules,
                            const char *source, const char *why);

/* ---- HTTP ---- */
typedef struct {
    wh_service *svc;
    struct MHD_Connection *conn;
    const char *method;
    const char *url; /* the decoded path */
    const char *body;
    size_t len;
    /* who asks: the route's scope was checked */
    unsigned scopes;
    const char *who;           /* the token's name (or the session's) */
    const wh_session *session; /* signed in by cookie (NULL: a bearer token or none) */
    const char *session_id;    /* its cookie value */
    /* out */
    const char *content_type;  /* default application/json */
    char set_cookie[256];      /* a Set-Cookie header ("" none) */
    struct MHD_Response *resp; /* a response of its own (assets, stream): sent as it is */
    uint64_t ticket;           /* answer once this audit ticket is committed (0: now) */
} wh_dash_req;
typedef int (*wh_dash_fn)(wh_dash_req *q, wh_buf *out);

/* The token check http.c does for a bearer token, for a token posted to sign in: its scopes
 * (0: not a valid token) and its name. */
typedef unsigned (*wh_token_check_fn)(void *ud, const char *tok, size_t n, char *name,
                                      size_t name_n);
void wh_dash_set_token_check(wh_dash *d, wh_token_check_fn fn, void *ud);

int wh_dash_asset(wh_dash_req *q, wh_buf *out);      /* GET /, /assets/NAME */
int wh_dash_stream_get(wh_dash_req *q, wh_buf *out); /* GET /v1/stream */
int wh_dash_sign_in(wh_dash_req *q, wh_buf *out);    /* POST /v1/session */
int wh_dash_whoami(wh_dash_req *q, wh_buf *out);     /* GET /v1/session */
int wh_dash_sign_out(wh_dash_req *q, wh_buf *out);   /* DELETE /v1/session */
int wh_dash_action(wh_dash_req *q, wh_buf *out);     /* POST /v1/actions */
int wh_dash_audit(wh_dash_req *q, wh_buf *out);      /* GET /v1/audit */
int wh_dash_verify(wh_dash_req *q, wh_buf *out);     /* GET /v1/audit/verify */
int wh_dash_history(wh_dash_req *q, wh_buf *out);    /* GET /v1/rules/history */
int wh_dash_dryrun(wh_dash_req *q, wh_buf *out);     /* POST /v1/rules/dryrun */

/* Headers every answer carries (a strict Content-Security-Policy, no framing, no sniffing);
 * page: the dashboard's HTML, which may load its own scripts and styles. */
void wh_dash_security_headers(struct MHD_Response *resp, bool page);

#endif
