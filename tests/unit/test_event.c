/* test_event.c - io/event.c: decoding NDJSON event lines, every error code, and
 * string unescaping. */
#include <limits.h>
#include <stdint.h>

#include "base/base.h"
#include "engine/event.h"
#include "t.h"

/* ---- helpers ---------------------------------------------------------------- */

#define NOW 1700000000000LL /* the receive time passed to the decoder */

static wh_decoder *dec;
static wh_arena arena;
static wh_event ev;
static wh_decode_error err;

/* Decodes line[0..len) into the globals ev/err; the arena is reset before each call. */
static bool decode_n(const char *line, size_t len)
{
    if (!dec) {
        dec = wh_decoder_new();
        wh_arena_init(&arena, 0);
        if (!dec) T_FAIL("wh_decoder_new");
    }
    wh_arena_reset(&arena);
    return wh_event_decode(dec, line, len, &arena, NOW, &ev, &err);
}

static bool decode(const char *line)
{
    return decode_n(line, strlen(line));
}

/* A wh_str as a NUL-terminated string (static rotation of buffers). */
static const char *S(wh_str s)
{
    static char bufs[4][70000];
    static int k;
    char *b = bufs[k++ % 4];
    if (!s.p) return "(null)";
    size_t n = s.n < sizeof(bufs[0]) - 1 ? s.n : sizeof(bufs[0]) - 1;
    memcpy(b, s.p, n);
    b[n] = 0;
    return b;
}

/* Asserts that line decodes; prints the error when it does not. */
#define ASSERT_OK(line)                                                                            \
    do {                                                                                           \
        if (!decode(line)) T_FAIL("decode failed: %s: %s", err.code, err.message);                 \
    } while (0)

/* Asserts that line[0..len) fails with the error code. */
#define ASSERT_ERR_N(line, len, want)                                                              \
    do {                                                                                           \
        if (decode_n(line, len)) T_FAIL("decoded, expected error %s", want);                       \
        if (!err.code || strcmp(err.code, want))                                                   \
            T_FAIL("error %s (%s), expected %s", err.code ? err.code : "(none)", err.message,      \
                   want);                                                                          \
        if (!err.message[0]) T_FAIL("error %s has an empty message", want);                        \
    } while (0)
#define ASSERT_ERR(line, want) ASSERT_ERR_N(line, strlen(line), want)

/* Builds {"id":"big","meta":[[[...]]]} with the given number of nested arrays in meta
 * (so the deepest value sits at depth arrays + 1, the event object being depth 1). */
static const char *nested_meta(int arrays)
{
    static char buf[512];
    int n = snprintf(buf, sizeof(buf), "{\"id\":\"deep\",\"meta\":");
    for (int i = 0; i < arrays; i++)
        buf[n++] = '[';
    for (int i = 0; i < arrays; i++)
        buf[n++] = ']';
    buf[n++] = '}';
    buf[n] = 0;
    return buf;
}

/* The same with nested objects: {"id":"deep","meta":{"k":{"k":{...}}}}. */
static const char *nested_meta_objects(int objects)
{
    static char buf[1024];
    int n = snprintf(buf, sizeof(buf), "{\"id\":\"deep\",\"meta\":");
    for (int i = 0; i < objects; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, i + 1 < objects ? "{\"k\":" : "{");
    for (int i = 0; i < objects; i++)
        buf[n++] = '}';
    buf[n++] = '}';
    buf[n] = 0;
    return buf;
}

/* {"id":"x","text":"<n copies of c>"} in a malloc'd buffer. */
static char *text_event(size_t n, char c)
{
    char *b = malloc(n + 64);
    if (!b) T_FAIL("malloc");
    int h = sprintf(b, "{\"id\":\"x\",\"text\":\"");
    memset(b + h, c, n);
    strcpy(b + h + n, "\"}");
    return b;
}

/* ---- valid events ------------------------------------------------------------ */

TEST(decode_all_fields)
{
    ASSERT_OK("{\"id\": \"e-1029\", \"type\": \"message\", \"platform\": \"twitch\", "
              "\"channel\": \"#somechannel\", \"user\": {\"id\": \"u42\", \"name\": \"bob\", "
              "\"roles\": [\"subscriber\"], \"created_at\": \"2026-11-20T09:00:00Z\", "
              "\"first_message\": false}, \"text\": \"hello chat\", "
              "\"ts\": \"2026-11-24T11:00:00.123Z\", \"meta\": {\"msg_id\": \"abc\"}}");
    ASSERT_STR(S(ev.id), "e-1029");
    ASSERT_EQ(ev.type, WH_EV_MESSAGE);
    ASSERT_STR(S(ev.platform), "twitch");
    ASSERT_STR(S(ev.channel), "#somechannel");
    ASSERT_STR(S(ev.user_id), "u42");
    ASSERT_STR(S(ev.user_name), "bob");
    ASSERT_EQ(ev.nroles, 1);
    ASSERT_STR(S(ev.roles[0]), "subscriber");
    ASSERT_EQ(ev.created_at_ms, 1795165200000LL); /* date -u -d 2026-11-20T09:00:00Z +%s */
    ASSERT_EQ(ev.first_message, 0);
    ASSERT_STR(S(ev.text), "hello chat");
    ASSERT(ev.ts_given);
    ASSERT_EQ(ev.ts_ms, 1795518000123LL);
    ASSERT_STR(S(ev.meta), "{\"msg_id\": \"abc\"}");
}

TEST(decode_minimal_defaults)
{
    ASSERT_OK("{\"id\":\"m\"}");
    ASSERT_STR(S(ev.id), "m");
    ASSERT_EQ(ev.type, WH_EV_MESSAGE); /* type defaults to message */
    ASSERT(!ev.ts_given);
    ASSERT_EQ(ev.ts_ms, NOW); /* absent ts -> the receive time */
    ASSERT_EQ(ev.created_at_ms, INT64_MIN);
    ASSERT_EQ(ev.first_message, -1);
    ASSERT_EQ(ev.nroles, 0);
    ASSERT_EQ(ev.text.n, 0);
    ASSERT_EQ(ev.meta.n, 0);
    ASSERT_EQ(ev.meta_emotes.n, 0);
}

TEST(decode_whitespace_around_object)
{
    ASSERT_OK("  {\"id\" : \"w\" , \"text\" : \"x\" }  \t\r");
    ASSERT_STR(S(ev.id), "w");
    ASSERT_STR(S(ev.text), "x");
}

TEST(decode_roles)
{
    ASSERT_OK("{\"id\":\"r\",\"user\":{\"roles\":[\"vip\",\"subscriber\",\"moderator\"],"
              "\"first_message\":true}}");
    ASSERT_EQ(ev.nroles, 3);
    ASSERT_STR(S(ev.roles[0]), "vip");
    ASSERT_STR(S(ev.roles[1]), "subscriber");
    ASSERT_STR(S(ev.roles[2]), "moderator");
    ASSERT_EQ(ev.first_message, 1);
    ASSERT_OK("{\"id\":\"r\",\"user\":{\"roles\":[]}}");
    ASSERT_EQ(ev.nroles, 0);
    ASSERT_OK("{\"id\":\"r\",\"user\":{\"roles\":null,\"name\":null}}");
    ASSERT_EQ(ev.nroles, 0);
}

TEST(decode_numeric_user_id)
{
    ASSERT_OK("{\"id\":\"u\",\"user\":{\"id\":12345678901234}}");
    ASSERT_STR(S(ev.user_id), "12345678901234");
}

TEST(decode_ts_rfc3339_and_integer)
{
    ASSERT_OK("{\"id\":\"t\",\"ts\":\"2026-11-24T12:30:00+01:30\"}");
    ASSERT(ev.ts_given);
    ASSERT_EQ(ev.ts_ms, 1795518000000LL);
    ASSERT_OK("{\"id\":\"t\",\"ts\":1795518000123}");
    ASSERT(ev.ts_given);
    ASSERT_EQ(ev.ts_ms, 1795518000123LL);
    ASSERT_OK("{\"id\":\"t\",\"ts\":0}");
    ASSERT(ev.ts_given);
    ASSERT_EQ(ev.ts_ms, 0);
    ASSERT_OK("{\"id\":\"t\",\"ts\":null}"); /* null counts as absent */
    ASSERT(!ev.ts_given);
    ASSERT_EQ(ev.ts_ms, NOW);
}

TEST(decode_created_at_integer)
{
    ASSERT_OK("{\"id\":\"c\",\"user\":{\"created_at\":1795165200000}}");
    ASSERT_EQ(ev.created_at_ms, 1795165200000LL);
}

TEST(decode_event_types)
{
    static const struct {
        const char *name;
        wh_event_type t;
    } types[] = {{"message", WH_EV_MESSAGE},
                 {"join", WH_EV_JOIN},
                 {"part", WH_EV_PART},
                 {"mod_action", WH_EV_MOD_ACTION},
                 {"user_update", WH_EV_USER_UPDATE}};
    char line[128];
    for (size_t i = 0; i < WH_ARRAY_LEN(types); i++) {
        snprintf(line, sizeof(line), "{\"type\":\"%s\",\"id\":\"t%zu\"}", types[i].name, i);
        ASSERT_OK(line);
        ASSERT_EQ(ev.type, types[i].t);
    }
}

TEST(decode_mod_action_fields)
{
    ASSERT_OK("{\"id\":\"ma\",\"type\":\"mod_action\",\"moderator\":\"mod1\",\"target\":\"bob\","
              "\"action\":\"timeout\",\"ref_event\":\"e-1\",\"duration_s\":600}");
    ASSERT_EQ(ev.type, WH_EV_MOD_ACTION);
    ASSERT_STR(S(ev.moderator), "mod1");
    ASSERT_STR(S(ev.target), "bob");
    ASSERT_STR(S(ev.mod_action), "timeout");
    ASSERT_STR(S(ev.ref_event), "e-1");
    ASSERT_EQ(ev.duration_s, 600);
}

TEST(decode_numeric_id_kept_as_literal)
{
    ASSERT_OK("{\"id\":42,\"text\":\"x\"}");
    ASSERT_STR(S(ev.id), "42");
    ASSERT_OK("{\"id\":1.50e3}"); /* the literal text, not a reformatted number */
    ASSERT_STR(S(ev.id), "1.50e3");
    ASSERT_OK("{\"id\":-7}");
    ASSERT_STR(S(ev.id), "-7");
}

TEST(decode_id_max_length)
{
    char line[300];
    char id[WH_MAX_ID + 1];
    memset(id, 'i', WH_MAX_ID);
    id[WH_MAX_ID] = 0;
    snprintf(line, sizeof(line), "{\"id\":\"%s\"}", id);
    ASSERT_OK(line);
    ASSERT_EQ(ev.id.n, WH_MAX_ID);
}

TEST(decode_unknown_keys_ignored)
{
    ASSERT_OK("{\"zzz\":{\"a\":[1,2,{\"b\":null}]},\"id\":\"k\",\"extra\":true,\"text\":\"hi\"}");
    ASSERT_STR(S(ev.id), "k");
    ASSERT_STR(S(ev.text), "hi");
}

TEST(decode_meta_echoed_raw)
{
    ASSERT_OK(
        "{\"id\":\"m\",\"meta\":{\"msg_id\":\"abc\",\"n\":[1, 2.5e1, true],\"q\":\"\\u00e9\"}}");
    ASSERT_STR(S(ev.meta), "{\"msg_id\":\"abc\",\"n\":[1, 2.5e1, true],\"q\":\"\\u00e9\"}");
    ASSERT_OK("{\"id\":\"m\",\"meta\":[1,2]}");
    ASSERT_STR(S(ev.meta), "[1,2]");
    ASSERT_OK("{\"id\":\"m\",\"meta\":\"just a string\"}");
    ASSERT_STR(S(ev.meta), "\"just a string\""); /* kept as JSON: quotes included */
    ASSERT_OK("{\"id\":\"m\",\"meta\":17}");
    ASSERT_STR(S(ev.meta), "17");
}

TEST(decode_meta_emotes_twitch_string)
{
    ASSERT_OK("{\"id\":\"e\",\"text\":\"Kappa Keepo Kappa\","
              "\"meta\":{\"emotes\":\"25:0-4,12-16/1902:6-10\",\"other\":1}}");
    ASSERT(!ev.meta_emotes_is_array);
    ASSERT_STR(S(ev.meta_emotes), "25:0-4,12-16/1902:6-10");
}

TEST(decode_meta_emotes_array)
{
    ASSERT_OK("{\"id\":\"e\",\"meta\":{\"a\":{\"emotes\":\"nested, not this\"},"
              "\"emotes\":[{\"id\":\"1\"},\"x\",[3]]}}");
    ASSERT(ev.meta_emotes_is_array);
    ASSERT_EQ(ev.meta_emotes.n, 3); /* element count */
    ASSERT_OK("{\"id\":\"e\",\"meta\":{\"emotes\":[]}}");
    ASSERT(ev.meta_emotes_is_array);
    ASSERT_EQ(ev.meta_emotes.n, 0);
}

/* ---- string unescaping ---------------------------------------------------------- */

TEST(unescape_simple_escapes)
{
    ASSERT_OK("{\"id\":\"u\",\"text\":\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\"}");
    ASSERT_STR(S(ev.text), "q\"b\\s/n\nr\rt\tb\bf\f");
}

TEST(unescape_unicode_bmp)
{
    ASSERT_OK("{\"id\":\"u\",\"text\":\"\\u0041\\u00e9\\u4e2d\\uFFFD\"}");
    ASSERT_STR(S(ev.text), "A\xc3\xa9\xe4\xb8\xad\xef\xbf\xbd");
}

TEST(unescape_surrogate_pair)
{
    ASSERT_OK("{\"id\":\"u\",\"text\":\"x\\ud83d\\ude00y\"}");
    ASSERT_EQ(ev.text.n, 6);
    ASSERT_STR(S(ev.text), "x\xf0\x9f\x98\x80y");            /* U+1F600 */
    ASSERT_OK("{\"id\":\"u\",\"text\":\"\\uD83D\\uDE00\"}"); /* upper-case hex, at the end */
    ASSERT_STR(S(ev.text), "\xf0\x9f\x98\x80");
    ASSERT_OK("{\"id\":\"u\",\"text\":\"\\udbff\\udfff\"}"); /* U+10FFFF */
    ASSERT_STR(S(ev.text), "\xf4\x8f\xbf\xbf");
}

TEST(unescape_raw_utf8_untouched)
{
    ASSERT_OK("{\"id\":\"u\",\"text\":\"f\xc3\xbc"
              "ck \xf0\x9f\x98\x80\"}");
    ASSERT_STR(S(ev.text), "f\xc3\xbc"
                           "ck \xf0\x9f\x98\x80");
}

TEST(unescape_escaped_id)
{
    ASSERT_OK("{\"id\":\"a\\\"b\",\"text\":\"x\"}");
    ASSERT_STR(S(ev.id), "a\"b");
}

/* ---- errors: bad_json ------------------------------------------------------------ */

TEST(bad_json_broken)
{
    ASSERT_ERR("{\"id\":\"x\",}}", "bad_json");
    ASSERT_ERR("{id:\"x\"}", "bad_json");
    ASSERT_ERR("{'id':'x'}", "bad_json");
    ASSERT_ERR("hello", "bad_json");
    ASSERT_ERR("{\"id\":\"x\"]", "bad_json");
    ASSERT_ERR("{\"id\":undefined}", "bad_json");
}

TEST(bad_json_truncated)
{
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"hel", "bad_json");
    ASSERT_ERR("{\"id\":\"x\"", "bad_json");
    ASSERT_ERR("{\"id\":", "bad_json");
    ASSERT_ERR("{", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"ts\":12", "bad_json");
}

TEST(bad_json_empty_line)
{
    ASSERT_ERR("", "bad_json");
}

TEST(bad_json_trailing_garbage)
{
    ASSERT_ERR("{\"id\":\"x\"} x", "bad_json");
    ASSERT_ERR("{\"id\":\"x\"}{\"id\":\"y\"}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\"} 5", "bad_json");
    ASSERT_ERR("{\"id\":\"x\"}]", "bad_json");
    ASSERT_CONTAINS(err.message, "byte");
}

TEST(bad_json_top_level_not_object)
{
    ASSERT_ERR("[{\"id\":\"x\"}]", "bad_json");
    ASSERT_ERR("\"id\"", "bad_json");
    ASSERT_ERR("42", "bad_json");
    ASSERT_ERR("null", "bad_json");
}

TEST(bad_json_invalid_literals)
{
    ASSERT_ERR("{\"id\":\"x\",\"a\":tru}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":nul}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":True}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":01}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":1.}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":.5}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":-}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":1e}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":+1}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":0x10}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"a\":truex}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"meta\":{\"deep\":[1,2,fals]}}", "bad_json");
    /* and the valid forms next to them */
    ASSERT_OK("{\"id\":\"x\",\"a\":[true,false,null,0,-0,1.5,-2e10,3E+2,4e-1]}");
}

TEST(bad_json_unescaped_control_char)
{
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"a\tb\"}", "bad_json");
    ASSERT_CONTAINS(err.message, "byte 20"); /* the tab, 1-based */
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"a\nb\"}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"meta\":{\"k\":\"\x01\"}}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"a\x1f\"}", "bad_json");
}

TEST(bad_json_unescaped_control_char_in_key)
{
    /* RFC 8259: control characters must be escaped in every string, keys included. */
    ASSERT_ERR("{\"id\":\"x\",\"a\x01\":1}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"meta\":{\"k\tk\":1}}", "bad_json");
}

TEST(bad_json_bad_escapes)
{
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\x41\"}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\u12\"}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\u12g4\"}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\U0041\"}", "bad_json");
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\'\"}", "bad_json");
}

TEST(bad_json_lone_surrogates)
{
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\ud83d\"}", "bad_json");        /* high alone */
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\ude00\"}", "bad_json");        /* low alone */
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\ud83dx\"}", "bad_json");       /* high + char */
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\ud83d\\u0041\"}", "bad_json"); /* high + BMP */
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\ud83d\\ud83d\"}", "bad_json"); /* high + high */
    ASSERT_ERR("{\"id\":\"x\",\"text\":\"\\ude00\\ud83d\"}", "bad_json"); /* reversed */
    /* In any string field, not only text. */
    ASSERT_ERR("{\"id\":\"x\",\"channel\":\"\\udc00\"}", "bad_json");
}

TEST(bad_json_missing_separators)
{
    /* jsmn alone is lenient about separators; the decoder must still reject these.
     * All cases are tried, and the failure lists every one that was accepted. */
    static const char *const bad[] = {
        "{\"id\":\"x\" \"text\":\"y\"}", /* missing comma (the text is silently lost) */
        "{\"id\":\"x\"\"text\":\"y\"}",
        "{\"id\" \"x\"}",                 /* missing colon */
        "{\"id\":\"x\":\"y\"}",           /* double colon */
        "{\"id\":\"x\",}",                /* trailing comma */
        "{,\"id\":\"x\"}",                /* leading comma */
        "{\"id\":\"x\",,\"text\":\"y\"}", /* doubled comma */
        "{\"id\":\"x\",\"meta\":[1 2]}",
        "{\"id\":\"x\",\"meta\":[1,]}",
        "{\"id\":\"x\",\"meta\":[,1]}",
        "{\"id\":\"x\",\"meta\":{\"a\" 1}}",
    };
    char accepted[900] = "";
    size_t n = 0;
    for (size_t i = 0; i < WH_ARRAY_LEN(bad); i++) {
        bool ok = decode(bad[i]);
        if (ok || strcmp(err.code, "bad_json"))
            n += (size_t)snprintf(accepted + n, sizeof(accepted) - n, " [%s -> %s]", bad[i],
                                  ok ? "decoded" : err.code);
        if (n >= sizeof(accepted)) break;
    }
    if (accepted[0]) T_FAIL("not rejected as bad_json:%s", accepted);
}

TEST(bad_json_error_has_no_id_when_unreadable)
{
    ASSERT_ERR("{\"id\":\"x\",", "bad_json");
    ASSERT_EQ(err.id.n, 0);
}

TEST(bad_json_escape_error_carries_id)
{
    /* The id is readable even though a later string has a bad escape. */
    ASSERT_ERR("{\"id\":\"e7\",\"text\":\"\\udc00\"}", "bad_json");
    ASSERT_STR(S(err.id), "e7");
    /* The message names the offending escape: its backslash (offset 21) is byte 22. */
    ASSERT_ERR("{\"id\":\"e7\",\"text\":\"ab\\ud800\"}", "bad_json");
    ASSERT_CONTAINS(err.message, "byte 22");
}

/* ---- errors: bad_utf8 -------------------------------------------------------------- */

TEST(bad_utf8_cases)
{
    static const struct {
        const char *line;
        size_t len;
        size_t offset; /* 0-based offset of the first bad byte */
    } cases[] = {
        /* overlong '/' (C0 AF) */
        {"{\"id\":\"x\",\"text\":\"\xc0\xaf\"}", 22, 18},
        /* overlong 3-byte (E0 80 AF) */
        {"{\"id\":\"x\",\"text\":\"\xe0\x80\xaf\"}", 23, 18},
        /* overlong 4-byte (F0 80 80 AF) */
        {"{\"id\":\"x\",\"text\":\"ab\xf0\x80\x80\xaf\"}", 26, 20},
        /* UTF-8 encoded surrogate U+D800 (ED A0 80) */
        {"{\"id\":\"x\",\"text\":\"\xed\xa0\x80\"}", 23, 18},
        /* truncated 3-byte sequence followed by ASCII */
        {"{\"id\":\"x\",\"text\":\"\xe2\x82\"}", 22, 18},
        /* truncated at the very end of the line */
        {"{\"id\":\"x\",\"text\":\"\"}\xf0\x9f\x98", 23, 20},
        /* 0xFF */
        {"{\"id\":\"x\",\"text\":\"hi\xff\"}", 23, 20},
        /* lone continuation byte */
        {"{\"id\":\"x\",\"text\":\"\x80\"}", 21, 18},
        /* above U+10FFFF (F4 90 80 80) */
        {"{\"id\":\"x\",\"text\":\"\xf4\x90\x80\x80\"}", 24, 18},
        /* in the id */
        {"{\"id\":\"\xfe\"}", 10, 7},
    };
    for (size_t i = 0; i < WH_ARRAY_LEN(cases); i++) {
        ASSERT_EQ(strlen(cases[i].line), cases[i].len);
        ASSERT_ERR_N(cases[i].line, cases[i].len, "bad_utf8");
        /* Messages count bytes from 1, like the bad_json ones. */
        char want[32];
        snprintf(want, sizeof(want), "byte %zu", cases[i].offset + 1);
        ASSERT_CONTAINS(err.message, want);
    }
}

TEST(bad_utf8_offset_past_ascii_fast_path)
{
    /* The bad byte after more than 8 ASCII bytes (the validator skips 8 at a time). */
    char line[128];
    int n = snprintf(line, sizeof(line), "{\"id\":\"x\",\"text\":\"0123456789abcdefghij\xc3\"}");
    ASSERT_ERR_N(line, (size_t)n, "bad_utf8");
    ASSERT_CONTAINS(err.message, "byte 39");
}

TEST(valid_utf8_edges_accepted)
{
    /* U+0080, U+07FF, U+0800, U+FFFF, U+10000, U+10FFFF, U+E000 (after the surrogates) */
    ASSERT_OK("{\"id\":\"x\",\"text\":\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80"
              "\xf4\x8f\xbf\xbf\xee\x80\x80\"}");
    ASSERT_EQ(ev.text.n, 2 + 2 + 3 + 3 + 4 + 4 + 3);
}

/* ---- errors: limits ------------------------------------------------------------------ */

TEST(line_too_long)
{
    char *b = text_event(WH_MAX_LINE, 'a'); /* the text alone would also be too long */
    size_t len = strlen(b);
    ASSERT(len > WH_MAX_LINE);
    ASSERT_ERR_N(b, len, "line_too_long");
    free(b);
}

TEST(line_at_limit_is_not_too_long)
{
    /* Exactly WH_MAX_LINE bytes: padded with trailing spaces after a valid object. */
    char *b = malloc(WH_MAX_LINE + 1);
    ASSERT(b != NULL);
    int h = sprintf(b, "{\"id\":\"x\",\"text\":\"ok\"}");
    memset(b + h, ' ', WH_MAX_LINE - (size_t)h);
    b[WH_MAX_LINE] = 0;
    bool ok = decode_n(b, WH_MAX_LINE);
    free(b);
    if (!ok) T_FAIL("%s: %s", err.code, err.message);
}

TEST(text_too_long)
{
    char *b = text_event(WH_MAX_TEXT + 1, 'a');
    ASSERT_ERR(b, "text_too_long");
    ASSERT_STR(S(err.id), "x");
    free(b);
    b = text_event(WH_MAX_TEXT, 'a'); /* exactly 64 KiB is fine */
    bool ok = decode(b);
    free(b);
    if (!ok) T_FAIL("64 KiB text rejected: %s: %s", err.code, err.message);
    ASSERT_EQ(ev.text.n, WH_MAX_TEXT);
}

TEST(text_too_long_counts_decoded_bytes)
{
    /* 40000 escaped 'é' (\u00e9, 6 bytes of JSON each) decode to 80000 bytes > 64 KiB. */
    size_t n = 40000;
    char *b = malloc(n * 6 + 64);
    ASSERT(b != NULL);
    int h = sprintf(b, "{\"id\":\"x\",\"text\":\"");
    for (size_t i = 0; i < n; i++)
        memcpy(b + h + i * 6, "\\u00e9", 6);
    strcpy(b + h + n * 6, "\"}");
    bool ok = decode(b);
    free(b);
    ASSERT(!ok);
    ASSERT_STR(err.code, "text_too_long");
}

TEST(too_deep)
{
    ASSERT_OK(nested_meta(31)); /* deepest value at depth 32 */
    ASSERT_ERR(nested_meta(32), "too_deep");
    ASSERT_ERR(nested_meta(100), "too_deep");
    ASSERT_CONTAINS(err.message, "32");
    ASSERT_OK(nested_meta_objects(31));
    ASSERT_ERR(nested_meta_objects(32), "too_deep");
}

/* ---- errors: id ---------------------------------------------------------------------- */

TEST(missing_id)
{
    ASSERT_ERR("{\"text\":\"hello\"}", "missing_id");
    ASSERT_ERR("{}", "missing_id");
    ASSERT_ERR("{\"id\":\"\"}", "missing_id");
    ASSERT_ERR("{\"user\":{\"id\":\"u1\"},\"text\":\"x\"}", "missing_id"); /* user.id != id */
    ASSERT_EQ(err.id.n, 0);
}

TEST(bad_field_id_type)
{
    ASSERT_ERR("{\"id\":true}", "bad_field");
    ASSERT_ERR("{\"id\":null}", "bad_field");
    ASSERT_ERR("{\"id\":{\"a\":1}}", "bad_field");
    ASSERT_ERR("{\"id\":[\"x\"]}", "bad_field");
    ASSERT_CONTAINS(err.message, "id");
}

TEST(bad_field_id_too_long)
{
    char line[300];
    char id[WH_MAX_ID + 2];
    memset(id, 'i', WH_MAX_ID + 1);
    id[WH_MAX_ID + 1] = 0;
    snprintf(line, sizeof(line), "{\"id\":\"%s\"}", id);
    ASSERT_ERR(line, "bad_field");
    ASSERT_CONTAINS(err.message, "128");
}

TEST(bad_field_roles)
{
    ASSERT_ERR("{\"id\":\"r1\",\"user\":{\"roles\":\"vip\"}}", "bad_field");
    ASSERT_STR(S(err.id), "r1");
    ASSERT_ERR("{\"id\":\"r1\",\"user\":{\"roles\":{\"vip\":true}}}", "bad_field");
    ASSERT_ERR("{\"id\":\"r1\",\"user\":{\"roles\":[\"vip\",3]}}", "bad_field");
}

TEST(bad_field_too_many_roles)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "{\"id\":\"r\",\"user\":{\"roles\":[");
    for (int i = 0; i <= WH_MAX_ROLES; i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s\"r%d\"", i ? "," : "", i);
    snprintf(line + n, sizeof(line) - (size_t)n, "]}}");
    ASSERT_ERR(line, "bad_field");
}

TEST(bad_field_type)
{
    ASSERT_ERR("{\"id\":\"t1\",\"type\":\"chat\"}", "bad_field");
    ASSERT_STR(S(err.id), "t1");
    ASSERT_ERR("{\"id\":\"t1\",\"type\":\"Message\"}", "bad_field"); /* case matters */
    ASSERT_ERR("{\"id\":\"t1\",\"type\":1}", "bad_field");
    ASSERT_ERR("{\"id\":\"t1\",\"type\":\"\"}", "bad_field");
}

TEST(bad_field_other_types)
{
    ASSERT_ERR("{\"id\":\"f\",\"text\":42}", "bad_field");
    ASSERT_STR(S(err.id), "f");
    ASSERT_ERR("{\"id\":\"f\",\"channel\":[\"#c\"]}", "bad_field");
    ASSERT_ERR("{\"id\":\"f\",\"user\":\"bob\"}", "bad_field");
    ASSERT_ERR("{\"id\":\"f\",\"user\":{\"first_message\":\"yes\"}}", "bad_field");
    ASSERT_ERR("{\"id\":\"f\",\"duration_s\":\"10\"}", "bad_field");
    ASSERT_ERR("{\"id\":\"f\",\"text\":\"a\\u0000b\"}", "bad_field"); /* NUL in text */
}

/* ---- errors: identifiers with control characters -------------------------------------- */

TEST(bad_field_control_characters_in_identifiers)
{
    /* NUL, another C0 control and DEL (escaped, and DEL raw: JSON allows a raw 0x7f), in
     * every field used as an identifier; each error names its field. */
    static const struct {
        const char *line, *field;
    } cases[] = {
        {"{\"id\":\"held\\u0000x\"}", "\"id\""},
        {"{\"id\":\"a\\u001fb\"}", "\"id\""},
        {"{\"id\":\"a\x7f"
         "b\"}",
         "\"id\""},
        {"{\"id\":\"e\",\"platform\":\"tw\\u0000itch\"}", "\"platform\""},
        {"{\"id\":\"e\",\"channel\":\"#c\\u0000other\"}", "\"channel\""},
        {"{\"id\":\"e\",\"channel\":\"#c\\n\"}", "\"channel\""},
        {"{\"id\":\"e\",\"user\":{\"id\":\"u\\u0000\"}}", "\"user.id\""},
        {"{\"id\":\"e\",\"user\":{\"name\":\"bob\\u007f\"}}", "\"user.name\""},
        {"{\"id\":\"e\",\"user\":{\"roles\":[\"vip\\t\"]}}", "\"user.roles\""},
        {"{\"id\":\"e\",\"type\":\"mod_action\",\"moderator\":\"m\\u0001\"}", "\"moderator\""},
        {"{\"id\":\"e\",\"type\":\"mod_action\",\"target\":\"u\\u0000x\"}", "\"target\""},
        {"{\"id\":\"e\",\"type\":\"mod_action\",\"action\":\"ban\\u0000\"}", "\"action\""},
        {"{\"id\":\"e\",\"type\":\"mod_action\",\"ref_event\":\"h\\u0000\"}", "\"ref_event\""},
    };
    for (size_t i = 0; i < WH_ARRAY_LEN(cases); i++) {
        ASSERT_ERR(cases[i].line, "bad_field");
        ASSERT_CONTAINS(err.message, cases[i].field);
        ASSERT_CONTAINS(err.message, "control character");
    }
    /* a bad id is not echoed as the error's id */
    ASSERT_ERR("{\"id\":\"held\\u0000x\"}", "bad_field");
    ASSERT_EQ(err.id.n, 0);
    ASSERT_ERR("{\"id\":\"e\",\"channel\":\"#c\\u0000\"}", "bad_field");
    ASSERT_STR(S(err.id), "e");
}

TEST(text_keeps_newlines_and_tabs_not_nul)
{
    ASSERT_OK("{\"id\":\"t\",\"text\":\"line one\\nline two\\tand \\u0007 \x7f\"}");
    ASSERT_STR(S(ev.text), "line one\nline two\tand \a \x7f");
    ASSERT_ERR("{\"id\":\"t\",\"text\":\"a\\u0000\"}", "bad_field");
    ASSERT_CONTAINS(err.message, "\"text\"");
    /* identifiers may hold any other Unicode */
    ASSERT_OK("{\"id\":\"\\u00e9-1\",\"channel\":\"#caf\xc3\xa9\",\"user\":{\"name\":\"b b\"}}");
    ASSERT_STR(S(ev.id), "\xc3\xa9-1");
}

/* ---- errors: duplicate keys ------------------------------------------------------------ */

TEST(bad_field_duplicate_keys)
{
    /* {"id":"d","text":"hello","text":"fuck"}: one reader takes the first, another the last */
    ASSERT_ERR("{\"id\":\"d\",\"text\":\"hello\",\"text\":\"fuck\"}", "bad_field");
    ASSERT_CONTAINS(err.message, "duplicate key \"text\"");
    ASSERT_STR(S(err.id), "d");
    ASSERT_ERR("{\"id\":\"a\",\"text\":\"x\",\"id\":\"b\"}", "bad_field");
    ASSERT_CONTAINS(err.message, "duplicate key \"id\"");
    ASSERT_ERR("{\"id\":\"d\",\"channel\":\"#a\",\"channel\":null}", "bad_field");
    ASSERT_CONTAINS(err.message, "\"channel\"");
    ASSERT_ERR("{\"id\":\"d\",\"user\":{\"id\":\"u1\"},\"user\":{\"id\":\"u2\"}}", "bad_field");
    ASSERT_CONTAINS(err.message, "\"user\"");
    ASSERT_ERR("{\"id\":\"d\",\"user\":{\"id\":\"u1\",\"name\":\"a\",\"id\":\"u2\"}}", "bad_field");
    ASSERT_CONTAINS(err.message, "\"user.id\"");
    ASSERT_ERR("{\"id\":\"d\",\"user\":{\"roles\":[],\"roles\":[\"mod\"]}}", "bad_field");
    ASSERT_CONTAINS(err.message, "\"user.roles\"");
    ASSERT_ERR("{\"id\":\"d\",\"ts\":1,\"ts\":2}", "bad_field");
    ASSERT_ERR("{\"id\":\"d\",\"meta\":{\"emotes\":\"1\",\"emotes\":[1,2]}}", "bad_field");
    ASSERT_CONTAINS(err.message, "\"meta.emotes\"");
    /* the same key written with an escape is the same key */
    ASSERT_ERR("{\"id\":\"d\",\"text\":\"hello\",\"te\\u0078t\":\"fuck\"}", "bad_field");
    ASSERT_CONTAINS(err.message, "duplicate key \"text\"");
    ASSERT_ERR("{\"\\u0069d\":\"a\",\"id\":\"b\"}", "bad_field");
    ASSERT_OK("{\"\\u0069d\":\"esc\",\"te\\u0078t\":\"read\"}");
    ASSERT_STR(S(ev.id), "esc");
    ASSERT_STR(S(ev.text), "read");
    /* meta is the client's: its other keys, and keys whiply does not know, pass as they are */
    ASSERT_OK(
        "{\"id\":\"d\",\"meta\":{\"k\":1,\"k\":2},\"x\":1,\"x\":2,\"user\":{\"z\":1,\"z\":2}}");
    ASSERT_STR(S(ev.meta), "{\"k\":1,\"k\":2}");
    /* the same key in different objects is no repeat */
    ASSERT_OK("{\"id\":\"d\",\"user\":{\"id\":\"u\",\"name\":\"n\"},\"meta\":{\"id\":\"m\"}}");
    ASSERT_STR(S(ev.user_id), "u");
}

/* ---- errors: bad_ts ------------------------------------------------------------------- */

TEST(bad_ts)
{
    ASSERT_ERR("{\"id\":\"t9\",\"ts\":\"yesterday\"}", "bad_ts");
    ASSERT_STR(S(err.id), "t9");
    ASSERT_ERR("{\"id\":\"t9\",\"ts\":\"2023-02-30T00:00:00Z\"}", "bad_ts");
    ASSERT_ERR("{\"id\":\"t9\",\"ts\":\"2026-11-24T11:00:00\"}", "bad_ts");
    ASSERT_ERR("{\"id\":\"t9\",\"ts\":1795518000123.5}", "bad_ts");
    ASSERT_ERR("{\"id\":\"t9\",\"ts\":1e12}", "bad_ts");
    ASSERT_ERR("{\"id\":\"t9\",\"ts\":true}", "bad_ts");
    ASSERT_ERR("{\"id\":\"t9\",\"user\":{\"created_at\":\"soon\"}}", "bad_ts");
}

TEST(bad_ts_out_of_range_integer)
{
    /* 9999999999999999999 does not fit in int64 ms: it must not wrap to a negative time. */
    ASSERT_ERR("{\"id\":\"t9\",\"ts\":9999999999999999999}", "bad_ts");
    /* The same for the other integer fields. */
    ASSERT_ERR("{\"id\":\"t9\",\"user\":{\"created_at\":9999999999999999999}}", "bad_ts");
    ASSERT_ERR("{\"id\":\"t9\",\"type\":\"mod_action\",\"duration_s\":9999999999999999999}",
               "bad_field");
}

/* ---- error ids ------------------------------------------------------------------------ */

TEST(error_id_after_id_is_read)
{
    /* The id is read first, wherever it appears in the object. */
    ASSERT_ERR("{\"ts\":\"bad\",\"text\":\"x\",\"id\":\"late\"}", "bad_ts");
    ASSERT_STR(S(err.id), "late");
    ASSERT_ERR("{\"id\":17,\"type\":\"nope\"}", "bad_field");
    ASSERT_STR(S(err.id), "17");
}

TEST(error_id_empty_before_parse)
{
    ASSERT_ERR("{\"id\":\"x\"} trailing", "bad_json");
    ASSERT_EQ(err.id.n, 0);
    ASSERT_ERR_N("{\"id\":\"x\",\"text\":\"\xff\"}", 21, "bad_utf8");
    ASSERT_EQ(err.id.n, 0);
}

TEST(decoder_reusable_after_errors)
{
    ASSERT_ERR("{\"id\":", "bad_json");
    ASSERT_ERR(nested_meta(40), "too_deep");
    ASSERT_OK("{\"id\":\"after\",\"text\":\"fine\"}");
    ASSERT_STR(S(ev.id), "after");
    ASSERT_STR(S(ev.text), "fine");
    ASSERT(err.code == NULL); /* the error of the previous call is cleared */
    ASSERT_EQ(ev.ts_ms, NOW);
}

TEST(decode_many_tokens_grows)
{
    /* More tokens than the decoder's initial array: it must grow, not fail. */
    size_t n = 5000;
    char *b = malloc(n * 2 + 64);
    ASSERT(b != NULL);
    int h = sprintf(b, "{\"id\":\"big\",\"meta\":[");
    for (size_t i = 0; i < n; i++) {
        b[h++] = '1';
        b[h++] = i + 1 < n ? ',' : ']';
    }
    strcpy(b + h, "}");
    bool ok = decode(b);
    const char *id = ok ? S(ev.id) : ""; /* ev points into b: copy before freeing */
    free(b);
    if (!ok) T_FAIL("%s: %s", err.code, err.message);
    ASSERT_STR(id, "big");
}

/* ---- blank lines ------------------------------------------------------------------------ */

TEST(line_is_blank)
{
    ASSERT(wh_line_is_blank("", 0));
    ASSERT(wh_line_is_blank("   ", 3));
    ASSERT(wh_line_is_blank(" \t\r ", 4));
    ASSERT(!wh_line_is_blank(" x ", 3));
    ASSERT(!wh_line_is_blank("{}", 2));
    ASSERT(!wh_line_is_blank("\0", 1));
    ASSERT(wh_line_is_blank("  x", 2)); /* only len bytes are looked at */
}
