/* irc.h - whiply on an IRC network (docs/platforms.md, "IRC"): a client that reads chat and
 * carries out the actions decided on it.
 *
 * One thread per network runs a poll loop over the connection (plain TCP or TLS with
 * OpenSSL): CAP LS 302 (message-tags, server-time, account-tag, extended-join, multi-prefix,
 * sasl, draft/message-redaction where offered), SASL PLAIN, NICK/USER, JOIN of the
 * configured channels after 001 and again after a reconnect or a KICK of itself, PING/PONG
 * both ways, reconnects with exponential backoff and full jitter.
 *
 * In: PRIVMSG to a channel is a `message` event, JOIN/PART are `join`/`part`, and KICK and
 * MODE +b/-b (and quiets) by a human operator (not whiply's own nick, not a server) are
 * `mod_action` events; all go through wh_ingest_submit (serve/ingest.h), several lines read
 * at once as one submission. The adapter decides nothing.
 *
 * Out: wh_irc_execute is the outbox executor (serve/outbox.h) for the network's name. It
 * turns an operation into lines (MODE, KICK, NOTICE, REDACT), queues them ahead of every
 * less urgent line, and returns once they are written to the socket (or says why not).
 * Lines leave through a token bucket (flood.burst, then one per flood.every); PONG and the
 * registration go first and outside it.
 *
 * Threads: wh_irc_execute may be called from any one thread at a time per client (the
 * outbox's worker); everything it shares with the loop is under the client's lock. */
#ifndef WH_IO_IRC_H
#define WH_IO_IRC_H

#include "base/base.h"
#include "serve/config.h"
#include "serve/outbox.h"

typedef struct wh_irc wh_irc;
typedef struct wh_service wh_service;

/* Starts the client of network cfg (copied) for svc: registers its executor with the service's
 * outbox under cfg->name, then its thread connects and reconnects for ever. NULL with e on a
 * bad TLS setup (ca_file), a name the outbox has already, or no memory. */
wh_irc *wh_irc_start(wh_service *svc, const wh_irc_config *cfg, wh_error *e);
/* Unregisters the executor (its pending operations stay in the outbox), sends QUIT, stops the
 * thread and frees. NULL is fine. */
void wh_irc_stop(wh_irc *c);

/* The outbox executor (ud is the client). */
void wh_irc_execute(void *ud, const wh_op *op, wh_op_result *res);

/* For /metrics, logs and tests. */
typedef struct {
    bool registered;          /* 001 received on the current connection */
    uint32_t channels_joined; /* of the configured channels, now */
    uint64_t connects, lines_in, lines_out, events, bad_lines, busy, actions;
    uint64_t dropped; /* outgoing lines dropped: the queue was full */
} wh_irc_stats;
void wh_irc_stats_get(wh_irc *c, wh_irc_stats *out);
const char *wh_irc_name(const wh_irc *c);
/* The lines of /metrics for these clients (n of them). */
void wh_irc_metrics(wh_irc *const *c, uint32_t n, wh_buf *out);

#endif
