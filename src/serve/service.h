/* service.h - the daemon's engine side: the current ruleset with its deciders and worker
 * pool, the audit store, the rate limiter, reloads, reviews and metrics. Events come in
 * through ingest.h. The HTTP layer (http.c) only parses requests and calls these.
 *
 * Concurrency: a submission analyses its events on its own thread (a worker from the pool of
 * the ruleset it started on), then decides them shard by shard under each shard's lock, so
 * a channel's events are decided one at a time and in order, and submits their audit rows
 * while still holding the lock (the audit order is the decision order). It answers only
 * once the rows are committed. A reload compiles the new ruleset beside the old one, then
 * takes the generation lock for writing: requests in flight finish on the old ruleset, the
 * state moves to the new one, and no event is decided twice or dropped. */
#ifndef WH_SERVICE_H
#define WH_SERVICE_H

#include "base/base.h"
#include "serve/config.h"
#include "state/ratelimit.h"
#include "store/store.h"

typedef struct wh_service wh_service;

/* Opens the store, loads the rules and the saved state. NULL on failure, with e (when not
 * NULL) saying why: WH_ERULES (the rules do not load; the message has the diagnostics),
 * WH_ENOMEM, or WH_EIO (the store: the message names the file and the cause). */
wh_service *wh_service_open(const wh_config *c, wh_error *e);
/* Saves the state, flushes the audit (a "stop" row) and frees. */
void wh_service_close(wh_service *s);

/* Events come in through wh_ingest_submit (ingest.h). */

/* Approves or denies a held event. Returns the HTTP status; out gets the JSON body. It
 * never waits for the database: with ticket_out, a 200 is to be sent once *ticket_out is
 * committed (503 if the store fails first; 0: nothing to wait for); without, it waits.
 * While a verdict on an event is in flight (decided, its rows not yet committed) another
 * verdict on it is 409 already_resolved at once. */
int wh_service_review(wh_service *s, const char *event_id, bool approve, const char *moderator,
                      const char *note, wh_buf *out, uint64_t *ticket_out);

/* Reloads the rules file. Returns true when the new ruleset serves; out gets the JSON body
 * ({"ruleset":..., "rules":N} or an error with the lint diagnostics). */
bool wh_service_reload(wh_service *s, const char *why, wh_buf *out);
/* Lints YAML rules text (lists resolve beside the served rules file). True when valid. */
bool wh_service_validate(wh_service *s, const char *text, size_t len, wh_buf *out);
/* {"ruleset":..., "path":..., "loaded_at":..., "rules":[{id, action, mode, ...}], "source":...} */
void wh_service_rules(wh_service *s, wh_buf *out);
/* Compiles YAML rules text as validation does (lists resolve beside the served rules file):
 * the ruleset (the caller releases it), or NULL with the diagnostics as a JSON array in
 * diag_json. For dry runs (dash.c). */
wh_ruleset *wh_service_load_text(wh_service *s, const char *text, size_t len, wh_buf *diag_json);
/* The dashboard's side of the service (dash.h). */
struct wh_dash *wh_service_dash(wh_service *s);

/* Saves the behaviour state to DATA/state.snap (atomically: a temporary file renamed). */
wh_status wh_service_snapshot(wh_service *s, wh_error *e);

/* One bus partition's behaviour state (io/bus.c): save writes the entries of partition part
 * of nparts in the state file's format to *out (malloc'd; NULL and 0 when the ruleset keeps
 * no state); load drops that partition's entries and loads buf (NULL: none) in their place.
 * Both hold every decider's lock while they run. */
wh_status wh_service_part_save(wh_service *s, uint32_t part, uint32_t nparts, char **out,
                               size_t *len, wh_error *e);
wh_status wh_service_part_load(wh_service *s, uint32_t part, uint32_t nparts,
                               const unsigned char *buf, size_t len, wh_error *e);

/* The rate-limit service's key store and the audit store (owned by the service). */
wh_ratelimiter *wh_service_ratelimiter(wh_service *s);
wh_store *wh_service_store(wh_service *s);
const wh_config *wh_service_config(wh_service *s);

/* ---- metrics ---- */
/* Something beside the service that has metrics of its own (the bus) appends them to
 * /metrics through fn (NULL: no more). fn is called under a lock: setting it to NULL
 * waits for a call in progress. */
typedef void (*wh_metrics_fn)(void *ud, wh_buf *b);
void wh_service_set_metrics(wh_service *s, wh_metrics_fn fn, void *ud);

/* ---- where HTTP events go instead (bus.http: publish) ----
 * With a sink set, POST /v1/events hands its body to fn instead of deciding it: the bus
 * publishes each event for its partition's owner to decide (io/bus.c). fn appends one line
 * per non-blank input line to out. Setting NULL waits for calls in progress. */
typedef wh_status (*wh_event_sink_fn)(void *ud, const char *body, size_t len, bool single,
                                      wh_buf *out, uint32_t *nlines, uint32_t *nerrors);
void wh_service_set_event_sink(wh_service *s, wh_event_sink_fn fn, void *ud);
/* Calls the sink; WH_EUNAVAILABLE when none is set (yet). */
wh_status wh_service_sink_events(wh_service *s, const char *body, size_t len, bool single,
                                 wh_buf *out, uint32_t *nlines, uint32_t *nerrors);

typedef enum {
    WH_RT_EVENTS = 0,
    WH_RT_DECISIONS,
    WH_RT_REVIEW,
    WH_RT_RULES,
    WH_RT_RATELIMIT,
    WH_RT_METRICS,
    WH_RT_HEALTH,
    WH_RT_AUDIT,
    WH_RT_ACTIONS,
    WH_RT_OTHER,
    WH_RT__COUNT
} wh_route;
extern const char *const wh_route_names[WH_RT__COUNT];

void wh_service_observe(wh_service *s, wh_route r, int status, uint64_t ns);
void wh_service_count_ratelimit(wh_service *s, bool quota, bool allowed);
typedef enum {
    WH_REJ_QUEUE = 0,
    WH_REJ_CONNECTIONS,
    WH_REJ_BODY,
    WH_REJ_EVENTS,
    WH_REJ_HEAD_TIMEOUT, /* a connection closed: its request head did not arrive in time */
    WH_REJ_IDLE,         /* a connection closed: no request within limits.idle_timeout */
    WH_REJ_EVICTED,      /* a connection without a request in progress closed for room */
    WH_REJ_BAD_REQUEST,  /* framing (Content-Length, Transfer-Encoding) or control bytes */
    WH_REJ__COUNT
} wh_reject;
void wh_service_count_rejected(wh_service *s, wh_reject why);
void wh_service_connections(wh_service *s, int delta);
/* Prometheus text exposition of everything. */
void wh_service_metrics(wh_service *s, wh_buf *out);

#endif
