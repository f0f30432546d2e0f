/* fuzz_replay.c - whiply replay's inputs (src/exp/): a stream with human moderators'
 * actions and a sampled review's labels file, through wh_replay_line and
 * wh_replay_label_line, then the measures and both reports.
 *
 * Each input line starting with '#' is a labels line (the rest of it); the others are the
 * stream. Two small rulesets (words, a rate limit, a shadow rule) decide it, so every path
 * of the ground truth, the comparison and the changed-decision groups is reachable. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>

#include "exp/replay.h"

static const char *rules[2] = {
    "version: 1\nrules:\n  - id: w\n    when: {words: [heck, darn]}\n    action: delete\n"
    "  - id: s\n    mode: shadow\n    when: {links: \">= 1\"}\n    action: ban\n",
    /* small state tables: a fuzz run makes a decider per input */
    "version: 1\nstate:\n  max_users: 1000\n  max_channels: 100\nrules:\n  - id: w\n    when: "
    "{words: [heck]}\n    action: {timeout: 1m}\n"
    "  - id: r\n    when: {rate: {count: 2, per: 10s}}\n    action: warn\n"};

static wh_ruleset *rs[2];

static void load(void)
{
    wh_load_opts lo = {.compile = true};
    for (int i = 0; i < 2; i++) {
        wh_diags d = {0};
        if (wh_ruleset_load_mem("fuzz.yaml", ".", rules[i], strlen(rules[i]), &lo, &d, &rs[i]) !=
            WH_OK)
            abort();
        wh_diags_free(&d);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!rs[0]) load();
    const char *names[2] = {"a", "b"};
    wh_replay_opts o;
    wh_replay_opts_default(&o);
    o.attribute_ms = 60000;
    wh_replay *r;
    wh_error e;
    if (wh_replay_new(rs, names, 2, &o, &r, &e) != WH_OK) abort();
    const char *p = (const char *)data, *end = p + size;
    uint64_t label_no = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len && *p == '#')
            wh_replay_label_line(r, p + 1, len - 1, ++label_no, &e);
        else if (wh_replay_line(r, p, len) != WH_OK)
            abort();
        p += len + 1;
    }
    const wh_replay_result *res = wh_replay_finish(r);
    if (!res) abort();
    for (uint32_t i = 0; i < res->nrs; i++) {
        const wh_confusion *c = &res->rs[i].cm;
        if (c->tp + c->fp + c->tn + c->fn + c->unl_acted + c->unl_allowed != res->messages)
            abort(); /* every message is counted exactly once */
    }
    wh_buf b;
    wh_buf_init(&b);
    wh_replay_json(res, "fuzz", &b);
    b.len = 0;
    wh_replay_html(res, "fuzz", &b);
    if (memmem(b.p, b.len, "<script", 7)) abort(); /* no text of the input unescaped */
    wh_buf_free(&b);
    wh_replay_free(r);
    return 0;
}
