/* internal.h - what the daemon's files share (not an interface): the service record, a
 * ruleset generation with its deciders and worker pool, the idempotency window's entries,
 * latency histograms.
 *
 *   service.c  open/close, generations and reloads, snapshots
 *   review.c   the review queue's verdicts
 *   metrics.c  counters, histograms, Prometheus text
 *   ingest.c   the one way events come in (ingest.h): decide in order, audit, answer
 *   http.c     the HTTP API, which calls the two above */
#ifndef WH_SERVE_INTERNAL_H
#define WH_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "engine/engine.h"
#include "service.h"
#include "state/table.h"

/* Latency histogram buckets (seconds), as Prometheus expects them: cumulative on output. */
static const double wh_lat_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                       0.005,   0.01,   0.025,   0.1,    1.0};
#define NB (sizeof(wh_lat_bounds) / sizeof(wh_lat_bounds[0]))
static const int status_codes[] = {200, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503};
#define NS (sizeof(status_codes) / sizeof(status_codes[0]))

typedef struct {
    _Atomic uint64_t b[NB + 1];
    _Atomic uint64_t sum_ns;
} wh_histo;

void wh_histo_add(wh_histo *h, uint64_t ns, uint64_t n);

/* One ruleset with everything built for it. */
typedef struct {
    wh_ruleset *rs;
    uint32_t nshards;
    wh_decider **dec;
    pthread_mutex_t *dec_lock;
    pthread_mutex_t pool_lock;
    wh_worker **pool;
    uint32_t npool, cappool;
    int64_t loaded_ms;
    char *source; /* the rules text as loaded */
} gen_t;

struct wh_service {
    const wh_config *cfg;
    pthread_rwlock_t gen_rw;
    gen_t *g;
    pthread_mutex_t reload_lock;
    /* The verdicts in flight (decided, not yet committed), by event id: a second verdict on
     * one of them is refused (409) at once instead of waiting behind the first. Held only to
     * look the list up or change it, never across a commit. */
    pthread_mutex_t review_lock;
    struct review_claim *claims;
    wh_store *store;
    struct wh_outbox *outbox; /* what leaves the process (outbox_impl.h) */
    wh_ratelimiter *rl;
    char *state_path;
    char *dedupe_path; /* DATA/dedupe.snap: the idempotency window; NULL when it is off */
    wh_engine_opts eo;
    /* Idempotency: per shard (under its lock), the decision lines of the most recent event
     * ids, so that an event sent again (a client retrying after a lost answer) gets the same
     * answer without being decided, counted or audited twice. Keys are a seeded XXH3 of the
     * id: a client cannot aim at another's entry. */
    wh_table *dedupe[64];
    uint64_t dedupe_seed;
    _Atomic uint64_t replayed;

    _Atomic uint64_t events, errors, actions[WH_ACT__COUNT];
    _Atomic uint64_t reloads_ok, reloads_failed;
    _Atomic uint64_t http[WH_RT__COUNT][NS + 1];
    wh_histo http_lat[WH_RT__COUNT];
    wh_histo engine_lat;
    _Atomic uint64_t rl_answers[2][2]; /* [quota][allowed] */
    _Atomic uint64_t rejected[WH_REJ__COUNT];
    /* state evictions of generations replaced by a reload, so the counters never go back */
    _Atomic uint64_t old_user_evictions, old_channel_evictions;
    _Atomic int64_t connections;
    /* rule hits of rulesets replaced by a reload (by rule id), so counters never go back */
    pthread_mutex_t hits_lock;
    /* more metrics from outside the service (the bus), under hits_lock */
    wh_metrics_fn extra;
    void *extra_ud;
    /* where HTTP events go instead of being decided (bus.http: publish), under sink_rw */
    pthread_rwlock_t sink_rw;
    wh_event_sink_fn sink;
    void *sink_ud;
    struct {
        char *id;
        uint64_t n;
    } * old_hits;
    uint32_t nold_hits;
    /* the dashboard's side (dash.h): stream, sessions, recent events, ruleset history */
    struct wh_dash *dash;
};

typedef struct {
    char *line; /* the decision line, newline included */
    uint32_t len;
    /* Its audit rows: a replay is answered only once they are committed, and the entry is
     * saved to DATA/dedupe.snap only then (ticket <= wh_store_durable). 0: committed before
     * this start (loaded from the file). */
    uint64_t ticket;
} dedupe_entry;

/* Frees a review claim (a verdict in flight), unlinking it from the service's list. */
struct review_claim;
void wh_claim_release(struct review_claim *c);

/* The drop function of the idempotency window's tables (frees an entry's line). */
void wh_dedupe_drop(void *payload);
/* A worker of generation g's pool (made when the pool is empty), and back to the pool. */
wh_worker *wh_gen_worker_get(gen_t *g, const wh_engine_opts *eo);
void wh_gen_worker_put(gen_t *g, wh_worker *w);

#endif
