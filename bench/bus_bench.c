/* bus_bench.c - the NATS side of bench/bus.sh (a peer for whiply's bus, on the same server
 * and the same stream in the same run):
 *
 *   bus_bench floor URL PARTITIONS N
 *       the floor: a bare libnats consumer of the events stream, one thread and one durable
 *       pull consumer per partition as whiply has, that fetches batches of 256 and acks each
 *       batch with one AckSync, deciding nothing, until N events are acked; prints
 *       "floor: N events in S s: R events/s"
 *   bus_bench latency URL PARTITIONS EVENTS_FILE RATE SECONDS
 *       publishes the file's events (ids "e-<n>") at RATE a second, each on its partition,
 *       while a plain subscription on whiply.decisions.> notes when each decision arrives;
 *       prints the event -> decision latency p50/p99/p99.9 over the decisions seen and how
 *       many were missing after a drain of 10 s.
 *
 * Partitions are computed with whiply's own function (io/subject.h). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/event.h"
#include "io/bus.h"
#include "io/nats.h"
#include "io/subject.h"

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what, natsStatus s)
{
    char why[256];
    fprintf(stderr, "bus_bench: %s: %s\n", what, wh_nats_why(s, 0, why, sizeof(why)));
    exit(1);
}

/* ---- floor ---- */

typedef struct {
    wh_nats *n;
    uint32_t p;
    atomic_long *acked;
    long target;
} floor_arg;

static void *floor_main(void *arg)
{
    floor_arg *a = arg;
    jsCtx *js = NULL;
    if (natsConnection_JetStream(&js, a->n->nc, NULL) != NATS_OK) return NULL;
    char filter[64], durable[32];
    snprintf(filter, sizeof(filter), "whiply.events.%u.>", a->p);
    snprintf(durable, sizeof(durable), "floor-p%u", a->p);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = WH_BUS_EVENTS_STREAM;
    so.Config.AckPolicy = js_AckAll;
    so.Config.MaxAckPending = 512;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_PullSubscribe(&sub, js, filter, durable, NULL, &so, &jerr);
    if (s != NATS_OK) die("subscribe", s);
    while (atomic_load(a->acked) < a->target) {
        natsMsgList l = {0};
        s = natsSubscription_Fetch(&l, sub, 256, 200, &jerr);
        if (s == NATS_OK && l.Count > 0) {
            if (natsMsg_AckSync(l.Msgs[l.Count - 1], NULL, &jerr) == NATS_OK)
                atomic_fetch_add(a->acked, l.Count);
        }
        natsMsgList_Destroy(&l);
    }
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    return NULL;
}

static int cmd_floor(const char *url, uint32_t parts, long n)
{
    wh_nats nc;
    wh_error e;
    if (wh_nats_open(&nc, url, "bus-bench-floor", NULL, &e) != WH_OK) {
        fprintf(stderr, "bus_bench: %s\n", e.message);
        return 1;
    }
    atomic_long acked = 0;
    pthread_t th[WH_BUS_MAX_PARTITIONS];
    floor_arg args[WH_BUS_MAX_PARTITIONS];
    int64_t t0 = now_ns();
    for (uint32_t p = 0; p < parts; p++) {
        args[p] = (floor_arg){&nc, p, &acked, n};
        pthread_create(&th[p], NULL, floor_main, &args[p]);
    }
    for (uint32_t p = 0; p < parts; p++)
        pthread_join(th[p], NULL);
    double s = (double)(now_ns() - t0) / 1e9;
    printf("floor: %ld events in %.2f s: %.0f events/s\n", (long)atomic_load(&acked), s,
           (double)atomic_load(&acked) / s);
    wh_nats_close(&nc);
    nats_CloseAndWait(5000);
    return 0;
}

/* ---- latency ---- */

static int64_t *sent_ns, *got_ns;
static long nevents;

static void on_decision(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    int64_t t = now_ns();
    const char *d = natsMsg_GetData(m);
    const char *p = strstr(d, "\"id\":\"e-");
    if (p) {
        long i = strtol(p + 8, NULL, 10);
        if (i > 0 && i <= nevents && !got_ns[i - 1]) got_ns[i - 1] = t;
    }
    natsMsg_Destroy(m);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmd_latency(const char *url, uint32_t parts, const char *file, double rate,
                       double seconds)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        perror(file);
        return 1;
    }
    long want = (long)(rate * seconds);
    char **lines = calloc((size_t)want, sizeof(char *));
    size_t *lens = calloc((size_t)want, sizeof(size_t));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (nevents < want && (len = getline(&line, &cap, f)) > 0) {
        lines[nevents] = strndup(line, (size_t)len - (line[len - 1] == '\n'));
        lens[nevents] = strlen(lines[nevents]);
        nevents++;
    }
    fclose(f);
    free(line);
    sent_ns = calloc((size_t)nevents, sizeof(int64_t));
    got_ns = calloc((size_t)nevents, sizeof(int64_t));
    wh_nats nc;
    wh_error e;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 65536;
    if (wh_nats_open(&nc, url, "bus-bench-latency", &jo, &e) != WH_OK) {
        fprintf(stderr, "bus_bench: %s\n", e.message);
        return 1;
    }
    natsSubscription *sub = NULL;
    natsStatus s = natsConnection_Subscribe(&sub, nc.nc, "whiply.decisions.>", on_decision, NULL);
    if (s != NATS_OK) die("subscribe", s);
    natsSubscription_SetPendingLimits(sub, -1, -1);
    wh_decoder *dec = wh_decoder_new();
    wh_arena arena;
    wh_arena_init(&arena, 1 << 16);
    wh_buf subj;
    wh_buf_init(&subj);
    int64_t t0 = now_ns();
    for (long i = 0; i < nevents; i++) {
        int64_t due = t0 + (int64_t)((double)i * 1e9 / rate);
        int64_t t;
        while ((t = now_ns()) < due)
            if (due - t > 200000) usleep(100);
        wh_arena_reset(&arena);
        wh_event ev;
        wh_decode_error de;
        if (!wh_event_decode(dec, lines[i], lens[i], &arena, 0, &ev, &de)) continue;
        wh_subject_events(&subj, wh_bus_partition(ev.platform, ev.channel, parts), ev.platform,
                          ev.channel);
        sent_ns[i] = now_ns();
        s = js_PublishAsync(nc.js, subj.p, lines[i], (int)lens[i], NULL);
        if (s != NATS_OK) die("publish", s);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    js_PublishAsyncComplete(nc.js, &po);
    /* drain: until every decision came or 10 s passed without the count moving */
    long last = -1, seen = 0;
    int64_t still = now_ns();
    for (;;) {
        seen = 0;
        for (long i = 0; i < nevents; i++)
            seen += got_ns[i] != 0;
        if (seen == nevents) break;
        if (seen != last) {
            last = seen;
            still = now_ns();
        } else if (now_ns() - still > 10000000000LL) {
            break;
        }
        usleep(20000);
    }
    int64_t *lat = calloc((size_t)nevents, sizeof(int64_t));
    long k = 0;
    for (long i = 0; i < nevents; i++)
        if (got_ns[i] && sent_ns[i]) lat[k++] = got_ns[i] - sent_ns[i];
    qsort(lat, (size_t)k, sizeof(int64_t), cmp64);
    if (k)
        printf("latency at %.0f events/s: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms over %ld "
               "decisions; %ld missing\n",
               rate, (double)lat[k / 2] / 1e6, (double)lat[(long)((double)k * 0.99)] / 1e6,
               (double)lat[(long)((double)k * 0.999)] / 1e6, k, nevents - k);
    else
        printf("latency: no decision arrived (%ld published)\n", nevents);
    natsSubscription_Destroy(sub);
    wh_nats_close(&nc);
    nats_CloseAndWait(5000);
    return k == nevents ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "floor"))
        return cmd_floor(argv[2], (uint32_t)atoi(argv[3]), atol(argv[4]));
    if (argc == 7 && !strcmp(argv[1], "latency"))
        return cmd_latency(argv[2], (uint32_t)atoi(argv[3]), argv[4], atof(argv[5]), atof(argv[6]));
    fprintf(stderr, "usage: bus_bench floor URL PARTITIONS N\n"
                    "       bus_bench latency URL PARTITIONS EVENTS_FILE RATE SECONDS\n");
    return 64;
}
