/* fuzz_state.c - state snapshot files through wh_state_load_mem, then decisions on the
 * loaded state.
 *
 * A snapshot ends in a checksum the fuzzer could never guess, so the input is taken as the
 * body of a file: the target adds the "WHIPLYST" header and the correct checksum, and the
 * parser behind the checksum is what gets explored. (An input that already starts with
 * the header is used as it is, which covers the checksum check itself.) Whatever loads is
 * then used: a few events are decided on the loaded shards (rates, repeats, waves,
 * strikes), so a corrupt value that got through would show up there. */
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "framed.h"

#include "engine/engine.h"
#include "rules/rules.h"

static wh_ruleset *rs;
static wh_worker *w;
static wh_arena keep;
static wh_analysis an[4];

static const char *const rules_yaml =
    "version: 1\n"
    "state: {max_users: 1000, max_channels: 100}\n"
    "escalation: {ladder: [warn, 60s, ban], half_life: 1h}\n"
    "rules:\n"
    "  - {id: flood, when: {rate: {count: 3, per: 10s}}, action: delete}\n"
    "  - {id: busy, when: {rate: {count: 5, per: 5s, scope: channel}}, action: allow,"
    " channel_action: {mode: slow, for: 1m}}\n"
    "  - {id: dup, when: {duplicate: {count: 2, within: 60s}}, escalate: true}\n"
    "  - {id: near, when: {similar: {count: 2, within: 60s}}, action: hold}\n"
    "  - {id: wave, when: {wave: {users: 2, within: 60s}}, action: ban}\n"
    "  - {id: low, when: {reputation: \"< -3\"}, action: delete}\n"
    "  - {id: raid, when: {joins: {count: 2, per: 10s}}, action: allow,"
    " channel_action: {mode: followers_only, for: 1m}}\n";

static const char *const lines[4] = {
    "{\"id\":\"1\",\"platform\":\"twitch\",\"channel\":\"#c\",\"user\":{\"id\":\"u1\"},"
    "\"text\":\"buy followers at bigfollows dot com 1\",\"ts\":1000}",
    "{\"id\":\"2\",\"platform\":\"twitch\",\"channel\":\"#c\",\"user\":{\"id\":\"u2\"},"
    "\"text\":\"buy followers at bigfollows dot com 2\",\"ts\":2000}",
    "{\"id\":\"3\",\"type\":\"join\",\"platform\":\"twitch\",\"channel\":\"#c\","
    "\"user\":{\"id\":\"u3\"},\"ts\":3000}",
    "{\"id\":\"4\",\"type\":\"mod_action\",\"platform\":\"twitch\",\"channel\":\"#c\","
    "\"target\":\"u1\",\"action\":\"approve\",\"ts\":4000}"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    wh_diags d = {0};
    wh_load_opts o = {.compile = true};
    if (wh_ruleset_load_mem("fuzz_state.yaml", ".", rules_yaml, strlen(rules_yaml), &o, &d, &rs) !=
        WH_OK)
        abort();
    wh_diags_free(&d);
    w = wh_worker_new(rs, NULL);
    wh_arena_init(&keep, 64 * 1024);
    for (int i = 0; i < 4; i++) {
        wh_analyze(w, lines[i], strlen(lines[i]), 1, 0, &keep, 2, &an[i]);
        if (an[i].kind != WH_AN_EVENT) abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    size_t len;
    unsigned char *buf = framed(data, size, "WHIPLYST", &len);
    if (!buf) return 0;
    wh_decider *ds[2] = {wh_decider_new(rs, NULL, 2), wh_decider_new(rs, NULL, 2)};
    wh_shard *sh[2] = {wh_decider_shard(ds[0]), wh_decider_shard(ds[1])};
    wh_error err = {0};
    if (wh_state_load_mem(sh, 2, &rs->state, "fuzz", buf, len, &err) == WH_OK) {
        wh_buf out;
        wh_buf_init(&out);
        for (int i = 0; i < 4; i++) {
            out.len = 0;
            wh_decide(ds[an[i].shard], &an[i], &out);
            if (!out.len || out.p[out.len - 1] != '\n' || memchr(out.p, '\n', out.len - 1)) abort();
        }
        wh_buf_free(&out);
    } else if (!err.message[0] || err.code == WH_OK) {
        abort(); /* a refusal must say why */
    }
    wh_decider_free(ds[0]);
    wh_decider_free(ds[1]);
    free(buf);
    return 0;
}
