/* pipeline.h - NDJSON stream in, decisions out, in input order, with N worker threads.
 *
 * The reader cuts the input into batches of whole lines; workers decide batches in any
 * order; the writer emits them in input order. Queues are bounded (a fixed ring of
 * batches), so a slow writer slows the reader instead of growing memory. */
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
} wh_stream_stats;

int wh_run_stream(wh_ruleset *rs, const wh_engine_opts *opts, int in_fd, FILE *out, int threads,
                  wh_stream_stats *stats);

/* Percentile (0..1) of the latency histogram, in microseconds. */
double wh_stats_percentile_us(const wh_stream_stats *s, double q);
double wh_stats_max_us(const wh_stream_stats *s);

#endif
