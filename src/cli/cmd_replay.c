/* cmd_replay.c - `whiply replay`: rulesets over a recorded stream, measured against the
 * human moderators' actions in it (src/exp/replay.h, docs/experiments.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "engine/event.h"
#include "exp/replay.h"

#define MAX_REPORTS 4

static void usage(FILE *f)
{
    fprintf(f, "usage: whiply replay --rules FILE [--rules FILE ...] [--in FILE]\n"
               "                     [--labels FILE] [--report FILE.json|FILE.html ...]\n"
               "                     [--min-action ACTION] [--attribute DURATION]\n"
               "                     [--unlabelled ok|skip] [--examples N]\n"
               "                     [--cache-dir DIR | --no-cache]\n"
               "Decides a recorded NDJSON stream (stdin by default) with each ruleset in one\n"
               "pass, measures each against the human moderators' actions in the stream (and\n"
               "a sampled review's --labels), and compares each with the first. The report\n"
               "goes to each --report file (.html: a page for people; otherwise JSON), or as\n"
               "JSON to stdout without one; a summary goes to stderr.\n"
               "  --min-action   the weakest action that counts as acting (default warn)\n"
               "  --attribute    how old a user's last message may be for a removal without\n"
               "                 ref_event to label it (default 10m; 0 never)\n"
               "  --unlabelled   ok: messages no human touched count as fine (default skip)\n");
}

static int parse_action(const char *s, wh_action *out)
{
    for (int a = WH_ACT_WARN; a < WH_ACT__COUNT; a++)
        if (!strcmp(s, wh_action_names[a])) {
            *out = (wh_action)a;
            return 0;
        }
    return -1;
}

/* Reads fd line by line into the replay. The buffer holds several lines at a time; a line
 * that fills it alone (over WH_MAX_LINE) is passed as its first bytes, which the replay
 * reports, and the rest of it is skipped. */
#define READ_BUF ((size_t)4 << 20)

static int feed(wh_replay *r, int fd)
{
    char *buf = malloc(READ_BUF);
    if (!buf) return -2;
    size_t len = 0;
    bool skipping = false, eof = false;
    int rc = 0;
    while (!eof && !rc) {
        if (len == READ_BUF) { /* no newline in the whole buffer */
            if (!skipping && wh_replay_line(r, buf, WH_MAX_LINE + 1) != WH_OK) rc = -2;
            skipping = true;
            len = 0;
        }
        ssize_t n = read(fd, buf + len, READ_BUF - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0) {
            eof = true;
            if (len && buf[len - 1] != '\n') buf[len++] = '\n'; /* a last line without one */
        }
        len += (size_t)n;
        size_t start = 0;
        for (char *nl; !rc && (nl = memchr(buf + start, '\n', len - start));) {
            size_t end = (size_t)(nl - buf);
            if (!skipping && wh_replay_line(r, buf + start, end - start) != WH_OK) rc = -2;
            skipping = false;
            start = end + 1;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
    }
    free(buf);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static int write_file(const char *path, const wh_buf *b)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!f) {
        fprintf(stderr, "whiply replay: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    bool ok = fwrite(b->p, 1, b->len, f) == b->len;
    if (f != stdout)
        ok = fclose(f) == 0 && ok;
    else
        ok = fflush(f) == 0 && ok;
    if (!ok) fprintf(stderr, "whiply replay: cannot write %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}

static void summary(const wh_replay_result *res)
{
    fprintf(stderr,
            "whiply replay: %llu events (%llu bad lines), %llu messages: %llu labelled "
            "harmful, %llu fine, %llu unlabelled\n",
            (unsigned long long)res->events, (unsigned long long)res->errors,
            (unsigned long long)res->messages, (unsigned long long)res->harmful,
            (unsigned long long)res->ok, (unsigned long long)res->unlabelled);
    for (uint32_t i = 0; i < res->nrs; i++) {
        const wh_ruleset_result *o = &res->rs[i];
        fprintf(stderr,
                "  %s: accuracy %.1f%%, false positives %.1f%%, coverage %.1f%%, removed messages "
                "visible %.1f s on average (humans alone %.1f s)\n",
                o->name, 100 * o->accuracy.est, 100 * o->fpr.est, 100 * o->coverage.est,
                o->visible_ms.mean / 1000, o->human_ms.mean / 1000);
    }
    for (uint32_t i = 0; i + 1 < res->nrs; i++) {
        const wh_comparison *c = &res->cmp[i];
        fprintf(stderr,
                "  %s vs %s: %llu decisions changed; accuracy %+.2f pp [%+.2f, %+.2f], "
                "McNemar exact p %.4g, mid-p %.4g\n",
                res->rs[c->cand].name, res->rs[0].name, (unsigned long long)c->changed,
                100 * c->accuracy.diff.est, 100 * c->accuracy.diff.lo, 100 * c->accuracy.diff.hi,
                c->accuracy.test.exact, c->accuracy.test.mid_p);
    }
}

int wh_cmd_replay(int argc, char **argv)
{
    static const struct option longopts[] = {{"rules", required_argument, NULL, 'r'},
                                             {"in", required_argument, NULL, 'i'},
                                             {"labels", required_argument, NULL, 'l'},
                                             {"report", required_argument, NULL, 'o'},
                                             {"min-action", required_argument, NULL, 'm'},
                                             {"attribute", required_argument, NULL, 'a'},
                                             {"unlabelled", required_argument, NULL, 'u'},
                                             {"examples", required_argument, NULL, 'x'},
                                             {"cache-dir", required_argument, NULL, 'c'},
                                             {"no-cache", no_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *rules[WH_REPLAY_MAX_RULESETS], *reports[MAX_REPORTS];
    const char *in = NULL, *labels = NULL, *cache = wh_default_cache_dir();
    uint32_t nrules = 0, nreports = 0;
    wh_replay_opts ro;
    wh_replay_opts_default(&ro);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:i:o:", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (nrules == WH_REPLAY_MAX_RULESETS) {
                fprintf(stderr, "whiply replay: at most %d --rules\n", WH_REPLAY_MAX_RULESETS);
                return WH_EXIT_USAGE;
            }
            rules[nrules++] = optarg;
            break;
        case 'i':
            in = optarg;
            break;
        case 'l':
            labels = optarg;
            break;
        case 'o':
            if (nreports == MAX_REPORTS) {
                fprintf(stderr, "whiply replay: at most %d --report\n", MAX_REPORTS);
                return WH_EXIT_USAGE;
            }
            reports[nreports++] = optarg;
            break;
        case 'm':
            if (parse_action(optarg, &ro.min_action)) {
                fprintf(stderr,
                        "whiply replay: --min-action must be warn, hold, delete, timeout or "
                        "ban, got '%s'\n",
                        optarg);
                return WH_EXIT_USAGE;
            }
            break;
        case 'a': {
            int64_t ms = 0;
            if (strcmp(optarg, "0") && !wh_parse_duration(optarg, strlen(optarg), &ms)) {
                fprintf(stderr,
                        "whiply replay: --attribute must be a duration such as 10m or 0, got "
                        "'%s'\n",
                        optarg);
                return WH_EXIT_USAGE;
            }
            ro.attribute_ms = ms;
            break;
        }
        case 'u':
            if (strcmp(optarg, "ok") && strcmp(optarg, "skip")) {
                fprintf(stderr, "whiply replay: --unlabelled must be ok or skip, got '%s'\n",
                        optarg);
                return WH_EXIT_USAGE;
            }
            ro.unlabelled_ok = !strcmp(optarg, "ok");
            break;
        case 'x': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 8) {
                fprintf(stderr, "whiply replay: --examples must be 0..8, got '%s'\n", optarg);
                return WH_EXIT_USAGE;
            }
            ro.examples = (uint32_t)v;
            break;
        }
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
    if (!nrules || optind != argc) {
        usage(stderr);
        return WH_EXIT_USAGE;
    }
    wh_ruleset *rs[WH_REPLAY_MAX_RULESETS];
    uint32_t loaded = 0;
    int rc = 0, fd = 0;
    wh_replay *r = NULL;
    wh_error e;
    wh_buf out;
    wh_buf_init(&out);
    for (; loaded < nrules; loaded++) {
        wh_diags d = {0};
        wh_load_opts lo = {.cache_dir = cache, .compile = true};
        if (wh_ruleset_load(rules[loaded], &lo, &d, &rs[loaded]) != WH_OK) {
            wh_diags_print(&d, stderr);
            fprintf(stderr, "whiply replay: the rules in %s do not load\n", rules[loaded]);
            wh_diags_free(&d);
            rc = WH_EXIT_RULES;
            goto done;
        }
        wh_diags_free(&d);
    }
    if (wh_replay_new(rs, rules, nrules, &ro, &r, &e) != WH_OK) {
        fprintf(stderr, "whiply replay: %s\n", e.message);
        rc = WH_EXIT_IO;
        goto done;
    }
    if (labels && wh_replay_labels_file(r, labels, &e) != WH_OK) {
        fprintf(stderr, "whiply replay: %s\n", e.message);
        rc = e.code == WH_ESYNTAX ? WH_EXIT_USAGE : WH_EXIT_IO;
        goto done;
    }
    if (in && strcmp(in, "-")) {
        fd = open(in, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "whiply replay: cannot open %s: %s\n", in, strerror(errno));
            rc = WH_EXIT_IO;
            goto done;
        }
    }
    int fr = feed(r, fd);
    if (fr) {
        fprintf(stderr, "whiply replay: %s\n",
                fr == -2 ? "out of memory" : strerror(errno ? errno : EIO));
        rc = WH_EXIT_IO;
        goto done;
    }
    const wh_replay_result *res = wh_replay_finish(r);
    if (!res) {
        fprintf(stderr, "whiply replay: out of memory measuring the replay\n");
        rc = WH_EXIT_IO;
        goto done;
    }
    const char *input = in ? in : "-";
    if (!nreports) reports[nreports++] = "-";
    for (uint32_t i = 0; i < nreports && !rc; i++) {
        out.len = 0;
        if (ends_with(reports[i], ".html") || ends_with(reports[i], ".htm"))
            wh_replay_html(res, input, &out);
        else
            wh_replay_json(res, input, &out);
        if (out.oom) {
            fprintf(stderr, "whiply replay: out of memory writing the report\n");
            rc = WH_EXIT_IO;
        } else if (write_file(reports[i], &out)) {
            rc = WH_EXIT_IO;
        }
    }
    summary(res);
done:
    if (fd > 0) close(fd);
    wh_buf_free(&out);
    wh_replay_free(r);
    for (uint32_t i = 0; i < loaded; i++)
        wh_ruleset_release(rs[i]);
    return rc;
}
