/* ingest.c - the one way events come into the daemon (see ingest.h). */
#define _GNU_SOURCE
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "dash.h"
#include "internal.h"
#include "outbox_impl.h"

typedef struct {
    const char *p;
    uint32_t n;
    uint32_t no;       /* line number in the body (1-based) */
    uint32_t off, len; /* the output line in tmp */
    uint64_t dkey;     /* idempotency key of a decided event (0: none) */
    bool fresh;        /* decided now (not a retry answered from the window, not a replay) */
} line_t;

static void add_decision_rec(wh_rec_batch *b, const wh_analysis *an, const wh_verdict *v,
                             wh_outbox *ob, wh_buf *ops, const char *json, size_t n,
                             const char *line, size_t line_len, const wh_ingest_req *req,
                             uint32_t idx)
{
    wh_action act = v->action;
    /* what the decision makes leave the process, inserted in its audit row's transaction */
    ops->len = 0;
    ops->oom = false;
    wh_outbox_decision_ops(ob, v, &an->ev, json, n, ops);
    /* From a bus partition: the audit row's body names the partition and the event's stream
     * sequence after the decision's own fields (whiply audit verify --bus reads them). */
    char stack[1024], *with_bus = NULL;
    if (req->bus_seq && n >= 2 && json[n - 1] == '}') {
        size_t cap = n + 80;
        with_bus = cap <= sizeof(stack) ? stack : malloc(cap);
        int k = with_bus ? snprintf(with_bus, cap, "%.*s,\"bus\":{\"partition\":%u,\"seq\":%llu}}",
                                    (int)(n - 1), json, req->bus_partition,
                                    (unsigned long long)req->bus_seq[idx])
                         : -1;
        if (k > 0 && (size_t)k < cap) json = with_bus, n = (size_t)k;
    }
    const wh_event *ev = &an->ev;
    wh_rec *r = wh_rec_add(b, WH_REC_DECISION);
    wh_rec_set(b, r, WH_RF_EVENT_ID, ev->id.p, ev->id.n);
    if (ev->channel.n) wh_rec_set(b, r, WH_RF_CHANNEL, ev->channel.p, ev->channel.n);
    /* The engine keys a user by id, or by name when the event has no id: so does the audit
     * row, and the review queue's target. */
    wh_str user = ev->type == WH_EV_MOD_ACTION ? ev->target
                  : ev->user_id.n              ? ev->user_id
                                               : ev->user_name;
    if (user.n) wh_rec_set(b, r, WH_RF_USER, user.p, user.n);
    const char *a = wh_action_names[act];
    wh_rec_set(b, r, WH_RF_ACTION, a, strlen(a));
    wh_rec_set(b, r, WH_RF_BODY, json, n);
    if (ops->len) wh_rec_set(b, r, WH_RF_OPS, ops->p, ops->len);
    if (ops->oom) b->oom = true;
    if (act == WH_ACT_HOLD) {
        r->hold = true;
        if (ev->platform.n) wh_rec_set(b, r, WH_RF_PLATFORM, ev->platform.p, ev->platform.n);
        if (ev->user_name.n) wh_rec_set(b, r, WH_RF_USER_NAME, ev->user_name.p, ev->user_name.n);
        wh_rec_set(b, r, WH_RF_TEXT, ev->text.p ? ev->text.p : "", ev->text.n);
        wh_rec_set(b, r, WH_RF_EVENT, line, line_len);
    }
    if (with_bus != stack) free(with_bus);
}

/* Decides the events of body, appending one line per non-blank input line to out; the
 * audit commit to wait for goes to *ticket_out (0: none). */
static wh_status decide_body(wh_service *s, const wh_ingest_req *req, const char *body, size_t len,
                             bool single, bool replay, wh_buf *out, uint32_t *nlines,
                             uint32_t *nerrors, uint64_t *ticket_out)
{
    *ticket_out = 0;
    *nlines = *nerrors = 0;
    /* Cut the lines (blank ones produce nothing, as in `whiply check`). */
    uint32_t n = 0, cap = 0, no = 0;
    line_t *lines = NULL;
    for (size_t i = 0; i < len;) {
        const char *nl = single ? NULL : memchr(body + i, '\n', len - i);
        no++;
        size_t e = nl ? (size_t)(nl - body) : len;
        size_t l = e - i;
        if (l && body[i + l - 1] == '\r') l--;
        if (!wh_line_is_blank(body + i, l)) {
            if (n == (uint32_t)s->cfg->limits.events) {
                free(lines);
                atomic_fetch_add(&s->rejected[WH_REJ_EVENTS], 1);
                return WH_ELIMIT;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                line_t *v = realloc(lines, sizeof(*v) * cap);
                if (!v) {
                    free(lines);
                    return WH_ENOMEM;
                }
                lines = v;
            }
            lines[n++] = (line_t){body + i, (uint32_t)l, no, 0, 0, 0, false};
        }
        i = e + 1;
    }
    if (!n) {
        free(lines);
        return WH_OK;
    }
    if (!replay && !wh_store_reserve(s->store, n)) {
        free(lines);
        atomic_fetch_add(&s->rejected[WH_REJ_QUEUE], 1);
        return WH_EBUSY;
    }
    wh_analysis *an = malloc(sizeof(*an) * n);
    if (!an) {
        free(lines);
        return WH_ENOMEM;
    }
    wh_arena keep;
    wh_arena_init(&keep, 64 * 1024);
    wh_buf tmp;
    wh_buf_init(&tmp);
    wh_rec_batch rb;
    wh_rec_batch_init(&rb);
    rb.reserved = true;
    wh_buf ops;
    wh_buf_init(&ops);
    wh_status ret = WH_OK;
    uint64_t ticket = 0;
    int64_t now = wh_now_ms();
    uint64_t t0 = wh_mono_ns();

    pthread_rwlock_rdlock(&s->gen_rw);
    gen_t *g = s->g;
    wh_worker *w = wh_gen_worker_get(g, &s->eo);
    if (!w) {
        pthread_rwlock_unlock(&s->gen_rw);
        if (!replay) wh_store_unreserve(s->store, n);
        ret = WH_ENOMEM;
        goto done;
    }
    uint32_t shard_mask_n[64] = {0}, decided = 0;
    uint64_t durable = 0;
    bool have_durable = false;
    for (uint32_t i = 0; i < n; i++) {
        wh_analyze(w, lines[i].p, lines[i].n, lines[i].no, now, &keep, g->nshards, &an[i]);
        if (an[i].kind == WH_AN_EVENT && an[i].ev.text.n > s->cfg->limits.text) {
            char msg[128];
            snprintf(msg, sizeof(msg), "\"text\" is %u bytes; the limit is %lld", an[i].ev.text.n,
                     (long long)s->cfg->limits.text);
            lines[i].off = (uint32_t)tmp.len;
            wh_write_line_error(&tmp, lines[i].no, "text_too_long", msg);
            lines[i].len = (uint32_t)(tmp.len - lines[i].off);
            an[i].kind = WH_AN_ERROR;
            an[i].pre.n = 0;
        } else if (an[i].kind == WH_AN_EVENT) {
            shard_mask_n[an[i].shard]++;
        }
    }
    wh_gen_worker_put(g, w);
    for (uint32_t sh = 0; sh < g->nshards; sh++) {
        if (!shard_mask_n[sh]) continue;
        pthread_mutex_lock(&g->dec_lock[sh]);
        wh_table *dd = s->dedupe[sh];
        for (uint32_t i = 0; i < n; i++) {
            if (an[i].kind != WH_AN_EVENT || an[i].shard != sh) continue;
            size_t off = tmp.len;
            dedupe_entry *de = NULL;
            uint64_t k = 0;
            if (dd) {
                bool created = false;
                k = XXH3_64bits_withSeed(an[i].ev.id.p, an[i].ev.id.n, s->dedupe_seed);
                de = wh_table_get(dd, k, now, true, &created);
                if (replay && de && de->line) { /* replays rebuild state: decide every one */
                    free(de->line);
                    de->line = NULL;
                }
                if (de && !created && de->line) { /* seen: the same answer, nothing else */
                    wh_buf_append(&tmp, de->line, de->len);
                    lines[i].off = (uint32_t)off;
                    lines[i].len = de->len;
                    /* A decision not known to be committed is answered once it is, and not
                     * at all (503) when its commit failed: the wait says which. */
                    if (!have_durable) {
                        durable = wh_store_durable(s->store);
                        have_durable = true;
                    }
                    if (de->ticket > durable && de->ticket > ticket) ticket = de->ticket;
                    atomic_fetch_add_explicit(&s->replayed, 1, memory_order_relaxed);
                    continue;
                }
            }
            const wh_verdict *v = wh_decide_verdict(g->dec[sh], &an[i]);
            wh_verdict_json(v, &tmp);
            wh_action act = v->action;
            lines[i].off = (uint32_t)off;
            lines[i].len = (uint32_t)(tmp.len - off);
            if (de && (de->line = malloc(lines[i].len))) {
                memcpy(de->line, tmp.p + off, lines[i].len);
                de->len = lines[i].len;
                lines[i].dkey = k;
            }
            decided++;
            if (replay) continue; /* its audit row is in the trail of whoever decided it */
            lines[i].fresh = true;
            atomic_fetch_add_explicit(&s->actions[act], 1, memory_order_relaxed);
            add_decision_rec(&rb, &an[i], v, s->outbox, &ops, tmp.p + off, lines[i].len - 1,
                             lines[i].p, lines[i].n, req, i);
        }
        if (rb.n) {
            uint64_t t = wh_store_submit(s->store, &rb);
            if (!t) ret = WH_ENOMEM;
            if (t > ticket) ticket = t;
            /* Replays of these wait for t too. Rows that were never queued have no ticket
             * to wait for: their entries are forgotten, so a retry is decided again. */
            for (uint32_t i = 0; dd && i < n; i++) {
                dedupe_entry *e =
                    lines[i].dkey && an[i].shard == sh ? wh_table_peek(dd, lines[i].dkey) : NULL;
                if (e && t)
                    e->ticket = t;
                else if (e)
                    wh_dedupe_drop(e);
            }
        }
        pthread_mutex_unlock(&g->dec_lock[sh]);
    }
    pthread_rwlock_unlock(&s->gen_rw);
    /* The dashboard's recent events and live stream, outside every lock of the deciding. */
    for (uint32_t i = 0; i < n; i++)
        if (lines[i].fresh)
            wh_dash_decided(s->dash, &an[i].ev, lines[i].p, lines[i].n, tmp.p + lines[i].off,
                            lines[i].len - 1, now);
    /* Decided (the state changed), as whiply_decisions_total counts them; a retry answered
     * from the window is counted in whiply_events_replayed_total only. */
    if (!replay) {
        atomic_fetch_add_explicit(&s->events, decided, memory_order_relaxed);
        wh_store_unreserve(s->store, n - decided);
    }
    if (tmp.oom) ret = WH_ENOMEM;
    uint64_t engine_ns = wh_mono_ns() - t0;
    wh_histo_add(&s->engine_lat, engine_ns / n, n);
    if (ret == WH_OK) *ticket_out = ticket; /* the caller waits (or is notified) */
    if (ret == WH_OK) {
        for (uint32_t i = 0; i < n; i++) {
            if (an[i].kind == WH_AN_ERROR && !lines[i].len) {
                wh_buf_append(out, an[i].pre.p, an[i].pre.n);
                (*nerrors)++;
            } else {
                if (an[i].kind == WH_AN_ERROR) (*nerrors)++;
                wh_buf_append(out, tmp.p + lines[i].off, lines[i].len);
            }
        }
        *nlines = n;
        atomic_fetch_add_explicit(&s->errors, *nerrors, memory_order_relaxed);
        if (out->oom) ret = WH_ENOMEM;
    }
done:
    wh_buf_free(&ops);
    wh_rec_batch_free(&rb);
    wh_buf_free(&tmp);
    wh_arena_free(&keep);
    free(an);
    free(lines);
    return ret;
}

static void on_durable(void *ud, bool ok)
{
    wh_ingest_req *r = ud;
    r->done(r, ok);
}

wh_status wh_ingest_submit(wh_service *s, wh_ingest_req *r)
{
    r->nlines = r->nerrors = 0;
    r->ticket = 0;
    uint64_t ticket = 0;
    wh_status st = decide_body(s, r, r->body ? r->body : "", r->len, r->single, r->replay, r->out,
                               &r->nlines, &r->nerrors, &ticket);
    if (st != WH_OK) return st;
    if (!r->done) {
        r->ticket = ticket;
        return WH_OK;
    }
    if (ticket) {
        r->notice = (wh_store_notice){.ticket = ticket, .fn = on_durable, .ud = r};
        if (wh_store_notify(s->store, &r->notice)) return WH_OK;
    }
    /* nothing to wait for: committed already, or the store has failed */
    r->done(r, !ticket || !wh_store_error(s->store));
    return WH_OK;
}
