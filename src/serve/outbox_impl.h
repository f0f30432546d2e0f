/* outbox_impl.h - the daemon's side of the action outbox (outbox.h is the executors' side):
 * made and freed by the service, fed by ingest (decisions), review.c (verdicts) and its own
 * workers (outcomes), read by http.c (/v1/actions) and metrics.c. docs/platforms.md, "The
 * action outbox", says what it promises.
 *
 * Threads: one worker per executor (a platform's, each webhook's, each alert's); the
 * functions below may be called from any thread. */
#ifndef WH_OUTBOX_IMPL_H
#define WH_OUTBOX_IMPL_H

#include "engine/event.h"
#include "engine/verdict.h"
#include "serve/config.h"
#include "serve/outbox.h"
#include "store/store.h"

typedef struct {
    int64_t base_ms, cap_ms; /* retry backoff */
    uint32_t attempts;       /* dead after this many */
    int batch;               /* due operations taken at once */
} wh_outbox_opts;

/* Starts the outbox on st (whose ops hook it takes) with the webhooks and alerts of c (their
 * executors are registered here). NULL with e set on failure. */
wh_outbox *wh_outbox_new(wh_store *st, const wh_config *c, wh_error *e);
/* Stops every worker (waiting for calls in progress) and frees; operations stay in the table. */
void wh_outbox_free(wh_outbox *o);

/* ---- operations from what the daemon records (appended to ops, wh_op_encode'd) ---- */

/* A decision: the platform's operations for its verdict (when the platform has an executor and
 * the event is not a moderator's own action), the webhooks it matches, the alerts it raises.
 * json: the decision line without its newline. */
void wh_outbox_decision_ops(wh_outbox *o, const wh_verdict *v, const wh_event *ev, const char *json,
                            size_t n, wh_buf *ops);
/* A moderator's verdict on a held event: RELEASE (approve) or DENY on its platform, and the
 * review webhooks. event: the held event as received (its meta.msg_id is passed on). body: the
 * review row's JSON. */
void wh_outbox_review_ops(wh_outbox *o, const char *event_id, bool approve, const char *platform,
                          const char *channel, const char *user, const char *event,
                          const char *body, wh_buf *ops);

/* ---- the API (/v1/actions) ---- */

/* {"actions":[...],"next":ID|null}; WH_EIO when the store cannot be read. */
wh_status wh_outbox_list(wh_outbox *o, const wh_op_filter *f, wh_buf *out);
/* One operation as JSON; WH_EINVAL when there is none. */
wh_status wh_outbox_get(wh_outbox *o, const char *id, wh_buf *out);
/* Makes a dead or unsupported operation due again (attempts from 0), with an audit row. The
 * HTTP status; out gets the JSON body; *ticket: the commit to wait for before answering. */
int wh_outbox_retry(wh_outbox *o, const char *id, const char *who, wh_buf *out, uint64_t *ticket);
/* An operation requested through the API (a reversal: unban, untimeout; or any platform
 * operation), from a JSON object {"id","kind","platform","channel","user_id","user_name",
 * "reason","duration_s","moderator"}: the HTTP status, the JSON body, the commit to wait for. */
int wh_outbox_request(wh_outbox *o, const char *body, size_t len, wh_buf *out, uint64_t *ticket);
/* Whether an executor is registered for the platform ("" or NULL: no). */
bool wh_outbox_has_executor(wh_outbox *o, const char *platform);

/* Prometheus text of the outbox: outcomes per platform, due and dead operations. */
void wh_outbox_metrics(wh_outbox *o, wh_buf *b);

/* ---- pure parts (unit-tested) ---- */

/* The idempotency key: 32 hex digits of SHA-256(source "\0" kind "\0" target), into out[33]. */
void wh_outbox_op_id(const char *source, size_t sn, const char *kind, const char *target, size_t tn,
                     char out[33]);
/* Full jitter: a delay in [0, min(cap, base * 2^(attempt-1))], from 64 random bits. */
int64_t wh_outbox_backoff_ms(int64_t base_ms, int64_t cap_ms, uint32_t attempt, uint64_t rnd);
/* What an attempt's result makes of an operation tried `attempt` times (this one included):
 * status (done, retry, dead, unsupported) and when it is due next (-1: final). */
typedef struct {
    const char *status;
    int64_t due_at;
} wh_outbox_next;
wh_outbox_next wh_outbox_settle(const wh_outbox_opts *o, uint32_t attempt, const wh_op_result *r,
                                int64_t now, uint64_t rnd);
/* The kind named n (wh_op_kind_names), or -1. */
int wh_op_kind_parse(const char *n, size_t len);

#endif
