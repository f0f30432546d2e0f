/* verify.c - `whiply audit verify` (wh_audit_verify) and the review export
 * (wh_review_export): see store.h. They read a database file, with a connection of their
 * own, and share nothing with a running store but the chain's definition (chain.h). */
#define _GNU_SOURCE
#include "store.h"

#include "chain.h"
#include "sign.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- verification ---- */

/* What the chain says of a review item: a binding ('h' a hold with review_sha256, 'v' an
 * older hold with held_sha256, 'c' a carry row), a moderator's verdict ('a', 'd'), each
 * with the resolution digest it implies when known. */
typedef struct {
    uint64_t eh; /* XXH3 of the event id */
    int64_t seq;
    char *eid;
    char what;
    bool has_rd, resolved, seen;
    char status[12];
    int64_t resolved_ms;
    uint8_t dg[32], rd[32];
} review_fact;

typedef struct {
    int64_t seq, before_ms; /* a review retention row: resolved items before before_ms went */
} review_cut;

typedef struct {
    review_fact *v;
    size_t n, cap;
    review_cut *cuts;
    size_t ncuts, capcuts;
    bool oom;
} review_facts;

static review_fact *facts_add(review_facts *rf, const char *eid, uint32_t n, int64_t seq, char what)
{
    if (rf->oom) return NULL;
    if (rf->n == rf->cap) {
        size_t cap = rf->cap ? rf->cap * 2 : 256;
        review_fact *v = realloc(rf->v, cap * sizeof(*v));
        if (!v) {
            rf->oom = true;
            return NULL;
        }
        rf->v = v, rf->cap = cap;
    }
    review_fact *f = &rf->v[rf->n];
    memset(f, 0, sizeof(*f));
    f->eid = strndup(eid, n);
    if (!f->eid) {
        rf->oom = true;
        return NULL;
    }
    f->eh = XXH3_64bits(eid, n), f->seq = seq, f->what = what;
    rf->n++;
    return f;
}

static int fact_cmp(const void *a, const void *b)
{
    const review_fact *x = a, *y = b;
    if (x->eh != y->eh) return x->eh < y->eh ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static const char *json_str_after(const char *body, const char *key, char *out, size_t n)
{
    const char *p = strstr(body, key);
    if (!p) return NULL;
    p += strlen(key);
    size_t l = strcspn(p, "\"");
    snprintf(out, n, "%.*s", (int)l, p);
    return out;
}

/* A review-relevant audit row into rf (f: kind, event_id, channel, user_id, action, body). */
static void note_review_fact(review_facts *rf, EVP_MD_CTX *md, int64_t seq, int64_t at,
                             const char *const *f, const uint32_t *l)
{
    if (l[0] == 10 && !memcmp(f[0], "checkpoint", 10) && f[4] && l[4] == 16 &&
        !memcmp(f[4], "review_retention", 16) && f[5]) {
        const char *p = strstr(f[5], "\"review_resolved_before_ms\":");
        if (!p) return;
        if (rf->ncuts == rf->capcuts) {
            size_t cap = rf->capcuts ? rf->capcuts * 2 : 16;
            review_cut *v = realloc(rf->cuts, cap * sizeof(*v));
            if (!v) {
                rf->oom = true;
                return;
            }
            rf->cuts = v, rf->capcuts = cap;
        }
        rf->cuts[rf->ncuts++] = (review_cut){seq, strtoll(p + 28, NULL, 10)};
        return;
    }
    if (!f[1] || !f[5]) return;
    uint8_t dg[32];
    char b = wh_chain_row_binding(md, f, l, at, dg);
    if (b) {
        bool carry = f[0][0] == 'c';
        review_fact *x = facts_add(rf, f[1], l[1], seq, b == 'v' ? 'v' : carry ? 'c' : 'h');
        if (!x) return;
        memcpy(x->dg, dg, 32);
        if (!carry) {
            snprintf(x->status, sizeof(x->status), "pending");
            if (b == 'i') { /* a hold implies a pending item with no verdict */
                const char *fr[3] = {"pending", NULL, NULL};
                uint32_t lr[3] = {7, 0, 0};
                wh_chain_resolution_hash(md, fr, lr, false, 0, x->rd);
                x->has_rd = true;
            }
        } else {
            char st[12] = "";
            json_str_after(f[5], "\"status\":\"", st, sizeof(st));
            memcpy(x->status, st, sizeof(x->status));
            const char *p = strstr(f[5], "\"resolved_ms\":");
            x->resolved = p && p[14] != 'n';
            x->resolved_ms = x->resolved ? strtoll(p + 14, NULL, 10) : 0;
            x->has_rd = wh_chain_body_hex(f[5], l[5], "resolved_sha256", x->rd);
        }
    } else if (l[0] == 6 && !memcmp(f[0], "review", 6) && f[4]) {
        bool approve = l[4] == 7 && !memcmp(f[4], "approve", 7);
        review_fact *x = facts_add(rf, f[1], l[1], seq, approve ? 'a' : 'd');
        if (!x) return;
        snprintf(x->status, sizeof(x->status), "%s", approve ? "approved" : "denied");
        x->resolved = true, x->resolved_ms = at;
        x->has_rd = wh_chain_body_hex(f[5], l[5], "resolved_sha256", x->rd);
    }
}

/* The facts of an event id: [*lo, *hi) of the sorted array, those with other ids skipped by
 * the caller. */
static void facts_of(const review_facts *rf, uint64_t eh, size_t *lo_out)
{
    size_t lo = 0, hi = rf->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rf->v[mid].eh < eh)
            lo = mid + 1;
        else
            hi = mid;
    }
    *lo_out = lo;
}

/* Every review item against the chain, and the chain's items against the review queue: 0
 * when all agree, 1 naming the first that does not, 2 when the table cannot be read. */
static int verify_reviews(sqlite3 *db, EVP_MD_CTX *md, review_facts *rf, FILE *out)
{
    if (rf->oom) {
        fprintf(out, "audit verify: out of memory for the review queue's check\n");
        return 2;
    }
    if (rf->n) qsort(rf->v, rf->n, sizeof(*rf->v), fact_cmp);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT " WH_REVIEW_COLS " FROM review", -1, &st, NULL) !=
        SQLITE_OK) {
        fprintf(out, "audit verify: reading the review queue: %s\n", sqlite3_errmsg(db));
        return 2;
    }
    int ret = 0, rc = SQLITE_DONE;
    int64_t checked = 0, legacy = 0, removed = 0;
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        wh_review_row r;
        wh_chain_review_row_of(st, 0, &r);
        if (!r.c[WH_RC_EID]) continue;
        const char *eid = r.c[WH_RC_EID];
        uint8_t item[32], res[32], v1[32];
        wh_chain_review_row_digests(md, &r, item, res, v1);
        size_t lo;
        facts_of(rf, XXH3_64bits(eid, r.l[WH_RC_EID]), &lo);
        const review_fact *bind = NULL, *last = NULL, *match = NULL;
        bool bound_ok = !r.has_bound;
        for (size_t i = lo; i < rf->n && rf->v[i].eh == rf->v[lo].eh; i++) {
            review_fact *x = &rf->v[i];
            if (strcmp(x->eid, eid)) continue;
            x->seen = true;
            if (x->what == 'h' || x->what == 'v' || x->what == 'c') {
                bind = x;
                if (!memcmp(x->dg, x->what == 'v' ? v1 : item, 32)) match = x;
                if (r.has_bound && x->seq == r.bound_seq) bound_ok = true;
            }
            if (bind) last = x;
        }
        if (!bind) {
            fprintf(out,
                    "audit verify: review item %s is not bound to the audit trail: no held "
                    "decision or carry row has its event id (it was inserted outside whiply, or "
                    "its rows were deleted)\n",
                    eid);
            ret = 1;
        } else if (!match) {
            if (bind->what == 'v')
                fprintf(out,
                        "audit verify: review item %s was altered: its held text or event does "
                        "not match the held_sha256 of row %lld\n",
                        eid, (long long)bind->seq);
            else
                fprintf(out,
                        "audit verify: review item %s was altered: its columns do not match the "
                        "digest of row %lld\n",
                        eid, (long long)bind->seq);
            ret = 1;
        } else if (!bound_ok) {
            fprintf(out,
                    "audit verify: review item %s was altered: its bound_seq %lld is not its "
                    "hold or carry row\n",
                    eid, (long long)r.bound_seq);
            ret = 1;
        } else if (!r.c[WH_RC_STATUS] || strcmp(r.c[WH_RC_STATUS], last->status)) {
            fprintf(out,
                    "audit verify: review item %s was altered: its status is '%s', the audit "
                    "trail says '%s'\n",
                    eid, r.c[WH_RC_STATUS] ? r.c[WH_RC_STATUS] : "NULL", last->status);
            ret = 1;
        } else if (last->has_rd && memcmp(last->rd, res, 32) != 0) {
            fprintf(out,
                    "audit verify: review item %s was altered: its moderator, note or "
                    "resolved_ms do not match row %lld\n",
                    eid, (long long)last->seq);
            ret = 1;
        } else {
            checked++;
            if (match->what == 'v' || !last->has_rd) legacy++;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        fprintf(out, "audit verify: reading the review queue: %s\n", sqlite3_errmsg(db));
        ret = 2;
    }
    sqlite3_finalize(st);
    /* The chain's items that the queue no longer has: only resolved ones, and only where a
     * review retention row after their verdict accounts for them. */
    for (size_t i = 0; ret == 0 && i < rf->n; i++) {
        review_fact *x = &rf->v[i];
        if (x->seen || !(x->what == 'h' || x->what == 'v' || x->what == 'c')) continue;
        const review_fact *last = x;
        for (size_t j = i; j < rf->n && rf->v[j].eh == x->eh; j++)
            if (!strcmp(rf->v[j].eid, x->eid)) {
                rf->v[j].seen = true;
                last = &rf->v[j];
            }
        if (!strcmp(last->status, "pending")) {
            fprintf(out,
                    "audit verify: review item %s is missing: row %lld holds it pending, and "
                    "pending items are never deleted\n",
                    x->eid, (long long)last->seq);
            ret = 1;
            break;
        }
        bool cut = false;
        for (size_t k = 0; k < rf->ncuts && !cut; k++)
            cut = rf->cuts[k].seq > last->seq && last->resolved &&
                  last->resolved_ms < rf->cuts[k].before_ms;
        if (!cut) {
            fprintf(out,
                    "audit verify: review item %s is missing: it was %s at row %lld and no "
                    "review retention row after it accounts for its removal\n",
                    x->eid, last->status, (long long)last->seq);
            ret = 1;
            break;
        }
        removed++;
    }
    if (ret == 0 && (checked || removed)) {
        fprintf(out, "audit verify: ok: %lld review items match the audit trail",
                (long long)checked);
        if (legacy)
            fprintf(out,
                    " (%lld written before review_sha256: only their text, event and status "
                    "are covered)",
                    (long long)legacy);
        if (removed)
            fprintf(out, "; %lld resolved items removed by review retention", (long long)removed);
        fputc('\n', out);
    }
    return ret;
}

/* ---- signed checkpoints in verify ---- */

typedef struct {
    wh_checkpoint *v;
    size_t n, cap;
} cp_list;

static int cp_cmp(const void *a, const void *b)
{
    const wh_checkpoint *x = a, *y = b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* A checkpoint line from where into the list; 1 (said) when it does not verify. */
static int cp_take(cp_list *cl, const uint8_t pub[32], const char *line, size_t n,
                   const char *where, FILE *out)
{
    wh_checkpoint cp;
    if (!wh_checkpoint_parse(line, n, &cp)) {
        fprintf(out, "audit verify: %s is not a signed checkpoint\n", where);
        return 1;
    }
    if (!wh_checkpoint_verify(pub, &cp)) {
        fprintf(out,
                "audit verify: the signed checkpoint at row %" PRIu64 " (%s) does not verify "
                "with the public key: forged or altered\n",
                cp.seq, where);
        return 1;
    }
    if (cl->n == cl->cap) {
        size_t cap = cl->cap ? cl->cap * 2 : 64;
        wh_checkpoint *v = realloc(cl->v, cap * sizeof(*v));
        if (!v) return 2;
        cl->v = v, cl->cap = cap;
    }
    cl->v[cl->n++] = cp;
    return 0;
}

/* Every signed checkpoint, from the database and the file, each verified: 0, 1 (said), 2. */
static int cp_load(sqlite3 *db, const wh_verify_opts *o, cp_list *cl, FILE *out)
{
    sqlite3_stmt *st;
    int ret = 0;
    if (sqlite3_prepare_v2(db, "SELECT id, line FROM signed_checkpoint ORDER BY id", -1, &st,
                           NULL) == SQLITE_OK) {
        while (ret == 0 && sqlite3_step(st) == SQLITE_ROW) {
            char where[64];
            snprintf(where, sizeof(where), "signed_checkpoint %lld in the database",
                     (long long)sqlite3_column_int64(st, 0));
            ret = cp_take(cl, o->pubkey, (const char *)sqlite3_column_text(st, 1),
                          (size_t)sqlite3_column_bytes(st, 1), where, out);
        }
        sqlite3_finalize(st);
    }
    if (ret || !o->checkpoints_file) return ret;
    FILE *f = fopen(o->checkpoints_file, "r");
    if (!f) {
        fprintf(out, "audit verify: cannot read %s: %s\n", o->checkpoints_file, strerror(errno));
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long ln = 0;
    while (ret == 0 && (n = getline(&line, &cap, f)) > 0) {
        ln++;
        if (line[n - 1] != '\n') break; /* a torn last line: not a checkpoint yet */
        char where[4200];
        snprintf(where, sizeof(where), "%s:%ld", o->checkpoints_file, ln);
        ret = cp_take(cl, o->pubkey, line, (size_t)n, where, out);
    }
    free(line);
    fclose(f);
    return ret;
}

int wh_audit_verify(const char *db_path, const wh_verify_opts *o, FILE *out)
{
    static const wh_verify_opts none = {0};
    if (!o) o = &none;
    review_facts rf = {0};
    cp_list cl = {0};
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
    wh_chain_walker w = {.md = EVP_MD_CTX_new()};
    /* one read transaction: the rows, the signatures and the review queue of one moment */
    wh_chain_sql_exec(db, "BEGIN");
    if (o->pubkey && (ret = cp_load(db, o, &cl, out)) != 0) goto done;
    if (cl.n) qsort(cl.v, cl.n, sizeof(*cl.v), cp_cmp);
    if (sqlite3_prepare_v2(db, "SELECT " WH_WALK_COLS " FROM audit ORDER BY seq", -1, &st, NULL) !=
        SQLITE_OK) {
        fprintf(out, "audit verify: %s is not a whiply database: %s\n", db_path,
                sqlite3_errmsg(db));
        ret = 2;
        goto done;
    }
    size_t ci = 0;
    int64_t signed_max = 0, signed_rows_first = -1;
    int rc;
    ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *f[6];
        uint32_t l[6];
        int64_t at, seq = sqlite3_column_int64(st, 0);
        if (wh_chain_walk_row(&w, st, f, l, &at)) {
            fprintf(out, "audit verify: %s\n", w.why);
            ret = 1;
            break;
        }
        if (w.rows == 1) signed_rows_first = seq;
        /* checkpoints of rows retention deleted since: checked by what covers the prefix */
        while (ci < cl.n && (int64_t)cl.v[ci].seq < seq)
            ci++;
        for (; ci < cl.n && (int64_t)cl.v[ci].seq == seq; ci++) {
            if (memcmp(cl.v[ci].head, sqlite3_column_blob(st, 9), 32) != 0) {
                fprintf(out,
                        "audit verify: row %lld (%s %s) does not match the signed checkpoint of "
                        "that row: rows up to it were rewritten\n",
                        (long long)seq, f[0] ? f[0] : "?", f[1] ? f[1] : "-");
                ret = 1;
                break;
            }
            signed_max = seq;
        }
        if (ret) break;
        note_review_fact(&rf, w.md, seq, at, f, l);
        if (o->expect_head && !memcmp(sqlite3_column_blob(st, 9), o->expect_head, 32))
            head_seen = true;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        fprintf(out, "audit verify: reading %s failed: %s\n", db_path, sqlite3_errmsg(db));
        ret = 2;
    }
    if (ret == 0 && wh_chain_walk_end(&w)) {
        fprintf(out, "audit verify: %s\n", w.why);
        ret = 1;
    }
    if (ret == 0 && ci < cl.n) {
        fprintf(out,
                "audit verify: a signed checkpoint covers row %" PRIu64 ", but the trail ends at "
                "row %lld: rows %lld to %" PRIu64 " were cut from its end\n",
                cl.v[cl.n - 1].seq, (long long)w.prev_seq, (long long)w.prev_seq + 1,
                cl.v[cl.n - 1].seq);
        ret = 1;
    }
    /* Without the key anyone holding the file can delete a prefix and write a checkpoint row
     * for it; with it, that row must be covered by a signature. */
    if (ret == 0 && o->pubkey && w.rows && w.first_seq != 1 && signed_max < w.first_cp_seq) {
        fprintf(out,
                "audit verify: rows 1 to %lld are missing and the retention checkpoint (row "
                "%lld) accounting for them is not covered by a signature: forged, or signed "
                "checkpoints were removed\n",
                (long long)w.first_seq - 1, (long long)w.first_cp_seq);
        ret = 1;
    }
    if (ret == 0 && o->expect_head && !head_seen) {
        char hx[65];
        wh_hex_encode(o->expect_head, 32, hx);
        fprintf(out,
                "audit verify: the recorded head %s is not in the chain: rows were removed "
                "from its end (or the chain was rebuilt)\n",
                hx);
        ret = 1;
    }
    if (ret == 0) {
        char hx[65];
        wh_hex_encode(w.last, 32, hx);
        if (w.rows)
            fprintf(out, "audit verify: ok: %lld rows (%lld to %lld), head %s\n", (long long)w.rows,
                    (long long)signed_rows_first, (long long)w.prev_seq, hx);
        else
            fprintf(out, "audit verify: ok: the audit trail is empty\n");
        if (o->pubkey) {
            size_t before = 0;
            for (size_t i = 0; i < cl.n; i++)
                before += (int64_t)cl.v[i].seq < signed_rows_first;
            if (signed_max)
                fprintf(out,
                        "audit verify: signed: %zu checkpoints verify, the newest covers row "
                        "%lld; %lld rows are newer than the last signature%s\n",
                        cl.n, (long long)signed_max, (long long)(w.prev_seq - signed_max),
                        before ? " (older checkpoints cover rows retention deleted)" : "");
            else
                fprintf(out,
                        "audit verify: signed: no signed checkpoint covers a row of this trail; "
                        "%lld rows are unsigned\n",
                        (long long)w.rows);
        }
        ret = verify_reviews(db, w.md, &rf, out);
    }
done:
    sqlite3_finalize(st);
    wh_chain_sql_exec(db, "COMMIT");
    sqlite3_close(db);
    EVP_MD_CTX_free(w.md);
    for (size_t i = 0; i < rf.n; i++)
        free(rf.v[i].eid);
    free(rf.v);
    free(rf.cuts);
    free(cl.v);
    return ret;
}

/* ---- the review export ---- */

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
