/* queue.c - record batches and the queue: reserve, submit, tickets, notices, waiting. */
#define _GNU_SOURCE
#include "store_impl.h"

#include <stdlib.h>
#include <string.h>

const char *const wh_rec_kind_names[WH_REC__COUNT] = {"decision", "review",     "reload",
                                                      "system",   "checkpoint", "action"};

/* ---- record batches ---- */

void wh_rec_batch_init(wh_rec_batch *b)
{
    memset(b, 0, sizeof(*b));
    wh_buf_init(&b->data);
}

void wh_rec_batch_free(wh_rec_batch *b)
{
    wh_buf_free(&b->data);
    free(b->v);
    memset(b, 0, sizeof(*b));
}

void wh_rec_batch_reset(wh_rec_batch *b)
{
    b->data.len = 0;
    b->data.oom = false;
    b->n = 0;
    b->oom = false;
}

wh_rec *wh_rec_add(wh_rec_batch *b, wh_rec_kind kind)
{
    static wh_rec dummy;
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 64;
        wh_rec *v = realloc(b->v, sizeof(*v) * cap);
        if (!v) {
            b->oom = true;
            return &dummy;
        }
        b->v = v;
        b->cap = cap;
    }
    wh_rec *r = &b->v[b->n++];
    r->kind = kind;
    r->hold = false;
    for (int i = 0; i < WH_RF__COUNT; i++)
        r->f[i] = (wh_rec_str){0, UINT32_MAX};
    return r;
}

void wh_rec_set(wh_rec_batch *b, wh_rec *r, wh_rec_field f, const char *p, size_t n)
{
    if (!p) return;
    r->f[f].off = (uint32_t)b->data.len;
    r->f[f].len = (uint32_t)n;
    wh_buf_append(&b->data, p, n);
    if (b->data.oom) b->oom = true;
}

/* ---- the queue ---- */

/* The bound counts every row not yet committed, those the writer has taken included (a
 * writer stuck on a lock holds its rows, and the queue must fill behind it), plus the rows
 * reserved by requests still deciding. */
bool wh_store_reserve(wh_store *s, uint32_t n)
{
    pthread_mutex_lock(&s->lock);
    bool ok = s->submitted - s->committed + s->reserved + n <= (uint64_t)s->o.queue;
    if (ok) s->reserved += n;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void wh_store_unreserve(wh_store *s, uint32_t n)
{
    pthread_mutex_lock(&s->lock);
    s->reserved -= n < s->reserved ? n : s->reserved;
    pthread_mutex_unlock(&s->lock);
}

uint64_t wh_store_submit(wh_store *s, wh_rec_batch *b)
{
    if (b->oom) return 0;
    pthread_mutex_lock(&s->lock);
    /* Reserved rows always fit; others (system rows, reviews) take what room is left. */
    uint64_t from_res = !b->reserved ? 0 : b->n < s->reserved ? b->n : s->reserved;
    if (s->submitted - s->committed + s->reserved + (b->n - from_res) > (uint64_t)s->o.queue) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    size_t base = s->q.data.len;
    wh_buf_append(&s->q.data, b->data.p, b->data.len);
    bool ok = !s->q.data.oom;
    if (ok && s->q.n + b->n > s->q.cap) {
        uint32_t cap = s->q.cap ? s->q.cap : 256;
        while (cap < s->q.n + b->n)
            cap *= 2;
        wh_rec *v = realloc(s->q.v, sizeof(*v) * cap);
        ok = v != NULL;
        if (v) {
            s->q.v = v;
            s->q.cap = cap;
        }
    }
    if (!ok) {
        s->q.data.len = base;
        s->q.data.oom = false;
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        wh_rec r = b->v[i];
        for (int k = 0; k < WH_RF__COUNT; k++)
            if (r.f[k].len != UINT32_MAX) r.f[k].off += (uint32_t)base;
        s->q.v[s->q.n++] = r;
    }
    s->submitted += b->n;
    s->reserved -= from_res;
    uint64_t ticket = s->submitted;
    s->st_queued = s->submitted - s->committed;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    wh_rec_batch_reset(b);
    return ticket;
}

bool wh_store_notify(wh_store *s, wh_store_notice *n)
{
    pthread_mutex_lock(&s->lock);
    bool later = s->committed < n->ticket && !s->error;
    if (later) {
        n->next = s->notices;
        s->notices = n;
    }
    pthread_mutex_unlock(&s->lock);
    return later;
}

/* Takes the notices whose rows are committed (all of them after a failure) off the list,
 * under s->lock; call_notices calls them once the lock is released. */
wh_store_notice *wh_store_take_notices(wh_store *s)
{
    wh_store_notice *due = NULL;
    for (wh_store_notice **p = &s->notices; *p;) {
        wh_store_notice *n = *p;
        if (n->ticket <= s->committed || s->error) {
            *p = n->next;
            n->next = due;
            due = n;
        } else {
            p = &n->next;
        }
    }
    return due;
}

void wh_store_call_notices(wh_store_notice *due, bool ok)
{
    while (due) {
        wh_store_notice *next = due->next; /* fn may free the notice */
        due->fn(due->ud, ok);
        due = next;
    }
}

/* Waiting is a notice that wakes the waiting thread: each waiter has its own condition
 * variable, so a commit wakes exactly the requests it covered (one broadcast woke every
 * waiting thread at every commit: five context switches a request at 20k requests/s). */
typedef struct {
    wh_store *s;
    pthread_cond_t cv;
    bool done;
} sync_wait;

static void wait_done(void *ud, bool ok)
{
    sync_wait *w = ud;
    pthread_mutex_lock(&w->s->lock);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->s->lock);
}

bool wh_store_wait(wh_store *s, uint64_t ticket)
{
    sync_wait w = {.s = s};
    pthread_cond_init(&w.cv, NULL);
    wh_store_notice n = {.ticket = ticket, .fn = wait_done, .ud = &w};
    if (wh_store_notify(s, &n)) {
        pthread_mutex_lock(&s->lock);
        while (!w.done)
            pthread_cond_wait(&w.cv, &s->lock);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_lock(&s->lock);
    bool ok = s->committed >= ticket && !s->error;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

uint64_t wh_store_durable(wh_store *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t d = s->durable;
    pthread_mutex_unlock(&s->lock);
    return d;
}

const char *wh_store_error(wh_store *s)
{
    pthread_mutex_lock(&s->lock);
    const char *e = s->error;
    pthread_mutex_unlock(&s->lock);
    return e;
}

void wh_store_stats_get(wh_store *s, wh_store_stats *out)
{
    out->queued = s->st_queued;
    out->written = s->st_written;
    out->commits = s->st_commits;
    out->commit_ns = s->st_commit_ns;
    out->last_seq = s->st_last_seq;
    out->pending_reviews = s->st_pending_reviews;
}
