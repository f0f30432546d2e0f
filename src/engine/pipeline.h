/* pipeline.h - NDJSON stream in, decisions out, in input order, with N analysis threads
 * and S shard threads.
 *
 * The reader cuts the input into batches of whole lines; analysis workers take batches in
 * any order; each shard thread decides, batch after batch in input order, the events of
 * the channels it owns; the writer emits the decisions in input order. Queues are bounded
 * (a fixed ring of batches), so a slow writer slows the reader instead of growing memory. */
#ifndef WH_PIPELINE_H
#define WH_PIPELINE_H

#include <stdio.h>

#include "engine.h"

typedef struct {
    uint64_t events, errors;
    uint64_t actions[WH_ACT__COUNT];
    double seconds;
    uint64_t lat_ns[64 * 8]; /* log-linear histogram of per-line latency (in clock ticks) */
    bool measure;
    wh_shard_stats state; /* entries, evictions (when the ruleset keeps state) */
    wh_error state_error; /* why a state file did not load or save (run returns -2) */
} wh_stream_stats;

typedef struct {
    int threads;            /* analysis threads (1: everything on the calling thread) */
    int shards;             /* state shards, each its own thread (with threads > 1) */
    const char *state_path; /* load state before (if the file exists), save it after */
} wh_run_opts;

/* Returns 0, -1 on an I/O error, -2 when the state file could not be read or written
 * (stats->state_error says why; nothing was decided when it could not be read). */
int wh_run_stream(wh_ruleset *rs, const wh_engine_opts *opts, int in_fd, FILE *out,
                  const wh_run_opts *ro, wh_stream_stats *stats);

/* Percentile (0..1) of the latency histogram, in microseconds. */
double wh_stats_percentile_us(const wh_stream_stats *s, double q);
double wh_stats_max_us(const wh_stream_stats *s);

#endif
