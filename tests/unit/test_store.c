/* test_store.c - the audit store (src/store/) through store.h, on real SQLite files in a
 * temporary folder: group commits that span many submissions, and the layout a database
 * keeps (the event-id index's bucket width, the page size) whichever build made it. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/chain.h"
#include "store/store.h"
#include "t.h"

static char *tmp_dir(void)
{
    static char dir[64];
    strcpy(dir, "/tmp/whiply-store.XXXXXX");
    ASSERT(mkdtemp(dir) != NULL);
    return dir;
}

static void rm_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
}

static wh_store *open_store(const char *dir)
{
    wh_store_opts o = {.queue = 100000, .signing_key = "none"};
    wh_error e;
    wh_store *s = wh_store_open(dir, &o, &e);
    if (!s) T_FAIL("wh_store_open: %.900s", e.message);
    return s;
}

static int64_t count_rows(const char *dir, const char *where)
{
    char p[200], sql[300];
    snprintf(p, sizeof(p), "%s/whiply.db", dir);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE %s", where);
    int64_t n = wh_chain_sql_i64(db, sql, -1);
    sqlite3_close(db);
    return n;
}

/* ---- group commit ---- */

typedef struct {
    wh_store *s;
    const char *dir;
    int who, rounds, per;
    int missing; /* rows of an answered submission not found in the database */
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    for (int r = 0; r < p->rounds; r++) {
        char id[64];
        for (int i = 0; i < p->per; i++) {
            int n = snprintf(id, sizeof(id), "p%d.r%d.%d", p->who, r, i);
            wh_rec *rec = wh_rec_add(&b, WH_REC_DECISION);
            wh_rec_set(&b, rec, WH_RF_EVENT_ID, id, (size_t)n);
            wh_rec_set(&b, rec, WH_RF_ACTION, "allow", 5);
            wh_rec_set(&b, rec, WH_RF_BODY, "{\"action\":\"allow\"}", 18);
        }
        uint64_t t = wh_store_submit(p->s, &b);
        if (!t || !wh_store_wait(p->s, t)) {
            p->missing = -1;
            break;
        }
        /* answered: every row of this submission is in the database, seen from another
         * connection, whatever commit carried it */
        char where[128];
        snprintf(where, sizeof(where), "event_id LIKE 'p%d.r%d.%%'", p->who, r);
        p->missing += p->per - (int)count_rows(p->dir, where);
    }
    wh_rec_batch_free(&b);
    return NULL;
}

TEST(a_group_commit_spanning_many_submissions_commits_each_before_its_answer)
{
    char *dir = tmp_dir();
    wh_store *s = open_store(dir);
    enum { NP = 8, ROUNDS = 40, PER = 50 };
    producer p[NP];
    pthread_t th[NP];
    for (int i = 0; i < NP; i++) {
        p[i] = (producer){s, dir, i, ROUNDS, PER, 0};
        ASSERT_EQ(pthread_create(&th[i], NULL, produce, &p[i]), 0);
    }
    for (int i = 0; i < NP; i++)
        pthread_join(th[i], NULL);
    wh_store_stats st;
    wh_store_stats_get(s, &st);
    for (int i = 0; i < NP; i++)
        ASSERT_EQ(p[i].missing, 0);
    ASSERT_EQ(st.written, NP * ROUNDS * PER);
    /* some commits carried more than one submission (eight producers, one writer) */
    ASSERT(st.commits < (uint64_t)(NP * ROUNDS));
    wh_store_close(s);
    ASSERT_EQ(count_rows(dir, "kind = 'decision'"), NP * ROUNDS * PER);
    rm_dir(dir);
}

/* ---- the layout a database keeps ---- */

TEST(a_new_database_has_16k_pages_and_buckets_of_16384_rows)
{
    char *dir = tmp_dir();
    wh_store_close(open_store(dir));
    char p[200];
    snprintf(p, sizeof(p), "%s/whiply.db", dir);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(p, &db), SQLITE_OK);
    ASSERT_EQ(wh_chain_sql_i64(db, "PRAGMA page_size", -1), 16384);
    ASSERT_EQ(wh_chain_id_bits(db), 14);
    sqlite3_close(db);
    rm_dir(dir);
}

TEST(a_database_made_before_keeps_its_pages_and_its_index)
{
    char *dir = tmp_dir();
    char p[200];
    snprintf(p, sizeof(p), "%s/whiply.db", dir);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(p, &db), SQLITE_OK);
    /* the audit table and index as builds before 2026-12-07 made them */
    ASSERT(wh_chain_sql_exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=WAL;"
                                 "CREATE TABLE audit(seq INTEGER PRIMARY KEY, at_ms INTEGER NOT "
                                 "NULL, kind TEXT NOT NULL, event_id TEXT, channel TEXT, user_id "
                                 "TEXT, action TEXT, body TEXT NOT NULL, prev BLOB NOT NULL, hash "
                                 "BLOB NOT NULL, eid_h INTEGER);"
                                 "CREATE INDEX audit_event_h ON audit((seq >> 16), eid_h);"));
    ASSERT_EQ(wh_chain_id_bits(db), 16);
    sqlite3_close(db);
    wh_store *s = open_store(dir);
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    wh_rec *r = wh_rec_add(&b, WH_REC_DECISION);
    wh_rec_set(&b, r, WH_RF_EVENT_ID, "old-1", 5);
    wh_rec_set(&b, r, WH_RF_ACTION, "allow", 5);
    wh_rec_set(&b, r, WH_RF_BODY, "{\"id\":\"old-1\"}", 14);
    ASSERT(wh_store_wait(s, wh_store_submit(s, &b)));
    wh_buf out;
    wh_buf_init(&out);
    ASSERT_EQ(wh_store_decision(s, "old-1", &out), WH_OK);
    wh_buf_putc(&out, 0);
    ASSERT_STR(out.p, "{\"id\":\"old-1\"}");
    wh_buf_free(&out);
    wh_rec_batch_free(&b);
    wh_store_close(s);
    ASSERT_EQ(sqlite3_open(p, &db), SQLITE_OK);
    ASSERT_EQ(wh_chain_sql_i64(db, "PRAGMA page_size", -1), 4096);
    ASSERT_EQ(wh_chain_id_bits(db), 16);
    /* the lookup's expression is the index's: SQLite answers it through the index */
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "EXPLAIN QUERY PLAN SELECT body FROM audit WHERE (seq >> 16) = 0 "
                                 "AND eid_h = 1",
                                 -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_CONTAINS((const char *)sqlite3_column_text(st, 3), "audit_event_h");
    sqlite3_finalize(st);
    sqlite3_close(db);
    rm_dir(dir);
}

TEST(the_index_width_is_16_when_the_index_is_missing)
{
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    ASSERT_EQ(wh_chain_id_bits(db), 16);
    sqlite3_close(db);
}
