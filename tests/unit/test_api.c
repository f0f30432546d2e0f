/* test_api.c - the public embedding API: open, decide, clone, errors. */
#include "helpers.h"
#include "t.h"
#include "whiply/whiply.h"

#include <glob.h>
#include <unistd.h>

TEST(open_decide_clone_close)
{
    const char *p = th_write_tmp("api.yaml", "version: 1\nrules:\n  - id: r\n    when: {words: "
                                             "[heck]}\n    action: delete\n");
    whiply_engine *e = NULL, *e2 = NULL;
    char *diag = NULL;
    whiply_options o = {.cache_dir = NULL, .explain = 1};
    ASSERT_EQ(whiply_engine_open(p, &o, &e, &diag), WHIPLY_OK);
    ASSERT(diag == NULL);
    char *d = NULL;
    size_t n = 0;
    const char *ev = "{\"id\":\"a\",\"text\":\"oh h3ck\"}";
    ASSERT_EQ(whiply_decide(e, ev, strlen(ev), 0, &d, &n), WHIPLY_OK);
    ASSERT_CONTAINS(d, "\"action\":\"delete\"");
    ASSERT_CONTAINS(d, "\"text\":\"h3ck\"");
    ASSERT_EQ(n, strlen(d));
    ASSERT(d[n - 1] == '}');
    whiply_free(d);
    ASSERT_EQ(whiply_engine_clone(e, &e2), WHIPLY_OK);
    whiply_engine_close(e); /* the clone keeps the ruleset alive */
    ASSERT_EQ(whiply_decide(e2, "nope", 4, 0, &d, &n), WHIPLY_OK);
    ASSERT_CONTAINS(d, "\"error\":{\"code\":\"bad_json\"");
    whiply_free(d);
    whiply_engine_close(e2);
}

TEST(open_reports_diagnostics)
{
    const char *p =
        th_write_tmp("bad.yaml", "version: 1\nrules:\n  - id: r\n    when: {wrods: [x]}\n"
                                 "    action: delete\n");
    whiply_engine *e = NULL;
    char *diag = NULL;
    ASSERT_EQ(whiply_engine_open(p, NULL, &e, &diag), WHIPLY_ERULES);
    ASSERT(e == NULL);
    ASSERT_CONTAINS(diag, "bad.yaml:4:12: error: unknown key 'wrods'");
    whiply_free(diag);
}

TEST(version_and_strerror)
{
    ASSERT_STR(whiply_version(), WHIPLY_VERSION);
    const whiply_status known[] = {WHIPLY_OK, WHIPLY_ERULES, WHIPLY_ENOMEM, WHIPLY_EINVAL};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const char *s = whiply_strerror(known[i]);
        ASSERT(s && s[0]);
        ASSERT(strcmp(s, "unknown status") != 0);
        for (size_t k = 0; k < i; k++) /* a phrase each */
            ASSERT(strcmp(s, whiply_strerror(known[k])) != 0);
    }
    ASSERT_STR(whiply_strerror(WHIPLY_ENOMEM), "out of memory");
    ASSERT_STR(whiply_strerror((whiply_status)1), "unknown status");
    ASSERT_STR(whiply_strerror((whiply_status)5), "unknown status");
    ASSERT_STR(whiply_strerror((whiply_status)-1), "unknown status");
    ASSERT_STR(whiply_action_name(WHIPLY_ACTION_ALLOW), "allow");
    ASSERT_STR(whiply_action_name(WHIPLY_ACTION_TIMEOUT), "timeout");
    ASSERT_STR(whiply_action_name(WHIPLY_ACTION_BAN), "ban");
    ASSERT(whiply_action_name((whiply_action)6) == NULL);
    ASSERT(whiply_action_name((whiply_action)-1) == NULL);
}

TEST(options_setters)
{
    ASSERT_EQ(whiply_opts_set_explain(NULL, 1), WHIPLY_EINVAL);
    ASSERT_EQ(whiply_opts_set_cache_dir(NULL, "/tmp"), WHIPLY_EINVAL);
    whiply_opts_free(NULL);
    whiply_opts *o = whiply_opts_new();
    ASSERT(o != NULL);
    ASSERT_EQ(whiply_opts_set_max_depth(o, 1), WHIPLY_EINVAL);
    ASSERT_EQ(whiply_opts_set_max_depth(o, 33), WHIPLY_EINVAL);
    ASSERT_EQ(whiply_opts_set_max_depth(o, 2), WHIPLY_OK);
    ASSERT_EQ(whiply_opts_set_explain(o, 7), WHIPLY_OK);
    /* the directory is copied: the caller's buffer may change after the call */
    char dir[256];
    snprintf(dir, sizeof(dir), "/tmp/whiply-api-cache-%d", (int)getpid());
    ASSERT_EQ(whiply_opts_set_cache_dir(o, "/nonexistent/first"), WHIPLY_OK);
    ASSERT_EQ(whiply_opts_set_cache_dir(o, dir), WHIPLY_OK);
    char want[256];
    snprintf(want, sizeof(want), "%s", dir);
    memset(dir, 'x', sizeof(dir) - 1);
    const char *p = th_write_tmp("opts.yaml", "version: 1\nrules:\n  - id: r\n    when: {words: "
                                              "[heck]}\n    action: delete\n");
    whiply_engine *e = NULL;
    ASSERT_EQ(whiply_engine_open_opts(p, o, &e, NULL), WHIPLY_OK);
    whiply_opts_free(o); /* the engine does not keep the options */
    char *d = NULL;
    const char *ev = "{\"id\":\"a\",\"text\":\"oh heck\"}";
    ASSERT_EQ(whiply_decide(e, ev, strlen(ev), 0, &d, NULL), WHIPLY_OK);
    ASSERT_CONTAINS(d, "\"term\":\"heck\""); /* explain */
    whiply_free(d);
    const char *deep = "{\"id\":\"b\",\"text\":\"x\",\"meta\":{\"a\":{\"b\":1}}}";
    ASSERT_EQ(whiply_decide(e, deep, strlen(deep), 0, &d, NULL), WHIPLY_OK);
    ASSERT_CONTAINS(d, "\"code\":\"too_deep\""); /* max_depth 2 */
    whiply_free(d);
    whiply_engine_close(e);
    char pat[300];
    snprintf(pat, sizeof(pat), "%s/*", want);
    glob_t g;
    ASSERT_EQ(glob(pat, 0, NULL, &g), 0);
    size_t hsdb = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        size_t n = strlen(g.gl_pathv[i]);
        hsdb += n > 5 && !strcmp(g.gl_pathv[i] + n - 5, ".hsdb");
        unlink(g.gl_pathv[i]);
    }
    globfree(&g);
    rmdir(want);
    ASSERT(hsdb > 0); /* the database went to the cache directory */
    /* the defaults: no explain, the full nesting limit */
    ASSERT_EQ(whiply_engine_open_opts(p, NULL, &e, NULL), WHIPLY_OK);
    ASSERT_EQ(whiply_decide(e, ev, strlen(ev), 0, &d, NULL), WHIPLY_OK);
    ASSERT_NOT_CONTAINS(d, "\"term\"");
    whiply_free(d);
    ASSERT_EQ(whiply_decide(e, deep, strlen(deep), 0, &d, NULL), WHIPLY_OK);
    ASSERT_CONTAINS(d, "\"action\":\"allow\"");
    whiply_free(d);
    whiply_engine_close(e);
    ASSERT_EQ(whiply_engine_open_opts(NULL, NULL, &e, NULL), WHIPLY_EINVAL);
}

static const char verdict_rules[] =
    "version: 1\n"
    "rules:\n"
    "  - id: threat\n    reason: \"threat: {term}\"\n    when: {words: [\"kill yourself\"]}\n"
    "    action: {timeout: 10m}\n"
    "  - id: rude\n    when: {words: [heck]}\n    action: delete\n"
    "  - id: spoiler\n    when: {words: [\"the killer is\"]}\n"
    "    action: {warn: \"No spoilers please\"}\n"
    "  - id: flood\n    when: {rate: {count: 100, per: 10s, scope: channel}}\n"
    "    channel_action: {mode: slow, for: 2m}\n";

TEST(decide_verdict_timeout)
{
    const char *p = th_write_tmp("verdict.yaml", verdict_rules);
    whiply_engine *e = NULL;
    ASSERT_EQ(whiply_engine_open_opts(p, NULL, &e, NULL), WHIPLY_OK);
    const char *json;
    ASSERT_EQ(whiply_verdict_json(e, &json, NULL), WHIPLY_EINVAL); /* nothing decided yet */
    whiply_verdict v;
    const char *ev = "{\"id\":\"t1\",\"channel\":\"#c\",\"user\":{\"id\":\"u1\"},"
                     "\"text\":\"heck, kill-yourself\",\"ts\":1000}";
    ASSERT_EQ(whiply_decide_verdict(e, ev, strlen(ev), 0, &v), WHIPLY_OK);
    ASSERT_EQ(v.error, 0);
    ASSERT(v.error_code == NULL && v.error_message == NULL);
    ASSERT_STR(v.id, "t1");
    ASSERT_EQ(v.action, WHIPLY_ACTION_TIMEOUT);
    ASSERT_EQ(v.duration_s, 600);
    ASSERT_STR(v.rule, "threat");
    ASSERT_STR(v.reason, "threat: kill yourself");
    ASSERT(v.message == NULL);
    ASSERT_EQ(v.strike, 1); /* the rules keep state (a rate): the user's first strike */
    ASSERT_EQ(v.nrules, 2);
    ASSERT_STR(v.rules[0], "threat");
    ASSERT_STR(v.rules[1], "rude");
    ASSERT(v.channel_mode == NULL);
    ASSERT_EQ(v.channel_duration_s, 0);
    ASSERT_EQ(v.ntargets, 0);
    ASSERT_STR(v.text, "heck, kill-yourself");
    ASSERT_EQ(v.text_len, 19);
    ASSERT_EQ(v.nmatches, 2);
    ASSERT_EQ(v.matches_truncated, 0);
    int seen = 0;
    for (size_t i = 0; i < v.nmatches; i++) {
        const whiply_match *m = &v.matches[i];
        ASSERT(m->view && m->view[0]);
        if (!strcmp(m->rule, "threat")) {
            ASSERT_EQ(m->start, 6);
            ASSERT_EQ(m->end, 19);
            seen |= 1;
        } else {
            ASSERT_STR(m->rule, "rude");
            ASSERT_EQ(m->start, 0);
            ASSERT_EQ(m->end, 4);
            seen |= 2;
        }
    }
    ASSERT_EQ(seen, 3);
    /* the JSON of the same verdict, without deciding again (the strike stays 1) */
    size_t n = 0;
    ASSERT_EQ(whiply_verdict_json(e, &json, &n), WHIPLY_OK);
    ASSERT_EQ(n, strlen(json));
    ASSERT_CONTAINS(json, "{\"id\":\"t1\",\"action\":\"timeout\",\"duration_s\":600,\"strike\":1,"
                          "\"rules\":[\"threat\",\"rude\"],\"reason\":\"threat: kill yourself\"");
    ASSERT(json[n - 1] == '}');
    /* a warning, then a second strike */
    ev = "{\"id\":\"t2\",\"channel\":\"#c\",\"user\":{\"id\":\"u1\"},\"text\":\"the killer is "
         "the butler\",\"ts\":2000}";
    ASSERT_EQ(whiply_decide_verdict(e, ev, strlen(ev), 0, &v), WHIPLY_OK);
    ASSERT_EQ(v.action, WHIPLY_ACTION_WARN);
    ASSERT_EQ(v.duration_s, 0);
    ASSERT_STR(v.message, "No spoilers please");
    ASSERT_STR(v.rule, "spoiler");
    ASSERT_EQ(v.strike, 2);
    /* nothing fired */
    ev = "{\"id\":\"t3\",\"channel\":\"#c\",\"user\":{\"id\":\"u2\"},\"text\":\"hello\"}";
    ASSERT_EQ(whiply_decide_verdict(e, ev, strlen(ev), 5000, &v), WHIPLY_OK);
    ASSERT_EQ(v.action, WHIPLY_ACTION_ALLOW);
    ASSERT(v.rule == NULL && v.reason == NULL && v.message == NULL);
    ASSERT_EQ(v.strike, -1);
    ASSERT_EQ(v.nrules, 0);
    ASSERT_EQ(v.nmatches, 0);
    ASSERT_STR(v.text, "hello");
    whiply_engine_close(e);
}

TEST(decide_verdict_channel_action)
{
    const char *p = th_write_tmp(
        "chan.yaml", "version: 1\nrules:\n  - id: flood\n    when: {rate: {count: 2, per: 10s, "
                     "scope: channel}}\n    channel_action: {mode: slow, for: 2m}\n");
    whiply_engine *e = NULL;
    ASSERT_EQ(whiply_engine_open_opts(p, NULL, &e, NULL), WHIPLY_OK);
    whiply_verdict v;
    char ev[200];
    for (int i = 1; i <= 3; i++) {
        int n = snprintf(ev, sizeof(ev),
                         "{\"id\":\"c%d\",\"channel\":\"#c\",\"user\":{\"id\":\"u%d\"},"
                         "\"text\":\"hi\",\"ts\":%d}",
                         i, i, i * 100);
        ASSERT_EQ(whiply_decide_verdict(e, ev, (size_t)n, 0, &v), WHIPLY_OK);
    }
    ASSERT_EQ(v.action, WHIPLY_ACTION_ALLOW);
    ASSERT_STR(v.rule, "flood");
    ASSERT_STR(v.channel_mode, "slow");
    ASSERT_EQ(v.channel_duration_s, 120);
    whiply_engine_close(e);
}

TEST(decide_verdict_malformed)
{
    const char *p = th_write_tmp("bad-ev.yaml", verdict_rules);
    whiply_engine *e = NULL;
    ASSERT_EQ(whiply_engine_open_opts(p, NULL, &e, NULL), WHIPLY_OK);
    whiply_verdict v;
    ASSERT_EQ(whiply_decide_verdict(e, "nope", 4, 0, &v), WHIPLY_OK);
    ASSERT_EQ(v.error, 1);
    ASSERT_STR(v.error_code, "bad_json");
    ASSERT_CONTAINS(v.error_message, "at byte 1");
    ASSERT(v.id == NULL);
    ASSERT_EQ(v.action, WHIPLY_ACTION_ALLOW);
    ASSERT(v.rule == NULL && v.reason == NULL && v.text == NULL);
    ASSERT_EQ(v.strike, -1);
    ASSERT_EQ(v.nmatches, 0);
    const char *json;
    ASSERT_EQ(whiply_verdict_json(e, &json, NULL), WHIPLY_OK);
    ASSERT_CONTAINS(json, "{\"id\":null,\"line\":1,\"error\":{\"code\":\"bad_json\"");
    /* the id is read back when there is one, escapes undone */
    const char *ev = "{\"id\":\"a\\\"b\",\"text\":5}";
    ASSERT_EQ(whiply_decide_verdict(e, ev, strlen(ev), 0, &v), WHIPLY_OK);
    ASSERT_EQ(v.error, 1);
    ASSERT_STR(v.id, "a\"b");
    ASSERT_STR(v.error_code, "bad_field");
    ASSERT_CONTAINS(v.error_message, "\"text\"");
    ev = "{\"id\":\"u\",\"text\":\"a\xff\"}";
    ASSERT_EQ(whiply_decide_verdict(e, ev, strlen(ev), 0, &v), WHIPLY_OK);
    ASSERT_STR(v.error_code, "bad_utf8");
    ASSERT_STR(v.error_message, "invalid UTF-8 at byte 20");
    /* and the engine goes on deciding */
    ev = "{\"id\":\"ok\",\"text\":\"heck\"}";
    ASSERT_EQ(whiply_decide_verdict(e, ev, strlen(ev), 0, &v), WHIPLY_OK);
    ASSERT_EQ(v.error, 0);
    ASSERT_EQ(v.action, WHIPLY_ACTION_DELETE);
    ASSERT_EQ(whiply_decide_verdict(NULL, ev, strlen(ev), 0, &v), WHIPLY_EINVAL);
    ASSERT_EQ(whiply_decide_verdict(e, NULL, 0, 0, &v), WHIPLY_EINVAL);
    ASSERT_EQ(whiply_decide_verdict(e, ev, strlen(ev), 0, NULL), WHIPLY_EINVAL);
    whiply_engine_close(e);
}

TEST(verdict_strings_live_until_the_next_call)
{
    const char *p = th_write_tmp("live.yaml", verdict_rules);
    whiply_engine *e = NULL, *e2 = NULL;
    ASSERT_EQ(whiply_engine_open_opts(p, NULL, &e, NULL), WHIPLY_OK);
    /* the event in a buffer the caller frees (and scribbles over) right after the call */
    const char *src = "{\"id\":\"live-1\",\"user\":{\"id\":\"u\"},\"text\":\"oh heck\"}";
    size_t n = strlen(src);
    char *buf = malloc(n);
    ASSERT(buf != NULL);
    memcpy(buf, src, n);
    whiply_verdict v;
    ASSERT_EQ(whiply_decide_verdict(e, buf, n, 0, &v), WHIPLY_OK);
    memset(buf, 'x', n);
    free(buf);
    ASSERT_STR(v.id, "live-1");
    ASSERT_STR(v.text, "oh heck");
    ASSERT_EQ(v.nmatches, 1);
    ASSERT_EQ(v.matches[0].start, 3);
    /* other calls on the engine that do not decide leave them alone */
    const char *json;
    ASSERT_EQ(whiply_verdict_json(e, &json, NULL), WHIPLY_OK);
    ASSERT_CONTAINS(json, "\"id\":\"live-1\",\"action\":\"delete\"");
    ASSERT_EQ(whiply_engine_clone(e, &e2), WHIPLY_OK);
    whiply_verdict v2;
    const char *other = "{\"id\":\"other\",\"text\":\"kill yourself\"}";
    ASSERT_EQ(whiply_decide_verdict(e2, other, strlen(other), 0, &v2), WHIPLY_OK);
    ASSERT_STR(v2.rule, "threat");
    ASSERT_STR(v.id, "live-1"); /* another engine's call */
    ASSERT_STR(v.rule, "rude");
    ASSERT_STR(v.rules[0], "rude");
    ASSERT_STR(v.matches[0].rule, "rude");
    ASSERT_STR(v.text, "oh heck");
    const char *json2;
    ASSERT_EQ(whiply_verdict_json(e, &json2, NULL), WHIPLY_OK);
    ASSERT(json2 == json); /* encoded once */
    ASSERT_CONTAINS(json2, "\"id\":\"live-1\"");
    whiply_engine_close(e2);
    /* whiply_decide is a decision too: the JSON that follows is its event's */
    char *d = NULL;
    ASSERT_EQ(whiply_decide(e, other, strlen(other), 0, &d, NULL), WHIPLY_OK);
    ASSERT_EQ(whiply_verdict_json(e, &json, NULL), WHIPLY_OK);
    ASSERT_STR(json, d);
    whiply_free(d);
    whiply_engine_close(e);
}
