/* dash.h - what the moderators' dashboard needs from the daemon beyond the JSON API
 * (docs/dashboard.md): the embedded page, sessions, the event stream, the recent events a
 * dry run re-decides, the history of loaded rulesets, manual actions and the audit search.
 *
 * The service owns one wh_dash (service.c makes it at open and frees it at close). The
 * ingest seam, review.c and reloads tell it what happened (wh_dash_hand_off, _reviewed,
 * _ruleset_loaded). Decided events cost the deciding thread a copy and one short lock a
 * submission: a feed thread of the dash's own keeps them for dry runs and offers them to the
 * stream (filters, sampling and JSON are its work), so that open dashboards do not slow
 * deciding (bench/dashboard.sh).
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
#define WH_DASH_PANICS 1024 /* channels with their panic switch on that GET /v1/channels lists */
#define WH_DASH_RECENT_BYTES ((size_t)16 << 20)
/* Decided events waiting for the feed thread at most: more are lost to the stream (counted,
 * and told to subscribers as lagging) and to dry runs. */
#define WH_DASH_HANDOFF 65536
/* Stream subscribers are woken this often at most while decisions flow. */
#define WH_DASH_FLUSH_MS 50
/* Rulesets remembered for the history view (their sources). */
#define WH_DASH_RULESETS 16

typedef struct wh_dash wh_dash;

wh_dash *wh_dash_new(void);
void wh_dash_free(wh_dash *d);
wh_stream *wh_dash_stream(wh_dash *d);
wh_sessions *wh_dash_sessions(wh_dash *d);

/* The events one submission decided (not retries answered from the idempotency window, not
 * replays), collected by the deciding thread without a lock, then handed to the feed thread
 * at once. Zero-initialize it. */
typedef struct {
    void **r;
    uint32_t n, cap;
    bool oom; /* some were not kept */
} wh_dash_batch;
/* ev with its action, whether it is worth showing even when it is an allow (a shadow rule,
 * a channel action, targets, a moderator's action), its input line, its decision line
 * (without the newline) and when it was received: copied. */
void wh_dash_batch_add(wh_dash_batch *b, const wh_event *ev, wh_action action, bool notable,
                       const char *line, size_t line_len, const char *decision, size_t dn,
                       int64_t now_ms);
/* Hands b's events to the feed thread (kept for dry runs, offered as "decision" stream
 * events) and empties b. Any thread; d may be NULL (b is emptied). */
void wh_dash_hand_off(wh_dash *d, wh_dash_batch *b);
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
int wh_dash_panic(wh_dash_req *q, wh_buf *out);      /* POST /v1/channels/CHANNEL/panic */
int wh_dash_channels(wh_dash_req *q, wh_buf *out);   /* GET /v1/channels */

/* Headers every answer carries (a strict Content-Security-Policy, no framing, no sniffing);
 * page: the dashboard's HTML, which may load its own scripts and styles. */
void wh_dash_security_headers(struct MHD_Response *resp, bool page);

#endif
