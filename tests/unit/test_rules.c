/* test_rules.c - loading rules: lists, positions of errors, "did you mean", cache. */
#include <unistd.h>

#include "helpers.h"
#include "t.h"

TEST(loads_inline_and_file_lists)
{
    th_write_tmp("l.txt", "# comment\n\nheck\n  darn  \n");
    th_write_tmp("l.json", "[\"gosh\", \"drat\\u0021\"]");
    wh_ruleset *rs = th_rules("version: 1\nlists:\n  a: {file: l.txt}\n  b: {file: l.json}\n"
                              "  c: [golly]\nrules:\n  - id: r\n    when: {words: [\"@a\", \"@b\", "
                              "\"@c\"]}\n    action: delete\n");
    ASSERT_EQ(rs->npats, 5);
    ASSERT_CONTAINS(th_decide(rs, th_msg("darn it")), "\"delete\"");
    ASSERT_CONTAINS(th_decide(rs, th_msg("gosh")), "\"delete\"");
    ASSERT_CONTAINS(th_decide(rs, th_msg("drat")), "\"delete\"");
    ASSERT_CONTAINS(th_decide(rs, th_msg("golly")), "\"delete\"");
    ASSERT_CONTAINS(th_decide(rs, th_msg("fine")), "\"allow\"");
    wh_ruleset_release(rs);
}

TEST(rules_sorted_by_priority_then_order)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: a, when: {}, action: warn}\n"
                              "  - {id: b, priority: 3, when: {}, action: warn}\n"
                              "  - {id: c, when: {}, action: warn}\n");
    ASSERT_STR(rs->rules[0].id, "b");
    ASSERT_STR(rs->rules[1].id, "a");
    ASSERT_STR(rs->rules[2].id, "c");
    wh_ruleset_release(rs);
}

TEST(yaml_syntax_error_has_position)
{
    char *t =
        th_lint("version: 1\nrules:\n  - id: x\n    when: {words: [heck]\n    action: delete\n");
    ASSERT_CONTAINS(t, "lint.yaml:");
    ASSERT_CONTAINS(t, "YAML:");
    free(t);
}

TEST(unknown_key_did_you_mean_with_position)
{
    char *t =
        th_lint("version: 1\nrules:\n  - id: x\n    when: {words: [heck]}\n    actoin: delete\n");
    ASSERT_CONTAINS(t,
                    "lint.yaml:5:5: error: unknown key 'actoin' in a rule; did you mean 'action'?");
    ASSERT_CONTAINS(t, "rule 'x' has no 'action'");
    free(t);
}

TEST(every_error_reported_at_once)
{
    char *t = th_lint("version: 2\nrules:\n"
                      "  - id: x\n    when: {words: [heck]}\n    action: {timeout: soon}\n"
                      "  - id: x\n    when: {regex: '(a'}\n    action: delete\n");
    ASSERT_CONTAINS(t, "unsupported version '2'");
    ASSERT_CONTAINS(t, "bad duration 'soon'");
    ASSERT_CONTAINS(t, "duplicate rule id 'x'");
    ASSERT_CONTAINS(t, "missing closing parenthesis");
    free(t);
}

TEST(hyperscan_message_for_rejected_regex)
{
    char *t =
        th_lint("version: 1\nrules:\n  - id: x\n    when: {regex: '\\Kfoo'}\n    action: delete\n");
    ASSERT_CONTAINS(t, "lint.yaml:4:20: error: bad regex '\\Kfoo': Hyperscan rejects this regex:");
    free(t);
}

/* Counts the lines of t that contain needle. */
static int count_lines(const char *t, const char *needle)
{
    int n = 0;
    for (const char *q = t; q && (q = strstr(q, needle)); q += strlen(needle))
        n++;
    return n;
}

TEST(rejected_regex_reported_once_at_its_rule_by_load_and_lint)
{
    /* The rejection comes from the databases the load builds (lint no longer compiles each
     * regex alone first); the words and lint's wording stay what they were. */
    static const char yaml[] = "version: 1\nrules:\n  - id: a\n    when: {words: [heck]}\n"
                               "    action: delete\n  - id: b\n"
                               "    when: {regex: [\"fine\", \"x\\\\Gy\"], view: raw}\n"
                               "    action: delete\n";
    const char *p = th_write_tmp("hs2.yaml", yaml);
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts o = {.cache_dir = NULL, .compile = true};
    ASSERT(wh_ruleset_load(p, &o, &d, &rs) != WH_OK);
    ASSERT_EQ(d.n, 1);
    ASSERT_EQ(d.v[0].line, 7);
    ASSERT_EQ(d.v[0].col, 29);
    ASSERT_STR(d.v[0].message,
               "'x\\Gy': Hyperscan rejects this pattern: \\G at index 1 not supported.");
    wh_diags_free(&d);
    char *t = th_lint(yaml);
    ASSERT_CONTAINS(t, "lint.yaml:7:29: error: bad regex 'x\\Gy': Hyperscan rejects this regex: "
                       "\\G at index 1 not supported.\n");
    ASSERT_EQ(count_lines(t, "error:"), 1);
    free(t);
    /* with another problem in the file, lint still compiles and reports both */
    char other[sizeof(yaml) + 16];
    snprintf(other, sizeof(other), "%s", yaml);
    memcpy(strstr(other, "action: delete"), "action: deleet", 14);
    t = th_lint(other);
    ASSERT_CONTAINS(t, "lint.yaml:5:13: error: unknown action 'deleet'");
    ASSERT_CONTAINS(t, "lint.yaml:7:29: error: bad regex 'x\\Gy': Hyperscan rejects this regex:");
    ASSERT_EQ(count_lines(t, "error:"), 2);
    free(t);
}

TEST(missing_list_file_named)
{
    char *t = th_lint("version: 1\nlists:\n  a: {file: nope.txt}\nrules:\n  - id: x\n"
                      "    when: {words: [\"@a\"]}\n    action: delete\n");
    ASSERT_CONTAINS(t, "lint.yaml:3:13: error: cannot read list file");
    ASSERT_CONTAINS(t, "nope.txt");
    free(t);
}

TEST(list_term_without_letters_is_matched_literally)
{
    const char *lp = th_write_tmp("bad.txt", "ok\n\n   \n!!!\n");
    (void)lp;
    wh_ruleset *rs = th_rules("version: 1\nlists:\n  a: {file: bad.txt}\nrules:\n  - id: x\n"
                              "    when: {words: [\"@a\"]}\n    action: delete\n");
    /* "!!!" has no letters: it is matched literally, not rejected. */
    ASSERT_CONTAINS(th_decide(rs, th_msg("wow!!!")), "\"delete\"");
    wh_ruleset_release(rs);
}

TEST(comparisons)
{
    char *t = th_lint("version: 1\nrules:\n  - id: x\n    when: {caps_ratio: 70%, length: \">= 3\","
                      " letters: 2, zalgo: \"== 0\", mentions: \"!= 1\"}\n    action: warn\n");
    ASSERT_STR(t ? t : "", "");
    free(t);
    t = th_lint(
        "version: 1\nrules:\n  - id: x\n    when: {symbol_ratio: \"> 1.5\"}\n    action: warn\n");
    ASSERT_CONTAINS(t, "symbol_ratio is a ratio between 0 and 1");
    free(t);
}

TEST(database_cache_round_trip)
{
    char dir[] = "/tmp/whiply-cache-XXXXXX";
    ASSERT(mkdtemp(dir));
    const char *p =
        th_write_tmp("c.yaml", "version: 1\nrules:\n  - id: x\n    when: {words: [heck],"
                               " regex: 'h.ck'}\n    action: delete\n");
    for (int round = 0; round < 2; round++) {
        wh_diags d = {0};
        wh_ruleset *rs = NULL;
        wh_load_opts o = {.cache_dir = dir, .compile = true};
        ASSERT_EQ(wh_ruleset_load(p, &o, &d, &rs), WH_OK);
        ASSERT_CONTAINS(th_decide(rs, th_msg("heck")), "\"delete\"");
        wh_ruleset_release(rs);
        wh_diags_free(&d);
    }
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "ls %s/*.hsdb >/dev/null 2>&1", dir);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

TEST(hyperscan_rejection_fails_a_serving_load)
{
    /* Without lint's per-regex check, the rejection surfaces while the database is built:
     * the load must fail with the diagnostic, not return success without a ruleset. */
    const char *p =
        th_write_tmp("hs.yaml", "version: 1\nrules:\n  - id: r\n    when: {regex: 'a$b'}\n"
                                "    action: delete\n");
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts o = {.cache_dir = NULL, .compile = true, .lint = false};
    ASSERT(wh_ruleset_load(p, &o, &d, &rs) != WH_OK);
    ASSERT(rs == NULL);
    ASSERT(d.n >= 1);
    ASSERT_CONTAINS(d.v[0].message, "Hyperscan rejects");
    wh_diags_free(&d);
}

TEST(control_characters_rejected_before_the_yaml_parser)
{
    /* libfyaml 0.7.12 crashed on this input (found by fuzz_rules). */
    static const char yaml[] = "version: 1\nrules:\n?  - hen: \t\0\0nn\n";
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts o = {.compile = true};
    ASSERT(wh_ruleset_load_mem("nul.yaml", ".", yaml, sizeof(yaml) - 1, &o, &d, &rs) != WH_OK);
    ASSERT(d.n == 1);
    ASSERT_CONTAINS(d.v[0].message, "control character 0x00");
    ASSERT_EQ(d.v[0].line, 3);
    ASSERT_EQ(d.v[0].col, 12);
    wh_diags_free(&d);
}

TEST(explicit_keys_rejected_before_the_yaml_parser)
{
    /* libfyaml 0.7.12 crashed on these (found by fuzz_rules). */
    char *t = th_lint("version: 1\nrules:\n?  - heN: \t://: ");
    ASSERT_CONTAINS(t, "lint.yaml:3:1: error: explicit '?' mapping keys are not supported");
    free(t);
    t = th_lint("version: 1\nrules:\n  - ? - heN: \t://: \n");
    ASSERT_CONTAINS(t, "lint.yaml:3:5: error: explicit '?' mapping keys");
    free(t);
    t = th_lint("version: 1\nrules:\n  - id: q\n    when: {words: [\"why?\"]}\n    action: warn\n");
    ASSERT_STR(t ? t : "", ""); /* a '?' in text is fine */
    free(t);
    /* a lone carriage return ends a line in YAML: a '?' after one starts a key too */
    t = th_lint("versionaction: de?  - heN>versio\r?  - heN> \t:\t:\n");
    ASSERT_CONTAINS(t, "lint.yaml:2:1: error: explicit '?' mapping keys");
    free(t);
    t = th_lint(
        "version: 1\r\nrules:\r\n  - id: q\r\n    when: {words: [x]}\r\n    action: warn\r\n");
    ASSERT_STR(t ? t : "", ""); /* CRLF files are fine */
    free(t);
}
