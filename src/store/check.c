/* check.c - the trail's checks at start and in the background (the walk is chain.c's). */
#define _GNU_SOURCE
#include "store_impl.h"

#include "chain.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

void wh_store_set_damaged(wh_store *s, const char *fmt, ...)
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
void *wh_store_check_main(void *arg)
{
    wh_store *s = arg;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    wh_chain_walker w = {.md = EVP_MD_CTX_new()};
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    if (!w.md || sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
                     SQLITE_OK) {
        wh_store_set_damaged(s, "the background check cannot open the database");
        goto done;
    }
    sqlite3_busy_timeout(db, 5000);
    pthread_mutex_lock(&s->lock);
    s->check_db = s->stop ? NULL : db;
    pthread_mutex_unlock(&s->lock);
    if (sqlite3_prepare_v2(db,
                           "SELECT " WH_WALK_COLS " FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        wh_store_set_damaged(s, "the background check cannot read the audit table: %s",
                             sqlite3_errmsg(db));
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
            wh_store_set_damaged(s, "%s", w.why);
            goto done;
        }
        if (rc != SQLITE_DONE) {
            if (!stopping(s))
                wh_store_set_damaged(s, "reading the audit table failed: %s", sqlite3_errmsg(db));
            goto done;
        }
        if (n < CHECK_CHUNK) break;
    }
    if (wh_chain_walk_end(&w)) {
        wh_store_set_damaged(s, "%s", w.why);
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
        if (!stopping(s)) wh_store_set_damaged(s, "PRAGMA quick_check: %s", qc);
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

/* The newest rows, checked at start (newest first, each against the one before it): cheap
 * whatever the trail's size. */
#define START_ROWS 64

bool wh_store_start_tail_check(wh_store *s, char *why, size_t whylen)
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
bool wh_store_start_cp_check(wh_store *s, char *why, size_t whylen)
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
