/* test_matcher.c - the matcher alone: spans in raw bytes, word boundaries, prefilter
 * confirmation, the union databases of equal views, and the on-disk cache. */
#include <pthread.h>
#include <unistd.h>

#include "helpers.h"
#include "match/matcher.h"
#include "t.h"

static wh_matcher *build(const wh_pattern_spec *specs, uint32_t n, const char *cache, bool *hit)
{
    wh_matcher *m = NULL;
    wh_matcher_opts o = {.cache_dir = cache, .cache_hit = hit};
    if (wh_matcher_build(specs, n, &o, NULL, NULL, &m) != WH_OK) T_FAIL("matcher did not build");
    return m;
}

static uint32_t scan(wh_matcher *m, const char *text, wh_match *out, uint32_t cap)
{
    static wh_arena a;
    static bool init;
    if (!init) wh_arena_init(&a, 0), init = true;
    wh_arena_reset(&a);
    wh_text t;
    if (wh_text_build(text, (uint32_t)strlen(text), &a, &t) != WH_OK) T_FAIL("text");
    wh_match_scratch *s = wh_match_scratch_new(m);
    bool trunc;
    uint32_t n = wh_matcher_scan(m, s, &t, out, cap, &trunc);
    wh_match_scratch_free(s);
    return n;
}

#define WORD(e, g)                                                                                 \
    {                                                                                              \
        .kind = WH_PAT_WORD, .view = WH_VIEW_SQUASHED, .source = e, .expr = e, .group = g,         \
        .permit_set = -1                                                                           \
    }
#define REGEX(e, v, g)                                                                             \
    {                                                                                              \
        .kind = WH_PAT_REGEX, .view = v, .source = e, .expr = e, .group = g, .permit_set = -1      \
    }

/* Removes a test's cache folder. */
static void rm_cache(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

TEST(word_spans_are_raw_bytes)
{
    wh_pattern_spec sp[] = {WORD("fuck", 0)};
    wh_matcher *m = build(sp, 1, NULL, NULL);
    wh_match mt[8];
    /* "oh " then fullwidth f u c k (3 bytes each) */
    ASSERT_EQ(scan(m, "oh \xef\xbd\x86\xef\xbd\x95\xef\xbd\x83\xef\xbd\x8b!", mt, 8), 1);
    ASSERT_EQ(mt[0].rs, 3);
    ASSERT_EQ(mt[0].re, 15);
    ASSERT_EQ(mt[0].view, WH_VIEW_SQUASHED);
    ASSERT_EQ(scan(m, "fuckfuck fucks", mt, 8), 0); /* whole words only */
    ASSERT_EQ(scan(m, "x fuck y fuck", mt, 8), 2);  /* every occurrence */
    ASSERT_EQ(mt[1].rs, 9);
    wh_matcher_free(m);
}

TEST(regex_views_and_case)
{
    wh_pattern_spec sp[] = {REGEX("ABC", WH_VIEW_RAW, 0), REGEX("abc", WH_VIEW_FOLDED, 1),
                            REGEX("h4x", WH_VIEW_FOLDED, 2), REGEX("hax", WH_VIEW_SKELETON, 3)};
    wh_matcher *m = build(sp, 4, NULL, NULL);
    wh_match mt[8];
    /* Same bytes in raw, folded and skeleton: the union database is used. */
    ASSERT_EQ(scan(m, "abc", mt, 8), 1);
    ASSERT_EQ(mt[0].pattern, 1);
    ASSERT_EQ(scan(m, "ABC", mt, 8), 2); /* raw is case-sensitive, folded is not */
    ASSERT_EQ(scan(m, "h4x0r", mt, 8), 2);
    ASSERT_EQ(mt[0].pattern, 2);
    ASSERT_EQ(mt[1].pattern, 3);
    wh_matcher_free(m);
}

TEST(prefilter_is_confirmed)
{
    wh_pattern_spec sp[] = {REGEX("(\\w+) \\1", WH_VIEW_FOLDED, 0)};
    wh_matcher *m = build(sp, 1, NULL, NULL);
    wh_match mt[8];
    ASSERT_EQ(scan(m, "no no", mt, 8), 1);
    ASSERT_EQ(mt[0].rs, 0);
    ASSERT_EQ(mt[0].re, 5);
    ASSERT_EQ(scan(m, "no yes", mt, 8), 0);
    wh_matcher_free(m);
}

TEST(long_terms_are_whole_words)
{
    /* Hyperscan sees terms of four letters or more without \b (literals compile ~30x
     * faster); PCRE2 still wants whole words, also when the first occurrence is inside one */
    wh_pattern_spec sp[] = {WORD("heck", 0), WORD("ass", 1)};
    wh_matcher *m = build(sp, 2, NULL, NULL);
    wh_match mt[8];
    ASSERT_EQ(scan(m, "checking the class", mt, 8), 0);
    ASSERT_EQ(scan(m, "checkheck, heck", mt, 8), 1);
    ASSERT_EQ(mt[0].pattern, 0);
    ASSERT_EQ(mt[0].rs, 11);
    ASSERT_EQ(scan(m, "heckle the ass", mt, 8), 1);
    ASSERT_EQ(mt[0].pattern, 1);
    wh_matcher_free(m);
}

TEST(property_repeat_is_exact)
{
    /* Hyperscan scans a repeated Unicode property as "its ASCII members or any non-ASCII
     * character"; what PCRE2 confirms is the property itself */
    wh_pattern_spec sp[] = {REGEX("[^\\p{L}\\p{N}\\s]{5,}", WH_VIEW_FOLDED, 0),
                            REGEX("x\\p{Lu}{3}", WH_VIEW_RAW, 1)};
    wh_matcher *m = build(sp, 2, NULL, NULL);
    wh_match mt[8];
    ASSERT_EQ(scan(m, "wow !!!!! ok", mt, 8), 1);
    ASSERT_EQ(mt[0].pattern, 0);
    ASSERT_EQ(mt[0].rs, 4);
    ASSERT_EQ(mt[0].re, 9);
    ASSERT_EQ(scan(m, "\xe2\x98\x85\xe2\x98\x85\xe2\x98\x85\xe2\x98\x85\xe2\x98\x85", mt, 8), 1);
    ASSERT_EQ(scan(m, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 caf\xc3\xa9", mt, 8),
              0); /* letters */
    ASSERT_EQ(scan(m, "!!!!", mt, 8), 0);
    /* Hyperscan's first hit (the letters) is not the match; the symbols after it are */
    ASSERT_EQ(scan(m, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 !!!!!", mt, 8), 1);
    ASSERT_EQ(mt[0].rs, 11);
    ASSERT_EQ(scan(m, "xABC", mt, 8), 1);
    ASSERT_EQ(mt[0].pattern, 1);
    ASSERT_EQ(scan(m, "x\xc3\x80\xc3\x89\xc3\x8e", mt, 8), 1); /* xÀÉÎ */
    ASSERT_EQ(scan(m, "x\xc3\xa0\xc3\xa9\xc3\xae", mt, 8), 0); /* xàéî: lowercase */
    ASSERT_EQ(scan(m, "xAbC", mt, 8), 0);
    wh_matcher_free(m);
}

TEST(bounded_dot_repeat_is_exact)
{
    /* Hyperscan scans ".{0,10}" as ".*"; PCRE2 keeps the bound */
    wh_pattern_spec sp[] = {REGEX("gift.{0,10}free", WH_VIEW_FOLDED, 0)};
    wh_matcher *m = build(sp, 1, NULL, NULL);
    wh_match mt[8];
    ASSERT_EQ(scan(m, "gift 0123456free", mt, 8), 1);
    ASSERT_EQ(scan(m, "gift \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 free", mt, 8), 1);
    ASSERT_EQ(scan(m, "gift 0123456789 free", mt, 8), 0); /* 11 between */
    ASSERT_EQ(scan(m, "gift 0123456789 free gift for free", mt, 8), 1);
    ASSERT_EQ(mt[0].rs, 21);
    wh_matcher_free(m);
}

static void count_error(void *ud, uint32_t pattern, const char *message)
{
    uint32_t *bad = ud;
    *bad = pattern;
    if (!strstr(message, "Hyperscan rejects")) *bad = 1000;
}

TEST(rejected_pattern_reported_and_left_out)
{
    wh_pattern_spec sp[] = {REGEX("a$b", WH_VIEW_FOLDED, 0), REGEX("ok", WH_VIEW_FOLDED, 1)};
    wh_matcher *m = NULL;
    uint32_t bad = 99;
    wh_matcher_opts o = {0};
    ASSERT_EQ(wh_matcher_build(sp, 2, &o, count_error, &bad, &m), WH_OK);
    ASSERT_EQ(bad, 0); /* the first pattern, named by index */
    wh_match mt[8];
    ASSERT_EQ(scan(m, "ok", mt, 8), 1);
    ASSERT_EQ(mt[0].pattern, 1);
    wh_matcher_free(m);
}

struct errors_seen {
    uint32_t pattern[8];
    uint32_t n;
    pthread_t builder;
    bool other_thread;
};

static void note_error(void *ud, uint32_t pattern, const char *message)
{
    struct errors_seen *e = ud;
    if (!pthread_equal(pthread_self(), e->builder)) e->other_thread = true;
    if (e->n < 8 && strstr(message, "Hyperscan rejects")) e->pattern[e->n++] = pattern;
}

TEST(rejections_of_databases_built_side_by_side)
{
    /* The views' databases compile on several threads; their rejections still reach the
     * caller on its own thread, in view order, and a database missing one is not cached. */
    char dir[] = "/tmp/whiply-mcache-XXXXXX";
    ASSERT(mkdtemp(dir));
    wh_pattern_spec sp[] = {REGEX("ok", WH_VIEW_SKELETON, 0), REGEX("a$b", WH_VIEW_SKELETON, 1),
                            REGEX("c$d", WH_VIEW_RAW, 2),     REGEX("fine", WH_VIEW_RAW, 3),
                            REGEX("e$f", WH_VIEW_FOLDED, 4),  WORD("heck", 5)};
    for (int round = 0; round < 2; round++) {
        struct errors_seen e = {.builder = pthread_self()};
        wh_matcher *m = NULL;
        bool hit = true;
        wh_matcher_opts o = {.cache_dir = dir, .cache_hit = &hit};
        ASSERT_EQ(wh_matcher_build(sp, 6, &o, note_error, &e, &m), WH_OK);
        ASSERT(!e.other_thread);
        ASSERT_EQ(e.n, 3);
        ASSERT_EQ(e.pattern[0], 2); /* raw, folded, skeleton */
        ASSERT_EQ(e.pattern[1], 4);
        ASSERT_EQ(e.pattern[2], 1);
        ASSERT(!hit); /* reported again: their databases were not cached */
        wh_match mt[8];
        ASSERT_EQ(scan(m, "OK fine heck", mt, 8), 3);
        wh_matcher_free(m);
    }
    rm_cache(dir);
}

TEST(every_view_and_union_cached)
{
    char dir[] = "/tmp/whiply-mcache-XXXXXX";
    ASSERT(mkdtemp(dir));
    wh_pattern_spec sp[] = {REGEX("Ab", WH_VIEW_RAW, 0), REGEX("cd", WH_VIEW_FOLDED, 1),
                            REGEX("ef", WH_VIEW_SKELETON, 2), REGEX("gh", WH_VIEW_SQUASHED, 3),
                            WORD("heck", 4)};
    bool hit = true;
    wh_matcher *m = build(sp, 5, dir, &hit);
    ASSERT(!hit);
    wh_matcher_free(m);
    m = build(sp, 5, dir, &hit);
    ASSERT(hit);
    wh_match mt[8];
    ASSERT_EQ(scan(m, "Ab cd ef gh heck", mt, 8), 5); /* one union scan, then squashed */
    ASSERT_EQ(scan(m, "AB CD EF", mt, 8), 2);         /* raw apart, folded = skeleton */
    ASSERT_EQ(mt[0].pattern, 1);
    wh_matcher_free(m);
    rm_cache(dir);
}

TEST(cache_hit_on_second_build)
{
    char dir[] = "/tmp/whiply-mcache-XXXXXX";
    ASSERT(mkdtemp(dir));
    wh_pattern_spec sp[] = {WORD("heck", 0), REGEX("fr[e3]+", WH_VIEW_SKELETON, 1)};
    bool hit = true;
    wh_matcher *m = build(sp, 2, dir, &hit);
    ASSERT(!hit);
    wh_matcher_free(m);
    m = build(sp, 2, dir, &hit);
    ASSERT(hit);
    wh_match mt[8];
    ASSERT_EQ(scan(m, "heck", mt, 8), 1);
    wh_matcher_free(m);
    /* A different order is a different database. */
    wh_pattern_spec sw[] = {sp[1], sp[0]};
    m = build(sw, 2, dir, &hit);
    ASSERT(!hit);
    wh_matcher_free(m);
    rm_cache(dir);
}

TEST(joined_terms_with_short_pieces)
{
    /* a term of JOIN_MIN or more characters may lose its spacing whatever its pieces; a digit
     * of the term also accepts the letter a digit among letters reads as ("1" -> "i") */
    wh_pattern_spec sp[] = {WORD("2 girls 1 cup", 0), WORD("piece of shit", 1), WORD("s m", 2)};
    wh_matcher *m = build(sp, 3, NULL, NULL);
    wh_match mt[8];
    ASSERT_EQ(scan(m, "2girls1cup", mt, 8), 1);
    ASSERT_EQ(mt[0].pattern, 0);
    ASSERT_EQ(scan(m,
                   "lol 2\xe2\x80\x8bgirls\xe2\x80\x8b"
                   "1\xe2\x80\x8b"
                   "cup lol",
                   mt, 8),
              1);
    ASSERT_EQ(mt[0].rs, 4);
    ASSERT_EQ(scan(m, "2 girls 1 cup", mt, 8), 1);
    ASSERT_EQ(scan(m, "2 girls and 1 cup of tea", mt, 8), 0);
    ASSERT_EQ(scan(m, "pieceofshit", mt, 8), 1);
    ASSERT_EQ(scan(m, "piece of cake", mt, 8), 0);
    ASSERT_EQ(scan(m, "Sm", mt, 8), 0); /* a short term keeps its separator */
    ASSERT_EQ(scan(m, "s&m", mt, 8), 1);
    wh_matcher_free(m);
}

TEST(reversed_words)
{
    /* a whole word read backwards, for one-word terms of four letters or more whose reversal
     * is no dictionary word; the term's own form confirms it, so a doubled letter is still
     * another word */
    wh_pattern_spec sp[] = {WORD("bitch", 0), WORD("fuck", 1), WORD("boner", 2), WORD("negro", 3),
                            WORD("level", 4), WORD("anal", 5), WORD("arse", 6),  WORD("milf", 7)};
    wh_matcher *m = build(sp, 8, NULL, NULL);
    wh_match mt[8];
    ASSERT_EQ(scan(m, "you HCTIB", mt, 8), 1);
    ASSERT_EQ(mt[0].pattern, 0);
    ASSERT_EQ(mt[0].rs, 4);
    ASSERT_EQ(mt[0].re, 9);
    ASSERT_EQ(scan(m, "hctiiib", mt, 8), 1);      /* stretched */
    ASSERT_EQ(scan(m, "h c t i b ok", mt, 8), 1); /* spaced out */
    ASSERT_EQ(mt[0].re, 9);
    ASSERT_EQ(scan(m, "x renob y", mt, 8), 1);
    ASSERT_EQ(mt[0].pattern, 2);
    ASSERT_EQ(scan(m, "rennob", mt, 8), 0);   /* "Bonner" is not "boner" backwards either */
    ASSERT_EQ(scan(m, "hctibs", mt, 8), 0);   /* whole words only */
    ASSERT_EQ(scan(m, "lol KCUF", mt, 8), 1); /* four letters */
    ASSERT_EQ(mt[0].pattern, 1);
    ASSERT_EQ(mt[0].rs, 4);
    ASSERT_EQ(scan(m, "Lana", mt, 8), 0);      /* four-letter reversals that are words: a name, */
    ASSERT_EQ(scan(m, "Esra", mt, 8), 0);      /* a Turkish name, */
    ASSERT_EQ(scan(m, "flim flam", mt, 8), 0); /* a word */
    ASSERT_EQ(scan(m, "\xc3\x96rgen", mt, 8), 0); /* Turkish "örgen" is a word */
    ASSERT_EQ(scan(m, "level", mt, 8), 1);        /* a palindrome matches once, forwards */
    wh_matcher_free(m);
}

/* ---- windows: PCRE2 only near Hyperscan's end offsets finds what a whole search finds ---- */

/* A term as the rules loader makes it (src/rules/lists.c add_term): '*' ends, the squashed
 * normal form, or the folded bytes of a term without letters (an emoji). */
static wh_pattern_spec term_spec(wh_arena *a, const char *term, int32_t permit_set,
                                 int32_t cancel_set)
{
    size_t n = strlen(term);
    const char *s = term;
    bool pre = false, suf = false;
    if (n && *s == '*') pre = true, s++, n--;
    if (n && s[n - 1] == '*') suf = true, n--;
    uint32_t qn = 0;
    const char *q = wh_normalize_term(s, n, WH_VIEW_SQUASHED, a, &qn);
    bool has_word = false;
    for (uint32_t i = 0; q && i < qn; i++)
        has_word |= q[i] != ' ';
    bool literal = !has_word;
    if (literal) q = wh_normalize_term(s, n, WH_VIEW_FOLDED, a, &qn);
    while (qn && q[qn - 1] == ' ')
        qn--;
    while (qn && q[0] == ' ')
        q++, qn--;
    return (wh_pattern_spec){.kind = WH_PAT_WORD,
                             .view = literal ? WH_VIEW_FOLDED : WH_VIEW_SQUASHED,
                             .literal = literal,
                             .source = term,
                             .expr = wh_arena_strndup(a, q, qn),
                             .permit_set = permit_set,
                             .cancel_set = cancel_set,
                             .prefix_star = pre,
                             .suffix_star = suf};
}

static const char *const diff_terms[] = {
    "fuck",
    "shit",
    "ass",
    "asshole",
    "bitch",
    "cock",
    "cunt",
    "anal",
    "anus",
    "tit",
    "tits",
    "kkk",
    "2g1c",
    "2 girls 1 cup",
    "god damn",
    "kill yourself",
    "s&m",
    "blow job",
    "pieceofshit",
    "jerk off",
    "ball gag",
    "alabama hot pocket",
    "nigg*",
    "*fucker",
    "*shit*",
    "dick*",
    "milf",
    "boner",
    "negro",
    "arse",
    "\xf0\x9f\x96\x95",
    "\xf0\x9f\x8d\x86 \xf0\x9f\x92\xa6",
    "wank",
    "twat",
};
static const char *const diff_permits[] = {"scunthorpe", "cocktail*", "assassin*", "*shitake"};
static const char *const diff_fill[] = {
    "hello",
    "the",
    "gg",
    "lol",
    "pog",
    "cocktails",
    "assassins",
    "scunthorpe",
    "bonner",
    "tilt",
    "!!",
    "...",
    "@bob",
    "https://x.com/a",
    "kcuf",
    "hctib",
    "I",
    "a",
    "u",
    "\xef\xbd\x86\xef\xbd\x95\xef\xbd\x83\xef\xbd\x8b",
    "\xc3\x96rgen",
    "sh1t",
    "5h!t",
    "f.u.c.k",
    "\xd0\xb0ss",
    "ZALGO\xcc\x81\xcc\x82",
};

/* A random text of about n bytes: terms as written, stretched, one letter doubled (a
 * near-miss), spaced out, in capitals, glued to a neighbour, among filler words and runs. */
static void diff_text(uint64_t *r, wh_buf *b, uint32_t n)
{
    b->len = 0;
    while (b->len < n) {
        *r = *r * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t x = (uint32_t)(*r >> 33), k = x % 11;
        const char *w = k < 5 ? diff_terms[(x >> 4) % WH_ARRAY_LEN(diff_terms)]
                              : diff_fill[(x >> 4) % WH_ARRAY_LEN(diff_fill)];
        if (k == 5) w = diff_permits[(x >> 4) % WH_ARRAY_LEN(diff_permits)];
        size_t wl = strlen(w);
        if (w[0] == '*') w++, wl--;
        if (wl && w[wl - 1] == '*') wl--;
        uint32_t form = (x >> 12) % 8, at = wl ? (x >> 16) % (uint32_t)wl : 0;
        for (size_t i = 0; i < wl; i++) {
            char c = w[i];
            if (form == 1 && c >= 'a' && c <= 'z') c = (char)(c - 32);
            wh_buf_putc(b, c);
            if (i == at && c != ' ' && (unsigned char)c < 0x80) {
                if (form == 2) wh_buf_putc(b, c); /* doubled: a near-miss */
                if (form == 3) wh_buf_putc(b, c), wh_buf_putc(b, c), wh_buf_putc(b, c);
            }
            if (form == 4 && i + 1 < wl && (unsigned char)c < 0x80) wh_buf_putc(b, ' ');
        }
        if (form == 5) {
            for (uint32_t i = (x >> 20) % 70; i; i--)
                wh_buf_putc(b, "ao!$l "[(x >> 26) % 6]);
        }
        if (form != 6) wh_buf_putc(b, (x >> 24) % 9 ? ' ' : ((x >> 28) % 2 ? '\n' : '-'));
    }
}

TEST(windows_find_what_whole_searches_find)
{
    wh_arena a;
    wh_arena_init(&a, 0);
    wh_pattern_spec sp[64];
    uint32_t n = 0;
    for (size_t i = 0; i < WH_ARRAY_LEN(diff_terms); i++)
        sp[n++] = term_spec(&a, diff_terms[i], -1, 0);
    for (size_t i = 0; i < WH_ARRAY_LEN(diff_permits); i++)
        sp[n++] = term_spec(&a, diff_permits[i], 0, -1);
    sp[n++] = (wh_pattern_spec)REGEX("\\b(\\w{2,})(\\s+\\1\\b){5,}", WH_VIEW_FOLDED, 1);
    sp[n++] = (wh_pattern_spec)REGEX("[!?.]{6,}", WH_VIEW_RAW, 1);
    sp[n++] = (wh_pattern_spec)REGEX("(?<!\\w)k\\s*y\\s*s\\b", WH_VIEW_SKELETON, 1);
    wh_matcher *m = build(sp, n, NULL, NULL);
    wh_match_scratch *win = wh_match_scratch_new(m), *ref = wh_match_scratch_new(m);
    wh_match_scratch_set_whole(ref, true);
    wh_match mw[64], mr[64];
    wh_buf b;
    wh_buf_init(&b);
    uint64_t r = 42;
    uint32_t texts = 0, spans = 0;
    for (int i = 0; i < 3000; i++) {
        uint32_t len = i % 100 == 99 ? 20000 : 1 + (uint32_t)(r >> 40) % (i % 3 ? 300 : 3000);
        diff_text(&r, &b, len);
        wh_arena_reset(&a);
        wh_text t;
        if (wh_text_build(b.p, (uint32_t)b.len, &a, &t) != WH_OK) T_FAIL("text");
        uint32_t cap = i % 4 ? 64 : 5; /* a full out[] truncates the same way */
        bool tw, tr;
        uint32_t nw = wh_matcher_scan(m, win, &t, mw, cap, &tw);
        uint32_t nr = wh_matcher_scan(m, ref, &t, mr, cap, &tr);
        uint32_t cw, cr;
        const uint32_t *pw = wh_match_confirmed(win, &cw), *pr = wh_match_confirmed(ref, &cr);
        if (nw != nr || tw != tr || cw != cr || memcmp(mw, mr, sizeof(*mw) * nw) ||
            memcmp(pw, pr, sizeof(*pw) * cw)) {
            fprintf(stderr, "text %d (%zu bytes): %.*s\n", i, b.len,
                    (int)(b.len < 400 ? b.len : 400), b.p);
            for (uint32_t k = 0; k < nw || k < nr; k++)
                fprintf(stderr, "  windows %u [%u,%u)   whole %u [%u,%u)\n",
                        k < nw ? mw[k].pattern : 0, k < nw ? mw[k].vs : 0, k < nw ? mw[k].ve : 0,
                        k < nr ? mr[k].pattern : 0, k < nr ? mr[k].vs : 0, k < nr ? mr[k].ve : 0);
            T_FAIL("windows and whole searches differ");
        }
        texts += nw > 0;
        spans += nw;
    }
    ASSERT(texts > 1000); /* the texts do hit */
    ASSERT(spans > 10000);
    wh_buf_free(&b);
    wh_match_scratch_free(win);
    wh_match_scratch_free(ref);
    wh_matcher_free(m);
    wh_arena_free(&a);
}
