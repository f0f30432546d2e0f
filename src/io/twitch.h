/* twitch.h - Twitch (docs/platforms.md, "Twitch"): chat comes in through Twitch's IRC dialect
 * (the IRC client of irc.h with cfg->twitch set) and EventSub webhooks; actions go out through
 * the Helix API with libcurl.
 *
 * The pure parts (tags to roles, Helix and OAuth answers, EventSub payloads and their
 * signature) are functions of their input alone, unit-tested on Twitch's documented examples
 * and fuzzed (fuzz/fuzz_twitch.c). */
#ifndef WH_IO_TWITCH_H
#define WH_IO_TWITCH_H

#include "base/base.h"
#include "serve/config.h"
#include "serve/outbox.h"

/* ---- pure ---- */

/* Appends ,"roles":[...] for a badges tag ("broadcaster/1,subscriber/12": each badge's name;
 * mod=1 adds "moderator" when the badges lack it). Nothing when there are none. */
void wh_twitch_roles(wh_buf *b, wh_str badges, bool mod);

/* Helix's error answer {"error":"Unauthorized","status":401,"message":"Invalid OAuth token"}:
 * its message (else its error) into msg; false when body is not such an object. */
bool wh_helix_error(const char *body, size_t n, char *msg, size_t cap);

/* The OAuth token endpoint's answer: access_token and (when present) refresh_token, copied
 * into the buffers; false when there is no access_token. */
bool wh_twitch_token_parse(const char *body, size_t n, char *access, size_t acap, char *refresh,
                           size_t rcap);

/* Twitch-Eventsub-Message-Signature: "sha256=" and the hex HMAC-SHA256 of id + timestamp +
 * body under secret, compared in constant time. */
bool wh_eventsub_signature_ok(const char *secret, const char *id, const char *timestamp,
                              const char *body, size_t n, const char *signature);

/* One EventSub notification body as event lines for platform (appended to out, each ending
 * in '\n'): channel.chat.message -> a message, automod.message.hold -> a message (meta.automod
 * true: held by AutoMod), channel.moderate -> a mod_action for ban, timeout, unban,
 * untimeout, warn and delete. *n_events gets how many were written (0 for other types:
 * nothing to decide). WH_ESYNTAX with why when the body is not what the docs say. */
wh_status wh_eventsub_events(const char *platform, const char *msg_id, const char *body, size_t n,
                             wh_buf *out, uint32_t *n_events, char *why, size_t whyn);

/* ---- EventSub webhooks, received by the daemon's HTTP server ----
 * POST /v1/eventsub/PLATFORM (no bearer token: Twitch signs each request). Each
 * platforms.twitch item with an eventsub_secret registers a receiver under its name. */
typedef struct wh_service wh_service;
wh_status wh_eventsub_add(const char *platform, const char *secret);
void wh_eventsub_remove(const char *platform);

/* One request. The checks, in order: a receiver for platform (else 404); the Twitch-Eventsub
 * headers (400); the signature (403); a timestamp within 10 minutes of now (403: a replay);
 * a message id not seen among the receiver's last 4,096 (else 200 and nothing again). Then
 * webhook_callback_verification answers the challenge (text/plain), a notification's events
 * go through wh_ingest_submit (the answer waits for *ticket), a revocation is logged.
 * Returns the HTTP status; out gets the body and *ctype its type. */
int wh_eventsub_receive(wh_service *svc, const char *platform, const char *msg_id,
                        const char *timestamp, const char *signature, const char *type,
                        const char *body, size_t n, wh_buf *out, const char **ctype,
                        uint64_t *ticket);

/* ---- Helix: the executor of a platforms.twitch channel ---- */
typedef struct wh_helix wh_helix;
wh_helix *wh_helix_new(const wh_irc_config *cfg, wh_error *e);
void wh_helix_free(wh_helix *h);
/* The outbox executor (ud is the wh_helix). */
void wh_helix_execute(void *ud, const wh_op *op, wh_op_result *res);
/* The current user access token (refreshed on a 401), for IRC's PASS oauth:TOKEN. */
void wh_helix_token(wh_helix *h, char *out, size_t cap);
/* Did whiply itself ban, time out or delete this (a user id or a message id) within the
 * last 30 s? The IRC side skips the CLEARCHAT/CLEARMSG its own actions cause. */
bool wh_helix_recent(wh_helix *h, const char *id, size_t n);

#endif
