/* store_impl.h - what the store's files share (not an interface): the store record and the
 * calls one file makes into another. Callers use store.h.
 *
 *   store.c      open and close: the schema, the connections, signing's setup, the threads
 *   queue.c      record batches; the queue producers submit to, tickets, notices, waiting
 *   writer.c     the writer thread: rows, review items, quota counters, signing, commits
 *   retention.c  retention passes, with their checkpoint and carry rows
 *   wal.c        the WAL: busy waits, disk written ahead, the checkpoint thread, RESTART
 *   check.c      the trail's checks at start and in the background, health
 *   query.c      reads: decisions, the review queue, quota counters
 *   outbox.c     the action outbox's table: operations in records, their rows, reads
 *
 * chain.c (chain.h) is the chain's definition, shared with `whiply audit verify` (verify.c);
 * sign.c (sign.h) signs checkpoints and publishes them. */
#ifndef WH_STORE_IMPL_H
#define WH_STORE_IMPL_H

#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "sign.h"
#include "store.h"

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
    int page_size;    /* the database's: the WAL's thresholds are in bytes (wal.c) */
    int id_bits;      /* the event-id index's bucket width: seq >> id_bits (store.c) */
    bool restart_due; /* the WAL passed CKPT_HARD: the writer restarts it after its commit */

    /* writer's own */
    sqlite3_stmt *ins_audit, *ins_review, *upd_review, *put_quota, *ins_op, *upd_op;
    uint32_t ops_added; /* operations inserted or made due by the current transaction */
    /* The outbox's hooks, set and called under hook_lock (so that setting NULL waits for a
     * call in progress, and the outbox is never called once it has unset them). */
    pthread_mutex_t hook_lock;
    wh_store_ops_fn ops_fn; /* told after a commit that made operations due */
    void *ops_ud;
    wh_store_cp_fn cp_fn; /* the operations a signed checkpoint causes */
    void *cp_ud;
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

/* ---- queue.c ---- */

/* Takes the notices whose rows are committed (all of them after a failure) off the list,
 * under s->lock; wh_store_call_notices calls them once the lock is released. */
wh_store_notice *wh_store_take_notices(wh_store *s);
void wh_store_call_notices(wh_store_notice *due, bool ok);

/* ---- writer.c ---- */

void *wh_store_writer_main(void *arg); /* the writer thread; arg: the store */
/* eid_h: XXH3 of an event id (an index key, outside the hash). */
int64_t wh_store_eid_hash(const char *id, size_t n);
/* Appends one audit row (writer thread, inside a transaction); f6, l6: event_id, channel,
 * user_id, action, body. */
bool wh_store_append_row(wh_store *s, int64_t at_ms, wh_rec_kind kind, const char *const *f6,
                         const uint32_t *l6);

/* ---- query.c ---- */

/* A connection of the point-lookup pool (a free one if any, else one in turn), and back. */
unsigned wh_store_pool_take(wh_store *s);
void wh_store_pool_give(wh_store *s, unsigned i);

/* ---- outbox.c (writer thread, inside its transaction) ---- */

/* Inserts the encoded operations of a record (INSERT OR IGNORE), bound to row s->seq. */
bool wh_store_ops_insert(wh_store *s, const char *p, size_t n, int64_t now);
/* Applies an encoded outcome to its operation's row. */
bool wh_store_outcome_apply(wh_store *s, const char *p, size_t n, int64_t now);

/* ---- retention.c ---- */

/* A retention pass (writer thread, inside its transaction). */
bool wh_store_retention(wh_store *s, int64_t now);

/* ---- wal.c ---- */

int wh_store_busy_short(void *ud, int n); /* the busy handler of the connections that write */
void wh_store_chunk_size(sqlite3 *db, int64_t bytes);
void wh_store_wal_preallocate(const wh_store *s);
void wh_store_wal_restart(wh_store *s);
int wh_store_wal_hook(void *ud, sqlite3 *db, const char *name, int pages);
void *wh_store_ckpt_main(void *arg); /* the checkpoint thread; arg: the store */

/* ---- check.c ---- */

/* Sets the health to "damaged" with the reason (the first one is kept and logged). */
void wh_store_set_damaged(wh_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *wh_store_check_main(void *arg); /* the background check; arg: the store */
/* The start checks: false with why set when the trail does not pass. */
bool wh_store_start_tail_check(wh_store *s, char *why, size_t whylen);
bool wh_store_start_cp_check(wh_store *s, char *why, size_t whylen);

#endif
