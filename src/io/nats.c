/* nats.c - see nats.h. */
#define _GNU_SOURCE
#include "nats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/bus.h"

const char *wh_nats_why(natsStatus s, jsErrCode jerr, char *buf, size_t n)
{
    const char *last = nats_GetLastError(NULL);
    if (jerr)
        snprintf(buf, n, "%s (JetStream error %d)%s%s", natsStatus_GetText(s), (int)jerr,
                 last && *last ? ": " : "", last ? last : "");
    else
        snprintf(buf, n, "%s%s%s", natsStatus_GetText(s), last && *last ? ": " : "",
                 last ? last : "");
    return buf;
}

wh_status wh_nats_open(wh_nats *n, const char *url, const char *name, const jsOptions *jo,
                       wh_error *e)
{
    memset(n, 0, sizeof(*n));
    natsOptions *o = NULL;
    char why[256];
    /* natsOptions_SetURL takes one URL: a list (bus.url is comma-separated) goes to
     * SetServers, one entry each, spaces around the commas dropped */
    char *copy = strdup(url ? url : "");
    const char *servers[64];
    int ns = 0;
    for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t && ns < 64;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        for (char *end = t + strlen(t); end > t && end[-1] == ' ';)
            *--end = 0;
        if (*t) servers[ns++] = t;
    }
    natsStatus s = copy && ns ? natsOptions_Create(&o) : NATS_INVALID_ARG;
    if (s == NATS_OK) s = natsOptions_SetServers(o, servers, ns);
    if (s == NATS_OK) s = natsOptions_SetName(o, name);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, 5000);
    /* a lost server is reconnected to for ever; published messages are buffered meanwhile */
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(o, false, NULL, NULL);
    free(copy);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return wh_error_set(e, WH_EINVAL, "bus url '%s': %s", url,
                            wh_nats_why(s, 0, why, sizeof(why)));
    }
    s = natsConnection_Connect(&n->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK)
        return wh_error_set(e, WH_EUNAVAILABLE, "cannot connect to the bus at %s: %s", url,
                            wh_nats_why(s, 0, why, sizeof(why)));
    jsOptions def;
    if (!jo) {
        jsOptions_Init(&def);
        def.Wait = 10000;
        jo = &def;
    }
    s = natsConnection_JetStream(&n->js, n->nc, (jsOptions *)jo);
    if (s != NATS_OK) {
        wh_nats_close(n);
        return wh_error_set(e, WH_EUNAVAILABLE, "JetStream at %s: %s", url,
                            wh_nats_why(s, 0, why, sizeof(why)));
    }
    return WH_OK;
}

void wh_nats_close(wh_nats *n)
{
    if (n->js) jsCtx_Destroy(n->js);
    if (n->nc) {
        natsConnection_FlushTimeout(n->nc, 2000);
        natsConnection_Destroy(n->nc);
    }
    memset(n, 0, sizeof(*n));
}

static wh_status ensure(wh_nats *n, const char *name, const char **subjects, int nsub, int replicas,
                        int64_t duplicates_ms, int64_t per_subject, wh_error *e)
{
    char why[256];
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, n->js, name, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return WH_OK;
    }
    if (s != NATS_NOT_FOUND)
        return wh_error_set(e, WH_EUNAVAILABLE, "stream %s: %s", name,
                            wh_nats_why(s, jerr, why, sizeof(why)));
    jsStreamConfig c;
    jsStreamConfig_Init(&c);
    c.Name = name;
    c.Subjects = subjects;
    c.SubjectsLen = nsub;
    c.Storage = js_FileStorage;
    c.Replicas = replicas;
    c.Duplicates = duplicates_ms * 1000000; /* ns */
    if (per_subject) c.MaxMsgsPerSubject = per_subject;
    jerr = 0;
    s = js_AddStream(&si, n->js, &c, NULL, &jerr);
    if (s != NATS_OK)
        return wh_error_set(e, WH_EIO, "cannot create stream %s: %s", name,
                            wh_nats_why(s, jerr, why, sizeof(why)));
    jsStreamInfo_Destroy(si);
    return WH_OK;
}

wh_status wh_nats_streams(wh_nats *n, int replicas, int64_t duplicates_ms, wh_error *e)
{
    const char *ev[] = {"whiply.events.>"};
    const char *out[] = {"whiply.decisions.>", "whiply.actions.>"};
    const char *state[] = {"whiply.state.>"};
    wh_status st = ensure(n, WH_BUS_EVENTS_STREAM, ev, 1, replicas, duplicates_ms, 0, e);
    if (st == WH_OK) st = ensure(n, WH_BUS_OUT_STREAM, out, 2, replicas, duplicates_ms, 0, e);
    /* one message a subject: a snapshot's manifest and chunks replace the last ones */
    if (st == WH_OK) st = ensure(n, WH_BUS_STATE_STREAM, state, 1, replicas, duplicates_ms, 1, e);
    return st;
}
