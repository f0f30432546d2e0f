/* test_irc.c - the IRC line parser (src/io/irc_parse.h) on the examples of RFC 2812, the
 * IRCv3 message-tags spec and Twitch's documentation, and on lines it must refuse. */
#include <string.h>

#include "io/irc_parse.h"
#include "t.h"

static wh_irc_msg M;

static void parse_ok(const char *line)
{
    const char *why = NULL;
    if (wh_irc_parse(line, strlen(line), &M, &why) != WH_OK) T_FAIL("'%s': %s", line, why);
}

static const char *cs(wh_str s) /* a slice as a C string (static buffers, 4 in turn) */
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ & 3];
    size_t n = s.n < 255 ? s.n : 255;
    memcpy(b, s.p ? s.p : "", n);
    b[n] = 0;
    return b;
}

static const char *tag(const char *key)
{
    wh_str v;
    if (!wh_irc_tag_get(&M, key, &v)) return NULL;
    static char out[256];
    if (v.n > 255) T_FAIL("tag %s is too long for this test", key);
    out[wh_irc_tag_unescape(v, out)] = 0;
    return out;
}

TEST(the_message_tags_spec_example)
{
    parse_ok("@aaa=bbb;ccc;example.com/ddd=eee :nick!ident@host.com PRIVMSG me :Hello\r\n");
    ASSERT_EQ(M.ntags, 3);
    ASSERT_STR(tag("aaa"), "bbb");
    ASSERT_STR(tag("ccc"), ""); /* a tag without a value */
    ASSERT_STR(tag("example.com/ddd"), "eee");
    ASSERT(!tag("missing"));
    ASSERT_STR(cs(M.prefix), "nick!ident@host.com");
    ASSERT_STR(cs(M.nick), "nick");
    ASSERT_STR(cs(M.user), "ident");
    ASSERT_STR(cs(M.host), "host.com");
    ASSERT(wh_irc_is(&M, "privmsg"));
    ASSERT_EQ(M.nparams, 2);
    ASSERT_STR(cs(M.params[0]), "me");
    ASSERT_STR(cs(M.params[1]), "Hello");
    ASSERT(M.trailing);
}

TEST(tag_values_unescape_as_the_spec_says)
{
    parse_ok("@label=Newline:\\s\\nBackslash-n:\\s\\\\n;semi=a\\:b;cr=x\\ry;odd=\\b\\;end=z\\ "
             "PING");
    ASSERT_STR(tag("label"), "Newline: \nBackslash-n: \\n");
    ASSERT_STR(tag("semi"), "a;b");
    ASSERT_STR(tag("cr"), "x\ry");
    ASSERT_STR(tag("odd"), "b"); /* an unknown escape drops the '\'; a lone '\' at the end too */
    ASSERT_STR(tag("end"), "z");
    /* and back: what escapes unescapes to the same bytes */
    const char *raw = "a b;c\\d\r\ne";
    wh_buf b;
    wh_buf_init(&b);
    wh_irc_tag_escape(&b, raw, strlen(raw));
    ASSERT_STR(wh_buf_cstr(&b), "a\\sb\\:c\\\\d\\r\\ne");
    char out[64];
    size_t n = wh_irc_tag_unescape((wh_str){b.p, (uint32_t)b.len}, out);
    ASSERT_EQ(n, strlen(raw));
    ASSERT(!memcmp(out, raw, n));
    wh_buf_free(&b);
}

TEST(a_repeated_tag_key_takes_the_last_value_and_empty_equals_missing)
{
    parse_ok("@a=1;a=2;b=;+client/x=y :s 001 me :hi");
    ASSERT_STR(tag("a"), "2");
    ASSERT_STR(tag("b"), "");
    ASSERT_STR(tag("+client/x"), "y");
    ASSERT_STR(cs(M.nick), "s"); /* a server name: no '!' or '@' */
    ASSERT_EQ(M.user.n, 0);
    ASSERT_EQ(M.host.n, 0);
    ASSERT(wh_irc_is(&M, "001"));
}

TEST(twitchs_documented_privmsg)
{
    parse_ok("@badge-info=;badges=broadcaster/1;client-nonce=997dcf443c31e258c1d32a8da47b6936;"
             "color=#0000FF;display-name=abc;emotes=;first-msg=0;flags=0-6:S.7;"
             "id=eb24e920-8065-492a-8aea-266a00fc5126;mod=0;room-id=713936733;subscriber=0;"
             "tmi-sent-ts=1642786203573;turbo=0;user-id=713936733;user-type= "
             ":abc!abc@abc.tmi.twitch.tv PRIVMSG #xyz :HeyGuys");
    ASSERT_EQ(M.ntags, 16);
    ASSERT_STR(tag("badges"), "broadcaster/1");
    ASSERT_STR(tag("id"), "eb24e920-8065-492a-8aea-266a00fc5126");
    ASSERT_STR(tag("tmi-sent-ts"), "1642786203573");
    ASSERT_STR(tag("flags"), "0-6:S.7");
    ASSERT_STR(tag("user-type"), "");
    ASSERT_STR(cs(M.params[0]), "#xyz");
    ASSERT_STR(cs(M.params[1]), "HeyGuys");
}

TEST(rfc2812_lines_without_tags)
{
    parse_ok("PING :irc.example.com");
    ASSERT_EQ(M.ntags, 0);
    ASSERT_EQ(M.prefix.n, 0);
    ASSERT(wh_irc_is(&M, "PING"));
    ASSERT_STR(cs(M.params[0]), "irc.example.com");
    parse_ok(":WiZ!jto@tolsun.oulu.fi KICK #Finnish John :Speaking English");
    ASSERT_EQ(M.nparams, 3);
    ASSERT_STR(cs(M.params[1]), "John");
    ASSERT_STR(cs(M.params[2]), "Speaking English");
    parse_ok(":op!o@h MODE #c +bo-v *!*@bad.host nick1 nick2");
    ASSERT_EQ(M.nparams, 5);
    ASSERT(!M.trailing);
    ASSERT_STR(cs(M.params[1]), "+bo-v");
    ASSERT_STR(cs(M.params[4]), "nick2");
    parse_ok(":irc.example.com CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL");
    ASSERT_EQ(M.nparams, 4);
    ASSERT_STR(cs(M.params[3]), "multi-prefix sasl=PLAIN,EXTERNAL");
    parse_ok(":a!b@c PRIVMSG #c :"); /* an empty trailing parameter is a parameter */
    ASSERT_EQ(M.nparams, 2);
    ASSERT_EQ(M.params[1].n, 0);
    parse_ok(":a!b@c   PRIVMSG   #c   x  "); /* runs of spaces separate */
    ASSERT_EQ(M.nparams, 2);
    ASSERT_STR(cs(M.params[1]), "x");
    parse_ok("NICK bob\n"); /* a bare LF ends a line too */
    ASSERT_STR(cs(M.params[0]), "bob");
}

TEST(the_fifteenth_parameter_takes_the_rest)
{
    parse_ok("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17");
    ASSERT_EQ(M.nparams, 15);
    ASSERT_STR(cs(M.params[13]), "14");
    ASSERT_STR(cs(M.params[14]), "15 16 17");
}

static void refused(const char *line, size_t n, const char *want)
{
    const char *why = NULL;
    if (wh_irc_parse(line, n, &M, &why) == WH_OK) T_FAIL("'%s' was taken", line);
    if (!why || !strstr(why, want)) T_FAIL("'%s': \"%s\" does not say \"%s\"", line, why, want);
}

TEST(lines_that_are_not_irc_are_refused_saying_why)
{
    refused("", 0, "no command");
    refused("\r\n", 2, "no command");
    refused("@a=b", 4, "tags and nothing after them");
    refused(":prefix", 7, "no command");
    refused(": PING", 6, "an empty prefix");
    refused("12 x", 4, "a command is letters or three digits");
    refused("PRI^MSG x", 9, "a command is letters");
    refused("@=x PING", 8, "a tag key is empty");
    refused("@a b=c PING", 11, "a command is letters"); /* tags end at the first space */
    refused("@k!y=1 PING", 11, "a tag key has a character");
    refused("PRIVMSG #c :a\0b", 15, "NUL");
    refused("PRIVMSG #c :a\rb", 15, "CR or LF inside");
    char big[700];
    memset(big, 'a', sizeof(big));
    memcpy(big, "PRIVMSG #c :", 12);
    refused(big, sizeof(big), "longer than 512 bytes");
    static char tags[9000];
    tags[0] = '@';
    memset(tags + 1, 'x', 8500);
    memcpy(tags + 8501, "=1 PING", 7);
    refused(tags, 8508, "longer than 8191 bytes");
    char many[600] = "@";
    for (int i = 0; i < 70; i++)
        strcat(many, "a=1;");
    strcat(many, " PING");
    refused(many, strlen(many), "more tags than whiply reads");
}

TEST(nicks_and_channels_compare_under_rfc1459_case_mapping)
{
    ASSERT(wh_irc_name_eq((wh_str){"Nick[a]\\~", 9}, (wh_str){"nick{A}|^", 9}));
    ASSERT(!wh_irc_name_eq((wh_str){"nick", 4}, (wh_str){"nick_", 5}));
    ASSERT(!wh_irc_name_eq((wh_str){"#a", 2}, (wh_str){"#b", 2}));
}
