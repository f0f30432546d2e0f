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
 * Threads: publish from any thread; wh_stream_response from an event loop's request
 * handler; wh_stream_close once, before the HTTP daemon stops (it ends every stream, so that
 * no connection stays suspended); wh_stream_free after the HTTP daemon stopped. */
#ifndef WH_STREAM_H
#define WH_STREAM_H

#include <microhttpd.h>

#include "base/base.h"

#define WH_STREAM_RING 8192
#define WH_STREAM_PING_MS 15000

typedef struct wh_stream wh_stream;

wh_stream *wh_stream_new(void);
void wh_stream_free(wh_stream *st);
/* Ends every stream and refuses new subscribers (they get an empty, ended stream). */
void wh_stream_close(wh_stream *st);

/* True when someone listens: publishers skip formatting an event otherwise. */
bool wh_stream_active(const wh_stream *st);
/* Sends one event to every subscriber: "event: TYPE" and the JSON object json[0..n) (one
 * line: whiply's JSON never holds a raw newline) as its data, with a stream-wide id. */
void wh_stream_publish(wh_stream *st, const char *type, const char *json, size_t n);

/* The response for a new subscriber on connection c (NULL: out of memory). */
struct MHD_Response *wh_stream_response(wh_stream *st, struct MHD_Connection *c);

typedef struct {
    uint64_t subscribers, published, dropped;
} wh_stream_stats;
void wh_stream_stats_get(wh_stream *st, wh_stream_stats *out);

#endif
