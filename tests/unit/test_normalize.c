/* test_normalize.c - text/normalize.c: the four views, their offset maps back to raw bytes,
 * and the character features (length, caps, symbols, runs, mentions, links, scripts). */
#include <stdint.h>

#include "base/base.h"
#include "t.h"
#include "text/normalize.h"
#include "text/utf8.h"

/* ---- helpers ---------------------------------------------------------------- */

/* The four documented views (raw, folded, skeleton, squashed); any later ones are internal. */
#define NVIEWS (WH_VIEW_SQUASHED + 1)

static wh_arena arena;
static bool arena_ready;
static wh_text T; /* the text built by the last call to build() */
static const char *raw_in;

/* Builds every view of s (NUL-terminated) into T, checking the invariants every view must
 * keep: valid UTF-8, NUL-terminated, and each byte mapped to a non-empty raw span. */
static void arena_fresh(void)
{
    if (!arena_ready) {
        wh_arena_init(&arena, 0);
        arena_ready = true;
    }
    wh_arena_reset(&arena);
}

static const wh_text *build(const char *s)
{
    arena_fresh();
    raw_in = s;
    uint32_t n = (uint32_t)strlen(s);
    if (wh_text_build(s, n, &arena, &T) != WH_OK) T_FAIL("wh_text_build failed for \"%s\"", s);
    for (int v = 0; v < NVIEWS; v++) {
        const wh_view *w = &T.v[v];
        if (w->s[w->len] != 0) T_FAIL("view %s is not NUL-terminated", wh_view_names[v]);
        if (wh_utf8_invalid_at(w->s, w->len) != (size_t)-1)
            T_FAIL("view %s of \"%s\" is not valid UTF-8", wh_view_names[v], s);
        for (uint32_t k = 0; k < w->len && w->start; k++)
            if (!(w->start[k] < w->end[k] && w->end[k] <= n))
                T_FAIL("view %s byte %u maps to [%u,%u) of %u raw bytes", wh_view_names[v], k,
                       w->start[k], w->end[k], n);
    }
    return &T;
}

static const char *folded(const char *s)
{
    return build(s)->v[WH_VIEW_FOLDED].s;
}
static const char *skel(const char *s)
{
    return build(s)->v[WH_VIEW_SKELETON].s;
}
static const char *squashed(const char *s)
{
    return build(s)->v[WH_VIEW_SQUASHED].s;
}

/* Appends the UTF-8 encoding of cp to buf at *n. */
static void put_cp(char *buf, size_t *n, uint32_t cp)
{
    *n += wh_utf8_encode(cp, buf + *n);
    buf[*n] = 0;
}

/* Spells the lowercase ASCII word with letters from a Unicode alphabet whose 'a' is base
 * (math alphanumerics, fullwidth, circled, ...). Returns a static buffer (4 rotate). */
static const char *fancy(uint32_t base, const char *word)
{
    static char bufs[4][256];
    static int k;
    char *b = bufs[k++ % 4];
    size_t n = 0;
    b[0] = 0;
    for (const char *p = word; *p; p++)
        put_cp(b, &n, base + (uint32_t)(*p - 'a'));
    return b;
}

/* Same, with ASCII text before and after. */
static const char *wrap(const char *pre, const char *mid, const char *post)
{
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ % 4];
    size_t a = strlen(pre), m = strlen(mid), p = strlen(post);
    if (a + m + p >= sizeof(bufs[0])) T_FAIL("wrap: text too long");
    memcpy(b, pre, a);
    memcpy(b + a, mid, m);
    memcpy(b + a + m, post, p + 1);
    return b;
}

/* The raw text behind the first occurrence of needle in view v of T (static buffer). */
static const char *raw_of(wh_view_id v, const char *needle)
{
    static char out[512];
    const wh_view *w = &T.v[v];
    const char *at = strstr(w->s, needle);
    if (!at) T_FAIL("view %s \"%s\" has no \"%s\"", wh_view_names[v], w->s, needle);
    uint32_t from = (uint32_t)(at - w->s), to = from + (uint32_t)strlen(needle), rs, re;
    wh_view_to_raw(w, from, to, &rs, &re);
    if (!(rs < re && re <= strlen(raw_in))) T_FAIL("bad raw span [%u,%u)", rs, re);
    snprintf(out, sizeof(out), "%.*s", (int)(re - rs), raw_in + rs);
    return out;
}

/* True when the space-separated squashed view has tok as one whole token. */
static bool has_token(const char *view, const char *tok)
{
    size_t tl = strlen(tok);
    for (const char *p = view; (p = strstr(p, tok)); p++) {
        bool left = p == view || p[-1] == ' ';
        bool right = p[tl] == 0 || p[tl] == ' ';
        if (left && right) return true;
    }
    return false;
}

#define ASSERT_TOKEN(view, tok)                                                                    \
    do {                                                                                           \
        const char *_v = (view);                                                                   \
        if (!has_token(_v, tok)) T_FAIL("\"%s\" has no token \"%s\"", _v, tok);                    \
    } while (0)

/* Every evasive spelling in the list must squash to contain want. */
#define ASSERT_SQUASHED_ALL(want, ...)                                                             \
    do {                                                                                           \
        const char *_in[] = {__VA_ARGS__};                                                         \
        for (size_t _i = 0; _i < WH_ARRAY_LEN(_in); _i++) {                                        \
            const char *_q = squashed(_in[_i]);                                                    \
            if (!strstr(_q, want))                                                                 \
                T_FAIL("squashed(\"%s\") = \"%s\" lacks \"%s\"", _in[_i], _q, want);               \
        }                                                                                          \
    } while (0)

/* ---- views: basics ----------------------------------------------------------- */

TEST(view_names)
{
    wh_view_id v;
    ASSERT(wh_view_from_name("squashed", 8, &v));
    ASSERT_EQ(v, WH_VIEW_SQUASHED);
    ASSERT(wh_view_from_name("raw", 3, &v));
    ASSERT_EQ(v, WH_VIEW_RAW);
    ASSERT(!wh_view_from_name("squash", 6, &v));
    ASSERT(!wh_view_from_name("RAW", 3, &v));
}

TEST(ascii_views)
{
    build("Hello World");
    ASSERT(T.ascii);
    ASSERT_STR(T.v[WH_VIEW_RAW].s, "Hello World");
    ASSERT_STR(T.v[WH_VIEW_FOLDED].s, "hello world");
    ASSERT_STR(T.v[WH_VIEW_SKELETON].s, "hello world");
    ASSERT_STR(T.v[WH_VIEW_SQUASHED].s, "hello world");
}

TEST(empty_text)
{
    build("");
    for (int v = 0; v < NVIEWS; v++)
        ASSERT_EQ(T.v[v].len, 0);
    ASSERT_EQ(T.f.length, 0);
    ASSERT_EQ(T.f.nlinks, 0);
}

TEST(squashed_punctuation_becomes_spaces)
{
    ASSERT_STR(squashed("kill-yourself now!"), "kill yourself now ");
    ASSERT_STR(squashed("a,b"), "a b");
}

/* ---- leetspeak ------------------------------------------------------------------ */

TEST(leet_mapped_in_skeleton)
{
    ASSERT_STR(skel("h4x0r"), "haxor");
    ASSERT_STR(skel("sh!t"), "shit");
    ASSERT_STR(skel("a$$"), "ass");
    ASSERT_STR(skel("$hit"), "shit");
    ASSERT_STR(skel("b00b"), "boob");
    ASSERT_STR(skel("l33t"), "leet");
    ASSERT_STR(skel("em@il"), "email");
    ASSERT_SQUASHED_ALL("haxor", "h4x0r", "H4X0R", "you h4x0r!");
    ASSERT_SQUASHED_ALL("shit", "sh!t", "$hit", "SH!T", "$h!t", "5hit");
    ASSERT_SQUASHED_ALL("ass", "a$$", "A$$");
    ASSERT_SQUASHED_ALL("boob", "b00b", "B00B");
}

TEST(leet_not_applied_to_numbers_and_symbols)
{
    ASSERT_STR(skel("2024"), "2024");
    ASSERT_STR(skel("$50"), "$50");
    ASSERT_STR(skel(":)"), ":)");
    ASSERT_STR(skel("10:30"), "10:30");
    ASSERT_STR(skel("it costs $50 at 10:30 in 2024 :)"), "it costs $50 at 10:30 in 2024 :)");
    ASSERT_STR(skel("wow!!"), "wow!!"); /* '!' after the last letter is punctuation */
}

TEST(leet_keeps_mention_at)
{
    ASSERT_STR(skel("@bob"), "@bob");
    ASSERT_STR(skel("hi @bob!"), "hi @bob!");
    ASSERT_TOKEN(squashed("hi @bob"), "bob");
}

/* ---- homoglyphs and fancy fonts ---------------------------------------------------- */

TEST(cyrillic_homoglyphs)
{
    /* с р а е о (Cyrillic) inside Latin words */
    ASSERT_SQUASHED_ALL("crap", "\xd1\x81rap", "cr\xd0\xb0p", "\xd1\x81r\xd0\xb0\xd1\x80");
    ASSERT_SQUASHED_ALL("peace", "\xd1\x80\xd0\xb5\xd0\xb0\xd1\x81\xd0\xb5"); /* all Cyrillic */
    ASSERT_SQUASHED_ALL("porn", "p\xd0\xbern", "\xd0\xa0\xd0\x9ern"); /* о, Р О capitals */
}

TEST(greek_capitals)
{
    /* Ν Α Ζ Ι and Β Ο Μ Β: capitals that look Latin (the lowercase forms do not). */
    ASSERT_SQUASHED_ALL("nazi", "\xce\x9d\xce\x91\xce\x96\xce\x99");
    ASSERT_SQUASHED_ALL("bomb", "\xce\x92\xce\x9f\xce\x9c\xce\x92");
    ASSERT_SQUASHED_ALL("hot", "\xce\x97\xce\x9f\xce\xa4"); /* Η Ο Τ: eta looks like H */
}

TEST(math_alphanumeric_fonts)
{
    ASSERT_SQUASHED_ALL("fuck", fancy(0x1D41A, "fuck"), /* bold */
                        fancy(0x1D44E, "fuck"),         /* italic */
                        fancy(0x1D482, "fuck"),         /* bold italic */
                        fancy(0x1D4B6, "fuck"),         /* script */
                        fancy(0x1D4EA, "fuck"),         /* bold script */
                        fancy(0x1D51E, "fuck"),         /* fraktur */
                        fancy(0x1D552, "fuck"),         /* double-struck */
                        fancy(0x1D5BA, "fuck"),         /* sans-serif */
                        fancy(0x1D5EE, "fuck"),         /* sans-serif bold */
                        fancy(0x1D68A, "fuck"));        /* monospace */
    /* capitals too */
    ASSERT_SQUASHED_ALL("fuck", fancy(0x1D400, "fuck"), fancy(0x1D670, "fuck"));
}

TEST(fullwidth_circled_parenthesized)
{
    ASSERT_SQUASHED_ALL("fuck", fancy(0xFF41, "fuck"), /* ｆｕｃｋ */
                        fancy(0xFF21, "fuck"),         /* ＦＵＣＫ */
                        fancy(0x24D0, "fuck"),         /* ⓕⓤⓒⓚ */
                        fancy(0x24B6, "fuck"),         /* ⒻⓊⒸⓀ */
                        fancy(0x249C, "fuck"));        /* ⒡⒰⒞⒦ */
}

TEST(negative_and_squared_letters)
{
    ASSERT_SQUASHED_ALL("fuck", fancy(0x1F130, "fuck"), /* squared 🄵 */
                        fancy(0x1F150, "fuck"),         /* negative circled 🅕 */
                        fancy(0x1F170, "fuck"));        /* negative squared 🅵 */
}

TEST(regional_indicators)
{
    ASSERT_SQUASHED_ALL("fuck", "\xf0\x9f\x87\xab\xf0\x9f\x87\xba\xf0\x9f\x87\xa8\xf0\x9f\x87\xb0");
    ASSERT_SQUASHED_ALL("fuck", fancy(0x1F1E6, "fuck"));
}

TEST(small_capitals)
{
    /* ꜰ ᴜ ᴄ ᴋ */
    ASSERT_SQUASHED_ALL("fuck", "\xea\x9c\xb0\xe1\xb4\x9c\xe1\xb4\x84\xe1\xb4\x8b");
}

TEST(mixed_scripts_and_fonts)
{
    /* 𝐟 + small capital ᴜ + Cyrillic с + ｋ */
    char b[64];
    size_t n = 0;
    b[0] = 0;
    put_cp(b, &n, 0x1D41F);
    put_cp(b, &n, 0x1D1C);
    put_cp(b, &n, 0x0441);
    put_cp(b, &n, 0xFF4B);
    ASSERT_SQUASHED_ALL("fuck", b);
}

TEST(folded_view_is_nfkc)
{
    /* The folded view is "NFKC + case fold": compatibility characters fold to ASCII there
     * already (regexes default to this view, and links are found in it). Every case is
     * tried; the failure lists those that did not fold. */
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"\xef\xbc\xa6\xef\xbc\xb5\xef\xbc\xa3\xef\xbc\xab", "fuck"}, /* ＦＵＣＫ */
        {"\xf0\x9d\x90\x9f\xf0\x9d\x90\xae", "fu"},                   /* math bold 𝐟𝐮 */
        {"\xe2\x93\x95\xe2\x93\xa4", "fu"},                           /* circled ⓕⓤ */
        {"x\xc2\xb2", "x2"},                                          /* superscript two */
        {"a\xef\xbc\x8e"
         "b",
         "a.b"},                    /* fullwidth full stop */
        {"\xe2\x91\xa1", "2"},      /* circled digit two */
        {"\xef\xac\x81ne", "fine"}, /* ﬁ ligature */
        {"\xe2\x84\x8c", "h"},      /* ℌ black-letter H */
    };
    char bad[600] = "";
    size_t n = 0;
    for (size_t i = 0; i < WH_ARRAY_LEN(cases) && n < sizeof(bad); i++) {
        const char *f = folded(cases[i].in);
        if (strcmp(f, cases[i].want))
            n += (size_t)snprintf(bad + n, sizeof(bad) - n, " [%s -> \"%s\", want \"%s\"]",
                                  cases[i].in, f, cases[i].want);
    }
    if (bad[0]) T_FAIL("not NFKC-folded:%s", bad);
}

/* ---- accents --------------------------------------------------------------------------- */

TEST(accents_removed)
{
    ASSERT_SQUASHED_ALL("fuck",
                        "f\xc3\xbc"
                        "ck",
                        "F\xc3\x9c"
                        "CK",
                        "fu\xcc\x88"
                        "ck", /* ü / Ü / u+U+0308 */
                        "f\xc5\xaf"
                        "ck"); /* ů */
    ASSERT_STR(skel("fa\xc3\xa7"
                    "ade"),
               "facade");                                                           /* façade */
    ASSERT_STR(skel("\xc3\xa0\xc3\xa9\xc3\xae\xc3\xb5\xc3\xbc\xc3\xb1"), "aeioun"); /* àéîõüñ */
    /* folded keeps the accent (only case and compatibility are folded) */
    ASSERT_STR(folded("F\xc3\x9c"
                      "CK"),
               "f\xc3\xbc"
               "ck");
}

/* ---- zero-width and format characters ------------------------------------------------------ */

TEST(zero_width_removed)
{
    ASSERT_SQUASHED_ALL("fuck",
                        "fu\xe2\x80\x8b"
                        "ck", /* U+200B */
                        "f\xe2\x80\x8cu\xe2\x80\x8c"
                        "ck", /* U+200C */
                        "fu\xe2\x80\x8d"
                        "ck",               /* U+200D */
                        "f\xe2\x81\xa0uck", /* U+2060 */
                        "\xef\xbb\xbf"
                        "fu\xef\xbb\xbf"
                        "ck", /* U+FEFF */
                        "fu\xc2\xad"
                        "ck"); /* soft hyphen U+00AD */
    ASSERT_STR(folded("fu\xe2\x80\x8b"
                      "ck"),
               "fuck");
    ASSERT_STR(skel("f\xe2\x80\x8bu\xe2\x80\x8c"
                    "c\xe2\x80\x8dk"),
               "fuck");
    ASSERT_TOKEN(squashed("you fu\xc2\xad"
                          "ck"),
                 "fuck"); /* one word, not "fu ck" */
}

/* ---- zalgo ---------------------------------------------------------------------------------- */

/* The word with `marks` combining marks (cycling U+0300..U+036F) after each letter. */
static const char *zalgo(const char *word, int marks)
{
    static char buf[4096];
    size_t n = 0;
    buf[0] = 0;
    uint32_t m = 0x300;
    for (const char *p = word; *p; p++) {
        buf[n++] = *p;
        buf[n] = 0;
        for (int k = 0; k < marks; k++) {
            put_cp(buf, &n, m);
            m = m == 0x36F ? 0x300 : m + 1;
        }
    }
    return buf;
}

TEST(zalgo_marks_dropped_and_counted)
{
    build(zalgo("fuck", 5));
    ASSERT_STR(T.v[WH_VIEW_SKELETON].s, "fuck");
    ASSERT_STR(T.v[WH_VIEW_SQUASHED].s, "fuck");
    ASSERT_EQ(T.f.marks, 20);
    ASSERT_EQ(T.f.length, 24); /* 4 letters + 20 marks */
    ASSERT_EQ(T.f.letters, 4);
}

TEST(zalgo_heavy)
{
    /* More marks on one letter than the folding cluster keeps (32). */
    build(zalgo("fuck", 50));
    ASSERT_STR(T.v[WH_VIEW_SKELETON].s, "fuck");
    ASSERT_EQ(T.f.marks, 200);
    ASSERT_EQ(T.f.length, 204);
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "fuck"), zalgo("fuck", 50)); /* marks included */
}

TEST(zalgo_on_non_ascii_letters)
{
    /* ｆ ü ç ｋ each under 3 marks */
    char b[256];
    size_t n = 0;
    b[0] = 0;
    uint32_t letters[] = {0xFF46, 0xFC, 0xE7, 0xFF4B};
    for (int i = 0; i < 4; i++) {
        put_cp(b, &n, letters[i]);
        put_cp(b, &n, 0x0334);
        put_cp(b, &n, 0x0358);
        put_cp(b, &n, 0x0489); /* an enclosing mark (Me) */
    }
    build(b);
    ASSERT_STR(T.v[WH_VIEW_SKELETON].s, "fuck");
    ASSERT_EQ(T.f.marks, 12);
}

/* ---- spaced-out letters ---------------------------------------------------------------------- */

TEST(spaced_letters_joined)
{
    ASSERT_STR(squashed("f u c k"), "fuck");
    ASSERT_STR(squashed("f.u.c.k"), "fuck");
    ASSERT_STR(squashed("f-u-c-k"), "fuck");
    ASSERT_STR(squashed("f _ u _ c _ k"), "fuck");
    ASSERT_STR(squashed("F U C K"), "fuck");
    ASSERT_TOKEN(squashed("you f u c k off"), "fuck");
    ASSERT_TOKEN(squashed("s h 1 t"), "shit"); /* leet digits inside a spelled word */
}

TEST(spaced_letters_not_joined)
{
    ASSERT_STR(squashed("a b"), "a b"); /* only two single letters */
    ASSERT_STR(squashed("plan a b or c"), "plan a b or c");
    ASSERT_STR(squashed("1 2 3 4"), "1 2 3 4"); /* no letters: numbers stay apart */
    ASSERT_STR(squashed("f    u    c    k"), "f    u    c    k"); /* too far apart */
    ASSERT_STR(squashed("f u\nc k"), "f u c k");                  /* not across lines */
}

TEST(real_words_never_joined)
{
    const char *q = squashed("I will pass. Hit me");
    ASSERT_NOT_CONTAINS(q, "passhit");
    ASSERT_NOT_CONTAINS(q, "pass hit"); /* the '.' becomes a space of its own */
    ASSERT_TOKEN(q, "pass");
    ASSERT_TOKEN(q, "hit");
    ASSERT_TOKEN(q, "will");
    ASSERT_STR(squashed("the big cat sat on a mat"), "the big cat sat on a mat");
    ASSERT_STR(squashed("go to be me"), "go to be me");
    /* A single letter next to a spelled-out word stays its own word. */
    q = squashed("a c.u.n.t");
    ASSERT_TOKEN(q, "a");
    ASSERT_TOKEN(q, "cunt");
}

/* ---- stretched letters ---------------------------------------------------------------------- */

TEST(stretched_letters_kept)
{
    /* Matching handles repeats; the view itself keeps them. */
    build("fuuuuck");
    ASSERT_STR(T.v[WH_VIEW_SQUASHED].s, "fuuuuck");
    ASSERT_EQ(T.f.max_run, 4);
    ASSERT_STR(squashed("FUUUUCKKKK"), "fuuuuckkkk");
}

TEST(ascii_and_unicode_paths_agree)
{
    /* Pure ASCII takes a fast path; the same text after a non-ASCII character takes the
     * general one. Both must give the same views and counts for the ASCII part. */
    static const char *const texts[] = {
        "Sh!T h4x0r a$$ $hit b00b", "f u c k and f.u.c.k", "it costs $50 at 10:30 in 2024 :)",
        "wow!! @bob STOP",          "I will pass. Hit me", "fuuuuck!!!!",
    };
    char fast[4][256];
    wh_features ff;
    for (size_t i = 0; i < WH_ARRAY_LEN(texts); i++) {
        build(texts[i]);
        ASSERT(T.ascii);
        for (int v = 1; v < NVIEWS; v++)
            snprintf(fast[v], sizeof(fast[v]), "%s", T.v[v].s);
        ff = T.f;
        char slow_in[300];
        snprintf(slow_in, sizeof(slow_in), "%s \xc3\xa9", texts[i]); /* + " é" */
        build(slow_in);
        ASSERT(!T.ascii);
        for (int v = 1; v < NVIEWS; v++) {
            /* the text itself; alternate readings after it (a newline) copy the whole text
             * in some cases, the appended letter with it */
            char want[300], got[300];
            int fl = (int)strcspn(fast[v], "\n"), gl = (int)strcspn(T.v[v].s, "\n");
            if (fast[v][fl]) /* "text \n copy": the space before the newline is the copy's */
                while (fl && fast[v][fl - 1] == ' ')
                    fl--;
            if (T.v[v].s[gl])
                while (gl && T.v[v].s[gl - 1] == ' ')
                    gl--;
            snprintf(want, sizeof(want), "%.*s %s", fl, fast[v],
                     v == WH_VIEW_FOLDED ? "\xc3\xa9" : "e");
            snprintf(got, sizeof(got), "%.*s", gl, T.v[v].s);
            if (strcmp(got, want))
                T_FAIL("%s view: \"%s\" (ASCII) vs \"%s\" (general)", wh_view_names[v], fast[v],
                       T.v[v].s);
        }
        ASSERT_EQ(T.f.length, ff.length + 2);
        ASSERT_EQ(T.f.letters, ff.letters + 1);
        ASSERT_EQ(T.f.upper, ff.upper);
        ASSERT_EQ(T.f.symbols, ff.symbols);
        ASSERT_EQ(T.f.digits, ff.digits);
        ASSERT_EQ(T.f.spaces, ff.spaces + 1);
        ASSERT_EQ(T.f.max_run, ff.max_run);
        ASSERT_EQ(T.f.mentions, ff.mentions);
    }
}

/* ---- offset maps --------------------------------------------------------------------------------
 */

TEST(offsets_identity_for_plain_ascii)
{
    build("hello there");
    ASSERT(T.v[WH_VIEW_SQUASHED].start == NULL); /* aligned: identity map */
    uint32_t rs, re;
    wh_view_to_raw(&T.v[WH_VIEW_SQUASHED], 6, 11, &rs, &re);
    ASSERT_EQ(rs, 6);
    ASSERT_EQ(re, 11);
}

TEST(offsets_spaced_ascii)
{
    build("hey f.u.c.k you");
    ASSERT_STR(T.v[WH_VIEW_SQUASHED].s, "hey fuck you");
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "fuck"), "f.u.c.k");
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "you"), "you");
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "hey"), "hey");
}

TEST(offsets_non_ascii_evasions)
{
    static const char *const evasive[] = {
        "f\xc3\xbc"
        "ck", /* fück */
        "fu\xe2\x80\x8b"
        "ck",                                                               /* zero-width space */
        "\xea\x9c\xb0\xe1\xb4\x9c\xe1\xb4\x84\xe1\xb4\x8b",                 /* small capitals */
        "\xf0\x9f\x87\xab\xf0\x9f\x87\xba\xf0\x9f\x87\xa8\xf0\x9f\x87\xb0", /* 🇫🇺🇨🇰 */
    };
    for (size_t i = 0; i < WH_ARRAY_LEN(evasive); i++) {
        build(wrap("so ", evasive[i], " lol \xf0\x9f\x98\x80"));
        ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "fuck"), evasive[i]);
        ASSERT_STR(raw_of(WH_VIEW_SKELETON, "fuck"), evasive[i]);
        ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "lol"), "lol");
    }
    const char *bold = fancy(0x1D41A, "fuck");
    build(wrap("\xc3\xa9 ", bold, "!"));
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "fuck"), bold);
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "uc"), fancy(0x1D41A, "uc")); /* inner span */
}

TEST(offsets_spaced_fancy)
{
    /* ｆ ｕ ｃ ｋ (fullwidth letters, ASCII spaces) after a non-ASCII word */
    char mid[64];
    snprintf(mid, sizeof(mid), "%s %s %s %s", fancy(0xFF41, "f"), fancy(0xFF41, "u"),
             fancy(0xFF41, "c"), fancy(0xFF41, "k"));
    build(wrap("caf\xc3\xa9 ", mid, " ok"));
    ASSERT_TOKEN(T.v[WH_VIEW_SQUASHED].s, "fuck");
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "fuck"), mid);
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "cafe"), "caf\xc3\xa9");
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "ok"), "ok");
}

TEST(offsets_cyrillic_and_zalgo)
{
    const char *cyr = "\xd1\x81r\xd0\xb0\xd1\x80"; /* сrар */
    build(wrap("what ", cyr, " is this"));
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "crap"), cyr);
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "this"), "this");
    char z[512];
    snprintf(z, sizeof(z), "%s", zalgo("fuck", 3));
    build(wrap("oh ", z, " no"));
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "fuck"), z);
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "no"), "no");
}

TEST(view_to_raw_clamps)
{
    build("f\xc3\xbc"
          "ck");
    const wh_view *q = &T.v[WH_VIEW_SQUASHED];
    uint32_t rs, re;
    wh_view_to_raw(q, 0, 100, &rs, &re); /* past the end: clamped */
    ASSERT_EQ(rs, 0);
    ASSERT_EQ(re, 5);
    wh_view_to_raw(q, 1, 2, &rs, &re); /* the 'u' is the two bytes of 'ü' */
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(re, 3);
}

/* ---- features
 * ------------------------------------------------------------------------------------ */

TEST(features_length_counts_code_points)
{
    build("h\xc3\xa9llo \xf0\x9f\x98\x80"); /* héllo 😀 */
    ASSERT_EQ(T.f.length, 7);
    ASSERT_EQ(T.f.letters, 5);
    ASSERT_EQ(T.f.spaces, 1);
    build("abc");
    ASSERT_EQ(T.f.length, 3);
    build("\xe4\xb8\xad\xe6\x96\x87"); /* 中文 */
    ASSERT_EQ(T.f.length, 2);
    ASSERT_EQ(T.f.letters, 2);
}

TEST(features_caps)
{
    build("HeLLo world");
    ASSERT_EQ(T.f.letters, 10);
    ASSERT_EQ(T.f.upper, 3);
    build("STOP SPAMMING");
    ASSERT_EQ(T.f.letters, 12);
    ASSERT_EQ(T.f.upper, 12);
    build("\xc3\x80\xc3\x89t\xc3\xa9"); /* ÀÉté */
    ASSERT_EQ(T.f.letters, 4);
    ASSERT_EQ(T.f.upper, 2);
    build("123 !!");
    ASSERT_EQ(T.f.letters, 0);
    ASSERT_EQ(T.f.upper, 0);
}

TEST(features_symbols_digits_spaces)
{
    build("hi!!! :) 42");
    ASSERT_EQ(T.f.length, 11);
    ASSERT_EQ(T.f.letters, 2);
    ASSERT_EQ(T.f.symbols, 5);
    ASSERT_EQ(T.f.digits, 2);
    ASSERT_EQ(T.f.spaces, 2);
    build("\xe2\x82\xac\xe2\x80\x94\xc2\xa0x"); /* € — NBSP x */
    ASSERT_EQ(T.f.length, 4);
    ASSERT_EQ(T.f.symbols, 2);
    ASSERT_EQ(T.f.spaces, 1);
    ASSERT_EQ(T.f.letters, 1);
}

TEST(features_max_run)
{
    build("fuuuuck");
    ASSERT_EQ(T.f.max_run, 4);
    build("hello!!!!!!");
    ASSERT_EQ(T.f.max_run, 6);
    build("abc");
    ASSERT_EQ(T.f.max_run, 1);
    build("\xd0\xb0\xd0\xb0\xd0\xb0\xd0\xb0\xd0\xb0 aa"); /* ааааа (Cyrillic) */
    ASSERT_EQ(T.f.max_run, 5);
    build("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"); /* 😀😀😀 */
    ASSERT_EQ(T.f.max_run, 3);
}

TEST(features_mentions)
{
    build("@bob hi @alice_2 and @ nobody, mail me at me@example.com");
    ASSERT_EQ(T.f.mentions, 2);
    build("no mentions here");
    ASSERT_EQ(T.f.mentions, 0);
    build("\xc3\xa9 @bob"); /* the non-ASCII path */
    ASSERT_EQ(T.f.mentions, 1);
}

TEST(features_non_latin)
{
    build("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 hi"); /* привет hi */
    ASSERT_EQ(T.f.letters, 8);
    ASSERT_EQ(T.f.non_latin, 6);
    build("caf\xc3\xa9 na\xc3\xafve"); /* Latin with accents */
    ASSERT_EQ(T.f.non_latin, 0);
    build(fancy(0x1D41A, "bold")); /* math bold is Latin */
    ASSERT_EQ(T.f.letters, 4);
    ASSERT_EQ(T.f.non_latin, 0);
    build("\xce\x9d\xce\x91\xce\x96\xce\x99"); /* ΝΑΖΙ (Greek) */
    ASSERT_EQ(T.f.non_latin, 4);
}

/* ---- links
 * ----------------------------------------------------------------------------------------- */

/* Host of link i as a string (static). */
static const char *host(uint32_t i)
{
    static char out[256];
    if (i >= T.f.nlinks || i >= WH_MAX_LINKS) T_FAIL("no link %u (found %u)", i, T.f.nlinks);
    snprintf(out, sizeof(out), "%.*s", (int)T.f.links[i].host.n, T.f.links[i].host.p);
    return out;
}

/* Raw text of link i (static). */
static const char *link_raw(uint32_t i)
{
    static char out[256];
    host(i);
    const wh_link *l = &T.f.links[i];
    snprintf(out, sizeof(out), "%.*s", (int)(l->end - l->start), raw_in + l->start);
    return out;
}

TEST(links_schemes)
{
    build("see https://example.com/path?q=1 and http://foo.org");
    ASSERT_EQ(T.f.nlinks, 2);
    ASSERT_STR(host(0), "example.com");
    ASSERT_STR(link_raw(0), "https://example.com/path?q=1");
    ASSERT_STR(host(1), "foo.org");
    ASSERT_STR(link_raw(1), "http://foo.org");
}

TEST(links_www_and_bare_domains)
{
    build("go to www.example.net now");
    ASSERT_EQ(T.f.nlinks, 1);
    ASSERT_STR(link_raw(0), "www.example.net");
    build("free nitro at bit.ly/x and free-nitro.gift!");
    ASSERT_EQ(T.f.nlinks, 2);
    ASSERT_STR(host(0), "bit.ly");
    ASSERT_STR(link_raw(0), "bit.ly/x");
    ASSERT_STR(host(1), "free-nitro.gift");
}

TEST(links_host_lowercased_subdomain_kept)
{
    build("HTTPS://Clips.Twitch.TV/AbC");
    ASSERT_EQ(T.f.nlinks, 1);
    ASSERT_STR(host(0), "clips.twitch.tv");
    ASSERT_STR(link_raw(0), "HTTPS://Clips.Twitch.TV/AbC"); /* raw keeps its case */
}

TEST(links_fullwidth_dot)
{
    /* bit．ly/x with a fullwidth full stop (U+FF0E), then fullwidth letters too */
    const char *l = "bit\xef\xbc\x8ely/x";
    build(wrap("click ", l, " now"));
    ASSERT_EQ(T.f.nlinks, 1);
    ASSERT_STR(host(0), "bit.ly");
    ASSERT_STR(link_raw(0), l);
    char fw[64];
    snprintf(fw, sizeof(fw), "%s\xef\xbc\x8e%s", fancy(0xFF41, "scam"), fancy(0xFF41, "ru"));
    build(wrap("visit ", fw, ""));
    ASSERT_EQ(T.f.nlinks, 1);
    ASSERT_STR(host(0), "scam.ru");
    ASSERT_STR(link_raw(0), fw);
}

TEST(links_not_numbers_or_abbreviations)
{
    static const char *const not_links[] = {
        "pi is 3.14", "e.g. this",      "i.e. that",   "version 1.2.3 is out",
        "v2.0 soon",  "node.js rocks",  "wait...what", "ok.",
        "a.b",        "me@example.com",
    };
    for (size_t i = 0; i < WH_ARRAY_LEN(not_links); i++) {
        build(not_links[i]);
        if (T.f.nlinks)
            T_FAIL("\"%s\" has %u links (first: %s)", not_links[i], T.f.nlinks, host(0));
    }
}

TEST(links_many_counted)
{
    char buf[1024];
    size_t n = 0;
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "s%d.com ", i);
    build(buf);
    ASSERT_EQ(T.f.nlinks, 20); /* all counted, WH_MAX_LINKS kept */
    ASSERT_STR(host(WH_MAX_LINKS - 1), "s15.com");
}

/* ---- terms
 * ------------------------------------------------------------------------------------------ */

TEST(normalize_term)
{
    uint32_t n = 0;
    arena_fresh();
    const char *t = wh_normalize_term("Sh!T", 4, WH_VIEW_SQUASHED, &arena, &n);
    ASSERT_STR(t, "shit");
    ASSERT_EQ(n, 4);
    ASSERT_STR(wh_normalize_term("Sh!T", 4, WH_VIEW_SKELETON, &arena, &n), "shit");
    ASSERT_STR(wh_normalize_term("Sh!T", 4, WH_VIEW_FOLDED, &arena, &n), "sh!t");
    t = wh_normalize_term("kill-yourself", 13, WH_VIEW_SQUASHED, &arena, &n);
    ASSERT_STR(t, "kill yourself");
    t = wh_normalize_term("f\xc3\xbc"
                          "ck",
                          5, WH_VIEW_SQUASHED, &arena, &n);
    ASSERT_STR(t, "fuck");
    ASSERT(wh_normalize_term("\xff", 1, WH_VIEW_SQUASHED, &arena, &n) == NULL); /* invalid UTF-8 */
}

/* ---- issue 15: evasions with two readings, look-alikes, label dots ---------------------- */

/* The squashed view holds the text, then " \n " and each alternate reading: a token of any
 * reading counts, and it maps back to the raw bytes it came from. */
#define ASSERT_NO_TOKEN(view, tok)                                                                 \
    do {                                                                                           \
        const char *_v = (view);                                                                   \
        if (has_token(_v, tok)) T_FAIL("\"%s\" has the token \"%s\"", _v, tok);                    \
    } while (0)

TEST(pipe_reads_as_i)
{
    ASSERT_STR(skel("sh|t"), "shit");
    ASSERT_STR(skel("b|tch"), "bitch");
    ASSERT_STR(skel("K|LL"), "kill"); /* a term's 'l' matches 'i' (matcher.c) */
    ASSERT_STR(skel("a || b"), "a || b");
    ASSERT_STR(skel("wow|"), "wow|");
}

TEST(leet_symbols_as_separators)
{
    static const char *const seps[] = {"|", "+", "$", "@", "!"};
    static const char *const words[] = {"fuck", "shit", "cunt", "whore", "bastard", "dildo"};
    for (size_t s = 0; s < WH_ARRAY_LEN(seps); s++) {
        for (size_t w = 0; w < WH_ARRAY_LEN(words); w++) {
            char in[64] = "";
            for (const char *p = words[w]; *p; p++) {
                size_t k = strlen(in);
                in[k] = *p;
                in[k + 1] = 0;
                if (p[1]) strcat(in, seps[s]);
            }
            ASSERT_TOKEN(squashed(in), words[w]);
            ASSERT_STR(raw_of(WH_VIEW_SQUASHED, words[w]), in); /* the span is the raw word */
        }
    }
    ASSERT(strstr(squashed("blow+job"), "blow job"));
    ASSERT(strstr(squashed("BLOW|JOB now"), "blow job"));
    ASSERT_TOKEN(squashed("sh!t"), "shit"); /* the leet reading stays */
    /* no symbol among letters: no second reading */
    ASSERT(!strchr(squashed("$50 at 10:30 wow!!"), '\n'));
}

TEST(mixed_separators_join)
{
    ASSERT_TOKEN(squashed("a/n_a.l"), "anal");
    ASSERT_TOKEN(squashed("f-u.c_k"), "fuck");
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "fuck"), "f-u.c_k");
    ASSERT_TOKEN(squashed("so s.h-i_t"), "shit");
    /* a space is not a dot: "a c.u.n.t" keeps the article apart */
    ASSERT_TOKEN(squashed("a c.u.n.t"), "cunt");
    ASSERT_TOKEN(squashed("a c.u.n.t"), "a");
    ASSERT_STR(squashed("U.S.A."), "usa ");
}

TEST(spaced_letters_beside_words)
{
    static const char *const tpl[] = {
        "I can't %s this up", "plan B %s it", "%s 3 times",  "you are a %s", "I %s hate it",
        "don't %s with me",   "%s u",         "I'm %s done", "ok %s 2",
    };
    static const char *const words[] = {"fuck", "shit", "cunt", "bitch", "whore", "slut"};
    for (size_t w = 0; w < WH_ARRAY_LEN(words); w++) {
        char spaced[32] = "";
        for (const char *p = words[w]; *p; p++) {
            size_t k = strlen(spaced);
            spaced[k] = *p;
            spaced[k + 1] = p[1] ? ' ' : 0;
            spaced[k + 2] = 0;
        }
        for (size_t t = 0; t < WH_ARRAY_LEN(tpl); t++) {
            char in[96];
            snprintf(in, sizeof(in), tpl[t], spaced);
            ASSERT_TOKEN(squashed(in), words[w]);
        }
    }
    /* the star Spica spelled out: a trailing "a" is never dropped */
    ASSERT_NO_TOKEN(squashed("s p i c a"), "spic");
    ASSERT_NO_TOKEN(squashed("the star s p i c a"), "spic");
    /* initials and one-letter words stay what they are */
    ASSERT_STR(squashed("I O U"), "iou");
}

TEST(every_letter_doubled)
{
    ASSERT_TOKEN(squashed("ffuucckk"), "fuck");
    ASSERT_TOKEN(squashed("you SSHHIITT"), "shit");
    ASSERT_TOKEN(squashed("ppuussssyy"), "pussy"); /* a double letter doubled */
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "pussy"), "ppuussssyy");
    /* one doubled letter is another word; one letter repeated is laughter */
    ASSERT_STR(squashed("Bonner"), "bonner");
    ASSERT_STR(squashed("bookkeeper"), "bookkeeper");
    ASSERT_NO_TOKEN(squashed("kkkkkk"), "kkk");
    ASSERT_NO_TOKEN(squashed("aabb"), "ab"); /* under six letters */
}

TEST(punctuation_inside_mixed_case_word)
{
    ASSERT_TOKEN(squashed("fU.cK"), "fuck");
    ASSERT_TOKEN(squashed("omg ShI-T"), "shit");
    ASSERT_TOKEN(squashed("bI,tCh"), "bitch");
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "bitch"), "bI,tCh");
    /* a capital first letter, one case, or two symbols: no second reading */
    ASSERT_NO_TOKEN(squashed("Node.js"), "nodejs");
    ASSERT_NO_TOKEN(squashed("e.g. i.e."), "eg");
    ASSERT_NO_TOKEN(squashed("FU.CK"), "fuck");
    ASSERT_NO_TOKEN(squashed("John.Smith@Example.com"), "johnsmith");
}

TEST(upside_down_text)
{
    ASSERT_TOKEN(squashed("\xca\x9e\xc9\x94n\xc9\x9f"), "fuck"); /* ʞɔnɟ */
    ASSERT_STR(raw_of(WH_VIEW_SQUASHED, "fuck"), "\xca\x9e\xc9\x94n\xc9\x9f");
    /* ʇᴉɥs ɟo ǝɔǝᴉd: words in order too */
    ASSERT(strstr(squashed("\xca\x87\xe1\xb4\x89\xc9\xa5s \xc9\x9fo \xc7\x9d\xc9\x94\xc7\x9d\xe1"
                           "\xb4\x89"
                           "d"),
                  "piece of shit"));
    /* ordinary text has no turned reading */
    ASSERT(!strchr(squashed("pun und dope"), '\n'));
}

TEST(lookalikes_icu_leaves_alone)
{
    ASSERT_STR(skel("\xe1\x96\xb4\xe1\x91\x8c\xe1\x91\x95K"), "fuck");            /* ᖴᑌᑕK */
    ASSERT_STR(skel("\xea\x93\xa2\xea\x93\xa7\xea\x93\xb2\xea\x93\x94"), "shit"); /* ꓢꓧꓲꓔ */
    ASSERT_STR(skel("\xca\x89"), "u");                                            /* ʉ */
    ASSERT_STR(skel("\xc7\x80"), "i");                                            /* ǀ */
    ASSERT_STR(skel("\xc9\xb5"), "o");                                            /* ɵ */
    ASSERT_STR(skel("\xc6\x80\xc9\xa8\xc5\xa7\xc8\xbc\xc4\xa7"), "bitch");        /* ƀɨŧȼħ */
}

TEST(label_dots_are_dots)
{
    static const char *const dots[] = {"\xe3\x80\x82", "\xef\xbd\xa1", "\xef\xbc\x8e"};
    for (size_t i = 0; i < WH_ARRAY_LEN(dots); i++) {
        char in[96];
        snprintf(in, sizeof(in), "go to evil-site%scom/x now", dots[i]);
        const wh_text *t = build(in);
        ASSERT_EQ(t->f.nlinks, 1);
        ASSERT_EQ(t->f.links[0].host.n, 13);
        ASSERT(memcmp(t->f.links[0].host.p, "evil-site.com", 13) == 0);
        ASSERT_EQ(t->f.links[0].start, 6);
        snprintf(in, sizeof(in), "https://a%sb%sgg", dots[i], dots[i]);
        t = build(in);
        ASSERT_EQ(t->f.nlinks, 1);
        ASSERT_EQ(t->f.links[0].host.n, 6);
    }
    ASSERT_EQ(build("end of sentence\xe3\x80\x82next one")->f.nlinks, 0);
}

TEST(terms_have_no_alternate_readings)
{
    uint32_t n;
    const char *t = wh_normalize_term("a$$hole", 7, WH_VIEW_SQUASHED, &arena, &n);
    ASSERT_STR(t, "asshole");
    ASSERT_EQ(n, 7);
    t = wh_normalize_term("Blow|Job", 8, WH_VIEW_SQUASHED, &arena, &n);
    ASSERT_STR(t, "blowijob");
}

/* ---- the ASCII fast paths against byte-at-a-time references ---------------------- */

static uint64_t prop_state = 0x9E3779B97F4A7C15ull;
static uint32_t prop_next(void)
{
    prop_state ^= prop_state << 13, prop_state ^= prop_state >> 7, prop_state ^= prop_state << 17;
    return (uint32_t)(prop_state >> 32);
}

/* A random ASCII text over an alphabet rich in what the pass looks for: runs, doubled
 * pairs, spaces and tabs, leet digits and symbols, upper case, NUL. */
static uint32_t prop_text(char *buf, uint32_t max, const char *alphabet)
{
    uint32_t n = prop_next() % (max + 1), na = (uint32_t)strlen(alphabet);
    for (uint32_t i = 0; i < n;) {
        char c = alphabet[prop_next() % na];
        uint32_t run = prop_next() % 4 == 0 ? 1 + prop_next() % 5 : 1;
        for (uint32_t k = 0; k < run && i < n; k++)
            buf[i++] = c;
    }
    return n;
}

TEST(ascii_pass_equals_the_byte_loop)
{
    static const char alphabet[] = "aabfFuUkK  \t\n0123456789@$!|+.,-'~_";
    char raw[200], fo[200 + 17], sk[200 + 17];
    for (int iter = 0; iter < 20000; iter++) {
        uint32_t n = prop_text(raw, iter % 10 == 0 ? 200 : 70, alphabet);
        if (iter % 97 == 0 && n) raw[prop_next() % n] = 0; /* a NUL in the text */
        wh_features f;
        memset(&f, 0, sizeof(f));
        bool leet, pairs;
        wh_ascii_pass(raw, n, fo, sk, &f, &leet, &pairs);
        /* the reference: the loop this pass replaced */
        uint32_t letters = 0, upper = 0, digits = 0, spaces = 0, run = 0, max_run = 0;
        bool rleet = false, rpairs = false;
        unsigned char prev = 0;
        for (uint32_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)raw[i];
            bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            bool space = c == ' ' || (c >= 9 && c <= 13);
            letters += alpha;
            upper += c >= 'A' && c <= 'Z';
            digits += c >= '0' && c <= '9';
            spaces += space;
            rleet |= (c >= '0' && c <= '9' && c != '2' && c != '6') || (c && strchr("@$!|+", c));
            run = c == prev && !space ? run + 1 : 1;
            if (run == 2 && i >= 3 && raw[i - 2] == raw[i - 3] && raw[i - 2] != (char)c)
                rpairs = true;
            prev = c;
            if (run > max_run) max_run = run;
            char lower = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            if (fo[i] != lower || sk[i] != lower)
                T_FAIL("iteration %d: byte %u not lowered", iter, i);
        }
        ASSERT_EQ(f.length, n);
        ASSERT_EQ(f.letters, letters);
        ASSERT_EQ(f.upper, upper);
        ASSERT_EQ(f.digits, digits);
        ASSERT_EQ(f.spaces, spaces);
        ASSERT_EQ(f.symbols, n - letters - digits - spaces);
        if (f.max_run != max_run || leet != rleet || pairs != rpairs)
            T_FAIL("iteration %d (%u bytes): max_run %u/%u leet %d/%d pairs %d/%d", iter, n,
                   f.max_run, max_run, leet, rleet, pairs, rpairs);
    }
}

/* Lowercase text without leet, so no alternate reading is added: the squashed view is the
 * letters and digits with every other byte a space, and the collapsed view (what the word
 * lists scan) that with runs once and 'l' as 'i' -- unless three one-character words in a
 * row are joined ("f u c k"), which the general path does. */
TEST(ascii_squash_equals_the_byte_loop)
{
    static const char alphabet[] = "abcilllssxyz  26.,;-'\t";
    char raw[300], sq[300], co[300];
    int fast = 0;
    for (int iter = 0; iter < 20000; iter++) {
        uint32_t n = prop_text(raw, iter % 10 == 0 ? 299 : 90, alphabet);
        raw[n] = 0;
        uint32_t singles = 0, len = 0, w = 0;
        bool joined = false;
        char last = 0;
        for (uint32_t i = 0; i <= n; i++) {
            bool an = i < n && ((raw[i] >= 'a' && raw[i] <= 'z') || raw[i] == '2' || raw[i] == '6');
            if (an) {
                len++;
            } else if (len) {
                singles = len == 1 ? singles + 1 : 0;
                joined |= singles >= 3;
                len = 0;
            }
            if (i == n) break;
            sq[i] = an ? raw[i] : ' ';
            char d = sq[i] == 'l' ? 'i' : sq[i];
            if (d != last) co[w++] = last = d;
        }
        sq[n] = co[w] = 0;
        const wh_text *t = build(raw);
        if (joined) continue; /* the general path's own tests cover joining */
        /* two doubled letters in a row ("ll22") add the doubled reading after a newline */
        const char *q = t->v[WH_VIEW_SQUASHED].s;
        if (strncmp(q, sq, n) != 0 || (q[n] && q[n] != ' ' && q[n] != '\n'))
            T_FAIL("iteration %d: squashed \"%s\", expected \"%s\"", iter, q, sq);
        if (q[n]) continue;
        fast++;
        if (strcmp(t->v[WH_VIEW_COLLAPSED].s, co) != 0)
            T_FAIL("iteration %d: collapsed \"%s\", expected \"%s\"", iter,
                   t->v[WH_VIEW_COLLAPSED].s, co);
    }
    ASSERT(fast > 2000); /* the fast path was the one tested */
}
