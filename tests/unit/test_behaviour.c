#define _GNU_SOURCE
/* test_behaviour.c - sketches, strike decay, waves, behaviour predicates through the engine,
 * and the property that spreading channels over shards never changes a decision. */
#include <math.h>
#include <stdio.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

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
    return wh_wave_observe(&wch, c, user, (wh_str){id, (uint32_t)strlen(id)}, k.sim, k.anchor, true,
                           ts, s);
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
    ASSERT_EQ(wh_wave_count(g1, 1000, 30000, false), 1);
    wh_wave_cluster *g2 = observe(&c, 2, "u2", "has anyone seen the new trailer yet", 2000, &s);
    ASSERT(g2 && g2 != g1);
    g1 = observe(&c, 3, "u3", "Want more viewers? Buy real followers at bigfollows dot com 7", 3000,
                 &s);
    ASSERT(g1 != g2 && s >= 0.8);
    ASSERT_EQ(wh_wave_count(g1, 3000, 30000, false), 2);
    ASSERT_EQ(wh_wave_count(g1, 3000, 1500, false), 1);   /* u1's last message is 2 s old */
    ASSERT_EQ(wh_wave_count(g1, 31000, 30000, false), 1); /* u1 (1000) is 30 s old: out */
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
    ASSERT_EQ(wh_wave_count(g, ts, 60000, false), 10);
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

TEST(sketch_length_does_not_count_stretched_letters)
{
    /* a letter's third and later copies in a row do not count: hype is not text */
    ASSERT_EQ(sketch("LETS GOOOOOOOOOOOOOO").length, 8); /* "lets goo" */
    ASSERT_EQ(sketch("LETS GOOOOOOOOOOOOOO").length, sketch("lets gooo").length);
    ASSERT_EQ(sketch("good cool").length, 9); /* one doubled letter counts in full */
    ASSERT_EQ(sketch("Happy birthday pixelqueen").length, 25);
    ASSERT_EQ(sketch("1000000 views").length, 13); /* digits count as they are */
    ASSERT_EQ(sketch("oo ooo").length, 5);         /* a run does not go on over a space */
    /* runs that cross the 16- and 64-byte steps the text is read in count the same */
    for (int at = 10; at < 70; at++) {
        char t[128];
        for (int i = 0; i < at - 1; i++)
            t[i] = "abcd"[i % 4];
        t[at - 1] = ' ';
        memcpy(t + at, "GOOOOOOOOO", 11);
        ASSERT_EQ(sketch(t).length, (uint32_t)(at - 1) + 1 + 3); /* "abcdab... goo" */
    }
}

TEST(sketch_simhash_passes_over_numbers_and_anchors_over_numbers_and_mentions)
{
    /* a spam copy's random number or tag is noise: the same ad with other numbers has the
     * same SimHash, when the words without digits make 20 bytes or more */
    wh_sketch a = sketch("Want more viewers? Buy real followers at bigfollows dot com 48213");
    wh_sketch b = sketch("Want more viewers? Buy real followers at bigfollows dot com 7 x9k2q");
    ASSERT(a.sim == b.sim);
    ASSERT(a.hash != b.hash); /* duplicates still tell them apart */
    /* short lines keep their number: a flood of counted lines is not a copy-paste */
    ASSERT(sketch("POG 3").sim != sketch("POG 4").sim);
    /* anchors: a word with a digit comes after every plain word ("10003" would otherwise be
     * the first of this text's words) */
    wh_sketch plain = sketch("Want more viewers? Buy real followers at bigfollows dot com");
    wh_sketch noisy = sketch("Want more viewers? Buy real followers at bigfollows dot com 10003");
    ASSERT_EQ(noisy.anchor[0], plain.anchor[0]);
    ASSERT_EQ(noisy.anchor[1], plain.anchor[1]);
}

/* A message given by its sketch and anchors, as the engine hands them over. */
static wh_wave_cluster *observe_raw(const wh_state_cfg *c, uint64_t user, uint64_t sim, uint32_t a0,
                                    uint32_t a1, bool counted, int64_t ts)
{
    char id[24];
    snprintf(id, sizeof(id), "u%llu", (unsigned long long)user);
    uint32_t an[2] = {a0, a1};
    double s;
    return wh_wave_observe(&wch, c, user, (wh_str){id, (uint32_t)strlen(id)}, sim, an, counted, ts,
                           &s);
}

TEST(wave_counts_only_counted_members_when_asked)
{
    wh_state_cfg c = {.wave_threshold = 0.8, .wave_within_ms = 30000};
    wh_wave_cluster *g = NULL;
    for (uint64_t u = 1; u <= 6; u++)
        g = observe_raw(&c, u, 0xabcdef, 7, 8, u % 2 == 0, (int64_t)u * 100);
    ASSERT_EQ(wh_wave_count(g, 600, 30000, false), 6);
    ASSERT_EQ(wh_wave_count(g, 600, 30000, true), 3);
    /* a member keeps counting once one of its messages counted */
    g = observe_raw(&c, 2, 0xabcdef, 7, 8, false, 700);
    ASSERT_EQ(wh_wave_count(g, 700, 30000, true), 3);
    free_waves();
}

TEST(wave_growing_pool_keeps_the_bigger_group_in_the_index)
{
    /* the split of issue 15, from its mechanism: a wave filed under anchors 1 and 2; a line of
     * chat in a later slot filed under anchors that share those buckets; the pool grows (the
     * index is rebuilt): the wave keeps its buckets, and the next copy finds it */
    wh_state_cfg c = {.wave_threshold = 0.8, .wave_within_ms = 60000};
    const uint64_t spam = 0x5555aaaa5555aaaaULL;
    wh_wave_cluster *g = NULL;
    int64_t ts = 0;
    for (uint64_t u = 1; u <= 10; u++)
        g = observe_raw(&c, u, spam, 1, 2, true, ts += 100);
    ASSERT(g && g->n == 10);
    size_t gi = (size_t)(g - wch.waves->g); /* its slot: the pool moves when it grows */
    /* a chat group under the same anchor values (the same buckets, whatever the size) */
    wh_wave_cluster *chat = observe_raw(&c, 500, ~spam, 1, 2, true, ts += 100);
    ASSERT(chat != g);
    /* distinct chat until the pool has grown twice */
    for (uint64_t k = 0; k < 100; k++)
        observe_raw(&c, 1000 + k, next(), (uint32_t)(100 + 2 * k), (uint32_t)(101 + 2 * k), true,
                    ts += 10);
    ASSERT(wch.waves->capg >= 64);
    ASSERT(observe_raw(&c, 11, spam, 1, 2, true, ts += 100) == &wch.waves->g[gi]);
    free_waves();
}

TEST(wave_a_live_wave_is_found_when_the_index_misses_it)
{
    wh_state_cfg c = {.wave_threshold = 0.8, .wave_within_ms = 30000};
    const uint64_t spam = 0x123456789abcdef0ULL;
    wh_wave_cluster *g = NULL;
    for (uint64_t u = 1; u <= 8; u++)
        g = observe_raw(&c, u, spam, 1, 2, true, (int64_t)u * 100);
    /* a copy whose anchors find nothing: without a known wave, a group of its own */
    wh_wave_cluster *lone = observe_raw(&c, 9, spam ^ 1, 900, 901, true, 900);
    ASSERT(lone != g);
    size_t gi = (size_t)(g - wch.waves->g);
    wh_wave_mark_live(&wch, &wch.waves->g[gi], 8, 900);
    g = &wch.waves->g[gi];
    ASSERT(g->live_ms == 900 && g->live_users == 8);
    /* now such a copy joins the live wave (the most similar of them) */
    ASSERT(observe_raw(&c, 10, spam ^ 3, 910, 911, true, 1000) == g);
    /* after `within` without a copy the wave is over: a copy starts afresh (in a new group,
     * which may take the old one's slot) */
    wh_wave_cluster *after = observe_raw(&c, 11, spam ^ 3, 920, 921, true, 31000);
    ASSERT(after && after->n == 1 && after->live_ms == 0);
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

TEST(rate_is_at_most_count_in_any_window_exact_at_the_boundary)
{
    wh_ruleset *rs =
        th_rules("version: 1\nrules:\n"
                 "  - {id: flood, when: {rate: {count: 2, per: 10s}}, action: delete}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    ASSERT_CONTAINS(decide(w, ev("1", 0, "a", "x")), "\"allow\"");
    ASSERT_CONTAINS(decide(w, ev("2", 1, "a", "x")), "\"allow\"");
    ASSERT_CONTAINS(decide(w, ev("3", 2, "a", "x")), "\"delete\""); /* 3 in 10 s */
    ASSERT_CONTAINS(decide(w, ev("4", 2, "b", "x")), "\"allow\"");  /* per user */
    /* every message counts, flagged or not: at 9999 the window (-1, 9999] holds 0, 1 and 2;
     * at 10002 it is (2, 10002]: 9999 only, 2 with this one */
    ASSERT_CONTAINS(decide(w, ev("5", 9999, "a", "x")), "\"delete\"");
    ASSERT_CONTAINS(decide(w, ev("6", 10002, "a", "x")), "\"allow\"");
    ASSERT_CONTAINS(decide(w, ev("7", 19998, "a", "x")), "\"delete\""); /* 9999, 10002 in */
    ASSERT_CONTAINS(decide(w, ev("7b", 20002, "a", "x")), "\"allow\""); /* 10002 has left */
    /* exactly `per` after the message `count` back is allowed, 1 ms before is not */
    ASSERT_CONTAINS(decide(w, ev("8", 30000, "b", "x")), "\"allow\"");
    ASSERT_CONTAINS(decide(w, ev("9", 30001, "b", "x")), "\"allow\"");
    ASSERT_CONTAINS(decide(w, ev("10", 40000, "b", "x")), "\"allow\""); /* 30000 has left */
    ASSERT_CONTAINS(decide(w, ev("11", 40000, "b", "x")), "\"delete\"");
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(rate_window_counts_an_out_of_order_message_as_recent)
{
    /* docs/rules.md, "Event time": a remembered message counts when this event's ts minus
     * its ts is less than `per`, so one with a later ts than the current event counts */
    wh_ruleset *rs =
        th_rules("version: 1\nrules:\n"
                 "  - {id: flood, when: {rate: {count: 2, per: 10s}}, action: delete}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    ASSERT_CONTAINS(decide(w, ev("1", 20000, "a", "x")), "\"allow\"");
    ASSERT_CONTAINS(decide(w, ev("2", 5000, "a", "x")), "\"allow\"");  /* late: 1 before */
    ASSERT_CONTAINS(decide(w, ev("3", 6000, "a", "x")), "\"delete\""); /* 20000 and 5000 */
    ASSERT_CONTAINS(decide(w, ev("4", 30000, "a", "x")), "\"allow\""); /* 20000 only */
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(rate_one_a_second_is_over_at_the_sixth_not_the_tenth)
{
    /* the case: 5 per 10 s, one message a second. The window flags the 6th; GCRA
     * (mode: gcra, a bucket of 5 refilled one per 2 s) lets 9 through, as it intends */
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: w, when: {rate: {count: 5, per: 10s}}, action: delete}\n"
                              "  - {id: g, when: {rate: {count: 5, per: 10s, mode: gcra}},"
                              " action: hold}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    int first_w = 0, first_g = 0;
    for (int k = 1; k <= 10; k++) {
        char id[8];
        snprintf(id, sizeof(id), "%d", k);
        const char *d = decide(w, ev(id, 1000LL * (k - 1), "a", "x"));
        if (!first_w && strstr(d, "\"w\"")) first_w = k;
        if (!first_g && strstr(d, "\"g\"")) first_g = k;
    }
    ASSERT_EQ(first_w, 6);
    ASSERT_EQ(first_g, 10);
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

/* The reference: every message time kept, counted by brute force. */
TEST(rate_window_equals_a_brute_force_count_on_random_traffic)
{
    for (int round = 0; round < 6; round++) {
        int count = 1 + (int)(next() % (round < 3 ? 8 : WH_WINDOW_MAX_USER_COUNT));
        long long per = 50 + (long long)(next() % 5000);
        bool chan = round % 2;
        char yaml[256];
        snprintf(yaml, sizeof(yaml),
                 "version: 1\nrules:\n  - {id: f, when: {rate: {count: %d, per: %lldms%s}},"
                 " action: delete}\n",
                 count, per, chan ? ", scope: channel" : "");
        wh_ruleset *rs = th_rules(yaml);
        wh_worker *w = wh_worker_new(rs, NULL);
        enum { N = 3000 };
        static long long seen[2][N];
        int nseen[2] = {0, 0};
        long long ts = 0;
        for (int i = 0; i < N; i++) {
            /* bursts and pauses, at times several messages in one ms */
            int r = (int)(next() % 10);
            ts += r < 5 ? 0 : r < 9 ? (long long)(next() % (per / count + 2)) : per;
            int u = chan ? 0 : (int)(next() % 2);
            const char *user = u ? "b" : "a";
            int in = 0;
            for (int k = 0; k < nseen[u]; k++)
                in += ts - seen[u][k] < per;
            char id[16];
            snprintf(id, sizeof(id), "%d", i);
            const char *d = decide(w, ev(id, ts, chan && next() % 2 ? "b" : user, "x"));
            bool over = strstr(d, "\"delete\"") != NULL;
            if (over != (in >= count))
                T_FAIL("round %d (count %d, per %lld, %s): message %d at %lld: %d earlier in the "
                       "window, decided %s",
                       round, count, per, chan ? "channel" : "user", i, ts, in, d);
            seen[u][nseen[u]++] = ts;
        }
        wh_worker_free(w);
        wh_ruleset_release(rs);
    }
}

TEST(rate_gcra_mode_is_a_bucket_exact_at_the_boundary)
{
    wh_ruleset *rs = th_rules(
        "version: 1\nrules:\n"
        "  - {id: flood, when: {rate: {count: 2, per: 10s, mode: gcra}}, action: delete}\n");
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

TEST(rate_modes_lint)
{
    char *d =
        th_lint("version: 1\nrules:\n"
                "  - {id: a, when: {rate: {count: 5, per: 10s, burst: 8}}, action: delete}\n"
                "  - {id: b, when: {rate: {count: 129, per: 10s}}, action: delete}\n"
                "  - {id: c, when: {rate: {count: 5, per: 10s, mode: leaky}}, action: delete}\n"
                "  - {id: d, when: {joins: {count: 20000, per: 10s}}, action: ban}\n");
    ASSERT_CONTAINS(d, "'burst' belongs to a token bucket: add 'mode: gcra'");
    ASSERT_CONTAINS(d, "'rate' counts at most 128 in a sliding window per user");
    ASSERT_CONTAINS(d, "unknown mode 'leaky' (expected window or gcra)");
    ASSERT_CONTAINS(d, "'count' must be a whole number from 1 to 10000, got '20000'");
    free(d);
    /* the bounds themselves load, and GCRA takes any count */
    wh_ruleset *rs = th_rules(
        "version: 1\nrules:\n"
        "  - {id: a, when: {rate: {count: 128, per: 1d}}, action: delete}\n"
        "  - {id: b, when: {rate: {count: 10000, per: 10s, scope: channel}}, action: hold}\n"
        "  - {id: c, when: {rate: {count: 10000, per: 10s, mode: gcra, burst: 50}},"
        " action: warn}\n");
    ASSERT(!rs->state.user_slots[0].gcra && rs->state.user_slots[1].gcra);
    ASSERT_EQ(rs->state.log_cap, 128);
    wh_ruleset_release(rs);
}

/* ---- raids ---- */

static const char *join_ev(const char *id, long long ts, const char *user, bool fresh)
{
    snprintf(line, sizeof(line),
             "{\"id\":\"%s\",\"type\":\"join\",\"platform\":\"twitch\",\"channel\":\"#c\","
             "\"user\":{\"id\":\"%s\",\"created_at\":\"%s\"},\"ts\":%lld}",
             id, user, fresh ? "2026-09-21T10:00:00Z" : "2020-01-01T00:00:00Z", ts);
    return line;
}

TEST(raid_no_raider_slips_through_and_the_detection_names_the_earlier_ones)
{
    /* the raid: 40 joins per 10 s with a day-old account, 80 joins 25 ms apart */
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: raid, when: {all: [{joins: {count: 40, per: 10s}},"
                              " {account_age: \"< 1d\"}]}, action: ban}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    long long t0 = 1790000000000LL;
    int detected = 0, slipped = 0, banned = 0;
    for (int k = 0; k < 80; k++) {
        char id[16], user[16];
        snprintf(id, sizeof(id), "j%d", k + 1);
        snprintf(user, sizeof(user), "r%d", k);
        bool fresh = k % 4 != 3; /* three in four fresh */
        const char *d = decide(w, join_ev(id, t0 + k * 25, user, fresh));
        bool ban = strstr(d, "\"ban\"") != NULL;
        banned += ban;
        if (ban && !detected) {
            detected = k + 1;
            /* every earlier fresh joiner, and this one, oldest first; none of the old ones */
            char want[4096] = ",\"targets\":[";
            for (int i = 0; i <= k; i++)
                if (i % 4 != 3)
                    snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s\"r%d\"",
                             want[strlen(want) - 1] == '[' ? "" : ",", i);
            strcat(want, "]");
            ASSERT_CONTAINS(d, want);
        } else {
            ASSERT_NOT_CONTAINS(d, "targets"); /* named once per raid */
        }
        if (detected && fresh && !ban) slipped++;
        if (!fresh) ASSERT(!ban);
    }
    ASSERT_EQ(detected, 41);
    ASSERT_EQ(slipped, 0);
    ASSERT_EQ(banned, 30); /* the fresh ones of joins 41..80 */
    /* the raid lasts while joins keep coming: 10 more, one every 600 ms, all still within a
     * window that holds more than 40 */
    for (int k = 0; k < 10; k++) {
        char id[16];
        snprintf(id, sizeof(id), "t%d", k);
        ASSERT_CONTAINS(decide(w, join_ev(id, t0 + 2000 + (k + 1) * 600, id, true)), "\"ban\"");
    }
    /* a join after the window emptied ends it; the next raid is detected afresh and names
     * its own joiners (not the first raid's) */
    ASSERT_CONTAINS(decide(w, join_ev("late", t0 + 115000, "late", true)), "\"allow\"");
    const char *d = NULL;
    for (int k = 0; k < 40; k++) {
        char id[16];
        snprintf(id, sizeof(id), "s%d", k);
        d = decide(w, join_ev(id, t0 + 120000 + k, id, true));
    }
    ASSERT_CONTAINS(d, "\"ban\"");
    ASSERT_CONTAINS(d, "\"targets\":[\"late\",\"s0\",");
    ASSERT_NOT_CONTAINS(d, "\"r0\"");
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(raid_targets_name_a_rejoining_user_once)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: raid, when: {joins: {count: 2, per: 10s}}, action: ban}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    ASSERT_CONTAINS(decide(w, join_ev("1", 1790000000000LL, "a", true)), "\"allow\"");
    ASSERT_CONTAINS(decide(w, join_ev("2", 1790000000001LL, "b", true)), "\"allow\"");
    ASSERT_CONTAINS(decide(w, join_ev("3", 1790000000002LL, "a", true)),
                    "\"ban\",\"rules\":[\"raid\"],\"reason\":\"raid\",\"targets\":[\"b\",\"a\"]");
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(raid_in_gcra_mode_leaks_as_the_bucket_refills)
{
    /* for comparison (docs/rules.md says which to choose): GCRA lets one join through every
     * per/count once the bucket is empty, and names the raid once while it refills */
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: raid, when: {all: [{joins: {count: 40, per: 10s, mode: "
                              "gcra}}, {account_age: \"< 1d\"}]}, action: ban}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    int slipped = 0, named = 0, first = 0;
    for (int k = 0; k < 80; k++) {
        char id[16];
        snprintf(id, sizeof(id), "j%d", k);
        const char *d = decide(w, join_ev(id, 1790000000000LL + k * 25, id, true));
        bool ban = strstr(d, "\"ban\"") != NULL;
        named += strstr(d, "targets") != NULL;
        if (ban && !first) first = k + 1;
        if (first && !ban) slipped++;
    }
    ASSERT(first > 41); /* the bucket refilled meanwhile */
    ASSERT(slipped >= 3);
    ASSERT_EQ(named, 1);
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

/* ---- duplicates ---- */

TEST(duplicate_third_copy_after_nine_other_lines)
{
    wh_ruleset *rs =
        th_rules("version: 1\nrules:\n"
                 "  - {id: dup, when: {duplicate: {count: 3, within: 10m}}, action: delete}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    ASSERT_CONTAINS(decide(w, ev("c1", 0, "a", "buy my course")), "\"allow\"");
    ASSERT_CONTAINS(decide(w, ev("c2", 1000, "a", "buy my course")), "\"allow\"");
    for (int k = 0; k < 9; k++) {
        char id[8], text[32];
        snprintf(id, sizeof(id), "l%d", k);
        snprintf(text, sizeof(text), "ordinary line %c", 'a' + k);
        ASSERT_CONTAINS(decide(w, ev(id, 2000 + k * 1000, "a", text)), "\"allow\"");
    }
    ASSERT_CONTAINS(decide(w, ev("c3", 12000, "a", "BUY my course!")), "\"delete\"");
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

/* The reference: every message of the user kept; whiply must agree whenever the window
 * holds at most WH_LOG_MAX messages (its documented bound). */
TEST(duplicate_equals_a_brute_force_count_on_random_traffic)
{
    wh_ruleset *rs =
        th_rules("version: 1\nrules:\n"
                 "  - {id: dup, when: {duplicate: {count: 4, within: 10m}}, action: delete}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    enum { N = 4000 };
    static long long ts_of[N];
    static int text_of[N];
    const char *texts[] = {"alpha one",  "bravo two",   "charlie three", "delta four",
                           "echo five",  "foxtrot six", "golf seven",    "hotel eight",
                           "india nine", "juliet ten",  "kilo eleven",   "lima twelve"};
    long long ts = 0;
    for (int i = 0; i < N; i++) {
        /* at least 4.7 s apart: at most 128 messages in 10 minutes, the bound */
        ts += 4700 + (long long)(next() % 3000);
        int x = (int)(next() % 12);
        int same = 0, inwin = 0;
        for (int k = 0; k < i; k++) {
            bool in = ts - ts_of[k] < 600000;
            inwin += in;
            same += in && text_of[k] == x;
        }
        ASSERT(inwin <= WH_LOG_MAX);
        char id[16];
        snprintf(id, sizeof(id), "%d", i);
        const char *d = decide(w, ev(id, ts, "a", texts[x]));
        bool over = strstr(d, "\"delete\"") != NULL;
        if (over != (same + 1 >= 4))
            T_FAIL("message %d: %d earlier copies in the window, decided %s", i, same, d);
        ts_of[i] = ts;
        text_of[i] = x;
    }
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(a_busy_users_log_is_bounded_and_goes_back_inline)
{
    wh_ruleset *rs =
        th_rules("version: 1\nrules:\n"
                 "  - {id: dup, when: {duplicate: {count: 3, within: 1m}}, action: delete}\n");
    const wh_state_cfg *c = &rs->state;
    wh_user u;
    memset(&u, 0, sizeof(u));
    for (int k = 0; k < 1000; k++) /* 1000 messages in 10 s */
        wh_user_remember(&u, c, (uint64_t)k, 0, k * 10);
    ASSERT(u.more != NULL);
    ASSERT_EQ(u.n, WH_LOG_MAX);
    ASSERT_EQ(wh_user_count_dup(&u, 999, 10000, 60000), 1);
    ASSERT_EQ(wh_user_count_dup(&u, 872, 10000, 60000), 1); /* 128 back: kept */
    ASSERT_EQ(wh_user_count_dup(&u, 871, 10000, 60000), 0); /* 129 back: the bound */
    /* a minute of quiet, then one message: everything beyond the last 8 is out of every
     * window, and the log goes back inline */
    wh_user_remember(&u, c, 5, 0, 80000);
    ASSERT(u.more == NULL);
    ASSERT_EQ(u.n, WH_RECENT);
    ASSERT_EQ(wh_user_count_dup(&u, 999, 80000, 1000000), 1);
    wh_user_release(&u);
    wh_ruleset_release(rs);
}

/* The log grows, shrinks and wraps; similar (the last 8 sketches), duplicate (the log) and a
 * window (the count-th most recent) must read it as a plain list of every message would. */
TEST(the_log_reads_like_a_list_of_every_message)
{
    wh_ruleset *rs =
        th_rules("version: 1\nrules:\n"
                 "  - {id: dup, when: {duplicate: {count: 3, within: 2s}}, action: delete}\n"
                 "  - {id: near, when: {similar: {count: 3, within: 2s}}, action: delete}\n"
                 "  - {id: flood, when: {rate: {count: 20, per: 1s}}, action: delete}\n");
    const wh_state_cfg *c = &rs->state;
    enum { N = 20000 };
    static int64_t ts[N];
    static uint64_t sims[N];
    static uint32_t hs[N];
    wh_user u;
    memset(&u, 0, sizeof(u));
    int64_t t = 0;
    bool was_heap = false, back_inline = false;
    for (int i = 0; i < N; i++) {
        /* bursts (the log grows), pauses (it shrinks back inline) */
        t += next() % 50 == 0 ? 3000 : (int64_t)(next() % 40);
        uint64_t sim = next() % 3 == 0 ? 0x0f0f0f0f0f0f0f0fULL : next();
        uint32_t h = (uint32_t)(next() % 5);
        /* the reference, before this message joins */
        uint32_t want_sim = 0, want_dup = 0, k8 = 0, inwin = 0;
        for (int j = i - 1; j >= 0; j--) {
            if (k8 < 8) {
                want_sim += t - ts[j] < 2000 && wh_sim_similarity(sims[j], sim) >= 0.8 - 1e-9;
                k8++;
            }
            if (t - ts[j] < 2000) {
                want_dup += hs[j] == h;
                inwin++;
            }
        }
        bool want_over = i >= 20 && t - ts[i - 20] < 1000;
        if (inwin <= WH_LOG_MAX) {
            ASSERT_EQ(wh_user_count_dup(&u, h, t, 2000), want_dup);
            ASSERT_EQ(wh_user_count_similar(&u, sim, 0.8, t, 2000), want_sim);
            ASSERT_EQ(wh_user_window_over(&u, 20, 1000, t), want_over);
        }
        wh_user_remember(&u, c, h, sim, t);
        if (u.more) was_heap = true;
        if (was_heap && !u.more) back_inline = true;
        ts[i] = t;
        sims[i] = sim;
        hs[i] = h;
    }
    ASSERT(was_heap && back_inline);
    wh_user_release(&u);
    wh_ruleset_release(rs);
}

TEST(snapshot_keeps_logs_windows_and_joins_and_refuses_version_1)
{
    wh_ruleset *rs = th_rules(
        "version: 1\nrules:\n"
        "  - {id: dup, when: {duplicate: {count: 3, within: 1m}}, action: delete}\n"
        "  - {id: busy, when: {rate: {count: 30, per: 10s, scope: channel}}, action: hold}\n"
        "  - {id: raid, when: {all: [{joins: {count: 5, per: 10s}}, {account_age: \"< 1d\"}]},"
        " action: ban}\n");
    const wh_state_cfg *c = &rs->state;
    wh_shard *a = wh_shard_new(100, 10, 0);
    uint64_t ck = wh_chan_key((wh_str){"twitch", 6}, (wh_str){"#c", 2});
    uint64_t uk = wh_user_key(ck, (wh_str){"u", 1});
    wh_user *u = wh_shard_user(a, uk, 0, true);
    for (int k = 0; k < 40; k++)
        wh_user_remember(u, c, (uint64_t)(k % 3), 0, k * 100);
    ASSERT(u->more != NULL);
    wh_channel *ch = wh_shard_channel(a, ck, 0, true);
    wh_chan_ext *x = wh_chan_ext_get(ch);
    for (int k = 0; k < 20; k++)
        wh_chan_window_take(x, 0, &c->chan_slots[0], k * 10);
    wh_chan_remember_join(x, c, (wh_str){"joiner-with-a-long-identifier-0001", 34}, 1, 100);
    wh_chan_remember_join(x, c, (wh_str){"j2", 2}, 0, 200);
    const char *path = th_write_tmp("state.snap", "");
    wh_error err;
    ASSERT_EQ(wh_state_save(&a, 1, c, path, &err), WH_OK);
    wh_shard *b[2] = {wh_shard_new(100, 10, 0), wh_shard_new(100, 10, 0)};
    ASSERT_EQ(wh_state_load(b, 2, c, path, &err), WH_OK);
    wh_user *v = wh_shard_user(b[wh_shard_of(uk, 2)], uk, 4000, false);
    ASSERT(v && v->n == 40);
    ASSERT_EQ(wh_user_count_dup(v, 0, 4000, 60000), wh_user_count_dup(u, 0, 4000, 60000));
    wh_channel *ch2 = wh_shard_channel(b[wh_shard_of(ck, 2)], ck, 300, false);
    ASSERT(ch2 && ch2->x && ch2->x->win[0].n == 20 && ch2->x->jn == 2);
    ASSERT_STR(ch2->x->j[0].big, "joiner-with-a-long-identifier-0001");
    ASSERT_STR(ch2->x->j[1].id, "j2");
    ASSERT_EQ(ch2->x->j[0].mask, 1);
    /* 10 more in the window of 30 per 10 s: the 11th is over, as it would have been */
    bool over = false;
    for (int k = 0; k < 11; k++)
        over = wh_chan_window_take(ch2->x, 0, &c->chan_slots[0], 300 + k);
    ASSERT(over);
    /* a version 1 file is refused, saying why */
    FILE *f = fopen(path, "r+b");
    ASSERT(f);
    uint32_t one = 1;
    fseek(f, 8, SEEK_SET);
    fwrite(&one, 4, 1, f);
    fclose(f);
    /* (the checksum no longer matches: rewrite it as a v1 writer would have) */
    char *buf;
    size_t len;
    ASSERT_EQ(wh_read_file(path, &buf, &len), WH_OK);
    uint64_t sum = XXH3_64bits(buf, len - 8);
    memcpy(buf + len - 8, &sum, 8);
    wh_shard *cshard = wh_shard_new(100, 10, 0);
    ASSERT_EQ(wh_state_load_mem(&cshard, 1, c, "old.snap", (const unsigned char *)buf, len, &err),
              WH_EINVAL);
    ASSERT_EQ(err.code, WH_EINVAL);
    if (!strstr(err.message, "state file old.snap: version 1, written before `rate` counted a "
                             "sliding window; this whiply reads version 5"))
        T_FAIL("the refusal says: %.300s", err.message);
    free(buf);
    wh_shard_free(cshard);
    wh_shard_free(a);
    wh_shard_free(b[0]);
    wh_shard_free(b[1]);
    wh_ruleset_release(rs);
}

/* A bus partition's part of the state: the entries of its channels and their users, no
 * other; loaded elsewhere it is the same; dropped, only that partition's entries go. */
TEST(snapshot_of_one_partition_has_its_channels_and_users_only)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: dup, when: {duplicate: {count: 3, within: 1m}}, "
                              "action: delete}\n");
    const wh_state_cfg *c = &rs->state;
    enum { NCH = 40, NP = 4 };
    wh_shard *a[2] = {wh_shard_new(1000, 100, 0), wh_shard_new(1000, 100, 0)};
    uint64_t ck[NCH], uk[NCH];
    uint32_t in_p[NP] = {0};
    for (int i = 0; i < NCH; i++) {
        char name[16];
        int n = snprintf(name, sizeof(name), "#c%d", i);
        ck[i] = wh_chan_key((wh_str){"twitch", 6}, (wh_str){name, (size_t)n});
        uk[i] = wh_user_key(ck[i], (wh_str){"u", 1});
        ASSERT_EQ(wh_shard_of(uk[i], NP), wh_shard_of(ck[i], NP)); /* users go with channels */
        in_p[wh_shard_of(ck[i], NP)]++;
        wh_user *u = wh_shard_user(a[wh_shard_of(uk[i], 2)], uk[i], 0, true);
        for (int k = 0; k <= i % 5; k++)
            wh_user_remember(u, c, (uint64_t)k, 0, k * 100);
        ASSERT(wh_shard_channel(a[wh_shard_of(ck[i], 2)], ck[i], 0, true));
    }
    ASSERT(in_p[1] > 0 && in_p[1] < NCH);
    wh_error err;
    char *buf = NULL;
    size_t len = 0;
    ASSERT_EQ(wh_state_save_part(a, 2, c, 1, NP, &buf, &len, &err), WH_OK);
    ASSERT(buf && len > 0);
    wh_shard *b[3] = {wh_shard_new(1000, 100, 0), wh_shard_new(1000, 100, 0),
                      wh_shard_new(1000, 100, 0)};
    ASSERT_EQ(wh_state_load_mem(b, 3, c, "p1", (const unsigned char *)buf, len, &err), WH_OK);
    for (int i = 0; i < NCH; i++) {
        bool mine = wh_shard_of(ck[i], NP) == 1;
        wh_user *v = wh_shard_user(b[wh_shard_of(uk[i], 3)], uk[i], 500, false);
        wh_channel *ch = wh_shard_channel(b[wh_shard_of(ck[i], 3)], ck[i], 500, false);
        ASSERT_EQ(v != NULL, mine);
        ASSERT_EQ(ch != NULL, mine);
        if (v) ASSERT_EQ(v->n, (uint32_t)(i % 5 + 1));
    }
    /* dropping partition 1 in a leaves every other entry */
    wh_state_drop_part(a, 2, 1, NP);
    for (int i = 0; i < NCH; i++) {
        bool mine = wh_shard_of(ck[i], NP) == 1;
        ASSERT_EQ(wh_shard_user(a[wh_shard_of(uk[i], 2)], uk[i], 500, false) != NULL, !mine);
        ASSERT_EQ(wh_shard_channel(a[wh_shard_of(ck[i], 2)], ck[i], 500, false) != NULL, !mine);
    }
    /* the whole-state file of what is left has no entry of partition 1 */
    char *rest = NULL;
    size_t rlen = 0;
    ASSERT_EQ(wh_state_save_part(a, 2, c, 1, NP, &rest, &rlen, &err), WH_OK);
    wh_shard *e1 = wh_shard_new(1000, 100, 0);
    ASSERT_EQ(wh_state_load_mem(&e1, 1, c, "empty", (const unsigned char *)rest, rlen, &err),
              WH_OK);
    wh_shard_stats st = {0};
    wh_shard_stats_add(e1, &st);
    ASSERT_EQ(st.users + st.channels, 0);
    free(buf);
    free(rest);
    wh_shard_free(e1);
    for (int i = 0; i < 2; i++)
        wh_shard_free(a[i]);
    for (int i = 0; i < 3; i++)
        wh_shard_free(b[i]);
    wh_ruleset_release(rs);
}

TEST(snapshot_moves_join_filter_bits_to_their_rules_across_a_reload)
{
    /* recorded under rules a, b; loaded under b, c, a: b's bit was 1 and is 0, a's was 0 and
     * is 2, and a rule that is gone (none here) or new (c) has no recorded joiner */
    wh_ruleset *old = th_rules(
        "version: 1\nrules:\n"
        "  - {id: a, when: {joins: {count: 5, per: 10s}}, action: ban}\n"
        "  - {id: b, when: {all: [{joins: {count: 9, per: 10s}}, {account_age: \"< 1d\"}]},"
        " action: ban}\n");
    wh_ruleset *now = th_rules(
        "version: 1\nrules:\n"
        "  - {id: b, when: {all: [{joins: {count: 9, per: 10s}}, {account_age: \"< 1d\"}]},"
        " action: ban}\n"
        "  - {id: c, when: {joins: {count: 3, per: 10s}}, action: hold}\n"
        "  - {id: a, when: {joins: {count: 5, per: 10s}}, action: ban}\n");
    ASSERT_EQ(old->state.njoin_rules, 2);
    ASSERT_EQ(now->state.njoin_rules, 3);
    wh_shard *a = wh_shard_new(100, 10, 0);
    uint64_t ck = wh_chan_key((wh_str){"twitch", 6}, (wh_str){"#c", 2});
    wh_channel *ch = wh_shard_channel(a, ck, 0, true);
    wh_chan_ext *x = wh_chan_ext_get(ch);
    wh_chan_remember_join(x, &old->state, (wh_str){"fresh", 5}, 3, 100); /* a and b */
    wh_chan_remember_join(x, &old->state, (wh_str){"b-only", 6}, 2, 150);
    x->named = 1; /* a's raid named its joiners */
    const char *path = th_write_tmp("join.snap", "");
    wh_error err;
    ASSERT_EQ(wh_state_save(&a, 1, &old->state, path, &err), WH_OK);
    wh_shard *b = wh_shard_new(100, 10, 0);
    ASSERT_EQ(wh_state_load(&b, 1, &now->state, path, &err), WH_OK);
    wh_channel *ch2 = wh_shard_channel(b, ck, 300, false);
    ASSERT(ch2 && ch2->x && ch2->x->jn == 2);
    ASSERT_EQ(ch2->x->j[0].mask, 5); /* b (bit 0) and a (bit 2) */
    ASSERT_EQ(ch2->x->j[1].mask, 1); /* b */
    ASSERT_EQ(ch2->x->named, 4);     /* a */
    wh_shard_free(a);
    wh_shard_free(b);
    wh_ruleset_release(old);
    wh_ruleset_release(now);
}

TEST(snapshot_keeps_live_waves_and_who_counted)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: w, when: {wave: {users: 3, within: 30s}}, action: ban}\n");
    const wh_state_cfg *c = &rs->state;
    wh_shard *a = wh_shard_new(100, 10, 0);
    uint64_t ck = wh_chan_key((wh_str){"twitch", 6}, (wh_str){"#c", 2});
    wh_channel *ch = wh_shard_channel(a, ck, 0, true);
    uint32_t an[2] = {5, 6};
    double s;
    wh_wave_cluster *g = NULL;
    for (int k = 0; k < 4; k++) {
        char id[8];
        snprintf(id, sizeof(id), "b%d", k);
        g = wh_wave_observe(ch, c, (uint64_t)k + 1, (wh_str){id, 2}, 0x1234, an, k != 1, k * 100,
                            &s);
    }
    wh_wave_mark_live(ch, g, 3, 300);
    const char *path = th_write_tmp("waves.snap", "");
    wh_error err;
    ASSERT_EQ(wh_state_save(&a, 1, c, path, &err), WH_OK);
    wh_shard *b = wh_shard_new(100, 10, 0);
    ASSERT_EQ(wh_state_load(&b, 1, c, path, &err), WH_OK);
    wh_channel *ch2 = wh_shard_channel(b, ck, 300, false);
    ASSERT(ch2 && ch2->waves && ch2->waves->live[0]);
    wh_wave_cluster *g2 = &ch2->waves->g[ch2->waves->live[0] - 1];
    ASSERT(g2->live_ms == 300 && g2->live_users == 3);
    ASSERT_EQ(wh_wave_count(g2, 300, 30000, true), 3);
    ASSERT_EQ(wh_wave_count(g2, 300, 30000, false), 4);
    wh_shard_free(a);
    wh_shard_free(b);
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

static const char *ev_as(const char *id, long long ts, const char *user, const char *text,
                         const char *extra)
{
    snprintf(line, sizeof(line),
             "{\"id\":\"%s\",\"platform\":\"twitch\",\"channel\":\"#c\",\"user\":{\"id\":\"%s\"%s},"
             "\"text\":\"%s\",\"ts\":%lld}",
             id, user, extra, text, ts);
    return line;
}

TEST(wave_a_chorus_of_regulars_is_not_a_wave_fresh_accounts_are)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: w, when: {wave: {users: 5, within: 30s}}, action: ban}\n"
                              "  - {id: e, channels: ['#e'], when: {wave: {users: 5, within: 30s,"
                              " from: everyone}}, action: warn}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    char id[32], user[32];
    /* 20 regulars known here: three messages each, over more than 10 minutes */
    for (int k = 0; k < 20; k++)
        for (int j = 0; j < 3; j++) {
            snprintf(id, sizeof(id), "h%d-%d", k, j);
            snprintf(user, sizeof(user), "reg%d", k);
            decide(w, ev(id, (long long)j * 400000 + k, user, "hello there"));
        }
    long long t = 1300000;
    for (int k = 0; k < 20; k++) {
        snprintf(id, sizeof(id), "b%d", k);
        snprintf(user, sizeof(user), "reg%d", k);
        ASSERT_CONTAINS(decide(w, ev(id, t + k * 100, user, "Happy birthday pixelqueen")),
                        "\"allow\"");
    }
    /* the hype line: stretched letters do not make it long enough for min_length */
    for (int k = 0; k < 20; k++) {
        snprintf(id, sizeof(id), "g%d", k);
        snprintf(user, sizeof(user), "new%d", k);
        ASSERT_CONTAINS(decide(w, ev(id, t + 5000 + k * 100, user, "LETS GOOOOOOOOOOOOOOOOOO")),
                        "\"allow\"");
    }
    /* regulars the platform vouches for: first_message false */
    for (int k = 0; k < 10; k++) {
        snprintf(id, sizeof(id), "p%d", k);
        snprintf(user, sizeof(user), "vet%d", k);
        ASSERT_CONTAINS(decide(w, ev_as(id, t + 10000 + k * 100, user, "welcome back to the stream",
                                        ",\"first_message\":false")),
                        "\"allow\"");
    }
    /* unknown accounts, the same text: the 5th completes a wave and names the 5 */
    for (int k = 0; k < 6; k++) {
        snprintf(id, sizeof(id), "f%d", k);
        snprintf(user, sizeof(user), "fresh%d", k);
        const char *d = decide(w, ev(id, t + 20000 + k * 100, user, "Happy birthday pixelqueen"));
        ASSERT_CONTAINS(d, k < 4 ? "\"allow\"" : "\"ban\"");
        if (k == 4) {
            ASSERT_CONTAINS(d,
                            "\"targets\":[\"fresh0\",\"fresh1\",\"fresh2\",\"fresh3\",\"fresh4\"]");
        }
    }
    /* regulars whose message carries a mention count */
    for (int k = 0; k < 5; k++) {
        snprintf(id, sizeof(id), "m%d", k);
        snprintf(user, sizeof(user), "reg%d", k);
        ASSERT_CONTAINS(decide(w, ev(id, t + 30000 + k * 100, user,
                                     "@pixelqueen please look at my new channel")),
                        k < 4 ? "\"allow\"" : "\"ban\"");
    }
    wh_worker_free(w);
    wh_ruleset_release(rs);
}

TEST(wave_from_everyone_counts_every_message_and_lint_names_from)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: e, when: {wave: {users: 3, within: 30s,"
                              " from: everyone}}, action: warn}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    char id[32], user[32];
    for (int k = 0; k < 3; k++) {
        snprintf(id, sizeof(id), "v%d", k);
        snprintf(user, sizeof(user), "vet%d", k);
        ASSERT_CONTAINS(decide(w, ev_as(id, 1000 + k, user, "Happy birthday pixelqueen",
                                        ",\"first_message\":false")),
                        k < 2 ? "\"allow\"" : "\"warn\"");
    }
    wh_worker_free(w);
    wh_ruleset_release(rs);
    char *d = th_lint("version: 1\nrules:\n"
                      "  - {id: e, when: {wave: {users: 3, within: 30s, from: all}}, "
                      "action: warn}\n");
    ASSERT_CONTAINS(d, "unknown 'from' 'all' (expected suspects or everyone)");
    free(d);
}

TEST(wave_a_known_wave_catches_every_later_copy_while_live)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: w, when: {wave: {users: 4, within: 10s}}, action: ban}\n");
    wh_worker *w = wh_worker_new(rs, NULL);
    char id[32], user[32], text[128];
    long long t = 0;
    for (int k = 0; k < 4; k++) {
        snprintf(id, sizeof(id), "s%d", k);
        snprintf(user, sizeof(user), "bot%d", k);
        snprintf(text, sizeof(text), "cheap viewers and followers at boostnow dot com %d", k * 37);
        ASSERT_CONTAINS(decide(w, ev(id, t += 1000, user, text)), k < 3 ? "\"allow\"" : "\"ban\"");
    }
    /* a slower drip: one copy every 9 s, never 4 accounts within 10 s again, each less than
     * 10 s after the last caught: the wave stays live, every copy is caught */
    for (int k = 4; k < 10; k++) {
        snprintf(id, sizeof(id), "s%d", k);
        snprintf(user, sizeof(user), "bot%d", k);
        snprintf(text, sizeof(text), "cheap viewers and followers at boostnow dot com %d", k * 37);
        ASSERT_CONTAINS(decide(w, ev(id, t += 9000, user, text)), "\"ban\"");
    }
    /* 10 s or more after the last: over; a copy starts a new count */
    ASSERT_CONTAINS(decide(w, ev("late", t += 10000, "bot99",
                                 "cheap viewers and followers at "
                                 "boostnow dot com 1")),
                    "\"allow\"");
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

/* The panic switch: a `panic` mod_action turns `panic: true` on in its channel (only) for its
 * duration in event time; duration 0 ends it; the decisions say until when. */
TEST(panic_switch_holds_in_its_channel_for_its_duration)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: panic-hold, when: {panic: true}, action: hold}\n"
                              "  - {id: calm, when: {all: [{panic: false}, {words: [zap]}]},"
                              " action: warn}\n");
    ASSERT(rs->state.need_chan);
    wh_worker *w = wh_worker_new(rs, NULL);
    const char *msg_c =
        "{\"id\":\"m\",\"channel\":\"#c\",\"user\":{\"id\":\"u\"},\"text\":\"hi zap\","
        "\"ts\":%d}";
    char l[256];
    snprintf(l, sizeof(l), msg_c, 1000);
    ASSERT_CONTAINS(decide(w, l), "\"action\":\"warn\"");
    ASSERT_NOT_CONTAINS(decide(w, l), "panic_until");
    const char *on = "{\"id\":\"p1\",\"type\":\"mod_action\",\"channel\":\"#c\",\"moderator\":"
                     "\"mod\",\"action\":\"panic\",\"duration_s\":60,\"ts\":2000}";
    const char *d = decide(w, on);
    ASSERT_CONTAINS(d, "\"action\":\"allow\"");
    ASSERT_CONTAINS(d, "\"panic_until\":62000");
    snprintf(l, sizeof(l), msg_c, 3000);
    d = decide(w, l);
    ASSERT_CONTAINS(d, "\"action\":\"hold\"");
    ASSERT_CONTAINS(d, "\"rules\":[\"panic-hold\"]");
    ASSERT_CONTAINS(d, "\"panic_until\":62000");
    /* another channel is not panicking */
    ASSERT_CONTAINS(decide(w, "{\"id\":\"o\",\"channel\":\"#other\",\"user\":{\"id\":\"u\"},"
                              "\"text\":\"hi zap\",\"ts\":3000}"),
                    "\"action\":\"warn\"");
    /* the last millisecond is in, the next one out (event time) */
    snprintf(l, sizeof(l), msg_c, 61999);
    ASSERT_CONTAINS(decide(w, l), "\"action\":\"hold\"");
    snprintf(l, sizeof(l), msg_c, 62000);
    ASSERT_CONTAINS(decide(w, l), "\"action\":\"warn\"");
    /* on again, then off with duration 0 */
    ASSERT_CONTAINS(decide(w, "{\"id\":\"p2\",\"type\":\"mod_action\",\"channel\":\"#c\","
                              "\"action\":\"panic\",\"duration_s\":600,\"ts\":70000}"),
                    "\"panic_until\":670000");
    snprintf(l, sizeof(l), msg_c, 71000);
    ASSERT_CONTAINS(decide(w, l), "\"action\":\"hold\"");
    ASSERT_CONTAINS(decide(w, "{\"id\":\"p3\",\"type\":\"mod_action\",\"channel\":\"#c\","
                              "\"action\":\"panic\",\"duration_s\":0,\"ts\":72000}"),
                    "\"panic_until\":0");
    snprintf(l, sizeof(l), msg_c, 73000);
    ASSERT_CONTAINS(decide(w, l), "\"action\":\"warn\"");
    wh_worker_free(w);
    wh_ruleset_release(rs);
    char *e = th_lint("version: 1\nrules:\n  - {id: a, when: {panic: maybe}, action: hold}\n");
    ASSERT_CONTAINS(e, "'panic'");
    free(e);
}

/* Version 5 files carry the panic switch; a version 4 file (the same bytes without it) loads
 * with the switch off and everything else as it was. */
TEST(snapshot_v5_keeps_the_panic_switch_and_reads_v4_as_off)
{
    wh_ruleset *rs = th_rules("version: 1\nrules:\n"
                              "  - {id: p, when: {panic: true}, action: hold}\n");
    const wh_state_cfg *c = &rs->state;
    wh_shard *a = wh_shard_new(100, 10, 0);
    uint64_t ck = wh_chan_key((wh_str){"twitch", 6}, (wh_str){"#c", 2});
    wh_channel *ch = wh_shard_channel(a, ck, 0, true);
    const int64_t until = 1796682935211LL;
    ch->panic_until = until;
    ch->mode_until[0] = 1234567;
    const char *path = th_write_tmp("panic.snap", "");
    wh_error err;
    ASSERT_EQ(wh_state_save(&a, 1, c, path, &err), WH_OK);
    wh_shard *b = wh_shard_new(100, 10, 0);
    ASSERT_EQ(wh_state_load(&b, 1, c, path, &err), WH_OK);
    wh_channel *c2 = wh_shard_channel(b, ck, 0, false);
    ASSERT(c2);
    ASSERT_EQ(c2->panic_until, until);
    ASSERT_EQ(c2->mode_until[0], 1234567);
    /* the same state as version 4 wrote it: no panic_until, version 4, its checksum */
    char *buf;
    size_t len;
    ASSERT_EQ(wh_read_file(path, &buf, &len), WH_OK);
    char *at = memmem(buf, len, &until, sizeof(until));
    ASSERT(at);
    memmove(at, at + 8, (size_t)(buf + len - (at + 8)));
    len -= 8;
    uint32_t four = 4;
    memcpy(buf + 8, &four, 4);
    uint64_t sum = XXH3_64bits(buf, len - 8);
    memcpy(buf + len - 8, &sum, 8);
    wh_shard *v4 = wh_shard_new(100, 10, 0);
    ASSERT_EQ(wh_state_load_mem(&v4, 1, c, "v4.snap", (const unsigned char *)buf, len, &err),
              WH_OK);
    wh_channel *c3 = wh_shard_channel(v4, ck, 0, false);
    ASSERT(c3);
    ASSERT_EQ(c3->panic_until, 0);
    ASSERT_EQ(c3->mode_until[0], 1234567);
    free(buf);
    wh_shard_free(a);
    wh_shard_free(b);
    wh_shard_free(v4);
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
    /* its own seed: the stream must not depend on the cases that ran before (each case runs
     * in a process of its own); this one's stream has a raid, waves and a slow mode */
    rng = 7;
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
                 "  - {id: raid, when: {all: [{joins: {count: 3, per: 2s}}, {strikes: \"< 2\"}]},"
                 " action: hold}\n"
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
        else if (next() % 8 == 0)
            snprintf(lines[i], sizeof(lines[i]),
                     "{\"id\":\"%d\",\"type\":\"join\",\"channel\":\"#ch%d\",\"user\":"
                     "{\"id\":\"u%d\"},\"ts\":%lld}",
                     i, c, u, ts);
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
    ASSERT(strstr(ref.p, "\"rules\":[\"raid\"],\"reason\":\"raid\",\"targets\""));
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
