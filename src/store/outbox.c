/* outbox.c - the action outbox's table: operations encoded into records, inserted and
 * updated by the writer in the transaction of their record's audit row, and read back by the
 * outbox's workers and the API (store.h, "the action outbox's table"). */
#define _GNU_SOURCE
#include "store_impl.h"

#include "chain.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const wh_op_col_names[WH_OC__STR] = {
    "id",     "kind",    "platform", "channel", "user_id", "user_name", "event_id",
    "msg_id", "message", "reason",   "rule",    "mode",    "payload"};

/* ---- encoding: strings as a 4-byte length and the bytes (an internal format: both ends are
 * this file's, and a record never leaves the process) ---- */

static void put_str(wh_buf *b, const char *p, size_t n)
{
    uint32_t l = p ? (uint32_t)n : 0;
    wh_buf_append(b, &l, 4);
    if (l) wh_buf_append(b, p, l);
}

static bool get_str(const char *p, size_t n, size_t *pos, const char **s, uint32_t *l)
{
    if (n - *pos < 4 || *pos > n) return false;
    memcpy(l, p + *pos, 4);
    *pos += 4;
    if (*l > n - *pos) return false;
    *s = p + *pos;
    *pos += *l;
    return true;
}

/* A string with n[i] 0 is NUL-terminated (or NULL: ""). */
void wh_op_encode(wh_buf *b, const wh_op_row *op)
{
    for (int i = 0; i < WH_OC__STR; i++) {
        const char *s = op->s[i];
        put_str(b, s, s ? (op->n[i] ? op->n[i] : strlen(s)) : 0);
    }
    wh_buf_append(b, &op->duration_s, 4);
}

bool wh_op_decode(const char *p, size_t n, size_t *pos, wh_op_row *op)
{
    if (*pos >= n) return false;
    for (int i = 0; i < WH_OC__STR; i++)
        if (!get_str(p, n, pos, &op->s[i], &op->n[i])) return false;
    if (n - *pos < 4) return false;
    memcpy(&op->duration_s, p + *pos, 4);
    *pos += 4;
    return true;
}

void wh_outcome_encode(wh_buf *b, const wh_outcome_row *o)
{
    put_str(b, o->id, strlen(o->id));
    put_str(b, o->status, strlen(o->status));
    put_str(b, o->detail ? o->detail : "", o->detail ? strlen(o->detail) : 0);
    wh_buf_append(b, &o->attempts, 4);
    wh_buf_append(b, &o->due_at, 8);
    uint8_t f = o->only_if_final;
    wh_buf_append(b, &f, 1);
}

bool wh_outcome_decode(const char *p, size_t n, wh_outcome_row *o)
{
    size_t pos = 0;
    if (!get_str(p, n, &pos, &o->id, &o->id_n) || !get_str(p, n, &pos, &o->status, &o->status_n) ||
        !get_str(p, n, &pos, &o->detail, &o->detail_n) || n - pos != 13)
        return false;
    memcpy(&o->attempts, p + pos, 4);
    memcpy(&o->due_at, p + pos + 4, 8);
    o->only_if_final = p[pos + 12] != 0;
    return true;
}

/* ---- the writer's side (inside its transaction) ---- */

bool wh_store_ops_insert(wh_store *s, const char *p, size_t n, int64_t now)
{
    size_t pos = 0;
    wh_op_row op;
    sqlite3_stmt *st = s->ins_op;
    while (pos < n) {
        if (!wh_op_decode(p, n, &pos, &op)) return true; /* ours: cannot happen; skip the rest */
        for (int i = 0; i < WH_OC__STR; i++)
            sqlite3_bind_text(st, i + 1, op.n[i] ? op.s[i] : "", (int)op.n[i], SQLITE_STATIC);
        sqlite3_bind_int64(st, WH_OC__STR + 1, op.duration_s);
        sqlite3_bind_int64(st, WH_OC__STR + 2, now);
        sqlite3_bind_int64(st, WH_OC__STR + 3, (sqlite3_int64)s->seq);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return false;
        s->ops_added += (uint32_t)sqlite3_changes(s->db);
    }
    return true;
}

bool wh_store_outcome_apply(wh_store *s, const char *p, size_t n, int64_t now)
{
    wh_outcome_row o;
    if (!wh_outcome_decode(p, n, &o)) return true;
    sqlite3_stmt *st = s->upd_op;
    sqlite3_bind_text(st, 1, o.status, (int)o.status_n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, o.attempts);
    if (o.due_at >= 0)
        sqlite3_bind_int64(st, 3, o.due_at);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, o.detail, (int)o.detail_n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_text(st, 6, o.id, (int)o.id_n, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, o.only_if_final);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE && o.due_at >= 0 && sqlite3_changes(s->db) > 0) s->ops_added++;
    return rc == SQLITE_DONE;
}

void wh_store_set_ops_hook(wh_store *s, wh_store_ops_fn fn, void *ud)
{
    pthread_mutex_lock(&s->hook_lock);
    s->ops_fn = fn;
    s->ops_ud = ud;
    pthread_mutex_unlock(&s->hook_lock);
}

void wh_store_set_checkpoint_hook(wh_store *s, wh_store_cp_fn fn, void *ud)
{
    pthread_mutex_lock(&s->hook_lock);
    s->cp_fn = fn;
    s->cp_ud = ud;
    pthread_mutex_unlock(&s->hook_lock);
}

/* ---- reads (a connection of the point-lookup pool: short statements) ---- */

#define OP_COLS                                                                                    \
    "id, kind, platform, channel, user_id, user_name, event_id, msg_id, message, reason, rule, "   \
    "mode, payload, duration_s, status, detail, attempts, due_at, created_ms, updated_ms"

static void state_of(sqlite3_stmt *st, wh_op_state *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 0; i < WH_OC__STR; i++) {
        const char *t = (const char *)sqlite3_column_text(st, i);
        o->op.s[i] = t ? t : "";
        o->op.n[i] = t ? (uint32_t)sqlite3_column_bytes(st, i) : 0;
    }
    o->op.duration_s = (uint32_t)sqlite3_column_int64(st, WH_OC__STR);
    const char *t = (const char *)sqlite3_column_text(st, WH_OC__STR + 1);
    o->status = t ? t : "";
    t = (const char *)sqlite3_column_text(st, WH_OC__STR + 2);
    o->detail = t ? t : "";
    o->attempts = (uint32_t)sqlite3_column_int64(st, WH_OC__STR + 3);
    o->due_at = sqlite3_column_type(st, WH_OC__STR + 4) == SQLITE_NULL
                    ? -1
                    : sqlite3_column_int64(st, WH_OC__STR + 4);
    o->created_ms = sqlite3_column_int64(st, WH_OC__STR + 5);
    o->updated_ms = sqlite3_column_int64(st, WH_OC__STR + 6);
}

/* Steps st, passing each row to fn; the rows' count, or -1 on a failed read. */
static int each_state(sqlite3_stmt *st, wh_op_state_fn fn, void *ud)
{
    int n = 0, rc;
    wh_op_state o;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        state_of(st, &o);
        fn(ud, &o);
        n++;
    }
    return rc == SQLITE_DONE ? n : -1;
}

int wh_store_ops_due(wh_store *s, const char *platform, int64_t now, int limit, wh_op_state_fn fn,
                     void *ud)
{
    unsigned pi = wh_store_pool_take(s);
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(s->pool[pi].db,
                           "SELECT " OP_COLS " FROM outbox WHERE platform = ?1 AND due_at IS NOT "
                           "NULL AND due_at <= ?2 ORDER BY due_at LIMIT ?3",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int(st, 3, limit);
        n = each_state(st, fn, ud);
        sqlite3_finalize(st);
    }
    wh_store_pool_give(s, pi);
    return n;
}

int64_t wh_store_ops_next_due(wh_store *s, const char *platform)
{
    unsigned pi = wh_store_pool_take(s);
    sqlite3_stmt *st;
    int64_t at = -1;
    if (sqlite3_prepare_v2(s->pool[pi].db,
                           "SELECT min(due_at) FROM outbox WHERE platform = ? AND due_at IS NOT "
                           "NULL",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            at = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    wh_store_pool_give(s, pi);
    return at;
}

wh_status wh_store_op_get(wh_store *s, const char *id, wh_op_state_fn fn, void *ud)
{
    unsigned pi = wh_store_pool_take(s);
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(s->pool[pi].db, "SELECT " OP_COLS " FROM outbox WHERE id = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        n = each_state(st, fn, ud);
        sqlite3_finalize(st);
    }
    wh_store_pool_give(s, pi);
    return n < 0 ? WH_EIO : n == 0 ? WH_EINVAL : WH_OK;
}

wh_status wh_store_ops_list(wh_store *s, const wh_op_filter *f, wh_op_state_fn fn, void *ud,
                            int *count)
{
    *count = 0;
    pthread_mutex_lock(&s->rd_lock);
    sqlite3_stmt *st;
    /* "due" is pending and retry together (what the workers will carry out) */
    int n = -1;
    if (sqlite3_prepare_v2(
            s->rd,
            "SELECT " OP_COLS " FROM outbox WHERE (?1 IS NULL OR status = ?1 OR (?1 = 'due' AND "
            "due_at IS NOT NULL)) AND (?2 IS NULL OR platform = ?2) AND (?3 IS NULL OR "
            "channel = ?3) AND (?4 IS NULL OR rowid > (SELECT rowid FROM outbox WHERE id = ?4)) "
            "ORDER BY rowid LIMIT ?5",
            -1, &st, NULL) == SQLITE_OK) {
        if (f->status) sqlite3_bind_text(st, 1, f->status, -1, SQLITE_STATIC);
        if (f->platform) sqlite3_bind_text(st, 2, f->platform, -1, SQLITE_STATIC);
        if (f->channel) sqlite3_bind_text(st, 3, f->channel, -1, SQLITE_STATIC);
        if (f->after) sqlite3_bind_text(st, 4, f->after, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, f->limit);
        n = each_state(st, fn, ud);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->rd_lock);
    if (n < 0) return WH_EIO;
    *count = n;
    return WH_OK;
}

wh_status wh_store_ops_counts(wh_store *s, wh_op_count_fn fn, void *ud)
{
    unsigned pi = wh_store_pool_take(s);
    sqlite3_stmt *st;
    int rc = SQLITE_ERROR;
    /* both through partial indexes: cheap however many operations are done */
    if (sqlite3_prepare_v2(s->pool[pi].db,
                           "SELECT platform, 'due', count(*) FROM outbox WHERE due_at IS NOT NULL "
                           "GROUP BY platform UNION ALL SELECT platform, 'dead', count(*) FROM "
                           "outbox WHERE status = 'dead' GROUP BY platform",
                           -1, &st, NULL) == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            fn(ud, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
        sqlite3_finalize(st);
    }
    wh_store_pool_give(s, pi);
    return rc == SQLITE_DONE ? WH_OK : WH_EIO;
}
