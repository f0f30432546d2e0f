/* http.h - the HTTP API of the daemon (libmicrohttpd), documented in docs/api.md.
 *
 * A pool of http_threads event loops (libmicrohttpd's thread pool, epoll). A request whose
 * answer waits for its audit rows is suspended, so its thread serves other connections, and
 * the audit writer resumes it once the rows are committed; group commit gathers the rows of
 * all of them. Thread per connection did the same with one thread a connection, and cost
 * five context switches a request at 20k requests/s (bench/RESULTS.md). Slow requests (a
 * reload or validation, which compiles a ruleset; a decisions or review query, which reads
 * the store) run on WH_HTTP_SLOW_THREADS threads of their own, their connections suspended
 * meanwhile, so a reload that compiles for seconds does not stall the events of the
 * connections that share its loop. Routes, their
 * methods and the scope each needs are one table in http.c. Every error is a JSON body
 * {"error":{"code","message"}}. */
#ifndef WH_HTTP_H
#define WH_HTTP_H

#include <stdarg.h>

#include "service.h"

#define WH_HTTP_SLOW_THREADS 2

typedef struct wh_http wh_http;

/* Listens on HOST:PORT (port 0: any free port; *port gets the one bound). admin_sha256
 * (may be NULL) is one more token, with every scope: the generated admin token. */
wh_http *wh_http_start(wh_service *svc, const char *listen, const uint8_t *admin_sha256, int *port,
                       wh_error *e);
/* Stops accepting connections, waits (up to timeout_ms) for the requests in flight, stops. */
void wh_http_stop(wh_http *h, int64_t timeout_ms);

/* Replaces out with the error body {"error":{"code","message"}} (the message made UTF-8:
 * it may quote what a client sent); returns status. */
int wh_http_verror(wh_buf *out, int status, const char *code, const char *fmt, va_list ap);

/* The one table from a status to the HTTP status that answers it (200, 400, 413, 422, 429,
 * 500, 503). */
int wh_http_status(wh_status st);

#endif
