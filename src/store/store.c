/* store.c - open and close: the schema, connections, signing's setup, threads (store_impl.h). */
#define _GNU_SOURCE
#include "store_impl.h"

#include "chain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    /* Event ids are looked up through (seq >> 14, XXH3 of the id): new entries all land in
     * the newest bucket's few pages, which stay cached and are checkpointed once for many
     * rows. An index on event_id itself puts each row on a random leaf page of a B-tree
     * that grows with the audit: measured at 6M rows, 171k events/s and a 3 ms p99 for
     * single events with it, 408k and 1.6 ms without any (docs/architecture.md). Within a
     * bucket the hashes are random, so a commit rewrites most pages of the newest bucket:
     * with 16 KiB pages and 1.5M rows, plain inserts cost 3.5-3.9 us of CPU a row with
     * buckets of 65,536 rows, 2.8 with 16,384, 2.7 with 8,192; a lookup of an unknown id
     * probes every bucket, newest first: 0.23, 0.84 and 1.9 ms (bench/RESULTS.md).
     * Databases made before keep their (seq >> 16): readers take the width from the index
     * (wh_chain_id_bits). */
    "CREATE INDEX IF NOT EXISTS audit_event_h ON audit((seq >> 14), eid_h);"
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
    "  used INTEGER NOT NULL, PRIMARY KEY(key, period));"
    /* The action outbox (store.h): one row per operation, inserted by the transaction of the
     * audit row that causes it. due_at is set while it is to be carried out (pending, retry)
     * and NULL once final, so the workers' scan and the counts use small partial indexes
     * however many operations are done. */
    "CREATE TABLE IF NOT EXISTS outbox("
    "  id TEXT PRIMARY KEY, kind TEXT NOT NULL, platform TEXT NOT NULL, channel TEXT,"
    "  user_id TEXT, user_name TEXT, event_id TEXT, msg_id TEXT, message TEXT, reason TEXT,"
    "  rule TEXT, mode TEXT, payload TEXT, duration_s INTEGER,"
    "  status TEXT NOT NULL DEFAULT 'pending', detail TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
    "  due_at INTEGER, created_ms INTEGER, updated_ms INTEGER,"
    "  seq INTEGER);" /* the audit row that caused it */
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(platform, due_at) WHERE due_at IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS outbox_dead ON outbox(platform) WHERE status = 'dead';";

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
                              SQLITE_PREPARE_PERSISTENT, &s->ins_signed, NULL) == SQLITE_OK &&
           sqlite3_prepare_v3(
               s->db,
               "INSERT OR IGNORE INTO outbox(id, kind, platform, channel, user_id, "
               "user_name, event_id, msg_id, message, reason, rule, mode, payload, "
               "duration_s, created_ms, updated_ms, due_at, seq) VALUES(?1, ?2, ?3, "
               "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?15, ?16)",
               -1, SQLITE_PREPARE_PERSISTENT, &s->ins_op, NULL) == SQLITE_OK &&
           sqlite3_prepare_v3(s->db,
                              "UPDATE outbox SET status = ?1, attempts = ?2, due_at = ?3, detail "
                              "= ?4, updated_ms = ?5 WHERE id = ?6 AND (?7 = 0 OR status IN "
                              "('dead', 'unsupported'))",
                              -1, SQLITE_PREPARE_PERSISTENT, &s->upd_op, NULL) == SQLITE_OK;
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
    bool tail_ok = wh_store_start_tail_check(s, why, sizeof(why));
    if (!tail_ok) {
        if (!s->o.start_afresh) {
            snprintf(err, errlen,
                     "the audit trail in %s is damaged: %s. Restore it from a backup, or start "
                     "with --start-afresh to write on (the damage stays, and /healthz says so)",
                     s->path, why);
            return false;
        }
        wh_store_set_damaged(s, "%s", why);
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
    if (s->cp_path && !wh_store_start_cp_check(s, why, sizeof(why))) {
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
    pthread_mutex_init(&s->hook_lock, NULL);
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
    /* about 1 s per attempt: see begin() (writer.c) */
    sqlite3_busy_handler(s->db, wh_store_busy_short, NULL);
    /* A new database gets pages of 16 KiB (an existing one keeps its own: the pragma only
     * applies before the first table): a commit writes a WAL frame and its header per page
     * it changed, and the floor of plain inserts fell from 5.0 to 3.8 us of CPU a row with
     * 4 times fewer frames (bench/RESULTS.md). */
    char pragmas[320];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA page_size=16384; "
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA cache_size=-131072; "
             "PRAGMA mmap_size=1073741824; PRAGMA wal_autocheckpoint=0; "
             "PRAGMA journal_size_limit=%lld;",
             o->sync_full ? "FULL" : "NORMAL",
             (long long)(o->preallocate > (64 << 20) ? o->preallocate : 64 << 20));
    wh_store_chunk_size(s->db, o->preallocate);
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
    s->id_bits = wh_chain_id_bits(s->db);
    s->page_size = (int)wh_chain_sql_i64(s->db, "PRAGMA page_size", -1);
    if (s->page_size <= 0) s->page_size = 4096;
    /* A crash in the middle of a retention pass rolls it back, flag included; a flag left
     * set some other way is cleared. */
    wh_chain_sql_exec(s->db, "UPDATE meta SET v = 0 WHERE k = 'retention'");
    if (o->preallocate > 0) wh_store_wal_preallocate(s);
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
    sqlite3_wal_hook(s->db, wh_store_wal_hook, s);
    if (pthread_create(&s->ckpt_thread, NULL, wh_store_ckpt_main, s) != 0) {
        snprintf(err, errlen, "cannot start the checkpoint thread");
        goto fail;
    }
    s->ckpt_started = true;
    if (pthread_create(&s->check_thread, NULL, wh_store_check_main, s) != 0) {
        snprintf(err, errlen, "cannot start the audit check");
        goto fail;
    }
    s->check_started = true;
    if (pthread_create(&s->thread, NULL, wh_store_writer_main, s) != 0) {
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
    sqlite3_finalize(s->ins_op);
    sqlite3_finalize(s->upd_op);
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
    sqlite3_finalize(s->ins_op), s->ins_op = NULL;
    sqlite3_finalize(s->upd_op), s->upd_op = NULL;
    wh_chain_sql_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)");
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->hook_lock);
    pthread_mutex_destroy(&s->rd_lock);
    pthread_cond_destroy(&s->wake);
    store_free_common(s);
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

wh_store *wh_store_open(const char *dir, const wh_store_opts *o, wh_error *e)
{
    wh_error scratch;
    if (!e) e = &scratch;
    wh_store *s = store_open_buf(dir, o, e->message, sizeof(e->message));
    e->code = s ? WH_OK : WH_EIO;
    return s;
}
