/* chain.h - the audit chain's definition, internal to src/store/ (callers use store.h):
 * what each row hash and each review digest covers, how a review item is bound to the audit
 * row that vouches for it, and the walk that checks rows in order. The writer (writer.c),
 * the start check and the background check (check.c) and `whiply audit verify` (verify.c)
 * call the same functions, so what is written and what is checked cannot drift apart. docs/api.md
 * ("The hash chain") mirrors the comments here: change both together.
 *
 * Fields go into a digest as hash_fields (chain.c) encodes them: each as its length (4 bytes
 * little-endian; ff ff ff ff when NULL) and its bytes: an unambiguous encoding.
 *
 * The caller owns every digest context, connection and statement passed in, and uses each
 * from one thread at a time; nothing here keeps state but SHA-256, fetched once. */
#ifndef WH_CHAIN_H
#define WH_CHAIN_H

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- digests ---- */

/* The row hash: SHA-256 over prev (32 bytes), seq and at_ms (8 bytes little-endian each),
 * then kind, event_id, channel, user_id, action and body as hash_fields encodes them. */
void wh_chain_row_hash(EVP_MD_CTX *md, const uint8_t prev[32], uint64_t seq, int64_t at_ms,
                       const char *const *f, const uint32_t *len, uint8_t out[32]);

/* The review queue is bound to the chain by three digests (docs/api.md, the hash chain):
 * - review_sha256, in a hold's decision body: platform, user_name, text, event (hash_fields);
 *   the item's other columns are the row's own (event_id, channel, user_id, the body as its
 *   decision, at_ms as its created_ms);
 * - the item digest: review_sha256 (32 bytes), then event_id, channel, user_id, decision
 *   (hash_fields), then created_ms (8 bytes little-endian): what a carry row vouches for;
 * - the resolution digest: status, moderator, note (hash_fields), then resolved_ms (8 bytes
 *   little-endian, ff..ff when NULL): in a review row's body as "resolved_sha256". */
void wh_chain_review_hash(EVP_MD_CTX *md, const char *const *f, const uint32_t *l, uint8_t out[32]);

/* f: status, moderator, note */
void wh_chain_resolution_hash(EVP_MD_CTX *md, const char *const *f, const uint32_t *l,
                              bool resolved, int64_t resolved_ms, uint8_t out[32]);

/* The 32-byte hex value of "key":"..." in a body we wrote (the last one: ours are appended
 * at its end, after anything a client sent). */
bool wh_chain_body_hex(const char *body, size_t n, const char *key, uint8_t out[32]);

/* ---- review items and what binds them to the chain ---- */

/* The columns of a review item, in this order, as every reader of items selects them. */
#define WH_REVIEW_COLS                                                                             \
    "event_id, platform, channel, user_id, user_name, text, event, decision, created_ms, "         \
    "status, moderator, note, resolved_ms, bound_seq"
enum {
    WH_RC_EID,
    WH_RC_PLATFORM,
    WH_RC_CHANNEL,
    WH_RC_USER,
    WH_RC_USER_NAME,
    WH_RC_TEXT,
    WH_RC_EVENT,
    WH_RC_DECISION,
    WH_RC_CREATED,
    WH_RC_STATUS,
    WH_RC_MODERATOR,
    WH_RC_NOTE,
    WH_RC_RESOLVED,
    WH_RC_BOUND,
    WH_RC__COUNT
};

typedef struct {
    const char *c[WH_RC__COUNT]; /* NULL for a NULL column */
    uint32_t l[WH_RC__COUNT];
    int64_t created_ms, resolved_ms, bound_seq;
    bool has_resolved, has_bound;
} wh_review_row;

/* The item in st's columns from base on (WH_REVIEW_COLS): r points into st's row, valid
 * until st steps again. */
void wh_chain_review_row_of(sqlite3_stmt *st, int base, wh_review_row *r);

/* The item and resolution digests of an item, and the held_sha256 of rows written before
 * review_sha256 (text and event only). */
void wh_chain_review_row_digests(EVP_MD_CTX *md, const wh_review_row *r, uint8_t item[32],
                                 uint8_t res[32], uint8_t v1[32]);

/* What an audit row vouches for as the binding of an item of its event id: 'i' an item
 * digest (a hold with review_sha256, or a carry row), 'v' a held_sha256 (older holds), 0
 * nothing. f: kind, event_id, channel, user_id, action, body (row order). */
char wh_chain_row_binding(EVP_MD_CTX *md, const char *const *f, const uint32_t *l, int64_t at_ms,
                          uint8_t dg[32]);

#define WH_ROW_COLS "seq, at_ms, kind, event_id, channel, user_id, action, body, prev, hash"

/* Checks the audit row st holds (WH_ROW_COLS from column 0) against its own hash; fills f, l
 * (kind, event_id, channel, user_id, action, body) and at. */
bool wh_chain_row_self_check(EVP_MD_CTX *md, sqlite3_stmt *st, const char **f, uint32_t *l,
                             int64_t *at);

/* Whether the review item r is bound to the chain: the row its bound_seq names (or, for an
 * item written before bound_seq, its hold found through the event id index) has its event
 * id, matches its own hash and vouches for exactly r's columns. WH_ECORRUPT with why set
 * when not. The whole chain is not walked here (the background check and audit verify do
 * that): this stops an item inserted or edited in the database from being acted on. */
wh_status wh_chain_check_bound(sqlite3 *db, EVP_MD_CTX *md, const wh_review_row *r, char *why,
                               size_t whylen);

/* ---- walking the chain (verify, the start check, the background check) ---- */

/* Rows in seq order through wh_chain_walk_row: each must follow the one before, chain to it and
 * match its hash and its eid_h. A first row other than 1 chains to the anchor of a retention
 * checkpoint further on (deleted_before = that row): wh_chain_walk_end says whether one came. */
typedef struct {
    EVP_MD_CTX *md;
    uint8_t last[32]; /* hash of the row before the next */
    int64_t prev_seq, first_seq, rows;
    int64_t first_cp_seq;   /* the retention checkpoint accounting for a missing prefix (0: none) */
    uint8_t first_prev[32]; /* what the first row chains to */
    char why[600];
} wh_chain_walker;

#define WH_WALK_COLS WH_ROW_COLS ", eid_h"

/* 0 when the row (WH_WALK_COLS from column 0) is in order, 1 with w->why set when not (2
 * when only its eid_h is wrong). f, l and at are the row's fields for the caller. */
int wh_chain_walk_row(wh_chain_walker *w, sqlite3_stmt *st, const char **f, uint32_t *l,
                      int64_t *at);

/* 0 when a missing prefix is accounted for (or there is none), 1 with why set. */
int wh_chain_walk_end(wh_chain_walker *w);

/* ---- SQLite helpers the store's files share ---- */

/* Event ids are indexed by (seq >> 14, XXH3 of the id) in new databases, by seq >> 16 in
 * those made before (store.c says why): the width as the index's own definition has it,
 * so that a lookup's expression is always the index's (16 when it cannot be read). */
int wh_chain_id_bits(sqlite3 *db);

/* sqlite3_exec without a callback: true when it succeeded. */
bool wh_chain_sql_exec(sqlite3 *db, const char *sql);
/* Column 0 of the first row of sql (arg bound to its parameter when >= 0), or -1 when
 * the statement fails or yields no row or NULL. */
int64_t wh_chain_sql_i64(sqlite3 *db, const char *sql, int64_t arg);

#endif
