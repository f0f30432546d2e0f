/* test_subject.c - where an event goes on the bus (src/io/subject.h): partitions follow the
 * state shards' hash, names become subject tokens and come back unchanged, and tokens that
 * are no name's encoding are refused. */
#include <string.h>

#include "io/subject.h"
#include "state/shard.h"
#include "t.h"

static wh_str S(const char *s)
{
    return (wh_str){s, strlen(s)};
}

static void roundtrip(wh_str name)
{
    wh_buf enc, dec;
    wh_buf_init(&enc);
    wh_buf_init(&dec);
    wh_subject_token(&enc, name);
    for (size_t i = 0; i < enc.len; i++) { /* a token: no '.', '*', '>' or white space */
        char c = enc.p[i];
        ASSERT(c != '.' && c != '*' && c != '>' && c != ' ' && c != '\t' && c > 0x20 && c < 0x7f);
    }
    ASSERT(wh_subject_token_decode(enc.p, enc.len, &dec));
    ASSERT_EQ(dec.len, name.n);
    ASSERT(!name.n || !memcmp(dec.p, name.p, name.n));
    wh_buf_free(&enc);
    wh_buf_free(&dec);
}

TEST(names_round_trip_through_tokens)
{
    const char *names[] = {"#myth_gg",    "plain", "a.b", "x*y>z", "two words",
                           "caf\xc3\xa9", "~41",   "~",   "-_-",   "\x01\x7f\xff"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        roundtrip(S(names[i]));
    roundtrip((wh_str){"", 0});
    roundtrip((wh_str){"a\0b", 3});
}

TEST(tokens_encode_as_documented)
{
    wh_buf b;
    wh_buf_init(&b);
    wh_subject_token(&b, S("#a.b c"));
    ASSERT_STR(wh_buf_cstr(&b), "~23a~2Eb~20c");
    b.len = 0;
    wh_subject_token(&b, (wh_str){"", 0});
    ASSERT_STR(wh_buf_cstr(&b), "~");
    wh_subject_events(&b, 3, S("twitch"), S("#comet"));
    ASSERT_STR(b.p, "whiply.events.3.twitch.~23comet");
    wh_subject_decisions(&b, 3, S("twitch"), S("#comet"));
    ASSERT_STR(b.p, "whiply.decisions.3.twitch.~23comet");
    wh_subject_actions(&b, S("irc"), S("#a.b"));
    ASSERT_STR(b.p, "whiply.actions.irc.~23a~2Eb");
    wh_buf_free(&b);
}

TEST(tokens_that_are_no_encoding_are_refused)
{
    const char *bad[] = {"",    "~2",  "~2g", "~zz",        "~41" /* 'A' stays literal */,
                         "a.b", "a b", "~",   "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wh_buf b;
        wh_buf_init(&b);
        bool ok = wh_subject_token_decode(bad[i], strlen(bad[i]), &b);
        /* "~" alone is the empty name: the one exception */
        ASSERT_EQ(ok, !strcmp(bad[i], "~"));
        wh_buf_free(&b);
    }
}

TEST(a_channel_has_one_partition_the_one_of_its_shard)
{
    for (uint32_t parts = 1; parts <= 64; parts *= 2) {
        for (int i = 0; i < 200; i++) {
            char ch[32];
            snprintf(ch, sizeof(ch), "#chan%d", i);
            uint32_t p = wh_bus_partition(S("twitch"), S(ch), parts);
            ASSERT(p < parts);
            ASSERT_EQ(p, wh_shard_of(wh_chan_key(S("twitch"), S(ch)), parts));
            ASSERT_EQ(p, wh_bus_partition(S("twitch"), S(ch), parts)); /* stable */
        }
    }
    /* spread: 200 channels over 8 partitions leave none empty */
    int seen[8] = {0};
    for (int i = 0; i < 200; i++) {
        char ch[32];
        snprintf(ch, sizeof(ch), "#c%d", i);
        seen[wh_bus_partition(S("discord"), S(ch), 8)]++;
    }
    for (int p = 0; p < 8; p++)
        ASSERT(seen[p] > 0);
}

TEST(message_ids_are_the_json_escaped_id)
{
    wh_buf b;
    wh_buf_init(&b);
    wh_bus_msg_id(&b, S("e-1"));
    ASSERT_STR(b.p, "e-1");
    wh_bus_msg_id(&b, S("a\nb\"c\x01"));
    ASSERT_STR(b.p, "a\\nb\\\"c\\u0001");
    for (size_t i = 0; i < b.len; i++) /* a header value: no control characters */
        ASSERT((unsigned char)b.p[i] >= 0x20);
    wh_bus_msg_id(&b, (wh_str){"", 0});
    ASSERT_EQ(b.len, 0);
    wh_buf_free(&b);
}
