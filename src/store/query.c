/* query.c - reads (any thread): decisions, the review queue, quota counters. */
#define _GNU_SOURCE
#include "store_impl.h"

#include "chain.h"

#include <stdlib.h>
#include <string.h>

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
unsigned wh_store_pool_take(wh_store *s)
{
    for (unsigned i = 0; i < RD_POOL; i++)
        if (pthread_mutex_trylock(&s->pool[i].lock) == 0) return i;
    unsigned i = atomic_fetch_add(&s->pool_next, 1) % RD_POOL;
    pthread_mutex_lock(&s->pool[i].lock);
    return i;
}

void wh_store_pool_give(wh_store *s, unsigned i)
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
    unsigned pi = wh_store_pool_take(s);
    sqlite3 *db = s->pool[pi].db;
    sqlite3_stmt *st;
    wh_status ret = WH_EIO;
    int64_t lo = wh_chain_sql_i64(db, "SELECT min(seq) FROM audit", -1);
    int64_t hi = wh_chain_sql_i64(db, "SELECT max(seq) FROM audit", -1);
    if (lo < 0) {
        wh_store_pool_give(s, pi);
        return WH_EINVAL;
    }
    /* the index's own expression (seq >> s->id_bits), or the planner would not use it */
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT body FROM audit WHERE (seq >> %d) = ?1 AND eid_h = ?2 AND event_id = ?3 AND "
             "kind = 'decision' ORDER BY seq DESC LIMIT 1",
             s->id_bits);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        ret = WH_EINVAL;
        int64_t h = wh_store_eid_hash(event_id, strlen(event_id));
        for (int64_t b = hi >> s->id_bits; b >= lo >> s->id_bits && ret == WH_EINVAL; b--) {
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
    wh_store_pool_give(s, pi);
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
    unsigned pi = wh_store_pool_take(s);
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
    wh_store_pool_give(s, pi);
    if (ret == WH_ECORRUPT)
        wh_store_set_damaged(s, "review item %s is not bound to the audit trail: %s", event_id,
                             why);
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
