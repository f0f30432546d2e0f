/* ml_score.c - how fast one thread scores chat messages with a model file.
 *
 *   build/bench/ml_score MODEL.whm EVENTS.ndjson [REPEAT]
 *
 * Reads the "text" of every event, builds the normalized views once, then times on one
 * thread:
 *   score   features + weights of the prebuilt views: what a model adds to the pipeline,
 *           which normalizes every message anyway
 *   total   normalize + features + weights, from the raw text
 * Prints one JSON line: messages, mean bytes, messages/s of both, latency percentiles of
 * the score step (timed one message at a time in a separate pass) and peak RSS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine/event.h"
#include "ml/ml.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ml_score MODEL.whm EVENTS.ndjson [REPEAT]\n");
        return 2;
    }
    int repeat = argc > 3 ? atoi(argv[3]) : 3;
    wh_error err;
    wh_model *m = wh_model_open(argv[1], &err);
    if (!m) {
        fprintf(stderr, "ml_score: %s: %s\n", argv[1], err.message);
        return 1;
    }
    char *buf;
    size_t len;
    if (wh_read_file(argv[2], &buf, &len) != WH_OK) {
        fprintf(stderr, "ml_score: cannot read %s\n", argv[2]);
        return 1;
    }
    wh_decoder *dec = wh_decoder_new();
    wh_arena keep, views;
    wh_arena_init(&keep, 1 << 24);
    wh_arena_init(&views, 1 << 24);
    size_t cap = 1 << 16, n = 0;
    wh_str *texts = malloc(cap * sizeof(wh_str));
    wh_text *built = malloc(cap * sizeof(wh_text));
    uint64_t bytes = 0;
    for (char *p = buf, *end = buf + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        wh_event ev;
        wh_decode_error de;
        if (wh_event_decode(dec, p, l, &keep, 0, &ev, &de) && ev.type == WH_EV_MESSAGE) {
            if (n == cap) {
                cap *= 2;
                texts = realloc(texts, cap * sizeof(wh_str));
                built = realloc(built, cap * sizeof(wh_text));
            }
            texts[n] = ev.text;
            if (wh_text_build(ev.text.p, ev.text.n, &views, &built[n]) != WH_OK) return 1;
            bytes += ev.text.n;
            n++;
        }
        p += l + 1;
    }
    if (!n) {
        fprintf(stderr, "ml_score: no messages in %s\n", argv[2]);
        return 1;
    }
    uint32_t nl = wh_model_nlabels(m);
    float s[WH_ML_MAX_LABELS];
    double sink = 0;
    wh_ml_fv fv = {0};
    /* score only, best of REPEAT passes */
    double best_score = 0, best_total = 0;
    for (int r = 0; r < repeat; r++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            wh_model_score(m, &built[i], &fv, s);
            sink += s[0];
        }
        double mps = (double)n / ((double)(now_ns() - t0) / 1e9);
        if (mps > best_score) best_score = mps;
    }
    /* normalize + score */
    wh_arena a;
    wh_arena_init(&a, 1 << 20);
    for (int r = 0; r < repeat; r++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            wh_arena_reset(&a);
            wh_text t;
            if (wh_text_build(texts[i].p, texts[i].n, &a, &t) != WH_OK) return 1;
            wh_model_score(m, &t, &fv, s);
            sink += s[0];
        }
        double mps = (double)n / ((double)(now_ns() - t0) / 1e9);
        if (mps > best_total) best_total = mps;
    }
    /* latency of the score step, one message at a time */
    uint64_t *lat = malloc(n * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        wh_model_score(m, &built[i], &fv, s);
        lat[i] = now_ns() - t0;
        sink += s[0];
    }
    qsort(lat, n, sizeof(uint64_t), u64_cmp);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"messages\":%zu,\"mean_bytes\":%.1f,\"labels\":%u,\"bits\":%u,"
           "\"score_per_s\":%.0f,\"normalize_and_score_per_s\":%.0f,"
           "\"score_latency_us\":{\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f},\"peak_rss_kb\":%ld,"
           "\"checksum\":%.3f}\n",
           n, (double)bytes / (double)n, nl, wh_model_fcfg(m)->bits, best_score, best_total,
           (double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3,
           (double)lat[n * 999 / 1000] / 1e3, ru.ru_maxrss, sink);
    free(lat);
    wh_ml_fv_free(&fv);
    wh_arena_free(&a);
    wh_arena_free(&keep);
    wh_arena_free(&views);
    wh_decoder_free(dec);
    free(texts);
    free(built);
    free(buf);
    wh_model_release(m);
    return 0;
}
