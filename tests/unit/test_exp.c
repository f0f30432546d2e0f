/* test_exp.c - experiments (src/exp/): the statistics against published values, the labels
 * file, and replays of small streams whose every figure can be counted by hand. */
#include <math.h>

#include "exp/labels.h"
#include "exp/replay.h"
#include "exp/stats.h"
#include "helpers.h"
#include "t.h"

#define ASSERT_NEAR(a, b, eps)                                                                     \
    do {                                                                                           \
        double _a = (a), _b = (b);                                                                 \
        if (!(fabs(_a - _b) <= (eps))) T_FAIL("%s == %s: %.9g != %.9g", #a, #b, _a, _b);           \
    } while (0)

/* An error record's message holds needle (T_FAIL's buffer is smaller than a whole message). */
#define ASSERT_ERROR_SAYS(e, needle)                                                               \
    do {                                                                                           \
        if (!strstr((e).message, (needle)))                                                        \
            T_FAIL("\"%.400s\" does not contain \"%s\"", (e).message, (needle));                   \
    } while (0)

/* ---- statistics against published values ----
 *
 * The reference values are the outputs of the R package contingencytables 3.0.0 (the code of
 * Fagerland, Lydersen and Laake, "Statistical Analysis of Contingency Tables", Chapman &
 * Hall/CRC 2017), as asserted in that package's own tests (tests/testthat/test-ch2.R and
 * test-ch8.R), printed there to 4 or 6 decimals; they are compared here to half a unit of the
 * last printed digit. */

TEST(wilson_matches_fagerland_13_of_16)
{
    /* Wilson_score_CI_1x2(X = 13, n = 16): "estimate = 0.8125 (95% CI 0.5699 to 0.9341)"
     * (test-ch2.R; the book's Ligarden et al. 2010 example) */
    wh_interval w = wh_wilson(13, 16, WH_Z95);
    ASSERT_NEAR(w.est, 0.8125, 5e-5);
    ASSERT_NEAR(w.lo, 0.5699, 5e-5);
    ASSERT_NEAR(w.hi, 0.9341, 5e-5);
}

TEST(wilson_edges)
{
    wh_interval w = wh_wilson(0, 20, WH_Z95);
    ASSERT(w.lo == 0 && w.hi > 0.1 && w.hi < 0.2); /* never below 0, never a zero width */
    w = wh_wilson(20, 20, WH_Z95);
    ASSERT(w.hi == 1 && w.lo > 0.8);
    w = wh_wilson(0, 0, WH_Z95);
    ASSERT(isnan(w.est) && isnan(w.lo) && isnan(w.hi));
    /* symmetric: k of n and n - k of n mirror each other */
    wh_interval a = wh_wilson(3, 40, WH_Z95), b = wh_wilson(37, 40, WH_Z95);
    ASSERT_NEAR(a.lo, 1 - b.hi, 1e-12);
    ASSERT_NEAR(a.hi, 1 - b.lo, 1e-12);
}

/* Cavo et al. (2012), the book's Table 8.2 (contingencytables' cavo_2012): complete response
 * before and after consolidation therapy, [[59, 6], [16, 80]]: 6 and 16 discordant pairs. */
TEST(mcnemar_matches_fagerland_cavo_2012)
{
    wh_mcnemar m = wh_mcnemar_test(6, 16);
    /* "The McNemar exact conditional test: P = 0.052479" */
    ASSERT_NEAR(m.exact, 0.052479, 5e-7);
    /* "The McNemar mid-P test: P = 0.034690" */
    ASSERT_NEAR(m.mid_p, 0.034690, 5e-7);
    /* the order of the two cells does not matter */
    wh_mcnemar n = wh_mcnemar_test(16, 6);
    ASSERT_NEAR(n.exact, m.exact, 1e-15);
    ASSERT_NEAR(n.mid_p, m.mid_p, 1e-15);
}

TEST(mcnemar_matches_fagerland_bentur_2009)
{
    /* Fagerland, Lydersen and Laake (BMC Med Res Methodol 2013, 13:91), Table 1: airway
     * hyper-responsiveness before and after stem cell transplantation in 21 children
     * (Bentur et al. 2009), 1 and 7 discordant pairs. Their equations (1) and (2): exact =
     * 2 * binomcdf(1, 8, 0.5) = 18/256, mid-p = exact - binompdf(1, 8, 0.5) = 10/256. The
     * paper reports them as 0.070 and 0.039. */
    wh_mcnemar m = wh_mcnemar_test(1, 7);
    ASSERT_NEAR(m.exact, 18.0 / 256, 1e-15);
    ASSERT_NEAR(m.mid_p, 10.0 / 256, 1e-15);
    ASSERT_NEAR(m.exact, 0.070, 5e-4);
    ASSERT_NEAR(m.mid_p, 0.039, 5e-4);
}

TEST(mcnemar_ties_and_nothing)
{
    wh_mcnemar m = wh_mcnemar_test(5, 5); /* mid-p = 1 - P(X = 5) / 2 (the paper's rule) */
    ASSERT_NEAR(m.exact, 1, 0);
    ASSERT_NEAR(m.mid_p, 1 - 0.5 * 252.0 / 1024, 1e-15);
    m = wh_mcnemar_test(0, 0);
    ASSERT(m.exact == 1 && m.mid_p == 1);
}

TEST(binomial_tail_large_n)
{
    /* by symmetry P(X <= n/2 - 1) = (1 - P(X = n/2)) / 2 for even n, at any size */
    for (uint64_t n = 2; n <= 2000000; n *= 10) {
        double tail = wh_binom_half_cdf(n / 2 - 1, n), mid = wh_binom_half_pmf(n / 2, n);
        ASSERT_NEAR(tail, (1 - mid) / 2, 1e-8); /* lgamma's relative error at n = 2e6 */
    }
    ASSERT(wh_binom_half_cdf(0, 2000000) == 0); /* 2^-2000000 underflows to 0, no NaN */
    ASSERT_NEAR(wh_binom_half_cdf(3, 3), 1, 0);
}

TEST(newcombe_paired_matches_fagerland_cavo_2012)
{
    /* Newcombe_square_and_add_CI_paired_2x2(cavo_2012): "estimate = -0.0621 (95% CI -0.1186
     * to -0.0046)" (test-ch8.R) */
    wh_interval d = wh_newcombe_paired(59, 6, 16, 80, WH_Z95);
    ASSERT_NEAR(d.est, -0.0621, 5e-5);
    ASSERT_NEAR(d.lo, -0.1186, 5e-5);
    ASSERT_NEAR(d.hi, -0.0046, 5e-5);
    /* swapping the two questions mirrors the interval */
    wh_interval e = wh_newcombe_paired(59, 16, 6, 80, WH_Z95);
    ASSERT_NEAR(e.lo, -d.hi, 1e-12);
    ASSERT_NEAR(e.hi, -d.lo, 1e-12);
    ASSERT(isnan(wh_newcombe_paired(0, 0, 0, 0, WH_Z95).est));
}

/* ---- the labels file ---- */

TEST(labels_decode)
{
    char id[WH_LABEL_ID_MAX + 1];
    wh_label l;
    wh_error e;
    const char *one = "{\"id\":\"e-1\",\"label\":\"harmful\"}";
    ASSERT_EQ(wh_label_decode(one, strlen(one), id, &l, &e), WH_OK);
    ASSERT_STR(id, "e-1");
    ASSERT_EQ(l, WH_LABEL_HARMFUL);
    const char *exp = "{\"id\":\"p-1\",\"text\":\"x\",\"label\":\"ok\",\"moderator\":\"m\"}";
    ASSERT_EQ(wh_label_decode(exp, strlen(exp), id, &l, &e), WH_OK); /* a review export line */
    ASSERT_EQ(l, WH_LABEL_OK);
    const char *num = "{\"id\":17,\"label\":true}";
    ASSERT_EQ(wh_label_decode(num, strlen(num), id, &l, &e), WH_OK);
    ASSERT_STR(id, "17");
    ASSERT_EQ(l, WH_LABEL_HARMFUL);
    const char *esc = "{\"id\":\"a\\u0062\",\"label\":false}";
    ASSERT_EQ(wh_label_decode(esc, strlen(esc), id, &l, &e), WH_OK);
    ASSERT_STR(id, "ab");
    ASSERT_EQ(l, WH_LABEL_OK);
    ASSERT_EQ(wh_label_decode("   ", 3, id, &l, &e), WH_OK);
    ASSERT_EQ(l, WH_LABEL_NONE);
}

TEST(labels_errors_name_the_problem)
{
    static const struct {
        const char *line, *says;
    } cases[] = {
        {"{\"id\":\"a\",\"label\":\"maybe\"}", "\"label\" must be"},
        {"{\"id\":\"a\",\"label\":\"true\"}", "\"label\" must be"}, /* the string is not true */
        {"{\"id\":\"a\"}", "no \"label\""},
        {"{\"label\":\"ok\"}", "no \"id\""},
        {"{\"id\":\"\",\"label\":\"ok\"}", "\"id\" is empty"},
        {"{\"id\":[1],\"label\":\"ok\"}", "\"id\" is not a string or a number"},
        {"{\"id\":\"a\",\"id\":\"b\",\"label\":\"ok\"}", "\"id\" given twice"},
        {"{\"id\":\"a\\u0000\",\"label\":\"ok\"}", "NUL"},
        {"[1,2]", "not a JSON object"},
        {"{\"id\":\"a\",", "not JSON"},
    };
    for (size_t i = 0; i < WH_ARRAY_LEN(cases); i++) {
        char id[WH_LABEL_ID_MAX + 1];
        wh_label l;
        wh_error e;
        if (wh_label_decode(cases[i].line, strlen(cases[i].line), id, &l, &e) != WH_ESYNTAX)
            T_FAIL("accepted %s", cases[i].line);
        ASSERT_ERROR_SAYS(e, cases[i].says);
    }
}

/* ---- replays ---- */

static const char *rules_a = "version: 1\n"
                             "rules:\n"
                             "  - id: heck\n"
                             "    when: {words: [heck]}\n"
                             "    action: delete\n"
                             "  - id: darn-shadow\n"
                             "    mode: shadow\n"
                             "    when: {words: [darn]}\n"
                             "    action: delete\n";
static const char *rules_b = "version: 1\n"
                             "rules:\n"
                             "  - id: heck-or-darn\n"
                             "    when: {words: [heck, darn]}\n"
                             "    action: delete\n";

static wh_replay *replay_of(const char *const *yaml, uint32_t n, const wh_replay_opts *o,
                            const char *stream)
{
    wh_ruleset *rs[4];
    const char *names[4] = {"a", "b", "c", "d"};
    for (uint32_t i = 0; i < n; i++)
        rs[i] = th_rules(yaml[i]);
    wh_replay *r = NULL;
    wh_error e;
    ASSERT_EQ(wh_replay_new(rs, names, n, o, &r, &e), WH_OK);
    for (uint32_t i = 0; i < n; i++)
        wh_ruleset_release(rs[i]); /* the replay keeps its own references */
    for (const char *p = stream; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        ASSERT_EQ(wh_replay_line(r, p, len), WH_OK);
        p += len + (nl != NULL);
    }
    return r;
}

#define MSG(id, user, text, ts)                                                                    \
    "{\"id\":\"" id "\",\"channel\":\"#c\",\"user\":{\"id\":\"" user "\"},\"text\":\"" text        \
    "\",\"ts\":" #ts "}\n"
#define MOD(id, target, action, ref, ts)                                                           \
    "{\"id\":\"" id "\",\"type\":\"mod_action\",\"channel\":\"#c\",\"moderator\":\"m\","           \
    "\"target\":\"" target "\",\"action\":\"" action "\"" ref ",\"ts\":" #ts "}\n"
#define REF(id) ",\"ref_event\":\"" id "\""

/* m1 harmful (a human deleted it 5 s later, naming it), m2 harmful (a human timed its user
 * out 8 s later without naming it: attributed), m3 fine (a human approved it), m4 fine (a
 * reversal: unban), m5 untouched, m6 a removal naming nothing in the stream. */
static const char *stream = MSG("m1", "u1", "what the heck", 1000) /* a: delete */
    MSG("m2", "u2", "darn it", 2000)                               /* b: delete */
    MSG("m3", "u3", "heck yes", 3000)                              /* a, b: delete */
    MSG("m4", "u4", "darn right", 4000)                            /* b: delete */
    MSG("m5", "u5", "hello <b>", 5000)                             /* nobody */
    MOD("h1", "u1", "delete", REF("m1"), 6000)                     /* m1 harmful */
    MOD("h2", "u2", "timeout", "", 10000)                          /* m2 harmful */
    MOD("h3", "u3", "approve", REF("m3"), 11000)                   /* m3 fine */
    MOD("h4", "u4", "unban", REF("m4"), 12000)                     /* m4 fine */
    MOD("h5", "u9", "ban", REF("zz"), 13000)                       /* nothing */
    MOD("h6", "u5", "shrug", "", 14000)                            /* not an action */
    "not json\n";

TEST(replay_ground_truth_and_figures)
{
    const char *y[] = {rules_a, rules_b};
    wh_replay *r = replay_of(y, 2, NULL, stream);
    const wh_replay_result *res = wh_replay_finish(r);
    ASSERT(res);
    ASSERT_EQ(res->lines, 12);
    ASSERT_EQ(res->events, 11);
    ASSERT_EQ(res->errors, 1);
    ASSERT_EQ(res->first_errors[0].line, 12);
    ASSERT_STR(res->first_errors[0].code, "bad_json");
    ASSERT_EQ(res->messages, 5);
    ASSERT_EQ(res->removals, 2);
    ASSERT_EQ(res->attributed, 1);
    ASSERT_EQ(res->approvals, 1);
    ASSERT_EQ(res->reversals, 1);
    ASSERT_EQ(res->unattributed, 1);
    ASSERT_EQ(res->other_actions, 1);
    ASSERT_EQ(res->harmful, 2);
    ASSERT_EQ(res->ok, 2);
    ASSERT_EQ(res->unlabelled, 1);
    /* a: acts on m1 (harmful) and m3 (fine) */
    const wh_ruleset_result *a = &res->rs[0];
    ASSERT_EQ(a->cm.tp, 1);
    ASSERT_EQ(a->cm.fn, 1);
    ASSERT_EQ(a->cm.fp, 1);
    ASSERT_EQ(a->cm.tn, 1);
    ASSERT_EQ(a->cm.unl_allowed, 1);
    ASSERT_NEAR(a->accuracy.est, 0.5, 1e-12);
    ASSERT_NEAR(a->fpr.est, 0.5, 1e-12);
    ASSERT_EQ(a->human_acted, 2);
    ASSERT_EQ(a->covered, 1);
    /* humans took 5 s (m1) and 8 s (m2); a hid m1 at once, so m2 alone stayed visible */
    ASSERT_NEAR(a->human_ms.mean, 6500, 0);
    ASSERT_NEAR(a->visible_ms.mean, 4000, 0);
    ASSERT_EQ(a->hidden, 1);
    /* b: acts on m1, m2, m3, m4 */
    const wh_ruleset_result *b = &res->rs[1];
    ASSERT_EQ(b->cm.tp, 2);
    ASSERT_EQ(b->cm.fp, 2);
    ASSERT_EQ(b->covered, 2);
    ASSERT_NEAR(b->visible_ms.mean, 0, 0);
    /* a's shadow rule fired on m2 and m4: one harmful, one fine, both would be added */
    ASSERT_EQ(a->nrules, 2);
    const wh_rule_result *sh = &a->rules[1];
    ASSERT_STR(a->rs->rules[sh->rule].id, "darn-shadow");
    ASSERT_EQ(sh->fired, 2);
    ASSERT_EQ(sh->tp, 1);
    ASSERT_EQ(sh->fp, 1);
    ASSERT_EQ(sh->add, 2);
    ASSERT_NEAR(sh->recall_if.est, 1, 0);      /* enforced, a would catch both */
    ASSERT_NEAR(sh->precision_if.est, 0.5, 0); /* and act on both fine ones */
    /* b against a: m2 and m4 changed; accuracy: m2 b only, m4 a only */
    const wh_comparison *c = &res->cmp[0];
    ASSERT_EQ(c->changed, 2);
    ASSERT_EQ(c->accuracy.b, 1);
    ASSERT_EQ(c->accuracy.c, 1);
    ASSERT_EQ(c->coverage.c, 1); /* m2: only b covers it */
    ASSERT_EQ(c->coverage.b, 0);
    ASSERT_EQ(c->fpr.c, 1); /* m4: only b acts on it */
    ASSERT_NEAR(c->visible_diff_ms.est, -4000, 0);
    ASSERT_EQ(c->ngroups, 1);
    ASSERT_EQ(c->groups[0].base_rule, -1);
    ASSERT_STR(res->rs[1].rs->rules[c->groups[0].cand_rule].id, "heck-or-darn");
    ASSERT_EQ(c->groups[0].now_acting, 2);
    ASSERT_EQ(c->groups[0].nex, 2);
    ASSERT_STR(c->groups[0].ex[0].id, "m2");
    ASSERT_STR(c->groups[0].ex[0].text, "darn it");
    wh_replay_free(r);
}

TEST(replay_latest_human_word_wins_and_reversal_of_a_human)
{
    const char *y[] = {rules_a};
    const char *s = MSG("m1", "u1", "heck", 1000) MOD("h1", "u1", "ban", REF("m1"), 2000)
        MOD("h2", "u1", "unban", REF("m1"), 3000) MSG("m2", "u2", "hi", 4000)
            MOD("h3", "u2", "approve", REF("m2"), 5000) MOD("h4", "u2", "delete", REF("m2"), 9000);
    wh_replay *r = replay_of(y, 1, NULL, s);
    const wh_replay_result *res = wh_replay_finish(r);
    ASSERT_EQ(res->harmful, 1); /* m2: deleted after all */
    ASSERT_EQ(res->ok, 1);      /* m1: unbanned */
    ASSERT_EQ(res->rs[0].cm.fp, 1);
    ASSERT_EQ(res->rs[0].cm.fn, 1);
    ASSERT_NEAR(res->rs[0].human_ms.mean, 5000, 0); /* m2: 4 s -> 9 s */
    wh_replay_free(r);
}

TEST(replay_attribution_window_and_min_action)
{
    const char *y[] = {rules_a};
    wh_replay_opts o;
    wh_replay_opts_default(&o);
    o.attribute_ms = 5000;
    o.min_action = WH_ACT_DELETE;
    const char *s = MSG("m1", "u1", "one", 1000) MOD("h1", "u1", "timeout", "", 7000)
        MSG("m2", "u2", "two", 1000) MOD("h2", "u2", "timeout", "", 5000)
            MOD("h3", "u3", "warn", "", 5000);
    wh_replay *r = replay_of(y, 1, &o, s);
    const wh_replay_result *res = wh_replay_finish(r);
    ASSERT_EQ(res->attributed, 1);   /* m2 (4 s old), not m1 (6 s) */
    ASSERT_EQ(res->unattributed, 1); /* m1 */
    ASSERT_EQ(res->below_min, 1);    /* a warning is below delete */
    ASSERT_EQ(res->harmful, 1);
    wh_replay_free(r);
}

TEST(replay_sample_labels_fill_only_untouched_messages)
{
    const char *y[] = {rules_a};
    wh_replay_opts o;
    wh_replay_opts_default(&o);
    const char *s = MSG("m1", "u1", "heck", 1000) MSG("m2", "u2", "hi", 2000)
        MSG("m3", "u3", "yo", 3000) MOD("h1", "u1", "approve", REF("m1"), 4000);
    wh_replay *r = replay_of(y, 1, &o, s);
    wh_error e;
    const char *lines[] = {"{\"id\":\"m1\",\"label\":\"harmful\"}", /* conflicts with h1 */
                           "{\"id\":\"m2\",\"label\":\"ok\"}",
                           "{\"id\":\"nope\",\"label\":\"ok\"}"};
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(wh_replay_label_line(r, lines[i], strlen(lines[i]), (uint64_t)i + 1, &e), WH_OK);
    ASSERT_EQ(wh_replay_label_line(r, "{\"id\":\"m3\"}", 11, 4, &e), WH_ESYNTAX);
    ASSERT_ERROR_SAYS(e, "line 4: no \"label\"");
    const wh_replay_result *res = wh_replay_finish(r);
    ASSERT_EQ(res->sample_labels, 3);
    ASSERT_EQ(res->sample_applied, 1);
    ASSERT_EQ(res->sample_conflicts, 1);
    ASSERT_EQ(res->sample_unknown, 1);
    ASSERT_EQ(res->ok, 2); /* m1 (the human's approval wins), m2 */
    ASSERT_EQ(res->from_sample, 1);
    ASSERT_EQ(res->unlabelled, 1);
    ASSERT(res->rs[0].coverage.est != res->rs[0].coverage.est); /* no human removal: NaN */
    /* the sampled review's own figures read its labels, even where a human said otherwise */
    ASSERT_EQ(res->rs[0].cm_sample.tp, 1); /* m1 */
    ASSERT_EQ(res->rs[0].cm_sample.tn, 1); /* m2 */
    ASSERT_EQ(res->rs[0].cm_sample.fp + res->rs[0].cm_sample.fn, 0);
    ASSERT_NEAR(res->rs[0].accuracy_sample.est, 1, 0);
    wh_replay_free(r);
}

TEST(replay_unlabelled_ok_counts_untouched_as_fine)
{
    const char *y[] = {rules_a};
    wh_replay_opts o;
    wh_replay_opts_default(&o);
    o.unlabelled_ok = true;
    wh_replay *r = replay_of(y, 1, &o, MSG("m1", "u1", "heck", 1) MSG("m2", "u2", "hi", 2));
    const wh_replay_result *res = wh_replay_finish(r);
    ASSERT_EQ(res->rs[0].cm.fp, 1);
    ASSERT_EQ(res->rs[0].cm.tn, 1);
    ASSERT_EQ(res->unlabelled, 2); /* still reported as unlabelled by the humans */
    wh_replay_free(r);
}

TEST(replay_decides_as_check_does)
{
    /* each ruleset keeps its own state: a flood rule fires on the 3rd message of a user,
     * whatever the other ruleset does */
    const char *flood = "version: 1\nrules:\n  - id: flood\n    when: {rate: {count: 2, per: "
                        "10s}}\n    action: {timeout: 10m}\n";
    const char *y[] = {rules_a, flood};
    wh_replay *r = replay_of(y, 2, NULL,
                             MSG("m1", "u1", "a", 1000) MSG("m2", "u1", "b", 2000)
                                 MSG("m3", "u1", "c", 3000) MSG("m4", "u2", "d", 3000));
    const wh_replay_result *res = wh_replay_finish(r);
    ASSERT_EQ(res->rs[1].actions[WH_ACT_TIMEOUT], 1);
    ASSERT_EQ(res->rs[0].actions[WH_ACT_ALLOW], 4);
    ASSERT_EQ(res->cmp[0].changed, 1);
    ASSERT_STR(res->cmp[0].groups[0].ex[0].id, "m3");
    wh_replay_free(r);
}

TEST(replay_reports_escape_and_parse)
{
    const char *y[] = {rules_a, rules_b};
    wh_replay *r = replay_of(y, 2, NULL,
                             MSG("<x>", "u1", "darn <script>alert(1)</script> & co", 1)
                                 MOD("h", "u1", "delete", REF("<x>"), 2));
    const wh_replay_result *res = wh_replay_finish(r);
    wh_buf b;
    wh_buf_init(&b);
    wh_replay_html(res, "in<put>.ndjson", &b);
    const char *h = wh_buf_cstr(&b);
    ASSERT_NOT_CONTAINS(h, "<script>");
    ASSERT_NOT_CONTAINS(h, "<x>");
    ASSERT_NOT_CONTAINS(h, "in<put>");
    ASSERT_CONTAINS(h, "darn &lt;script&gt;alert(1)&lt;/script&gt; &amp; co");
    ASSERT_CONTAINS(h, "<svg");
    ASSERT_NOT_CONTAINS(h, "src="); /* self-contained: nothing fetched */
    ASSERT_NOT_CONTAINS(h, "href=");
    b.len = 0;
    wh_replay_json(res, "in.ndjson", &b);
    h = wh_buf_cstr(&b);
    ASSERT_CONTAINS(h, "\"text\":\"darn <script>alert(1)</script> & co\"");
    ASSERT_CONTAINS(h, "\"coverage\":{\"k\":0,\"n\":1,\"est\":0,");
    wh_buf_free(&b);
    wh_replay_free(r);
}

TEST(replay_many_batches_decide_in_order)
{
    /* 10,000 messages (several batches of the reading thread), every third one "heck", every
     * fifth removed by a human naming it, with a flood rule whose state runs across batches:
     * the counts are known exactly */
    const char *flood = "version: 1\nrules:\n  - id: heck\n    when: {words: [heck]}\n    action: "
                        "delete\n  - id: flood\n    when: {rate: {count: 3, per: 10s}}\n    "
                        "action: {timeout: 1m}\n";
    const char *y[] = {rules_a, flood};
    wh_buf s;
    wh_buf_init(&s);
    for (int i = 0; i < 10000; i++) {
        /* user u<i/4>: four messages 1 ms apart, so the flood rule fires on each 4th */
        wh_buf_printf(
            &s,
            "{\"id\":\"m%d\",\"channel\":\"#c\",\"user\":{\"id\":\"u%d\"},\"text\":\"%s\","
            "\"ts\":%d}\n",
            i, i / 4, i % 3 == 0 ? "heck" : "hello", 1000000 + i);
        if (i % 5 == 0)
            wh_buf_printf(&s,
                          "{\"id\":\"h%d\",\"type\":\"mod_action\",\"channel\":\"#c\",\"target\":"
                          "\"u%d\",\"action\":\"delete\",\"ref_event\":\"m%d\",\"ts\":%d}\n",
                          i, i / 4, i, 1000000 + i);
    }
    wh_replay *r = replay_of(y, 2, NULL, wh_buf_cstr(&s));
    wh_buf_free(&s);
    const wh_replay_result *res = wh_replay_finish(r);
    ASSERT(res);
    ASSERT_EQ(res->events, 12000);
    ASSERT_EQ(res->messages, 10000);
    ASSERT_EQ(res->harmful, 2000);
    ASSERT_EQ(res->rs[0].actions[WH_ACT_DELETE], 3334);
    ASSERT_EQ(res->rs[0].cm.tp, 667); /* i % 15 == 0 */
    ASSERT_EQ(res->rs[1].actions[WH_ACT_TIMEOUT], 2500);
    ASSERT_EQ(res->rs[1].actions[WH_ACT_DELETE], 3334 - 834); /* less the 4th ones (i%12==3) */
    wh_replay_free(r);
}
