/* audit_bench.c - the audit writer alone, and its floor, on the same rows in the same run
 * (bench/serve.sh prints both beside the daemon's figure; issue 17):
 *
 *   audit_bench floor EVENTS DECISIONS N BATCH DIR
 *       the floor: plain SQLite inserts of the rows the daemon writes for these decisions
 *       (the audit table and its index as store.c makes them, WAL, synchronous=NORMAL, one
 *       prepared statement, one transaction per BATCH rows), with no chain, no queue and no
 *       other thread: what SQLite alone costs for these bytes
 *   audit_bench lookup DIR K
 *       GET /v1/decisions/{id}'s lookup (wh_store_decision) on DIR's database (a floor's):
 *       K ids it holds, spread over it, then K it does not (every bucket probed); prints the
 *       mean time of each
 *   audit_bench store EVENTS DECISIONS N PER_SUBMIT PRODUCERS DIR
 *       the store as the daemon uses it (store.h): PRODUCERS threads each reserve, build and
 *       submit PER_SUBMIT decision records and wait for their commit, again and again, until
 *       N rows are committed; the writer hashes, chains and group-commits them
 *
 * EVENTS is the NDJSON the decisions were made from (channel and user id come from it),
 * DECISIONS one decision line per event (`whiply check` output: id, action, body); rows
 * cycle through them, with ids made unique. DIR must not exist or be empty. Each prints one
 * line: "audit-bench MODE rows=N secs=S rows_per_s=R cpu_us_per_row=C bytes_per_row=B" (CPU
 * is the process's user + system time; bytes are the database's pages after a
 * full checkpoint, free pages left out, over the rows). */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <xxhash.h>

#include "store/store.h"

typedef struct {
    char *id, *channel, *user, *action, *body;
    size_t id_n, channel_n, user_n, action_n, body_n;
} row_src;

static row_src *rows;
static size_t nrows;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The string value after "key":" in line (the bench stream's values have no escapes that
 * matter here), or an empty one. */
static char *field(const char *line, const char *key, size_t *n)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\":\"", key);
    const char *p = strstr(line, k);
    if (!p) {
        *n = 0;
        return strdup("");
    }
    p += strlen(k);
    const char *e = strchr(p, '"');
    *n = e ? (size_t)(e - p) : strlen(p);
    return strndup(p, *n);
}

static void load(const char *events, const char *decisions, size_t max)
{
    FILE *fe = fopen(events, "r"), *fd = fopen(decisions, "r");
    if (!fe || !fd) {
        fprintf(stderr, "audit_bench: cannot open %s or %s\n", events, decisions);
        exit(2);
    }
    char *le = NULL, *ld = NULL;
    size_t ce = 0, cd = 0;
    ssize_t nd;
    rows = calloc(max, sizeof(*rows));
    while (nrows < max && getline(&le, &ce, fe) > 0 && (nd = getline(&ld, &cd, fd)) > 0) {
        row_src *r = &rows[nrows++];
        if (nd && ld[nd - 1] == '\n') ld[--nd] = 0;
        r->id = field(ld, "id", &r->id_n);
        r->action = field(ld, "action", &r->action_n);
        r->channel = field(le, "channel", &r->channel_n);
        const char *u = strstr(le, "\"user\":{");
        r->user = field(u ? u : "", "id", &r->user_n);
        r->body = strdup(ld);
        r->body_n = (size_t)nd;
    }
    free(le), free(ld);
    fclose(fe), fclose(fd);
    if (!nrows) {
        fprintf(stderr, "audit_bench: no rows\n");
        exit(2);
    }
}

static void report(const char *mode, const char *dir, long long n, double secs, double cpu)
{
    /* the bytes the rows take once the WAL is folded in (preallocated space left out) */
    char p[4200];
    sqlite3 *db;
    long long bytes = 0;
    snprintf(p, sizeof(p), "%s/whiply.db", dir);
    if (sqlite3_open(p, &db) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db,
                               "SELECT (SELECT page_count FROM pragma_page_count) - (SELECT "
                               "freelist_count FROM pragma_freelist_count), "
                               "(SELECT page_size FROM pragma_page_size)",
                               -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            bytes = sqlite3_column_int64(st, 0) * sqlite3_column_int64(st, 1);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    printf("audit-bench %s rows=%lld secs=%.3f rows_per_s=%.0f cpu_us_per_row=%.3f "
           "bytes_per_row=%.0f\n",
           mode, n, secs, (double)n / secs, cpu * 1e6 / (double)n, (double)bytes / (double)n);
}

/* ---- floor: SQLite alone ---- */

static void floor_run(long long n, int batch, const char *dir)
{
    /* the database as the store makes it (schema, index, page size), then closed */
    wh_store_opts o = {.queue = 1000, .signing_key = "none"};
    wh_error e;
    wh_store *s = wh_store_open(dir, &o, &e);
    if (!s) {
        fprintf(stderr, "audit_bench: %s\n", e.message);
        exit(2);
    }
    wh_store_close(s);
    char p[4200];
    snprintf(p, sizeof(p), "%s/whiply.db", dir);
    sqlite3 *db;
    if (sqlite3_open(p, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-131072; "
                     "PRAGMA wal_autocheckpoint=0; DROP TRIGGER audit_no_delete; "
                     "DELETE FROM audit;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "audit_bench: %s\n", sqlite3_errmsg(db));
        exit(2);
    }
    sqlite3_stmt *ins;
    sqlite3_prepare_v3(db,
                       "INSERT INTO audit(seq, at_ms, kind, event_id, channel, user_id, action, "
                       "body, prev, hash, eid_h) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                       -1, SQLITE_PREPARE_PERSISTENT, &ins, NULL);
    uint8_t prev[32] = {0}, hash[32];
    char id[256];
    double t0 = now_s(), c0 = cpu_s();
    int64_t at = 1796000000000;
    for (long long i = 0; i < n;) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        for (int k = 0; k < batch && i < n; k++, i++) {
            const row_src *r = &rows[i % (long long)nrows];
            int idn = snprintf(id, sizeof(id), "%s.%llx", r->id, i);
            /* a stand-in for the chain's hash: distinct bytes, no SHA-256 */
            for (int j = 0; j < 4; j++) {
                uint64_t v = XXH3_64bits_withSeed(id, (size_t)idn, (uint64_t)j);
                memcpy(hash + 8 * j, &v, 8);
            }
            sqlite3_bind_int64(ins, 1, i + 1);
            sqlite3_bind_int64(ins, 2, at);
            sqlite3_bind_text(ins, 3, "decision", 8, SQLITE_STATIC);
            sqlite3_bind_text(ins, 4, id, idn, SQLITE_STATIC);
            sqlite3_bind_text(ins, 5, r->channel, (int)r->channel_n, SQLITE_STATIC);
            sqlite3_bind_text(ins, 6, r->user, (int)r->user_n, SQLITE_STATIC);
            sqlite3_bind_text(ins, 7, r->action, (int)r->action_n, SQLITE_STATIC);
            sqlite3_bind_text(ins, 8, r->body, (int)r->body_n, SQLITE_STATIC);
            sqlite3_bind_blob(ins, 9, prev, 32, SQLITE_STATIC);
            sqlite3_bind_blob(ins, 10, hash, 32, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 11, (sqlite3_int64)XXH3_64bits(id, (size_t)idn));
            if (sqlite3_step(ins) != SQLITE_DONE) {
                fprintf(stderr, "audit_bench: %s\n", sqlite3_errmsg(db));
                exit(2);
            }
            sqlite3_reset(ins);
            memcpy(prev, hash, 32);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    double secs = now_s() - t0, cpu = cpu_s() - c0;
    sqlite3_finalize(ins);
    /* bytes the commits wrote to the WAL (nothing was checkpointed): pages rewritten by
     * later commits count each time */
    struct stat wst;
    snprintf(p, sizeof(p), "%s/whiply.db-wal", dir);
    long long wal = stat(p, &wst) == 0 ? (long long)wst.st_size : 0;
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
    report("floor", dir, n, secs, cpu);
    printf("audit-bench floor wal_bytes_per_row=%.0f\n", (double)wal / (double)n);
}

/* ---- store: the writer as the daemon uses it ---- */

typedef struct {
    wh_store *s;
    int per;
    long long first, count; /* this producer's rows */
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    char id[256];
    for (long long i = p->first; i < p->first + p->count;) {
        int k = 0;
        b.reserved = true;
        while (!wh_store_reserve(p->s, (uint32_t)p->per)) {
            /* the queue is full: wait for a commit, as a client answered 429 retries */
            wh_store_wait(p->s, wh_store_durable(p->s) + 1);
        }
        for (; k < p->per && i < p->first + p->count; k++, i++) {
            const row_src *r = &rows[i % (long long)nrows];
            int idn = snprintf(id, sizeof(id), "%s.%llx", r->id, i);
            wh_rec *rec = wh_rec_add(&b, WH_REC_DECISION);
            wh_rec_set(&b, rec, WH_RF_EVENT_ID, id, (size_t)idn);
            wh_rec_set(&b, rec, WH_RF_CHANNEL, r->channel, r->channel_n);
            wh_rec_set(&b, rec, WH_RF_USER, r->user, r->user_n);
            wh_rec_set(&b, rec, WH_RF_ACTION, r->action, r->action_n);
            wh_rec_set(&b, rec, WH_RF_BODY, r->body, r->body_n);
        }
        if (k < p->per) wh_store_unreserve(p->s, (uint32_t)(p->per - k));
        uint64_t t = wh_store_submit(p->s, &b);
        if (!t || !wh_store_wait(p->s, t)) {
            fprintf(stderr, "audit_bench: a submit failed\n");
            exit(1);
        }
    }
    wh_rec_batch_free(&b);
    return NULL;
}

static void store_run(long long n, int per, int np, const char *dir)
{
    wh_store_opts o = {.preallocate = 64 << 20, .queue = 200000, .signing_key = "none"};
    wh_error e;
    wh_store *s = wh_store_open(dir, &o, &e);
    if (!s) {
        fprintf(stderr, "audit_bench: %s\n", e.message);
        exit(2);
    }
    wh_store_stats st0;
    wh_store_stats_get(s, &st0);
    producer *p = calloc((size_t)np, sizeof(*p));
    pthread_t *th = calloc((size_t)np, sizeof(*th));
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < np; i++) {
        p[i] = (producer){s, per, n * i / np, n * (i + 1) / np - n * i / np};
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < np; i++)
        pthread_join(th[i], NULL);
    double secs = now_s() - t0, cpu = cpu_s() - c0;
    wh_store_stats st;
    wh_store_stats_get(s, &st);
    wh_store_close(s);
    free(p), free(th);
    report("store", dir, n, secs, cpu);
    printf("audit-bench store commits=%llu rows_per_commit=%.0f commit_share=%.2f\n",
           (unsigned long long)(st.commits - st0.commits),
           (double)(st.written - st0.written) /
               (double)(st.commits - st0.commits ? st.commits - st0.commits : 1),
           (double)(st.commit_ns - st0.commit_ns) / 1e9 / secs);
}

/* ---- lookup: a decision by event id ---- */

static int64_t max_seq(sqlite3 *db)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "SELECT max(seq) FROM audit", -1, &st, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void lookup_run(const char *dir, int k)
{
    /* the floor's rows carry no real chain: start anyway (the background check says so) */
    wh_store_opts o = {.queue = 1000, .signing_key = "none", .start_afresh = true};
    wh_error e;
    wh_store *s = wh_store_open(dir, &o, &e);
    if (!s) {
        fprintf(stderr, "audit_bench: %s\n", e.message);
        exit(2);
    }
    char p[4200];
    snprintf(p, sizeof(p), "%s/whiply.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT event_id FROM audit WHERE seq % ((SELECT max(seq) FROM audit) "
                           "/ ?1 + 1) = 0 AND kind = 'decision' LIMIT ?1",
                           -1, &st, NULL) != SQLITE_OK)
        exit(2);
    sqlite3_bind_int(st, 1, k);
    char **ids = calloc((size_t)k, sizeof(*ids));
    int n = 0;
    while (n < k && sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    int64_t last = max_seq(db);
    sqlite3_close(db);
    wh_buf out;
    wh_buf_init(&out);
    int found = 0;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        out.len = 0;
        found += wh_store_decision(s, ids[i], &out) == WH_OK;
    }
    double t1 = now_s();
    int missing = 0;
    char id[64];
    for (int i = 0; i < k; i++) {
        snprintf(id, sizeof(id), "not-there.%d", i);
        out.len = 0;
        missing += wh_store_decision(s, id, &out) == WH_EINVAL;
    }
    double t2 = now_s();
    printf("audit-bench lookup rows=%lld present=%d/%d us_present=%.1f missing=%d/%d "
           "us_missing=%.1f\n",
           (long long)last, found, n, n ? (t1 - t0) * 1e6 / n : 0, missing, k, (t2 - t1) * 1e6 / k);
    wh_buf_free(&out);
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    wh_store_close(s);
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "lookup")) {
        lookup_run(argv[2], atoi(argv[3]));
        return 0;
    }
    if (argc == 7 && !strcmp(argv[1], "floor")) {
        long long n = atoll(argv[4]);
        load(argv[2], argv[3], (size_t)n);
        floor_run(n, atoi(argv[5]), argv[6]);
        return 0;
    }
    if (argc == 8 && !strcmp(argv[1], "store")) {
        long long n = atoll(argv[4]);
        load(argv[2], argv[3], (size_t)n);
        store_run(n, atoi(argv[5]), atoi(argv[6]), argv[7]);
        return 0;
    }
    fprintf(stderr, "usage: audit_bench floor EVENTS DECISIONS N BATCH DIR\n"
                    "       audit_bench lookup DIR K\n"
                    "       audit_bench store EVENTS DECISIONS N PER_SUBMIT PRODUCERS DIR\n");
    return 2;
}
