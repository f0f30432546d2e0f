/* store.c - see store.h. */
#define _GNU_SOURCE
#include "store.h"

#include <errno.h>
#include <openssl/evp.h>
#include <xxhash.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

const char *const wh_rec_kind_names[WH_REC__COUNT] = {"decision", "review", "reload", "system",
                                                      "checkpoint"};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v);"
    "INSERT OR IGNORE INTO meta VALUES('schema', 1);"
    "INSERT OR IGNORE INTO meta VALUES('retention', 0);"
    "CREATE TABLE IF NOT EXISTS audit("
    "  seq INTEGER PRIMARY KEY," /* 1, 2, 3...: the chain's order */
    "  at_ms INTEGER NOT NULL,"  /* wall clock when written */
    "  kind TEXT NOT NULL,"      /* decision, review, reload, system, checkpoint */
    "  event_id TEXT, channel TEXT, user_id TEXT, action TEXT,"
    "  body TEXT NOT NULL,"
    "  prev BLOB NOT NULL," /* the previous row's hash (zeros for the first) */
    "  hash BLOB NOT NULL," /* SHA-256(prev, seq, at_ms, fields) */
    "  eid_h INTEGER);"     /* XXH3 of event_id (an index key, outside the hash) */
    /* Event ids are looked up through (seq >> 16, XXH3 of the id): new entries all land in
     * the newest bucket's few hundred pages, which stay cached and are checkpointed once
     * for many rows. An index on event_id itself puts each row on a random leaf page of a
     * B-tree that grows with the audit: measured at 6M rows, 171k events/s and a 3 ms p99
     * for single events with it, 408k and 1.6 ms without any (docs/architecture.md). A
     * lookup probes each bucket, newest first: one index probe per 65,536 rows. */
    "CREATE INDEX IF NOT EXISTS audit_event_h ON audit((seq >> 16), eid_h);"
    /* No index on channel or user: at ~500 rows a commit, each index dirties a random leaf
     * page per row, and two of them cut the writer from 238k to 55k rows/s (docs/
     * architecture.md). Queries by channel or user scan newest first, bounded by `since`. */
    /* A second line of defence (the chain is the first): the database refuses to change or
     * delete audit rows, except a retention pass, which sets meta.retention while it runs. */
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN"
    "  SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    "  WHEN (SELECT v FROM meta WHERE k = 'retention') IS NOT 1 BEGIN"
    "  SELECT RAISE(ABORT, 'audit rows are deleted only by retention'); END;"
    "CREATE TABLE IF NOT EXISTS review("
    "  event_id TEXT PRIMARY KEY, platform TEXT, channel TEXT, user_id TEXT, user_name TEXT,"
    "  text TEXT, event TEXT, decision TEXT, created_ms INTEGER,"
    "  status TEXT NOT NULL DEFAULT 'pending', moderator TEXT, note TEXT, resolved_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS review_status ON review(status, created_ms);"
    "CREATE TABLE IF NOT EXISTS quota("
    "  key TEXT NOT NULL, period INTEGER NOT NULL, window_ms INTEGER NOT NULL,"
    "  used INTEGER NOT NULL, PRIMARY KEY(key, period));";

/* ---- record batches ---- */

void wh_rec_batch_init(wh_rec_batch *b)
{
    memset(b, 0, sizeof(*b));
    wh_buf_init(&b->data);
}

void wh_rec_batch_free(wh_rec_batch *b)
{
    wh_buf_free(&b->data);
    free(b->v);
    memset(b, 0, sizeof(*b));
}

void wh_rec_batch_reset(wh_rec_batch *b)
{
    b->data.len = 0;
    b->data.oom = false;
    b->n = 0;
    b->oom = false;
}

wh_rec *wh_rec_add(wh_rec_batch *b, wh_rec_kind kind)
{
    static wh_rec dummy;
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 64;
        wh_rec *v = realloc(b->v, sizeof(*v) * cap);
        if (!v) {
            b->oom = true;
            return &dummy;
        }
        b->v = v;
        b->cap = cap;
    }
    wh_rec *r = &b->v[b->n++];
    r->kind = kind;
    r->hold = false;
    for (int i = 0; i < WH_RF__COUNT; i++)
        r->f[i] = (wh_rec_str){0, UINT32_MAX};
    return r;
}

void wh_rec_set(wh_rec_batch *b, wh_rec *r, wh_rec_field f, const char *p, size_t n)
{
    if (!p) return;
    r->f[f].off = (uint32_t)b->data.len;
    r->f[f].len = (uint32_t)n;
    wh_buf_append(&b->data, p, n);
    if (b->data.oom) b->oom = true;
}

/* ---- the store ---- */

struct wh_store {
    sqlite3 *db; /* the writer's */
    sqlite3 *rd; /* reads, under rd_lock */
    pthread_mutex_t rd_lock;
    char *path;
    wh_store_opts o;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    wh_rec_batch q;           /* queued, not yet taken by the writer */
    uint64_t submitted;       /* tickets handed out (rows queued since start) */
    uint64_t reserved;        /* rows promised to requests still deciding */
    wh_store_notice *notices; /* the same, for requests that do not block a thread */
    uint64_t committed;       /* rows taken by a commit, whether it succeeded or failed */
    uint64_t durable;         /* rows known to be in the database: tickets up to it are safe */
    bool stop;
    char *error; /* set once a commit failed: the store refuses everything after */
    pthread_t thread;
    /* Checkpoints run on their own thread and connection (PASSIVE: they never block the
     * writer), so a commit never pays for copying the WAL into the database. */
    pthread_t ckpt_thread;
    pthread_cond_t ckpt_wake;
    bool ckpt_started;
    int wal_pages;    /* the WAL's size after the last commit (the writer's wal hook) */
    bool restart_due; /* the WAL passed CKPT_HARD: the writer restarts it after its commit */

    /* writer's own */
    sqlite3_stmt *ins_audit, *ins_review, *upd_review, *put_quota;
    uint8_t head[32]; /* hash of the newest row */
    uint64_t seq;     /* newest row */
    EVP_MD_CTX *md;
    wh_buf held_body; /* a held decision's body with its held_sha256 */
    int64_t next_retention_ms;

    _Atomic uint64_t st_written, st_commits, st_commit_ns, st_queued, st_last_seq;
    _Atomic uint64_t st_pending_reviews;
};

/* OpenSSL 3 looks a digest up by name on every EVP_sha256() init (about 10% of the writer's
 * time in a profile); fetched once, the lookup is gone. */
static const EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (!sha256_md) sha256_md = EVP_sha256();
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Fields into a digest, each as its length (4 bytes little-endian; ff ff ff ff when NULL)
 * and its bytes: an unambiguous encoding. */
static void hash_fields(EVP_MD_CTX *md, const char *const *f, const uint32_t *len, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t l[4];
        put_le(l, f[i] ? len[i] : UINT32_MAX, 4);
        EVP_DigestUpdate(md, l, 4);
        if (f[i] && len[i]) EVP_DigestUpdate(md, f[i], len[i]);
    }
}

/* The row hash: SHA-256 over prev (32 bytes), seq and at_ms (8 bytes little-endian each),
 * then kind, event_id, channel, user_id, action and body as hash_fields encodes them. */
static void row_hash(EVP_MD_CTX *md, const uint8_t prev[32], uint64_t seq, int64_t at_ms,
                     const char *const *f, const uint32_t *len, uint8_t out[32])
{
    uint8_t hdr[16];
    put_le(hdr, seq, 8);
    put_le(hdr + 8, (uint64_t)at_ms, 8);
    pthread_once(&sha256_once, sha256_fetch);
    EVP_DigestInit_ex(md, sha256_md, NULL);
    EVP_DigestUpdate(md, prev, 32);
    EVP_DigestUpdate(md, hdr, 16);
    hash_fields(md, f, len, 6);
    unsigned n = 32;
    EVP_DigestFinal_ex(md, out, &n);
}

/* The digest of a held event's review copy (its text, then the event as received, encoded
 * by hash_fields): the decision row carries it as "held_sha256", so the review queue's copy
 * is bound to the chain (docs/api.md, the hash chain). */
static void held_hash(EVP_MD_CTX *md, const char *text, uint32_t tlen, const char *event,
                      uint32_t elen, uint8_t out[32])
{
    pthread_once(&sha256_once, sha256_fetch);
    EVP_DigestInit_ex(md, sha256_md, NULL);
    const char *f[2] = {text, event};
    uint32_t len[2] = {tlen, elen};
    hash_fields(md, f, len, 2);
    unsigned n = 32;
    EVP_DigestFinal_ex(md, out, &n);
}

static wh_store_notice *take_notices(wh_store *s);
static void call_notices(wh_store_notice *due, bool ok);

static void fail(wh_store *s, const char *what)
{
    char *msg = NULL;
    if (asprintf(&msg, "audit store: %s: %s", what, sqlite3_errmsg(s->db)) < 0) msg = NULL;
    fprintf(stderr, "whiply: %s\n", msg ? msg : what);
    pthread_mutex_lock(&s->lock);
    if (!s->error)
        s->error = msg;
    else
        free(msg);
    wh_store_notice *due = take_notices(s);
    pthread_mutex_unlock(&s->lock);
    call_notices(due, false);
}

static int64_t eid_hash(const char *id, size_t n)
{
    return (int64_t)XXH3_64bits(id, n);
}

static void bind_text(sqlite3_stmt *st, int i, const char *p, uint32_t n)
{
    if (!p)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, p, (int)n, SQLITE_STATIC);
}

/* Appends one audit row (writer thread, inside a transaction). */
static bool append_row(wh_store *s, int64_t at_ms, wh_rec_kind kind, const char *const *f6,
                       const uint32_t *l6)
{
    const char *f[6];
    uint32_t l[6];
    f[0] = wh_rec_kind_names[kind];
    l[0] = (uint32_t)strlen(f[0]);
    for (int i = 1; i < 6; i++) {
        f[i] = f6[i - 1];
        l[i] = l6[i - 1];
    }
    uint8_t h[32];
    uint64_t seq = s->seq + 1;
    row_hash(s->md, s->head, seq, at_ms, f, l, h);
    sqlite3_stmt *st = s->ins_audit;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_int64(st, 2, at_ms);
    sqlite3_bind_text(st, 3, f[0], (int)l[0], SQLITE_STATIC);
    for (int i = 1; i < 6; i++)
        bind_text(st, i + 3, f[i], l[i]);
    sqlite3_bind_blob(st, 9, s->head, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 10, h, 32, SQLITE_STATIC);
    if (f[1])
        sqlite3_bind_int64(st, 11, eid_hash(f[1], l[1]));
    else
        sqlite3_bind_null(st, 11);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return false;
    memcpy(s->head, h, 32);
    s->seq = seq;
    return true;
}

static bool write_rec(wh_store *s, const wh_rec_batch *b, const wh_rec *r, int64_t at_ms)
{
    const char *f[WH_RF__COUNT];
    uint32_t l[WH_RF__COUNT];
    for (int i = 0; i < WH_RF__COUNT; i++) {
        f[i] = r->f[i].len == UINT32_MAX ? NULL : b->data.p + r->f[i].off;
        l[i] = r->f[i].len == UINT32_MAX ? 0 : r->f[i].len;
    }
    if (!f[WH_RF_BODY]) {
        f[WH_RF_BODY] = "{}";
        l[WH_RF_BODY] = 2;
    }
    if (r->kind == WH_REC_DECISION && r->hold && l[WH_RF_BODY] >= 2 &&
        f[WH_RF_BODY][l[WH_RF_BODY] - 1] == '}') {
        /* {...,"held_sha256":"<hex>"}: the review copy written below, bound to this row */
        uint8_t dg[32];
        char hx[65];
        held_hash(s->md, f[WH_RF_TEXT], l[WH_RF_TEXT], f[WH_RF_EVENT], l[WH_RF_EVENT], dg);
        wh_hex_encode(dg, 32, hx);
        wh_buf *hb = &s->held_body;
        hb->len = 0;
        wh_buf_append(hb, f[WH_RF_BODY], l[WH_RF_BODY] - 1);
        wh_buf_printf(hb, "%s\"held_sha256\":\"%s\"}", l[WH_RF_BODY] > 2 ? "," : "", hx);
        if (hb->oom) return false;
        f[WH_RF_BODY] = hb->p;
        l[WH_RF_BODY] = (uint32_t)hb->len;
    }
    if (!append_row(s, at_ms, r->kind, f, l)) return false;
    if (r->kind == WH_REC_DECISION && r->hold) {
        sqlite3_stmt *st = s->ins_review;
        static const wh_rec_field cols[] = {WH_RF_EVENT_ID, WH_RF_PLATFORM,  WH_RF_CHANNEL,
                                            WH_RF_USER,     WH_RF_USER_NAME, WH_RF_TEXT,
                                            WH_RF_EVENT,    WH_RF_BODY};
        for (int i = 0; i < 8; i++)
            bind_text(st, i + 1, f[cols[i]], l[cols[i]]);
        sqlite3_bind_int64(st, 9, at_ms);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return false;
        if (sqlite3_changes(s->db) > 0) s->st_pending_reviews++;
    } else if (r->kind == WH_REC_REVIEW) {
        sqlite3_stmt *st = s->upd_review;
        bool approve = l[WH_RF_ACTION] == 7 && !memcmp(f[WH_RF_ACTION], "approve", 7);
        sqlite3_bind_text(st, 1, approve ? "approved" : "denied", -1, SQLITE_STATIC);
        bind_text(st, 2, f[WH_RF_MODERATOR], l[WH_RF_MODERATOR]);
        bind_text(st, 3, f[WH_RF_NOTE], l[WH_RF_NOTE]);
        sqlite3_bind_int64(st, 4, at_ms);
        bind_text(st, 5, f[WH_RF_EVENT_ID], l[WH_RF_EVENT_ID]);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return false;
        if (sqlite3_changes(s->db) > 0 && s->st_pending_reviews) s->st_pending_reviews--;
    }
    return true;
}

/* Quota counters are copied out of the rate limiter first (into records: key in the
 * event_id field, period and window in the action field, count in the body), so that a
 * transaction is opened only when something changed. */
static void quota_keep(void *ud, const char *key, size_t keylen, wh_quota_period p,
                       int64_t window_start_ms, int64_t used)
{
    wh_rec_batch *b = ud;
    char nums[64];
    wh_rec *r = wh_rec_add(b, WH_REC_SYSTEM);
    wh_rec_set(b, r, WH_RF_EVENT_ID, key, keylen);
    int n = snprintf(nums, sizeof(nums), "%d %lld %lld", (int)p, (long long)window_start_ms,
                     (long long)used);
    wh_rec_set(b, r, WH_RF_BODY, nums, (size_t)n);
}

static bool quota_put(wh_store *s, const wh_rec_batch *b, const wh_rec *r)
{
    char nums[64];
    uint32_t n = r->f[WH_RF_BODY].len < sizeof(nums) ? r->f[WH_RF_BODY].len : sizeof(nums) - 1;
    memcpy(nums, b->data.p + r->f[WH_RF_BODY].off, n);
    nums[n] = 0;
    int p = 0;
    long long window = 0, used = 0;
    if (sscanf(nums, "%d %lld %lld", &p, &window, &used) != 3) return true;
    sqlite3_stmt *st = s->put_quota;
    sqlite3_bind_text(st, 1, b->data.p + r->f[WH_RF_EVENT_ID].off, (int)r->f[WH_RF_EVENT_ID].len,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 2, p);
    sqlite3_bind_int64(st, 3, window);
    sqlite3_bind_int64(st, 4, used);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE;
}

/* SQLite's default busy handler sleeps in steps that grow to 100 ms, so a writer waiting
 * for a checkpoint that holds the lock for 2 ms could sleep 50: requests measured a p99 of
 * 400-600 ms behind it. This one retries every 100 us, for about a second. */
static int busy_short(void *ud, int n)
{
    (void)ud;
    if (n >= 10000) return 0;
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
    return 1;
}

static bool exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
}

/* Disk written ahead (store.preallocate). A write that grows a file, or lands in blocks not
 * yet allocated, changes the inode's size or extents; on ext4 that needs a journal handle,
 * and while the checkpointer's fdatasync commits the journal the audit writer's write() to
 * the WAL waits 1-2 ms, and every request in its commit with it (seen with perf trace; with
 * both measures below the median single-event p99 went from 2.5 ms to 1.9 ms: see
 * bench/RESULTS.md). So:
 * - the WAL is filled with zeros up to `bytes` at open, so that the writer overwrites blocks
 *   that exist (zeros, not fallocate: an unwritten extent is converted in the journal when
 *   first written). SQLite reads a zero frame as the end of the log (page 0, wrong salts),
 *   and journal_size_limit (this size, at least 64 MiB) keeps the file when the WAL restarts;
 * - the database grows in steps of `bytes` (SQLITE_FCNTL_CHUNK_SIZE, set on each
 *   connection that writes it: the writer and the checkpointer), not a page at a time. */
static void chunk_size(sqlite3 *db, int64_t bytes)
{
    int sz = (int)bytes;
    if (sz > 0) sqlite3_file_control(db, "main", SQLITE_FCNTL_CHUNK_SIZE, &sz);
}

static void wal_preallocate(const wh_store *s)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s-wal", s->path);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        return;
    }
    static const char zeros[1 << 16];
    int64_t off = st.st_size;
    while (off < s->o.preallocate) {
        int64_t left = s->o.preallocate - off;
        size_t n = left < (int64_t)sizeof(zeros) ? (size_t)left : sizeof(zeros);
        ssize_t w = pwrite(fd, zeros, n, off);
        if (w <= 0) {
            fprintf(stderr, "whiply: audit store: cannot write ahead %s: %s (commits may stall)\n",
                    path, w < 0 ? strerror(errno) : "no progress");
            break;
        }
        off += w;
    }
    if (off > st.st_size) fdatasync(fd);
    close(fd);
}

/* Deletes the audit rows written before now - audit_keep_ms (a prefix of the chain: rows
 * are written in time order) and appends a checkpoint naming the first row kept and the hash
 * it chains to; deletes resolved review items older than review_keep_ms. */
static bool retention(wh_store *s, int64_t now)
{
    if (s->o.review_keep_ms > 0) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db,
                               "DELETE FROM review WHERE status != 'pending' AND resolved_ms < ?",
                               -1, &st, NULL) != SQLITE_OK)
            return false;
        sqlite3_bind_int64(st, 1, now - s->o.review_keep_ms);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return false;
    }
    if (s->o.audit_keep_ms <= 0 || s->seq == 0) return true;
    int64_t cutoff = now - s->o.audit_keep_ms;
    sqlite3_stmt *st;
    /* The first row to keep: the oldest written at or after the cutoff (or, when every row
     * is older, the checkpoint about to be written). */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT (SELECT min(seq) FROM audit), (SELECT min(seq) FROM audit "
                           "WHERE at_ms >= ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_int64(st, 1, cutoff);
    int64_t first = 0, keep = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        first = sqlite3_column_int64(st, 0);
        keep = sqlite3_column_type(st, 1) == SQLITE_NULL ? (int64_t)s->seq + 1
                                                         : sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (keep <= first) return true;
    uint8_t anchor[32];
    if (sqlite3_prepare_v2(s->db, "SELECT hash FROM audit WHERE seq = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return false;
    sqlite3_bind_int64(st, 1, keep - 1);
    bool have = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32;
    if (have) memcpy(anchor, sqlite3_column_blob(st, 0), 32);
    sqlite3_finalize(st);
    if (!have) return false;
    if (!exec(s->db, "UPDATE meta SET v = 1 WHERE k = 'retention'")) return false;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM audit WHERE seq < ?", -1, &st, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_int64(st, 1, keep);
    int rc = sqlite3_step(st);
    int deleted = sqlite3_changes(s->db);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || !exec(s->db, "UPDATE meta SET v = 0 WHERE k = 'retention'"))
        return false;
    char ah[65], body[256];
    wh_hex_encode(anchor, 32, ah);
    int bl = snprintf(body, sizeof(body),
                      "{\"deleted_before\":%lld,\"anchor\":\"%s\",\"deleted\":%d,"
                      "\"cutoff_ms\":%lld}",
                      (long long)keep, ah, deleted, (long long)cutoff);
    const char *f[5] = {NULL, NULL, NULL, NULL, body};
    uint32_t l[5] = {0, 0, 0, 0, (uint32_t)bl};
    return append_row(s, now, WH_REC_CHECKPOINT, f, l);
}

/* Another process holding the write lock (a backup, an operator's sqlite3) delays the
 * writer instead of failing it: rows stay queued, the queue bound turns into 429s, and
 * nothing is lost. Only at shutdown does it give up, after 30 s. */
static bool begin(wh_store *s)
{
    bool said = false;
    for (int waited_s = 0;; waited_s++) {
        int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            if (said) fprintf(stderr, "whiply: audit store: the database is writable again\n");
            return true;
        }
        if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) return false;
        if (!said)
            fprintf(stderr, "whiply: audit store: the database is locked by another process; "
                            "writes wait\n");
        said = true;
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop && waited_s >= 30) return false;
    }
}

/* The RESTART checkpoint that bounds the WAL under a saturating load (see CKPT_HARD). */
static void wal_restart(wh_store *s)
{
    int log = 0, done = 0;
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
}

static void *writer_main(void *arg)
{
    wh_store *s = arg;
    wh_rec_batch cur, quota_rows;
    wh_rec_batch_init(&cur);
    wh_rec_batch_init(&quota_rows);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        for (;;) {
            if (s->q.n || s->stop) break;
            int64_t now = wh_now_ms();
            if (s->next_retention_ms && now >= s->next_retention_ms) break;
            /* Wake at least every 200 ms: quota counters are persisted with each commit. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_cond_timedwait(&s->wake, &s->lock, &ts) != 0) break;
        }
        bool stop = s->stop && s->q.n == 0;
        /* Take the queue (swap buffers: producers keep appending to the other). */
        wh_rec_batch tmp = cur;
        cur = s->q;
        s->q = tmp;
        wh_rec_batch_reset(&s->q);
        bool failed = s->error != NULL;
        pthread_mutex_unlock(&s->lock);

        int64_t now = wh_now_ms();
        bool run_ret = s->next_retention_ms && now >= s->next_retention_ms;
        quota_rows.n = 0;
        quota_rows.data.len = 0;
        if (!failed && s->o.quotas) wh_rl_quota_flush(s->o.quotas, quota_keep, &quota_rows);
        if (!failed && (cur.n || run_ret || quota_rows.n)) {
            uint64_t t0 = wh_mono_ns();
            bool ok = begin(s);
            for (uint32_t i = 0; ok && i < cur.n; i++)
                ok = write_rec(s, &cur, &cur.v[i], now);
            for (uint32_t i = 0; ok && i < quota_rows.n; i++)
                ok = quota_put(s, &quota_rows, &quota_rows.v[i]);
            if (ok && run_ret) {
                ok = retention(s, now);
                s->next_retention_ms = s->o.retention_every_ms ? now + s->o.retention_every_ms : 0;
            }
            if (ok) ok = exec(s->db, "COMMIT");
            if (!ok) {
                fail(s, "a write failed");
                exec(s->db, "ROLLBACK");
            } else {
                s->st_commits++;
                s->st_commit_ns += wh_mono_ns() - t0;
                s->st_written += cur.n;
                s->st_last_seq = s->seq;
            }
        }
        pthread_mutex_lock(&s->lock);
        s->committed += cur.n;
        if (!s->error) s->durable = s->committed; /* a failure stops the store for good */
        s->st_queued = s->submitted - s->committed;
        wh_store_notice *due = take_notices(s);
        bool healthy = !s->error;
        pthread_mutex_unlock(&s->lock);
        call_notices(due, healthy);
        wh_rec_batch_reset(&cur);
        if (stop) break;
        pthread_mutex_lock(&s->lock);
        bool restart = s->restart_due;
        s->restart_due = false;
        pthread_mutex_unlock(&s->lock);
        if (restart && healthy) wal_restart(s);
    }
    wh_rec_batch_free(&cur);
    wh_rec_batch_free(&quota_rows);
    return NULL;
}

#define CKPT_PAGES 4096 /* checkpoint once the WAL holds this many pages (16 MiB) */
/* PASSIVE checkpoints never block the writer, but while it commits back to back they never
 * catch up with the WAL's end either, and the WAL only restarts from its beginning once a
 * checkpoint has caught up. So: PASSIVE again while each pass gets further (the tail left
 * is short), on the checkpoint thread; and when the WAL has grown past CKPT_HARD anyway
 * (a load that keeps both cores busy), a RESTART, run by the writer itself between two
 * commits once their requests are answered: it copies the rest at the writer's priority
 * (the checkpoint thread's nice 10 would let the WAL grow by GBs) and the writer waits for
 * it, as it would wait for a RESTART from any connection. journal_size_limit then truncates
 * the file. */
#define CKPT_HARD (8 * CKPT_PAGES)

static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    wh_store *s = ud;
    pthread_mutex_lock(&s->lock);
    s->wal_pages = pages;
    if (pages >= CKPT_PAGES) pthread_cond_signal(&s->ckpt_wake);
    if (pages >= CKPT_HARD) s->restart_due = true;
    pthread_mutex_unlock(&s->lock);
    return SQLITE_OK;
}

#define CKPT_NICE 10

static void *ckpt_main(void *arg)
{
    wh_store *s = arg;
    sqlite3 *db = NULL;
    /* Checkpoints run in the machine's spare time: at nice 10 this thread no longer takes a
     * core from the audit writer or the HTTP threads while they have work, which took the
     * single-event p99 from 1.61-1.97 ms to 1.25-1.75 ms in interleaved runs (bench/RESULTS.md).
     * On Linux a TID's nice is that thread's alone. Under a load that keeps both cores busy
     * this thread falls behind; the writer's RESTART past CKPT_HARD bounds the WAL then. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CKPT_NICE) != 0)
        fprintf(stderr, "whiply: audit store: checkpoints at normal priority: %s\n",
                strerror(errno));
    /* A connection that has not yet read the database checkpoints nothing (SQLite 3.40
     * returns OK and does no work): read once first. */
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, "SELECT count(*) FROM meta", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "whiply: audit store: no checkpoint connection: the WAL will grow\n");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_handler(db, busy_short, NULL);
    chunk_size(db, s->o.preallocate);
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        if (s->wal_pages < CKPT_PAGES) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&s->ckpt_wake, &s->lock, &ts);
            if (s->wal_pages < CKPT_PAGES) continue;
        }
        s->wal_pages = 0;
        pthread_mutex_unlock(&s->lock);
        int log = 0, done = 0, prev_left = INT32_MAX;
        for (int pass = 0; pass < 16; pass++) {
            if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) !=
                SQLITE_OK)
                break;
            int left = log - done;
            if (left <= 0 || left >= prev_left) break;
            prev_left = left;
        }
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    sqlite3_close(db);
    return NULL;
}

static bool prepare(wh_store *s)
{
    return sqlite3_prepare_v3(s->db,
                              "INSERT INTO audit(seq, at_ms, kind, event_id, channel, user_id, "
                              "action, body, prev, hash, eid_h) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                              -1, SQLITE_PREPARE_PERSISTENT, &s->ins_audit, NULL) == SQLITE_OK &&
           sqlite3_prepare_v3(s->db,
                              "INSERT OR IGNORE INTO review(event_id, platform, channel, "
                              "user_id, user_name, text, event, decision, created_ms) "
                              "VALUES(?,?,?,?,?,?,?,?,?)",
                              -1, SQLITE_PREPARE_PERSISTENT, &s->ins_review, NULL) == SQLITE_OK &&
           sqlite3_prepare_v3(s->db,
                              "UPDATE review SET status = ?, moderator = ?, note = ?, "
                              "resolved_ms = ? WHERE event_id = ? AND status = 'pending'",
                              -1, SQLITE_PREPARE_PERSISTENT, &s->upd_review, NULL) == SQLITE_OK &&
           sqlite3_prepare_v3(s->db,
                              "INSERT INTO quota(key, period, window_ms, used) VALUES(?,?,?,?) "
                              "ON CONFLICT(key, period) DO UPDATE SET window_ms = "
                              "excluded.window_ms, used = excluded.used",
                              -1, SQLITE_PREPARE_PERSISTENT, &s->put_quota, NULL) == SQLITE_OK;
}

static bool load_head(wh_store *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", -1, &st,
                           NULL) != SQLITE_OK)
        return false;
    memset(s->head, 0, 32);
    s->seq = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
        s->seq = (uint64_t)sqlite3_column_int64(st, 0);
        memcpy(s->head, sqlite3_column_blob(st, 1), 32);
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM review WHERE status = 'pending'", -1, &st,
                           NULL) != SQLITE_OK)
        return false;
    if (sqlite3_step(st) == SQLITE_ROW)
        s->st_pending_reviews = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    s->st_last_seq = s->seq;
    return true;
}

wh_store *wh_store_open(const char *dir, const wh_store_opts *o, char *err, size_t errlen)
{
    wh_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->rd_lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    wh_rec_batch_init(&s->q);
    wh_buf_init(&s->held_body);
    s->md = EVP_MD_CTX_new();
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the data folder %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (asprintf(&s->path, "%s/whiply.db", dir) < 0) {
        s->path = NULL;
        goto fail;
    }
    if (sqlite3_open_v2(s->path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", s->path, s->db ? sqlite3_errmsg(s->db) : "");
        goto fail;
    }
    sqlite3_busy_handler(s->db, busy_short, NULL); /* about 1 s per attempt: see begin() */
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA cache_size=-131072; "
             "PRAGMA mmap_size=1073741824; PRAGMA wal_autocheckpoint=0; "
             "PRAGMA journal_size_limit=%lld;",
             o->sync_full ? "FULL" : "NORMAL",
             (long long)(o->preallocate > (64 << 20) ? o->preallocate : 64 << 20));
    chunk_size(s->db, o->preallocate);
    if (!exec(s->db, pragmas) || !exec(s->db, schema) || !prepare(s) || !load_head(s)) {
        snprintf(err, errlen, "cannot set up %s: %s", s->path, sqlite3_errmsg(s->db));
        goto fail;
    }
    /* A crash in the middle of a retention pass rolls it back, flag included; a flag left
     * set some other way is cleared. */
    exec(s->db, "UPDATE meta SET v = 0 WHERE k = 'retention'");
    if (o->preallocate > 0) wal_preallocate(s);
    if (sqlite3_open_v2(s->path, &s->rd, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s for reading", s->path);
        goto fail;
    }
    sqlite3_busy_timeout(s->rd, 5000);
    if (o->retention_every_ms && (o->audit_keep_ms || o->review_keep_ms))
        s->next_retention_ms = wh_now_ms() + o->retention_every_ms;
    pthread_cond_init(&s->ckpt_wake, NULL);
    sqlite3_wal_hook(s->db, wal_hook, s);
    if (pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) != 0) {
        snprintf(err, errlen, "cannot start the checkpoint thread");
        goto fail;
    }
    s->ckpt_started = true;
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        snprintf(err, errlen, "cannot start the audit writer");
        goto fail;
    }
    return s;
fail:
    if (s->ckpt_started) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->ckpt_wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->ckpt_thread, NULL);
    }
    if (s->rd) sqlite3_close(s->rd);
    sqlite3_finalize(s->ins_audit);
    sqlite3_finalize(s->ins_review);
    sqlite3_finalize(s->upd_review);
    sqlite3_finalize(s->put_quota);
    if (s->db) sqlite3_close(s->db);
    EVP_MD_CTX_free(s->md);
    wh_buf_free(&s->held_body);
    wh_rec_batch_free(&s->q);
    free(s->path);
    free(s);
    return NULL;
}

void wh_store_close(wh_store *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->lock);
    pthread_cond_signal(&s->ckpt_wake);
    pthread_mutex_unlock(&s->lock);
    if (s->ckpt_started) pthread_join(s->ckpt_thread, NULL);
    pthread_cond_destroy(&s->ckpt_wake);
    sqlite3_finalize(s->ins_audit);
    sqlite3_finalize(s->ins_review);
    sqlite3_finalize(s->upd_review);
    sqlite3_finalize(s->put_quota);
    exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(s->db);
    sqlite3_close(s->rd);
    EVP_MD_CTX_free(s->md);
    wh_buf_free(&s->held_body);
    wh_rec_batch_free(&s->q);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->rd_lock);
    pthread_cond_destroy(&s->wake);
    free(s->error);
    free(s->path);
    free(s);
}

/* The bound counts every row not yet committed, those the writer has taken included (a
 * writer stuck on a lock holds its rows, and the queue must fill behind it), plus the rows
 * reserved by requests still deciding. */
bool wh_store_reserve(wh_store *s, uint32_t n)
{
    pthread_mutex_lock(&s->lock);
    bool ok = s->submitted - s->committed + s->reserved + n <= (uint64_t)s->o.queue;
    if (ok) s->reserved += n;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void wh_store_unreserve(wh_store *s, uint32_t n)
{
    pthread_mutex_lock(&s->lock);
    s->reserved -= n < s->reserved ? n : s->reserved;
    pthread_mutex_unlock(&s->lock);
}

uint64_t wh_store_submit(wh_store *s, wh_rec_batch *b)
{
    if (b->oom) return 0;
    pthread_mutex_lock(&s->lock);
    /* Reserved rows always fit; others (system rows, reviews) take what room is left. */
    uint64_t from_res = !b->reserved ? 0 : b->n < s->reserved ? b->n : s->reserved;
    if (s->submitted - s->committed + s->reserved + (b->n - from_res) > (uint64_t)s->o.queue) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    size_t base = s->q.data.len;
    wh_buf_append(&s->q.data, b->data.p, b->data.len);
    bool ok = !s->q.data.oom;
    if (ok && s->q.n + b->n > s->q.cap) {
        uint32_t cap = s->q.cap ? s->q.cap : 256;
        while (cap < s->q.n + b->n)
            cap *= 2;
        wh_rec *v = realloc(s->q.v, sizeof(*v) * cap);
        ok = v != NULL;
        if (v) {
            s->q.v = v;
            s->q.cap = cap;
        }
    }
    if (!ok) {
        s->q.data.len = base;
        s->q.data.oom = false;
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        wh_rec r = b->v[i];
        for (int k = 0; k < WH_RF__COUNT; k++)
            if (r.f[k].len != UINT32_MAX) r.f[k].off += (uint32_t)base;
        s->q.v[s->q.n++] = r;
    }
    s->submitted += b->n;
    s->reserved -= from_res;
    uint64_t ticket = s->submitted;
    s->st_queued = s->submitted - s->committed;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    wh_rec_batch_reset(b);
    return ticket;
}

bool wh_store_notify(wh_store *s, wh_store_notice *n)
{
    pthread_mutex_lock(&s->lock);
    bool later = s->committed < n->ticket && !s->error;
    if (later) {
        n->next = s->notices;
        s->notices = n;
    }
    pthread_mutex_unlock(&s->lock);
    return later;
}

/* Takes the notices whose rows are committed (all of them after a failure) off the list,
 * under s->lock; call_notices calls them once the lock is released. */
static wh_store_notice *take_notices(wh_store *s)
{
    wh_store_notice *due = NULL;
    for (wh_store_notice **p = &s->notices; *p;) {
        wh_store_notice *n = *p;
        if (n->ticket <= s->committed || s->error) {
            *p = n->next;
            n->next = due;
            due = n;
        } else {
            p = &n->next;
        }
    }
    return due;
}

static void call_notices(wh_store_notice *due, bool ok)
{
    while (due) {
        wh_store_notice *next = due->next; /* fn may free the notice */
        due->fn(due->ud, ok);
        due = next;
    }
}

/* Waiting is a notice that wakes the waiting thread: each waiter has its own condition
 * variable, so a commit wakes exactly the requests it covered (one broadcast woke every
 * waiting thread at every commit: five context switches a request at 20k requests/s). */
typedef struct {
    wh_store *s;
    pthread_cond_t cv;
    bool done;
} sync_wait;

static void wait_done(void *ud, bool ok)
{
    sync_wait *w = ud;
    pthread_mutex_lock(&w->s->lock);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->s->lock);
}

bool wh_store_wait(wh_store *s, uint64_t ticket)
{
    sync_wait w = {.s = s};
    pthread_cond_init(&w.cv, NULL);
    wh_store_notice n = {.ticket = ticket, .fn = wait_done, .ud = &w};
    if (wh_store_notify(s, &n)) {
        pthread_mutex_lock(&s->lock);
        while (!w.done)
            pthread_cond_wait(&w.cv, &s->lock);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_lock(&s->lock);
    bool ok = s->committed >= ticket && !s->error;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

uint64_t wh_store_durable(wh_store *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t d = s->durable;
    pthread_mutex_unlock(&s->lock);
    return d;
}

const char *wh_store_error(wh_store *s)
{
    pthread_mutex_lock(&s->lock);
    const char *e = s->error;
    pthread_mutex_unlock(&s->lock);
    return e;
}

void wh_store_stats_get(wh_store *s, wh_store_stats *out)
{
    out->queued = s->st_queued;
    out->written = s->st_written;
    out->commits = s->st_commits;
    out->commit_ns = s->st_commit_ns;
    out->last_seq = s->st_last_seq;
    out->pending_reviews = s->st_pending_reviews;
}

/* ---- reads ---- */

static void put_col_json(wh_buf *out, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        wh_buf_puts(out, "null");
        return;
    }
    const char *t = (const char *)sqlite3_column_text(st, i);
    wh_buf_json_str(out, t, (size_t)sqlite3_column_bytes(st, i));
}

static int64_t at_of(sqlite3 *db, const char *sql, int64_t arg)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    if (arg >= 0) sqlite3_bind_int64(st, 1, arg);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The first row written at or after since_ms. Rows are written in time order, so a binary
 * search over seq (a few lookups by primary key) replaces an index on at_ms. */
static int64_t seq_since(sqlite3 *db, int64_t since_ms)
{
    int64_t lo = at_of(db, "SELECT min(seq) FROM audit", -1);
    int64_t hi = at_of(db, "SELECT max(seq) FROM audit", -1) + 1;
    if (lo < 0) return 0;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        /* the first row at or after mid (retention leaves no holes, but be safe) */
        int64_t at = at_of(db, "SELECT at_ms FROM audit WHERE seq >= ? ORDER BY seq LIMIT 1", mid);
        if (at < 0 || at >= since_ms)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

wh_status wh_store_decisions(wh_store *s, const wh_decision_filter *f, wh_buf *out)
{
    pthread_mutex_lock(&s->rd_lock);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        s->rd,
        "SELECT seq, body FROM audit WHERE seq >= ?4 AND seq < ?5 AND kind = 'decision' "
        "AND (?1 IS NULL OR channel = ?1) AND (?2 IS NULL OR user_id = ?2) "
        "AND (?3 IS NULL OR action = ?3) ORDER BY seq DESC LIMIT ?6",
        -1, &st, NULL);
    if (rc != SQLITE_OK) {
        pthread_mutex_unlock(&s->rd_lock);
        return WH_EIO;
    }
    if (f->channel) sqlite3_bind_text(st, 1, f->channel, -1, SQLITE_STATIC);
    if (f->user) sqlite3_bind_text(st, 2, f->user, -1, SQLITE_STATIC);
    if (f->action) sqlite3_bind_text(st, 3, f->action, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, f->since_ms > 0 ? seq_since(s->rd, f->since_ms) : 0);
    sqlite3_bind_int64(st, 5, f->before_seq > 0 ? f->before_seq : INT64_MAX);
    sqlite3_bind_int(st, 6, f->limit);
    wh_buf_puts(out, "{\"decisions\":[");
    int n = 0;
    int64_t last = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++) wh_buf_putc(out, ',');
        last = sqlite3_column_int64(st, 0);
        wh_buf_append(out, sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1));
    }
    wh_buf_puts(out, "],\"next\":");
    if (n == f->limit && last > 1)
        wh_buf_i64(out, last);
    else
        wh_buf_puts(out, "null");
    wh_buf_putc(out, '}');
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rd_lock);
    return rc == SQLITE_DONE ? WH_OK : WH_EIO;
}

wh_status wh_store_decision(wh_store *s, const char *event_id, wh_buf *out)
{
    pthread_mutex_lock(&s->rd_lock);
    sqlite3_stmt *st;
    wh_status ret = WH_EIO;
    int64_t lo = at_of(s->rd, "SELECT min(seq) FROM audit", -1);
    int64_t hi = at_of(s->rd, "SELECT max(seq) FROM audit", -1);
    if (lo < 0) {
        pthread_mutex_unlock(&s->rd_lock);
        return WH_EINVAL;
    }
    if (sqlite3_prepare_v2(s->rd,
                           "SELECT body FROM audit WHERE (seq >> 16) = ?1 AND eid_h = ?2 AND "
                           "event_id = ?3 AND kind = 'decision' ORDER BY seq DESC LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        ret = WH_EINVAL;
        int64_t h = eid_hash(event_id, strlen(event_id));
        for (int64_t b = hi >> 16; b >= lo >> 16 && ret == WH_EINVAL; b--) {
            sqlite3_bind_int64(st, 1, b);
            sqlite3_bind_int64(st, 2, h);
            sqlite3_bind_text(st, 3, event_id, -1, SQLITE_STATIC);
            int rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) {
                wh_buf_append(out, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
                ret = WH_OK;
            } else if (rc != SQLITE_DONE) {
                ret = WH_EIO;
            }
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->rd_lock);
    return ret;
}

wh_status wh_store_reviews(wh_store *s, const char *status, const char *after, int limit,
                           wh_buf *out)
{
    pthread_mutex_lock(&s->rd_lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->rd,
                           "SELECT event_id, platform, channel, user_id, user_name, text, "
                           "decision, created_ms, status, moderator, note, resolved_ms FROM review "
                           "WHERE (?1 IS NULL OR status = ?1) AND (?3 IS NULL OR (created_ms, "
                           "event_id) > (SELECT created_ms, event_id FROM review WHERE event_id "
                           "= ?3)) ORDER BY created_ms, event_id LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&s->rd_lock);
        return WH_EIO;
    }
    if (status) sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit);
    if (after) sqlite3_bind_text(st, 3, after, -1, SQLITE_STATIC);
    wh_buf last;
    wh_buf_init(&last);
    static const char *const names[] = {"event_id",  "platform",  "channel",  "user",
                                        "user_name", "text",      "decision", "created_ms",
                                        "status",    "moderator", "note",     "resolved_ms"};
    wh_buf_puts(out, "{\"items\":[");
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        wh_buf_puts(out, n++ ? ",{" : "{");
        last.len = 0;
        put_col_json(&last, st, 0);
        for (int i = 0; i < 12; i++) {
            if (i) wh_buf_putc(out, ',');
            wh_buf_putc(out, '"');
            wh_buf_puts(out, names[i]);
            wh_buf_puts(out, "\":");
            if (i == 6 && sqlite3_column_type(st, i) != SQLITE_NULL)
                wh_buf_append(out, sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
            else if ((i == 7 || i == 11) && sqlite3_column_type(st, i) != SQLITE_NULL)
                wh_buf_i64(out, sqlite3_column_int64(st, i));
            else
                put_col_json(out, st, i);
        }
        wh_buf_putc(out, '}');
    }
    /* "next": the last item's event id when the page is full (give it as `after`). */
    wh_buf_puts(out, "],\"next\":");
    if (n == limit && last.len)
        wh_buf_append(out, last.p, last.len);
    else
        wh_buf_puts(out, "null");
    wh_buf_putc(out, '}');
    wh_buf_free(&last);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rd_lock);
    return rc == SQLITE_DONE ? WH_OK : WH_EIO;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
    return strndup((const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
}

wh_status wh_store_review_get(wh_store *s, const char *event_id, wh_review_item *it)
{
    memset(it, 0, sizeof(*it));
    pthread_mutex_lock(&s->rd_lock);
    sqlite3_stmt *st;
    wh_status ret = WH_EIO;
    if (sqlite3_prepare_v2(s->rd,
                           "SELECT status, platform, channel, user_id, event, decision FROM "
                           "review WHERE event_id = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            snprintf(it->status, sizeof(it->status), "%s", sqlite3_column_text(st, 0));
            it->platform = col_dup(st, 1);
            it->channel = col_dup(st, 2);
            it->user = col_dup(st, 3);
            it->event = col_dup(st, 4);
            it->decision = col_dup(st, 5);
            ret = WH_OK;
        } else if (rc == SQLITE_DONE) {
            ret = WH_EINVAL;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->rd_lock);
    return ret;
}

void wh_review_item_free(wh_review_item *it)
{
    free(it->platform);
    free(it->channel);
    free(it->user);
    free(it->event);
    free(it->decision);
    memset(it, 0, sizeof(*it));
}

void wh_store_load_quotas(wh_store *s, wh_ratelimiter *rl)
{
    pthread_mutex_lock(&s->rd_lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->rd, "SELECT key, period, window_ms, used FROM quota", -1, &st,
                           NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            int p = sqlite3_column_int(st, 1);
            if (p < 0 || p >= WH_Q__COUNT) continue;
            wh_rl_quota_restore(rl, (const char *)sqlite3_column_text(st, 0),
                                (size_t)sqlite3_column_bytes(st, 0), (wh_quota_period)p,
                                sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->rd_lock);
}

/* ---- verification ---- */

static bool parse_checkpoint(const unsigned char *body, int64_t *before, uint8_t anchor[32])
{
    const char *b = (const char *)body;
    const char *p = strstr(b, "\"deleted_before\":");
    const char *a = strstr(b, "\"anchor\":\"");
    if (!p || !a) return false;
    *before = strtoll(p + 17, NULL, 10);
    a += 10;
    return strnlen(a, 64) == 64 && wh_hex_decode(a, 64, anchor, 32);
}

/* What the chain says of a review item: a held decision's digest of the review copy, or a
 * moderator's approve / deny. */
typedef struct {
    uint64_t eh; /* XXH3 of the event id */
    int64_t seq;
    char *eid;
    char what; /* 'h' held (dg set), 'a' approve, 'd' deny */
    uint8_t dg[32];
} review_fact;

typedef struct {
    review_fact *v;
    size_t n, cap;
    bool oom;
} review_facts;

static void facts_add(review_facts *rf, const char *eid, uint32_t n, int64_t seq, char what,
                      const uint8_t *dg)
{
    if (rf->oom) return;
    if (rf->n == rf->cap) {
        size_t cap = rf->cap ? rf->cap * 2 : 256;
        review_fact *v = realloc(rf->v, cap * sizeof(*v));
        if (!v) {
            rf->oom = true;
            return;
        }
        rf->v = v, rf->cap = cap;
    }
    review_fact *f = &rf->v[rf->n];
    f->eid = strndup(eid, n);
    if (!f->eid) {
        rf->oom = true;
        return;
    }
    f->eh = XXH3_64bits(eid, n), f->seq = seq, f->what = what;
    if (dg) memcpy(f->dg, dg, 32);
    rf->n++;
}

static int fact_cmp(const void *a, const void *b)
{
    const review_fact *x = a, *y = b;
    if (x->eh != y->eh) return x->eh < y->eh ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* A review-relevant audit row into rf: a decision whose body has "held_sha256", or a review. */
static void note_review_fact(review_facts *rf, int64_t seq, const char *const *f, const uint32_t *l)
{
    if (!f[1]) return;
    /* f: kind, event_id, channel, user_id, action, body */
    if (l[0] == 8 && !memcmp(f[0], "decision", 8) && l[4] == 4 && !memcmp(f[4], "hold", 4) &&
        f[5]) {
        static const char key[] = "\"held_sha256\":\"";
        const char *p = strstr(f[5], key);
        uint8_t dg[32];
        if (p && strnlen(p + sizeof(key) - 1, 64) == 64 &&
            wh_hex_decode(p + sizeof(key) - 1, 64, dg, 32))
            facts_add(rf, f[1], l[1], seq, 'h', dg);
    } else if (l[0] == 6 && !memcmp(f[0], "review", 6) && f[4]) {
        facts_add(rf, f[1], l[1], seq, l[4] == 7 && !memcmp(f[4], "approve", 7) ? 'a' : 'd', NULL);
    }
}

/* Every review item against the chain: its held text and event against the digest of its
 * decision row, its status against the last approve / deny. 0 when all that can be checked
 * matches, 1 naming the first that does not, 2 when the table cannot be read. */
static int verify_reviews(sqlite3 *db, EVP_MD_CTX *md, review_facts *rf, FILE *out)
{
    if (rf->oom) {
        fprintf(out, "audit verify: out of memory for the review queue's check\n");
        return 2;
    }
    if (rf->n) qsort(rf->v, rf->n, sizeof(*rf->v), fact_cmp);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT event_id, text, event, status FROM review", -1, &st, NULL) !=
        SQLITE_OK) {
        fprintf(out, "audit verify: reading the review queue: %s\n", sqlite3_errmsg(db));
        return 2;
    }
    int ret = 0, rc = SQLITE_DONE;
    int64_t checked = 0, unchecked = 0;
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *eid = (const char *)sqlite3_column_text(st, 0);
        if (!eid) continue;
        size_t en = (size_t)sqlite3_column_bytes(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        uint32_t tl = (uint32_t)sqlite3_column_bytes(st, 1);
        const char *ev = (const char *)sqlite3_column_text(st, 2);
        uint32_t el = (uint32_t)sqlite3_column_bytes(st, 2);
        const char *status = (const char *)sqlite3_column_text(st, 3);
        uint8_t dg[32];
        held_hash(md, sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : text, tl,
                  sqlite3_column_type(st, 2) == SQLITE_NULL ? NULL : ev, el, dg);
        /* the facts of this event id: a run of the sorted array */
        uint64_t eh = XXH3_64bits(eid, en);
        size_t lo = 0, hi = rf->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (rf->v[mid].eh < eh)
                lo = mid + 1;
            else
                hi = mid;
        }
        int64_t held_seq = 0;
        bool held = false, match = false;
        char last = 0;
        for (size_t i = lo; i < rf->n && rf->v[i].eh == eh; i++) {
            const review_fact *x = &rf->v[i];
            if (strcmp(x->eid, eid)) continue;
            if (x->what == 'h') {
                held = true, held_seq = x->seq;
                match = match || !memcmp(x->dg, dg, 32);
            } else if (held) {
                last = x->what;
            }
        }
        if (!held) { /* written before held digests, or retention deleted its decision */
            unchecked++;
            continue;
        }
        if (!match) {
            fprintf(out,
                    "audit verify: review item %s was altered: its held text or event does "
                    "not match the held_sha256 of row %lld\n",
                    eid, (long long)held_seq);
            ret = 1;
            break;
        }
        const char *want = last == 'a' ? "approved" : last == 'd' ? "denied" : "pending";
        if (!status || strcmp(status, want)) {
            fprintf(out,
                    "audit verify: review item %s was altered: its status is '%s', the audit "
                    "trail says '%s'\n",
                    eid, status ? status : "NULL", want);
            ret = 1;
            break;
        }
        checked++;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        fprintf(out, "audit verify: reading the review queue: %s\n", sqlite3_errmsg(db));
        ret = 2;
    }
    sqlite3_finalize(st);
    if (ret == 0 && (checked || unchecked)) {
        fprintf(out, "audit verify: ok: %lld review items match the audit trail",
                (long long)checked);
        if (unchecked)
            fprintf(out,
                    " (%lld not checked: held before held_sha256, or their decision row "
                    "deleted by retention)",
                    (long long)unchecked);
        fputc('\n', out);
    }
    return ret;
}

int wh_audit_verify(const char *db_path, const uint8_t *expect_head, FILE *out)
{
    review_facts rf = {0};
    bool head_seen = false;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(out, "audit verify: cannot open %s: %s\n", db_path, db ? sqlite3_errmsg(db) : "");
        sqlite3_close(db);
        return 2;
    }
    sqlite3_busy_timeout(db, 5000);
    int ret = 2;
    sqlite3_stmt *st = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    /* The checkpoints first: the first row kept may chain to a row retention deleted. */
    int64_t cp_before = 0;
    uint8_t cp_anchor[32] = {0};
    bool have_cp = false;
    if (sqlite3_prepare_v2(db, "SELECT body FROM audit WHERE kind = 'checkpoint' ORDER BY seq", -1,
                           &st, NULL) != SQLITE_OK) {
        fprintf(out, "audit verify: %s is not a whiply database: %s\n", db_path,
                sqlite3_errmsg(db));
        goto done;
    }
    int64_t first_seq = -1;
    {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(db, "SELECT min(seq) FROM audit", -1, &q, NULL) == SQLITE_OK) {
            if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
                first_seq = sqlite3_column_int64(q, 0);
            sqlite3_finalize(q);
        }
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t before;
        uint8_t anc[32];
        if (parse_checkpoint(sqlite3_column_text(st, 0), &before, anc) && before == first_seq) {
            cp_before = before;
            memcpy(cp_anchor, anc, 32);
            have_cp = true;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, at_ms, kind, event_id, channel, user_id, action, body, "
                           "prev, hash FROM audit ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(out, "audit verify: %s: %s\n", db_path, sqlite3_errmsg(db));
        goto done;
    }
    uint8_t last[32] = {0};
    int64_t prev_seq = 0, rows = 0;
    int rc;
    ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        int64_t at = sqlite3_column_int64(st, 1);
        const char *f[6];
        uint32_t l[6];
        for (int i = 0; i < 6; i++) {
            int c = i + 2;
            f[i] = sqlite3_column_type(st, c) == SQLITE_NULL
                       ? NULL
                       : (const char *)sqlite3_column_text(st, c);
            l[i] = f[i] ? (uint32_t)sqlite3_column_bytes(st, c) : 0;
        }
        const char *eid = f[1] ? f[1] : "-";
        if (sqlite3_column_bytes(st, 8) != 32 || sqlite3_column_bytes(st, 9) != 32) {
            fprintf(out,
                    "audit verify: row %lld (%s %s) was altered: its hashes are not 32 bytes\n",
                    (long long)seq, f[0] ? f[0] : "?", eid);
            ret = 1;
            break;
        }
        const uint8_t *prev = sqlite3_column_blob(st, 8), *hash = sqlite3_column_blob(st, 9);
        if (rows == 0) {
            if (seq == 1) {
                memset(last, 0, 32);
            } else if (have_cp && cp_before == seq) {
                memcpy(last, cp_anchor, 32);
            } else {
                fprintf(out,
                        "audit verify: rows 1 to %lld are missing and no retention checkpoint "
                        "accounts for them\n",
                        (long long)seq - 1);
                ret = 1;
                break;
            }
        } else if (seq != prev_seq + 1) {
            fprintf(out, "audit verify: rows %lld to %lld are missing (removed after row %lld)\n",
                    (long long)prev_seq + 1, (long long)seq - 1, (long long)prev_seq);
            ret = 1;
            break;
        }
        if (memcmp(prev, last, 32) != 0) {
            fprintf(out,
                    "audit verify: row %lld (%s %s) does not chain to row %lld: a row was "
                    "altered, inserted or removed there\n",
                    (long long)seq, f[0] ? f[0] : "?", eid, (long long)seq - 1);
            ret = 1;
            break;
        }
        uint8_t h[32];
        row_hash(md, last, (uint64_t)seq, at, f, l, h);
        if (memcmp(h, hash, 32) != 0) {
            fprintf(out,
                    "audit verify: row %lld (%s %s) was altered: its content does not match "
                    "its hash\n",
                    (long long)seq, f[0] ? f[0] : "?", eid);
            ret = 1;
            break;
        }
        memcpy(last, hash, 32);
        note_review_fact(&rf, seq, f, l);
        if (expect_head && !memcmp(hash, expect_head, 32)) head_seen = true;
        prev_seq = seq;
        rows++;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        fprintf(out, "audit verify: reading %s failed: %s\n", db_path, sqlite3_errmsg(db));
        ret = 2;
    }
    if (ret == 0 && expect_head && !head_seen) {
        char hx[65];
        wh_hex_encode(expect_head, 32, hx);
        fprintf(out,
                "audit verify: the recorded head %s is not in the chain: rows were removed "
                "from its end (or the chain was rebuilt)\n",
                hx);
        ret = 1;
    }
    if (ret == 0) {
        char hx[65];
        wh_hex_encode(last, 32, hx);
        if (rows)
            fprintf(out, "audit verify: ok: %lld rows (%lld to %lld), head %s\n", (long long)rows,
                    (long long)(prev_seq - rows + 1), (long long)prev_seq, hx);
        else
            fprintf(out, "audit verify: ok: the audit trail is empty\n");
        ret = verify_reviews(db, md, &rf, out);
    }
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    EVP_MD_CTX_free(md);
    for (size_t i = 0; i < rf.n; i++)
        free(rf.v[i].eid);
    free(rf.v);
    return ret;
}

int64_t wh_review_export(const char *db_path, const char *deny_label, FILE *out, FILE *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(err, "review export: cannot open %s: %s\n", db_path, db ? sqlite3_errmsg(db) : "");
        goto done;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db,
                           "SELECT event_id, text, status, moderator, resolved_ms FROM review "
                           "WHERE status IN ('approved', 'denied') AND length(text) > 0 "
                           "ORDER BY resolved_ms, event_id",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(err, "review export: %s is not a whiply database: %s\n", db_path,
                sqlite3_errmsg(db));
        goto done;
    }
    wh_buf b;
    wh_buf_init(&b);
    n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        b.len = 0;
        wh_buf_puts(&b, "{\"id\":");
        wh_buf_json_str(&b, (const char *)sqlite3_column_text(st, 0),
                        (size_t)sqlite3_column_bytes(st, 0));
        wh_buf_puts(&b, ",\"text\":");
        wh_buf_json_str(&b, (const char *)sqlite3_column_text(st, 1),
                        (size_t)sqlite3_column_bytes(st, 1));
        bool denied = !strcmp((const char *)sqlite3_column_text(st, 2), "denied");
        wh_buf_puts(&b, ",\"label\":");
        const char *lab = denied ? deny_label : "ok";
        wh_buf_json_str(&b, lab, strlen(lab));
        wh_buf_puts(&b, ",\"moderator\":");
        wh_buf_json_str(&b, (const char *)sqlite3_column_text(st, 3),
                        (size_t)sqlite3_column_bytes(st, 3));
        wh_buf_printf(&b, ",\"resolved_ms\":%lld}\n", (long long)sqlite3_column_int64(st, 4));
        if (b.oom || fwrite(b.p, 1, b.len, out) != b.len) {
            fprintf(err, "review export: cannot write the output\n");
            n = -1;
            break;
        }
        n++;
    }
    if (n >= 0 && rc != SQLITE_DONE) {
        fprintf(err, "review export: reading %s: %s\n", db_path, sqlite3_errmsg(db));
        n = -1;
    }
    wh_buf_free(&b);
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}
