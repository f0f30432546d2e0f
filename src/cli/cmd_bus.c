/* cmd_bus.c - the bus from the command line (docs/bus.md):
 *
 *   whiply publish --bus URL [--partitions N] [--in FILE]   NDJSON events onto the bus
 *   whiply bus dump --bus URL [--stream events|decisions] [--subject FILTER]
 *
 * publish places each event on whiply.events.<partition>.<platform>.<channel> itself (the
 * partition is whiply's, the one a server-side subject mapping would otherwise compute), with
 * Nats-Msg-Id set to the event id so that JetStream drops a second copy, and asynchronously,
 * at most --max-pending unacknowledged at a time (flow control). A line that is not an event
 * is reported as FILE:LINE and skipped; the others are published all the same. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/json.h"
#include "cli.h"
#include "engine/event.h"
#include "io/bus.h"
#include "io/nats.h"
#include "io/subject.h"

#define MAX_LINE ((size_t)1 << 20)

typedef struct {
    atomic_uint_fast64_t acked, dups, failed;
} pub_counts;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *ud)
{
    pub_counts *c = ud;
    if (pa) {
        atomic_fetch_add(&c->acked, 1);
        if (pa->Duplicate) atomic_fetch_add(&c->dups, 1);
    } else if (pae) {
        /* once more, synchronously: a failover of the stream leader is the usual cause */
        jsErrCode jerr = 0;
        jsPubAck *pa2 = NULL;
        natsMsg *copy = NULL;
        const char *id = NULL;
        natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
        if (natsMsg_Create(&copy, natsMsg_GetSubject(msg), NULL, natsMsg_GetData(msg),
                           natsMsg_GetDataLength(msg)) == NATS_OK &&
            (!id || natsMsgHeader_Set(copy, "Nats-Msg-Id", id) == NATS_OK) &&
            js_PublishMsg(&pa2, js, copy, NULL, &jerr) == NATS_OK) {
            atomic_fetch_add(&c->acked, 1);
            if (pa2->Duplicate) atomic_fetch_add(&c->dups, 1);
        } else {
            atomic_fetch_add(&c->failed, 1);
        }
        jsPubAck_Destroy(pa2);
        natsMsg_Destroy(copy);
    }
    natsMsg_Destroy(msg);
}

static int publish_usage(FILE *f)
{
    fputs("usage: whiply publish --bus URL [--partitions N] [--in FILE] [--replicas N]\n"
          "                      [--duplicates DURATION] [--max-pending N]\n"
          "Publishes NDJSON events (stdin or --in) to whiply.events.<partition>.<platform>."
          "<channel>,\nwith Nats-Msg-Id = the event id. The streams are created when missing.\n",
          f);
    return f == stdout ? 0 : WH_EXIT_USAGE;
}

int wh_cmd_publish(int argc, char **argv)
{
    static const struct option lo[] = {{"bus", required_argument, NULL, 'b'},
                                       {"partitions", required_argument, NULL, 'p'},
                                       {"in", required_argument, NULL, 'i'},
                                       {"replicas", required_argument, NULL, 'r'},
                                       {"duplicates", required_argument, NULL, 'd'},
                                       {"max-pending", required_argument, NULL, 'm'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *url = NULL, *inp = NULL;
    long parts = 8, replicas = 1, maxpend = 4096;
    int64_t dup_ms = 120000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:p:i:", lo, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'b':
            url = optarg;
            break;
        case 'i':
            inp = optarg;
            break;
        case 'p':
            parts = strtol(optarg, &end, 10);
            break;
        case 'r':
            replicas = strtol(optarg, &end, 10);
            break;
        case 'm':
            maxpend = strtol(optarg, &end, 10);
            break;
        case 'd':
            if (!wh_parse_duration(optarg, strlen(optarg), &dup_ms)) {
                fprintf(stderr, "whiply publish: --duplicates '%s' is not a duration\n", optarg);
                return WH_EXIT_USAGE;
            }
            break;
        case 'h':
            return publish_usage(stdout);
        default:
            return publish_usage(stderr);
        }
        if (end && *end) {
            fprintf(stderr, "whiply publish: '%s' is not a number\n", optarg);
            return WH_EXIT_USAGE;
        }
    }
    if (!url || optind < argc) return publish_usage(stderr);
    if (parts < 1 || parts > WH_BUS_MAX_PARTITIONS || replicas < 1 || replicas > 5 || maxpend < 1) {
        fprintf(stderr,
                "whiply publish: --partitions is 1..%d, --replicas 1..5, --max-pending "
                ">= 1\n",
                WH_BUS_MAX_PARTITIONS);
        return WH_EXIT_USAGE;
    }
    FILE *in = inp ? fopen(inp, "r") : stdin;
    if (!in) {
        fprintf(stderr, "whiply publish: cannot open %s: %m\n", inp);
        return WH_EXIT_IO;
    }
    const char *label = inp ? inp : "<stdin>";
    pub_counts cnt = {0};
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    jo.PublishAsync.MaxPending = maxpend;
    jo.PublishAsync.StallWait = 30000;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &cnt;
    wh_nats n;
    wh_error e = {0};
    if (wh_nats_open(&n, url, "whiply-publish", &jo, &e) != WH_OK ||
        wh_nats_streams(&n, (int)replicas, dup_ms, &e) != WH_OK) {
        fprintf(stderr, "whiply publish: %s\n", e.message);
        wh_nats_close(&n);
        nats_CloseAndWait(5000);
        if (in != stdin) fclose(in);
        return WH_EXIT_IO;
    }
    wh_decoder *dec = wh_decoder_new();
    wh_arena arena;
    wh_arena_init(&arena, 1 << 16);
    wh_buf subj, mid;
    wh_buf_init(&subj);
    wh_buf_init(&mid);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t line_no = 0, sent = 0, bad = 0;
    int rc = WH_EXIT_OK;
    while ((len = getline(&line, &cap, in)) >= 0) {
        line_no++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (wh_line_is_blank(line, (size_t)len)) continue;
        if ((size_t)len > MAX_LINE) {
            fprintf(stderr, "%s:%llu: error: a line of %zd bytes (at most %zu)\n", label,
                    (unsigned long long)line_no, len, MAX_LINE);
            bad++;
            continue;
        }
        wh_arena_reset(&arena);
        wh_event ev;
        wh_decode_error de;
        if (!wh_event_decode(dec, line, (size_t)len, &arena, 0, &ev, &de)) {
            fprintf(stderr, "%s:%llu: error: %s: %s\n", label, (unsigned long long)line_no, de.code,
                    de.message);
            bad++;
            continue;
        }
        uint32_t p = wh_bus_partition(ev.platform, ev.channel, (uint32_t)parts);
        wh_subject_events(&subj, p, ev.platform, ev.channel);
        natsMsg *m = NULL;
        wh_bus_msg_id(&mid, ev.id);
        natsStatus s = natsMsg_Create(&m, subj.p, NULL, line, (int)len);
        if (s == NATS_OK && ev.id.n) s = natsMsgHeader_Set(m, "Nats-Msg-Id", mid.p);
        if (s == NATS_OK) s = js_PublishMsgAsync(n.js, &m, NULL);
        if (s != NATS_OK) {
            char why[256];
            fprintf(stderr, "%s:%llu: error: publish failed: %s\n", label,
                    (unsigned long long)line_no, wh_nats_why(s, 0, why, sizeof(why)));
            natsMsg_Destroy(m);
            rc = WH_EXIT_IO;
            break;
        }
        sent++;
    }
    if (ferror(in)) {
        fprintf(stderr, "whiply publish: reading %s: %m\n", label);
        rc = WH_EXIT_IO;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    natsStatus s = js_PublishAsyncComplete(n.js, &po);
    if (s != NATS_OK) {
        char why[256];
        fprintf(stderr, "whiply publish: %llu events still unacknowledged: %s\n",
                (unsigned long long)(sent - atomic_load(&cnt.acked) - atomic_load(&cnt.failed)),
                wh_nats_why(s, 0, why, sizeof(why)));
        rc = WH_EXIT_IO;
    }
    if (atomic_load(&cnt.failed)) rc = WH_EXIT_IO;
    fprintf(stderr,
            "whiply publish: %llu events published (%llu already on the bus), %llu failed, "
            "%llu bad lines\n",
            (unsigned long long)atomic_load(&cnt.acked), (unsigned long long)atomic_load(&cnt.dups),
            (unsigned long long)atomic_load(&cnt.failed), (unsigned long long)bad);
    free(line);
    wh_buf_free(&subj);
    wh_buf_free(&mid);
    wh_arena_free(&arena);
    wh_decoder_free(dec);
    wh_nats_close(&n);
    nats_CloseAndWait(5000);
    if (in != stdin) fclose(in);
    return rc != WH_EXIT_OK ? rc : bad ? WH_EXIT_IO : WH_EXIT_OK;
}

static int bus_usage(FILE *f)
{
    fputs("usage: whiply bus dump --bus URL [--stream events|decisions] [--subject FILTER]\n"
          "Prints every message of the stream (or those under FILTER) as NDJSON:\n"
          "{\"seq\":N,\"subject\":\"...\",\"msg_id\":\"...\",\"data\":\"...\"}\n",
          f);
    return f == stdout ? 0 : WH_EXIT_USAGE;
}

int wh_cmd_bus(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "dump")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
            return bus_usage(stdout);
        return bus_usage(stderr);
    }
    static const struct option lo[] = {{"bus", required_argument, NULL, 'b'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"subject", required_argument, NULL, 'f'},
                                       {NULL, 0, NULL, 0}};
    const char *url = NULL, *stream = "decisions", *filter = NULL;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "b:s:f:", lo, NULL)) != -1) {
        switch (c) {
        case 'b':
            url = optarg;
            break;
        case 's':
            stream = optarg;
            break;
        case 'f':
            filter = optarg;
            break;
        default:
            return bus_usage(stderr);
        }
    }
    const char *sname = !strcmp(stream, "events")      ? WH_BUS_EVENTS_STREAM
                        : !strcmp(stream, "decisions") ? WH_BUS_OUT_STREAM
                                                       : NULL;
    if (!url || !sname || optind < argc) return bus_usage(stderr);
    if (!filter) filter = !strcmp(stream, "events") ? "whiply.events.>" : "whiply.>";
    wh_nats n;
    wh_error e = {0};
    if (wh_nats_open(&n, url, "whiply-bus-dump", NULL, &e) != WH_OK) {
        fprintf(stderr, "whiply bus dump: %s\n", e.message);
        nats_CloseAndWait(5000);
        return WH_EXIT_IO;
    }
    char why[256];
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, n.js, sname, NULL, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "whiply bus dump: stream %s: %s\n", sname,
                wh_nats_why(s, jerr, why, sizeof(why)));
        wh_nats_close(&n);
        nats_CloseAndWait(5000);
        return WH_EXIT_IO;
    }
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    int rc = WH_EXIT_OK;
    if (last) {
        natsSubscription *sub = NULL;
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = sname;
        so.Ordered = true;
        s = js_SubscribeSync(&sub, n.js, filter, NULL, &so, &jerr);
        wh_buf out;
        wh_buf_init(&out);
        /* until the stream's last sequence at the start; a filter may match none of the
         * last messages, so an idle second also ends it */
        while (s == NATS_OK) {
            natsMsg *m = NULL;
            s = natsSubscription_NextMsg(&m, sub, 1000);
            if (s == NATS_TIMEOUT) {
                s = NATS_OK;
                break;
            }
            if (s != NATS_OK) break;
            jsMsgMetaData *md = NULL;
            uint64_t seq = 0;
            if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
                seq = md->Sequence.Stream;
                jsMsgMetaData_Destroy(md);
            }
            const char *id = NULL;
            natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
            out.len = 0;
            wh_buf_puts(&out, "{\"seq\":");
            wh_buf_u64(&out, seq);
            wh_buf_puts(&out, ",\"subject\":");
            wh_buf_json_str(&out, natsMsg_GetSubject(m), strlen(natsMsg_GetSubject(m)));
            wh_buf_puts(&out, ",\"msg_id\":");
            if (id)
                wh_buf_json_str(&out, id, strlen(id));
            else
                wh_buf_puts(&out, "null");
            wh_buf_puts(&out, ",\"data\":");
            wh_buf_json_str(&out, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
            wh_buf_puts(&out, "}\n");
            fwrite(out.p, 1, out.len, stdout);
            natsMsg_Destroy(m);
            if (seq >= last) break;
        }
        if (s != NATS_OK) {
            fprintf(stderr, "whiply bus dump: %s\n", wh_nats_why(s, jerr, why, sizeof(why)));
            rc = WH_EXIT_IO;
        }
        wh_buf_free(&out);
        natsSubscription_Destroy(sub);
    }
    wh_nats_close(&n);
    nats_CloseAndWait(5000);
    return rc;
}
