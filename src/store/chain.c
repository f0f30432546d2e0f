/* chain.c - see chain.h. */
#define _GNU_SOURCE
#include "chain.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* OpenSSL 3 looks a digest up by name on every EVP_sha256() init (about 10% of the writer's
 * time in a profile); fetched once, the lookup is gone. */
static const EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (!sha256_md) sha256_md = EVP_sha256();
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Fields into a digest, in the encoding chain.h describes. */
static void hash_fields(EVP_MD_CTX *md, const char *const *f, const uint32_t *len, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t l[4];
        put_le(l, f[i] ? len[i] : UINT32_MAX, 4);
        EVP_DigestUpdate(md, l, 4);
        if (f[i] && len[i]) EVP_DigestUpdate(md, f[i], len[i]);
    }
}

void wh_chain_row_hash(EVP_MD_CTX *md, const uint8_t prev[32], uint64_t seq, int64_t at_ms,
                       const char *const *f, const uint32_t *len, uint8_t out[32])
{
    uint8_t hdr[16];
    put_le(hdr, seq, 8);
    put_le(hdr + 8, (uint64_t)at_ms, 8);
    pthread_once(&sha256_once, sha256_fetch);
    EVP_DigestInit_ex(md, sha256_md, NULL);
    EVP_DigestUpdate(md, prev, 32);
    EVP_DigestUpdate(md, hdr, 16);
    hash_fields(md, f, len, 6);
    unsigned n = 32;
    EVP_DigestFinal_ex(md, out, &n);
}

/* The digest of a held event's review copy (its text, then the event as received, encoded
 * by hash_fields): the decision row carries it as "held_sha256", so the review queue's copy
 * is bound to the chain (docs/api.md, the hash chain). */
static void held_hash(EVP_MD_CTX *md, const char *text, uint32_t tlen, const char *event,
                      uint32_t elen, uint8_t out[32])
{
    pthread_once(&sha256_once, sha256_fetch);
    EVP_DigestInit_ex(md, sha256_md, NULL);
    const char *f[2] = {text, event};
    uint32_t len[2] = {tlen, elen};
    hash_fields(md, f, len, 2);
    unsigned n = 32;
    EVP_DigestFinal_ex(md, out, &n);
}

static void digest_begin(EVP_MD_CTX *md)
{
    pthread_once(&sha256_once, sha256_fetch);
    EVP_DigestInit_ex(md, sha256_md, NULL);
}

static void digest_end(EVP_MD_CTX *md, uint8_t out[32])
{
    unsigned n = 32;
    EVP_DigestFinal_ex(md, out, &n);
}

static void digest_i64(EVP_MD_CTX *md, bool has, int64_t v)
{
    uint8_t b[8];
    if (has)
        put_le(b, (uint64_t)v, 8);
    else
        memset(b, 0xff, 8);
    EVP_DigestUpdate(md, b, 8);
}

void wh_chain_review_hash(EVP_MD_CTX *md, const char *const *f, const uint32_t *l, uint8_t out[32])
{
    digest_begin(md);
    hash_fields(md, f, l, 4);
    digest_end(md, out);
}

/* f: event_id, channel, user_id, decision */
static void item_hash(EVP_MD_CTX *md, const uint8_t rev[32], const char *const *f,
                      const uint32_t *l, int64_t created_ms, uint8_t out[32])
{
    digest_begin(md);
    EVP_DigestUpdate(md, rev, 32);
    hash_fields(md, f, l, 4);
    digest_i64(md, true, created_ms);
    digest_end(md, out);
}

void wh_chain_resolution_hash(EVP_MD_CTX *md, const char *const *f, const uint32_t *l,
                              bool resolved, int64_t resolved_ms, uint8_t out[32])
{
    digest_begin(md);
    hash_fields(md, f, l, 3);
    digest_i64(md, resolved, resolved_ms);
    digest_end(md, out);
}

bool wh_chain_body_hex(const char *body, size_t n, const char *key, uint8_t out[32])
{
    char k[64];
    int kl = snprintf(k, sizeof(k), "\"%s\":\"", key);
    const char *found = NULL;
    for (const char *p = body; (p = memmem(p, n - (size_t)(p - body), k, (size_t)kl)); p++)
        found = p;
    if (!found || (size_t)(found - body) + (size_t)kl + 64 > n) return false;
    return wh_hex_decode(found + kl, 64, out, 32);
}

void wh_chain_review_row_of(sqlite3_stmt *st, int base, wh_review_row *r)
{
    for (int i = 0; i < WH_RC__COUNT; i++) {
        bool null = sqlite3_column_type(st, base + i) == SQLITE_NULL;
        r->c[i] = null ? NULL : (const char *)sqlite3_column_text(st, base + i);
        r->l[i] = null ? 0 : (uint32_t)sqlite3_column_bytes(st, base + i);
    }
    r->created_ms = sqlite3_column_int64(st, base + WH_RC_CREATED);
    r->has_resolved = r->c[WH_RC_RESOLVED] != NULL;
    r->resolved_ms = sqlite3_column_int64(st, base + WH_RC_RESOLVED);
    r->has_bound = r->c[WH_RC_BOUND] != NULL;
    r->bound_seq = sqlite3_column_int64(st, base + WH_RC_BOUND);
}

void wh_chain_review_row_digests(EVP_MD_CTX *md, const wh_review_row *r, uint8_t item[32],
                                 uint8_t res[32], uint8_t v1[32])
{
    uint8_t rev[32];
    const char *f4[4] = {r->c[WH_RC_PLATFORM], r->c[WH_RC_USER_NAME], r->c[WH_RC_TEXT],
                         r->c[WH_RC_EVENT]};
    uint32_t l4[4] = {r->l[WH_RC_PLATFORM], r->l[WH_RC_USER_NAME], r->l[WH_RC_TEXT],
                      r->l[WH_RC_EVENT]};
    wh_chain_review_hash(md, f4, l4, rev);
    const char *fi[4] = {r->c[WH_RC_EID], r->c[WH_RC_CHANNEL], r->c[WH_RC_USER],
                         r->c[WH_RC_DECISION]};
    uint32_t li[4] = {r->l[WH_RC_EID], r->l[WH_RC_CHANNEL], r->l[WH_RC_USER], r->l[WH_RC_DECISION]};
    item_hash(md, rev, fi, li, r->created_ms, item);
    const char *fr[3] = {r->c[WH_RC_STATUS], r->c[WH_RC_MODERATOR], r->c[WH_RC_NOTE]};
    uint32_t lr[3] = {r->l[WH_RC_STATUS], r->l[WH_RC_MODERATOR], r->l[WH_RC_NOTE]};
    wh_chain_resolution_hash(md, fr, lr, r->has_resolved, r->resolved_ms, res);
    held_hash(md, r->c[WH_RC_TEXT], r->l[WH_RC_TEXT], r->c[WH_RC_EVENT], r->l[WH_RC_EVENT], v1);
}

char wh_chain_row_binding(EVP_MD_CTX *md, const char *const *f, const uint32_t *l, int64_t at_ms,
                          uint8_t dg[32])
{
    if (!f[1] || !f[5]) return 0;
    if (l[0] == 8 && !memcmp(f[0], "decision", 8) && l[4] == 4 && !memcmp(f[4], "hold", 4)) {
        uint8_t rev[32];
        if (wh_chain_body_hex(f[5], l[5], "review_sha256", rev)) {
            const char *fi[4] = {f[1], f[2], f[3], f[5]};
            uint32_t li[4] = {l[1], l[2], l[3], l[5]};
            item_hash(md, rev, fi, li, at_ms, dg);
            return 'i';
        }
        return wh_chain_body_hex(f[5], l[5], "held_sha256", dg) ? 'v' : 0;
    }
    if (l[0] == 10 && !memcmp(f[0], "checkpoint", 10) && f[4] && l[4] == 5 &&
        !memcmp(f[4], "carry", 5))
        return wh_chain_body_hex(f[5], l[5], "item_sha256", dg) ? 'i' : 0;
    return 0;
}

bool wh_chain_row_self_check(EVP_MD_CTX *md, sqlite3_stmt *st, const char **f, uint32_t *l,
                             int64_t *at)
{
    for (int i = 0; i < 6; i++) {
        bool null = sqlite3_column_type(st, i + 2) == SQLITE_NULL;
        f[i] = null ? NULL : (const char *)sqlite3_column_text(st, i + 2);
        l[i] = null ? 0 : (uint32_t)sqlite3_column_bytes(st, i + 2);
    }
    *at = sqlite3_column_int64(st, 1);
    if (sqlite3_column_bytes(st, 8) != 32 || sqlite3_column_bytes(st, 9) != 32) return false;
    uint8_t h[32];
    wh_chain_row_hash(md, sqlite3_column_blob(st, 8), (uint64_t)sqlite3_column_int64(st, 0), *at, f,
                      l, h);
    return !memcmp(h, sqlite3_column_blob(st, 9), 32);
}

wh_status wh_chain_check_bound(sqlite3 *db, EVP_MD_CTX *md, const wh_review_row *r, char *why,
                               size_t whylen)
{
    uint8_t item[32], res[32], v1[32];
    wh_chain_review_row_digests(md, r, item, res, v1);
    sqlite3_stmt *st = NULL;
    wh_status ret = WH_EIO;
    int rc = SQLITE_DONE;
    if (r->has_bound) {
        if (sqlite3_prepare_v2(db, "SELECT " WH_ROW_COLS " FROM audit WHERE seq = ?", -1, &st,
                               NULL) != SQLITE_OK)
            return WH_EIO;
        sqlite3_bind_int64(st, 1, r->bound_seq);
        rc = sqlite3_step(st);
    } else {
        int64_t lo = wh_chain_sql_i64(db, "SELECT min(seq) FROM audit", -1);
        int64_t hi = wh_chain_sql_i64(db, "SELECT max(seq) FROM audit", -1);
        int bits = wh_chain_id_bits(db);
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT " WH_ROW_COLS " FROM audit WHERE (seq >> %d) = ?1 AND eid_h = ?2 AND "
                 "event_id = ?3 AND kind = 'decision' AND action = 'hold' ORDER BY seq DESC "
                 "LIMIT 1",
                 bits);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return WH_EIO;
        int64_t h = (int64_t)XXH3_64bits(r->c[WH_RC_EID], r->l[WH_RC_EID]);
        for (int64_t b = hi >> bits; lo >= 0 && b >= lo >> bits; b--) {
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, b);
            sqlite3_bind_int64(st, 2, h);
            sqlite3_bind_text(st, 3, r->c[WH_RC_EID], (int)r->l[WH_RC_EID], SQLITE_STATIC);
            if ((rc = sqlite3_step(st)) != SQLITE_DONE) break;
        }
    }
    if (rc == SQLITE_DONE) {
        snprintf(why, whylen, "no held decision or carry row of its event id%s",
                 r->has_bound ? " at the row it names" : "");
        ret = WH_ECORRUPT;
        goto done;
    }
    if (rc != SQLITE_ROW) goto done;
    const char *f[6];
    uint32_t l[6];
    int64_t at;
    int64_t seq = sqlite3_column_int64(st, 0);
    ret = WH_ECORRUPT;
    if (!wh_chain_row_self_check(md, st, f, l, &at)) {
        snprintf(why, whylen, "audit row %lld does not match its hash", (long long)seq);
        goto done;
    }
    uint8_t dg[32];
    char kind = wh_chain_row_binding(md, f, l, at, dg);
    if (!f[1] || l[1] != r->l[WH_RC_EID] || memcmp(f[1], r->c[WH_RC_EID], l[1]) != 0 || !kind) {
        snprintf(why, whylen, "audit row %lld is not its hold or carry row", (long long)seq);
        goto done;
    }
    if (memcmp(dg, kind == 'i' ? item : v1, 32) != 0) {
        snprintf(why, whylen, "it does not match the digest in audit row %lld", (long long)seq);
        goto done;
    }
    ret = WH_OK;
done:
    sqlite3_finalize(st);
    return ret;
}

/* ---- walking the chain (verify, the start check, the background check) ---- */

static bool parse_checkpoint(const char *body, int64_t *before, uint8_t anchor[32])
{
    const char *p = strstr(body, "\"deleted_before\":");
    const char *a = strstr(body, "\"anchor\":\"");
    if (!p || !a) return false;
    *before = strtoll(p + 17, NULL, 10);
    a += 10;
    return strnlen(a, 64) == 64 && wh_hex_decode(a, 64, anchor, 32);
}

int wh_chain_walk_row(wh_chain_walker *w, sqlite3_stmt *st, const char **f, uint32_t *l,
                      int64_t *at)
{
    int64_t seq = sqlite3_column_int64(st, 0);
    bool self = wh_chain_row_self_check(w->md, st, f, l, at);
    const char *kind = f[0] ? f[0] : "?", *eid = f[1] ? f[1] : "-";
    if (sqlite3_column_bytes(st, 8) != 32 || sqlite3_column_bytes(st, 9) != 32) {
        snprintf(w->why, sizeof(w->why),
                 "row %lld (%s %s) was altered: its hashes are not 32 bytes", (long long)seq, kind,
                 eid);
        return 1;
    }
    const uint8_t *prev = sqlite3_column_blob(st, 8);
    if (w->rows == 0) {
        w->first_seq = seq;
        if (seq == 1)
            memset(w->last, 0, 32);
        else
            memcpy(w->last, prev,
                   32); /* vouched for by a retention checkpoint: wh_chain_walk_end */
        memcpy(w->first_prev, prev, 32);
    } else if (seq != w->prev_seq + 1) {
        snprintf(w->why, sizeof(w->why), "rows %lld to %lld are missing (removed after row %lld)",
                 (long long)w->prev_seq + 1, (long long)seq - 1, (long long)w->prev_seq);
        return 1;
    }
    if (memcmp(prev, w->last, 32) != 0) {
        snprintf(w->why, sizeof(w->why),
                 "row %lld (%s %s) does not chain to row %lld: a row was altered, inserted or "
                 "removed there",
                 (long long)seq, kind, eid, (long long)seq - 1);
        return 1;
    }
    if (!self) {
        snprintf(w->why, sizeof(w->why),
                 "row %lld (%s %s) was altered: its content does not match its hash",
                 (long long)seq, kind, eid);
        return 1;
    }
    /* eid_h is outside the hash (an index key), so it is checked against the event id. */
    bool eh_null = sqlite3_column_type(st, 10) == SQLITE_NULL;
    if (f[1] ? eh_null || sqlite3_column_int64(st, 10) != (int64_t)XXH3_64bits(f[1], l[1])
             : !eh_null) {
        snprintf(w->why, sizeof(w->why),
                 "row %lld (%s %s) was altered: its eid_h lookup key is not the XXH3 of its "
                 "event id (the event cannot be found by id)",
                 (long long)seq, kind, eid);
        return 2;
    }
    int64_t before;
    uint8_t anc[32];
    if (w->first_seq != 1 && !w->first_cp_seq && l[0] == 10 && !memcmp(f[0], "checkpoint", 10) &&
        !f[4] && f[5] && parse_checkpoint(f[5], &before, anc) && before == w->first_seq) {
        if (memcmp(anc, w->first_prev, 32) == 0) w->first_cp_seq = seq;
    }
    memcpy(w->last, sqlite3_column_blob(st, 9), 32);
    w->prev_seq = seq;
    w->rows++;
    return 0;
}

int wh_chain_walk_end(wh_chain_walker *w)
{
    if (w->rows == 0 || w->first_seq == 1 || w->first_cp_seq) return 0;
    snprintf(w->why, sizeof(w->why),
             "rows 1 to %lld are missing and no retention checkpoint accounts for them",
             (long long)w->first_seq - 1);
    return 1;
}

/* ---- SQLite helpers ---- */

int wh_chain_id_bits(sqlite3 *db)
{
    sqlite3_stmt *st;
    int bits = 16;
    if (sqlite3_prepare_v2(db,
                           "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = "
                           "'audit_event_h'",
                           -1, &st, NULL) != SQLITE_OK)
        return bits;
    const char *sql =
        sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    const char *p = sql ? strstr(sql, "seq >> ") : NULL;
    if (p) {
        long v = strtol(p + 7, NULL, 10);
        if (v > 0 && v < 40) bits = (int)v;
    }
    sqlite3_finalize(st);
    return bits;
}

bool wh_chain_sql_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
}

int64_t wh_chain_sql_i64(sqlite3 *db, const char *sql, int64_t arg)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    if (arg >= 0) sqlite3_bind_int64(st, 1, arg);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}
