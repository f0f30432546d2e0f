/* bus.h - whiply on NATS JetStream (docs/bus.md).
 *
 * Streams (created when missing, with the configured replicas and duplicate window):
 *   WHIPLY_EVENTS     whiply.events.>                      the input, P partitions
 *   WHIPLY_DECISIONS  whiply.decisions.>, whiply.actions.>  what was decided, what to do
 *   WHIPLY_STATE      whiply.state.>                       each partition's state snapshot
 *   KV whiply_owners  who owns which partition, who is alive
 *
 * An instance (`whiply serve` with bus.url) claims partitions in the KV bucket and consumes
 * each one it owns with a durable pull consumer (whiply-p<N>, explicit acks): it fetches a
 * batch, submits it through the ingest seam (so it is decided in order, deduplicated by
 * event id and audited like any event), waits until the audit rows are committed, publishes
 * each decision (and each action that is not allow) with Nats-Msg-Id set from the event id,
 * waits for JetStream's acknowledgements, and only then acks the input with AckSync. A crash
 * anywhere before the ack means a redelivery, the same decision (the ingest's idempotency
 * window answers it) and a publish JetStream drops as a duplicate.
 *
 * Ownership (owner.c): an instance writes m.<instance> every lease/3; the bucket's entries
 * live one lease unless rewritten, so a dead instance's entries vanish. Partition p belongs
 * to the live member with the highest rendezvous score hash(member, p); its owner holds
 * p.<p> (created with kvStore_Create, renewed with kvStore_Update on the revision it last
 * wrote). A renewal that fails means another instance may own it: consuming stops at once
 * (fencing) and nothing more of that partition is published or acked.
 *
 * State moves with a partition (bus_state.c): its owner snapshots the partition's behaviour
 * state (state/shard.h, wh_state_save_part) with the stream sequence it covers, every
 * bus.snapshot and when it lets the partition go; a new owner loads the last snapshot and
 * replays, for the state alone (no audit rows, nothing published), the partition's events
 * after that sequence up to the consumer's ack floor -- those an earlier owner decided --
 * so it decides what follows as that owner would have. */
#ifndef WH_IO_BUS_H
#define WH_IO_BUS_H

#include <nats/nats.h>
#include <stdio.h>

#include "base/base.h"
#include "io/subject.h"
#include "serve/config.h"

typedef struct wh_bus wh_bus;
typedef struct wh_service wh_service;

#define WH_BUS_EVENTS_STREAM "WHIPLY_EVENTS"
#define WH_BUS_OUT_STREAM "WHIPLY_DECISIONS"
#define WH_BUS_KV_BUCKET "whiply_owners"
#define WH_BUS_STATE_STREAM "WHIPLY_STATE"

/* Connects to cfg->bus.url, makes sure the streams and the bucket exist, and starts
 * claiming and consuming partitions for svc. NULL with e filled (WH_EUNAVAILABLE: no
 * server answered; WH_EIO: JetStream refused a stream). */
wh_bus *wh_bus_start(wh_service *svc, const wh_config *cfg, wh_error *e);
/* Stops consuming, releases the partitions it owns (their keys deleted), and frees. */
void wh_bus_stop(wh_bus *b);

/* For /metrics and tests: the partitions this instance consumes now (a bit each), the
 * events it decided from the bus, and the instance name. */
typedef struct {
    char instance[96];
    uint32_t partitions;
    uint8_t owned[WH_BUS_MAX_PARTITIONS_BYTES];
    uint8_t deciding[WH_BUS_MAX_PARTITIONS_BYTES]; /* owned and past the takeover */
    uint64_t events, published, acked, fenced, claims, kv_ops;
    uint64_t snapshots, replayed; /* state snapshots written; events replayed for state */
} wh_bus_stats;
void wh_bus_stats_get(wh_bus *b, wh_bus_stats *out);
/* The bus's lines of /metrics (a wh_metrics_fn; ud is the bus): which partitions this
 * instance owns, and its counters. */
void wh_bus_metrics(void *ud, wh_buf *out);

/* A wh_event_sink_fn (serve/service.h; ud is the bus): POST /v1/events with bus.http:
 * publish. Each event goes to its partition's subject with its Nats-Msg-Id, synchronously
 * (JetStream's acknowledgement in hand); its line says where:
 * {"id":...,"published":true,"partition":P,"seq":S,"duplicate":false} (duplicate: JetStream
 * had it already), or an error line (not an event; not published). More events than
 * limits.events: WH_ELIMIT, nothing published. */
wh_status wh_bus_sink_events(void *ud, const char *body, size_t len, bool single, wh_buf *out,
                             uint32_t *nlines, uint32_t *nerrors);

/* A partition's state snapshot in WHIPLY_STATE (bus_state.c): write buf as the snapshot
 * covering stream sequence seq, in chunks of half max_payload; read the last one (*buf NULL
 * and *seq 0 when there is none; malloc'd). A snapshot that is not whole is an error. */
wh_status wh_bus_snap_write(jsCtx *js, uint32_t p, uint64_t seq, const char *buf, size_t len,
                            int64_t max_payload, wh_error *e);
wh_status wh_bus_snap_read(jsCtx *js, uint32_t p, uint64_t *seq, char **buf, size_t *len,
                           wh_error *e);

/* `whiply audit verify --bus` (bus_verify.c): the decision rows of the trails dbs[0..ndb)
 * against the events of each of the nparts partitions up to its ack floor, reported to out.
 * 0: every acknowledged event has one decision (several rows only with the same one); 1:
 * some have none or conflicting ones; 2: a trail or the bus could not be read. */
int wh_bus_audit_verify(const char *url, uint32_t nparts, const char *const *dbs, int ndb,
                        FILE *out);

#endif
