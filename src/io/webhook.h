/* webhook.h - the outbox's own executors: signed webhooks (Standard Webhooks) and alerts to a
 * moderators' channel (Discord and Slack incoming webhooks), both POSTed with libcurl.
 *
 * A webhook delivers one operation's payload with the headers webhook-id (the operation's
 * id: a receiver dedupes on it), webhook-timestamp (unix seconds) and webhook-signature
 * ("v1,<base64 of HMAC-SHA256(secret, id.timestamp.body)>"). An alert posts a group of
 * operations (held messages, a wave, a raid, a dead-lettered action) as one message. Either
 * maps the answer the same way: 2xx done; 429, 5xx and network errors retry (Retry-After
 * honoured); any other status fails for good.
 *
 * Each executor owns one curl handle (a kept-alive connection), used by its outbox worker
 * only. The configuration passed in must outlive the executor. */
#ifndef WH_WEBHOOK_H
#define WH_WEBHOOK_H

#include "serve/config.h"
#include "serve/outbox.h"

typedef struct wh_webhook wh_webhook;
wh_webhook *wh_webhook_new(const wh_webhook_cfg *c);
void wh_webhook_free(wh_webhook *w);
void wh_webhook_exec(void *ud, const wh_op *op, wh_op_result *res); /* ud: a wh_webhook */

/* "v1,<base64 HMAC-SHA256(key, id "." ts "." body)>" into out (at least 64 bytes). */
void wh_webhook_sign(const uint8_t *key, size_t kn, const char *id, int64_t ts, const char *body,
                     size_t n, char *out, size_t outn);

typedef struct wh_alerter wh_alerter;
wh_alerter *wh_alert_new(const wh_alert_cfg *c);
void wh_alert_free(wh_alerter *a);
/* Posts ops[0..n) (alert operations; payloads as wh_outbox makes them) as one message; the
 * result is the group's. */
void wh_alert_exec(void *ud, const wh_op *const *ops, uint32_t n, wh_op_result *res);
/* The message's JSON (Discord {"content","embeds"} or Slack {"text","blocks"}). */
void wh_alert_render(const wh_alert_cfg *c, const wh_op *const *ops, uint32_t n, wh_buf *out);
#define WH_ALERT_MAX_ITEMS 25 /* items one message names (more: the next message) */

#endif
