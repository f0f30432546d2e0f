/* ingest.h - the one way events come into the daemon. The HTTP API calls it, and so does
 * every adapter (a bus, a chat connection, a webhook receiver): an adapter translates what
 * it receives into event lines (docs/api.md, "The event") and submits them here; it never
 * decides, orders or audits anything itself.
 *
 * What a submission gets:
 *  - its events decided in order per channel (a channel's events are decided one at a time,
 *    in the order they were submitted, whoever submitted them), against the ruleset serving
 *    when it started (a reload waits for it);
 *  - an event id seen within the idempotency window answered with the decision it got the
 *    first time, not decided, counted or audited again;
 *  - one output line per non-blank input line, in input order: the decision, or an error
 *    object naming what is wrong with that line (the other lines are decided all the same);
 *  - its audit rows queued in decision order, and a notice once they are committed: only
 *    then may the decisions be acted on or acknowledged (a bus message acked, an HTTP 200);
 *  - backpressure as a status: when the audit queue is full nothing is decided and
 *    WH_EBUSY comes back at once; submit again later. Nothing blocks on the database. */
#ifndef WH_INGEST_H
#define WH_INGEST_H

#include "service.h"

typedef struct wh_ingest_req wh_ingest_req;

/* Called once the submission's audit rows are committed (durable) or the store failed
 * (!durable: the decisions must not be acted on; the events may be submitted again). From
 * the audit writer's thread, or from wh_ingest_submit's caller when there was nothing to
 * wait for: keep it short, and do not submit from it. */
typedef void (*wh_ingest_done_fn)(wh_ingest_req *r, bool durable);

struct wh_ingest_req {
    /* in */
    const char *body; /* NDJSON lines; with single, the whole body is one event */
    size_t len;
    bool single;
    /* Decide for the state only: events an earlier owner of a bus partition decided, audited
     * and acknowledged, replayed so that this instance's state is what that owner's was
     * (io/bus.c). No audit rows, nothing to wait for, not counted as decisions; each event
     * is decided even when the idempotency window knows its id (the window stays this
     * instance's own). */
    bool replay;
    /* From a bus partition: the stream sequence of each non-blank line's message (every
     * message is one non-blank line), named with bus_partition in each audit row's body. */
    const uint64_t *bus_seq;
    uint32_t bus_partition;
    wh_buf *out;            /* the output lines are appended here */
    wh_ingest_done_fn done; /* NULL: the caller waits for ticket itself */
    void *ud;               /* the caller's */
    /* out */
    uint32_t nlines, nerrors; /* lines written to out, and how many of them are errors */
    uint64_t ticket;          /* without done: the audit commit to wait for (0: none) */
    /* private */
    wh_store_notice notice;
};

/* Submits r (see above). WH_OK: the lines are in r->out, and r->done (when set) is called
 * exactly once, possibly before this returns. Any other status: nothing to wait for and
 * done is not called; WH_EBUSY (the audit queue is full) and WH_ELIMIT (more events
 * than limits.events) decided nothing; WH_ENOMEM and WH_EUNAVAILABLE may have decided
 * some (a retry is answered by the idempotency window). */
wh_status wh_ingest_submit(wh_service *s, wh_ingest_req *r);

#endif
