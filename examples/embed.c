/* embed.c - deciding chat events from a program of your own, with the public header only.
 *
 *   embed RULES.yaml [--explain] < events.ndjson
 *
 * Reads one event (a JSON object, docs/api.md "Event") per line of stdin and prints, for
 * each, what the verdict struct says, then the decision JSON:
 *
 *   kys timeout 3600s rule=harassment
 *     match harassment squashed [5,18) "kill yourself"
 *     {"id":"kys","action":"timeout","duration_s":3600,...}
 *
 * Build it against the installed library:
 *
 *   cc embed.c $(pkg-config --cflags --libs whiply) -o embed
 *
 * WHIPLY_CACHE_DIR, when set, names a directory where compiled databases are cached, so
 * that the second start skips the compile. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <whiply/whiply.h>

/* The receive time of an event: the engine uses it for events without a "ts". */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prints a verdict. Its strings belong to the engine and live until the next event, which
 * is all a printer needs; a program that queues actions would copy them. */
static void print_verdict(const whiply_verdict *v)
{
    printf("%s", v->id ? v->id : "-");
    if (v->error) { /* the rules did not decide it (action is allow): say why */
        printf(" error %s: %s\n", v->error_code ? v->error_code : "?",
               v->error_message ? v->error_message : "");
        return;
    }
    printf(" %s", whiply_action_name(v->action));
    if (v->action == WHIPLY_ACTION_TIMEOUT) printf(" %us", v->duration_s);
    printf(" rule=%s", v->rule ? v->rule : "-");
    if (v->strike >= 0) printf(" strike=%lld", v->strike);
    if (v->message) printf(" message=\"%s\"", v->message);
    if (v->channel_mode) printf(" channel=%s/%us", v->channel_mode, v->channel_duration_s);
    printf("\n");
    /* The spans are bytes of v->text, the event's text with its JSON escapes undone. */
    for (size_t i = 0; i < v->nmatches; i++) {
        const whiply_match *m = &v->matches[i];
        printf("  match %s %s [%zu,%zu) \"%.*s\"\n", m->rule, m->view, m->start, m->end,
               (int)(m->end - m->start), v->text + m->start);
    }
    for (size_t i = 0; i < v->ntargets; i++)
        printf("  target %s\n", v->targets[i]);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--explain"))) {
        fprintf(stderr, "usage: %s RULES.yaml [--explain] < events.ndjson (whiply %s)\n", argv[0],
                whiply_version());
        return 64;
    }

    /* Options go through a handle with one setter each; NULL would take the defaults. */
    whiply_opts *opts = whiply_opts_new();
    if (!opts || whiply_opts_set_cache_dir(opts, getenv("WHIPLY_CACHE_DIR")) != WHIPLY_OK ||
        whiply_opts_set_explain(opts, argc == 3) != WHIPLY_OK) {
        fprintf(stderr, "embed: %s\n", whiply_strerror(WHIPLY_ENOMEM));
        whiply_opts_free(opts);
        return 1;
    }

    /* Compiling the rules is the slow step (a second engine for another thread would be a
     * whiply_engine_clone of this one). When they do not load, the diagnostics say why, one
     * "file:line:col: error: ..." line each. */
    whiply_engine *e = NULL;
    char *diag = NULL;
    whiply_status st = whiply_engine_open_opts(argv[1], opts, &e, &diag);
    whiply_opts_free(opts); /* the engine keeps what it needs */
    if (st != WHIPLY_OK) {
        fprintf(stderr, "embed: %s: %s\n", argv[1], whiply_strerror(st));
        if (diag) fputs(diag, stderr);
        whiply_free(diag);
        return st == WHIPLY_ERULES ? 2 : 1;
    }

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (strspn(line, " \t") == (size_t)n) continue; /* blank lines are not events */

        /* One call decides the event; a malformed one is WHIPLY_OK with v.error set. */
        whiply_verdict v;
        st = whiply_decide_verdict(e, line, (size_t)n, now_ms(), &v);
        if (st != WHIPLY_OK) {
            fprintf(stderr, "embed: %s\n", whiply_strerror(st));
            rc = 1;
            break;
        }
        print_verdict(&v);

        /* The same decision as JSON, encoded from the verdict just made (not decided again:
         * with behaviour rules a second decision would count the message twice). */
        const char *json;
        size_t len;
        if (whiply_verdict_json(e, &json, &len) == WHIPLY_OK) printf("  %.*s\n", (int)len, json);
    }
    free(line);
    whiply_engine_close(e);
    if (ferror(stdin) || fflush(stdout) != 0) rc = 1;
    return rc;
}
