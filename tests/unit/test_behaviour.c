/* test_behaviour.c - sketches, strike decay, waves, behaviour predicates through the engine,
 * and the property that spreading channels over shards never changes a decision. */
#include <math.h>

#include "helpers.h"
#include "state/shard.h"
#include "state/sketch.h"
#include "t.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static wh_sketch sketch(const char *text)
{
    wh_arena a;
    wh_arena_init(&a, 64 * 1024);
    wh_text t;
    ASSERT(wh_text_build(text, (uint32_t)strlen(text), &a, &t) == WH_OK);
    wh_sketch k;
    wh_sketch_text(t.v[WH_VIEW_SQUASHED].s, t.v[WH_VIEW_SQUASHED].len, &k);
    wh_arena_free(&a);
    return k;
}

/* ---- sketches ---- */

TEST(sketch_hash_ignores_spacing_case_punctuation_homoglyphs_and_leet)
{
    uint64_t h = sketch("follow my channel pls").hash;
    ASSERT(h != 0);
    ASSERT_EQ(sketch("FOLLOW   my channel pls!!!").hash, h);
    ASSERT_EQ(sketch("f0ll0w my channel pls").hash, h);
    ASSERT_EQ(sketch("fоllоw my сhannel pls").hash, h); /* Cyrillic о, с */
    ASSERT_EQ(sketch("𝐟𝐨𝐥𝐥𝐨𝐰 my channel pls").hash, h); /* mathematical bold */
    ASSERT(sketch("follow my channel please").hash != h);
    ASSERT_EQ(sketch("").hash, 0);
    ASSERT_EQ(sketch("!!! ...").length, 0);
}

TEST(sketch_similarity_separates_variants_from_unrelated_chat)
{
    const char *spam = "Want more viewers? Buy real followers at bigfollows dot com today";
    const char *suffix[] = {"1", "22", "xk3", "!!", "zz9", "7", "abc", "q1"};
    char a[256], b[256];
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++) {
            snprintf(a, sizeof(a), "%s %s", spam, suffix[i]);
            snprintf(b, sizeof(b), "%s %s", spam, suffix[j]);
            double s = wh_sim_similarity(sketch(a).sim, sketch(b).sim);
            if (s < 0.8) T_FAIL("'%s' vs '%s': similarity %.3f < 0.8", a, b, s);
        }
    const char *chat[] = {"lol that was so good",     "gg wp everyone",
                          "PogChamp PogChamp",        "what game is this",
                          "hello chat how are you",   "is this the new patch?",
                          "no way he hit that shot",  "can someone link the build",
                          "who is winning right now", "this music is great"};
    for (int i = 0; i < 10; i++)
        for (int j = i + 1; j < 10; j++) {
            double s = wh_sim_similarity(sketch(chat[i]).sim, sketch(chat[j]).sim);
            if (s >= 0.8) T_FAIL("'%s' vs '%s': similarity %.3f >= 0.8", chat[i], chat[j], s);
        }
}

TEST(sketch_bit_sliced_simhash_equals_the_per_bit_reference)
{
    char r[3000];
    for (int round = 0; round < 300; round++) {
        uint32_t k = (uint32_t)(next() % (round < 100 ? 40 : 2999)) + 1;
        for (uint32_t i = 0; i < k; i++)
            r[i] = (char)(next() % 5 == 0 ? ' ' : 'a' + next() % (round % 2 ? 3 : 26));
        r[k] = 0;
        wh_sketch sk;
        wh_sketch_text(r, k, &sk);
        /* the reduction keeps these texts as they are (lowercase letters, single spaces)
         * except for doubled or edge spaces: compare on a text that has none */
        char c[3000];
        uint32_t n = 0;
        for (uint32_t i = 0; i < k; i++)
            if (r[i] != ' ' || (n && c[n - 1] != ' ')) c[n++] = r[i];
        while (n && c[n - 1] == ' ')
            n--;
        if (!n) continue;
        if (sk.sim != wh_sketch_sim_reference(c, n))
            T_FAIL("round %d (%u bytes): %016llx != %016llx", round, n, (unsigned long long)sk.sim,
                   (unsigned long long)wh_sketch_sim_reference(c, n));
    }
}

TEST(sketch_length_counts_distinct_words_and_drops_platform_ids)
{
    ASSERT_EQ(sketch("KEKW KEKW KEKW KEKW KEKW").length, 4);
    ASSERT_EQ(sketch("<:kekw:773589221496209418>").length, 4);
    ASSERT_EQ(sketch("<:kekw:773589221496209418>").hash, sketch("kekw").hash);
    ASSERT_EQ(sketch("hi <@123456789012345678> welcome").length, 10);
    ASSERT_EQ(sketch("call 12345").length, 10); /* short numbers stay */
}

/* ---- strikes ---- */

TEST(strikes_halve_every_half_life_and_round_to_whole_strikes)
{
    wh_state_cfg c = {.half_life_ms = 3600000, .rep_strike = -3, .rep_min = -100, .rep_max = 100};
    wh_user u = {0};
    wh_user_add_strikes(&u, &c, 1000, 2);
    ASSERT(fabs(wh_user_strikes(&u, &c, 1000) - 2) < 1e-12);
    ASSERT(fabs(wh_user_strikes(&u, &c, 1000 + 3600000) - 1) < 1e-12);
    ASSERT(fabs(wh_user_strikes(&u, &c, 1000 + 7200000) - 0.5) < 1e-12);
    ASSERT_EQ(wh_strikes_whole(wh_user_strikes(&u, &c, 1000 + 60000)), 2);   /* 1.98 */
    ASSERT_EQ(wh_strikes_whole(wh_user_strikes(&u, &c, 1000 + 7200000)), 1); /* 0.5 */
    ASSERT_EQ(wh_strikes_whole(wh_user_strikes(&u, &c, 1000 + 7300000)), 0); /* < 0.5 */
    ASSERT(fabs(u.rep - -6) < 1e-12);                                        /* -3 a strike */
    /* a new strike adds to the decayed value */
    wh_user_add_strikes(&u, &c, 1000 + 3600000, 1);
    ASSERT(fabs(wh_user_strikes(&u, &c, 1000 + 3600000) - 2) < 1e-12);
    /* removing never goes below zero, and does not raise reputation */
    wh_user_add_strikes(&u, &c, 1000 + 3600000, -5);
    ASSERT_EQ(wh_user_strikes(&u, &c, 1000 + 3600000), 0);
    ASSERT(fabs(u.rep - -9) < 1e-12);
    /* reputation is clamped */
    for (int i = 0; i < 100; i++)
        wh_user_add_strikes(&u, &c, 2000000000, 1);
    ASSERT_EQ(u.rep, -100);
}

TEST(strikes_expire_all_at_once_after_a_clean_period)
{
    wh_state_cfg c = {.expire_ms = 86400000, .rep_min = -100, .rep_max = 100};
    wh_user u = {0};
    wh_user_add_strikes(&u, &c, 0, 1);
    wh_user_add_strikes(&u, &c, 3600000, 1);
    ASSERT_EQ(wh_user_strikes(&u, &c, 3600000 + 86399999), 2);
    ASSERT_EQ(wh_user_strikes(&u, &c, 3600000 + 86400000), 0);
}

/* ---- waves ---- */

static wh_channel wch;
static wh_wave_cluster *observe(const wh_state_cfg *c, uint64_t user, const char *id,
                                const char *text, int64_t ts, double *s)
{
    wh_sketch k = sketch(text);
    return wh_wave_observe(&wch, c, user, (wh_str){id, (uint32_t)strlen(id)}, k.sim, k.anchor, ts,
                           s);
}

static void free_waves(void)
{
    wh_waves *w = wch.waves;
    for (uint32_t i = 0; w && i < w->ng; i++) {
        for (uint32_t k = 0; k < w->g[i].n; k++)
            free(w->g[i].m[k].big);
        free(w->g[i].m);
    }
    if (w) free(w->g), free(w->bucket), free(w);
    memset(&wch, 0, sizeof(wch));
}

static void random_words(char *buf, int n)
{
    for (int k = 0; k < n; k++)
        buf[k] = k % 6 == 5 ? ' ' : (char)('a' + next() % 26);
    buf[n] = 0;
}

TEST(wave_groups_count_distinct_users_within_the_window)
{
    wh_state_cfg c = {.wave_threshold = 0.8, .wave_within_ms = 30000};
    const char *spam = "Want more viewers? Buy real followers at bigfollows dot com";
    double s;
    wh_wave_cluster *g1 = observe(&c, 1, "u1", spam, 0, &s);
    ASSERT(g1 && s == 1);
    /* the same user again is not a second user */
    ASSERT(observe(&c, 1, "u1", spam, 1000, &s) == g1);
    ASSERT_EQ(wh_wave_count(g1, 1000, 30000), 1);
    wh_wave_cluster *g2 = observe(&c, 2, "u2", "has anyone seen the new trailer yet", 2000, &s);
    ASSERT(g2 && g2 != g1);
    g1 = observe(&c, 3, "u3", "Want more viewers? Buy real followers at bigfollows dot com 7", 3000,
                 &s);
    ASSERT(g1 != g2 && s >= 0.8);
    ASSERT_EQ(wh_wave_count(g1, 3000, 30000), 2);
    ASSERT_EQ(wh_wave_count(g1, 3000, 1500), 1);   /* u1's last message is 2 s old */
    ASSERT_EQ(wh_wave_count(g1, 31000, 30000), 1); /* u1 (1000) is 30 s old: out */
    ASSERT_STR(wh_wave_member_id(&g1->m[1]), "u3");
    free_waves();
}

TEST(wave_groups_survive_busy_chat_between_spam_messages)
{
    /* 10 spam accounts, 500 distinct chat messages between each two: the group of the spam
     * is still found (the index finds it by its words, not by recency among 64). */
    wh_state_cfg c = {.wave_threshold = 0.8, .wave_within_ms = 60000};
    char buf[64], spam[128], id[16];
    double s;
    int64_t ts = 0;
    wh_wave_cluster *g = NULL;
    for (int b = 0; b < 10; b++) {
        snprintf(spam, sizeof(spam), "Buy followers and viewers on streamboost store %d", b * 1111);
        snprintf(id, sizeof(id), "bot%d", b);
        g = observe(&c, 1000 + (uint64_t)b, id, spam, ts, &s);
        ASSERT(g != NULL);
        for (int k = 0; k < 500; k++) {
            random_words(buf, 30);
            ts += 10;
            snprintf(id, sizeof(id), "v%d", k);
            ASSERT(observe(&c, 5000 + (uint64_t)k, id, buf, ts, &s) != NULL);
        }
    }
    ASSERT_EQ(wh_wave_count(g, ts, 60000), 10);
    ASSERT(wch.waves->ng <= WH_WAVE_GROUPS);
    /* a long stream of distinct messages reuses groups: the pool stays bounded */
    for (int k = 0; k < 3 * WH_WAVE_GROUPS; k++) {
        random_words(buf, 30);
        ts += 100;
        ASSERT(observe(&c, 9, "x", buf, ts, &s) != NULL);
    }
    ASSERT(wch.waves->ng <= WH_WAVE_GROUPS);
    free_waves();
}

/* ---- predicates through the engine (one worker keeps its state across lines) ---- */

static char line[1024];
static const char *ev(const char *id, long long ts, const char *user, const char *text)
{
    snprintf(line, sizeof(line),
             "{\"id\":\"%s\",\"platform\":\"twitch\",\"channel\":\"#c\",\"user\":{\"id\":\"%s\"},"
             "\"text\":\"%s\",\"ts\":%lld}",
             id, user, text, ts);
    return line;
}

static wh_buf outb;
static const char *decide(wh_worker *w, const char *l)
{
    outb.len = 0;
    wh_worker_line(w, l, strlen(l), 1, 0, &outb);
    wh_buf_putc(&outb, 0);
    return outb.p;
}

TEST(rate_is_gcra_exact_at_the_boundary)
{
    wh_ruleset *rs =
        th_rules("version: 1\nrules:\n"
                 "  - {id: flood, when: {rate: {count: 2, per: 10s}}, action: delete}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    ASSERT_CONTAINS(decide(w, ev("1", 0, "a", "x")), "\"allow\"");
    ASSERT_CONTAINS(decide(w, ev("2", 1, "a", "x")), "\"allow\"");
    ASSERT_CONTAINS(decide(w, ev("3", 2, "a", "x")), "\"delete\"");
    ASSERT_CONTAINS(decide(w, ev("4", 2, "b", "x")), "\"allow\""); /* per user */
    /* one more every 5 s: the TAT is 10000 after two; allowed again at exactly 5000 */
    ASSERT_CONTAINS(decide(w, ev("5", 4999, "a", "x")), "\"delete\"");
    ASSERT_CONTAINS(decide(w, ev("6", 5000, "a", "x")), "\"allow\"");
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(escalation_climbs_the_ladder_and_forgives)
{
    wh_ruleset *rs = th_rules("version: 1\n"
                              "escalation: {ladder: [warn, 60s, ban], half_life: 1h}\n"
                              "rules:\n"
                              "  - {id: bad, when: {words: [badword]}, escalate: true}\n"
                              "  - {id: worse, when: {words: [worseword]}, escalate: [delete, 1d],"
                              " strikes: 2}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    ASSERT_CONTAINS(decide(w, ev("1", 0, "a", "badword")), "\"action\":\"warn\",\"strike\":1");
    ASSERT_CONTAINS(decide(w, ev("2", 1000, "a", "badword")),
                    "\"action\":\"timeout\",\"duration_s\":60,\"strike\":2");
    ASSERT_CONTAINS(decide(w, ev("3", 2000, "a", "badword")), "\"action\":\"ban\",\"strike\":3");
    ASSERT_CONTAINS(decide(w, ev("4", 3000, "a", "badword")), "\"action\":\"ban\""); /* last step */
    /* 4 strikes, halving every hour: 3 h later 0.5 -> 1 strike; 4 h later 0.25 -> 0 */
    ASSERT_CONTAINS(decide(w, ev("5", 4 * 3600000LL, "a", "badword")), "\"action\":\"warn\"");
    /* an own ladder, and a weight of 2 */
    ASSERT_CONTAINS(decide(w, ev("6", 0, "b", "worseword")), "\"action\":\"delete\",\"strike\":2");
    ASSERT_CONTAINS(decide(w, ev("7", 1, "b", "worseword")), "\"duration_s\":86400,\"strike\":4");
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(moderator_actions_move_strikes_and_reputation)
{
    wh_ruleset *rs = th_rules("version: 1\nmod_actions: {timeout: 2}\nexempt_roles: [moderator]\n"
                              "rules:\n"
                              "  - {id: known, when: {strikes: \">= 2\"}, action: hold,"
                              " strikes: 0}\n"
                              "  - {id: trusted, when: {reputation: \">= 4\"}, action: allow,"
                              " priority: 5}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    /* (the event's user is the moderator, with an exempt role: the action still counts) */
    const char *mod = "{\"id\":\"m\",\"type\":\"mod_action\",\"platform\":\"twitch\",\"channel\":"
                      "\"#c\",\"user\":{\"id\":\"boss\",\"roles\":[\"moderator\"]},"
                      "\"target\":\"a\",\"action\":\"%s\",\"ts\":%d}";
    char m[512];
    snprintf(m, sizeof(m), mod, "timeout", 10);
    ASSERT_CONTAINS(decide(w, m), "\"target\":\"a\",\"strikes\":2,\"reputation\":-6");
    ASSERT_CONTAINS(decide(w, ev("1", 20, "a", "hello")), "\"hold\"");
    snprintf(m, sizeof(m), mod, "approve", 30);
    ASSERT_CONTAINS(decide(w, m), "\"strikes\":1,\"reputation\":-1");
    ASSERT_CONTAINS(decide(w, ev("2", 40, "a", "hello")), "\"allow\""); /* earns 1 */
    snprintf(m, sizeof(m), mod, "ban", 50);
    ASSERT_CONTAINS(decide(w, m), "\"strikes\":4,\"reputation\":-9");
    snprintf(m, sizeof(m), mod, "unban", 60);
    ASSERT_CONTAINS(decide(w, m), "\"strikes\":0,\"reputation\":-9");
    /* approvals make a user trusted */
    for (int i = 0; i < 3; i++) {
        snprintf(m, sizeof(m), mod, "approve", 70 + i);
        decide(w, m);
    }
    ASSERT_CONTAINS(decide(w, ev("3", 80, "a", "hello")), "\"rules\":[\"trusted\"]");
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(account_age_and_first_message)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: young, when: {account_age: \"< 7d\"}, action: hold}\n"
                              "  - {id: first, when: {first_message: true}, action: warn}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    const char *young =
        "{\"id\":\"y\",\"channel\":\"#c\",\"user\":{\"id\":\"n\",\"created_at\":"
        "\"2026-11-20T00:00:00Z\"},\"text\":\"hi\",\"ts\":\"2026-11-24T00:00:00Z\"}";
    const char *old = "{\"id\":\"o\",\"channel\":\"#c\",\"user\":{\"id\":\"o\",\"created_at\":"
                      "\"2026-11-10T00:00:00Z\"},\"text\":\"hi\",\"ts\":\"2026-11-24T00:00:00Z\"}";
    ASSERT_CONTAINS(decide(w, young), "\"hold\"");
    ASSERT_CONTAINS(decide(w, old), "\"warn\""); /* old, but new here */
    ASSERT_CONTAINS(decide(w, old), "\"allow\"");
    /* the platform's flag wins over whiply's memory; no created_at: no age */
    const char *flagged = "{\"id\":\"f\",\"channel\":\"#c\",\"user\":{\"id\":\"o\","
                          "\"first_message\":true},\"text\":\"hi\",\"ts\":1}";
    ASSERT_CONTAINS(decide(w, flagged), "\"warn\"");
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(behaviour_lint_errors_name_the_problem)
{
    char *d = th_lint("version: 1\nrules:\n"
                      "  - {id: a, when: {rate: {count: 5, pre: 10s}}, action: delete}\n"
                      "  - {id: b, when: {duplicate: {count: 30, within: 1m}}, action: delete}\n"
                      "  - {id: c, when: {all: [{joins: {count: 5, per: 1s}}, {words: [x]}]},"
                      " action: ban}\n"
                      "  - {id: d, when: {links: 1}, action: delete, escalate: true}\n"
                      "  - {id: e, when: {links: 1}, escalate: [warn, 5 minutes]}\n"
                      "  - {id: f, when: {reputation: \"lots\"}, action: hold}\n"
                      "  - {id: g, when: {links: 1}, channel_action: {mode: slowmode, for: 1m}}\n");
    ASSERT_CONTAINS(d, "unknown key 'pre' in 'rate'; did you mean 'per'?");
    ASSERT_CONTAINS(d, "'rate' needs 'per'");
    ASSERT_CONTAINS(d, "'count' must be a whole number from 2 to 8, got '30'");
    ASSERT_CONTAINS(d, "rule 'c' counts 'joins', so it runs on join events");
    ASSERT_CONTAINS(d, "rule 'd' has both 'action' and 'escalate'");
    ASSERT_CONTAINS(d, "bad ladder step '5 minutes'");
    ASSERT_CONTAINS(d, "bad comparison 'lots' for 'reputation'");
    ASSERT_CONTAINS(d, "unknown channel mode 'slowmode'");
    free(d);
    d = th_lint("version: 1\nrules:\n"
                "  - {id: a, when: {any: [{rate: {count: 1, per: 1s}}, {rate: {count: 2, per: 1s}},"
                " {rate: {count: 3, per: 1s}}, {rate: {count: 4, per: 1s}},"
                " {rate: {count: 5, per: 1s}}]}, action: delete}\n");
    ASSERT_CONTAINS(d, "more than 4 different per-user rate limits");
    free(d);
}

/* ---- the property: channels may go to any shard ---- */

TEST(spreading_channels_over_shards_never_changes_a_decision)
{
    wh_ruleset *rs =
        th_rules("version: 1\n"
                 "escalation: {ladder: [warn, 60s, 10m, ban], half_life: 30s}\n"
                 "rules:\n"
                 "  - {id: flood, when: {rate: {count: 3, per: 5s}}, action: delete}\n"
                 "  - {id: busy, when: {rate: {count: 5, per: 5s, scope: channel}}, action: allow,"
                 " channel_action: {mode: slow, for: 30s}}\n"
                 "  - {id: dup, when: {duplicate: {count: 2, within: 20s}}, escalate: true}\n"
                 "  - {id: near, when: {similar: {count: 3, within: 20s}}, action: hold}\n"
                 "  - {id: wave, when: {wave: {users: 3, within: 20s}}, action: ban}\n"
                 "  - {id: bad, when: {words: [badword]}, escalate: true}\n"
                 "  - {id: low, when: {all: [{reputation: \"< -5\"}, {length: \"> 3\"}]}, action: "
                 "delete}\n");
    const char *texts[] = {"hello there friends",
                           "badword",
                           "buy followers at bigfollows dot com now 1",
                           "buy followers at bigfollows dot com now 2",
                           "gg",
                           "what a game this is",
                           "buy followers at bigfollows dot com now 3"};
    enum { N = 3000, CH = 5, US = 40, K = 4 };
    static char lines[N][512];
    wh_worker *w = wh_worker_new(rs, NULL);
    wh_arena keep;
    wh_arena_init(&keep, 1 << 20);
    static wh_analysis an[N];
    long long ts = 1000000;
    for (int i = 0; i < N; i++) {
        ts += (long long)(next() % 400);
        int c = (int)(next() % CH), u = (int)(next() % US);
        if (next() % 20 == 0)
            snprintf(lines[i], sizeof(lines[i]),
                     "{\"id\":\"%d\",\"type\":\"mod_action\",\"channel\":\"#ch%d\",\"target\":"
                     "\"u%d\",\"action\":\"%s\",\"ts\":%lld}",
                     i, c, u, next() % 2 ? "timeout" : "approve", ts);
        else
            snprintf(
                lines[i], sizeof(lines[i]),
                "{\"id\":\"%d\",\"channel\":\"#ch%d\",\"user\":{\"id\":\"u%d\"},\"text\":\"%s\","
                "\"ts\":%lld}",
                i, c, u, texts[next() % 7], ts);
        wh_analyze(w, lines[i], strlen(lines[i]), (uint64_t)i + 1, 0, &keep, 1, &an[i]);
        ASSERT(an[i].kind == WH_AN_EVENT);
    }
    /* the reference: one decider for every channel */
    wh_buf ref;
    wh_buf_init(&ref);
    wh_decider *one = wh_decider_new(rs, NULL, 1);
    uint32_t acted = 0;
    for (int i = 0; i < N; i++)
        acted += wh_decide(one, &an[i], &ref) != WH_ACT_ALLOW;
    wh_decider_free(one);
    ASSERT(acted > N / 10); /* the stream does exercise the rules */
    ASSERT(strstr(ref.p, "\"targets\"") && strstr(ref.p, "\"channel_action\""));
    /* 20 random assignments of channels to K deciders: the same bytes every time */
    for (int round = 0; round < 20; round++) {
        uint32_t map[CH];
        for (int c = 0; c < CH; c++)
            map[c] = (uint32_t)(next() % K);
        wh_decider *ds[K];
        for (int k = 0; k < K; k++)
            ds[k] = wh_decider_new(rs, NULL, K);
        wh_buf got, one_out;
        wh_buf_init(&got);
        wh_buf_init(&one_out);
        for (int i = 0; i < N; i++) {
            int c = atoi(strstr(lines[i], "#ch") + 3);
            one_out.len = 0;
            wh_decide(ds[map[c]], &an[i], &one_out);
            wh_buf_append(&got, one_out.p, one_out.len);
        }
        for (int k = 0; k < K; k++)
            wh_decider_free(ds[k]);
        if (got.len != ref.len || memcmp(got.p, ref.p, ref.len))
            T_FAIL("round %d: decisions differ with channels spread over %d shards", round, K);
        wh_buf_free(&got);
        wh_buf_free(&one_out);
    }
    wh_buf_free(&ref);
    wh_arena_free(&keep);
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(channel_modes_and_joins_read_the_users_standing)
{
    wh_ruleset *rs =
        th_rules("version: 1\nrules:\n"
                 "  - {id: busy, priority: 10, when: {rate: {count: 2, per: 10s, scope: channel}},"
                 " channel_action: {mode: slow, for: 1m}}\n"
                 "  - {id: bad, when: {words: [badword]}, action: delete}\n"
                 "  - {id: known-raider, when: {all: [{joins: {count: 1, per: 10s}},"
                 " {strikes: \">= 1\"}]}, action: ban}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    decide(w, ev("1", 0, "a", "hi"));
    decide(w, ev("2", 1, "b", "hi"));
    /* the channel is busy: slow mode, and the lower-priority rule still deletes */
    const char *d = decide(w, ev("3", 2, "c", "badword"));
    ASSERT_CONTAINS(d, "\"action\":\"delete\"");
    ASSERT_CONTAINS(d, "\"channel_action\":{\"mode\":\"slow\",\"duration_s\":60}");
    /* c now has a strike; during a join burst, c joining again is banned, a newcomer not */
    const char *join = "{\"id\":\"j\",\"type\":\"join\",\"platform\":\"twitch\",\"channel\":\"#c\","
                       "\"user\":{\"id\":\"%s\"},\"ts\":%d}";
    char j[256];
    snprintf(j, sizeof(j), join, "x", 10);
    ASSERT_CONTAINS(decide(w, j), "\"allow\"");
    snprintf(j, sizeof(j), join, "y", 11);
    ASSERT_CONTAINS(decide(w, j), "\"allow\""); /* over the limit, but no strikes */
    snprintf(j, sizeof(j), join, "c", 12);
    ASSERT_CONTAINS(decide(w, j), "\"ban\"");
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(with_expire_taking_a_strike_back_does_not_restart_the_clock)
{
    wh_state_cfg c = {.expire_ms = 1000, .rep_min = -100, .rep_max = 100};
    wh_user u = {0};
    wh_user_add_strikes(&u, &c, 0, 2);
    wh_user_add_strikes(&u, &c, 900, -1); /* an approval */
    ASSERT_EQ(wh_user_strikes(&u, &c, 999), 1);
    ASSERT_EQ(wh_user_strikes(&u, &c, 1000), 0);
}
