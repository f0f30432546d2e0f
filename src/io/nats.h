/* nats.h - a NATS connection with its JetStream context, and the streams whiply uses
 * (bus.h names them). Shared by `whiply publish`, `whiply bus dump` and the daemon's bus. */
#ifndef WH_IO_NATS_H
#define WH_IO_NATS_H

#include <nats/nats.h>

#include "base/base.h"

typedef struct {
    natsConnection *nc;
    jsCtx *js;
} wh_nats;

/* Connects to url (comma-separated nats:// URLs; the client fails over between them and
 * reconnects for ever); jo: the JetStream options (NULL: a 10 s wait for API calls).
 * WH_EUNAVAILABLE when no server answers within a few seconds. */
wh_status wh_nats_open(wh_nats *n, const char *url, const char *name, const jsOptions *jo,
                       wh_error *e);
void wh_nats_close(wh_nats *n);

/* Makes sure the events, decisions and state streams exist with these replicas and duplicate
 * window (an existing stream is left as it is). */
wh_status wh_nats_streams(wh_nats *n, int replicas, int64_t duplicates_ms, wh_error *e);

/* A JetStream failure as text: the status and, when JetStream said, its error code. */
const char *wh_nats_why(natsStatus s, jsErrCode jerr, char *buf, size_t n);

#endif
