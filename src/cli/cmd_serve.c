/* cmd_serve.c - `whiply serve` (the daemon), `whiply token` and `whiply audit`. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "io/bus.h"
#include "io/irc.h"
#include "serve/config.h"
#include "serve/http.h"
#include "serve/service.h"
#include "store/sign.h"
#include "store/store.h"

static void sha256(const char *s, size_t n, uint8_t out[32])
{
    unsigned l = 32;
    EVP_Digest(s, n, out, &l, EVP_sha256(), NULL);
}

static bool new_token(char out[72])
{
    uint8_t r[32];
    if (RAND_bytes(r, sizeof(r)) != 1) return false;
    memcpy(out, "whiply_", 7);
    wh_hex_encode(r, 32, out + 7);
    return true;
}

/* The admin token for a config without tokens: DATA/admin.token, made on first start
 * (mode 0600), read on later ones. */
static bool admin_token(const char *dir, uint8_t hash[32], char *path, size_t pathlen,
                        bool *created)
{
    snprintf(path, pathlen, "%s/admin.token", dir);
    *created = false;
    FILE *f = fopen(path, "r");
    char tok[256] = "";
    if (f) {
        if (!fgets(tok, sizeof(tok), f)) tok[0] = 0;
        fclose(f);
        tok[strcspn(tok, "\r\n")] = 0;
        if (!tok[0]) {
            fprintf(stderr, "whiply: %s is empty; delete it to have a new token made\n", path);
            return false;
        }
    } else {
        if (!new_token(tok)) return false;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0) {
            fprintf(stderr, "whiply: cannot create %s: %s\n", path, strerror(errno));
            return false;
        }
        size_t n = strlen(tok);
        tok[n] = '\n';
        bool ok = write(fd, tok, n + 1) == (ssize_t)(n + 1);
        tok[n] = 0;
        if (close(fd) != 0 || !ok) {
            fprintf(stderr, "whiply: cannot write %s\n", path);
            return false;
        }
        *created = true;
    }
    sha256(tok, strlen(tok), hash);
    return true;
}

/* What besides the service has metrics of its own: the bus and the chat adapters. */
typedef struct {
    wh_bus *bus;
    wh_irc **irc;
    uint32_t nirc;
} serve_parts;

static void parts_metrics(void *ud, wh_buf *out)
{
    serve_parts *p = ud;
    if (p->bus) wh_bus_metrics(p->bus, out);
    wh_irc_metrics(p->irc, p->nirc, out);
}

/* Starts consuming the bus. A bus that does not answer (a cluster electing its leaders, a
 * server restarting) is not a reason to stop serving: the failure is logged and *wait_ms says
 * when to try again (doubling up to 8 s); meanwhile bus.http: publish answers 503. A wrong
 * configuration (-1 in *wait_ms) is. */
static wh_bus *start_bus(wh_service *svc, const wh_config *cfg, int64_t *wait_ms,
                         serve_parts *parts)
{
    wh_error be;
    wh_bus *bus = wh_bus_start(svc, cfg, &be);
    if (!bus) {
        if (be.code == WH_EINVAL) {
            fprintf(stderr, "whiply: %s\n", be.message);
            *wait_ms = -1;
            return NULL;
        }
        fprintf(stderr, "whiply: %s; trying again in %.1f s\n", be.message, *wait_ms / 1000.0);
        *wait_ms = *wait_ms * 2 < 8000 ? *wait_ms * 2 : 8000;
        return NULL;
    }
    wh_service_set_metrics(svc, NULL, NULL); /* waits out a call reading parts */
    parts->bus = bus;
    wh_service_set_metrics(svc, parts_metrics, parts);
    if (cfg->bus.http && !strcmp(cfg->bus.http, "publish"))
        wh_service_set_event_sink(svc, wh_bus_sink_events, bus);
    fprintf(stderr, "whiply: consuming the bus at %s (%lld partitions)\n", cfg->bus.url,
            (long long)cfg->bus.partitions);
    return bus;
}

static int serve_usage(FILE *f)
{
    fprintf(f, "usage: whiply serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--rules "
               "FILE]\n"
               "                    [--start-afresh]\n"
               "       whiply serve --print-config\n\n"
               "Runs the daemon: the HTTP API (docs/api.md) over the rules, with the audit trail\n"
               "and review queue in DIR/whiply.db. Without --config, the embedded default\n"
               "(--print-config shows it; docs/config.md explains it). SIGHUP reloads the\n"
               "rules; SIGTERM or SIGINT drains the requests in flight and exits 0.\n"
               "It refuses to start when the audit trail is damaged, or empty, shorter or\n"
               "different from the last signed checkpoint (store.checkpoints); --start-afresh\n"
               "starts anyway and begins a new checkpoint file (the old one is kept).\n");
    return f == stdout ? 0 : WH_EXIT_USAGE;
}

int wh_cmd_serve(int argc, char **argv)
{
    const char *config = NULL, *listen = NULL, *data = NULL, *rules = NULL;
    bool afresh = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--config")   ? &config
                           : !strcmp(a, "--listen") ? &listen
                           : !strcmp(a, "--data")   ? &data
                           : !strcmp(a, "--rules")  ? &rules
                                                    : NULL;
        if (dst && i + 1 < argc) {
            *dst = argv[++i];
        } else if (!strcmp(a, "--start-afresh")) {
            afresh = true;
        } else if (!strcmp(a, "--print-config")) {
            fputs(wh_config_default_yaml, stdout);
            return 0;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return serve_usage(stdout);
        } else {
            fprintf(stderr, "whiply serve: unknown or incomplete option '%s'\n", a);
            return serve_usage(stderr);
        }
    }
    wh_config cfg;
    wh_diags d = {0};
    if (wh_config_load(config, &cfg, &d) != WH_OK) {
        wh_diags_print(&d, stderr);
        wh_diags_free(&d);
        wh_config_free(&cfg);
        return WH_EXIT_RULES;
    }
    wh_diags_free(&d);
    if (listen) wh_config_set(&cfg.listen, listen);
    if (data) wh_config_set(&cfg.data, data);
    if (rules) wh_config_set(&cfg.rules, rules);
    cfg.cache_dir = wh_default_cache_dir();
    cfg.start_afresh = afresh;

    /* Signals go to one thread (this one, in sigtimedwait), not to the HTTP threads. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    umask(077); /* the database, the state and the token are the operator's alone */

    int rc = WH_EXIT_IO;
    wh_http *http = NULL;
    if (mkdir(cfg.data, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "whiply: cannot create the data folder %s: %s\n", cfg.data,
                strerror(errno));
        wh_config_free(&cfg);
        return WH_EXIT_IO;
    }
    uint8_t admin[32];
    char token_path[4200];
    bool created = false, use_admin = cfg.ntokens == 0;
    if (use_admin && !admin_token(cfg.data, admin, token_path, sizeof(token_path), &created)) {
        wh_config_free(&cfg);
        return WH_EXIT_IO;
    }
    wh_error oe;
    wh_service *svc = wh_service_open(&cfg, &oe);
    if (!svc) {
        fprintf(stderr, "whiply: %s\n", oe.message);
        wh_config_free(&cfg);
        return oe.code == WH_ERULES ? WH_EXIT_RULES : WH_EXIT_IO;
    }
    /* Request bodies (up to limits.body) and answers are the daemon's large allocations.
     * glibc raises its mmap threshold to the size of each mmapped block freed, after which
     * such blocks come from the heap and stay with the process when freed (900 MB stayed
     * after 200 bodies of 8 MB were dropped); a fixed threshold keeps them mmapped, so
     * their memory goes back to the system when they are freed. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    int port = 0;
    wh_error he;
    http = wh_http_start(svc, cfg.listen, use_admin ? admin : NULL, &port, &he);
    if (!http) {
        fprintf(stderr, "whiply: %s\n", he.message);
        goto out;
    }
    const char *colon = strrchr(cfg.listen, ':');
    fprintf(stderr, "whiply: serving %s (rules %s, data %s)\n", WHIPLY_VERSION, cfg.rules,
            cfg.data);
    if (use_admin)
        fprintf(stderr,
                "whiply: no tokens are configured: the admin token %s %s (mode 0600); use it "
                "as\n  curl -H \"Authorization: Bearer $(cat %s)\" http://%.*s:%d/v1/rules\n",
                created ? "was made in" : "is in", token_path, token_path,
                (int)(colon - cfg.listen), cfg.listen, port);
    fprintf(stderr, "whiply: listening on http://%.*s:%d\n", (int)(colon - cfg.listen), cfg.listen,
            port);
    wh_bus *bus = NULL;
    serve_parts parts = {0};
    bool want_bus = cfg.bus.url && strcmp(cfg.bus.url, "none");
    int64_t bus_wait_ms = 1000, bus_waited_ms = 0;
    if (want_bus && !(bus = start_bus(svc, &cfg, &bus_wait_ms, &parts))) {
        if (bus_wait_ms < 0) { /* the configuration is wrong: no retry will help */
            wh_http_stop(http, 30000);
            goto out;
        }
    }

    /* The chat platforms: each network's client connects (and reconnects) on its own thread. */
    parts.irc = cfg.platforms.nirc ? calloc(cfg.platforms.nirc, sizeof(wh_irc *)) : NULL;
    for (uint32_t i = 0; parts.irc && i < cfg.platforms.nirc; i++) {
        wh_error ie;
        wh_irc *c = wh_irc_start(svc, &cfg.platforms.irc[i], &ie);
        if (!c) {
            fprintf(stderr, "whiply: %s\n", ie.message);
            continue;
        }
        parts.irc[parts.nirc++] = c;
        fprintf(stderr, "whiply: irc %s: connecting to %s:%lld (channels:", wh_irc_name(c),
                cfg.platforms.irc[i].host, (long long)cfg.platforms.irc[i].port);
        for (uint32_t k = 0; k < cfg.platforms.irc[i].nchannels; k++)
            fprintf(stderr, " %s", cfg.platforms.irc[i].channels[k]);
        fprintf(stderr, ")\n");
    }
    if (parts.nirc) wh_service_set_metrics(svc, parts_metrics, &parts);

    int64_t snap_ms = cfg.store.snapshot_ms;
    struct timespec last;
    clock_gettime(CLOCK_MONOTONIC, &last);
    for (;;) {
        struct timespec to = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &to);
        if (sig == SIGHUP) {
            wh_buf out;
            wh_buf_init(&out);
            wh_service_reload(svc, "SIGHUP", &out); /* it logs a refusal itself */
            wh_buf_free(&out);
        } else if (sig == SIGTERM || sig == SIGINT) {
            fprintf(stderr, "whiply: %s: draining the requests in flight\n",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t el = (now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000;
        if (want_bus && !bus && (bus_waited_ms += 1000) >= bus_wait_ms) {
            bus_waited_ms = 0;
            bus = start_bus(svc, &cfg, &bus_wait_ms, &parts);
        }
        if (snap_ms > 0 && el >= snap_ms) {
            last = now;
            wh_error se;
            if (wh_service_snapshot(svc, &se) != WH_OK)
                fprintf(stderr, "whiply: the state was not saved: %s\n", se.message);
        }
    }
    wh_service_set_metrics(svc, NULL, NULL);
    for (uint32_t i = 0; i < parts.nirc; i++) /* nothing more to or from chat */
        wh_irc_stop(parts.irc[i]);
    free(parts.irc);
    wh_service_set_event_sink(svc, NULL, NULL); /* HTTP events wait for no bus */
    wh_bus_stop(bus); /* nothing more from the bus, before the HTTP requests drain */
    wh_http_stop(http, 30000);
    rc = wh_store_error(wh_service_store(svc)) ? WH_EXIT_IO : WH_EXIT_OK;
out:
    wh_service_close(svc);
    if (rc == WH_EXIT_OK) fprintf(stderr, "whiply: stopped; the audit trail is flushed\n");
    wh_config_free(&cfg);
    return rc;
}

int wh_cmd_token(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "new")) {
        const char *scopes = "events";
        const char *name = "token";
        for (int i = 2; i < argc; i += 2) {
            if (i + 1 < argc && !strcmp(argv[i], "--scopes")) {
                scopes = argv[i + 1];
            } else if (i + 1 < argc && !strcmp(argv[i], "--name")) {
                name = argv[i + 1];
            } else {
                fprintf(stderr, "whiply token new: unknown or incomplete option '%s'\n", argv[i]);
                return WH_EXIT_USAGE;
            }
        }
        for (const char *p = name; *p; p++)
            if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
                  ((*p | 32) >= 'a' && (*p | 32) <= 'z'))) {
                fprintf(stderr, "whiply token new: a --name is letters, digits, '-', '_', '.'\n");
                return WH_EXIT_USAGE;
            }
        char list[256] = "";
        if (!*scopes) {
            fprintf(stderr, "whiply token: --scopes needs at least one of events, review, rules, "
                            "admin\n");
            return WH_EXIT_USAGE;
        }
        for (const char *p = scopes; *p;) {
            size_t n = strcspn(p, ",");
            if (!wh_scope_parse(p, n)) {
                fprintf(stderr,
                        "whiply token: unknown scope '%.*s' (events, review, rules, admin)\n",
                        (int)n, p);
                return WH_EXIT_USAGE;
            }
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s%.*s", l ? ", " : "", (int)n, p);
            p += n + (p[n] == ',');
        }
        char tok[72];
        uint8_t h[32];
        char hx[65];
        if (!new_token(tok)) return WH_EXIT_IO;
        sha256(tok, strlen(tok), h);
        wh_hex_encode(h, 32, hx);
        printf("token: %s\n\nAdd to whiply.yaml (only the hash is stored):\ntokens:\n"
               "  - name: %s\n    sha256: %s\n    scopes: [%s]\n",
               tok, name, hx, list);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "hash")) {
        uint8_t h[32];
        char hx[65];
        sha256(argv[2], strlen(argv[2]), h);
        wh_hex_encode(h, 32, hx);
        printf("%s\n", hx);
        return 0;
    }
    fprintf(stderr, "usage: whiply token new [--scopes events,review,rules,admin] [--name NAME]\n"
                    "       whiply token hash TOKEN\n");
    return WH_EXIT_USAGE;
}

/* The database a tool reads: --db FILE, else DIR/whiply.db; NULL (said on stderr) when it
 * cannot be read. */
static const char *tool_db(const char *cmd, const char *data, const char *db, char *buf, size_t n)
{
    if (!db) {
        snprintf(buf, n, "%s/whiply.db", data);
        db = buf;
    }
    if (access(db, R_OK) != 0) {
        fprintf(stderr, "whiply %s: cannot read %s: %s\n", cmd, db, strerror(errno));
        return NULL;
    }
    return db;
}

/* whiply review export: the moderators' verdicts as training data. */
int wh_cmd_review(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "export")) {
        const char *data = "./data", *db = NULL, *label = "removed";
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--data") && i + 1 < argc)
                data = argv[++i];
            else if (!strcmp(argv[i], "--db") && i + 1 < argc)
                db = argv[++i];
            else if (!strcmp(argv[i], "--label") && i + 1 < argc && argv[i + 1][0])
                label = argv[++i];
            else {
                fprintf(stderr, "whiply review export: unknown option '%s'\n", argv[i]);
                return WH_EXIT_USAGE;
            }
        }
        char path[4200];
        if (!(db = tool_db("review export", data, db, path, sizeof(path)))) return WH_EXIT_IO;
        int64_t n = wh_review_export(db, label, stdout, stderr);
        if (n < 0) return WH_EXIT_IO;
        fprintf(stderr, "whiply review export: %lld resolved item%s\n", (long long)n,
                n == 1 ? "" : "s");
        return WH_EXIT_OK;
    }
    fprintf(
        stderr,
        "usage: whiply review export [--data DIR | --db FILE] [--label NAME] > labelled.ndjson\n"
        "  the review queue's resolved items as training data for whiply train: a denied\n"
        "  message gets the label NAME (default removed), an approved one the label ok\n");
    return WH_EXIT_USAGE;
}

int wh_cmd_audit(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "verify")) {
        const char *data = "./data", *db = NULL, *pubfile = NULL, *bus = NULL;
        const char *trails[64];
        bool trail_is_db[64];
        int ntrails = 0;
        long parts = 8;
        uint8_t head[32], pub[32];
        bool has_head = false;
        wh_verify_opts vo = {0};
        for (int i = 2; i < argc; i++) {
            if ((!strcmp(argv[i], "--data") || !strcmp(argv[i], "--db")) && i + 1 < argc) {
                if (ntrails == 64) {
                    fprintf(stderr, "whiply audit verify: at most 64 trails\n");
                    return WH_EXIT_USAGE;
                }
                trail_is_db[ntrails] = !strcmp(argv[i], "--db");
                trails[ntrails] = argv[++i];
                if (trail_is_db[ntrails])
                    db = trails[ntrails];
                else
                    data = trails[ntrails];
                ntrails++;
            } else if (!strcmp(argv[i], "--bus") && i + 1 < argc) {
                bus = argv[++i];
            } else if (!strcmp(argv[i], "--partitions") && i + 1 < argc) {
                char *end;
                parts = strtol(argv[++i], &end, 10);
                if (*end || parts < 1 || parts > WH_BUS_MAX_PARTITIONS) {
                    fprintf(stderr, "whiply audit verify: --partitions takes 1 to %d\n",
                            WH_BUS_MAX_PARTITIONS);
                    return WH_EXIT_USAGE;
                }
            } else if (!strcmp(argv[i], "--pubkey") && i + 1 < argc) {
                pubfile = argv[++i];
            } else if (!strcmp(argv[i], "--checkpoints") && i + 1 < argc) {
                vo.checkpoints_file = argv[++i];
            } else if (!strcmp(argv[i], "--head") && i + 1 < argc) {
                const char *x = argv[++i];
                has_head = wh_hex_decode(x, strlen(x), head, 32);
                if (!has_head) {
                    fprintf(stderr, "whiply audit verify: --head takes the 64 hex digits that "
                                    "an earlier verify printed\n");
                    return WH_EXIT_USAGE;
                }
            } else {
                fprintf(stderr, "whiply audit verify: unknown option '%s'\n", argv[i]);
                return WH_EXIT_USAGE;
            }
        }
        if (vo.checkpoints_file && !pubfile) {
            fprintf(stderr, "whiply audit verify: --checkpoints needs --pubkey\n");
            return WH_EXIT_USAGE;
        }
        if (pubfile) {
            wh_error err;
            if (!wh_pubkey_load(pubfile, pub, &err)) {
                fprintf(stderr, "whiply audit verify: %s\n", err.message);
                return 2;
            }
            vo.pubkey = pub;
        }
        vo.expect_head = has_head ? head : NULL;
        if (bus) { /* several trails, each whole, and together every event of the bus */
            char paths[64][4200];
            const char *dbs[64];
            int worst = 0;
            for (int i = 0; i < (ntrails ? ntrails : 1); i++) {
                bool is_db = ntrails && trail_is_db[i];
                const char *t = ntrails ? trails[i] : data;
                if (!(dbs[i] = tool_db("audit verify", is_db ? NULL : t, is_db ? t : NULL, paths[i],
                                       sizeof(paths[i]))))
                    return 2;
                fprintf(stdout, "%s:\n", dbs[i]);
                int r = wh_audit_verify(dbs[i], &vo, stdout);
                if (r > worst) worst = r;
            }
            int r = wh_bus_audit_verify(bus, (uint32_t)parts, dbs, ntrails ? ntrails : 1, stdout);
            nats_CloseAndWait(5000);
            return r > worst ? r : worst;
        }
        if (ntrails > 1) {
            fprintf(stderr, "whiply audit verify: several trails need --bus\n");
            return WH_EXIT_USAGE;
        }
        char path[4200];
        if (!(db = tool_db("audit verify", data, db, path, sizeof(path)))) return 2;
        return wh_audit_verify(db, &vo, stdout);
    }
    fprintf(stderr,
            "usage: whiply audit verify [--data DIR | --db FILE] [--head HEX]\n"
            "                           [--pubkey FILE [--checkpoints FILE]]\n"
            "       whiply audit verify --bus URL [--partitions P] --data DIR|--db FILE ...\n"
            "  walks the audit trail's hash chain; exit 0 when whole, 1 naming the first row\n"
            "  altered, inserted or removed, 2 when the database cannot be read. --head: a head\n"
            "  printed by an earlier verify (kept elsewhere) must still be in the chain, which\n"
            "  shows that no rows were cut from its end since. --pubkey: the signing key's\n"
            "  public half (DATA-signing.key.pub, or the ed25519:HEX the daemon prints): every\n"
            "  signed checkpoint (the database's, and those in --checkpoints) must verify and\n"
            "  match the chain, none may lie beyond its end, and a prefix deleted by retention\n"
            "  must be covered by a signature (docs/api.md, the threat model). --bus: the trails\n"
            "  of the instances on one bus (each walked as above), and each acknowledged event of\n"
            "  the P partitions read back from the stream: each must have one decision row in\n"
            "  them (or several with the same decision, after a takeover) (docs/bus.md)\n");
    return WH_EXIT_USAGE;
}
