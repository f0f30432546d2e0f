/* fuzz_event.c - NDJSON lines through wh_event_decode, then through a wh_worker.
 *
 * The input is split on '\n' like the reader does; most inputs are one line. Each line is
 * copied into a buffer whose bytes around it are ASan-poisoned (so any read outside the
 * line is reported, however far off) and:
 *
 * 1. decoded with a fresh arena (freed afterwards, so ASan sees every arena overrun),
 *    with light checks on what a successful decode returns;
 * 2. run through wh_worker_line with a small fixed ruleset (loaded once) that exercises
 *    words/unless_words, regex on every view, links, shape predicates, roles,
 *    channels/platforms, shadow mode and reason templates; once without and once with
 *    explain. The output must be exactly one line ending in '\n'.
 *
 * The decoder and the workers are long-lived, as in whiply check, so their token arrays
 * keep the previous line's tokens. To make every input reproduce on its own, each input
 * starts by decoding a "primer" line (in the decoder and in both workers) whose tokens all
 * lie past the end of the input's lines: any read of a token the current line did not
 * produce then lands outside the line, where ASan reports it. Later lines of a multi-line
 * input see the tokens of the lines before them, which the fuzzer controls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/event.h"
#include "rules/rules.h"
#include "text/utf8.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#endif

#define LINE_AT 64 /* poisoned bytes before each line */

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_event: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
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

/* The primer: `pad` blanks (the longest line of the input), then an array of short
 * strings, so every token lies past the end of any line of the input; and about as many
 * tokens as a line can have (up to 254, within the decoder's initial capacity of 256).
 * It is not an event: decoding fails right after tokenizing. */
static char *primer;
static size_t primer_cap;

static size_t make_primer(size_t pad, size_t size)
{
    size_t k = size / 2 + 2 < 254 ? size / 2 + 2 : 254;
    size_t need = pad + 1 + 4 * k;
    if (need > primer_cap) {
        free(primer);
        primer = malloc(need);
        CHECK(primer);
        primer_cap = need;
    }
    memset(primer, ' ', pad);
    char *p = primer + pad;
    *p++ = '[';
    for (size_t i = 0; i < k; i++) {
        memcpy(p, "\"x\",", 4);
        p += 4;
    }
    p[-1] = ']';
    return (size_t)(p - primer);
}

static void check_str(wh_str s, const char *line, size_t len)
{
    CHECK(s.n == 0 || s.p != NULL);
    if (s.n == 0) return;
    /* A string is a slice of the line or a copy in the arena. A slice must lie inside the
     * line; touching every byte lets ASan catch one that runs past the end of either. */
    if (s.p >= line && s.p < line + len) CHECK(s.n <= (size_t)(line + len - s.p));
    volatile unsigned char sink = 0;
    for (uint32_t i = 0; i < s.n; i++)
        sink ^= (unsigned char)s.p[i];
    (void)sink;
}

static void one_line(const char *line, size_t size)
{
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
        check_str(ev.id, line, size);
        check_str(ev.platform, line, size);
        check_str(ev.channel, line, size);
        check_str(ev.user_id, line, size);
        check_str(ev.user_name, line, size);
        for (uint32_t i = 0; i < ev.nroles; i++)
            check_str(ev.roles[i], line, size);
        check_str(ev.text, line, size);
        /* text feeds wh_text_build, which requires valid UTF-8 */
        CHECK(wh_utf8_invalid_at(ev.text.p, ev.text.n) == (size_t)-1);
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *end = (const char *)data + size;
    size_t longest = 0;
    for (const char *p = (const char *)data;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n > longest) longest = n;
        if (!nl) break;
        p = nl + 1;
    }

    /* the primer: a known state in every long-lived token array */
    size_t primer_len = make_primer(longest, size);
    wh_arena a;
    wh_arena_init(&a, 4096);
    wh_event ev;
    wh_decode_error err;
    CHECK(!wh_event_decode(dec, primer, primer_len, &a, 0, &ev, &err));
    wh_arena_free(&a);
    for (int i = 0; i < 2; i++) {
        wh_buf out;
        wh_buf_init(&out);
        wh_worker_line(workers[i], primer, primer_len, 1, 0, &out);
        wh_buf_free(&out);
    }

    /* Each line sits at a fixed place in a buffer whose bytes before and after it are
     * poisoned, far enough for any offset a stale primer token can hold: a read outside
     * the line is reported as use-after-poison, however far past its end. */
    size_t cap = LINE_AT + longest + primer_len + 16;
    char *buf = malloc(cap);
    CHECK(buf);
    char *line = buf + LINE_AT;
    for (const char *p = (const char *)data;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        ASAN_UNPOISON_MEMORY_REGION(buf, cap);
        memcpy(line, p, n);
        ASAN_POISON_MEMORY_REGION(buf, LINE_AT);
        ASAN_POISON_MEMORY_REGION(line + n, cap - LINE_AT - n);
        one_line(line, n);
        if (!nl) break;
        p = nl + 1;
    }
    ASAN_UNPOISON_MEMORY_REGION(buf, cap);
    free(buf);
    return 0;
}
