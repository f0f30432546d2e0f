/* store.c - see store.h. */
#define _GNU_SOURCE
#include "store.h"

#include "chain.h"
#include "sign.h"

#include <errno.h>
#include <openssl/evp.h>
#include <xxhash.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <inttypes.h>
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
    "  status TEXT NOT NULL DEFAULT 'pending', moderator TEXT, note TEXT, resolved_ms INTEGER,"
    "  bound_seq INTEGER);" /* the audit row vouching for the item: its hold, or a carry row */
    "CREATE INDEX IF NOT EXISTS review_status ON review(status, created_ms);"
    /* Signed checkpoints (sign.h), one JSON line each, as appended to store.checkpoints. */
    "CREATE TABLE IF NOT EXISTS signed_checkpoint("
    "  id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, line TEXT NOT NULL);"
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

#define RD_POOL 4 /* connections for point lookups */

struct wh_store {
    sqlite3 *db; /* the writer's */
    sqlite3 *rd; /* list reads, under rd_lock */
    pthread_mutex_t rd_lock;
    /* Point lookups: a connection each, taken with trylock, so that one decision or one
     * review item never waits behind a long list query on rd. */
    struct {
        sqlite3 *db;
        EVP_MD_CTX *md;
        pthread_mutex_t lock;
    } pool[RD_POOL];
    _Atomic unsigned pool_next;
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
    wh_buf held_body; /* a held decision's body with its review_sha256 */
    int64_t next_retention_ms;

    /* Signed checkpoints (writer's own, but last_cp under lock for readers). */
    wh_signer *signer;
    wh_publisher *publisher;
    char *key_path, *cp_path, *url; /* NULL: none */
    uint64_t signed_seq;            /* newest row signed */
    int64_t signed_ms;              /* when (wall clock) */
    bool sign_force;                /* sign at the next chance (start, after retention) */
    bool have_cp;
    wh_checkpoint last_cp;
    sqlite3_stmt *ins_signed;

    /* The background check (its thread, its connection) and what it found. */
    pthread_t check_thread;
    bool check_started;
    sqlite3 *check_db; /* under lock: close interrupts a long quick_check through it */
    const char *health_state;
    char health_reason[256];
    _Atomic uint64_t rows_verified;
    _Atomic bool eid_h_damaged; /* an eid_h does not match its event id: lookups scan */

    _Atomic uint64_t st_written, st_commits, st_commit_ns, st_queued, st_last_seq;
    _Atomic uint64_t st_pending_reviews;
};

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
    wh_chain_row_hash(s->md, s->head, seq, at_ms, f, l, h);
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

/* The body f[WH_RF_BODY] (a JSON object) with ,"key":"<hex of dg>" added at its end, in
 * s->held_body. */
static bool append_digest(wh_store *s, const char *key, const uint8_t dg[32], const char **f,
                          uint32_t *l)
{
    char hx[65];
    wh_hex_encode(dg, 32, hx);
    wh_buf *hb = &s->held_body;
    hb->len = 0;
    wh_buf_append(hb, f[WH_RF_BODY], l[WH_RF_BODY] - 1);
    wh_buf_printf(hb, "%s\"%s\":\"%s\"}", l[WH_RF_BODY] > 2 ? "," : "", key, hx);
    if (hb->oom) return false;
    f[WH_RF_BODY] = hb->p;
    l[WH_RF_BODY] = (uint32_t)hb->len;
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
    bool digest = l[WH_RF_BODY] >= 2 && f[WH_RF_BODY][l[WH_RF_BODY] - 1] == '}';
    if (digest && r->kind == WH_REC_DECISION && r->hold) {
        /* {...,"review_sha256":"<hex>"}: the review copy written below, bound to this row
         * (its other columns are this row's own: see wh_chain_review_hash) */
        uint8_t dg[32];
        const char *f4[4] = {f[WH_RF_PLATFORM], f[WH_RF_USER_NAME], f[WH_RF_TEXT], f[WH_RF_EVENT]};
        uint32_t l4[4] = {l[WH_RF_PLATFORM], l[WH_RF_USER_NAME], l[WH_RF_TEXT], l[WH_RF_EVENT]};
        wh_chain_review_hash(s->md, f4, l4, dg);
        if (!append_digest(s, "review_sha256", dg, f, l)) return false;
    } else if (digest && r->kind == WH_REC_REVIEW) {
        /* {...,"resolved_sha256":"<hex>"}: the columns the UPDATE below sets */
        bool approve = l[WH_RF_ACTION] == 7 && !memcmp(f[WH_RF_ACTION], "approve", 7);
        const char *st = approve ? "approved" : "denied";
        const char *fr[3] = {st, f[WH_RF_MODERATOR], f[WH_RF_NOTE]};
        uint32_t lr[3] = {(uint32_t)strlen(st), l[WH_RF_MODERATOR], l[WH_RF_NOTE]};
        uint8_t dg[32];
        wh_chain_resolution_hash(s->md, fr, lr, true, at_ms, dg);
        if (!append_digest(s, "resolved_sha256", dg, f, l)) return false;
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
        sqlite3_bind_int64(st, 10, (sqlite3_int64)s->seq);
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

/* An item whose binding row retention is about to delete, with what its carry row says. */
typedef struct {
    char *eid;
    char *channel, *user;
    uint8_t item[32], res[32];
    char status[16];
    bool resolved;
    int64_t resolved_ms;
} carry_item;

static void carry_free(carry_item *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].eid), free(v[i].channel), free(v[i].user);
    free(v);
}

/* The items whose binding row (bound_seq) is older than keep, each checked against that row
 * first: an item that is not bound is not laundered into a carry row (it stays unbound, and
 * verify names it). */
static bool carry_collect(wh_store *s, int64_t keep, carry_item **out, size_t *nout)
{
    sqlite3_stmt *st;
    *out = NULL, *nout = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " WH_REVIEW_COLS " FROM review WHERE bound_seq IS NULL OR "
                           "bound_seq < ?",
                           -1, &st, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_int64(st, 1, keep);
    size_t n = 0, cap = 0;
    carry_item *v = NULL;
    bool ok = true;
    int rc;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        wh_review_row r;
        wh_chain_review_row_of(st, 0, &r);
        if (!r.c[WH_RC_EID]) continue;
        char why[160];
        wh_status bs = wh_chain_check_bound(s->db, s->md, &r, why, sizeof(why));
        if (bs != WH_OK) {
            if (bs == WH_ECORRUPT)
                fprintf(stderr,
                        "whiply: audit retention: review item %s is not carried: %s (the "
                        "database was changed outside whiply)\n",
                        r.c[WH_RC_EID], why);
            ok = bs == WH_ECORRUPT;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            carry_item *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                ok = false;
                break;
            }
            v = nv;
        }
        carry_item *c = &v[n++];
        memset(c, 0, sizeof(*c));
        uint8_t v1[32];
        wh_chain_review_row_digests(s->md, &r, c->item, c->res, v1);
        c->eid = strndup(r.c[WH_RC_EID], r.l[WH_RC_EID]);
        c->channel = r.c[WH_RC_CHANNEL] ? strndup(r.c[WH_RC_CHANNEL], r.l[WH_RC_CHANNEL]) : NULL;
        c->user = r.c[WH_RC_USER] ? strndup(r.c[WH_RC_USER], r.l[WH_RC_USER]) : NULL;
        snprintf(c->status, sizeof(c->status), "%s", r.c[WH_RC_STATUS] ? r.c[WH_RC_STATUS] : "");
        c->resolved = r.has_resolved;
        c->resolved_ms = r.resolved_ms;
        if (!c->eid) ok = false;
    }
    sqlite3_finalize(st);
    *out = v, *nout = n;
    return ok;
}

/* A carry row: the item digest and resolution digest of an item whose binding row is being
 * deleted, so that the item stays checkable against the chain (docs/api.md, retention). */
static bool carry_write(wh_store *s, int64_t now, const carry_item *c)
{
    char ih[65], rh[65], body[400];
    wh_hex_encode(c->item, 32, ih);
    wh_hex_encode(c->res, 32, rh);
    char res[32] = "null";
    if (c->resolved) snprintf(res, sizeof(res), "%lld", (long long)c->resolved_ms);
    int bl = snprintf(body, sizeof(body),
                      "{\"carry\":true,\"status\":\"%s\",\"resolved_ms\":%s,"
                      "\"item_sha256\":\"%s\",\"resolved_sha256\":\"%s\"}",
                      c->status, res, ih, rh);
    const char *f[5] = {c->eid, c->channel, c->user, "carry", body};
    uint32_t l[5] = {(uint32_t)strlen(c->eid), c->channel ? (uint32_t)strlen(c->channel) : 0,
                     c->user ? (uint32_t)strlen(c->user) : 0, 5, (uint32_t)bl};
    if (!append_row(s, now, WH_REC_CHECKPOINT, f, l)) return false;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE review SET bound_seq = ? WHERE event_id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)s->seq);
    sqlite3_bind_text(st, 2, c->eid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE;
}

/* Deletes resolved review items older than review_keep_ms, recording the cutoff in a row of
 * the chain (so that verify can tell their removal from a forged one); deletes the audit rows
 * written before now - audit_keep_ms (a prefix of the chain: rows are written in time order),
 * appends a checkpoint naming the first row kept and the hash it chains to, and a carry row
 * for each review item whose binding row was in that prefix. */
static bool retention(wh_store *s, int64_t now)
{
    if (s->o.review_keep_ms > 0) {
        sqlite3_stmt *st;
        int64_t before = now - s->o.review_keep_ms;
        if (sqlite3_prepare_v2(s->db,
                               "DELETE FROM review WHERE status != 'pending' AND resolved_ms < ?",
                               -1, &st, NULL) != SQLITE_OK)
            return false;
        sqlite3_bind_int64(st, 1, before);
        int rc = sqlite3_step(st);
        int deleted = sqlite3_changes(s->db);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return false;
        if (deleted > 0) {
            char body[160];
            int bl = snprintf(body, sizeof(body),
                              "{\"review_resolved_before_ms\":%lld,\"review_deleted\":%d}",
                              (long long)before, deleted);
            const char *f[5] = {NULL, NULL, NULL, "review_retention", body};
            uint32_t l[5] = {0, 0, 0, 16, (uint32_t)bl};
            if (!append_row(s, now, WH_REC_CHECKPOINT, f, l)) return false;
        }
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
    carry_item *carry = NULL;
    size_t ncarry = 0;
    bool ok = carry_collect(s, keep, &carry, &ncarry);
    if (!ok || !wh_chain_sql_exec(s->db, "UPDATE meta SET v = 1 WHERE k = 'retention'")) goto done;
    ok = false;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM audit WHERE seq < ?", -1, &st, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_int64(st, 1, keep);
    int rc = sqlite3_step(st);
    int deleted = sqlite3_changes(s->db);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE ||
        !wh_chain_sql_exec(s->db, "UPDATE meta SET v = 0 WHERE k = 'retention'"))
        goto done;
    char ah[65], body[256];
    wh_hex_encode(anchor, 32, ah);
    int bl = snprintf(body, sizeof(body),
                      "{\"deleted_before\":%lld,\"anchor\":\"%s\",\"deleted\":%d,"
                      "\"cutoff_ms\":%lld}",
                      (long long)keep, ah, deleted, (long long)cutoff);
    const char *f[5] = {NULL, NULL, NULL, NULL, body};
    uint32_t l[5] = {0, 0, 0, 0, (uint32_t)bl};
    ok = append_row(s, now, WH_REC_CHECKPOINT, f, l);
    for (size_t i = 0; ok && i < ncarry; i++)
        ok = carry_write(s, now, &carry[i]);
    /* A retention pass is signed at once (in this transaction): with --pubkey, verify accepts
     * a missing prefix only where a signature covers the checkpoint that accounts for it. */
    s->sign_force = true;
done:
    carry_free(carry, ncarry);
    return ok;
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

/* Whether the head is to be signed now: store.sign_rows rows since the last signature, or
 * store.sign_every with rows newer than it, or at start, after retention and at stop. */
static bool sign_due(const wh_store *s, int64_t now)
{
    if (!s->signer || s->seq == 0 || s->seq == s->signed_seq) return false;
    return s->sign_force || s->seq - s->signed_seq >= (uint64_t)s->o.sign_rows ||
           now - s->signed_ms >= s->o.sign_ms;
}

/* Signs the head inside the transaction that wrote it (the signature row commits with the
 * rows it covers, or not at all); *cp is published once the commit succeeded. Ed25519 takes
 * about 50 us: once per store.sign_rows rows it does not show in the commit time. Returns 1
 * when signed, 0 when the key failed (said; the rows commit unsigned), -1 when the insert
 * failed (the transaction fails). */
static int sign_head(wh_store *s, int64_t now, wh_checkpoint *cp)
{
    memset(cp, 0, sizeof(*cp));
    cp->seq = s->seq;
    cp->time_ms = now;
    memcpy(cp->head, s->head, 32);
    if (!wh_signer_sign(s->signer, cp)) {
        fprintf(stderr, "whiply: audit checkpoint %" PRIu64 " could not be signed\n", cp->seq);
        return 0;
    }
    wh_buf b;
    wh_buf_init(&b);
    wh_checkpoint_json(cp, &b);
    sqlite3_stmt *st = s->ins_signed;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)cp->seq);
    sqlite3_bind_text(st, 2, b.p, (int)b.len, SQLITE_STATIC);
    int rc = b.oom ? SQLITE_NOMEM : sqlite3_step(st);
    sqlite3_reset(st);
    wh_buf_free(&b);
    return rc == SQLITE_DONE ? 1 : -1;
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
            struct timespec ts = wh_deadline_ms(200);
            if (pthread_cond_timedwait(&s->wake, &s->lock, &ts) != 0) break;
        }
        bool stop = s->stop && s->q.n == 0;
        if (stop) s->sign_force = true; /* the last rows are signed before the store closes */
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
        bool signed_now = false;
        wh_checkpoint cp;
        if (!failed && (cur.n || run_ret || quota_rows.n || sign_due(s, now))) {
            uint64_t t0 = wh_mono_ns();
            uint64_t old_signed = s->signed_seq;
            bool ok = begin(s);
            for (uint32_t i = 0; ok && i < cur.n; i++)
                ok = write_rec(s, &cur, &cur.v[i], now);
            for (uint32_t i = 0; ok && i < quota_rows.n; i++)
                ok = quota_put(s, &quota_rows, &quota_rows.v[i]);
            if (ok && run_ret) {
                ok = retention(s, now);
                s->next_retention_ms = s->o.retention_every_ms ? now + s->o.retention_every_ms : 0;
            }
            if (ok && sign_due(s, now)) {
                int sr = sign_head(s, now, &cp);
                ok = sr >= 0;
                signed_now = sr > 0;
                /* a failing key is tried again after store.sign_every, not at every commit */
                s->signed_ms = now;
                s->sign_force = false;
                if (signed_now) s->signed_seq = s->seq;
            }
            if (ok) ok = wh_chain_sql_exec(s->db, "COMMIT");
            if (!ok) {
                fail(s, "a write failed");
                wh_chain_sql_exec(s->db, "ROLLBACK");
                s->signed_seq = old_signed;
                signed_now = false;
            } else {
                s->st_commits++;
                s->st_commit_ns += wh_mono_ns() - t0;
                s->st_written += cur.n;
                s->st_last_seq = s->seq;
            }
        }
        if (signed_now) {
            pthread_mutex_lock(&s->lock);
            s->last_cp = cp;
            s->have_cp = true;
            pthread_mutex_unlock(&s->lock);
            if (s->publisher) wh_publisher_put(s->publisher, &cp);
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
            struct timespec ts = wh_deadline_ms(1000);
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

/* ---- health and the background check (the walk is chain.c's) ---- */

static void set_damaged(wh_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_damaged(wh_store *s, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s->lock);
    bool first = strcmp(s->health_state, "damaged") != 0;
    if (first) {
        s->health_state = "damaged";
        snprintf(s->health_reason, sizeof(s->health_reason), "%s", msg);
    }
    pthread_mutex_unlock(&s->lock);
    if (first) fprintf(stderr, "whiply: audit trail damaged: %s\n", msg);
}

static bool stopping(wh_store *s)
{
    pthread_mutex_lock(&s->lock);
    bool stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

#define CHECK_CHUNK 8192 /* rows per read transaction of the background walk */

/* The background check: the whole chain walked (in chunks, each its own short read
 * transaction, so that the WAL is never held back for the length of the walk), then PRAGMA
 * quick_check, at nice 19 on a connection of its own. */
static void *check_main(void *arg)
{
    wh_store *s = arg;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    wh_chain_walker w = {.md = EVP_MD_CTX_new()};
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    if (!w.md || sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
                     SQLITE_OK) {
        set_damaged(s, "the background check cannot open the database");
        goto done;
    }
    sqlite3_busy_timeout(db, 5000);
    pthread_mutex_lock(&s->lock);
    s->check_db = s->stop ? NULL : db;
    pthread_mutex_unlock(&s->lock);
    if (sqlite3_prepare_v2(db,
                           "SELECT " WH_WALK_COLS " FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        set_damaged(s, "the background check cannot read the audit table: %s", sqlite3_errmsg(db));
        goto done;
    }
    uint64_t t0 = wh_mono_ns();
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop) goto done;
        sqlite3_bind_int64(st, 1, w.rows ? w.prev_seq : 0);
        sqlite3_bind_int(st, 2, CHECK_CHUNK);
        int n = 0, rc, bad = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *f[6];
            uint32_t l[6];
            int64_t at;
            n++;
            if ((bad = wh_chain_walk_row(&w, st, f, l, &at)) != 0) break;
            atomic_fetch_add(&s->rows_verified, 1);
        }
        sqlite3_reset(st);
        if (bad) {
            /* retention may have deleted the rows after the walk's place meanwhile: start over
             * from the new first row */
            int64_t lo = wh_chain_sql_i64(db, "SELECT min(seq) FROM audit", -1);
            if (bad == 1 && lo > w.prev_seq + 1) {
                EVP_MD_CTX *md = w.md;
                w = (wh_chain_walker){.md = md};
                atomic_store(&s->rows_verified, 0);
                continue;
            }
            if (bad == 2) atomic_store(&s->eid_h_damaged, true);
            set_damaged(s, "%s", w.why);
            goto done;
        }
        if (rc != SQLITE_DONE) {
            if (!stopping(s))
                set_damaged(s, "reading the audit table failed: %s", sqlite3_errmsg(db));
            goto done;
        }
        if (n < CHECK_CHUNK) break;
    }
    if (wh_chain_walk_end(&w)) {
        set_damaged(s, "%s", w.why);
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    char qc[200] = "";
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(qc, sizeof(qc), "%s", sqlite3_column_text(st, 0));
    else
        snprintf(qc, sizeof(qc), "%s", sqlite3_errmsg(db));
    if (strcmp(qc, "ok") != 0) {
        if (!stopping(s)) set_damaged(s, "PRAGMA quick_check: %s", qc);
        goto done;
    }
    pthread_mutex_lock(&s->lock);
    if (!strcmp(s->health_state, "checking")) s->health_state = "ok";
    pthread_mutex_unlock(&s->lock);
    fprintf(stderr, "whiply: audit check: ok: %llu rows chain, quick_check ok (%.1f s)\n",
            (unsigned long long)atomic_load(&s->rows_verified), (double)(wh_mono_ns() - t0) * 1e-9);
done:
    pthread_mutex_lock(&s->lock);
    s->check_db = NULL;
    pthread_mutex_unlock(&s->lock);
    sqlite3_finalize(st);
    sqlite3_close(db);
    EVP_MD_CTX_free(w.md);
    return NULL;
}

void wh_store_health_get(wh_store *s, wh_store_health *out)
{
    pthread_mutex_lock(&s->lock);
    out->state = s->health_state;
    snprintf(out->reason, sizeof(out->reason), "%s", s->health_reason);
    out->signed_seq = s->have_cp ? s->last_cp.seq : 0;
    pthread_mutex_unlock(&s->lock);
    out->rows_verified = atomic_load(&s->rows_verified);
}

wh_status wh_store_checkpoint_json(wh_store *s, wh_buf *out)
{
    pthread_mutex_lock(&s->lock);
    bool have = s->have_cp && s->signer;
    wh_checkpoint cp = s->last_cp;
    pthread_mutex_unlock(&s->lock);
    if (!have) return WH_EINVAL;
    char pub[65];
    wh_hex_encode(wh_signer_pubkey(s->signer), 32, pub);
    wh_buf_puts(out, "{\"checkpoint\":");
    wh_checkpoint_json(&cp, out);
    wh_buf_printf(out, ",\"public_key\":\"%s\",\"algorithm\":\"ed25519\"}", pub);
    return WH_OK;
}

/* The newest rows, checked at start (newest first, each against the one before it): cheap
 * whatever the trail's size. */
#define START_ROWS 64

static bool start_tail_check(wh_store *s, char *why, size_t whylen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT " WH_WALK_COLS " FROM audit ORDER BY seq DESC LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, whylen, "the audit table cannot be read: %s", sqlite3_errmsg(s->db));
        return false;
    }
    sqlite3_bind_int(st, 1, START_ROWS);
    uint8_t want[32];
    int64_t want_seq = -1;
    bool ok = true;
    int rc;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *f[6];
        uint32_t l[6];
        int64_t at, seq = sqlite3_column_int64(st, 0);
        if (!wh_chain_row_self_check(s->md, st, f, l, &at)) {
            snprintf(why, whylen, "audit row %lld does not match its hash", (long long)seq);
            ok = false;
        } else if (want_seq >= 0 &&
                   (seq != want_seq || memcmp(sqlite3_column_blob(st, 9), want, 32) != 0)) {
            snprintf(why, whylen, "audit row %lld does not chain to row %lld",
                     (long long)want_seq + 1, (long long)want_seq);
            ok = false;
        } else if (f[1] && sqlite3_column_int64(st, 10) != (int64_t)XXH3_64bits(f[1], l[1])) {
            snprintf(why, whylen, "audit row %lld has a wrong eid_h", (long long)seq);
            ok = false;
        } else {
            memcpy(want, sqlite3_column_blob(st, 8), 32);
            want_seq = seq - 1;
        }
    }
    if (ok && rc != SQLITE_DONE) {
        snprintf(why, whylen, "the audit table cannot be read: %s", sqlite3_errmsg(s->db));
        ok = false;
    }
    sqlite3_finalize(st);
    return ok;
}

/* The trail against the newest signed checkpoint of the checkpoints file: a trail that is
 * empty, shorter, or holds another hash at that row was replaced, cut or damaged. */
static bool start_cp_check(wh_store *s, char *why, size_t whylen)
{
    wh_checkpoint cp;
    wh_error ce;
    int found = wh_checkpoint_last_in_file(s->cp_path, &cp, &ce);
    const char *err = ce.message;
    if (found == 0) return true;
    if (found < 0) {
        snprintf(why, whylen, "%.600s", err);
        return false;
    }
    if (!wh_checkpoint_verify(wh_signer_pubkey(s->signer), &cp)) {
        snprintf(why, whylen,
                 "the last checkpoint in %s (row %" PRIu64 ") does not verify with the key %s",
                 s->cp_path, cp.seq, s->key_path);
        return false;
    }
    if (cp.seq > s->seq) {
        if (s->seq == 0)
            snprintf(why, whylen,
                     "the audit trail is empty, but %s shows a signed trail of %" PRIu64
                     " rows: the database was lost or replaced",
                     s->cp_path, cp.seq);
        else
            snprintf(why, whylen,
                     "the audit trail ends at row %" PRIu64 ", but %s shows a signed trail of "
                     "%" PRIu64 " rows: rows were cut from its end or the database replaced",
                     s->seq, s->cp_path, cp.seq);
        return false;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT hash FROM audit WHERE seq = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        snprintf(why, whylen, "the audit table cannot be read: %s", sqlite3_errmsg(s->db));
        return false;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)cp.seq);
    bool ok = true;
    if (sqlite3_step(st) == SQLITE_ROW &&
        (sqlite3_column_bytes(st, 0) != 32 || memcmp(sqlite3_column_blob(st, 0), cp.head, 32))) {
        snprintf(why, whylen,
                 "audit row %" PRIu64 " does not match the signed checkpoint in %s: the trail "
                 "was rewritten or damaged",
                 cp.seq, s->cp_path);
        ok = false;
    }
    /* a row deleted by retention since is fine: the chain after it is checked by verify */
    sqlite3_finalize(st);
    return ok;
}

static bool prepare(wh_store *s)
{
    return sqlite3_prepare_v3(s->db,
                              "INSERT INTO audit(seq, at_ms, kind, event_id, channel, user_id, "
                              "action, body, prev, hash, eid_h) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                              -1, SQLITE_PREPARE_PERSISTENT, &s->ins_audit, NULL) == SQLITE_OK &&
           sqlite3_prepare_v3(s->db,
                              "INSERT OR IGNORE INTO review(event_id, platform, channel, "
                              "user_id, user_name, text, event, decision, created_ms, "
                              "bound_seq) VALUES(?,?,?,?,?,?,?,?,?,?)",
                              -1, SQLITE_PREPARE_PERSISTENT, &s->ins_review, NULL) == SQLITE_OK &&
           sqlite3_prepare_v3(s->db,
                              "UPDATE review SET status = ?, moderator = ?, note = ?, "
                              "resolved_ms = ? WHERE event_id = ? AND status = 'pending'",
                              -1, SQLITE_PREPARE_PERSISTENT, &s->upd_review, NULL) == SQLITE_OK &&
           sqlite3_prepare_v3(s->db,
                              "INSERT INTO quota(key, period, window_ms, used) VALUES(?,?,?,?) "
                              "ON CONFLICT(key, period) DO UPDATE SET window_ms = "
                              "excluded.window_ms, used = excluded.used",
                              -1, SQLITE_PREPARE_PERSISTENT, &s->put_quota, NULL) == SQLITE_OK &&
           sqlite3_prepare_v3(s->db, "INSERT INTO signed_checkpoint(seq, line) VALUES(?,?)", -1,
                              SQLITE_PREPARE_PERSISTENT, &s->ins_signed, NULL) == SQLITE_OK;
}

/* A file beside the data folder for "auto" (DIR-suffix), none for "none" or NULL. */
static char *side_path(const char *opt, const char *dir, const char *suffix)
{
    if (!opt || !*opt || !strcmp(opt, "none")) return NULL;
    char *p = NULL;
    if (strcmp(opt, "auto") != 0) return strdup(opt);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (asprintf(&p, "%.*s-%s", (int)n, dir, suffix) < 0) p = NULL;
    return p;
}

/* The newest signed checkpoint in the database: where signing goes on from. */
static void load_signed(wh_store *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT line FROM signed_checkpoint ORDER BY id DESC LIMIT 1", -1,
                           &st, NULL) != SQLITE_OK)
        return;
    wh_checkpoint cp;
    if (sqlite3_step(st) == SQLITE_ROW &&
        wh_checkpoint_parse((const char *)sqlite3_column_text(st, 0),
                            (size_t)sqlite3_column_bytes(st, 0), &cp) &&
        wh_checkpoint_verify(wh_signer_pubkey(s->signer), &cp) && cp.seq <= s->seq) {
        s->signed_seq = cp.seq;
        s->signed_ms = cp.time_ms;
        s->last_cp = cp;
        s->have_cp = true;
    }
    sqlite3_finalize(st);
}

/* Signing: the key (made when missing), the publisher, and the start checks against the
 * checkpoints file. false with err set when the daemon must not start. */
static bool signing_open(wh_store *s, const char *dir, char *err, size_t errlen)
{
    char why[700];
    bool tail_ok = start_tail_check(s, why, sizeof(why));
    if (!tail_ok) {
        if (!s->o.start_afresh) {
            snprintf(err, errlen,
                     "the audit trail in %s is damaged: %s. Restore it from a backup, or start "
                     "with --start-afresh to write on (the damage stays, and /healthz says so)",
                     s->path, why);
            return false;
        }
        set_damaged(s, "%s", why);
    }
    s->key_path = side_path(s->o.signing_key, dir, "signing.key");
    s->cp_path = side_path(s->o.checkpoints, dir, "checkpoints.ndjson");
    const char *u = s->o.checkpoint_url;
    s->url = u && *u && strcmp(u, "none") != 0 ? strdup(u) : NULL;
    if (!s->key_path) return true;
    bool created;
    wh_error se;
    s->signer = wh_signer_open(s->key_path, &created, &se);
    if (!s->signer) snprintf(err, errlen, "%s", se.message);
    if (!s->signer) return false;
    char pub[65];
    wh_hex_encode(wh_signer_pubkey(s->signer), 32, pub);
    fprintf(stderr,
            "whiply: audit checkpoints are signed with %s%s; public key ed25519:%s (also in "
            "%s.pub)\n",
            s->key_path, created ? " (made now, mode 0600: keep a copy of the .pub elsewhere)" : "",
            pub, s->key_path);
    load_signed(s);
    if (s->cp_path && !start_cp_check(s, why, sizeof(why))) {
        if (!s->o.start_afresh) {
            snprintf(err, errlen,
                     "%s. Refusing to start: restore the database, or start with "
                     "--start-afresh to begin a new checkpoint file (the old one is kept)",
                     why);
            return false;
        }
        char aside[4300];
        snprintf(aside, sizeof(aside), "%s.replaced-%lld", s->cp_path, (long long)wh_now_ms());
        if (rename(s->cp_path, aside) != 0) {
            snprintf(err, errlen, "cannot move %s aside: %s", s->cp_path, strerror(errno));
            return false;
        }
        fprintf(stderr, "whiply: --start-afresh: %s; the old checkpoints are now in %s\n", why,
                aside);
        s->signed_seq = 0; /* sign the trail as it is now, at once */
    }
    s->sign_force = true;
    if (s->cp_path || s->url) {
        char wal[4200];
        snprintf(wal, sizeof(wal), "%s-wal", s->path);
        wh_error pe;
        s->publisher = wh_publisher_start(s->cp_path, s->url, s->o.sync_full ? NULL : wal, &pe);
        if (!s->publisher) {
            snprintf(err, errlen, "%s", pe.message);
            return false;
        }
    }
    return true;
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

static void store_free_common(wh_store *s);

WH_NOIPA static wh_store *store_open_buf(const char *dir, const wh_store_opts *o, char *err,
                                         size_t errlen)
{
    wh_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->health_state = "checking";
    pthread_mutex_init(&s->lock, NULL);
    for (int i = 0; i < RD_POOL; i++)
        pthread_mutex_init(&s->pool[i].lock, NULL);
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
    /* bound_seq came with signed checkpoints: a database from before gets the column (NULL:
     * such items are found through their hold's event id). */
    if (wh_chain_sql_exec(s->db, pragmas) && wh_chain_sql_exec(s->db, schema) &&
        !wh_chain_sql_exec(s->db, "SELECT bound_seq FROM review LIMIT 0"))
        wh_chain_sql_exec(s->db, "ALTER TABLE review ADD COLUMN bound_seq INTEGER");
    if (!wh_chain_sql_exec(s->db, pragmas) || !wh_chain_sql_exec(s->db, schema) || !prepare(s) ||
        !load_head(s)) {
        snprintf(err, errlen, "cannot set up %s: %s", s->path, sqlite3_errmsg(s->db));
        goto fail;
    }
    /* A crash in the middle of a retention pass rolls it back, flag included; a flag left
     * set some other way is cleared. */
    wh_chain_sql_exec(s->db, "UPDATE meta SET v = 0 WHERE k = 'retention'");
    if (o->preallocate > 0) wal_preallocate(s);
    if (sqlite3_open_v2(s->path, &s->rd, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s for reading", s->path);
        goto fail;
    }
    sqlite3_busy_timeout(s->rd, 5000);
    for (int i = 0; i < RD_POOL; i++) {
        if (sqlite3_open_v2(s->path, &s->pool[i].db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK ||
            !(s->pool[i].md = EVP_MD_CTX_new())) {
            snprintf(err, errlen, "cannot open %s for reading", s->path);
            goto fail;
        }
        sqlite3_busy_timeout(s->pool[i].db, 5000);
    }
    if (!signing_open(s, dir, err, errlen)) goto fail;
    if (o->retention_every_ms && (o->audit_keep_ms || o->review_keep_ms))
        s->next_retention_ms = wh_now_ms() + o->retention_every_ms;
    pthread_cond_init(&s->ckpt_wake, NULL);
    sqlite3_wal_hook(s->db, wal_hook, s);
    if (pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) != 0) {
        snprintf(err, errlen, "cannot start the checkpoint thread");
        goto fail;
    }
    s->ckpt_started = true;
    if (pthread_create(&s->check_thread, NULL, check_main, s) != 0) {
        snprintf(err, errlen, "cannot start the audit check");
        goto fail;
    }
    s->check_started = true;
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
    if (s->check_started) pthread_join(s->check_thread, NULL); /* it saw stop above */
    store_free_common(s);
    return NULL;
}

/* What open and close both release (the threads are stopped). */
static void store_free_common(wh_store *s)
{
    wh_publisher_stop(s->publisher);
    wh_signer_free(s->signer);
    free(s->key_path), free(s->cp_path), free(s->url);
    for (int i = 0; i < RD_POOL; i++) {
        sqlite3_close(s->pool[i].db);
        EVP_MD_CTX_free(s->pool[i].md);
        pthread_mutex_destroy(&s->pool[i].lock);
    }
    sqlite3_finalize(s->ins_signed);
    if (s->rd) sqlite3_close(s->rd);
    sqlite3_finalize(s->ins_audit);
    sqlite3_finalize(s->ins_review);
    sqlite3_finalize(s->upd_review);
    sqlite3_finalize(s->put_quota);
    if (s->db) sqlite3_close(s->db);
    EVP_MD_CTX_free(s->md);
    wh_buf_free(&s->held_body);
    wh_rec_batch_free(&s->q);
    free(s->error);
    free(s->path);
    free(s);
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
    pthread_mutex_lock(&s->lock);
    if (s->check_db) sqlite3_interrupt(s->check_db);
    pthread_mutex_unlock(&s->lock);
    if (s->check_started) pthread_join(s->check_thread, NULL);
    pthread_cond_destroy(&s->ckpt_wake);
    /* the last checkpoint reaches its file before the WAL is folded in */
    wh_publisher_stop(s->publisher);
    s->publisher = NULL;
    sqlite3_finalize(s->ins_audit), s->ins_audit = NULL;
    sqlite3_finalize(s->ins_review), s->ins_review = NULL;
    sqlite3_finalize(s->upd_review), s->upd_review = NULL;
    sqlite3_finalize(s->put_quota), s->put_quota = NULL;
    sqlite3_finalize(s->ins_signed), s->ins_signed = NULL;
    wh_chain_sql_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)");
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->rd_lock);
    pthread_cond_destroy(&s->wake);
    store_free_common(s);
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

/* The first row written at or after since_ms. Rows are written in time order, so a binary
 * search over seq (a few lookups by primary key) replaces an index on at_ms. */
static int64_t seq_since(sqlite3 *db, int64_t since_ms)
{
    int64_t lo = wh_chain_sql_i64(db, "SELECT min(seq) FROM audit", -1);
    int64_t hi = wh_chain_sql_i64(db, "SELECT max(seq) FROM audit", -1) + 1;
    if (lo < 0) return 0;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        /* the first row at or after mid (retention leaves no holes, but be safe) */
        int64_t at = wh_chain_sql_i64(
            db, "SELECT at_ms FROM audit WHERE seq >= ? ORDER BY seq LIMIT 1", mid);
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

/* A connection of the point-lookup pool: a free one if any, else one in turn. */
static unsigned pool_take(wh_store *s)
{
    for (unsigned i = 0; i < RD_POOL; i++)
        if (pthread_mutex_trylock(&s->pool[i].lock) == 0) return i;
    unsigned i = atomic_fetch_add(&s->pool_next, 1) % RD_POOL;
    pthread_mutex_lock(&s->pool[i].lock);
    return i;
}

static void pool_give(wh_store *s, unsigned i)
{
    pthread_mutex_unlock(&s->pool[i].lock);
}

/* The first row's column 0 (a body) appended to out: WH_OK, WH_EINVAL when there is no
 * row, WH_EIO when the read failed. */
static wh_status first_body(sqlite3_stmt *st, wh_buf *out)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        wh_buf_append(out, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
        return WH_OK;
    }
    return rc == SQLITE_DONE ? WH_EINVAL : WH_EIO;
}

wh_status wh_store_decision(wh_store *s, const char *event_id, wh_buf *out)
{
    unsigned pi = pool_take(s);
    sqlite3 *db = s->pool[pi].db;
    sqlite3_stmt *st;
    wh_status ret = WH_EIO;
    int64_t lo = wh_chain_sql_i64(db, "SELECT min(seq) FROM audit", -1);
    int64_t hi = wh_chain_sql_i64(db, "SELECT max(seq) FROM audit", -1);
    if (lo < 0) {
        pool_give(s, pi);
        return WH_EINVAL;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT body FROM audit WHERE (seq >> 16) = ?1 AND eid_h = ?2 AND "
                           "event_id = ?3 AND kind = 'decision' ORDER BY seq DESC LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        ret = WH_EINVAL;
        int64_t h = eid_hash(event_id, strlen(event_id));
        for (int64_t b = hi >> 16; b >= lo >> 16 && ret == WH_EINVAL; b--) {
            sqlite3_bind_int64(st, 1, b);
            sqlite3_bind_int64(st, 2, h);
            sqlite3_bind_text(st, 3, event_id, -1, SQLITE_STATIC);
            ret = first_body(st, out);
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
    }
    /* eid_h is outside the hash: once the background check found one that does not match
     * its event id, a miss through the index is confirmed by a scan (slow, but not fooled) */
    if (ret == WH_EINVAL && atomic_load(&s->eid_h_damaged) &&
        sqlite3_prepare_v2(db,
                           "SELECT body FROM audit WHERE event_id = ? AND kind = 'decision' "
                           "ORDER BY seq DESC LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
        ret = first_body(st, out);
        sqlite3_finalize(st);
    }
    pool_give(s, pi);
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
    unsigned pi = pool_take(s);
    sqlite3 *db = s->pool[pi].db;
    sqlite3_stmt *st;
    wh_status ret = WH_EIO;
    char why[200] = "";
    /* One read transaction for the item and the row that vouches for it. */
    if (wh_chain_sql_exec(db, "BEGIN") &&
        sqlite3_prepare_v2(db, "SELECT " WH_REVIEW_COLS " FROM review WHERE event_id = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            wh_review_row r;
            wh_chain_review_row_of(st, 0, &r);
            ret = wh_chain_check_bound(db, s->pool[pi].md, &r, why, sizeof(why));
            if (ret == WH_OK) {
                snprintf(it->status, sizeof(it->status), "%s",
                         r.c[WH_RC_STATUS] ? r.c[WH_RC_STATUS] : "");
                it->platform = col_dup(st, WH_RC_PLATFORM);
                it->channel = col_dup(st, WH_RC_CHANNEL);
                it->user = col_dup(st, WH_RC_USER);
                it->event = col_dup(st, WH_RC_EVENT);
                it->decision = col_dup(st, WH_RC_DECISION);
            }
        } else if (rc == SQLITE_DONE) {
            ret = WH_EINVAL;
        }
        sqlite3_finalize(st);
    }
    wh_chain_sql_exec(db, "COMMIT");
    pool_give(s, pi);
    if (ret == WH_ECORRUPT)
        set_damaged(s, "review item %s is not bound to the audit trail: %s", event_id, why);
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

wh_store *wh_store_open(const char *dir, const wh_store_opts *o, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    wh_store *s = store_open_buf(dir, o, e->message, sizeof(e->message));
    e->code = s ? WH_OK : WH_EIO;
    return s;
}
