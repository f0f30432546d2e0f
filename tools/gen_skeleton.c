/* gen_skeleton.c - build-time generator of the code point -> ASCII skeleton table.
 *
 * Usage: gen_skeleton OUT.c
 *
 * Writes the tables declared in src/text/skeleton_table.h. The mapping comes from ICU's data
 * (NFKC_Casefold, NFD, the UTS #39 confusables behind uspoof_getSkeleton, character names)
 * rather than a hand list, so it follows the Unicode version of the installed ICU. The same
 * ICU gives the same bytes on every run. For each code point from U+0080 (surrogates and
 * noncharacters skipped), the first rule that applies wins:
 *
 *  1. the explicit tables below: regional indicators, negative circled/squared and squared
 *     letters, parenthesized letters, enclosed numbers without a decomposition, a few letters;
 *  2. a decimal digit of any script maps to its value; a right-to-left letter stays as it is;
 *  3. NFKC_Casefold, then NFD with the Mn/Me marks dropped; if non-ASCII is left, each
 *     non-ASCII code point becomes its UTS #39 skeleton, folded and stripped the same way;
 *     for code points that case folding changes, the same is done on the unfolded NFKC form
 *     and preferred when it works (capitals keep their look: Greek "Η" is "h", not "n");
 *  4. a Latin letter still unmapped is read from its name ("... LETTER K WITH DESCENDER").
 *
 * The result is kept when it is 1..8 printable ASCII bytes. A short report goes to stderr:
 * the table size, and which Latin letters of the "fancy text" blocks still have no mapping,
 * so that a newer ICU that changes coverage is noticed. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/uscript.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/uversion.h>

#define CP_MAX 0x10FFFF
#define NPAGES 0x1100     /* (CP_MAX >> 8) + 1 */
#define MAX_SKEL 8        /* longest skeleton kept; the entry's length field is one byte */
#define UBUF 256          /* UTF-16 scratch; NFKC_Casefold of one code point stays far below */
#define POOL_MAX 0xFFFFFF /* offsets are 24 bits in an entry */

/* Runs of letter-like symbols with no decomposition and no confusables.txt entry (or one
 * that keeps the decoration): people spell words with them ("🇫🇷🇪🇪" and "🅵🆁🅴🅴" are both
 * "free"), so each run maps in order onto base, base+1, ... These replace steps 1-3. */
static const struct {
    uint32_t first, last;
    char base;
} letter_runs[] = {
    {0x1F1E6, 0x1F1FF, 'a'}, /* regional indicator symbols (emoji flags) */
    {0x1F150, 0x1F169, 'a'}, /* negative circled capital letters */
    {0x1F170, 0x1F189, 'a'}, /* negative squared capital letters */
    {0x1F130, 0x1F149, 'a'}, /* squared capital letters: NFKC has them, kept explicit */
    /* Parenthesized letters: NFKC gives "(a)", which would split a word into punctuation and
     * single letters; the letter alone is what the writer meant. */
    {0x249C, 0x24B5, 'a'},   /* parenthesized small letters */
    {0x1F110, 0x1F129, 'a'}, /* parenthesized capital letters */
};

/* Enclosed numbers without a decomposition, mapped like their NFKC siblings ("①" -> "1",
 * "⑪" -> "11"): each run maps in order onto num, num+1, ... */
static const struct {
    uint32_t first, last;
    unsigned num;
} number_runs[] = {
    {0x24EB, 0x24F4, 11},  /* negative circled numbers eleven..twenty */
    {0x24F5, 0x24FE, 1},   /* double circled digits one..ten */
    {0x24FF, 0x24FF, 0},   /* negative circled digit zero */
    {0x2776, 0x277F, 1},   /* dingbat negative circled digits */
    {0x2780, 0x2789, 1},   /* dingbat circled sans-serif digits */
    {0x278A, 0x2793, 1},   /* dingbat negative circled sans-serif digits */
    {0x1F10B, 0x1F10B, 0}, /* dingbat circled sans-serif digit zero */
    {0x1F10C, 0x1F10C, 0}, /* dingbat negative circled sans-serif digit zero */
};

/* Single characters that text generators use as a Latin letter although neither the data
 * nor the letter's name says so. */
static const struct {
    uint32_t cp;
    const char *s;
} letter_fixes[] = {
    {0x1D60, "q"},  /* MODIFIER LETTER SMALL GREEK PHI: the "superscript q" (there was none
                     * before Unicode 14, and fonts rarely have U+107A5) */
    {0x1D01, "ae"}, /* LATIN LETTER SMALL CAPITAL AE, like "Æ" -> "ae" */
    {0x0276, "oe"}, /* LATIN LETTER SMALL CAPITAL OE, like "Œ" -> "oe" */
    /* Canadian syllabics that "fancy text" generators use as Latin capitals ("ᖴᑌᑕK"), where
     * confusables.txt has no entry: the letter each one is drawn like. Syllabics written as
     * Cree or Inuktitut are whole syllabic words, which no Latin term matches. */
    {0x15E9, "a"}, /* ᗩ */
    {0x1571, "a"}, /* ᕱ */
    {0x15FA, "b"}, /* ᗺ */
    {0x1455, "c"}, /* ᑕ */
    {0x1462, "c"}, /* ᑢ */
    {0x1572, "d"}, /* ᕲ */
    {0x156E, "e"}, /* ᕮ */
    {0x15F4, "e"}, /* ᗴ */
    {0x161C, "g"}, /* ᘜ */
    {0x14F0, "i"}, /* ᓰ */
    {0x149A, "j"}, /* ᒚ */
    {0x163B, "m"}, /* ᘻ */
    {0x144E, "n"}, /* ᑎ */
    {0x1609, "n"}, /* ᘉ */
    {0x14CD, "o"}, /* ᓍ */
    {0x1575, "p"}, /* ᕵ */
    {0x146B, "q"}, /* ᑫ */
    {0x1515, "s"}, /* ᔕ */
    {0x1511, "s"}, /* ᔑ */
    {0x1458, "u"}, /* ᑘ */
    {0x143A, "v"}, /* ᐺ */
    {0x15EF, "w"}, /* ᗯ */
    {0x163A, "w"}, /* ᘺ */
    {0x15BB, "y"}, /* ᖻ */
    {0x1614, "z"}, /* ᘔ */
};

/* Blocks whose letters are used as "fancy fonts"; the report lists what stays unmapped. */
static const struct {
    uint32_t first, last;
    const char *name;
} watched[] = {
    {0x0250, 0x02AF, "IPA Extensions"},
    {0x02B0, 0x02FF, "Spacing Modifier Letters"},
    {0x1D00, 0x1D7F, "Phonetic Extensions"},
    {0x1D80, 0x1DBF, "Phonetic Extensions Supplement"},
    {0x2070, 0x209F, "Superscripts and Subscripts"},
    {0x2100, 0x214F, "Letterlike Symbols"},
    {0x2460, 0x24FF, "Enclosed Alphanumerics"},
    {0xA720, 0xA7FF, "Latin Extended-D"},
    {0xFF00, 0xFFEF, "Halfwidth and Fullwidth Forms"},
    {0x10780, 0x107BF, "Latin Extended-F"},
    {0x1D400, 0x1D7FF, "Mathematical Alphanumeric Symbols"},
    {0x1DF00, 0x1DFFF, "Latin Extended-G"},
    {0x1F100, 0x1F1FF, "Enclosed Alphanumeric Supplement"},
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* uspoof_getSkeleton maps every character to its confusables.txt prototype, and some ASCII
 * characters are not their own prototype: "m" becomes "rn", '"' becomes "''". "ɱ" (m with
 * hook) would then turn into "rn" and never match a word with an "m". These pairs undo that:
 * a code point whose folded skeleton is such a prototype maps to the ASCII character. */
typedef struct {
    UChar skel[8];
    int32_t n;
    char ascii;
} proto_fix;

typedef struct {
    const UNormalizer2 *nfkc_cf;
    const UNormalizer2 *nfkc;
    const UNormalizer2 *nfd;
    USpoofChecker *sc;
    proto_fix protos[16];
    int nprotos;
} gen_ctx;

typedef struct {
    uint32_t cp;
    uint8_t len;
    char s[MAX_SKEL + 1];
} entry;

static bool icu_ok(UErrorCode st, const char *what)
{
    if (U_SUCCESS(st)) return true;
    fprintf(stderr, "gen_skeleton: %s: %s\n", what, u_errorName(st));
    return false;
}

static bool is_noncharacter(uint32_t cp)
{
    return (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

static bool all_ascii(const UChar *s, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        if (s[i] >= 0x80) return false;
    return true;
}

/* Drops nonspacing and enclosing marks in place (accents after NFD, stacked "zalgo"
 * marks, enclosing circles); returns the new length. */
static int32_t strip_marks(UChar *s, int32_t n)
{
    int32_t k = 0;
    for (int32_t i = 0; i < n;) {
        UChar32 c;
        int32_t start = i;
        U16_NEXT(s, i, n, c);
        int8_t gc = u_charType(c);
        if (gc == U_NON_SPACING_MARK || gc == U_ENCLOSING_MARK) continue;
        while (start < i)
            s[k++] = s[start++];
    }
    return k;
}

/* Steps 1-2: NFKC_Casefold, then NFD and drop the marks, so only base letters are left. */
static bool fold_strip(const gen_ctx *g, const UChar *in, int32_t n, UChar *out, int32_t *outn)
{
    UChar a[UBUF];
    UErrorCode st = U_ZERO_ERROR;
    int32_t na = unorm2_normalize(g->nfkc_cf, in, n, a, UBUF, &st);
    if (!icu_ok(st, "NFKC_Casefold")) return false;
    int32_t nb = unorm2_normalize(g->nfd, a, na, out, UBUF, &st);
    if (!icu_ok(st, "NFD")) return false;
    *outn = strip_marks(out, nb);
    return true;
}

/* Confusables prototype of one non-ASCII code point, folded and stripped like the input.
 * Two corrections keep it an ASCII *letter* where the data gives the prototype of one:
 * see proto_fix ("rn" -> "m"), and a capital whose prototype is "l" is an "I" lookalike
 * (confusables.txt files "I" under "l"), so "ΙDIOT" with a Greek Iota reads "idiot". A
 * caseless letter (Lisu "ꓲ", the click "ǀ") is read the same way: a text "i" also matches
 * a term's "l" (see matcher.c), while a text "l" would miss every term with an "i". */
static bool skeleton_cp(const gen_ctx *g, UChar32 c, UChar *out, int32_t *outn)
{
    UChar in[2], sk[UBUF];
    int32_t n = 0;
    U16_APPEND_UNSAFE(in, n, c);
    UErrorCode st = U_ZERO_ERROR;
    int32_t k = uspoof_getSkeleton(g->sc, 0, in, n, sk, UBUF, &st);
    if (!icu_ok(st, "uspoof_getSkeleton")) return false;
    /* Checked before folding, as capital-L lookalikes have the prototype "L", not "l";
     * marks are ignored ("Ɨ" is "l" with a stroke). The skeleton is already in NFD. */
    int8_t gc = u_charType(c);
    bool capital_i = false;
    if (gc == U_UPPERCASE_LETTER || gc == U_TITLECASE_LETTER || gc == U_OTHER_LETTER) {
        UChar bare[UBUF];
        memcpy(bare, sk, (size_t)k * sizeof(UChar));
        capital_i = strip_marks(bare, k) == 1 && bare[0] == 'l';
    }
    if (!fold_strip(g, sk, k, out, &k)) return false;
    for (int i = 0; i < g->nprotos; i++) {
        const proto_fix *p = &g->protos[i];
        if (p->n == k && memcmp(p->skel, out, (size_t)k * sizeof(UChar)) == 0) {
            out[0] = (UChar)p->ascii;
            k = 1;
            break;
        }
    }
    if (capital_i) out[0] = 'i';
    *outn = k;
    return true;
}

/* Step 3 on s in place: each non-ASCII code point is replaced by its skeleton, one at a
 * time so the ASCII already there is not turned into its own prototype ("m" -> "rn"), and
 * the result is folded again, as prototypes can be uppercase ("O"). */
static bool skeletonize(const gen_ctx *g, UChar *s, int32_t *sn)
{
    UChar t[UBUF], sk[UBUF];
    int32_t tn = 0, kn;
    for (int32_t i = 0; i < *sn;) {
        UChar32 c;
        U16_NEXT(s, i, *sn, c);
        if (c < 0x80) {
            sk[0] = (UChar)c;
            kn = 1;
        } else if (!skeleton_cp(g, c, sk, &kn)) {
            return false;
        }
        if (tn + kn > UBUF) { /* far too long to be kept: report a length keepable() rejects */
            *sn = MAX_SKEL + 1;
            return true;
        }
        memcpy(t + tn, sk, (size_t)kn * sizeof(UChar));
        tn += kn;
    }
    return fold_strip(g, t, tn, s, sn);
}

/* Finds the ASCII characters whose folded skeleton is longer than one character (see
 * proto_fix). A one-character prototype ("1" -> "l", "0" -> "O") needs no fix: a code point
 * with that skeleton does look like that ASCII letter. */
static bool init_protos(gen_ctx *g)
{
    for (int c = 0x20; c < 0x7F; c++) {
        UChar in[1] = {(UChar)c}, sk[UBUF], f[UBUF];
        int32_t fn;
        UErrorCode st = U_ZERO_ERROR;
        int32_t k = uspoof_getSkeleton(g->sc, 0, in, 1, sk, UBUF, &st);
        if (!icu_ok(st, "uspoof_getSkeleton")) return false;
        if (!fold_strip(g, sk, k, f, &fn)) return false;
        if (fn < 2 || fn > (int32_t)ARRAY_LEN(g->protos[0].skel) || !all_ascii(f, fn)) continue;
        bool dup = false;
        for (int i = 0; i < g->nprotos; i++)
            dup |= g->protos[i].n == fn &&
                   memcmp(g->protos[i].skel, f, (size_t)fn * sizeof(UChar)) == 0;
        if (dup || g->nprotos == (int)ARRAY_LEN(g->protos)) continue;
        proto_fix *p = &g->protos[g->nprotos++];
        memcpy(p->skel, f, (size_t)fn * sizeof(UChar));
        p->n = fn;
        p->ascii = (char)c;
    }
    return true;
}

/* Characters of s that are not ASCII letters or digits. */
static int count_nonalnum(const UChar *s, int32_t n)
{
    int k = 0;
    for (int32_t i = 0; i < n; i++)
        k += !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'));
    return k;
}

/* Step 5: a skeleton is kept only if it is short printable ASCII. */
static bool keepable(const UChar *s, int32_t n)
{
    if (n == 0 || n > MAX_SKEL) return false;
    for (int32_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7E) return false;
    return true;
}

/* Reads the letter a Latin character is drawn as from its Unicode name: "LATIN SMALL LETTER
 * X", "LATIN LETTER SMALL CAPITAL X", "MODIFIER LETTER SMALL X", "LATIN CAPITAL LETTER SMALL
 * Q WITH HOOK TAIL", "CROSSED NEGATIVE SQUARED LATIN CAPITAL LETTER P", each optionally
 * followed by " WITH <decoration>". A single letter is required, so turned, reversed,
 * insular and digraph letters ("TURNED A", "INSULAR G", "DZ DIGRAPH"), which do not read as
 * that letter, are left alone; so are other scripts' letters named with one Latin letter
 * (Cyrillic "I" is drawn "и"), by requiring LATIN or MODIFIER LETTER in the name. Only
 * letters and symbols qualify: combining letters sit on top of another letter (zalgo), and
 * the invisible TAG LATIN letters must stay invisible. */
static bool letter_from_name(uint32_t cp, char *out)
{
    static const char *const skips[] = {"SMALL CAPITAL ", "CAPITAL ", "SMALL ", "DOTLESS ",
                                        "BARRED "};
    int8_t gc = u_charType((UChar32)cp);
    if (!(U_GC_L_MASK & U_MASK(gc)) && gc != U_OTHER_SYMBOL) return false;
    char name[256];
    UErrorCode st = U_ZERO_ERROR;
    u_charName((UChar32)cp, U_UNICODE_CHAR_NAME, name, sizeof(name), &st);
    if (U_FAILURE(st)) return false;
    if (!strstr(name, "LATIN ") && strncmp(name, "MODIFIER LETTER ", 16) != 0) return false;
    const char *p = strstr(name, "LETTER ");
    if (!p) return false;
    p += 7;
    for (size_t i = 0; i < ARRAY_LEN(skips); i++) {
        size_t n = strlen(skips[i]);
        if (strncmp(p, skips[i], n) == 0) p += n;
    }
    /* "U BAR" (ʉ) and "BARRED O" (ɵ) are stroked letters like "WITH STROKE" ones */
    if (p[0] < 'A' || p[0] > 'Z' ||
        (p[1] != '\0' && strncmp(p + 1, " WITH ", 6) != 0 && strcmp(p + 1, " BAR") != 0))
        return false;
    *out = (char)(p[0] - 'A' + 'a');
    return true;
}

/* Computes the skeleton of cp into e (e->len = 0: no entry). False only on an ICU error. */
static bool map_cp(const gen_ctx *g, uint32_t cp, entry *e)
{
    e->cp = cp;
    e->len = 0;

    for (size_t i = 0; i < ARRAY_LEN(letter_runs); i++) {
        if (cp >= letter_runs[i].first && cp <= letter_runs[i].last) {
            e->s[0] = (char)(letter_runs[i].base + (cp - letter_runs[i].first));
            e->s[1] = '\0';
            e->len = 1;
            return true;
        }
    }
    for (size_t i = 0; i < ARRAY_LEN(number_runs); i++) {
        if (cp >= number_runs[i].first && cp <= number_runs[i].last) {
            int n = snprintf(e->s, sizeof(e->s), "%u",
                             number_runs[i].num + (cp - number_runs[i].first));
            e->len = (uint8_t)n;
            return true;
        }
    }
    for (size_t i = 0; i < ARRAY_LEN(letter_fixes); i++) {
        if (cp == letter_fixes[i].cp) {
            e->len = (uint8_t)strlen(letter_fixes[i].s);
            memcpy(e->s, letter_fixes[i].s, e->len + 1u);
            return true;
        }
    }

    /* Digits are digits in every script: Arabic-Indic "٥" is 5, though confusables.txt
     * files it under "o"; the runtime's leetspeak step decides when a digit is a letter. */
    int8_t gc = u_charType((UChar32)cp);
    if (gc == U_DECIMAL_DIGIT_NUMBER) {
        int32_t d = u_charDigitValue((UChar32)cp);
        if (d >= 0 && d <= 9) {
            e->s[0] = (char)('0' + d);
            e->s[1] = '\0';
            e->len = 1;
        }
        return true;
    }
    /* Letters of right-to-left scripts stay as they are: Arabic alef and heh, Hebrew vav and
     * samekh have Latin prototypes ("l", "o"), but in Arabic or Hebrew text they are letters
     * of a word, and mapping a few of them would turn that text into Latin fragments that
     * match short terms; a homoglyph attack inside a Latin word uses Cyrillic, Greek or
     * fancy fonts, which do not flip the writing direction. */
    UCharDirection dir = u_charDirection((UChar32)cp);
    if ((U_GC_L_MASK & U_MASK(gc)) && (dir == U_RIGHT_TO_LEFT || dir == U_RIGHT_TO_LEFT_ARABIC))
        return true;

    /* Steps 1-3 as specified: fold the case first, then look for confusables. */
    UChar in[2], s[UBUF];
    int32_t n = 0, sn;
    U16_APPEND_UNSAFE(in, n, cp);
    if (!fold_strip(g, in, n, s, &sn)) return false;
    if (!all_ascii(s, sn) && !skeletonize(g, s, &sn)) return false;

    /* Folding first loses what a capital looks like: Greek "Β" folds to "β", whose
     * prototype is "ß" ("ss"), and Cyrillic "Н" folds to "н", which has no ASCII prototype;
     * Greek "ᾼ" folds to "αι". Wherever NFKC_Casefold changes the code point, the skeleton of
     * the unfolded form (NFKC, marks dropped) is tried too and folded afterwards; it is
     * what the reader sees, so it wins when it gives a keepable result, unless it brings
     * in punctuation: confusables.txt spells hooks as apostrophes ("Ƥ" -> "'P"), while the
     * folded form maps the same letter cleanly ("ƥ" -> "p"). */
    if (u_hasBinaryProperty((UChar32)cp, UCHAR_CHANGES_WHEN_NFKC_CASEFOLDED)) {
        UChar k[UBUF], v[UBUF];
        UErrorCode st = U_ZERO_ERROR;
        int32_t kn = unorm2_normalize(g->nfkc, in, n, k, UBUF, &st);
        if (!icu_ok(st, "NFKC")) return false;
        int32_t vn = unorm2_normalize(g->nfd, k, kn, v, UBUF, &st);
        if (!icu_ok(st, "NFD")) return false;
        vn = strip_marks(v, vn);
        if (!skeletonize(g, v, &vn)) return false;
        if (keepable(v, vn) &&
            (!keepable(s, sn) || count_nonalnum(v, vn) <= count_nonalnum(s, sn))) {
            memcpy(s, v, (size_t)vn * sizeof(UChar));
            sn = vn;
        }
    }

    /* A Latin letter the data leaves unmapped, or maps with punctuation ("Ƈ" -> "c'"), is
     * named after the letter it shows ("LATIN SMALL LETTER K WITH DESCENDER"). */
    if (!keepable(s, sn) || count_nonalnum(s, sn) > 0) {
        char c;
        if (letter_from_name(cp, &c)) {
            s[0] = (UChar)c;
            sn = 1;
        }
    }

    if (!keepable(s, sn)) return true;
    if (sn == 1 && s[0] == cp) return true; /* cannot happen for cp >= 0x80; kept for rule 5 */
    size_t len = (size_t)sn <= MAX_SKEL ? (size_t)sn : MAX_SKEL; /* keepable() checked it */
    for (size_t i = 0; i < len; i++)
        e->s[i] = (char)s[i];
    e->s[len] = '\0';
    e->len = (uint8_t)len;
    return true;
}

/* Which code points the report should call "unmapped": Latin letters, digits and numbers,
 * and symbols named after a Latin letter (circled, squared, ...). Greek letters of the math
 * block, katakana of the halfwidth block and the like are not expected to become ASCII. */
static bool is_latinish(uint32_t cp)
{
    int8_t gc = u_charType((UChar32)cp);
    if (U_GC_N_MASK & U_MASK(gc)) return true;
    if (!(U_GC_L_MASK & U_MASK(gc)) && gc != U_OTHER_SYMBOL) return false;
    UErrorCode st = U_ZERO_ERROR;
    if (uscript_getScript((UChar32)cp, &st) == USCRIPT_LATIN && U_SUCCESS(st)) return true;
    char name[256];
    st = U_ZERO_ERROR;
    u_charName((UChar32)cp, U_UNICODE_CHAR_NAME, name, sizeof(name), &st);
    return U_SUCCESS(st) && strstr(name, "LATIN") != NULL;
}

static void report_unmapped(const bool *mapped)
{
    fprintf(stderr,
            "gen_skeleton: Latin letters/numbers left unmapped in the fancy-text blocks:\n");
    for (size_t w = 0; w < ARRAY_LEN(watched); w++) {
        unsigned count = 0, col = 0;
        for (uint32_t cp = watched[w].first; cp <= watched[w].last; cp++) {
            if (mapped[cp - 0x80] || !is_latinish(cp)) continue;
            uint32_t end = cp;
            while (end < watched[w].last && !mapped[end + 1 - 0x80] && is_latinish(end + 1))
                end++;
            if (count == 0) col = (unsigned)fprintf(stderr, "  %s:", watched[w].name);
            if (col > 90) col = (unsigned)fprintf(stderr, "\n     ");
            if (end == cp)
                col += (unsigned)fprintf(stderr, " U+%04X", (unsigned)cp);
            else
                col += (unsigned)fprintf(stderr, " U+%04X..%04X", (unsigned)cp, (unsigned)end);
            count += end - cp + 1;
            cp = end;
        }
        if (count) fprintf(stderr, " (%u)\n", count);
    }
}

static int cmp_by_len_desc(const void *pa, const void *pb)
{
    const entry *a = *(const entry *const *)pa, *b = *(const entry *const *)pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    int c = strcmp(a->s, b->s);
    if (c) return c;
    return a->cp < b->cp ? -1 : a->cp > b->cp;
}

/* Packs the strings into one pool, longest first, so that a string already contained in the
 * pool ("f" inside "ff") costs nothing. The order is fixed by cmp_by_len_desc. */
static char *build_pool(entry *ents, size_t nents, size_t *pool_len)
{
    entry **order = malloc((nents ? nents : 1) * sizeof(*order));
    char *pool = malloc(nents * MAX_SKEL + 1);
    if (!order || !pool) goto fail;
    for (size_t i = 0; i < nents; i++)
        order[i] = &ents[i];
    qsort(order, nents, sizeof(*order), cmp_by_len_desc);

    size_t len = 0;
    pool[0] = '\0';
    for (size_t i = 0; i < nents; i++) {
        if (strstr(pool, order[i]->s)) continue;
        memcpy(pool + len, order[i]->s, order[i]->len + 1u);
        len += order[i]->len;
    }
    if (len > POOL_MAX) {
        fprintf(stderr, "gen_skeleton: string pool too large (%zu bytes)\n", len);
        goto fail;
    }
    free(order);
    *pool_len = len;
    return pool;
fail:
    if (!order || !pool) fprintf(stderr, "gen_skeleton: out of memory\n");
    free(order);
    free(pool);
    return NULL;
}

static void put_pool_literal(FILE *f, const char *pool, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (i % 64 == 0) fputs(i ? "\"\n    \"" : "    \"", f);
        char c = pool[i];
        /* '?' is escaped because -std=c11 turns "??)" and friends into trigraphs. */
        if (c == '"' || c == '\\' || c == '?') fputc('\\', f);
        fputc(c, f);
    }
    fputs(len ? "\";\n" : "    \"\";\n", f);
}

static bool write_table(const char *path, const uint16_t *index, const uint32_t (*pages)[256],
                        unsigned npages, const char *pool, size_t pool_len)
{
    size_t tmp_len = strlen(path) + 5;
    char *tmp = malloc(tmp_len);
    FILE *f = NULL;
    if (!tmp) {
        fprintf(stderr, "gen_skeleton: out of memory\n");
        return false;
    }
    /* Written beside the target and renamed, so an interrupted run never leaves a truncated
     * table that the build would take as up to date. */
    snprintf(tmp, tmp_len, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) {
        perror(tmp);
        goto fail;
    }

    UVersionInfo icu, uni;
    char icu_s[U_MAX_VERSION_STRING_LENGTH], uni_s[U_MAX_VERSION_STRING_LENGTH];
    u_getVersion(icu);
    u_getUnicodeVersion(uni);
    u_versionToString(icu, icu_s);
    u_versionToString(uni, uni_s);

    fprintf(f,
            "/* Generated by tools/gen_skeleton.c from ICU %s (Unicode %s) data. Do not edit.\n"
            " * See src/text/skeleton_table.h for the layout. */\n"
            "#include \"text/skeleton_table.h\"\n\n",
            icu_s, uni_s);

    fputs("const uint16_t wh_skel_page_index[0x1100] = {\n", f);
    for (unsigned i = 0; i < NPAGES; i++)
        fprintf(f, "%s%u,%s", i % 16 ? " " : "    ", index[i], i % 16 == 15 ? "\n" : "");
    fputs("};\n\n", f);

    fprintf(f, "const uint32_t wh_skel_pages[%u][256] = {\n    {0}, /* page 0: no mappings */\n",
            npages);
    for (unsigned p = 1; p < npages; p++) {
        /* Name the first block that uses the page, to make the file easy to read. */
        unsigned first = 0;
        while (index[first] != p)
            first++;
        fprintf(f, "    { /* page %u: U+%04X.. */\n", p, first << 8);
        int col = 0;
        for (unsigned i = 0; i < 256; i++) {
            if (!pages[p][i]) continue;
            fprintf(f, "%s[0x%02X] = 0x%08X,", col ? " " : "        ", i, (unsigned)pages[p][i]);
            if (++col == 4) {
                fputc('\n', f);
                col = 0;
            }
        }
        fputs(col ? "\n    },\n" : "    },\n", f);
    }
    fputs("};\n\n", f);

    fputs("const char wh_skel_pool[] =\n", f);
    put_pool_literal(f, pool, pool_len);

    if (ferror(f)) {
        fprintf(stderr, "gen_skeleton: %s: write error\n", tmp);
        goto fail;
    }
    int rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        perror(tmp);
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        perror(path);
        goto fail;
    }
    free(tmp);
    return true;
fail:
    if (f) fclose(f);
    remove(tmp);
    free(tmp);
    return false;
}

int main(int argc, char **argv)
{
    int status = 1;
    gen_ctx g = {0};
    entry *ents = NULL;
    bool *mapped = NULL;
    uint16_t *index = NULL;
    uint32_t(*pages)[256] = NULL;
    char *pool = NULL;
    size_t nents = 0, cap = 0;

    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: gen_skeleton OUT.c\n");
        return 1;
    }

    UErrorCode st = U_ZERO_ERROR;
    g.nfkc_cf = unorm2_getNFKCCasefoldInstance(&st);
    if (!icu_ok(st, "unorm2_getNFKCCasefoldInstance")) goto fail;
    g.nfkc = unorm2_getNFKCInstance(&st);
    if (!icu_ok(st, "unorm2_getNFKCInstance")) goto fail;
    g.nfd = unorm2_getNFDInstance(&st);
    if (!icu_ok(st, "unorm2_getNFDInstance")) goto fail;
    g.sc = uspoof_open(&st);
    if (!icu_ok(st, "uspoof_open")) goto fail;
    /* Only the confusables data matters here; getSkeleton ignores the other checks. */
    uspoof_setChecks(g.sc, USPOOF_CONFUSABLE, &st);
    if (!icu_ok(st, "uspoof_setChecks")) goto fail;
    if (!init_protos(&g)) goto fail;

    mapped = calloc(CP_MAX + 1 - 0x80, sizeof(*mapped));
    index = calloc(NPAGES, sizeof(*index));
    /* Page 0 is the shared empty page; at worst every block gets its own page. */
    pages = calloc(NPAGES + 1, sizeof(*pages));
    if (!mapped || !index || !pages) {
        fprintf(stderr, "gen_skeleton: out of memory\n");
        goto fail;
    }

    for (uint32_t cp = 0x80; cp <= CP_MAX; cp++) {
        if ((cp >= 0xD800 && cp <= 0xDFFF) || is_noncharacter(cp)) continue;
        entry e;
        if (!map_cp(&g, cp, &e)) goto fail;
        if (!e.len) continue;
        if (nents == cap) {
            cap = cap ? cap * 2 : 4096;
            entry *grown = realloc(ents, cap * sizeof(*ents));
            if (!grown) {
                fprintf(stderr, "gen_skeleton: out of memory\n");
                goto fail;
            }
            ents = grown;
        }
        ents[nents++] = e;
        mapped[cp - 0x80] = true;
    }

    size_t pool_len;
    pool = build_pool(ents, nents, &pool_len);
    if (!pool) goto fail;

    /* Entries are in code point order, so each block's entries are one contiguous run. */
    unsigned npages = 1;
    size_t next = 0;
    for (unsigned blk = 0; blk < NPAGES; blk++) {
        uint32_t *page = pages[npages];
        memset(page, 0, sizeof(pages[0]));
        for (; next < nents && ents[next].cp >> 8 == blk; next++) {
            size_t off = (size_t)(strstr(pool, ents[next].s) - pool);
            page[ents[next].cp & 0xFF] = (uint32_t)(off << 8) | ents[next].len;
        }
        unsigned p = 0;
        while (p < npages && memcmp(pages[p], page, sizeof(pages[0])) != 0)
            p++;
        if (p == npages) npages++;
        index[blk] = (uint16_t)p;
    }

    size_t total = NPAGES * sizeof(*index) + npages * sizeof(pages[0]) + pool_len + 1;
    fprintf(stderr,
            "gen_skeleton: %zu mappings, %u pages, pool %zu bytes; tables %zu bytes "
            "(index %zu + pages %zu + pool %zu)\n",
            nents, npages, pool_len, total, NPAGES * sizeof(*index), npages * sizeof(pages[0]),
            pool_len + 1);
    report_unmapped(mapped);

    if (!write_table(argv[1], index, (const uint32_t(*)[256])pages, npages, pool, pool_len))
        goto fail;
    status = 0;
fail:
    if (g.sc) uspoof_close(g.sc);
    free(ents);
    free(mapped);
    free(index);
    free(pages);
    free(pool);
    return status;
}
