/* fuzz_event.c - one NDJSON line through wh_event_decode, then through a wh_worker.
 *
 * 1. Decode with a fresh arena (freed afterwards, so ASan sees every arena overrun and
 *    use-after-reset). Light checks on what a successful decode returns.
 * 2. The same line through wh_worker_line with a small fixed ruleset (loaded once) that
 *    exercises words/unless_words, regex on every view, links, shape predicates, roles,
 *    channels/platforms, shadow mode and reason templates; once without and once with
 *    --explain. The output must be exactly one line ending in '\n'.
 *
 * Inputs containing '\n' are rejected: the reader splits lines on '\n', so a line handed
 * to the decoder never contains one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "io/event.h"
#include "rules/rules.h"
#include "text/utf8.h"

#define CHECK(c)                                                                          \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "fuzz_event: check failed: %s (%s:%d)\n", #c, __FILE__,      \
                    __LINE__);                                                            \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static const char rules_yaml[] =
    "version: 1\n"
    "exempt_roles: [broadcaster, moderator]\n"
    "lists:\n"
    "  bad: [fuck*, \"*shit\", kys, \"kill yourself\", cunt]\n"
    "  good_hosts: [twitch.tv, youtube.com, youtu.be]\n"
    "  scam: [grabify.link, \"*.ru\", discord.gift]\n"
    "rules:\n"
    "  - id: scam\n"
    "    priority: 100\n"
    "    reason: \"scam {match} by {user} in {channel} on {platform} ({view}, {rule}, {action})\"\n"
    "    when:\n"
    "      any:\n"
    "        - links: {deny: [\"@scam\"]}\n"
    "        - view: skeleton\n"
    "          regex: ['\\bfree\\s*nitro\\b', {pattern: 'claim (your|ur) gift', view: squashed}]\n"
    "    action: ban\n"
    "  - id: words\n"
    "    priority: 50\n"
    "    reason: \"language: {term} / {match}\"\n"
    "    when:\n"
    "      words: [\"@bad\", \"tit\", \"cock*\"]\n"
    "      unless_words: [\"tit for tat\", \"cocktail*\"]\n"
    "    action: {timeout: 10m}\n"
    "  - id: raw-regex\n"
    "    priority: 40\n"
    "    when:\n"
    "      regex: [{pattern: '(?:ab|cd)+e', view: raw}, {pattern: 'x.{2,4}y', view: folded}]\n"
    "    action: {warn: \"careful, {user}\"}\n"
    "  - id: links\n"
    "    priority: 10\n"
    "    exempt_roles: [vip]\n"
    "    platforms: [discord]\n"
    "    when:\n"
    "      links: {count: \">= 1\", allow: [\"@good_hosts\"]}\n"
    "    action: hold\n"
    "  - id: allow-subs\n"
    "    roles: [subscriber]\n"
    "    priority: 5\n"
    "    when: {emotes: \">= 2\", length: \"< 200\"}\n"
    "    action: allow\n"
    "  - id: shape\n"
    "    channels: [\"#chan\"]\n"
    "    when:\n"
    "      all:\n"
    "        - {caps_ratio: \"> 0.7\", letters: \">= 5\"}\n"
    "        - not: {non_latin_ratio: \">= 0.5\"}\n"
    "    action: delete\n"
    "  - id: misc\n"
    "    mode: shadow\n"
    "    when:\n"
    "      any:\n"
    "        - repeated_chars: \">= 6\"\n"
    "        - zalgo: \"> 3\"\n"
    "        - mentions: 3\n"
    "        - symbol_ratio: \"> 0.5\"\n"
    "        - links: \">= 3\"\n"
    "    action: delete\n";

static wh_decoder *dec;
static wh_worker *workers[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dec = wh_decoder_new();
    CHECK(dec);
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts o = {.cache_dir = NULL, .compile = true};
    if (wh_ruleset_load_mem("fuzz_event.yaml", "/nonexistent-whiply-fuzz", rules_yaml,
                            sizeof(rules_yaml) - 1, &o, &d, &rs) != WH_OK) {
        wh_diags_print(&d, stderr);
        abort();
    }
    wh_diags_free(&d);
    for (int i = 0; i < 2; i++) {
        wh_engine_opts eo = {.explain = i == 1};
        workers[i] = wh_worker_new(rs, &eo);
        CHECK(workers[i]);
    }
    wh_ruleset_release(rs); /* the workers hold their own references */
    return 0;
}

static void check_str(wh_str s, const char *line, size_t len)
{
    (void)line;
    (void)len;
    CHECK(s.n == 0 || s.p != NULL);
    /* Every string is either a slice of the line or arena memory; touching each byte
     * lets ASan catch a slice that runs past the end of either. */
    volatile unsigned char sink = 0;
    for (uint32_t i = 0; i < s.n; i++) sink ^= (unsigned char)s.p[i];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    if (memchr(data, '\n', size)) return -1;

    /* 1. decode, fresh arena */
    wh_arena a;
    wh_arena_init(&a, 4096);
    wh_event ev;
    wh_decode_error err;
    memset(&err, 0, sizeof(err));
    if (wh_event_decode(dec, line, size, &a, 1700000000000, &ev, &err)) {
        CHECK(ev.type < WH_EV__COUNT);
        CHECK(ev.nroles <= WH_MAX_ROLES);
        CHECK(ev.id.n > 0 && ev.id.n <= WH_MAX_ID);
        CHECK(ev.text.n <= WH_MAX_TEXT);
        /* text feeds wh_text_build, which requires valid UTF-8 */
        CHECK(wh_utf8_invalid_at(ev.text.p, ev.text.n) == (size_t)-1);
        check_str(ev.id, line, size);
        check_str(ev.platform, line, size);
        check_str(ev.channel, line, size);
        check_str(ev.user_id, line, size);
        check_str(ev.user_name, line, size);
        for (uint32_t i = 0; i < ev.nroles; i++) check_str(ev.roles[i], line, size);
        check_str(ev.text, line, size);
        check_str(ev.meta, line, size);
        /* an emotes array is recorded as its element count only (p is NULL) */
        if (!ev.meta_emotes_is_array) check_str(ev.meta_emotes, line, size);
        check_str(ev.moderator, line, size);
        check_str(ev.target, line, size);
        check_str(ev.mod_action, line, size);
        check_str(ev.ref_event, line, size);
    } else {
        CHECK(err.code != NULL);
        CHECK(memchr(err.message, 0, sizeof(err.message)) != NULL);
        check_str(err.id, line, size);
    }
    wh_arena_free(&a);

    /* 2. through the engine, plain and explained */
    for (int i = 0; i < 2; i++) {
        wh_buf out;
        wh_buf_init(&out);
        wh_outcome oc = wh_worker_line(workers[i], line, size, 7, 1700000000000, &out);
        CHECK(!out.oom);
        CHECK(out.len > 0 && out.p != NULL);
        CHECK(out.p[out.len - 1] == '\n');
        CHECK(memchr(out.p, '\n', out.len - 1) == NULL);
        CHECK(oc.error || oc.action < WH_ACT__COUNT);
        wh_buf_free(&out);
    }
    return 0;
}
