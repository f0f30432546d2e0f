/* cmd_check.c - `whiply check`: NDJSON events in, NDJSON decisions out. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "engine/pipeline.h"
#include "rules/rules.h"

const char *wh_default_cache_dir(void)
{
    static char buf[4096];
    const char *e = getenv("WHIPLY_CACHE_DIR");
    if (e && *e) return e;
    e = getenv("XDG_CACHE_HOME");
    if (e && *e) {
        snprintf(buf, sizeof(buf), "%s/whiply", e);
        return buf;
    }
    e = getenv("HOME");
    if (e && *e) {
        snprintf(buf, sizeof(buf), "%s/.cache/whiply", e);
        return buf;
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: whiply check --rules FILE [--in FILE] [--out FILE] [--threads N]\n"
               "                    [--shards N] [--state FILE] [--explain] [--stats]\n"
               "                    [--cache-dir DIR | --no-cache]\n"
               "Reads NDJSON events (stdin by default) and writes one decision per line\n"
               "(stdout by default), in input order. --state loads behaviour state from FILE\n"
               "(when it exists) and saves it there after the run.\n");
}

int wh_cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {{"rules", required_argument, NULL, 'r'},
                                             {"in", required_argument, NULL, 'i'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"shards", required_argument, NULL, 'S'},
                                             {"state", required_argument, NULL, 'T'},
                                             {"explain", no_argument, NULL, 'e'},
                                             {"stats", no_argument, NULL, 's'},
                                             {"cache-dir", required_argument, NULL, 'c'},
                                             {"no-cache", no_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *rules = NULL, *in = NULL, *outp = NULL, *cache = wh_default_cache_dir();
    int threads = 1, shards = 1, c;
    const char *state_path = NULL;
    bool stats = false;
    wh_engine_opts eo = {0};
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:i:o:t:", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            rules = optarg;
            break;
        case 'i':
            in = optarg;
            break;
        case 'o':
            outp = optarg;
            break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 256) {
                fprintf(stderr, "whiply check: --threads must be 1..256, got '%s'\n", optarg);
                return WH_EXIT_USAGE;
            }
            threads = (int)v;
            break;
        }
        case 'S': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 64) {
                fprintf(stderr, "whiply check: --shards must be 1..64, got '%s'\n", optarg);
                return WH_EXIT_USAGE;
            }
            shards = (int)v;
            break;
        }
        case 'T':
            state_path = optarg;
            break;
        case 'e':
            eo.explain = true;
            break;
        case 's':
            stats = true;
            break;
        case 'c':
            cache = optarg;
            break;
        case 'n':
            cache = NULL;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return WH_EXIT_USAGE;
        }
    }
    if (!rules || optind != argc) {
        usage(stderr);
        return WH_EXIT_USAGE;
    }
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts lo = {.cache_dir = cache, .compile = true};
    if (wh_ruleset_load(rules, &lo, &d, &rs) != WH_OK) {
        wh_diags_print(&d, stderr);
        fprintf(stderr, "whiply check: the rules in %s do not load (%u problem%s)\n", rules, d.n,
                d.n == 1 ? "" : "s");
        wh_diags_free(&d);
        return WH_EXIT_RULES;
    }
    wh_diags_free(&d);
    int fd = 0;
    if (in && strcmp(in, "-")) {
        fd = open(in, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "whiply check: cannot open %s: %s\n", in, strerror(errno));
            wh_ruleset_release(rs);
            return WH_EXIT_IO;
        }
    }
    FILE *out = stdout;
    if (outp && strcmp(outp, "-")) {
        out = fopen(outp, "w");
        if (!out) {
            fprintf(stderr, "whiply check: cannot write %s: %s\n", outp, strerror(errno));
            if (fd) close(fd);
            wh_ruleset_release(rs);
            return WH_EXIT_IO;
        }
    }
    static wh_stream_stats st;
    memset(&st, 0, sizeof(st));
    st.measure = stats;
    wh_run_opts ro = {.threads = threads, .shards = shards, .state_path = state_path};
    int rc = wh_run_stream(rs, &eo, fd, out, &ro, &st);
    if (out != stdout && fclose(out) != 0) rc = -1;
    if (fd) close(fd);
    if (stats) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr,
                "{\"events\":%llu,\"errors\":%llu,\"threads\":%d,\"seconds\":%.3f,"
                "\"events_per_s\":%.0f,\"latency_us\":{\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,"
                "\"max\":%.1f},\"peak_rss_kb\":%ld,\"state\":{\"users\":%llu,\"channels\":%llu,"
                "\"evictions\":%llu},\"actions\":{",
                (unsigned long long)st.events, (unsigned long long)st.errors, threads, st.seconds,
                st.seconds > 0 ? (double)st.events / st.seconds : 0.0,
                wh_stats_percentile_us(&st, 0.50), wh_stats_percentile_us(&st, 0.99),
                wh_stats_percentile_us(&st, 0.999), wh_stats_max_us(&st), ru.ru_maxrss,
                (unsigned long long)st.state.users, (unsigned long long)st.state.channels,
                (unsigned long long)(st.state.user_evictions + st.state.channel_evictions));
        for (int a = 0; a < WH_ACT__COUNT; a++)
            fprintf(stderr, "%s\"%s\":%llu", a ? "," : "", wh_action_names[a],
                    (unsigned long long)st.actions[a]);
        fprintf(stderr, "}}\n");
    }
    wh_ruleset_release(rs);
    if (rc == -2) {
        fprintf(stderr, "whiply check: %s\n", st.state_error.message);
        return WH_EXIT_IO;
    }
    if (rc != 0) {
        fprintf(stderr, "whiply check: I/O error: %s\n", strerror(errno ? errno : EIO));
        return WH_EXIT_IO;
    }
    return 0;
}
