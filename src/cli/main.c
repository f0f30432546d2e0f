/* main.c - the whiply command: a table of subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef WHIPLY_VERSION
#define WHIPLY_VERSION "0.1.0"
#endif

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("whiply %s\n", WHIPLY_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"check", wh_cmd_check, "decide a stream of NDJSON events: whiply check --rules FILE"},
    {"rules", wh_cmd_rules, "rules tooling: whiply rules lint FILE..."},
    {"serve", wh_cmd_serve, "the daemon: HTTP API, audit trail, review queue: whiply serve"},
    {"replay", wh_cmd_replay,
     "rulesets against the humans in a recorded stream: whiply replay --rules FILE --in FILE"},
    {"train", wh_cmd_train, "train a text classifier: whiply train --data FILE --out MODEL"},
    {"eval", wh_cmd_eval, "evaluate a classifier: whiply eval --model MODEL --data FILE"},
    {"audit", wh_cmd_audit, "whiply audit verify: prove the audit trail unaltered"},
    {"review", wh_cmd_review, "whiply review export: moderators' verdicts as training data"},
    {"token", wh_cmd_token, "API tokens: whiply token new --scopes events"},
    {"publish", wh_cmd_publish, "events onto the NATS bus: whiply publish --bus URL < events"},
    {"bus", wh_cmd_bus, "the NATS bus: whiply bus dump --bus URL [--stream decisions]"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "this help"},
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("usage: whiply COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        printf("  %-8s %s\n", commands[i].name, commands[i].summary);
    printf("\nRun 'whiply COMMAND --help' for a command's options.\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cmd_help(0, NULL);
        return WH_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) return cmd_help(0, NULL);
    if (!strcmp(name, "--version")) return cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(commands[i].name, name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "whiply: unknown command '%s' (try 'whiply help')\n", name);
    return WH_EXIT_USAGE;
}
