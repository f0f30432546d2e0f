/* outbox.h - what leaves the process: the durable action outbox and the executors that carry
 * its actions out (ARCHITECTURE.md, "One way in, one way out").
 *
 * A verdict that is not `allow` on an event from a platform that has an executor becomes one
 * or more operations (a warn, a delete, a timeout, a ban, a channel mode, ...); decisions,
 * actions and review events that match a webhook or alert filter become deliveries. They are
 * written to the `outbox` table of the audit database in the same transaction as the
 * decision's audit row, so an action exists exactly when its decision is durable, and a crash
 * loses none and invents none. Worker threads (one per executor) then carry them out with
 * retries (exponential backoff with full jitter, the executor's own Retry-After), a
 * dead-letter state after `outbox.attempts`, and an audit row for each outcome.
 *
 * Idempotency: an operation's id is derived from (event id, kind, target), so the same
 * decision replayed (a restart, a bus redelivery) maps to the same row (INSERT OR IGNORE) and
 * is never carried out twice by the outbox; executors pass the id on where the platform
 * accepts one (Standard Webhooks' webhook-id).
 *
 * Executors are adapters (src/io/): each registers under a platform name (the event's
 * "platform", e.g. the name given to an IRC network in `platforms:`) before events flow. */
#ifndef WH_OUTBOX_H
#define WH_OUTBOX_H

#include "base/base.h"

typedef enum {
    WH_OP_WARN = 0,     /* tell the user (message): IRC NOTICE, Helix Warn Chat User */
    WH_OP_DELETE,       /* delete the message (msg_id) */
    WH_OP_TIMEOUT,      /* silence the user for duration_s */
    WH_OP_BAN,          /* ban the user */
    WH_OP_UNBAN,        /* reversals are operations too */
    WH_OP_UNTIMEOUT,    /* */
    WH_OP_CHANNEL_MODE, /* switch a channel mode (mode: followers, slow, ...) for duration_s */
    WH_OP_RELEASE,      /* a moderator approved a held message: release it where possible */
    WH_OP_DENY,         /* a moderator denied a held message: remove it where possible */
    WH_OP_WEBHOOK,      /* deliver payload to a webhook endpoint (platform "webhook:NAME") */
    WH_OP_ALERT,        /* post payload to a moderators' channel (platform "alert:NAME") */
    WH_OP__COUNT
} wh_op_kind;
extern const char *const wh_op_kind_names[WH_OP__COUNT]; /* "warn", "delete", ... */

/* One operation as an executor sees it. Strings are NUL-terminated and valid for the call
 * only; absent ones are "" (never NULL). */
typedef struct {
    const char *id; /* the idempotency key: 32 hex digits of a hash of (event id, kind, target) */
    wh_op_kind kind;
    const char *platform, *channel;
    const char *user_id, *user_name; /* the target */
    const char *event_id;            /* the event that caused it */
    const char *msg_id;              /* the platform's message id (the event's meta.msg_id) */
    const char *message;             /* warn: the text for the user */
    const char *reason;              /* the deciding rule's reason */
    const char *rule;                /* the deciding rule's id */
    const char *mode;                /* channel_mode: the mode's name */
    uint32_t duration_s;             /* timeout, channel_mode: seconds (0: none/permanent) */
    const char *payload;             /* webhook, alert: the body to send */
    uint32_t attempt;                /* 1 on the first try */
} wh_op;

typedef enum {
    WH_OPR_DONE = 0,    /* carried out */
    WH_OPR_RETRY,       /* failed, may succeed later (network, 5xx, 429, not connected) */
    WH_OPR_FAILED,      /* failed for good (4xx other than 429, refused): dead-lettered */
    WH_OPR_UNSUPPORTED, /* the platform cannot do this (IRC delete): recorded as such */
} wh_op_result_code;

typedef struct {
    wh_op_result_code code;
    int64_t retry_after_ms; /* RETRY: the platform's own wait (Retry-After, rate-limit reset);
                               0: the outbox's backoff decides */
    char detail[256];       /* what happened, for the audit row and GET /v1/actions */
} wh_op_result;

/* Carries one operation out, synchronously, on the outbox's worker thread for this executor
 * (never two calls at once for one executor). Must return within a bounded time (a network
 * call with a timeout). */
typedef void (*wh_executor_fn)(void *ud, const wh_op *op, wh_op_result *res);

typedef struct wh_outbox wh_outbox;

/* Registers the executor for a platform name (before events from it are decided). */
wh_status wh_outbox_register(wh_outbox *o, const char *platform, wh_executor_fn fn, void *ud);
/* Removes it, waiting for a call in progress; its pending operations stay in the outbox. */
void wh_outbox_unregister(wh_outbox *o, const char *platform);

/* Added with the outbox (not part of the first contract): how an adapter reaches the outbox of
 * the daemon it runs in (owned by the service; valid until wh_service_close). */
typedef struct wh_service wh_service;
wh_outbox *wh_service_outbox(wh_service *s);

#endif
