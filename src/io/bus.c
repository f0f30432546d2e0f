/* bus.c - see bus.h: the partitions this instance owns, each consumed by a thread that
 * submits what it fetches through the ingest seam and publishes the decisions; and the
 * coordinator that claims, renews and releases partitions in the KV bucket. */
#define _GNU_SOURCE
#include "bus.h"

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/json.h"
#include "engine/engine.h"
#include "engine/event.h"
#include "io/nats.h"
#include "serve/ingest.h"
#include "serve/service.h"

typedef struct part part;
struct part {
    wh_bus *bus;
    uint32_t p;
    pthread_t th;
    bool started;
    atomic_bool run;          /* owned: consume (cleared to fence or release) */
    atomic_int_fast64_t good; /* monotonic ms until which the claim is surely ours */
    int64_t claimed;          /* monotonic ms when this instance claimed it */
    atomic_bool deciding;     /* past the takeover (settle, state, subscription): fetching */
    uint64_t rev;             /* the KV revision of our claim */
    uint64_t done_seq;        /* stream sequence of the last event acked (0: none yet) */
    atomic_uint pub_errors;   /* asynchronous publishes JetStream refused (the batch's) */
    uint64_t snap_seq;        /* the one the last snapshot covers */
};

struct wh_bus {
    wh_service *svc;
    const wh_config *cfg;
    wh_nats n;
    jsCtx *kvjs; /* the coordinator's: API calls wait a quarter lease, not 10 s */
    kvStore *kv;
    char instance[96];
    uint32_t nparts;
    int64_t lease_ms, snapshot_ms;
    int batch;
    part *parts;
    pthread_t coord;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    atomic_uint_fast64_t events, published, acked, fenced, claims, kv_ops, snapshots, replayed;
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Still ours: the coordinator says so and its last renewal is recent enough that the claim
 * cannot have expired on the server (a paused process finds its lease stale here). */
static bool owned(part *pt)
{
    return atomic_load(&pt->run) && mono_ms() < atomic_load(&pt->good);
}

/* ---- one partition ---- */

/* How long a delivered batch stays with its consumer before the server delivers it again:
 * half a lease, so that a takeover waits at most that long for a dead owner's batch. */
static int64_t ack_wait_ms(const wh_bus *b)
{
    return b->lease_ms / 2;
}

/* Sleeps ms, or less once the partition is no longer to be consumed; false then. */
static bool nap(part *pt, int64_t ms)
{
    for (int64_t end = mono_ms() + ms; atomic_load(&pt->run);) {
        int64_t left = end - mono_ms();
        if (left <= 0) return true;
        usleep((useconds_t)(left < 50 ? left : 50) * 1000);
    }
    return false;
}

/* Before a new owner fetches anything: a batch the last owner was delivered and never
 * acknowledged (it died, or was paused past its lease) must come back first. Acks
 * acknowledge all below them (AckAll): were this owner delivered newer events while the old
 * batch is outstanding, its first ack would cover events nobody decided, and they would be
 * decided out of order besides. The old owner fetched only while its claim was good, which
 * ended before this claim: an ack wait after the claim, its deliveries are all due again,
 * and the server delivers those first, in order. */
static bool settle(part *pt, jsCtx *js, const char *durable)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, js, WH_BUS_EVENTS_STREAM, durable, NULL, &jerr);
    if (s == NATS_NOT_FOUND) return true; /* a partition never consumed */
    if (s != NATS_OK) return false;
    bool outstanding = ci->NumAckPending > 0;
    jsConsumerInfo_Destroy(ci);
    if (!outstanding) return true;
    int64_t wait = pt->claimed + ack_wait_ms(pt->bus) + 100 - mono_ms();
    return wait <= 0 || nap(pt, wait);
}

/* The "id" and "action" strings of a decision line (as written there, JSON escapes and all),
 * each empty when absent (or when the line has more tokens than tok holds: decisions put
 * them first). */
static void id_and_action(const char *line, size_t n, wh_jtok *tok, int cap, wh_str *id,
                          wh_str *action)
{
    *id = *action = (wh_str){"", 0};
    size_t err;
    const char *what;
    int nt = wh_json_tokenize(line, n, tok, cap, 32, &err, &what);
    if (nt <= 0 || tok[0].type != WH_J_OBJECT) return;
    for (int i = 1; i + 1 < nt && tok[i + 1].next > i; i = tok[i + 1].next) {
        const wh_jtok *k = &tok[i], *v = &tok[i + 1];
        if (k->type != WH_J_STRING || v->type != WH_J_STRING) continue;
        wh_str val = {line + v->start, (size_t)(v->end - v->start)};
        size_t kl = (size_t)(k->end - k->start);
        if (kl == 2 && !memcmp(line + k->start, "id", 2)) *id = val;
        if (kl == 6 && !memcmp(line + k->start, "action", 6)) *action = val;
    }
}

#define NTOK 4096

static natsStatus publish_to(jsCtx *js, const char *subject, const char *data, size_t n,
                             const char *msg_id)
{
    natsMsg *m = NULL;
    natsStatus st = natsMsg_Create(&m, subject, NULL, data, (int)n);
    if (st == NATS_OK) st = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    if (st == NATS_OK) st = js_PublishMsgAsync(js, &m, NULL);
    natsMsg_Destroy(m);
    return st;
}

/* Publishes one output line for message m: the decision, and the action when it is not
 * allow. Subjects come from m's: whiply.events.P.PLATFORM.CHANNEL. The message ids are
 * "d:" and "a:" before the event id as the line has it (JSON-escaped, as `whiply publish`
 * writes it too: wh_bus_msg_id), or the input's stream sequence for an error line without
 * an id (seq). */
static natsStatus publish_line(jsCtx *js, natsMsg *m, uint64_t seq, const char *line, size_t n,
                               wh_buf *subj, wh_buf *mid, wh_jtok *tok)
{
    const char *s = natsMsg_GetSubject(m);
    const char *rest = s + strlen("whiply.events."); /* P.PLATFORM.CHANNEL */
    const char *after_p = strchr(rest, '.');
    if (!after_p) after_p = rest; /* not ours: published under its own name */
    wh_str id, action;
    id_and_action(line, n, tok, NTOK, &id, &action);
    mid->len = 0;
    wh_buf_puts(mid, "d:");
    if (id.n) {
        wh_buf_append(mid, id.p, id.n);
    } else {
        wh_buf_puts(mid, "seq:");
        wh_buf_u64(mid, seq);
    }
    subj->len = 0;
    wh_buf_puts(subj, "whiply.decisions.");
    wh_buf_puts(subj, rest);
    natsStatus st = publish_to(js, wh_buf_cstr(subj), line, n, wh_buf_cstr(mid));
    if (st != NATS_OK || !action.n || (action.n == 5 && !memcmp(action.p, "allow", 5))) return st;
    mid->p[0] = 'a';
    subj->len = 0;
    wh_buf_puts(subj, "whiply.actions");
    wh_buf_puts(subj, after_p);
    return publish_to(js, wh_buf_cstr(subj), line, n, mid->p);
}

static bool blank(const char *p, int n)
{
    for (int i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') return false;
    return true;
}

/* Decides one fetched batch and publishes its decisions; true when every message may be
 * acked (false: leave them to be redelivered). */
/* The NDJSON body of a batch. One line per message: a message with a line break in it
 * (pretty-printed JSON) is flattened, since a line break between JSON tokens is only white
 * space; a blank message becomes a line that is not an event, so that it gets its error. */
static void batch_body(natsMsg **msgs, int count, wh_buf *body)
{
    body->len = 0;
    for (int i = 0; i < count; i++) {
        const char *d = natsMsg_GetData(msgs[i]);
        int n = natsMsg_GetDataLength(msgs[i]);
        if (blank(d, n)) {
            wh_buf_puts(body, "\"\"\n");
            continue;
        }
        size_t at = body->len;
        wh_buf_append(body, d, (size_t)n);
        for (size_t k = at; k < body->len; k++)
            if (body->p[k] == '\n' || body->p[k] == '\r') body->p[k] = ' ';
        wh_buf_putc(body, '\n');
    }
}

static uint64_t stream_seq(natsMsg *m)
{
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK) return 0;
    uint64_t seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    return seq;
}

static bool handle_batch(part *pt, jsCtx *js, natsMsgList *l, wh_buf *body, wh_buf *out,
                         wh_buf *subj, wh_buf *mid, wh_jtok *tok, uint64_t *seqs)
{
    wh_bus *b = pt->bus;
    batch_body(l->Msgs, l->Count, body);
    if (body->oom) return false;
    for (int i = 0; i < l->Count; i++) /* the audit rows name them */
        seqs[i] = stream_seq(l->Msgs[i]);
    wh_ingest_req r;
    for (int tries = 0;; tries++) {
        out->len = 0;
        r = (wh_ingest_req){
            .body = body->p, .len = body->len, .out = out, .bus_seq = seqs, .bus_partition = pt->p};
        wh_status st = wh_ingest_submit(b->svc, &r);
        if (st == WH_OK) break;
        if (st != WH_EBUSY || tries > 200 || !owned(pt)) return false;
        usleep(20000); /* the audit queue is full: it drains in milliseconds */
    }
    if (r.ticket && !wh_store_wait(wh_service_store(b->svc), r.ticket)) return false;
    if (r.nlines != (uint32_t)l->Count) return false; /* cannot happen: one line each */
    atomic_fetch_add(&b->events, (uint64_t)l->Count);
    if (!owned(pt)) return false; /* fenced while deciding: publish nothing */
    atomic_store(&pt->pub_errors, 0);
    const char *p = out->p, *end = out->p + out->len;
    for (int i = 0; i < l->Count && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (publish_line(js, l->Msgs[i], seqs[i], p, n, subj, mid, tok) != NATS_OK) return false;
        p += n + 1;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 10000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
        /* acknowledgements lost (a server restarted under the connection): drop what is
         * still pending, or every later wait would wait for it too; the retry publishes the
         * batch again, and JetStream drops what it already has by message id */
        natsMsgList pend = {0};
        if (js_PublishAsyncGetPendingList(&pend, js) == NATS_OK) natsMsgList_Destroy(&pend);
        return false;
    }
    /* a publish JetStream refused (no stream leader during an election): the batch again */
    if (atomic_exchange(&pt->pub_errors, 0)) return false;
    atomic_fetch_add(&b->published, (uint64_t)l->Count);
    return owned(pt);
}

/* ---- the partition's state ---- */

/* Writes the partition's state as the snapshot covering pt->done_seq (from the partition's
 * thread, between batches, so the state is exactly that of the events up to it). */
static void save_state(part *pt, jsCtx *js)
{
    wh_bus *b = pt->bus;
    if (pt->done_seq == pt->snap_seq) return;
    char *buf = NULL;
    size_t len = 0;
    wh_error e;
    if (wh_service_part_save(b->svc, pt->p, b->nparts, &buf, &len, &e) != WH_OK) {
        fprintf(stderr, "whiply: bus: %s\n", e.message);
        return;
    }
    if (!buf) { /* the ruleset keeps no state */
        pt->snap_seq = pt->done_seq;
        return;
    }
    wh_status st = wh_bus_snap_write(js, pt->p, pt->done_seq, buf, len,
                                     natsConnection_GetMaxPayload(b->n.nc), &e);
    free(buf);
    if (st != WH_OK) {
        fprintf(stderr, "whiply: bus: %s\n", e.message);
        return;
    }
    pt->snap_seq = pt->done_seq;
    atomic_fetch_add(&b->snapshots, 1);
}

/* Takes the partition's state over: the last snapshot, then, decided again for the state
 * alone, the events after it that an earlier owner acknowledged (up to the consumer's ack
 * floor). False when NATS did not answer (the caller tries again; the load drops what a
 * failed attempt left). A snapshot that cannot be read or loaded is reported and the
 * partition replayed from its first event instead. */
static bool restore_state(part *pt, jsCtx *js, const char *filter, const char *durable,
                          wh_buf *body, wh_buf *out)
{
    wh_bus *b = pt->bus;
    wh_error e;
    char *buf = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    if (wh_bus_snap_read(js, pt->p, &seq, &buf, &len, &e) != WH_OK) {
        if (e.code == WH_EUNAVAILABLE) return false;
        fprintf(stderr, "whiply: bus: %s; replaying the partition from its first event\n",
                e.message);
        seq = 0;
    }
    if (wh_service_part_load(b->svc, pt->p, b->nparts, (const unsigned char *)buf, len, &e) !=
        WH_OK) {
        fprintf(stderr, "whiply: bus: %s; replaying the partition from its first event\n",
                e.message);
        seq = 0;
        wh_service_part_load(b->svc, pt->p, b->nparts, NULL, 0, NULL);
    }
    free(buf);
    pt->snap_seq = pt->done_seq = seq;
    if (!settle(pt, js, durable)) return false;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    uint64_t floor = 0;
    natsStatus s = js_GetConsumerInfo(&ci, js, WH_BUS_EVENTS_STREAM, durable, NULL, &jerr);
    if (s == NATS_OK) {
        floor = ci->AckFloor.Stream;
        jsConsumerInfo_Destroy(ci);
    } else if (s != NATS_NOT_FOUND) {
        return false;
    }
    if (floor <= seq) return true;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = WH_BUS_EVENTS_STREAM;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = seq + 1;
    so.Config.AckPolicy = js_AckNone;
    natsSubscription *sub = NULL;
    if (js_PullSubscribe(&sub, js, filter, NULL, NULL, &so, &jerr) != NATS_OK) return false;
    bool ok = true;
    uint64_t last = seq;
    while (last < floor && atomic_load(&pt->run)) {
        natsMsgList l = {0};
        s = natsSubscription_Fetch(&l, sub, b->batch, 2000, &jerr);
        if (s == NATS_TIMEOUT || (s == NATS_OK && l.Count == 0)) {
            /* the stream no longer holds them (its limits): the state is what is left */
            fprintf(stderr,
                    "whiply: bus: partition %u: events up to sequence %llu are gone from the "
                    "stream; replayed up to %llu\n",
                    pt->p, (unsigned long long)floor, (unsigned long long)last);
            natsMsgList_Destroy(&l);
            break;
        }
        if (s != NATS_OK) {
            natsMsgList_Destroy(&l);
            ok = false;
            break;
        }
        int k = 0;
        uint64_t ks = last;
        for (; k < l.Count; k++) {
            uint64_t q = stream_seq(l.Msgs[k]);
            if (q > floor) break;
            ks = q;
        }
        batch_body(l.Msgs, k, body);
        out->len = 0;
        wh_ingest_req r = {.body = body->p, .len = body->len, .out = out, .replay = true};
        if (body->oom || (k && wh_ingest_submit(b->svc, &r) != WH_OK)) ok = false;
        atomic_fetch_add(&b->replayed, (uint64_t)k);
        last = k < l.Count ? floor : ks;
        natsMsgList_Destroy(&l);
        if (!ok) break;
    }
    natsSubscription_Unsubscribe(sub); /* the ephemeral consumer goes with it */
    natsSubscription_Destroy(sub);
    if (ok) pt->done_seq = last;
    return ok;
}

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pae; /* the library destroys the message */
    part *pt = closure;
    atomic_fetch_add(&pt->pub_errors, 1);
}

static void *part_main(void *arg)
{
    part *pt = arg;
    wh_bus *b = pt->bus;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    jo.PublishAsync.MaxPending = 100000;
    jo.PublishAsync.ErrHandler = on_pub_error; /* without it a refused publish goes unseen */
    jo.PublishAsync.ErrHandlerClosure = pt;
    natsSubscription *sub = NULL;
    char filter[64], durable[32], why[256];
    snprintf(filter, sizeof(filter), "whiply.events.%u.>", pt->p);
    snprintf(durable, sizeof(durable), "whiply-p%u", pt->p);
    wh_buf body, out, subj, mid;
    wh_jtok *tok = malloc(sizeof(wh_jtok) * NTOK);
    uint64_t *seqs = malloc(sizeof(uint64_t) * (size_t)b->batch);
    wh_buf_init(&body);
    wh_buf_init(&out);
    wh_buf_init(&subj);
    wh_buf_init(&mid);
    if (!tok || !seqs || natsConnection_JetStream(&js, b->n.nc, &jo) != NATS_OK) goto done;
    while (atomic_load(&pt->run) && !restore_state(pt, js, filter, durable, &body, &out))
        usleep(500000);
    int64_t last_snap = mono_ms();
    bool unacked = false;
    while (atomic_load(&pt->run) && !sub) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = WH_BUS_EVENTS_STREAM;
        /* One batch outstanding at a time, acknowledged as a whole: an AckSync of its last
         * message covers it (ack-all), and since nothing past it has been delivered, the
         * ack can never cover messages another instance holds. A batch left unacked (its
         * instance died) blocks the partition until the ack wait brings it back, to the next
         * owner, first: the channel's events stay in order. The wait is a lease, about when
         * the next owner gets the partition. */
        so.Config.AckPolicy = js_AckAll;
        so.Config.AckWait = ack_wait_ms(b) * (int64_t)1000000;
        so.Config.MaxAckPending = b->batch;
        so.Config.DeliverPolicy = js_DeliverAll;
        jsErrCode jerr = 0;
        natsStatus s = js_PullSubscribe(&sub, js, filter, durable, NULL, &so, &jerr);
        if (s != NATS_OK) {
            fprintf(stderr, "whiply: bus: partition %u: cannot subscribe: %s\n", pt->p,
                    wh_nats_why(s, jerr, why, sizeof(why)));
            sub = NULL;
            usleep(500000);
        }
    }
    atomic_store(&pt->deciding, true);
    while (atomic_load(&pt->run)) {
        /* Fetch only while the claim is surely ours, and ask for nothing that could be
         * delivered after that: once it may have expired, another instance may own the
         * partition and fetch (settle above), and one of two fetchers would ack what the
         * other holds. A late renewal (the coordinator's calls were slow) resumes it. */
        int64_t left = atomic_load(&pt->good) - mono_ms() - 20;
        if (left < 30) {
            usleep(20000);
            continue;
        }
        natsMsgList l = {0};
        jsErrCode jerr = 0;
        natsStatus s =
            natsSubscription_Fetch(&l, sub, b->batch, left < 250 ? (int64_t)left : 250, &jerr);
        if (s == NATS_TIMEOUT || (s == NATS_OK && l.Count == 0)) {
            natsMsgList_Destroy(&l);
            continue;
        }
        if (s != NATS_OK) {
            natsMsgList_Destroy(&l);
            usleep(100000);
            continue;
        }
        /* The batch until it is done: a failure (the audit store, a publish) is retried
         * with the same events (the idempotency window answers those already decided, and
         * JetStream drops the decisions already published), never skipped, so the ack that
         * ends it cannot cover events that were not published. */
        for (int tries = 0;; tries++) {
            if (handle_batch(pt, js, &l, &body, &out, &subj, &mid, tok, seqs)) {
                /* the double ack: the server confirms it, so a crash after this line
                 * cannot leave the batch to be delivered again */
                if (natsMsg_AckSync(l.Msgs[l.Count - 1], NULL, &jerr) == NATS_OK) {
                    atomic_fetch_add(&b->acked, (uint64_t)l.Count);
                    pt->done_seq = seqs[l.Count - 1];
                    /* a batch dropped as fenced comes back first (in order) and is answered
                     * by the idempotency window: acked, the state is done_seq's again */
                    unacked = false;
                    break;
                }
            }
            if (!owned(pt)) { /* fenced or released: the next owner gets them at once */
                atomic_fetch_add(&b->fenced, 1);
                unacked = true; /* perhaps decided: the state is past done_seq */
                for (int i = 0; i < l.Count; i++)
                    natsMsg_Nak(l.Msgs[i], NULL);
                break;
            }
            for (int i = 0; i < l.Count; i++) /* still ours: the server is to wait longer */
                natsMsg_InProgress(l.Msgs[i], NULL);
            usleep(tries < 10 ? 50000 : 500000);
        }
        natsMsgList_Destroy(&l);
        /* A snapshot says "the state of the events up to done_seq": not while a decided batch
         * is unacknowledged (the state is past it), nor once the claim may have run out (a
         * new owner writes its own, and must not find this one's over it). */
        if (mono_ms() - last_snap >= b->snapshot_ms && !unacked && owned(pt)) {
            save_state(pt, js);
            last_snap = mono_ms();
        }
    }
    /* Let go (a release, a stop) with every decided batch acknowledged: the state is that of
     * the events up to done_seq, so the next owner need replay nothing. Even if the lease ran
     * out meanwhile (a slow stop) such a snapshot is right to load: an owner that took over
     * replays from it to its ack floor (a write racing that owner's own is caught by the
     * chunks' sequence check, and costs a replay from the first event). After a batch that
     * was decided and not acknowledged (fenced) the state is past done_seq: no snapshot. */
    if (js && !unacked) save_state(pt, js);
done:
    atomic_store(&pt->deciding, false);
    atomic_store(&pt->run, false); /* ended on its own (out of memory): the next round sees it */
    if (sub) natsSubscription_Destroy(sub); /* the durable consumer stays for the next owner */
    if (js) jsCtx_Destroy(js);
    free(tok);
    free(seqs);
    wh_buf_free(&body);
    wh_buf_free(&out);
    wh_buf_free(&subj);
    wh_buf_free(&mid);
    return NULL;
}

/* ---- HTTP events onto the bus (bus.http: publish) ---- */

wh_status wh_bus_sink_events(void *ud, const char *body, size_t len, bool single, wh_buf *out,
                             uint32_t *nlines, uint32_t *nerrors)
{
    wh_bus *b = ud;
    *nlines = *nerrors = 0;
    uint64_t nev = 0;
    for (size_t i = 0; i < len;) { /* the limit first: all of the body or none of it */
        const char *nl = single ? NULL : memchr(body + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - body) : len;
        nev += !wh_line_is_blank(body + i, e - i);
        i = e + 1;
    }
    if (nev > (uint64_t)b->cfg->limits.events) return WH_ELIMIT;
    wh_decoder *dec = wh_decoder_new();
    if (!dec) return WH_ENOMEM;
    wh_arena arena;
    wh_arena_init(&arena, 1 << 14);
    wh_buf subj, mid;
    wh_buf_init(&subj);
    wh_buf_init(&mid);
    uint64_t no = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = single ? NULL : memchr(body + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - body) : len, l = e - i;
        const char *line = body + i;
        i = e + 1;
        no++;
        if (l && line[l - 1] == '\r') l--;
        if (wh_line_is_blank(line, l)) continue;
        (*nlines)++;
        wh_arena_reset(&arena);
        wh_event ev;
        wh_decode_error de;
        if (!wh_event_decode(dec, line, l, &arena, 0, &ev, &de)) {
            wh_write_line_error(out, no, de.code, de.message);
            (*nerrors)++;
            continue;
        }
        uint32_t p = wh_bus_partition(ev.platform, ev.channel, b->nparts);
        wh_subject_events(&subj, p, ev.platform, ev.channel);
        wh_bus_msg_id(&mid, ev.id);
        natsMsg *m = NULL;
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        natsStatus s = natsMsg_Create(&m, subj.p, NULL, line, (int)l);
        if (s == NATS_OK && ev.id.n) s = natsMsgHeader_Set(m, "Nats-Msg-Id", mid.p);
        if (s == NATS_OK) s = js_PublishMsg(&pa, b->n.js, m, NULL, &jerr);
        natsMsg_Destroy(m);
        if (s != NATS_OK) {
            char why[256], msg[320];
            snprintf(msg, sizeof(msg), "not published: %s", wh_nats_why(s, jerr, why, sizeof(why)));
            wh_write_line_error(out, no, "bus_unavailable", msg);
            (*nerrors)++;
            continue;
        }
        wh_buf_puts(out, "{\"id\":");
        wh_buf_json_str(out, ev.id.p, ev.id.n);
        wh_buf_printf(out, ",\"published\":true,\"partition\":%u,\"seq\":%llu,\"duplicate\":%s}\n",
                      p, (unsigned long long)pa->Sequence, pa->Duplicate ? "true" : "false");
        jsPubAck_Destroy(pa);
    }
    wh_buf_free(&subj);
    wh_buf_free(&mid);
    wh_arena_free(&arena);
    wh_decoder_free(dec);
    return out->oom ? WH_ENOMEM : WH_OK;
}

/* ---- ownership ---- */

static uint64_t score(const char *member, uint32_t p)
{
    return XXH3_64bits_withSeed(member, strlen(member), 0x5157ULL * (p + 1));
}

static void stop_part(part *pt)
{
    atomic_store(&pt->run, false);
    if (pt->started) pthread_join(pt->th, NULL);
    pt->started = false;
}

static void key_of(char *k, size_t n, uint32_t p)
{
    snprintf(k, n, "p.%u", p);
}

/* One round: heartbeat, the live members, then each partition claimed, renewed or released. */
/* A KV call that got no answer (a server restarting, a leader being elected): it may or may
 * not have been applied. */
static bool no_answer(natsStatus s)
{
    return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_NOT_YET_CONNECTED ||
           s == NATS_CONNECTION_DISCONNECTED || s == NATS_CONNECTION_CLOSED;
}

/* Renews the claim of a partition this instance consumes; false when it is lost.
 *
 * A renewal that got no answer keeps the partition while its claim is good, and is tried
 * again next round (its threads stop fetching once the good time passes: owned()); it is not
 * a fence, since the entry is still ours unless it expired. A compare-and-swap refused may
 * be the echo of such a renewal that was applied after all: the entry then holds this
 * instance's name at a newer revision, and nobody else writes that name, so it is still
 * ours at that revision. Anything else is a fence. */
static bool renew(wh_bus *b, part *pt, const char *key)
{
    int64_t t0 = mono_ms();
    uint64_t nr = 0;
    natsStatus s = kvStore_UpdateString(&nr, b->kv, key, b->instance, pt->rev);
    atomic_fetch_add(&b->kv_ops, 1);
    if (no_answer(s)) return true;
    if (s != NATS_OK) {
        kvEntry *e = NULL;
        natsStatus g = kvStore_Get(&e, b->kv, key);
        atomic_fetch_add(&b->kv_ops, 1);
        if (g == NATS_OK && kvEntry_Revision(e) > pt->rev &&
            !strcmp(kvEntry_ValueString(e), b->instance)) {
            pt->rev = kvEntry_Revision(e);
            kvEntry_Destroy(e);
            t0 = mono_ms();
            s = kvStore_UpdateString(&nr, b->kv, key, b->instance, pt->rev);
            atomic_fetch_add(&b->kv_ops, 1);
            if (no_answer(s)) return true;
        } else {
            kvEntry_Destroy(e);
            if (no_answer(g)) return true;
        }
    }
    if (s != NATS_OK) { /* fenced: someone else may own it now */
        fprintf(stderr, "whiply: bus: lost partition %u (%s)\n", pt->p, natsStatus_GetText(s));
        atomic_fetch_add(&b->fenced, 1);
        stop_part(pt);
        return false;
    }
    pt->rev = nr;
    /* The entry lives a lease from when the server wrote it, which is after t0: ours until
     * t0 + lease. A sixth is left for the two clocks' rates and the server's expiry sweep. */
    atomic_store(&pt->good, t0 + b->lease_ms * 5 / 6);
    return true;
}

static void coordinate(wh_bus *b)
{
    char key[32], mk[128];
    uint64_t rev = 0;
    /* Renewals first: listing the members reads the whole bucket, which on a loaded cluster
     * takes long enough to let a claim's good time run out before it is renewed. */
    bool renewed[WH_BUS_MAX_PARTITIONS] = {false};
    for (uint32_t p = 0; p < b->nparts; p++) {
        part *pt = &b->parts[p];
        if (!atomic_load(&pt->run)) continue;
        key_of(key, sizeof(key), p);
        renewed[p] = renew(b, pt, key);
    }
    snprintf(mk, sizeof(mk), "m.%s", b->instance);
    kvStore_PutString(&rev, b->kv, mk, b->instance);
    atomic_fetch_add(&b->kv_ops, 1);
    /* the live members: every m.* key still in the bucket */
    kvKeysList keys = {0};
    const char *members[256];
    int nm = 0;
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    wo.Timeout = b->lease_ms / 4; /* a slow listing must not hold up the next renewals */
    natsStatus ls = kvStore_Keys(&keys, b->kv, &wo);
    atomic_fetch_add(&b->kv_ops, 1);
    if (ls != NATS_OK && ls != NATS_NOT_FOUND) { /* no list this round: renewals only */
        kvKeysList_Destroy(&keys);
        return;
    }
    for (int i = 0; i < keys.Count && nm < 256; i++)
        if (!strncmp(keys.Keys[i], "m.", 2)) members[nm++] = keys.Keys[i] + 2;
    bool me_listed = false;
    for (int i = 0; i < nm; i++)
        me_listed |= !strcmp(members[i], b->instance);
    if (!me_listed && nm < 256) members[nm++] = b->instance;
    for (uint32_t p = 0; p < b->nparts; p++) {
        part *pt = &b->parts[p];
        if (pt->started && !atomic_load(&pt->run)) stop_part(pt); /* a thread that ended */
        const char *best = NULL;
        uint64_t bs = 0;
        for (int i = 0; i < nm; i++) {
            uint64_t sc = score(members[i], p);
            if (!best || sc > bs || (sc == bs && strcmp(members[i], best) < 0)) best = members[i];
            if (best == members[i]) bs = sc;
        }
        bool mine = best && !strcmp(best, b->instance);
        key_of(key, sizeof(key), p);
        int64_t t0 = mono_ms();
        if (atomic_load(&pt->run)) {
            if (!mine) { /* another member ranks first now: hand it over */
                stop_part(pt);
                kvEntry *e = NULL;
                if (kvStore_Get(&e, b->kv, key) == NATS_OK && kvEntry_Revision(e) == pt->rev)
                    kvStore_Delete(b->kv, key);
                kvEntry_Destroy(e);
                atomic_fetch_add(&b->kv_ops, 2);
                continue;
            }
            if (!renewed[p]) renew(b, pt, key);
            continue;
        }
        if (!mine) continue;
        uint64_t nr = 0;
        natsStatus s = kvStore_CreateString(&nr, b->kv, key, b->instance);
        atomic_fetch_add(&b->kv_ops, 1);
        if (s != NATS_OK) continue; /* still held by its last owner: its lease runs out */
        pt->rev = nr;
        pt->claimed = t0;
        atomic_store(&pt->good, t0 + b->lease_ms * 5 / 6);
        atomic_store(&pt->run, true);
        atomic_fetch_add(&b->claims, 1);
        if (pthread_create(&pt->th, NULL, part_main, pt) == 0) {
            pt->started = true;
        } else {
            atomic_store(&pt->run, false);
            kvStore_Delete(b->kv, key);
        }
    }
    kvKeysList_Destroy(&keys);
}

static void *coord_main(void *arg)
{
    wh_bus *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        pthread_mutex_unlock(&b->mu);
        coordinate(b);
        pthread_mutex_lock(&b->mu);
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int64_t ns = t.tv_nsec + (b->lease_ms / 3) * 1000000;
        t.tv_sec += ns / 1000000000;
        t.tv_nsec = ns % 1000000000;
        while (!b->stop && pthread_cond_timedwait(&b->cv, &b->mu, &t) == 0) {
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

wh_bus *wh_bus_start(wh_service *svc, const wh_config *cfg, wh_error *e)
{
    wh_bus *b = calloc(1, sizeof(*b));
    if (!b) {
        wh_error_set(e, WH_ENOMEM, "out of memory");
        return NULL;
    }
    b->svc = svc;
    b->cfg = cfg;
    b->nparts = (uint32_t)cfg->bus.partitions;
    b->lease_ms = cfg->bus.lease_ms;
    b->batch = (int)cfg->bus.batch;
    b->snapshot_ms = cfg->bus.snapshot_ms;
    if (!cfg->bus.instance || !strcmp(cfg->bus.instance, "auto")) {
        char host[64] = "whiply";
        gethostname(host, sizeof(host) - 1);
        snprintf(b->instance, sizeof(b->instance), "%s-%d", host, (int)getpid());
    } else {
        snprintf(b->instance, sizeof(b->instance), "%s", cfg->bus.instance);
    }
    for (char *c = b->instance; *c; c++) /* a KV key token: letters, digits, - and _ */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            *c = '_';
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->parts = calloc(b->nparts, sizeof(part));
    if (!b->parts) {
        wh_error_set(e, WH_ENOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t p = 0; p < b->nparts; p++) {
        b->parts[p].bus = b;
        b->parts[p].p = p;
    }
    char name[128];
    snprintf(name, sizeof(name), "whiply-%s", b->instance);
    if (wh_nats_open(&b->n, cfg->bus.url, name, NULL, e) != WH_OK) goto fail;
    if (wh_nats_streams(&b->n, (int)cfg->bus.replicas, cfg->bus.duplicates_ms, e) != WH_OK)
        goto fail;
    char why[256];
    jsOptions ko;
    jsOptions_Init(&ko);
    ko.Wait = b->lease_ms / 4 > 250 ? b->lease_ms / 4 : 250;
    natsStatus s = natsConnection_JetStream(&b->kvjs, b->n.nc, &ko);
    if (s == NATS_OK) s = js_KeyValue(&b->kv, b->kvjs, WH_BUS_KV_BUCKET);
    if (s == NATS_NOT_FOUND) {
        kvConfig kc;
        kvConfig_Init(&kc);
        kc.Bucket = WH_BUS_KV_BUCKET;
        kc.History = 1;
        kc.TTL = b->lease_ms * 1000000; /* an entry not rewritten within a lease is gone */
        kc.Replicas = (int)cfg->bus.replicas;
        kc.StorageType = js_FileStorage;
        s = js_CreateKeyValue(&b->kv, b->kvjs, &kc);
    }
    if (s != NATS_OK) {
        wh_error_set(e, WH_EIO, "bus: the KV bucket %s: %s", WH_BUS_KV_BUCKET,
                     wh_nats_why(s, 0, why, sizeof(why)));
        goto fail;
    }
    if (pthread_create(&b->coord, NULL, coord_main, b) != 0) {
        wh_error_set(e, WH_ENOMEM, "bus: cannot start a thread");
        goto fail;
    }
    return b;
fail:
    if (b->kv) kvStore_Destroy(b->kv);
    if (b->kvjs) jsCtx_Destroy(b->kvjs);
    wh_nats_close(&b->n);
    free(b->parts);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
    return NULL;
}

void wh_bus_stop(wh_bus *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->coord, NULL);
    char key[32], mk[128];
    for (uint32_t p = 0; p < b->nparts; p++) {
        part *pt = &b->parts[p];
        if (!pt->started) continue;
        stop_part(pt);
        key_of(key, sizeof(key), p);
        kvEntry *e = NULL;
        if (kvStore_Get(&e, b->kv, key) == NATS_OK && kvEntry_Revision(e) == pt->rev)
            kvStore_Delete(b->kv, key); /* the next owner need not wait for the lease */
        kvEntry_Destroy(e);
    }
    snprintf(mk, sizeof(mk), "m.%s", b->instance);
    kvStore_Delete(b->kv, mk);
    kvStore_Destroy(b->kv);
    jsCtx_Destroy(b->kvjs);
    wh_nats_close(&b->n);
    free(b->parts);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
    nats_CloseAndWait(
        5000); /* the library's threads and memory: the daemon has one bus, at its end */
}

void wh_bus_stats_get(wh_bus *b, wh_bus_stats *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->instance, sizeof(out->instance), "%s", b->instance);
    out->partitions = b->nparts;
    for (uint32_t p = 0; p < b->nparts; p++)
        if (owned(&b->parts[p])) {
            out->owned[p / 8] |= (uint8_t)(1u << (p % 8));
            if (atomic_load(&b->parts[p].deciding))
                out->deciding[p / 8] |= (uint8_t)(1u << (p % 8));
        }
    out->events = atomic_load(&b->events);
    out->published = atomic_load(&b->published);
    out->acked = atomic_load(&b->acked);
    out->fenced = atomic_load(&b->fenced);
    out->claims = atomic_load(&b->claims);
    out->kv_ops = atomic_load(&b->kv_ops);
    out->snapshots = atomic_load(&b->snapshots);
    out->replayed = atomic_load(&b->replayed);
}

void wh_bus_metrics(void *ud, wh_buf *out)
{
    wh_bus_stats st;
    wh_bus_stats_get(ud, &st);
    wh_buf_puts(out,
                "# HELP whiply_bus_partition_owned Partitions of the events stream this "
                "instance consumes (1) or not (0).\n# TYPE whiply_bus_partition_owned gauge\n");
    for (uint32_t p = 0; p < st.partitions; p++)
        wh_buf_printf(out, "whiply_bus_partition_owned{instance=\"%s\",partition=\"%u\"} %d\n",
                      st.instance, p, st.owned[p / 8] >> (p % 8) & 1);
    wh_buf_puts(out, "# HELP whiply_bus_partition_deciding Owned partitions past their takeover "
                     "(the last owner's batch back, the state loaded): deciding (1) or not (0).\n"
                     "# TYPE whiply_bus_partition_deciding gauge\n");
    for (uint32_t p = 0; p < st.partitions; p++)
        wh_buf_printf(out, "whiply_bus_partition_deciding{instance=\"%s\",partition=\"%u\"} %d\n",
                      st.instance, p, st.deciding[p / 8] >> (p % 8) & 1);
    static const struct {
        const char *name, *help;
        size_t off;
    } ctr[] = {
        {"whiply_bus_events_total", "Events decided from the bus.", offsetof(wh_bus_stats, events)},
        {"whiply_bus_published_total", "Decisions published (acknowledged by JetStream).",
         offsetof(wh_bus_stats, published)},
        {"whiply_bus_acked_total", "Input events acknowledged after their decision was published.",
         offsetof(wh_bus_stats, acked)},
        {"whiply_bus_fenced_total", "Times a partition was lost (a renewal failed or came late).",
         offsetof(wh_bus_stats, fenced)},
        {"whiply_bus_claims_total", "Partitions claimed.", offsetof(wh_bus_stats, claims)},
        {"whiply_bus_kv_ops_total", "Operations on the ownership bucket.",
         offsetof(wh_bus_stats, kv_ops)},
        {"whiply_bus_snapshots_total", "Partition state snapshots written.",
         offsetof(wh_bus_stats, snapshots)},
        {"whiply_bus_replayed_total",
         "Events an earlier owner decided, decided again for the state when taking a partition.",
         offsetof(wh_bus_stats, replayed)},
    };
    for (size_t i = 0; i < sizeof(ctr) / sizeof(ctr[0]); i++)
        wh_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s{instance=\"%s\"} %llu\n",
                      ctr[i].name, ctr[i].help, ctr[i].name, ctr[i].name, st.instance,
                      (unsigned long long)*(const uint64_t *)((const char *)&st + ctr[i].off));
}
