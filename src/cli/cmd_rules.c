/* cmd_rules.c - `whiply rules lint FILE...`: every problem of every file, then exit 1. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rules/rules.h"

static int lint(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: whiply rules lint FILE...\n");
        return argc < 2 ? WH_EXIT_USAGE : 0;
    }
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        wh_diags d = {0};
        wh_ruleset *rs = NULL;
        /* Compile too: Hyperscan may reject a combination the per-pattern checks accept. */
        wh_load_opts o = {.cache_dir = wh_default_cache_dir(), .compile = true, .lint = true};
        wh_ruleset_load(argv[i], &o, &d, &rs);
        if (d.n) {
            wh_diags_print(&d, stdout);
            bad = 1;
        } else {
            printf("%s: ok (%u rules, %u patterns)\n", argv[i], rs->nrules, rs->npats);
        }
        wh_ruleset_release(rs);
        wh_diags_free(&d);
    }
    return bad;
}

int wh_cmd_rules(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "lint")) return lint(argc - 1, argv + 1);
    fprintf(stderr, "usage: whiply rules lint FILE...\n");
    return WH_EXIT_USAGE;
}
