/* writer.c - the audit writer thread: rows, review items, quotas, signing, group commit. */
#define _GNU_SOURCE
#include "store_impl.h"

#include "chain.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

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
    wh_store_notice *due = wh_store_take_notices(s);
    pthread_mutex_unlock(&s->lock);
    wh_store_call_notices(due, false);
}

int64_t wh_store_eid_hash(const char *id, size_t n)
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
bool wh_store_append_row(wh_store *s, int64_t at_ms, wh_rec_kind kind, const char *const *f6,
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
        sqlite3_bind_int64(st, 11, wh_store_eid_hash(f[1], l[1]));
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
    if (!wh_store_append_row(s, at_ms, r->kind, f, l)) return false;
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
    /* what the row causes or settles in the outbox, in the same transaction */
    if (f[WH_RF_OUTCOME] && !wh_store_outcome_apply(s, f[WH_RF_OUTCOME], l[WH_RF_OUTCOME], at_ms))
        return false;
    if (f[WH_RF_OPS] && !wh_store_ops_insert(s, f[WH_RF_OPS], l[WH_RF_OPS], at_ms)) return false;
    return true;
}

/* The operations a signed checkpoint causes (webhooks), inserted in its transaction. */
static bool checkpoint_ops(wh_store *s, const wh_checkpoint *cp, int64_t now)
{
    wh_buf json, ops;
    wh_buf_init(&json);
    wh_buf_init(&ops);
    wh_checkpoint_json(cp, &json);
    pthread_mutex_lock(&s->hook_lock);
    if (s->cp_fn && !json.oom) s->cp_fn(s->cp_ud, json.p, json.len, &ops);
    pthread_mutex_unlock(&s->hook_lock);
    bool ok = json.oom || ops.oom || !ops.len || wh_store_ops_insert(s, ops.p, ops.len, now);
    wh_buf_free(&json);
    wh_buf_free(&ops);
    return ok;
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

void *wh_store_writer_main(void *arg)
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
            s->ops_added = 0;
            bool ok = begin(s);
            for (uint32_t i = 0; ok && i < cur.n; i++)
                ok = write_rec(s, &cur, &cur.v[i], now);
            for (uint32_t i = 0; ok && i < quota_rows.n; i++)
                ok = quota_put(s, &quota_rows, &quota_rows.v[i]);
            if (ok && run_ret) {
                ok = wh_store_retention(s, now);
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
                if (signed_now) ok = checkpoint_ops(s, &cp, now);
            }
            if (ok) ok = wh_chain_sql_exec(s->db, "COMMIT");
            if (!ok) {
                fail(s, "a write failed");
                wh_chain_sql_exec(s->db, "ROLLBACK");
                s->signed_seq = old_signed;
                signed_now = false;
                s->ops_added = 0;
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
        wh_store_notice *due = wh_store_take_notices(s);
        bool healthy = !s->error;
        bool ops_due = s->ops_added > 0;
        s->ops_added = 0;
        pthread_mutex_unlock(&s->lock);
        wh_store_call_notices(due, healthy);
        if (ops_due) { /* new operations are due: wake the outbox's workers */
            pthread_mutex_lock(&s->hook_lock);
            if (s->ops_fn) s->ops_fn(s->ops_ud);
            pthread_mutex_unlock(&s->hook_lock);
        }
        wh_rec_batch_reset(&cur);
        if (stop) break;
        pthread_mutex_lock(&s->lock);
        bool restart = s->restart_due;
        s->restart_due = false;
        pthread_mutex_unlock(&s->lock);
        if (restart && healthy) wh_store_wal_restart(s);
    }
    wh_rec_batch_free(&cur);
    wh_rec_batch_free(&quota_rows);
    return NULL;
}
