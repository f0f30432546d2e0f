/* test_twitch.c - the pure parts of the Twitch adapter (src/io/twitch.h) on Twitch's
 * documented examples: badges to roles, Helix's error object, the OAuth token answer, the
 * EventSub signature and EventSub payloads to events. */
#include <string.h>

#include "io/twitch.h"
#include "t.h"

static const char *roles(const char *badges, bool mod)
{
    static wh_buf b;
    b.len = 0;
    wh_twitch_roles(&b, (wh_str){badges, (uint32_t)strlen(badges)}, mod);
    return wh_buf_cstr(&b);
}

TEST(badges_become_roles)
{
    ASSERT_STR(roles("broadcaster/1,subscriber/12", false),
               ",\"roles\":[\"broadcaster\",\"subscriber\"]");
    ASSERT_STR(roles("moderator/1", true), ",\"roles\":[\"moderator\"]"); /* not twice */
    ASSERT_STR(roles("", true), ",\"roles\":[\"moderator\"]");
    ASSERT_STR(roles("", false), "");
    ASSERT_STR(roles("vip/1,,/0", false), ",\"roles\":[\"vip\"]"); /* empty names skipped */
}

TEST(helix_errors_and_tokens_as_documented)
{
    char msg[64];
    const char *e =
        "{\"error\":\"Unauthorized\",\"status\":401,\"message\":\"Invalid OAuth token\"}";
    ASSERT(wh_helix_error(e, strlen(e), msg, sizeof(msg)));
    ASSERT_STR(msg, "Invalid OAuth token");
    const char *e2 = "{\"error\":\"Too Many Requests\",\"status\":429}";
    ASSERT(wh_helix_error(e2, strlen(e2), msg, sizeof(msg)));
    ASSERT_STR(msg, "Too Many Requests");
    ASSERT(!wh_helix_error("<html>", 6, msg, sizeof(msg)));
    char a[128], r[128];
    const char *tok = "{\"access_token\":\"1ssjqsqfy6bads1ws7m03gras79zfr\",\"refresh_token\":"
                      "\"eyJfMzUtNDU0OC4MWYwLTQ5MDY5ODY4NGNlMSJ9%asdfasdf=\",\"scope\":["
                      "\"channel:read:subscriptions\"],\"token_type\":\"bearer\"}";
    ASSERT(wh_twitch_token_parse(tok, strlen(tok), a, sizeof(a), r, sizeof(r)));
    ASSERT_STR(a, "1ssjqsqfy6bads1ws7m03gras79zfr");
    ASSERT_STR(r, "eyJfMzUtNDU0OC4MWYwLTQ5MDY5ODY4NGNlMSJ9%asdfasdf=");
    ASSERT(!wh_twitch_token_parse("{\"status\":400}", 14, a, sizeof(a), r, sizeof(r)));
}

TEST(eventsub_signatures_are_hmac_sha256_of_id_timestamp_body)
{
    const char *id = "e76c6bd4-55c9-4987-8304-da1588d8988b", *ts = "2019-11-16T10:11:12.634234626Z";
    const char *sig = "sha256=2194f17de324bb57009d96f045b1f005fd794b8fb775701cbecdb3e932eb407c";
    ASSERT(wh_eventsub_signature_ok("s3cr3t", id, ts, "{\"a\":1}", 7, sig));
    ASSERT(!wh_eventsub_signature_ok("s3cr3t", id, ts, "{\"a\":2}", 7, sig));     /* the body */
    ASSERT(!wh_eventsub_signature_ok("other", id, ts, "{\"a\":1}", 7, sig));      /* the secret */
    ASSERT(!wh_eventsub_signature_ok("s3cr3t", id, ts, "{\"a\":1}", 7, sig + 7)); /* "sha256=" */
    ASSERT(!wh_eventsub_signature_ok("s3cr3t", id, ts, "{\"a\":1}", 7, "sha256=00"));
}

static const char *events(const char *body, uint32_t *n, wh_status *st)
{
    static wh_buf b;
    static char why[200];
    b.len = 0;
    *st = wh_eventsub_events("twitch", "es-1", body, strlen(body), &b, n, why, sizeof(why));
    return *st == WH_OK ? wh_buf_cstr(&b) : why;
}

TEST(eventsub_payloads_become_events)
{
    uint32_t n;
    wh_status st;
    /* the documented channel.chat.message */
    const char *chat =
        "{\"subscription\":{\"id\":\"0b7f3361-672b-4d39-b307-dd5b576c9b27\",\"status\":"
        "\"enabled\",\"type\":\"channel.chat.message\",\"version\":\"1\",\"condition\":{"
        "\"broadcaster_user_id\":\"1971641\",\"user_id\":\"2914196\"},\"transport\":{\"method\":"
        "\"webhook\",\"callback\":\"https://x\"},\"created_at\":\"2023-11-06T18:11:47.492253549Z\","
        "\"cost\":0},\"event\":{\"broadcaster_user_id\":\"1971641\",\"broadcaster_user_login\":"
        "\"streamer\",\"broadcaster_user_name\":\"streamer\",\"chatter_user_id\":\"4145994\","
        "\"chatter_user_login\":\"viewer32\",\"chatter_user_name\":\"viewer32\",\"message_id\":"
        "\"cc106a89-1814-919d-454c-f4f2f970aae7\",\"message\":{\"text\":\"Hi chat\",\"fragments\":"
        "[{\"type\":\"text\",\"text\":\"Hi chat\",\"cheermote\":null,\"emote\":null,\"mention\":"
        "null}]},\"color\":\"#00FF7F\",\"badges\":[{\"set_id\":\"moderator\",\"id\":\"1\",\"info\":"
        "\"\"},{\"set_id\":\"subscriber\",\"id\":\"12\",\"info\":\"16\"},{\"set_id\":"
        "\"sub-gifter\",\"id\":\"1\",\"info\":\"\"}],\"message_type\":\"text\",\"cheer\":null,"
        "\"reply\":null,\"channel_points_custom_reward_id\":null}}";
    ASSERT_STR(events(chat, &n, &st),
               "{\"id\":\"cc106a89-1814-919d-454c-f4f2f970aae7\",\"type\":\"message\",\"platform\":"
               "\"twitch\",\"channel\":\"#streamer\",\"user\":{\"id\":\"4145994\",\"name\":"
               "\"viewer32\",\"roles\":[\"moderator\",\"subscriber\",\"sub-gifter\"]},\"text\":"
               "\"Hi chat\",\"meta\":{\"msg_id\":\"cc106a89-1814-919d-454c-f4f2f970aae7\","
               "\"room_id\":\"1971641\"}}\n");
    ASSERT_EQ(n, 1);
    /* channel.moderate: a ban */
    const char *ban = "{\"subscription\":{\"type\":\"channel.moderate\"},\"event\":{"
                      "\"broadcaster_user_id\":\"1\",\"broadcaster_user_login\":\"streamer\","
                      "\"moderator_user_login\":\"mod_kay\",\"action\":\"ban\",\"ban\":{"
                      "\"user_id\":\"42\",\"user_login\":\"bad\",\"reason\":\"spam\"}}}";
    ASSERT_STR(events(ban, &n, &st),
               "{\"id\":\"es-1\",\"type\":\"mod_action\",\"platform\":\"twitch\",\"channel\":"
               "\"#streamer\",\"moderator\":\"mod_kay\",\"target\":\"42\",\"action\":\"ban\"}\n");
    /* channel.moderate that is not about a user (a mode), and another type: nothing */
    const char *slow = "{\"subscription\":{\"type\":\"channel.moderate\"},\"event\":{"
                       "\"broadcaster_user_login\":\"streamer\",\"action\":\"slow\"}}";
    ASSERT_STR(events(slow, &n, &st), "");
    ASSERT_EQ(n, 0);
    ASSERT_STR(events("{\"subscription\":{\"type\":\"channel.follow\"},\"event\":{}}", &n, &st),
               "");
    /* what is not a payload says why */
    ASSERT_STR(events("[1]", &n, &st), "the body is not a JSON object");
    ASSERT_EQ(st, WH_ESYNTAX);
    ASSERT_STR(events("{\"event\":{}}", &n, &st), "no subscription.type");
    ASSERT_STR(events("{\"subscription\":{\"type\":\"channel.chat.message\"},\"event\":{"
                      "\"broadcaster_user_login\":\"Bad Login\"}}",
                      &n, &st),
               "channel.chat.message: no valid event.broadcaster_user_login");
}
