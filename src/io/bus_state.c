/* bus_state.c - see bus.h: a partition's state snapshot in the WHIPLY_STATE stream.
 *
 * A snapshot is chunks and a manifest. The chunks go to whiply.state.<P>.<slot>.<i> (slot a
 * or b), then the manifest to whiply.state.<P>: headers name the stream sequence it covers,
 * the slot, the chunk count, the length and an XXH3 of the bytes. The stream keeps one
 * message per subject, so each write replaces the last; a writer uses the slot the current
 * manifest does not name, so a crash while writing chunks leaves the last snapshot whole.
 * A chunk is half the server's largest message, so a partition's state may be any size. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bus.h"
#include "io/nats.h"

#define H_SEQ "Whiply-Seq"
#define H_SLOT "Whiply-Slot"
#define H_CHUNKS "Whiply-Chunks"
#define H_LEN "Whiply-Len"
#define H_SUM "Whiply-Sum"

static bool header_u64(natsMsg *m, const char *key, uint64_t *out)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v || !*v) return false;
    char *end;
    unsigned long long x = strtoull(v, &end, 16);
    if (*end) return false;
    *out = x;
    return true;
}

static natsStatus set_u64(natsMsg *m, const char *key, uint64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%" PRIx64, v);
    return natsMsgHeader_Set(m, key, s);
}

/* The last message on subject, NULL (and NATS_OK) when there is none. */
static natsStatus last_msg(jsCtx *js, const char *subject, natsMsg **m, jsErrCode *jerr)
{
    *m = NULL;
    natsStatus s = js_GetLastMsg(m, js, WH_BUS_STATE_STREAM, subject, NULL, jerr);
    if (s == NATS_NOT_FOUND) {
        *m = NULL;
        return NATS_OK;
    }
    return s;
}

/* The partition's manifest subject into subj, and its last message (NULL: none yet). */
static wh_status manifest(jsCtx *js, uint32_t p, char *subj, size_t n, natsMsg **m, wh_error *e)
{
    char why[256];
    jsErrCode jerr = 0;
    snprintf(subj, n, "whiply.state.%u", p);
    natsStatus s = last_msg(js, subj, m, &jerr);
    if (s != NATS_OK)
        return wh_error_set(e, WH_EUNAVAILABLE, "partition %u's snapshot: %s", p,
                            wh_nats_why(s, jerr, why, sizeof(why)));
    return WH_OK;
}

wh_status wh_bus_snap_write(jsCtx *js, uint32_t p, uint64_t seq, const char *buf, size_t len,
                            int64_t max_payload, wh_error *e)
{
    char subj[96], why[256];
    jsErrCode jerr = 0;
    natsMsg *cur = NULL;
    if (manifest(js, p, subj, sizeof(subj), &cur, e) != WH_OK) return e->code;
    natsStatus s;
    uint64_t slot = 0;
    if (cur && header_u64(cur, H_SLOT, &slot)) slot = !slot; /* the other one */
    natsMsg_Destroy(cur);
    size_t chunk = max_payload > 8192 ? (size_t)max_payload / 2 : 4096;
    uint64_t n = (len + chunk - 1) / chunk;
    for (uint64_t i = 0; i < n; i++) {
        size_t at = (size_t)i * chunk, k = len - at < chunk ? len - at : chunk;
        char cs[128];
        snprintf(cs, sizeof(cs), "whiply.state.%u.%c.%" PRIu64, p, slot ? 'b' : 'a', i);
        natsMsg *m = NULL;
        s = natsMsg_Create(&m, cs, NULL, buf + at, (int)k);
        if (s == NATS_OK) s = set_u64(m, H_SEQ, seq);
        if (s == NATS_OK) s = js_PublishMsg(NULL, js, m, NULL, &jerr);
        natsMsg_Destroy(m);
        if (s != NATS_OK)
            return wh_error_set(e, WH_EUNAVAILABLE,
                                "partition %u's snapshot, chunk %" PRIu64 ": %s", p, i,
                                wh_nats_why(s, jerr, why, sizeof(why)));
    }
    natsMsg *m = NULL;
    s = natsMsg_Create(&m, subj, NULL, NULL, 0);
    if (s == NATS_OK) s = set_u64(m, H_SEQ, seq);
    if (s == NATS_OK) s = set_u64(m, H_SLOT, slot);
    if (s == NATS_OK) s = set_u64(m, H_CHUNKS, n);
    if (s == NATS_OK) s = set_u64(m, H_LEN, len);
    if (s == NATS_OK) s = set_u64(m, H_SUM, XXH3_64bits(buf, len));
    if (s == NATS_OK) s = js_PublishMsg(NULL, js, m, NULL, &jerr);
    natsMsg_Destroy(m);
    if (s != NATS_OK)
        return wh_error_set(e, WH_EUNAVAILABLE, "partition %u's snapshot: %s", p,
                            wh_nats_why(s, jerr, why, sizeof(why)));
    return WH_OK;
}

wh_status wh_bus_snap_read(jsCtx *js, uint32_t p, uint64_t *seq, char **buf, size_t *len,
                           wh_error *e)
{
    *seq = 0;
    *buf = NULL;
    *len = 0;
    char subj[96], why[256];
    jsErrCode jerr = 0;
    natsMsg *man = NULL;
    if (manifest(js, p, subj, sizeof(subj), &man, e) != WH_OK) return e->code;
    natsStatus s;
    if (!man) return WH_OK; /* none yet */
    uint64_t sq, slot, n, total, sum;
    bool ok = header_u64(man, H_SEQ, &sq) && header_u64(man, H_SLOT, &slot) &&
              header_u64(man, H_CHUNKS, &n) && header_u64(man, H_LEN, &total) &&
              header_u64(man, H_SUM, &sum) && total < ((uint64_t)1 << 40);
    natsMsg_Destroy(man);
    if (!ok)
        return wh_error_set(e, WH_EINVAL, "partition %u's snapshot: a manifest without its headers",
                            p);
    char *b = malloc(total ? total : 1);
    if (!b) return wh_error_set(e, WH_ENOMEM, "partition %u's snapshot: out of memory", p);
    size_t at = 0;
    for (uint64_t i = 0; i < n; i++) {
        char cs[128];
        snprintf(cs, sizeof(cs), "whiply.state.%u.%c.%" PRIu64, p, slot ? 'b' : 'a', i);
        natsMsg *m = NULL;
        s = last_msg(js, cs, &m, &jerr);
        uint64_t cseq = 0;
        int k = m ? natsMsg_GetDataLength(m) : 0;
        bool good = s == NATS_OK && m && header_u64(m, H_SEQ, &cseq) && cseq == sq &&
                    at + (size_t)k <= total;
        if (good) memcpy(b + at, natsMsg_GetData(m), (size_t)k), at += (size_t)k;
        natsMsg_Destroy(m);
        if (!good) {
            free(b);
            if (s != NATS_OK)
                return wh_error_set(e, WH_EUNAVAILABLE, "partition %u's snapshot: %s", p,
                                    wh_nats_why(s, jerr, why, sizeof(why)));
            return wh_error_set(e, WH_EINVAL,
                                "partition %u's snapshot at sequence %" PRIu64 ": chunk %" PRIu64
                                " is missing or from another snapshot",
                                p, sq, i);
        }
    }
    if (at != total || XXH3_64bits(b, total) != sum) {
        free(b);
        return wh_error_set(e, WH_EINVAL,
                            "partition %u's snapshot at sequence %" PRIu64
                            ": its bytes do not match its checksum",
                            p, sq);
    }
    *seq = sq;
    *buf = b;
    *len = total;
    return WH_OK;
}
