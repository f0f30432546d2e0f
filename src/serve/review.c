/* review.c - the review queue's verdicts: approve or deny a held event (see service.h). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "ingest.h"
#include "internal.h"
#include "outbox_impl.h"

/* ---- reviews ---- */

static void json_error(wh_buf *out, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void json_error(wh_buf *out, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    wh_buf_puts(out, "{\"error\":{\"code\":\"");
    wh_buf_puts(out, code);
    wh_buf_puts(out, "\",\"message\":");
    wh_buf_json_str(out, msg, strlen(msg));
    wh_buf_puts(out, "}}");
}

static void put_kv(wh_buf *b, const char *k, const char *v, bool first)
{
    if (!first) wh_buf_putc(b, ',');
    wh_buf_json_str(b, k, strlen(k));
    wh_buf_putc(b, ':');
    if (v)
        wh_buf_json_str(b, v, strlen(v));
    else
        wh_buf_puts(b, "null");
}

/* A verdict in flight: its event id is claimed from the decision until its review row is
 * committed or the store failed (the notice's call), whichever comes first. */
typedef struct review_claim {
    wh_store_notice notice;
    wh_service *s;
    struct review_claim *next;
    char id[];
} review_claim;

/* Claims event_id for one verdict; NULL when another holds it (or out of memory: *nomem). */
static review_claim *claim_take(wh_service *s, const char *event_id, bool *nomem)
{
    size_t n = strlen(event_id);
    review_claim *c = calloc(1, sizeof(*c) + n + 1);
    *nomem = !c;
    if (!c) return NULL;
    memcpy(c->id, event_id, n + 1);
    c->s = s;
    pthread_mutex_lock(&s->review_lock);
    for (review_claim *o = s->claims; o; o = o->next) {
        if (!strcmp(o->id, event_id)) {
            pthread_mutex_unlock(&s->review_lock);
            free(c);
            return NULL;
        }
    }
    c->next = s->claims;
    s->claims = c;
    pthread_mutex_unlock(&s->review_lock);
    return c;
}

void wh_claim_release(review_claim *c)
{
    wh_service *s = c->s;
    pthread_mutex_lock(&s->review_lock);
    for (review_claim **p = &s->claims; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&s->review_lock);
    free(c);
}

/* The writer's notice: the review row is committed (the item is resolved in the database,
 * so a later verdict reads it as such) or the store failed (the item stays pending). */
static void claim_done(void *ud, bool ok)
{
    WH_UNUSED(ok);
    wh_claim_release(ud);
}

/* The verdict's mod_action event (serve/api.md: "review:<verb>:<id>"), as JSON. */
static void review_event(wh_buf *ev, const wh_review_item *it, const char *verb,
                         const char *event_id, const char *moderator)
{
    wh_buf_puts(ev, "{\"id\":");
    char rid[400];
    snprintf(rid, sizeof(rid), "review:%s:%s", verb, event_id);
    wh_buf_json_str(ev, rid, strlen(rid));
    wh_buf_puts(ev, ",\"type\":\"mod_action\"");
    put_kv(ev, "platform", it->platform ? it->platform : "", false);
    put_kv(ev, "channel", it->channel ? it->channel : "", false);
    put_kv(ev, "moderator", moderator, false);
    put_kv(ev, "target", it->user, false);
    put_kv(ev, "action", verb, false);
    put_kv(ev, "ref_event", event_id, false);
    wh_buf_putc(ev, '}');
}

/* Nothing here waits for the database: an HTTP event loop calls it. The item is read (a
 * WAL read, which another process's write lock does not block), the event id claimed so
 * that a second verdict is refused at once, the mod_action decided and both rows queued;
 * the caller answers once *ticket_out is committed (or waits for it here when ticket_out is
 * NULL). The claim is released by the writer once the review row is committed, when the
 * item reads as resolved. */
int wh_service_review(wh_service *s, const char *event_id, bool approve, const char *moderator,
                      const char *note, wh_buf *out, uint64_t *ticket_out)
{
    if (ticket_out) *ticket_out = 0;
    int status = 200;
    bool nomem = false, reserved = false;
    wh_review_item it = {0};
    wh_buf ev, dec, rec, ops;
    wh_buf_init(&ops);
    wh_buf_init(&ev);
    wh_buf_init(&dec);
    wh_buf_init(&rec);
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    review_claim *claim = claim_take(s, event_id, &nomem);
    if (!claim) {
        if (nomem) {
            json_error(out, "internal", "out of memory");
            status = 500;
        } else {
            json_error(out, "already_resolved", "a verdict on event '%s' is being recorded",
                       event_id);
            status = 409;
        }
        goto done;
    }
    switch (wh_store_review_get(s->store, event_id, &it)) {
    case WH_OK:
        break;
    case WH_EINVAL:
        json_error(out, "not_found", "event '%s' is not in the review queue", event_id);
        status = 404;
        goto done;
    case WH_ECORRUPT: /* inserted or altered outside whiply: no verdict may act on it */
        json_error(out, "review_item_not_in_audit",
                   "event '%s' is in the review queue but the audit trail does not vouch for "
                   "it ('whiply audit verify' says more)",
                   event_id);
        status = 409;
        goto done;
    default:
        json_error(out, "store_error", "the review queue cannot be read");
        status = 503;
        goto done;
    }
    if (strcmp(it.status, "pending") != 0) {
        json_error(out, "already_resolved", "event '%s' was already %s", event_id, it.status);
        status = 409;
        goto done;
    }
    /* The review row's room first: once the mod_action is decided (the behaviour state
     * changed), its row must not be refused. */
    if (!wh_store_reserve(s->store, 1)) {
        wh_service_count_rejected(s, WH_REJ_QUEUE);
        json_error(out, "busy", "the audit queue is full; retry after the Retry-After seconds");
        status = 429;
        goto done;
    }
    reserved = true;
    const char *verb = approve ? "approve" : "deny";
    /* The moderator's verdict reaches the behaviour state as a mod_action event (strikes,
     * reputation), decided and audited like any other. */
    review_event(&ev, &it, verb, event_id, moderator);
    /* through the ingest seam like any event; the review row's ticket below covers its rows */
    wh_ingest_req in = {.body = ev.p, .len = ev.len, .single = true, .out = &dec};
    wh_status sv = wh_ingest_submit(s, &in);
    if (sv != WH_OK) {
        bool busy = sv == WH_EBUSY;
        json_error(out, busy ? "busy" : "store_error", "the review could not be recorded; %s",
                   busy ? "retry after the Retry-After seconds" : "try again");
        status = busy ? 429 : 503;
        goto done;
    }
    wh_buf_putc(&rec, '{');
    put_kv(&rec, "event_id", event_id, true);
    put_kv(&rec, "action", verb, false);
    put_kv(&rec, "moderator", moderator, false);
    put_kv(&rec, "note", note, false);
    wh_buf_puts(&rec, ",\"decision\":");
    wh_buf_puts(&rec, it.decision ? it.decision : "null");
    wh_buf_putc(&rec, '}');
    b.reserved = true;
    wh_rec *r = wh_rec_add(&b, WH_REC_REVIEW);
    wh_rec_set(&b, r, WH_RF_EVENT_ID, event_id, strlen(event_id));
    if (it.channel) wh_rec_set(&b, r, WH_RF_CHANNEL, it.channel, strlen(it.channel));
    if (it.user) wh_rec_set(&b, r, WH_RF_USER, it.user, strlen(it.user));
    wh_rec_set(&b, r, WH_RF_ACTION, verb, strlen(verb));
    wh_rec_set(&b, r, WH_RF_BODY, rec.p, rec.len);
    wh_rec_set(&b, r, WH_RF_MODERATOR, moderator, strlen(moderator));
    if (note) wh_rec_set(&b, r, WH_RF_NOTE, note, strlen(note));
    /* the verdict on the platform (release or deny the held message) and the review
     * webhooks: inserted with the review row */
    wh_outbox_review_ops(s->outbox, event_id, approve, it.platform, it.channel, it.user, it.event,
                         wh_buf_cstr(&rec), &ops);
    if (ops.len) wh_rec_set(&b, r, WH_RF_OPS, ops.p, ops.len);
    if (ops.oom) b.oom = true;
    /* after the mod_action's rows: its ticket covers them too */
    uint64_t t = rec.oom ? 0 : wh_store_submit(s->store, &b);
    if (!t) {
        json_error(out, "store_error", "the review could not be recorded; try again");
        status = 503;
        goto done;
    }
    reserved = false; /* used */
    claim->notice = (wh_store_notice){.ticket = t, .fn = claim_done, .ud = claim};
    if (wh_store_notify(s->store, &claim->notice)) claim = NULL; /* the writer releases it */
    wh_dash_reviewed(s->dash, event_id, approve ? "approved" : "denied", moderator, it.channel,
                     it.user);
    wh_buf_puts(out, "{\"event_id\":");
    wh_buf_json_str(out, event_id, strlen(event_id));
    wh_buf_puts(out, ",\"status\":");
    wh_buf_puts(out, approve ? "\"approved\"" : "\"denied\"");
    wh_buf_puts(out, ",\"moderator\":");
    wh_buf_json_str(out, moderator, strlen(moderator));
    wh_buf_puts(out, ",\"mod_action\":");
    wh_buf_append(out, dec.p, dec.len && dec.p[dec.len - 1] == '\n' ? dec.len - 1 : dec.len);
    wh_buf_putc(out, '}');
    if (ticket_out) {
        *ticket_out = t;
    } else if (!wh_store_wait(s->store, t)) {
        out->len = 0;
        json_error(out, "audit_unavailable", "the audit store failed: %s",
                   wh_store_error(s->store) ?: "unknown");
        status = 503;
    }
done:
    if (reserved) wh_store_unreserve(s->store, 1);
    if (claim) wh_claim_release(claim);
    wh_rec_batch_free(&b);
    wh_buf_free(&ops);
    wh_buf_free(&rec);
    wh_buf_free(&dec);
    wh_buf_free(&ev);
    wh_review_item_free(&it);
    return status;
}
