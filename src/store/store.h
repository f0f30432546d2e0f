/* store.h - the SQLite database of the daemon: the audit trail, the review queue and the
 * rate-limit quotas.
 *
 * Audit trail: every decision and every human action is one row, appended and never
 * changed. Each row carries the SHA-256 of the previous row's hash and its own content
 * (chain.h says exactly what is hashed), so `whiply audit verify` can walk the chain
 * and name the first row that was altered, inserted or removed. Retention deletes a prefix
 * of old rows and appends a checkpoint row naming the first row kept and the hash it must
 * chain to, so the chain stays verifiable.
 *
 * One writer thread owns the write connection. Producers submit batches of records and get
 * a ticket; the writer commits whatever is queued in one transaction (group commit) and
 * wakes the producers whose tickets it covered. A producer answers its client only after
 * wh_store_wait, so every decision acknowledged is in the audit (WAL, synchronous=NORMAL:
 * durable across a crash of the process; store.sync: full makes it durable across a crash
 * of the machine). The queue is bounded: a submit beyond it is refused (HTTP 429). */
#ifndef WH_STORE_H
#define WH_STORE_H

#include <stdio.h>

#include "base/base.h"
#include "state/ratelimit.h"

typedef struct wh_store wh_store;

typedef enum {
    WH_REC_DECISION = 0, /* an event decided (a hold also enters the review queue) */
    WH_REC_REVIEW,       /* a moderator approved or denied a held event */
    WH_REC_RELOAD,       /* the rules changed */
    WH_REC_SYSTEM,       /* start, stop */
    WH_REC_CHECKPOINT,   /* retention deleted the rows before this one's "deleted_before" */
    WH_REC_ACTION,       /* an outbox operation's outcome (done, retry, dead, ...) or request */
    WH_REC__COUNT
} wh_rec_kind;
extern const char *const wh_rec_kind_names[WH_REC__COUNT];

/* The text fields of a record (absent ones are NULL in the database). */
typedef enum {
    WH_RF_EVENT_ID = 0,
    WH_RF_CHANNEL,
    WH_RF_USER,
    WH_RF_ACTION,
    WH_RF_BODY,      /* the decision JSON, or the human action's JSON */
    WH_RF_PLATFORM,  /* holds: for the review queue */
    WH_RF_USER_NAME, /* holds */
    WH_RF_TEXT,      /* holds */
    WH_RF_EVENT,     /* holds: the event as received */
    WH_RF_MODERATOR, /* reviews */
    WH_RF_NOTE,      /* reviews */
    WH_RF_OPS,       /* any record: outbox operations it causes (wh_op_encode), inserted with it */
    WH_RF_OUTCOME,   /* actions: the operation's new state (wh_outcome_encode), set with it */
    WH_RF__COUNT
} wh_rec_field;

typedef struct {
    uint32_t off, len; /* len UINT32_MAX: absent */
} wh_rec_str;

typedef struct {
    wh_rec_kind kind;
    bool hold; /* decisions: enters the review queue */
    wh_rec_str f[WH_RF__COUNT];
} wh_rec;

/* Records built by one producer before they are submitted together. */
typedef struct {
    wh_buf data;
    wh_rec *v;
    uint32_t n, cap;
    bool oom;
    bool reserved; /* its rows were reserved with wh_store_reserve */
} wh_rec_batch;

void wh_rec_batch_init(wh_rec_batch *b);
void wh_rec_batch_free(wh_rec_batch *b);
void wh_rec_batch_reset(wh_rec_batch *b);
/* Starts a record; then set its fields with wh_rec_set. */
wh_rec *wh_rec_add(wh_rec_batch *b, wh_rec_kind kind);
void wh_rec_set(wh_rec_batch *b, wh_rec *r, wh_rec_field f, const char *p, size_t n);

typedef struct {
    bool sync_full;
    int64_t preallocate; /* WAL bytes written ahead at open; database growth step (0: none) */
    int64_t batch;       /* most rows in one transaction */
    int64_t queue;       /* most rows queued */
    int64_t audit_keep_ms, review_keep_ms, retention_every_ms; /* 0: keep */
    wh_ratelimiter *quotas; /* its quota counters are persisted with each commit (may be NULL) */
    /* Signed checkpoints (sign.h): key, file and URL are paths / a URL, "auto" (beside the
     * data folder: DIR-signing.key, DIR-checkpoints.ndjson) or "none"; NULL means "none". */
    const char *signing_key, *checkpoints, *checkpoint_url;
    int64_t sign_rows, sign_ms; /* sign after this many new rows, or this long with new rows */
    bool start_afresh; /* start although the trail does not match the last signed checkpoint */
} wh_store_opts;

/* Opens (creating) DIR/whiply.db and starts the writer. NULL with err set on failure,
 * which includes a trail that does not match the newest signed checkpoint in the checkpoints
 * file (empty, shorter, or another hash at its row) or whose newest rows do not chain, unless
 * o->start_afresh. A walk of the whole chain and PRAGMA quick_check run in the background
 * (wh_store_health). */
wh_store *wh_store_open(const char *dir, const wh_store_opts *o, wh_error *e);
/* Writes everything queued, stops the writer, closes. */
void wh_store_close(wh_store *s);

/* Queues the batch's records (in order, after everything queued before) and resets it.
 * Returns the ticket to wait for, or 0 when the queue is full (nothing was queued). */
uint64_t wh_store_submit(wh_store *s, wh_rec_batch *b);
/* Reserves room for n rows before deciding, so that their submit cannot be refused after
 * the decisions changed the state; false when the queue is full. Rows submitted use the
 * reservation up; wh_store_unreserve returns what was not used (error lines). */
bool wh_store_reserve(wh_store *s, uint32_t n);
void wh_store_unreserve(wh_store *s, uint32_t n);
/* Waits until the ticket's rows are committed. False when the store failed (the error is
 * logged and in wh_store_error). */
bool wh_store_wait(wh_store *s, uint64_t ticket);
/* Instead of waiting: fn(ud, ok) is called (from the writer thread, no lock held) once the
 * ticket's rows are committed (ok) or the store failed (!ok). Returns false, calling
 * nothing, when that is already so: the caller goes on at once. The notice is the caller's
 * and must live until fn is called. */
typedef struct wh_store_notice {
    uint64_t ticket;
    void (*fn)(void *ud, bool ok);
    void *ud;
    struct wh_store_notice *next;
} wh_store_notice;
bool wh_store_notify(wh_store *s, wh_store_notice *n);
const char *wh_store_error(wh_store *s); /* NULL while healthy */
/* The newest ticket whose rows are known to be committed: every ticket up to it is in the
 * database (tickets count rows from this start; a failed commit never moves it). */
uint64_t wh_store_durable(wh_store *s);

typedef struct {
    uint64_t queued;    /* rows waiting */
    uint64_t written;   /* rows committed since start */
    uint64_t commits;   /* transactions */
    uint64_t last_seq;  /* newest row */
    uint64_t commit_ns; /* total time in commits */
    uint64_t pending_reviews;
} wh_store_stats;
void wh_store_stats_get(wh_store *s, wh_store_stats *out);

/* What the background check found: "checking" until it is done, then "ok" or "damaged"
 * (reason says why; damage found at any time, such as a failed row check of a review item,
 * also sets it). */
typedef struct {
    const char *state; /* "checking", "ok", "damaged" (static strings) */
    char reason[256];  /* empty unless damaged */
    uint64_t rows_verified;
    uint64_t signed_seq; /* newest row covered by a signed checkpoint (0: none) */
} wh_store_health;
void wh_store_health_get(wh_store *s, wh_store_health *out);
/* {"checkpoint":{...},"public_key":"HEX"} of the newest signed checkpoint, appended to out;
 * WH_EINVAL when signing is off or nothing was signed yet. */
wh_status wh_store_checkpoint_json(wh_store *s, wh_buf *out);

/* ---- reads (any thread; JSON appended to out) ----
 * Point lookups (one decision, one review item) use a small pool of connections of their
 * own, so that they never wait behind a long query of the decision list. */
typedef struct {
    const char *channel, *user, *action; /* NULL: any */
    int64_t since_ms;                    /* written at or after (0: any) */
    int64_t before_seq;                  /* older than this row (0: newest first) */
    int limit;
} wh_decision_filter;
/* {"decisions":[...],"next":SEQ|null}: decisions, newest first. */
wh_status wh_store_decisions(wh_store *s, const wh_decision_filter *f, wh_buf *out);
/* The decision JSON of an event id (the newest); WH_EINVAL when there is none. */
wh_status wh_store_decision(wh_store *s, const char *event_id, wh_buf *out);
/* {"items":[...],"next":...} of the review queue with status (pending, approved, denied;
 * NULL: all), oldest first, after the item `after` (an event id; NULL: from the start). */
wh_status wh_store_reviews(wh_store *s, const char *status, const char *after, int limit,
                           wh_buf *out);

/* The audit search of the dashboard's mod log (search.c). Every filter is optional (NULL or
 * 0: any); rule matches a decision whose "rules" holds it, moderator a review row's. */
typedef enum { WH_AUDIT_JSON = 0, WH_AUDIT_NDJSON, WH_AUDIT_CSV } wh_audit_format;
typedef struct {
    const char *kind, *event_id, *channel, *user, *action, *rule, *moderator;
    int64_t since_ms, until_ms; /* written in [since, until) */
    int64_t before_seq;         /* older than this row (0: from the newest) */
    int limit;
    wh_audit_format format;
} wh_audit_filter;
/* Rows newest first: JSON {"rows":[{seq, at_ms, kind, event_id, channel, user, action,
 * body}], "next": SEQ|null}; NDJSON one row object a line; CSV a header line and one line a
 * row (RFC 4180 quoting; body is the row's JSON). */
wh_status wh_store_audit_search(wh_store *s, const wh_audit_filter *f, wh_buf *out);

typedef struct {
    char status[16];
    char *platform, *channel, *user, *event, *decision; /* malloc'd */
} wh_review_item;
/* WH_EINVAL when the event is not in the queue; WH_ECORRUPT when the item is not bound to
 * the audit trail (no held decision or carry row of its event id, or one whose digest does
 * not match the item, or a row that does not match its own hash): an item that was inserted
 * or altered outside the daemon, which must not be approved or denied. */
wh_status wh_store_review_get(wh_store *s, const char *event_id, wh_review_item *it);
void wh_review_item_free(wh_review_item *it);

/* ---- the action outbox's table (outbox.c here; the outbox itself is src/serve/outbox.c) ----
 * An operation travels with the record that causes it (a decision, a review verdict, an
 * action's outcome) in its WH_RF_OPS field and is inserted (INSERT OR IGNORE on its id) by the
 * transaction that writes that record's audit row: it exists exactly when its cause is
 * durable. An ACTION record's WH_RF_OUTCOME updates its operation's row in its own row's
 * transaction. Status: pending (due, never tried), retry (due at due_at), done, dead,
 * unsupported. "in_flight" is never written: an operation being carried out is still due in
 * the database, so after a crash it is carried out again (at least once). */
typedef enum {
    WH_OC_ID = 0, /* 32 hex digits */
    WH_OC_KIND,   /* wh_op_kind_names */
    WH_OC_PLATFORM,
    WH_OC_CHANNEL,
    WH_OC_USER_ID,
    WH_OC_USER_NAME,
    WH_OC_EVENT_ID,
    WH_OC_MSG_ID,
    WH_OC_MESSAGE,
    WH_OC_REASON,
    WH_OC_RULE,
    WH_OC_MODE,
    WH_OC_PAYLOAD,
    WH_OC__STR
} wh_op_col;
extern const char *const wh_op_col_names[WH_OC__STR];

/* One operation's columns (absent strings: NULL or length 0; stored as ""). */
typedef struct {
    const char *s[WH_OC__STR];
    uint32_t n[WH_OC__STR];
    uint32_t duration_s;
} wh_op_row;

/* Appends op to an encoded list (each string as its length, 4 bytes, then its bytes). */
void wh_op_encode(wh_buf *b, const wh_op_row *op);
/* The next op of an encoded list at *pos into op (pointing into p); false at the end or on a
 * truncated list. */
bool wh_op_decode(const char *p, size_t n, size_t *pos, wh_op_row *op);

/* An operation's new state: status (see above), attempts so far, due_at (when it is due
 * next; -1 for none), detail (what happened). only_if_final: only when the row is dead or
 * unsupported (a retry requested through the API). */
typedef struct {
    const char *id, *status, *detail; /* NUL-terminated to encode; with their lengths decoded */
    uint32_t id_n, status_n, detail_n;
    uint32_t attempts;
    int64_t due_at;
    bool only_if_final;
} wh_outcome_row;
void wh_outcome_encode(wh_buf *b, const wh_outcome_row *o);
bool wh_outcome_decode(const char *p, size_t n, wh_outcome_row *o);

/* Called by the writer after each commit that inserted operations (no lock held). */
typedef void (*wh_store_ops_fn)(void *ud);
void wh_store_set_ops_hook(wh_store *s, wh_store_ops_fn fn, void *ud);
/* Called by the writer inside the transaction that signs a checkpoint: fn appends the
 * operations the checkpoint causes (webhooks) to ops, encoded; they are inserted with it. */
typedef void (*wh_store_cp_fn)(void *ud, const char *json, size_t n, wh_buf *ops);
void wh_store_set_checkpoint_hook(wh_store *s, wh_store_cp_fn fn, void *ud);

/* An operation as read back: the row, its status and attempts. Strings are valid for the
 * call only. */
typedef struct {
    wh_op_row op;
    const char *status, *detail;
    uint32_t attempts;
    int64_t due_at, created_ms, updated_ms;
} wh_op_state;
typedef void (*wh_op_state_fn)(void *ud, const wh_op_state *st);
/* The operations of platform due at now (oldest due first), at most limit; returns how many
 * were passed to fn, or -1 when the read failed. */
int wh_store_ops_due(wh_store *s, const char *platform, int64_t now, int limit, wh_op_state_fn fn,
                     void *ud);
/* When platform's next operation is due (-1: none). */
int64_t wh_store_ops_next_due(wh_store *s, const char *platform);
/* One operation by id: WH_EINVAL when there is none. */
wh_status wh_store_op_get(wh_store *s, const char *id, wh_op_state_fn fn, void *ud);
typedef struct {
    const char *status, *platform, *channel; /* NULL: any */
    const char *after;                       /* an id: the page after it (NULL: the first) */
    int limit;
} wh_op_filter;
/* The operations that pass f, oldest first, to fn; *count: how many. */
wh_status wh_store_ops_list(wh_store *s, const wh_op_filter *f, wh_op_state_fn fn, void *ud,
                            int *count);
/* Counts of the operations due (status "due": pending or retry) and dead, by platform. */
typedef void (*wh_op_count_fn)(void *ud, const char *platform, const char *status, int64_t n);
wh_status wh_store_ops_counts(wh_store *s, wh_op_count_fn fn, void *ud);

/* Restores the persisted quota counters into rl. */
void wh_store_load_quotas(wh_store *s, wh_ratelimiter *rl);

/* ---- verification (a database file; any process; verify.c) ----
 * Prints what it found to out; returns 0 when the chain is whole, 1 when a row was altered,
 * inserted or removed (the first one is named), 2 when the database cannot be read. A chain
 * cannot show that rows were cut from its end: expect_head (may be NULL), a head hash
 * recorded earlier somewhere else, must be the hash of one of its rows. With pubkey, every
 * signed checkpoint (the database's and those in checkpoints_file) must carry a valid
 * signature and match the chain at its row, none may lie beyond the last row, and a missing
 * prefix must be accounted for by a retention row that a signature covers. */
typedef struct {
    const uint8_t *expect_head;   /* 32 bytes, or NULL */
    const uint8_t *pubkey;        /* 32 bytes, or NULL */
    const char *checkpoints_file; /* or NULL */
} wh_verify_opts;
int wh_audit_verify(const char *db_path, const wh_verify_opts *o, FILE *out);

/* The review queue's resolved messages (items without text, such as held joins, are left
 * out) as labelled NDJSON for `whiply train`, oldest verdict first:
 * {"id","text","label","moderator","resolved_ms"}, label deny_label for a denial and "ok" (a
 * negative label) for an approval. Returns the number of lines, or -1 with a message on err when
 * the database cannot be read. */
int64_t wh_review_export(const char *db_path, const char *deny_label, FILE *out, FILE *err);

#endif
