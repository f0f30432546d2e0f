/* search.c - the audit search of the dashboard's mod log (see store.h). */
#define _GNU_SOURCE
#include "store_impl.h"

#include <string.h>

static void put_text(wh_buf *out, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        wh_buf_puts(out, "null");
        return;
    }
    wh_buf_json_str(out, (const char *)sqlite3_column_text(st, i),
                    (size_t)sqlite3_column_bytes(st, i));
}

/* One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line end. */
static void put_csv(wh_buf *out, const char *p, size_t n)
{
    if (!p) return;
    if (!memchr(p, ',', n) && !memchr(p, '"', n) && !memchr(p, '\n', n) && !memchr(p, '\r', n)) {
        wh_buf_append(out, p, n);
        return;
    }
    wh_buf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"') wh_buf_putc(out, '"');
        wh_buf_putc(out, p[i]);
    }
    wh_buf_putc(out, '"');
}

static const char *const col_names[] = {"seq",     "at_ms", "kind",   "event_id",
                                        "channel", "user",  "action", "body"};

static void row_json(wh_buf *out, sqlite3_stmt *st)
{
    wh_buf_puts(out, "{\"seq\":");
    wh_buf_i64(out, sqlite3_column_int64(st, 0));
    wh_buf_puts(out, ",\"at_ms\":");
    wh_buf_i64(out, sqlite3_column_int64(st, 1));
    for (int i = 2; i < 7; i++) {
        wh_buf_printf(out, ",\"%s\":", col_names[i]);
        put_text(out, st, i);
    }
    /* the body is the row's JSON (a decision, a verdict, a reload): as it is */
    wh_buf_puts(out, ",\"body\":");
    wh_buf_append(out, sqlite3_column_text(st, 7), (size_t)sqlite3_column_bytes(st, 7));
    wh_buf_putc(out, '}');
}

static void row_csv(wh_buf *out, sqlite3_stmt *st)
{
    for (int i = 0; i < 8; i++) {
        if (i) wh_buf_putc(out, ',');
        if (i < 2)
            wh_buf_i64(out, sqlite3_column_int64(st, i));
        else
            put_csv(out, (const char *)sqlite3_column_text(st, i),
                    (size_t)sqlite3_column_bytes(st, i));
    }
    wh_buf_puts(out, "\r\n");
}

wh_status wh_store_audit_search(wh_store *s, const wh_audit_filter *f, wh_buf *out)
{
    pthread_mutex_lock(&s->rd_lock);
    sqlite3_stmt *st;
    /* No index on these columns (store.c says why): newest first by the primary key, which
     * a LIMIT ends early when the filter is common. */
    int rc = sqlite3_prepare_v2(
        s->rd,
        "SELECT seq, at_ms, kind, event_id, channel, user_id, action, body FROM audit "
        "WHERE seq < ?1 AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR event_id = ?3) "
        "AND (?4 IS NULL OR channel = ?4) AND (?5 IS NULL OR user_id = ?5) "
        "AND (?6 IS NULL OR action = ?6) AND (?7 = 0 OR at_ms >= ?7) AND (?8 = 0 OR at_ms < ?8) "
        "AND (?9 IS NULL OR (kind = 'decision' AND json_valid(body) AND EXISTS (SELECT 1 FROM "
        "json_each(body, '$.rules') WHERE value = ?9))) "
        "AND (?10 IS NULL OR (kind = 'review' AND json_valid(body) AND "
        "json_extract(body, '$.moderator') = ?10)) "
        "ORDER BY seq DESC LIMIT ?11",
        -1, &st, NULL);
    if (rc != SQLITE_OK) {
        pthread_mutex_unlock(&s->rd_lock);
        return WH_EIO;
    }
    sqlite3_bind_int64(st, 1, f->before_seq > 0 ? f->before_seq : INT64_MAX);
    const char *texts[] = {f->kind, f->event_id, f->channel, f->user, f->action};
    for (int i = 0; i < 5; i++)
        if (texts[i]) sqlite3_bind_text(st, 2 + i, texts[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, f->since_ms);
    sqlite3_bind_int64(st, 8, f->until_ms);
    if (f->rule) sqlite3_bind_text(st, 9, f->rule, -1, SQLITE_STATIC);
    if (f->moderator) sqlite3_bind_text(st, 10, f->moderator, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 11, f->limit);
    if (f->format == WH_AUDIT_JSON) wh_buf_puts(out, "{\"rows\":[");
    if (f->format == WH_AUDIT_CSV) {
        for (int i = 0; i < 8; i++) {
            if (i) wh_buf_putc(out, ',');
            wh_buf_puts(out, col_names[i]);
        }
        wh_buf_puts(out, "\r\n");
    }
    int n = 0;
    int64_t last = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
        if (f->format == WH_AUDIT_CSV) {
            row_csv(out, st);
        } else {
            if (n && f->format == WH_AUDIT_JSON) wh_buf_putc(out, ',');
            row_json(out, st);
            if (f->format == WH_AUDIT_NDJSON) wh_buf_putc(out, '\n');
        }
        n++;
    }
    if (f->format == WH_AUDIT_JSON) {
        wh_buf_puts(out, "],\"next\":");
        if (n == f->limit && last > 1)
            wh_buf_i64(out, last);
        else
            wh_buf_puts(out, "null");
        wh_buf_putc(out, '}');
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rd_lock);
    return rc == SQLITE_DONE ? WH_OK : WH_EIO;
}
