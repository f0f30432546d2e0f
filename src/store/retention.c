/* retention.c - retention passes, with their checkpoint and carry rows (writer thread). */
#define _GNU_SOURCE
#include "store_impl.h"

#include "chain.h"

#include <stdlib.h>
#include <string.h>

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
    if (!wh_store_append_row(s, now, WH_REC_CHECKPOINT, f, l)) return false;
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
bool wh_store_retention(wh_store *s, int64_t now)
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
            if (!wh_store_append_row(s, now, WH_REC_CHECKPOINT, f, l)) return false;
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
    ok = wh_store_append_row(s, now, WH_REC_CHECKPOINT, f, l);
    for (size_t i = 0; ok && i < ncarry; i++)
        ok = carry_write(s, now, &carry[i]);
    /* A retention pass is signed at once (in this transaction): with --pubkey, verify accepts
     * a missing prefix only where a signature covers the checkpoint that accounts for it. */
    s->sign_force = true;
done:
    carry_free(carry, ncarry);
    return ok;
}
