/* test_base.c - base/base.c: RFC 3339 and duration parsing, JSON string escaping, the
 * arena, growable buffers and Levenshtein distance.
 *
 * Expected epoch values were computed independently with GNU date, e.g.
 *   date -u -d 2026-11-24T11:00:00Z +%s   -> 1795518000 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "t.h"

/* ---- helpers ---------------------------------------------------------------- */

/* Parses s as RFC 3339; returns true on success and stores the ms in *ms. */
static bool rfc(const char *s, int64_t *ms)
{
    *ms = INT64_MIN;
    return wh_parse_rfc3339(s, strlen(s), ms);
}

static bool dur(const char *s, int64_t *ms)
{
    *ms = INT64_MIN;
    return wh_parse_duration(s, strlen(s), ms);
}

/* Escapes s (n bytes) with wh_buf_json_str into out (static buffer). */
static const char *json_str(const char *s, size_t n)
{
    static char out[256]; /* small enough that failure messages never truncate */
    wh_buf b;
    wh_buf_init(&b);
    wh_buf_json_str(&b, s, n);
    snprintf(out, sizeof(out), "%s", wh_buf_cstr(&b));
    ASSERT(!b.oom);
    wh_buf_free(&b);
    return out;
}

#define ASSERT_RFC(str, expect)                                                                    \
    do {                                                                                           \
        int64_t _ms;                                                                               \
        if (!rfc(str, &_ms)) T_FAIL("\"%s\" was rejected", str);                                   \
        ASSERT_EQ(_ms, (expect));                                                                  \
    } while (0)
#define ASSERT_RFC_BAD(str)                                                                        \
    do {                                                                                           \
        int64_t _ms;                                                                               \
        if (rfc(str, &_ms)) T_FAIL("\"%s\" was accepted as %" PRId64, str, _ms);                   \
    } while (0)
#define ASSERT_DUR(str, expect)                                                                    \
    do {                                                                                           \
        int64_t _ms;                                                                               \
        if (!dur(str, &_ms)) T_FAIL("duration \"%s\" was rejected", str);                          \
        ASSERT_EQ(_ms, (expect));                                                                  \
    } while (0)
#define ASSERT_DUR_BAD(str)                                                                        \
    do {                                                                                           \
        int64_t _ms;                                                                               \
        if (dur(str, &_ms)) T_FAIL("duration \"%s\" was accepted as %" PRId64, str, _ms);          \
    } while (0)

/* ---- RFC 3339 ----------------------------------------------------------------- */

TEST(rfc3339_utc_z)
{
    ASSERT_RFC("1970-01-01T00:00:00Z", 0);
    ASSERT_RFC("2026-11-24T11:00:00Z", 1795518000000LL);
    ASSERT_RFC("2026-12-31T23:59:59Z", 1798761599000LL);
    ASSERT_RFC("2100-03-01T00:00:00Z", 4107542400000LL);
    ASSERT_RFC("1969-12-31T23:59:59Z", -1000);
}

TEST(rfc3339_fractional_ms)
{
    ASSERT_RFC("2026-11-24T11:00:00.123Z", 1795518000123LL); /* the spec's example */
    ASSERT_RFC("2026-11-24T11:00:00.5Z", 1795518000500LL);
    ASSERT_RFC("2026-11-24T11:00:00.05Z", 1795518000050LL);
    ASSERT_RFC("2026-11-24T11:00:00.000Z", 1795518000000LL);
    /* Digits beyond milliseconds are truncated, not rounded into the next second. */
    ASSERT_RFC("2026-11-24T11:00:00.123456Z", 1795518000123LL);
    ASSERT_RFC("2026-11-24T11:00:00.999999999Z", 1795518000999LL);
    ASSERT_RFC("1969-12-31T23:59:59.500Z", -500);
    ASSERT_RFC_BAD("2026-11-24T11:00:00.Z"); /* a dot needs digits */
    ASSERT_RFC_BAD("2026-11-24T11:00:00.12aZ");
}

TEST(rfc3339_offsets)
{
    /* date -u -d 2026-11-24T12:30:00+01:30 +%s -> 1795518000 */
    ASSERT_RFC("2026-11-24T12:30:00+01:30", 1795518000000LL);
    ASSERT_RFC("2026-11-24T06:00:00-05:00", 1795518000000LL);
    ASSERT_RFC("2026-11-24T11:00:00+00:00", 1795518000000LL);
    ASSERT_RFC("2026-11-24T11:00:00-00:00", 1795518000000LL);
    ASSERT_RFC("2026-11-24T11:00:00.123+00:00", 1795518000123LL);
    /* An offset can move the instant across a day boundary. */
    ASSERT_RFC("2026-11-24T23:30:00-01:00", 1795566600000LL);
    ASSERT_RFC_BAD("2026-11-24T11:00:00+0100"); /* the colon is required */
    ASSERT_RFC_BAD("2026-11-24T11:00:00+01");
    ASSERT_RFC_BAD("2026-11-24T11:00:00+24:00"); /* hours 00..23 */
    ASSERT_RFC_BAD("2026-11-24T11:00:00+01:60");
    ASSERT_RFC_BAD("2026-11-24T11:00:00+01:00Z");
}

TEST(rfc3339_separators_and_case)
{
    ASSERT_RFC("2026-11-24t11:00:00z", 1795518000000LL);
    ASSERT_RFC("2026-11-24 11:00:00Z", 1795518000000LL); /* RFC 3339 section 5.6 note */
}

TEST(rfc3339_leap_years)
{
    ASSERT_RFC("2024-02-29T12:00:00Z", 1709208000000LL);
    ASSERT_RFC("2024-02-29T23:59:59.999Z", 1709251199999LL);
    ASSERT_RFC("2000-02-29T00:00:00Z", 951782400000LL); /* divisible by 400: leap */
}

TEST(rfc3339_feb29_non_leap_rejected)
{
    ASSERT_RFC_BAD("2023-02-29T00:00:00Z");
    ASSERT_RFC_BAD("2100-02-29T00:00:00Z"); /* divisible by 100, not 400: not leap */
    ASSERT_RFC_BAD("2026-02-29T12:00:00Z");
}

TEST(rfc3339_day_and_time_ranges)
{
    ASSERT_RFC_BAD("2024-02-30T00:00:00Z");
    ASSERT_RFC_BAD("2026-04-31T00:00:00Z");
    ASSERT_RFC_BAD("2026-11-00T00:00:00Z");
    ASSERT_RFC_BAD("2026-00-10T00:00:00Z");
    ASSERT_RFC_BAD("2026-13-10T00:00:00Z");
    ASSERT_RFC_BAD("2026-11-24T24:00:00Z");
    ASSERT_RFC_BAD("2026-11-24T11:60:00Z");
    ASSERT_RFC_BAD("2026-11-24T11:00:61Z");
    ASSERT_RFC("2026-12-31T00:00:00Z", 1798675200000LL);
    ASSERT_RFC("2026-04-30T00:00:00Z", 1777507200000LL);
}

TEST(rfc3339_leap_second_accepted)
{
    int64_t ms;
    ASSERT(rfc("2016-12-31T23:59:60Z", &ms));
    /* 23:59:59 is 1483228799; a leap second lies between it and the next midnight. */
    ASSERT(ms >= 1483228799000LL && ms <= 1483228800000LL);
}

TEST(rfc3339_garbage_rejected)
{
    ASSERT_RFC_BAD("");
    ASSERT_RFC_BAD("now");
    ASSERT_RFC_BAD("2026-11-24");
    ASSERT_RFC_BAD("2026-11-24T11:00:00"); /* no zone */
    ASSERT_RFC_BAD("2026-11-24T11:00Z");   /* no seconds */
    ASSERT_RFC_BAD("2026/11/24T11:00:00Z");
    ASSERT_RFC_BAD("2026-11-24X11:00:00Z");
    ASSERT_RFC_BAD("26-11-24T11:00:00Z");
    ASSERT_RFC_BAD("2026-1-24T11:00:00Z");
    ASSERT_RFC_BAD("+026-11-24T11:00:00Z");
    ASSERT_RFC_BAD("2026-11-24T11:00:00Z "); /* trailing space */
    ASSERT_RFC_BAD(" 2026-11-24T11:00:00Z");
    ASSERT_RFC_BAD("2026-11-24T11:00:00ZZ");
    ASSERT_RFC_BAD("1795518000123");
    /* The length is what was passed, not strlen: a cut-off string is rejected. */
    int64_t ms;
    ASSERT(!wh_parse_rfc3339("2026-11-24T11:00:00Z", 19, &ms));
}

/* ---- durations ---------------------------------------------------------------- */

TEST(duration_units)
{
    ASSERT_DUR("10s", 10000);
    ASSERT_DUR("5m", 300000);
    ASSERT_DUR("1h", 3600000);
    ASSERT_DUR("7d", 7LL * 86400000);
    ASSERT_DUR("250ms", 250);
    ASSERT_DUR("2w", 2LL * 7 * 86400000);
    ASSERT_DUR("0s", 0);
    ASSERT_DUR("90s", 90000);
}

TEST(duration_combined)
{
    ASSERT_DUR("1h30m", 5400000);
    ASSERT_DUR("1d12h", 36LL * 3600000);
    ASSERT_DUR("1m30s500ms", 90500);
    ASSERT_DUR("1w1d1h1m1s1ms", 604800000LL + 86400000 + 3600000 + 60000 + 1000 + 1);
}

TEST(duration_rejects)
{
    ASSERT_DUR_BAD("");
    ASSERT_DUR_BAD("10");  /* no unit */
    ASSERT_DUR_BAD("m");   /* no number */
    ASSERT_DUR_BAD("10x"); /* unknown unit */
    ASSERT_DUR_BAD("-5s"); /* negative */
    ASSERT_DUR_BAD("+5s");
    ASSERT_DUR_BAD("5 s");
    ASSERT_DUR_BAD(" 5s");
    ASSERT_DUR_BAD("5s ");
    ASSERT_DUR_BAD("1.5h");
    ASSERT_DUR_BAD("5S"); /* units are lowercase */
    ASSERT_DUR_BAD("5sec");
    ASSERT_DUR_BAD("1h30");
}

TEST(duration_overflow_rejected)
{
    /* 1099511627775 weeks (just under the parser's 2^40 cap on one number) is ~6.6e20 ms,
     * which does not fit in int64: it must be rejected, not wrapped. */
    ASSERT_DUR_BAD("1099511627775w");
    ASSERT_DUR_BAD("99999999999999999999s");
}

/* ---- JSON string escaping ------------------------------------------------------- */

TEST(json_str_plain_and_empty)
{
    ASSERT_STR(json_str("", 0), "\"\"");
    ASSERT_STR(json_str("hello chat", 10), "\"hello chat\"");
    ASSERT_STR(json_str("a/b", 3), "\"a/b\""); /* '/' need not be escaped */
}

TEST(json_str_quotes_and_backslash)
{
    ASSERT_STR(json_str("say \"hi\"", 8), "\"say \\\"hi\\\"\"");
    ASSERT_STR(json_str("C:\\dir\\", 7), "\"C:\\\\dir\\\\\"");
    ASSERT_STR(json_str("\\\"", 2), "\"\\\\\\\"\"");
}

TEST(json_str_control_chars)
{
    ASSERT_STR(json_str("a\nb\rc\td", 7), "\"a\\nb\\rc\\td\"");
    ASSERT_STR(json_str("\x01", 1), "\"\\u0001\"");
    ASSERT_STR(json_str("\x08\x0c", 2), "\"\\u0008\\u000c\"");
    ASSERT_STR(json_str("\x1f", 1), "\"\\u001f\"");
    ASSERT_STR(json_str("x\0y", 3), "\"x\\u0000y\""); /* NUL inside the slice */
    ASSERT_STR(json_str("\x1b[31m", 5), "\"\\u001b[31m\"");
    /* DEL (0x7F) is not a control character for JSON: it passes. */
    ASSERT_STR(json_str("\x7f", 1), "\"\x7f\"");
}

TEST(json_str_utf8_passes_through)
{
    const char *s = "f\xc3\xbc"
                    "ck \xf0\x9f\x98\x80 \xe2\x80\xa8"; /* fück 😀 U+2028 */
    char expect[64];
    snprintf(expect, sizeof(expect), "\"%s\"", s);
    ASSERT_STR(json_str(s, strlen(s)), expect);
}

TEST(json_str_appends_and_respects_length)
{
    wh_buf b;
    wh_buf_init(&b);
    wh_buf_puts(&b, "{\"t\":");
    wh_buf_json_str(&b, "abcdef", 3); /* only the first 3 bytes */
    wh_buf_putc(&b, '}');
    ASSERT_STR(wh_buf_cstr(&b), "{\"t\":\"abc\"}");
    ASSERT_EQ(b.len, strlen("{\"t\":\"abc\"}"));
    wh_buf_free(&b);
}

TEST(json_str_long_input_grows_buffer)
{
    /* 3000 control bytes escape to 6 bytes each: forces several reallocations. */
    char in[3000];
    memset(in, 0x01, sizeof(in));
    wh_buf b;
    wh_buf_init(&b);
    wh_buf_json_str(&b, in, sizeof(in));
    ASSERT(!b.oom);
    ASSERT_EQ(b.len, 2 + 6 * sizeof(in));
    const char *s = wh_buf_cstr(&b);
    ASSERT_EQ(s[0], '"');
    ASSERT_EQ(s[b.len - 1], '"');
    for (size_t i = 1; i + 1 < b.len; i += 6)
        ASSERT(!memcmp(s + i, "\\u0001", 6));
    wh_buf_free(&b);
}

/* ---- JSON string unescaping ------------------------------------------------------ */

/* Unescapes the JSON string body s; returns the result (static) or NULL with *bad set. */
static const char *unescape(const char *s, size_t *out_n, size_t *bad)
{
    static char out[256];
    size_t n = strlen(s);
    ASSERT(n < sizeof(out));
    *bad = (size_t)-1;
    if (!wh_json_unescape(s, n, out, out_n, bad)) return NULL;
    ASSERT(*out_n <= n); /* escapes never grow */
    out[*out_n] = 0;
    return out;
}

TEST(json_unescape_escapes)
{
    size_t n, bad;
    ASSERT_STR(unescape("plain", &n, &bad), "plain");
    ASSERT_EQ(n, 5);
    ASSERT_STR(unescape("q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f", &n, &bad), "q\"b\\s/n\nr\rt\tb\bf\f");
    ASSERT_STR(unescape("\\u0041\\u00e9\\u20AC", &n, &bad), "A\xc3\xa9\xe2\x82\xac");
    ASSERT_STR(unescape("\\ud83d\\ude00!", &n, &bad), "\xf0\x9f\x98\x80!");
    ASSERT_EQ(n, 5);
    const char *z = unescape("a\\u0000b", &n, &bad); /* NUL is kept, counted in the length */
    ASSERT(z != NULL);
    ASSERT_EQ(n, 3);
    ASSERT(!memcmp(z, "a\0b", 3));
}

TEST(json_unescape_rejects_with_offset)
{
    size_t n, bad;
    ASSERT(unescape("ab\\x", &n, &bad) == NULL);
    ASSERT_EQ(bad, 2); /* the backslash */
    ASSERT(unescape("ab\\", &n, &bad) == NULL);
    ASSERT_EQ(bad, 2);
    ASSERT(unescape("\\u12", &n, &bad) == NULL);
    ASSERT_EQ(bad, 0);
    ASSERT(unescape("\\u12zz", &n, &bad) == NULL);
    ASSERT(unescape("xy\\ud83d", &n, &bad) == NULL); /* lone high surrogate */
    ASSERT_EQ(bad, 2);
    ASSERT(unescape("\\ude00", &n, &bad) == NULL); /* lone low surrogate */
    ASSERT_EQ(bad, 0);
    ASSERT(unescape("\\ud83d\\u0041", &n, &bad) == NULL);
    ASSERT(unescape("\\ud83d\\ud83d", &n, &bad) == NULL);
}

/* ---- buffers ------------------------------------------------------------------ */

TEST(buf_numbers_and_printf)
{
    wh_buf b;
    wh_buf_init(&b);
    wh_buf_u64(&b, 0);
    wh_buf_putc(&b, ' ');
    wh_buf_u64(&b, UINT64_MAX);
    wh_buf_putc(&b, ' ');
    wh_buf_i64(&b, INT64_MIN);
    wh_buf_putc(&b, ' ');
    wh_buf_i64(&b, -42);
    ASSERT_STR(wh_buf_cstr(&b), "0 18446744073709551615 -9223372036854775808 -42");
    wh_buf_free(&b);

    /* printf output longer than its 256-byte stack buffer takes the slow path. */
    wh_buf_init(&b);
    wh_buf_puts(&b, "<");
    wh_buf_printf(&b, "%0300d|%s", 7, "end");
    ASSERT_EQ(b.len, 1 + 300 + 4);
    const char *s = wh_buf_cstr(&b);
    ASSERT_EQ(s[0], '<');
    ASSERT_EQ(s[300], '7');
    ASSERT_STR(s + 301, "|end");
    wh_buf_free(&b);
}

/* ---- arena -------------------------------------------------------------------- */

TEST(arena_alignment)
{
    wh_arena a;
    wh_arena_init(&a, 1024);
    for (size_t n = 1; n < 200; n += 7) {
        char *p = wh_arena_alloc(&a, n);
        ASSERT(p != NULL);
        ASSERT_EQ((uintptr_t)p % 8, 0);
        memset(p, 0xAB, n); /* writable for its full size */
    }
    wh_arena_free(&a);
}

TEST(arena_blocks_do_not_overlap)
{
    wh_arena a;
    wh_arena_init(&a, 256);
    char *blocks[64];
    size_t sizes[64];
    for (int i = 0; i < 64; i++) {
        sizes[i] = (size_t)(i * 13 % 97) + 1; /* some larger than a chunk's remainder */
        blocks[i] = wh_arena_alloc(&a, sizes[i]);
        ASSERT(blocks[i] != NULL);
        memset(blocks[i], i, sizes[i]);
    }
    for (int i = 0; i < 64; i++)
        for (size_t k = 0; k < sizes[i]; k++)
            ASSERT_EQ((unsigned char)blocks[i][k], i);
    wh_arena_free(&a);
}

TEST(arena_reset_reuses_memory)
{
    wh_arena a;
    wh_arena_init(&a, 4096);
    char *first = wh_arena_alloc(&a, 100);
    ASSERT(first != NULL);
    wh_arena_reset(&a);
    /* After a reset the standard-size chunk is reused: the first block comes back. */
    char *again = wh_arena_alloc(&a, 100);
    ASSERT(again == first);
    ASSERT_EQ((uintptr_t)again % 8, 0);
    /* Many resets with the same pattern must not keep growing (same addresses). */
    for (int r = 0; r < 100; r++) {
        wh_arena_reset(&a);
        char *p = wh_arena_alloc(&a, 100);
        ASSERT(p == first);
        char *q = wh_arena_alloc(&a, 3000);
        ASSERT(q != NULL && q != p);
        memset(q, r, 3000);
    }
    wh_arena_free(&a);
}

TEST(arena_oversized_and_strndup)
{
    wh_arena a;
    wh_arena_init(&a, 64);
    char *big = wh_arena_alloc(&a, 10000); /* bigger than a chunk */
    ASSERT(big != NULL);
    memset(big, 'x', 10000);
    char *s = wh_arena_strndup(&a, "hello world", 5);
    ASSERT_STR(s, "hello");
    ASSERT_EQ(big[9999], 'x');
    wh_arena_reset(&a);
    char *t = wh_arena_strndup(&a, "abc", 3);
    ASSERT_STR(t, "abc");
    ASSERT_EQ((uintptr_t)t % 8, 0);
    wh_arena_free(&a);
    /* Freed arenas can be used again. */
    char *u = wh_arena_strndup(&a, "again", 5);
    ASSERT_STR(u, "again");
    wh_arena_free(&a);
}

TEST(arena_default_chunk_size)
{
    wh_arena a;
    wh_arena_init(&a, 0);
    ASSERT(a.chunk_size > 0);
    void *p = wh_arena_alloc(&a, 1);
    ASSERT(p != NULL);
    wh_arena_free(&a);
}

TEST(arena_huge_request_returns_null)
{
    /* "NULL on OOM": a request that cannot be satisfied must fail, not wrap around while
     * rounding up (SIZE_MAX rounds to 0) and hand out a block smaller than asked for. */
    wh_arena a;
    wh_arena_init(&a, 1024);
    void *p = wh_arena_alloc(&a, SIZE_MAX);
    wh_arena_free(&a);
    ASSERT(p == NULL);
}

TEST(arena_huge_request_header_overflow_returns_null)
{
    /* n + the chunk header overflows size_t: malloc must not be asked for a tiny block. */
    wh_arena a;
    wh_arena_init(&a, 1024);
    void *p = wh_arena_alloc(&a, SIZE_MAX - 40);
    wh_arena_free(&a);
    ASSERT(p == NULL);
}

/* ---- Levenshtein -------------------------------------------------------------- */

TEST(levenshtein_known_distances)
{
    ASSERT_EQ(wh_levenshtein("", ""), 0);
    ASSERT_EQ(wh_levenshtein("abc", ""), 3);
    ASSERT_EQ(wh_levenshtein("", "abcd"), 4);
    ASSERT_EQ(wh_levenshtein("same", "same"), 0);
    ASSERT_EQ(wh_levenshtein("kitten", "sitting"), 3);
    ASSERT_EQ(wh_levenshtein("sitting", "kitten"), 3);
    ASSERT_EQ(wh_levenshtein("flaw", "lawn"), 2);
    ASSERT_EQ(wh_levenshtein("words", "wrods"), 2); /* transposition = 2 edits */
    ASSERT_EQ(wh_levenshtein("priority", "priorty"), 1);
    ASSERT_EQ(wh_levenshtein("exempt_roles", "exempt_role"), 1);
    ASSERT_EQ(wh_levenshtein("abc", "xyz"), 3);
}

TEST(levenshtein_long_strings_capped)
{
    char a[100], b[100];
    memset(a, 'a', 70);
    a[70] = 0;
    memset(b, 'a', 70);
    b[70] = 0;
    /* "small strings only": anything too long reports a distance too big to suggest. */
    ASSERT(wh_levenshtein(a, b) >= 64);
    a[63] = 0;
    b[63] = 0;
    b[62] = 'b';
    ASSERT_EQ(wh_levenshtein(a, b), 1); /* 63 characters still computed */
}

/* ---- misc ---------------------------------------------------------------------- */

TEST(status_strings)
{
    ASSERT_STR(wh_status_str(WH_OK), "ok");
    ASSERT_STR(wh_status_str(WH_EUTF8), "invalid UTF-8");
    ASSERT_STR(wh_status_str(WH_ECORRUPT), "stored data does not match the audit trail");
    ASSERT_STR(wh_status_str((wh_status)99), "unknown status");
}

TEST(str_eq)
{
    wh_str s = {"abc", 3};
    ASSERT(WH_STR_EQ_LIT(s, "abc"));
    ASSERT(!WH_STR_EQ_LIT(s, "ab"));
    ASSERT(!WH_STR_EQ_LIT(s, "abd"));
    ASSERT(WH_STR_EQ_LIT(WH_STR_NULL, ""));
}

TEST(hex_round_trip_and_refusals)
{
    uint8_t in[4] = {0x00, 0x9f, 0xa0, 0xff}, out[4];
    char hx[9];
    wh_hex_encode(in, 4, hx);
    ASSERT(!strcmp(hx, "009fa0ff"));
    ASSERT(wh_hex_decode("009FA0ff", 8, out, 4) && !memcmp(in, out, 4));
    ASSERT(!wh_hex_decode("009fa0f", 7, out, 4));   /* too short */
    ASSERT(!wh_hex_decode("009fa0fff", 9, out, 4)); /* too long */
    ASSERT(!wh_hex_decode("009fa0fg", 8, out, 4));  /* not a digit */
}

/* A file of n bytes of c in a temporary folder; its path in buf. */
static void temp_file(char *buf, size_t n, const char *dir, const char *name, size_t bytes)
{
    snprintf(buf, n, "%s/%s", dir, name);
    FILE *f = fopen(buf, "wb");
    if (!f) T_FAIL("cannot create %s", buf);
    for (size_t i = 0; i < bytes; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
}

TEST(read_file_max_reads_regular_files_up_to_the_limit)
{
    char dir[] = "/tmp/whiply-test-XXXXXX", path[256];
    if (!mkdtemp(dir)) T_FAIL("mkdtemp");
    char *p = NULL;
    size_t n = 0;
    temp_file(path, sizeof(path), dir, "small", 10);
    ASSERT_EQ(wh_read_file_max(path, 10, &p, &n), WH_OK); /* exactly the limit */
    ASSERT_EQ(n, 10);
    ASSERT(!strcmp(p, "abcdefghij"));
    free(p);
    ASSERT_EQ(wh_read_file_max(path, 9, &p, &n), WH_ELIMIT);
    temp_file(path, sizeof(path), dir, "big", 100000); /* read in more than one step */
    ASSERT_EQ(wh_read_file_max(path, 100000, &p, &n), WH_OK);
    ASSERT_EQ(n, 100000);
    ASSERT_EQ(p[99999], 'a' + 99999 % 26);
    free(p);
    ASSERT_EQ(wh_read_file_max(path, 99999, &p, &n), WH_ELIMIT);
    char why[64];
    ASSERT(!strcmp(wh_read_file_why(WH_ELIMIT, (size_t)16 << 20, why, sizeof(why)),
                   "larger than the limit of 16 MiB"));
    temp_file(path, sizeof(path), dir, "empty", 0);
    ASSERT_EQ(wh_read_file_max(path, 10, &p, &n), WH_OK);
    ASSERT_EQ(n, 0);
    ASSERT_EQ(p[0], 0);
    free(p);
    /* a file that says 0 bytes and has some (as /proc files do) is still bounded */
    ASSERT_EQ(wh_read_file_max("/proc/self/status", 8, &p, &n), WH_ELIMIT);
    ASSERT_EQ(wh_read_file_max("/proc/self/status", 1 << 20, &p, &n), WH_OK);
    ASSERT(n > 8);
    free(p);
    snprintf(path, sizeof(path), "%s/missing", dir);
    ASSERT_EQ(wh_read_file_max(path, 10, &p, &n), WH_EIO);
    ASSERT(!strcmp(wh_read_file_why(WH_EIO, 10, why, sizeof(why)), "No such file or directory"));
    unlink(path);
    snprintf(path, sizeof(path), "%s/small", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/big", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/empty", dir);
    unlink(path);
    rmdir(dir);
}

TEST(read_file_max_refuses_what_is_not_a_regular_file)
{
    char *p = NULL;
    size_t n = 0;
    char why[64];
    /* a device that never ends, one that is empty, a directory */
    ASSERT_EQ(wh_read_file_max("/dev/urandom", (size_t)16 << 20, &p, &n), WH_EINVAL);
    ASSERT(!strcmp(wh_read_file_why(WH_EINVAL, 1, why, sizeof(why)), "not a regular file"));
    ASSERT_EQ(wh_read_file_max("/dev/null", 10, &p, &n), WH_EINVAL);
    ASSERT_EQ(wh_read_file_max("/tmp", 10, &p, &n), WH_EINVAL);
    /* a FIFO without a writer: refused at once, not waited on */
    char dir[] = "/tmp/whiply-test-XXXXXX", path[256];
    if (!mkdtemp(dir)) T_FAIL("mkdtemp");
    snprintf(path, sizeof(path), "%s/fifo", dir);
    if (mkfifo(path, 0600) != 0) T_FAIL("mkfifo");
    ASSERT_EQ(wh_read_file_max(path, 10, &p, &n), WH_EINVAL);
    unlink(path);
    rmdir(dir);
}
