/* pipeline.c - see pipeline.h. */
#define _GNU_SOURCE
#include "pipeline.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (1u << 20)
#define BATCH_BYTES (128u * 1024)
#define BATCH_LINES 1024
#define OUT_FLUSH (256u * 1024)

/* ---- line reader: whole lines from a file descriptor, bounded memory ---- */
typedef struct {
    int fd;
    char *buf;
    size_t cap, start, end;
    bool eof, skipping;
    int err;
} reader;

static bool reader_init(reader *r, int fd)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->cap = WH_MAX_LINE + READ_CHUNK + 1;
    r->buf = malloc(r->cap);
    return r->buf != NULL;
}

static void reader_fill(reader *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    while (r->end < r->cap && !r->eof) {
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            r->err = errno;
            r->eof = true;
            break;
        }
        if (n == 0) {
            r->eof = true;
            break;
        }
        r->end += (size_t)n;
        break;
    }
}

/* Returns 1 with a line (no newline), 2 for a line too long to keep (skipped), 0 at end,
 * and 3 when it would have to wait for input and may_block is false: the caller then gets
 * the chance to flush the decisions it has, so a slow producer (tail -f | whiply check)
 * sees each decision as soon as its line is decided. */
static int reader_next(reader *r, const char **line, size_t *len, bool may_block)
{
    for (;;) {
        char *p = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = memchr(p, '\n', avail);
        if (nl) {
            size_t l = (size_t)(nl - p);
            r->start += l + 1;
            if (r->skipping) {
                r->skipping = false;
                return 2;
            }
            *line = p;
            *len = l;
            return 1;
        }
        if (avail > WH_MAX_LINE) {
            /* Longer than any event may be: drop it up to its newline, report it once. */
            r->skipping = true;
            r->start = r->end;
        }
        if (r->eof) {
            if (r->skipping) {
                r->skipping = false;
                r->start = r->end;
                return 2;
            }
            if (avail == 0) return 0;
            *line = p;
            *len = avail;
            r->start = r->end;
            return 1;
        }
        if (!may_block) {
            /* Read on if input is there (always, for a regular file); else say so. */
            struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
            if (poll(&pfd, 1, 0) <= 0) return 3;
        }
        reader_fill(r);
    }
}

/* ---- stats ---- */

static inline unsigned lat_bucket(uint64_t ns)
{
    if (ns < 8) return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned sub = (unsigned)(ns >> (msb - 3)) & 7u;
    unsigned b = msb * 8 + sub;
    return b < 64 * 8 ? b : 64 * 8 - 1;
}

/* Per-event latency is read from the CPU's time-stamp counter where it runs at a constant
 * rate (x86-64 with constant_tsc): ~7 ns a read instead of ~25 for clock_gettime, which at
 * 400,000 events/s is 2% of the run. Ticks become ns with the ratio measured over the run. */
static bool use_tsc;
static double ns_per_tick = 1.0;

static void ticks_init(void)
{
#if defined(__x86_64__)
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "flags", 5)) {
            use_tsc = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
            break;
        }
    if (f) fclose(f);
#endif
}

static inline uint64_t ticks(void)
{
#if defined(__x86_64__)
    if (use_tsc) return __builtin_ia32_rdtsc();
#endif
    return wh_mono_ns();
}

static double bucket_ns(unsigned b)
{
    if (b < 8) return b;
    unsigned msb = b / 8, sub = b % 8;
    double lo = (double)(1ull << msb) * (1.0 + sub / 8.0);
    double hi = (double)(1ull << msb) * (1.0 + (sub + 1) / 8.0);
    return (lo + hi) / 2;
}

double wh_stats_percentile_us(const wh_stream_stats *s, double q)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < 64 * 8; b++)
        total += s->lat_ns[b];
    if (!total) return 0;
    uint64_t want = (uint64_t)(q * (double)total);
    if (want >= total) want = total - 1;
    uint64_t acc = 0;
    for (unsigned b = 0; b < 64 * 8; b++) {
        acc += s->lat_ns[b];
        if (acc > want) return bucket_ns(b) * ns_per_tick / 1000.0;
    }
    return 0;
}

double wh_stats_max_us(const wh_stream_stats *s)
{
    for (int b = 64 * 8 - 1; b >= 0; b--)
        if (s->lat_ns[b]) return bucket_ns((unsigned)b) * ns_per_tick / 1000.0;
    return 0;
}

static void count(wh_stream_stats *st, bool error, wh_action a, uint64_t lat)
{
    if (st->measure) st->lat_ns[lat_bucket(lat)]++;
    if (error)
        st->errors++;
    else
        st->actions[a]++;
    st->events++;
}

static void too_long_text(uint64_t line_no, wh_buf *out)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "line is longer than the limit of %d bytes", WH_MAX_LINE);
    wh_write_line_error(out, line_no, "line_too_long", msg);
}

static bool flush(FILE *out, wh_buf *b)
{
    bool ok = fwrite(b->p, 1, b->len, out) == b->len;
    b->len = 0;
    return ok;
}

/* ---- single thread: no queues at all ---- */

static int run_single(wh_ruleset *rs, const wh_engine_opts *opts, reader *r, FILE *out,
                      wh_decider *dec, wh_stream_stats *st)
{
    wh_worker *w = wh_worker_new(rs, opts);
    if (!w) return -1;
    /* Decisions lag the analysis by one event: the state an event needs is prefetched
     * while the next one is analysed (two arenas, one per event in flight). */
    wh_arena keep[2];
    wh_arena_init(&keep[0], 16 * 1024);
    wh_arena_init(&keep[1], 16 * 1024);
    wh_analysis an[2];
    uint64_t t_an[2] = {0, 0};
    bool pending = false;
    int cur = 0;
    wh_buf ob;
    wh_buf_init(&ob);
    uint64_t line_no = 0;
    const char *line;
    size_t len;
    int k, rc = 0;
#define DECIDE_PENDING()                                                                           \
    do {                                                                                           \
        if (pending) {                                                                             \
            wh_analysis *p_ = &an[cur ^ 1];                                                        \
            uint64_t t0_ = st->measure ? ticks() : 0;                                              \
            wh_action a_ = wh_decide(dec, p_, &ob);                                                \
            count(st, false, a_, st->measure ? t_an[cur ^ 1] + ticks() - t0_ : 0);                 \
            pending = false;                                                                       \
        }                                                                                          \
    } while (0)
    for (;;) {
        k = reader_next(r, &line, &len, false);
        if (k == 3) { /* about to wait for input: decide and hand over what is read */
            DECIDE_PENDING();
            if (ob.len && !flush(out, &ob)) rc = -1;
            if (fflush(out) != 0) rc = -1;
            k = reader_next(r, &line, &len, true);
        }
        if (!k) break;
        line_no++;
        if (k == 2) {
            DECIDE_PENDING();
            too_long_text(line_no, &ob);
            count(st, true, WH_ACT_ALLOW, 0);
        } else if (!wh_line_is_blank(line, len)) {
            uint64_t t0 = st->measure ? ticks() : 0;
            wh_arena_reset(&keep[cur]);
            wh_analysis *a = &an[cur];
            /* the event outlives the reader's buffer (it is decided after the next read) */
            char *copy = wh_arena_alloc(&keep[cur], len + 1);
            if (copy) memcpy(copy, line, len);
            wh_analyze(w, copy ? copy : line, len, line_no, WH_NOW, &keep[cur], 1, a);
            t_an[cur] = st->measure ? ticks() - t0 : 0;
            if (!copy && a->kind == WH_AN_EVENT) { /* out of memory: no lag for this one */
                DECIDE_PENDING();
                count(st, false, wh_decide(dec, a, &ob), t_an[cur]);
            } else if (a->kind == WH_AN_ERROR) {
                DECIDE_PENDING();
                wh_buf_append(&ob, a->pre.p, a->pre.n);
                count(st, true, WH_ACT_ALLOW, t_an[cur]);
            } else {
                wh_decide_prefetch(dec, a, 0);
                if (pending) wh_decide_prefetch(dec, &an[cur ^ 1], 2);
                DECIDE_PENDING(); /* the previous event, its state prefetched meanwhile */
                wh_decide_prefetch(dec, a, 1);
                pending = true;
                cur ^= 1;
            }
        }
        if (ob.len >= OUT_FLUSH && !flush(out, &ob)) rc = -1;
    }
    DECIDE_PENDING();
#undef DECIDE_PENDING
    if (ob.len && !flush(out, &ob)) rc = -1;
    if (ob.oom) rc = -1;
    wh_buf_free(&ob);
    wh_arena_free(&keep[0]);
    wh_arena_free(&keep[1]);
    wh_worker_free(w);
    return rc;
}

/* ---- N threads ----
 *
 * Three stages over a fixed ring of batches: the reader fills a batch with whole lines;
 * any analysis worker analyses it (decode, normalize, scan: no state); then every shard
 * thread decides, in batch order, the events of the channels it owns, into its own
 * buffer; the writer stitches the decisions back in input order. A shard's state is only
 * ever touched by its own thread, and a channel's events reach it in input order, so the
 * decisions are the same for any number of threads and shards. */

typedef struct {
    wh_buf in;    /* whole lines, each terminated by '\n' */
    uint64_t seq; /* which batch of the stream this slot holds */
    uint64_t first_line;
    uint64_t *long_lines; /* line numbers of skipped over-long lines, ascending */
    uint32_t nlong, caplong;
    wh_arena keep;
    wh_analysis *an; /* one per line */
    uint32_t nan;
    uint32_t *off, *olen; /* each event's decision in its shard's buffer */
    wh_action *act;
    uint64_t *lat;
    wh_buf *sout; /* per shard */
    bool analyzed, decided;
    uint32_t shards_left;
} batch;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t work, analyzed, done;
    batch *slots;
    uint64_t nslots, filled, claimed, written;
    bool eof, stop;
    uint32_t nshards;
    bool measure;
    /* One shard: the analysis workers take turns deciding, in batch order (no shard
     * thread; the batch is often still in the cache of the worker that analysed it). */
    wh_decider *dec1;     /* the one decider, used by one worker at a time */
    uint64_t next_decide; /* the next batch to decide */
    bool deciding;        /* a worker is deciding batch next_decide */
} shared;

static void analyze_batch(wh_worker *w, wh_decider *inline_d, batch *b, uint32_t nshards,
                          bool measure)
{
    const char *p = b->in.p, *end = b->in.p + b->in.len;
    uint64_t line_no = b->first_line;
    uint32_t li = 0, i = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)(nl - p);
        wh_analysis *an = &b->an[i];
        if (li < b->nlong && b->long_lines[li] == line_no) {
            wh_buf tmp;
            wh_buf_init(&tmp);
            too_long_text(line_no, &tmp);
            char *c = wh_arena_strndup(&b->keep, tmp.p ? tmp.p : "", tmp.len);
            an->kind = WH_AN_ERROR;
            an->pre = (wh_str){c ? c : "", c ? (uint32_t)tmp.len : 0};
            wh_buf_free(&tmp);
            b->lat[i] = 0;
            li++;
        } else if (wh_line_is_blank(p, len)) {
            an->kind = WH_AN_BLANK;
        } else {
            uint64_t t0 = measure ? ticks() : 0;
            wh_analyze(w, p, len, line_no, WH_NOW, &b->keep, nshards, an);
            if (inline_d && an->kind == WH_AN_EVENT) { /* no state: decide here and now */
                wh_buf *o = &b->sout[0];
                size_t before = o->len;
                b->act[i] = wh_decide(inline_d, an, o);
                b->off[i] = (uint32_t)before;
                b->olen[i] = (uint32_t)(o->len - before);
                an->shard = 0;
            }
            b->lat[i] = measure ? ticks() - t0 : 0;
        }
        p = nl + 1;
        line_no++;
        i++;
    }
    b->nan = i;
}

static void decide_batch(wh_decider *d, batch *b, uint32_t shard, bool measure)
{
    wh_buf *o = &b->sout[shard];
    /* State lookups are cache misses (a million users do not fit in any cache): fetch the
     * index slots 16 events ahead and the entries 8 ahead. */
    for (uint32_t i = 0; i < b->nan && i < 8; i++)
        if (b->an[i].shard == shard) wh_decide_prefetch(d, &b->an[i], 0);
    for (uint32_t i = 0; i < b->nan; i++) {
        if (i + 16 < b->nan && b->an[i + 16].shard == shard)
            wh_decide_prefetch(d, &b->an[i + 16], 0);
        if (i + 4 < b->nan && b->an[i + 4].shard == shard) wh_decide_prefetch(d, &b->an[i + 4], 2);
        if (i + 8 < b->nan && b->an[i + 8].shard == shard) {
            /* the record itself was written by an analysis thread on another core: fetch
             * the lines the decision reads (header, the event's fields, the features) */
            const char *a = (const char *)&b->an[i + 8];
            for (size_t off = 0; off < offsetof(wh_analysis, ev) + offsetof(wh_event, roles);
                 off += 64)
                __builtin_prefetch(a + off);
            __builtin_prefetch(&b->an[i + 8].f);
            wh_decide_prefetch(d, &b->an[i + 8], 1);
        }
        const wh_analysis *an = &b->an[i];
        if (an->kind != WH_AN_EVENT || an->shard != shard) continue;
        uint64_t t0 = measure ? ticks() : 0;
        size_t before = o->len;
        b->act[i] = wh_decide(d, an, o);
        b->off[i] = (uint32_t)before;
        b->olen[i] = (uint32_t)(o->len - before);
        if (measure) b->lat[i] += ticks() - t0;
    }
}

typedef struct {
    shared *sh;
    wh_worker *w;  /* analysis workers; made before the threads start */
    wh_decider *d; /* shard threads; an analysis worker's own when there is no state */
    uint32_t shard;
} thread_arg;

static void *analysis_main(void *arg)
{
    thread_arg *ta = arg;
    shared *sh = ta->sh;
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        while (sh->claimed >= sh->filled && !sh->eof)
            pthread_cond_wait(&sh->work, &sh->mu);
        if (sh->claimed >= sh->filled) break;
        batch *b = &sh->slots[sh->claimed % sh->nslots];
        sh->claimed++;
        pthread_mutex_unlock(&sh->mu);
        analyze_batch(ta->w, ta->d, b, sh->nshards, sh->measure);
        pthread_mutex_lock(&sh->mu);
        b->analyzed = true;
        if (ta->d) { /* decided too */
            b->decided = true;
            pthread_cond_broadcast(&sh->done);
        } else if (sh->dec1) {
            /* Decide every batch that is next in order and analysed, unless another
             * worker is at it (it will go on to this one when it is done). */
            bool any = false;
            while (!sh->deciding && sh->next_decide < sh->filled) {
                batch *nb = &sh->slots[sh->next_decide % sh->nslots];
                if (nb->seq != sh->next_decide || !nb->analyzed) break;
                sh->deciding = true;
                pthread_mutex_unlock(&sh->mu);
                decide_batch(sh->dec1, nb, 0, sh->measure);
                pthread_mutex_lock(&sh->mu);
                nb->decided = true;
                sh->next_decide++;
                sh->deciding = false;
                any = true;
            }
            if (any) pthread_cond_broadcast(&sh->done);
        } else {
            pthread_cond_broadcast(&sh->analyzed);
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

static void *shard_main(void *arg)
{
    thread_arg *ta = arg;
    shared *sh = ta->sh;
    uint64_t next = 0;
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        batch *b = &sh->slots[next % sh->nslots];
        while (!sh->stop && !(next < sh->filled && b->seq == next && b->analyzed) &&
               !(sh->eof && next >= sh->filled))
            pthread_cond_wait(&sh->analyzed, &sh->mu);
        if (sh->stop || next >= sh->filled) break;
        pthread_mutex_unlock(&sh->mu);
        decide_batch(ta->d, b, ta->shard, sh->measure);
        pthread_mutex_lock(&sh->mu);
        if (--b->shards_left == 0) {
            b->decided = true;
            pthread_cond_broadcast(&sh->done);
        }
        next++;
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

typedef enum { FILL_OK, FILL_WOULD_BLOCK, FILL_END } fill_result;

/* Fills b from the reader. It waits for a first line only when may_block; otherwise, with
 * no complete line at hand, it returns FILL_WOULD_BLOCK (the caller has batches in flight
 * to write first). */
static fill_result fill_batch(reader *r, batch *b, uint64_t *line_no, bool may_block)
{
    b->in.len = 0;
    b->nlong = 0;
    uint32_t lines = 0;
    b->first_line = *line_no + 1;
    const char *line;
    size_t len;
    while (lines < BATCH_LINES && b->in.len < BATCH_BYTES) {
        /* A partial batch goes rather than wait for more input. */
        int k = reader_next(r, &line, &len, lines == 0 && may_block);
        if (k == 3 && lines == 0) return FILL_WOULD_BLOCK;
        if (!k || k == 3) break;
        ++*line_no;
        lines++;
        if (k == 2) {
            if (b->nlong == b->caplong) {
                b->caplong = b->caplong ? b->caplong * 2 : 8;
                b->long_lines = realloc(b->long_lines, sizeof(uint64_t) * b->caplong);
            }
            b->long_lines[b->nlong++] = *line_no;
            len = 0;
        } else {
            wh_buf_append(&b->in, line, len);
        }
        wh_buf_putc(&b->in, '\n');
    }
    return lines > 0 ? FILL_OK : FILL_END;
}

/* Writes a decided batch in input order; returns false on a write error. */
static bool write_batch(FILE *out, batch *b, wh_buf *ob, wh_stream_stats *st)
{
    bool ok = true;
    for (uint32_t i = 0; i < b->nan; i++) {
        const wh_analysis *an = &b->an[i];
        if (an->kind == WH_AN_BLANK) continue;
        if (an->kind == WH_AN_ERROR) {
            wh_buf_append(ob, an->pre.p, an->pre.n);
            count(st, true, WH_ACT_ALLOW, b->lat[i]);
        } else {
            wh_buf_append(ob, b->sout[an->shard].p + b->off[i], b->olen[i]);
            count(st, false, b->act[i], b->lat[i]);
        }
        if (ob->len >= OUT_FLUSH && !flush(out, ob)) ok = false;
    }
    if (ob->oom) ok = false;
    ob->oom = false;
    if (ob->len && !flush(out, ob)) ok = false;
    return ok;
}

static bool batch_init(batch *b, uint32_t nshards)
{
    wh_arena_init(&b->keep, 256 * 1024);
    b->an = calloc(BATCH_LINES, sizeof(wh_analysis));
    b->off = calloc(BATCH_LINES, sizeof(uint32_t));
    b->olen = calloc(BATCH_LINES, sizeof(uint32_t));
    b->act = calloc(BATCH_LINES, sizeof(wh_action));
    b->lat = calloc(BATCH_LINES, sizeof(uint64_t));
    b->sout = calloc(nshards, sizeof(wh_buf));
    b->seq = UINT64_MAX;
    return b->an && b->off && b->olen && b->act && b->lat && b->sout;
}

static void batch_free(batch *b, uint32_t nshards)
{
    wh_buf_free(&b->in);
    free(b->long_lines);
    wh_arena_free(&b->keep);
    free(b->an);
    free(b->off);
    free(b->olen);
    free(b->act);
    free(b->lat);
    for (uint32_t s = 0; b->sout && s < nshards; s++)
        wh_buf_free(&b->sout[s]);
    free(b->sout);
}

static int run_threads(wh_ruleset *rs, const wh_engine_opts *opts, reader *r, FILE *out,
                       int threads, wh_decider **decs, uint32_t nshards, wh_stream_stats *st)
{
    shared sh;
    memset(&sh, 0, sizeof(sh));
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.work, NULL);
    pthread_cond_init(&sh.analyzed, NULL);
    pthread_cond_init(&sh.done, NULL);
    sh.nshards = nshards;
    sh.measure = st->measure;
    sh.nslots = (uint64_t)threads * 4;
    sh.slots = calloc(sh.nslots, sizeof(batch));
    /* A ruleset without state needs no shard threads: each analysis worker decides its
     * batches itself, in parallel (any decider decides a stateless event alike). */
    bool inline_decide = !rs->state.enabled;
    if (!inline_decide && nshards == 1) sh.dec1 = decs[0];
    uint32_t nthr = (uint32_t)threads + (inline_decide || sh.dec1 ? 0 : nshards);
    pthread_t *tids = calloc(nthr, sizeof(pthread_t));
    thread_arg *args = calloc(nthr, sizeof(thread_arg));
    bool made = sh.slots && tids && args;
    for (uint64_t i = 0; made && i < sh.nslots; i++)
        made = batch_init(&sh.slots[i], nshards);
    for (uint32_t i = 0; made && i < nthr; i++) {
        args[i] = (thread_arg){&sh, NULL, NULL, 0};
        if (i < (uint32_t)threads) {
            made = (args[i].w = wh_worker_new(rs, opts)) != NULL;
            if (made && inline_decide) made = (args[i].d = wh_decider_new(rs, opts, 1)) != NULL;
        } else
            args[i].d = decs[i - (uint32_t)threads], args[i].shard = i - (uint32_t)threads;
    }
    uint32_t started = 0;
    for (; made && started < nthr; started++)
        if (pthread_create(&tids[started], NULL,
                           started < (uint32_t)threads ? analysis_main : shard_main,
                           &args[started]))
            break;
    int rc = made && started == nthr ? 0 : -1;
    uint64_t line_no = 0;
    bool input_done = rc != 0;
    wh_buf ob;
    wh_buf_init(&ob);
    pthread_mutex_lock(&sh.mu);
    for (;;) {
        while (sh.written < sh.filled && sh.slots[sh.written % sh.nslots].decided) {
            batch *b = &sh.slots[sh.written % sh.nslots];
            pthread_mutex_unlock(&sh.mu);
            if (!write_batch(out, b, &ob, st)) rc = -1;
            pthread_mutex_lock(&sh.mu);
            sh.written++;
            if (sh.written == sh.filled && fflush(out) != 0) rc = -1; /* caught up: hand it over */
        }
        if (input_done && sh.written == sh.filled) break;
        if (!input_done && sh.filled - sh.written < sh.nslots) {
            batch *b = &sh.slots[sh.filled % sh.nslots];
            bool idle = sh.written == sh.filled; /* nothing in flight: waiting for input is fine */
            pthread_mutex_unlock(&sh.mu);
            wh_arena_reset(&b->keep);
            for (uint32_t s = 0; s < nshards; s++)
                b->sout[s].len = 0;
            fill_result fr = fill_batch(r, b, &line_no, idle);
            pthread_mutex_lock(&sh.mu);
            if (fr == FILL_OK) {
                b->seq = sh.filled;
                b->analyzed = b->decided = false;
                b->shards_left = nshards;
                b->nan = 0;
                sh.filled++;
                pthread_cond_signal(&sh.work);
                continue;
            }
            if (fr == FILL_END) {
                input_done = true;
                sh.eof = true;
                pthread_cond_broadcast(&sh.work);
                pthread_cond_broadcast(&sh.analyzed);
                continue;
            }
            /* FILL_WOULD_BLOCK: write what is in flight first. A batch may have been
             * decided while the lock was released above: wait only while the next one is
             * busy, or its wakeup is lost and both sides wait forever. */
            while (sh.written < sh.filled && !sh.slots[sh.written % sh.nslots].decided)
                pthread_cond_wait(&sh.done, &sh.mu);
            continue;
        }
        pthread_cond_wait(&sh.done, &sh.mu);
    }
    sh.eof = true;
    sh.stop = true;
    pthread_cond_broadcast(&sh.work);
    pthread_cond_broadcast(&sh.analyzed);
    pthread_mutex_unlock(&sh.mu);
    for (uint32_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    for (uint32_t i = 0; args && i < (uint32_t)threads; i++) {
        wh_worker_free(args[i].w);
        if (inline_decide) wh_decider_free(args[i].d);
    }
    free(args);
    for (uint64_t i = 0; sh.slots && i < sh.nslots; i++)
        batch_free(&sh.slots[i], nshards);
    wh_buf_free(&ob);
    free(sh.slots);
    free(tids);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.work);
    pthread_cond_destroy(&sh.analyzed);
    pthread_cond_destroy(&sh.done);
    return rc;
}

int wh_run_stream(wh_ruleset *rs, const wh_engine_opts *opts, int in_fd, FILE *out,
                  const wh_run_opts *ro, wh_stream_stats *stats)
{
    int threads = ro->threads > 0 ? ro->threads : 1;
    uint32_t nshards = ro->shards > 0 ? (uint32_t)ro->shards : 1;
    if (threads == 1) nshards = 1; /* one thread decides everything itself */
    reader r;
    if (!reader_init(&r, in_fd)) return -1;
    wh_decider **decs = calloc(nshards, sizeof(*decs));
    int rc = decs ? 0 : -1;
    for (uint32_t i = 0; rc == 0 && i < nshards; i++)
        if (!(decs[i] = wh_decider_new(rs, opts, nshards))) rc = -1;
    wh_shard **shards = calloc(nshards, sizeof(*shards));
    bool stateful = rc == 0 && shards && wh_decider_shard(decs[0]);
    for (uint32_t i = 0; stateful && i < nshards; i++)
        shards[i] = wh_decider_shard(decs[i]);
    if (rc == 0 && stateful && ro->state_path && access(ro->state_path, F_OK) == 0) {
        if (wh_state_load(shards, nshards, &rs->state, ro->state_path, &stats->state_error) !=
            WH_OK)
            rc = -2;
    }
    if (rc == 0) {
        if (stats->measure) ticks_init();
        uint64_t t0 = wh_mono_ns(), k0 = ticks();
        rc = threads <= 1 ? run_single(rs, opts, &r, out, decs[0], stats)
                          : run_threads(rs, opts, &r, out, threads, decs, nshards, stats);
        if (fflush(out) != 0) rc = -1;
        uint64_t t1 = wh_mono_ns(), k1 = ticks();
        stats->seconds = (double)(t1 - t0) / 1e9;
        if (use_tsc && k1 > k0) ns_per_tick = (double)(t1 - t0) / (double)(k1 - k0);
        if (r.err) rc = -1;
        if (stateful) {
            for (uint32_t i = 0; i < nshards; i++)
                wh_shard_stats_add(shards[i], &stats->state);
            if (rc == 0 && ro->state_path &&
                wh_state_save(shards, nshards, &rs->state, ro->state_path, &stats->state_error) !=
                    WH_OK)
                rc = -2;
        }
    }
    for (uint32_t i = 0; decs && i < nshards; i++)
        wh_decider_free(decs[i]);
    free(decs);
    free(shards);
    free(r.buf);
    return rc;
}
