/* stream.c - Server-Sent Events for libmicrohttpd (see stream.h). */
#define _GNU_SOURCE
#include "stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One formatted event, shared by every ring it is in. */
typedef struct {
    _Atomic uint32_t refs;
    uint32_t len;
    char data[];
} msg_t;

typedef struct sub {
    wh_stream *st;
    struct MHD_Connection *conn;
    pthread_mutex_t lock;
    msg_t *ring[WH_STREAM_RING];
    uint32_t head, count;
    uint32_t off;     /* bytes of ring[head] already sent */
    uint64_t dropped; /* dropped since the last "lagging" notice */
    bool suspended;   /* the reader suspended the connection; a publish resumes it */
    bool closed;      /* end the stream once the ring is sent */
    bool greeted;     /* the first bytes (retry, hello) were sent */
    struct sub *prev, *next;
} sub_t;

struct wh_stream {
    pthread_mutex_t lock; /* the list; taken before a sub's lock */
    sub_t *subs;
    _Atomic uint32_t nsubs;
    bool closed;
    uint64_t next_id;
    _Atomic uint64_t published, dropped;
    pthread_t pinger;
    pthread_mutex_t ping_lock;
    pthread_cond_t ping_cond;
    bool ping_quit;
};

static void msg_unref(msg_t *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) free(m);
}

/* Under sub's lock: wakes the connection when its reader is waiting. */
static void sub_wake(sub_t *u)
{
    if (u->suspended) {
        u->suspended = false;
        MHD_resume_connection(u->conn);
    }
}

/* Under st->lock: m goes to every subscriber (or is counted as dropped for it). */
static void fan_out(wh_stream *st, msg_t *m)
{
    for (sub_t *u = st->subs; u; u = u->next) {
        pthread_mutex_lock(&u->lock);
        if (u->count == WH_STREAM_RING) {
            u->dropped++;
            atomic_fetch_add_explicit(&st->dropped, 1, memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
            u->ring[(u->head + u->count++) % WH_STREAM_RING] = m;
        }
        sub_wake(u);
        pthread_mutex_unlock(&u->lock);
    }
}

bool wh_stream_active(const wh_stream *st)
{
    return st && atomic_load_explicit(&st->nsubs, memory_order_relaxed) > 0;
}

void wh_stream_publish(wh_stream *st, const char *type, const char *json, size_t n)
{
    if (!wh_stream_active(st)) return;
    size_t cap = n + strlen(type) + 64;
    msg_t *m = malloc(sizeof(*m) + cap);
    if (!m) return;
    atomic_init(&m->refs, 1);
    pthread_mutex_lock(&st->lock);
    int k = snprintf(m->data, cap, "id: %llu\nevent: %s\ndata: ", (unsigned long long)++st->next_id,
                     type);
    memcpy(m->data + k, json, n);
    memcpy(m->data + k + n, "\n\n", 2);
    m->len = (uint32_t)(k + n + 2);
    fan_out(st, m);
    pthread_mutex_unlock(&st->lock);
    atomic_fetch_add_explicit(&st->published, 1, memory_order_relaxed);
    msg_unref(m);
}

/* A comment line to every subscriber: keeps the stream alive through proxies, and a client
 * that went away is found when its connection is resumed and the write fails. */
static void *ping_main(void *arg)
{
    wh_stream *st = arg;
    static const char ping[] = ": ping\n\n";
    pthread_mutex_lock(&st->ping_lock);
    while (!st->ping_quit) {
        struct timespec ts = wh_deadline_ms(WH_STREAM_PING_MS);
        pthread_cond_timedwait(&st->ping_cond, &st->ping_lock, &ts);
        if (st->ping_quit) break;
        if (!wh_stream_active(st)) continue;
        msg_t *m = malloc(sizeof(*m) + sizeof(ping));
        if (!m) continue;
        atomic_init(&m->refs, 1);
        memcpy(m->data, ping, sizeof(ping) - 1);
        m->len = sizeof(ping) - 1;
        pthread_mutex_lock(&st->lock);
        fan_out(st, m);
        pthread_mutex_unlock(&st->lock);
        msg_unref(m);
    }
    pthread_mutex_unlock(&st->ping_lock);
    return NULL;
}

wh_stream *wh_stream_new(void)
{
    wh_stream *st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->ping_lock, NULL);
    pthread_cond_init(&st->ping_cond, NULL);
    if (pthread_create(&st->pinger, NULL, ping_main, st) != 0) {
        pthread_mutex_destroy(&st->lock);
        pthread_mutex_destroy(&st->ping_lock);
        pthread_cond_destroy(&st->ping_cond);
        free(st);
        return NULL;
    }
    return st;
}

void wh_stream_close(wh_stream *st)
{
    if (!st) return;
    pthread_mutex_lock(&st->lock);
    st->closed = true;
    for (sub_t *u = st->subs; u; u = u->next) {
        pthread_mutex_lock(&u->lock);
        u->closed = true;
        sub_wake(u);
        pthread_mutex_unlock(&u->lock);
    }
    pthread_mutex_unlock(&st->lock);
}

void wh_stream_free(wh_stream *st)
{
    if (!st) return;
    pthread_mutex_lock(&st->ping_lock);
    st->ping_quit = true;
    pthread_cond_signal(&st->ping_cond);
    pthread_mutex_unlock(&st->ping_lock);
    pthread_join(st->pinger, NULL);
    /* every response was destroyed with the HTTP daemon, which unlinked its subscriber */
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->ping_lock);
    pthread_cond_destroy(&st->ping_cond);
    free(st);
}

/* Appends what fits of s to buf (at *w, max bytes), all or nothing. */
static bool put_all(char *buf, size_t max, size_t *w, const char *s, size_t n)
{
    if (max - *w < n) return false;
    memcpy(buf + *w, s, n);
    *w += n;
    return true;
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    sub_t *u = cls;
    size_t w = 0;
    pthread_mutex_lock(&u->lock);
    if (!u->greeted) {
        /* the reconnection delay an EventSource uses, and a first line that flushes the
         * headers through so that a client knows it is subscribed */
        static const char hello[] = "retry: 2000\n: whiply stream\n\n";
        if (put_all(buf, max, &w, hello, sizeof(hello) - 1)) u->greeted = true;
    }
    if (u->dropped && u->off == 0) {
        char note[96];
        int k = snprintf(note, sizeof(note), "event: lagging\ndata: {\"dropped\":%llu}\n\n",
                         (unsigned long long)u->dropped);
        if (put_all(buf, max, &w, note, (size_t)k)) u->dropped = 0;
    }
    while (u->count && w < max) {
        msg_t *m = u->ring[u->head];
        size_t k = m->len - u->off < max - w ? m->len - u->off : max - w;
        memcpy(buf + w, m->data + u->off, k);
        w += k;
        u->off += (uint32_t)k;
        if (u->off < m->len) break;
        msg_unref(m);
        u->ring[u->head] = NULL;
        u->head = (u->head + 1) % WH_STREAM_RING;
        u->count--;
        u->off = 0;
    }
    if (w) {
        pthread_mutex_unlock(&u->lock);
        return (ssize_t)w;
    }
    if (u->closed) {
        pthread_mutex_unlock(&u->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Nothing to send: wait for a publish. Suspended under the lock, so that a publish
     * (which resumes under it) cannot come between the flag and the suspension. */
    u->suspended = true;
    MHD_suspend_connection(u->conn);
    pthread_mutex_unlock(&u->lock);
    return 0;
}

static void sub_free(void *cls)
{
    sub_t *u = cls;
    wh_stream *st = u->st;
    pthread_mutex_lock(&st->lock);
    if (u->prev)
        u->prev->next = u->next;
    else
        st->subs = u->next;
    if (u->next) u->next->prev = u->prev;
    atomic_fetch_sub(&st->nsubs, 1);
    pthread_mutex_unlock(&st->lock);
    for (uint32_t i = 0; i < u->count; i++)
        msg_unref(u->ring[(u->head + i) % WH_STREAM_RING]);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

struct MHD_Response *wh_stream_response(wh_stream *st, struct MHD_Connection *c)
{
    sub_t *u = calloc(1, sizeof(*u));
    if (!u) return NULL;
    u->st = st;
    u->conn = c;
    pthread_mutex_init(&u->lock, NULL);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, u, sub_free);
    if (!resp) {
        pthread_mutex_destroy(&u->lock);
        free(u);
        return NULL;
    }
    pthread_mutex_lock(&st->lock);
    u->closed = st->closed;
    u->next = st->subs;
    if (st->subs) st->subs->prev = u;
    st->subs = u;
    atomic_fetch_add(&st->nsubs, 1);
    pthread_mutex_unlock(&st->lock);
    /* a stream is quiet between events (a ping every WH_STREAM_PING_MS): not an idle
     * connection to time out */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    return resp;
}

void wh_stream_stats_get(wh_stream *st, wh_stream_stats *out)
{
    out->subscribers = atomic_load(&st->nsubs);
    out->published = atomic_load(&st->published);
    out->dropped = atomic_load(&st->dropped);
}
