/* stream.h - GET /v1/stream: Server-Sent Events of what the daemon does (decisions, review
 * verdicts, reloads), for the dashboard and any other client (docs/api.md).
 *
 * One hub per service. Publishers (the ingest seam, review.c, service.c's reload) format an
 * event once into a reference-counted message and put a pointer to it into each
 * subscriber's ring; they never wait for a subscriber and never allocate per subscriber.
 * A ring holds WH_STREAM_RING messages: when a client reads slower than events come, the
 * messages that do not fit are dropped for that client alone and counted, and the client is
 * told so ("event: lagging" with the number dropped) before its next message. Deciding is
 * never slowed by a client: with no subscriber, publishing is one atomic load.
 *
 * A subscriber's connection is a libmicrohttpd response with a content reader: when its ring
 * is empty the reader suspends the connection (the event loop serves others meanwhile) and
 * the next publish resumes it. A comment line every WH_STREAM_PING_MS keeps proxies from
 * closing an idle stream and finds clients that went away.
 *
 * Decisions are offered, not published (wh_stream_offer): each subscriber says what it wants
 * (GET /v1/stream?channel=&action=&allow=, wh_stream_filter) and the event is formatted once,
 * by a callback, only when one of them takes it. Plain `allow` decisions (no shadow rule, no
 * channel action, no targets: most of chat) are sampled, at most `allow` a second for each
 * subscriber; every other decision that passes its filters is sent in full. Once a second each
 * subscriber gets a "stats" event: the decisions of its channels by action over the interval
 * and how many allows sampling left out, so that a rate shown is the real one.
 *
 * Threads: publish and offer from any thread (the dashboard offers from its feed thread
 * alone, off the deciding path); wh_stream_response from an event loop's request handler;
 * wh_stream_close once, before the HTTP daemon stops (it ends every stream, so that no connection
 * stays suspended); wh_stream_free after the HTTP daemon stopped. */
#ifndef WH_STREAM_H
#define WH_STREAM_H

#include <microhttpd.h>

#include "base/base.h"
#include "request.h"

#define WH_STREAM_RING 8192
#define WH_STREAM_PING_MS 15000
#define WH_STREAM_STATS_MS 1000

typedef struct wh_stream wh_stream;

/* kind_names: the name of each kind (< WH_STREAM_KINDS of them), for the stats event. */
wh_stream *wh_stream_new(const char *const *kind_names, unsigned nkinds);
void wh_stream_free(wh_stream *st);
/* Ends every stream and refuses new subscribers (they get an empty, ended stream). */
void wh_stream_close(wh_stream *st);

/* True when someone listens: publishers skip formatting an event otherwise. */
bool wh_stream_active(const wh_stream *st);
/* Sends one event to every subscriber: "event: TYPE" and the JSON object json[0..n) (one
 * line: whiply's JSON never holds a raw newline) as its data, with a stream-wide id. */
void wh_stream_publish(wh_stream *st, const char *type, const char *json, size_t n);

/* One decision offered to the subscribers. */
typedef struct {
    const char *channel;
    size_t channel_n;
    unsigned kind;    /* its action */
    bool plain_allow; /* sampled for subscribers that ask so */
    int64_t now_ms;   /* the offerer's clock (for sampling) */
} wh_stream_item;
/* Writes the item's JSON object (one line) to out; false: it could not (out of memory). */
typedef bool (*wh_stream_format_fn)(void *ud, wh_buf *out);
/* Queues the item as "event: decision" for every subscriber whose filter takes it, formatted
 * by fmt once, when one does. The subscribers' connections are woken by wh_stream_flush: an
 * offerer flushes once after a run of offers (one wake-up a batch, not one an event). */
void wh_stream_offer(wh_stream *st, const wh_stream_item *it, wh_stream_format_fn fmt, void *ud);
void wh_stream_flush(wh_stream *st);
/* n events were lost before they could be offered (a full handoff): every subscriber is told
 * in its next lagging notice. */
void wh_stream_lost(wh_stream *st, uint64_t n);

/* The response for a new subscriber on connection c, which takes over f's channels (NULL:
 * out of memory; f is then freed). */
struct MHD_Response *wh_stream_response(wh_stream *st, struct MHD_Connection *c,
                                        wh_stream_filter *f);

typedef struct {
    uint64_t subscribers, published, dropped, sampled_out;
} wh_stream_stats;
void wh_stream_stats_get(wh_stream *st, wh_stream_stats *out);

#endif
