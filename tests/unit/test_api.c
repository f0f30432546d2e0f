/* test_api.c - the public embedding API: open, decide, clone, errors. */
#include "helpers.h"
#include "t.h"
#include "whiply/whiply.h"

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
