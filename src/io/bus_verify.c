/* bus_verify.c - see bus.h: the audit trails of the instances on one bus, held against the
 * events stream. Each decision row of an event from the bus names its partition and stream
 * sequence (ingest.c, the "bus" field after the decision's fields in the row's body); each
 * partition's events up to its durable consumer's ack floor are read back from the stream, and each
 * must have a decision row in one of the trails -- one, or several with the same decision (decided
 * again after a takeover: the later copies were dropped by JetStream as duplicates) -- or
 * be a message that is not an event (its error line has no audit row). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "engine/event.h"
#include "io/nats.h"

typedef struct {
    uint64_t seq; /* 0: empty slot */
    uint32_t part, rows;
    bool conflict; /* rows disagree on the decision */
    char *decision;
} seen_t;

typedef struct {
    seen_t *v;
    size_t cap, n;
} seen_map;

static seen_t *seen_slot(seen_map *m, uint64_t seq)
{
    size_t i = (size_t)(seq * 0x9E3779B97F4A7C15ull >> 20) & (m->cap - 1);
    while (m->v[i].seq && m->v[i].seq != seq)
        i = (i + 1) & (m->cap - 1);
    return &m->v[i];
}

static bool seen_grow(seen_map *m)
{
    if (m->n * 2 < m->cap) return true;
    seen_map g = {calloc(m->cap ? m->cap * 2 : 1024, sizeof(seen_t)), m->cap ? m->cap * 2 : 1024,
                  m->n};
    if (!g.v) return false;
    for (size_t i = 0; i < m->cap; i++)
        if (m->v[i].seq) *seen_slot(&g, m->v[i].seq) = m->v[i];
    free(m->v);
    *m = g;
    return true;
}

/* The "bus" field of a row's body (after the decision's own fields; the writer may append
 * more, as review_sha256 to a hold): its partition and sequence, and the length of the
 * decision before it (what two rows of one event must agree on). */
static bool bus_field(const char *body, size_t n, uint32_t *part, uint64_t *seq, size_t *dlen)
{
    static const char key[] = ",\"bus\":{\"partition\":";
    const size_t kl = sizeof(key) - 1;
    if (n < kl + 8) return false;
    const char *at = NULL;
    for (const char *p = body + n - kl; p >= body; p--)
        if (!memcmp(p, key, kl)) {
            at = p;
            break;
        }
    if (!at) return false;
    unsigned pp;
    unsigned long long sq;
    int used = 0;
    if (sscanf(at + kl, "%u,\"seq\":%llu}%n", &pp, &sq, &used) != 2 || !used) return false;
    char next = at[kl + (size_t)used];
    if (next != '}' && next != ',') return false;
    *part = pp;
    *seq = sq;
    *dlen = (size_t)(at - body);
    return true;
}

static int read_trail(const char *path, seen_map *m, FILE *out)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(out, "%s: cannot open: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT body FROM audit WHERE kind = 'decision'", -1, &st, NULL) !=
        SQLITE_OK) {
        fprintf(out, "%s: cannot read the audit table: %s\n", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    int rows = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *body = (const char *)sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0), dlen;
        uint32_t part;
        uint64_t seq;
        if (!body || !bus_field(body, n, &part, &seq, &dlen) || !seq) continue;
        if (!seen_grow(m)) break;
        seen_t *e = seen_slot(m, seq);
        if (!e->seq) {
            *e = (seen_t){seq, part, 0, false, strndup(body, dlen)};
            m->n++;
        } else if (e->part != part || !e->decision || strlen(e->decision) != dlen ||
                   memcmp(e->decision, body, dlen) != 0) {
            e->conflict = true;
        }
        e->rows++;
        rows++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) fprintf(out, "%s: read error: %s\n", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc == SQLITE_DONE ? rows : -1;
}

int wh_bus_audit_verify(const char *url, uint32_t nparts, const char *const *dbs, int ndb,
                        FILE *out)
{
    seen_map m = {0};
    if (!seen_grow(&m)) return 2;
    int rc = 0;
    for (int i = 0; i < ndb; i++) {
        int r = read_trail(dbs[i], &m, out);
        if (r < 0)
            rc = 2;
        else
            fprintf(out, "%s: %d decision rows of events from the bus\n", dbs[i], r);
    }
    wh_nats n;
    wh_error e = {0};
    if (rc == 0 && wh_nats_open(&n, url, "whiply-audit-verify", NULL, &e) != WH_OK) {
        fprintf(out, "the bus: %s\n", e.message);
        rc = 2;
    }
    uint64_t total = 0, again = 0, missing = 0, conflicts = 0, not_events = 0;
    wh_decoder *dec = wh_decoder_new();
    wh_arena arena;
    wh_arena_init(&arena, 64 * 1024);
    for (uint32_t p = 0; rc == 0 && p < nparts; p++) {
        char durable[32], filter[64], why[256];
        snprintf(durable, sizeof(durable), "whiply-p%u", p);
        snprintf(filter, sizeof(filter), "whiply.events.%u.>", p);
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        uint64_t floor = 0;
        natsStatus s = js_GetConsumerInfo(&ci, n.js, WH_BUS_EVENTS_STREAM, durable, NULL, &jerr);
        if (s == NATS_OK) {
            floor = ci->AckFloor.Stream;
            jsConsumerInfo_Destroy(ci);
        } else if (s != NATS_NOT_FOUND) {
            fprintf(out, "partition %u: %s\n", p, wh_nats_why(s, jerr, why, sizeof(why)));
            rc = 2;
            break;
        }
        uint64_t pt = 0, pa = 0, pm = 0, pc = 0, pn = 0, last = 0;
        natsSubscription *sub = NULL;
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = WH_BUS_EVENTS_STREAM;
        so.Config.AckPolicy = js_AckNone;
        if (floor && js_PullSubscribe(&sub, n.js, filter, NULL, NULL, &so, &jerr) != NATS_OK) {
            fprintf(out, "partition %u: cannot read the stream\n", p);
            rc = 2;
            break;
        }
        while (sub && last < floor) {
            natsMsgList l = {0};
            s = natsSubscription_Fetch(&l, sub, 512, 2000, &jerr);
            if (s != NATS_OK || l.Count == 0) {
                natsMsgList_Destroy(&l);
                break;
            }
            for (int i = 0; i < l.Count && last < floor; i++) {
                jsMsgMetaData *md = NULL;
                if (natsMsg_GetMetaData(&md, l.Msgs[i]) != NATS_OK) continue;
                last = md->Sequence.Stream;
                jsMsgMetaData_Destroy(md);
                if (last > floor) break;
                pt++;
                seen_t *x = seen_slot(&m, last);
                if (x->seq && (x->conflict || x->part != p)) {
                    pc++;
                    fprintf(out, "partition %u, sequence %" PRIu64 ": %s\n", p, last,
                            x->conflict ? "decided differently in different rows"
                                        : "its row names another partition");
                    continue;
                }
                if (x->seq) {
                    pa += x->rows > 1;
                    continue;
                }
                wh_decode_error de;
                wh_arena_reset(&arena);
                wh_event ev;
                if (!wh_event_decode(dec, natsMsg_GetData(l.Msgs[i]),
                                     (size_t)natsMsg_GetDataLength(l.Msgs[i]), &arena, 0, &ev,
                                     &de)) {
                    pn++; /* an error line, which has no audit row */
                    continue;
                }
                pm++;
                if (pm <= 5)
                    fprintf(out, "partition %u, sequence %" PRIu64 ": no decision row\n", p, last);
            }
            natsMsgList_Destroy(&l);
        }
        if (sub) {
            natsSubscription_Unsubscribe(sub);
            natsSubscription_Destroy(sub);
        }
        if (last < floor && floor) {
            fprintf(out,
                    "partition %u: the stream ends at sequence %" PRIu64
                    " before the ack floor %" PRIu64 "\n",
                    p, last, floor);
            pm++;
        }
        fprintf(out,
                "partition %u: %" PRIu64 " events up to sequence %" PRIu64 " (ack floor): %" PRIu64
                " decided once, %" PRIu64
                " decided again after a takeover with the same decision, %" PRIu64
                " without a decision row, %" PRIu64 " decided differently, %" PRIu64
                " not events\n",
                p, pt, floor, pt - pa - pm - pc - pn, pa, pm, pc, pn);
        total += pt, again += pa, missing += pm, conflicts += pc, not_events += pn;
    }
    if (rc == 0) {
        fprintf(out,
                "bus: %" PRIu64 " events acknowledged, %" PRIu64
                " decided again (same decision), %" PRIu64 " missing, %" PRIu64
                " conflicting, %" PRIu64 " not events: %s\n",
                total, again, missing, conflicts, not_events,
                missing || conflicts ? "NOT every acknowledged event has one decision"
                                     : "every acknowledged event has its decision");
        if (missing || conflicts) rc = 1;
        wh_nats_close(&n);
    }
    wh_arena_free(&arena);
    wh_decoder_free(dec);
    for (size_t i = 0; i < m.cap; i++)
        free(m.v[i].decision);
    free(m.v);
    return rc;
}
