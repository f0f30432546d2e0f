/* matcher.c - Hyperscan databases per view, PCRE2 confirmation, on-disk cache. */
#define _GNU_SOURCE
#include "matcher.h"
#include "words4.h"

#include <emmintrin.h>
#include <errno.h>
#include <limits.h>
#include <hs/hs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#define PCRE2_FAILED ((pcre2_code *)(uintptr_t)1)
#define MAX_SPANS_PER_PATTERN 8 /* stored per pattern; more are counted, not stored */
#define MAX_PERMIT_SPANS 1024
#define MAX_TRIES_PER_PATTERN 65536 /* spans looked at per pattern: bounded by the text anyway */
#define MAX_REV_HITS 16             /* reversed words kept per message; one is enough to act */
/* Hyperscan end offsets of one pattern closer than this are kept as one range: PCRE2 then
 * looks once across the gap instead of once per end. */
#define END_GAP 64
#define NONE UINT32_MAX

typedef struct {
    wh_pat_kind kind;
    wh_view_id view;      /* where PCRE2 confirms and spans are measured */
    wh_view_id scan_view; /* where Hyperscan looks (collapsed for word lists) */
    char *hs_expr;
    char *pcre_expr;
    unsigned hs_flags;
    uint32_t pcre_opts;
    bool prefilter;
    bool failed;    /* rejected at compile time: never scanned */
    uint16_t words; /* WORD: the most squashed words one match spans (1 + spaces in the term) */
    uint32_t width; /* literal WORD: its length in bytes, every match's; else 0 */
    int32_t permit_set, cancel_set;
    _Atomic(pcre2_code *) code;
} pat;

struct wh_matcher {
    pat *pats;
    uint32_t n;
    hs_database_t *db[WH_VIEW__COUNT];
    /* Unions of the raw/folded/skeleton databases, indexed by a mask of those views: when
     * views of a message are the same bytes (lowercase ASCII without leet is raw, folded
     * and skeleton at once), one scan of the union replaces a scan per view. */
    hs_database_t *udb[8];
    hs_scratch_t *proto; /* scratch prototype, cloned per thread */
    uint32_t views;
    /* Reversed words ("kcuf"): the hashes of the collapsed, reversed list terms that may be
     * read backwards (see rev_eligible), open addressing; NULL when there are none. */
    struct rev_slot {
        uint64_t h; /* 0: empty */
        uint32_t pattern;
    } * rev;
    uint32_t rev_mask;
    uint32_t rev_lo, rev_hi;  /* shortest and longest collapsed reversed term */
    uint64_t rev_filter[512]; /* rev_keys of every reversed term: most words stop here */
};

struct wh_match_scratch {
    hs_scratch_t *hs;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    /* The patterns Hyperscan reported, each once (and the reversed words' candidates): a
     * pattern sits in one scanned database per event, so one slot per pattern is always
     * enough, and a message full of distinct list words cannot push a later one out. */
    uint32_t *hits;
    uint32_t nhits, cap_hits;
    /* Where each reported pattern ended, as ranges of end offsets in its scanned view: a
     * list per pattern (head, tail: indexes into ranges), valid when stamp[pattern] is this
     * scan's epoch, so nothing is cleared per event. PCRE2 then looks only near them. */
    struct end_range {
        uint32_t lo, hi, next;
    } * ranges;
    uint32_t nranges, cap_ranges;
    struct pat_ends {
        uint32_t stamp, head, tail;
        bool unsorted; /* a range arrived before the previous one */
        bool whole;    /* no range could be stored: PCRE2 looks at the whole view */
    } * ends;
    uint32_t epoch;
    /* The windows of one pattern: where its PCRE2 matches may start, [ws, we] (words of the
     * squashed view, or bytes: see windows). */
    struct window {
        uint32_t ws, we;
    } * win;
    uint32_t cap_win;
    /* Where the words (runs of bytes other than ' ') of this event's squashed and collapsed
     * views start; built on the first word pattern that needs them (tables_state: 0 not
     * yet, 1 built, 2 the views' words do not pair up: word patterns search the whole view). */
    uint32_t *sq_ws, *co_ws;
    uint32_t nsq, cap_sq, cap_co;
    int tables_state;
    bool whole; /* wh_match_scratch_set_whole */
    uint32_t *confirmed;
    uint32_t nconfirmed;
    struct permit_span {
        int32_t set;
        uint32_t rs, re;
    } permits[MAX_PERMIT_SPANS];
    uint32_t npermits;
    struct rev_hit {
        uint32_t pattern, token; /* the token-th word of the squashed view, read backwards */
    } rev[MAX_REV_HITS];
    uint32_t nrev;
};

/* ---- expressions ---- */

/* Regex body for a normalized (squashed) term.
 *  - A letter may be stretched, but a single letter matches once or three-plus times, never
 *    exactly twice: "fuuuck" is "fuck", while "Bonner" is not "boner" nor "rapping" "raping".
 *  - 'l' also matches 'i', which is what 1, |, ! and a capital I become (ki11, kiII -> kill);
 *    'i' matches only 'i', so "tilt" is not "tit" and "twinkle" not "twinkie".
 *  - Between words of a multi-word term, spacing may vanish ("killyourself") when both words
 *    have three or more characters, or when the term has JOIN_MIN or more characters besides
 *    spaces ("2girls1cup", "pieceofshit", "tiedup"): that long a run is the term, whatever
 *    its pieces. Short pieces of a short term ("s&m") keep a separator, or "Sm" would hit.
 *  - A digit also matches the letter it reads as in leetspeak: the text's "2girls1cup" has
 *    its '1' read as an 'i' (a digit among letters), the term's lone "1" has not. */
#define JOIN_MIN 6

static const char digit_leet[10] = {'o', 'i', 0, 'e', 'a', 's', 0, 't', 'b', 'g'};

static void word_body(wh_buf *b, const char *t)
{
    const unsigned char *p = (const unsigned char *)t;
    size_t n = strlen(t), solid = 0;
    for (size_t i = 0; i < n; i++)
        solid += p[i] != ' ';
    /* A term that is one letter repeated ("kkk", "xxx") is matched exactly: stretched, it
     * would be Brazilian laughter ("kkkkkk") or a row of kisses. */
    bool one_run = n > 1;
    for (size_t i = 1; i < n && one_run; i++)
        one_run = p[i] == p[0];
    if (one_run && ((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= '0' && p[0] <= '9'))) {
        wh_buf_printf(b, "%c{%zu}", p[0], n);
        return;
    }
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == ' ') {
            size_t prev = 0, next = 0, k = i;
            while (k > 0 && p[k - 1] != ' ')
                k--, prev++;
            k = i;
            while (k < n && p[k] == ' ')
                k++;
            while (k < n && p[k] != ' ')
                k++, next++;
            while (i < n && p[i] == ' ')
                i++;
            wh_buf_puts(b, (prev >= 3 && next >= 3) || solid >= JOIN_MIN ? " *" : " +");
            continue;
        }
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            size_t run = 1;
            while (i + run < n && p[i + run] == c)
                run++;
            char dcls[5] = {'[', (char)c, 0, ']', 0};
            if (c >= '0' && c <= '9') dcls[2] = digit_leet[c - '0'];
            const char *cls = c == 'l' ? "[li]" : dcls[2] ? dcls : NULL;
            char one[2] = {(char)c, 0};
            const char *x = cls ? cls : one;
            if (run == 1)
                wh_buf_printf(b, "%s(?:%s%s+)?", x, x, x);
            else
                wh_buf_printf(b, "%s{%zu,}", x, run);
            i += run;
            continue;
        }
        wh_buf_printf(b, "\\x%02x", c);
        i++;
    }
}

/* The Hyperscan side of a word: a near-literal on the collapsed view (runs of a letter
 * collapsed, l = i, optional spaces) that finds a superset of what the exact PCRE2 form
 * accepts. Literals are what Hyperscan is fastest at; the exact stretch/i-l/spacing rules
 * are only checked, by PCRE2, in the rare messages where the literal occurs.
 *
 * Word boundaries (\b) are left to PCRE2 (its form wants a space or an edge on both sides)
 * except for terms of EDGE_MAX collapsed characters or fewer. A \b makes a term a pattern
 * instead of a literal to Hyperscan's compiler: 10,000 terms took 9.8 s and 50,000 took
 * 67 s and 1.1 GB with it, 0.3 s and 2.4 s without. Inside longer words the short terms
 * are common ("ass" in "class") and without their \b PCRE2 would reject them on many
 * messages (+0.45% instructions on the bench stream); with it the stream costs 0.26% less
 * than with every term bounded (docs/architecture.md). */
#define EDGE_MAX 3

static void word_prefilter(wh_buf *b, const wh_pattern_spec *sp)
{
    size_t n = strlen(sp->expr);
    char *c = malloc(n + 1);
    if (!c) {
        b->oom = true;
        return;
    }
    uint32_t cn = wh_collapse(sp->expr, (uint32_t)n, c);
    unsigned char first = (unsigned char)c[0], last = cn ? (unsigned char)c[cn - 1] : 0;
    bool edge_first = (first >= 'a' && first <= 'z') || (first >= '0' && first <= '9');
    bool edge_last = (last >= 'a' && last <= 'z') || (last >= '0' && last <= '9');
    if (cn > EDGE_MAX) edge_first = edge_last = false; /* a literal: see above */
    if (!sp->prefix_star && edge_first) wh_buf_puts(b, "\\b");
    for (uint32_t i = 0; i < cn; i++) {
        unsigned char ch = (unsigned char)c[i];
        if (ch == ' ' && i > 0 && i + 1 < cn && c[i - 1] == c[i + 1])
            wh_buf_puts(b, "(?: "), wh_buf_putc(b, c[++i]), wh_buf_puts(b, ")?"); /* "god damn" */
        else if (ch == ' ')
            wh_buf_puts(b, " ?");
        else if (ch >= '0' && ch <= '9' && digit_leet[ch - '0'])
            wh_buf_printf(b, "[%c%c]", ch, digit_leet[ch - '0']);
        else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
            wh_buf_putc(b, (char)ch);
        else
            wh_buf_printf(b, "\\x%02x", ch);
    }
    if (!sp->suffix_star && edge_last) wh_buf_puts(b, "\\b");
    free(c);
}

/* Hyperscan cannot run back-references; its prefilter mode widens them a lot (a symbol
 * followed by any seven characters, for "([^\\w\\s])\\1{7,}"), so PCRE2 would confirm on
 * most messages. Replacing each \\N by a copy of group N's body is a much tighter superset
 * ("[^\\w\\s]" eight times). Returns NULL when there is nothing to rewrite or the pattern
 * is beyond this simple reading (named references, nested references). */
static char *widen_backrefs(const char *re)
{
    size_t n = strlen(re);
    struct {
        size_t start, end;
    } grp[10] = {{0, 0}};
    int stack[64], depth = 0, ngroups = 0;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\') {
            if (i + 1 < n && re[i + 1] >= '1' && re[i + 1] <= '9') {
                any = true;
                if (i + 2 < n && re[i + 2] >= '0' && re[i + 2] <= '9') return NULL; /* \\10.. */
            }
            if (i + 1 < n && (re[i + 1] == 'g' || re[i + 1] == 'k')) return NULL;
            i++;
        } else if (c == '[') {
            size_t j = i + 1;
            if (j < n && re[j] == '^') j++;
            if (j < n && re[j] == ']') j++;
            for (; j < n && re[j] != ']'; j++)
                if (re[j] == '\\') j++;
            i = j;
        } else if (c == '(') {
            if (depth == 64) return NULL;
            bool capture = i + 1 >= n || re[i + 1] != '?';
            if (!capture && i + 2 < n &&
                (re[i + 2] == '<' || re[i + 2] == 'P' || re[i + 2] == '\'') && re[i + 3] != '=' &&
                re[i + 3] != '!')
                return NULL; /* named groups: leave it to Hyperscan's prefilter */
            if (capture) {
                ngroups++;
                if (ngroups < 10) grp[ngroups].start = i + 1;
                stack[depth++] = ngroups;
            } else {
                stack[depth++] = 0;
            }
        } else if (c == ')') {
            if (!depth) return NULL;
            int g = stack[--depth];
            if (g > 0 && g < 10) grp[g].end = i;
        }
    }
    if (!any) return NULL;
    wh_buf b;
    wh_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '\\' && i + 1 < n && re[i + 1] >= '1' && re[i + 1] <= '9') {
            int g = re[i + 1] - '0';
            if (g > ngroups || grp[g].end <= grp[g].start || grp[g].end > i) {
                wh_buf_free(&b);
                return NULL;
            }
            const char *body = re + grp[g].start;
            size_t bl = grp[g].end - grp[g].start;
            /* Anchors and assertions would not hold again at the copy's place. */
            bool unsafe =
                memchr(body, '^', bl) || memchr(body, '$', bl) || memchr(body, '(', bl) != NULL;
            for (size_t k = 0; k + 1 < bl && !unsafe; k++)
                if (body[k] == '\\' && strchr("123456789bBAzZGK", body[k + 1])) unsafe = true;
            if (unsafe) {
                wh_buf_free(&b);
                return NULL;
            }
            wh_buf_puts(&b, "(?:");
            wh_buf_append(&b, body, bl);
            wh_buf_putc(&b, ')');
            i++;
            continue;
        }
        wh_buf_putc(&b, re[i]);
        if (re[i] == '\\' && i + 1 < n) wh_buf_putc(&b, re[++i]);
    }
    char *out = b.oom ? NULL : strdup(wh_buf_cstr(&b));
    wh_buf_free(&b);
    return out;
}

/* Where the character class that starts at re[i] ends (one past it), or 0 when it is not a
 * class this simple reading understands: a bracket expression (escapes, POSIX names, a
 * leading ']') or a \p / \P escape. */
static size_t class_end(const char *re, size_t n, size_t i)
{
    if (re[i] == '\\') {
        if (i + 2 >= n || (re[i + 1] != 'p' && re[i + 1] != 'P')) return 0;
        if (re[i + 2] != '{') return i + 3; /* \pL */
        const char *close = memchr(re + i + 3, '}', n - i - 3);
        return close ? (size_t)(close - re) + 1 : 0;
    }
    size_t j = i + 1;
    if (j < n && re[j] == '^') j++;
    if (j < n && re[j] == ']') j++;
    for (; j < n; j++) {
        if (re[j] == ']') return j + 1;
        if (re[j] == '\\') {
            if (j + 1 < n && (re[j + 1] == 'Q' || re[j + 1] == 'E')) return 0;
            j++;
        } else if (re[j] == '[' && j + 1 < n && re[j + 1] == ':') {
            const char *close = strstr(re + j + 2, ":]");
            if (!close) return 0;
            j = (size_t)(close - re) + 1;
        } else if (re[j] == '[') {
            return 0; /* a nested class (Hyperscan has none; PCRE2 reads '[' as a literal) */
        }
    }
    return 0;
}

/* A counted repeat at re[i] ("{m}", "{m,}", "{m,n}", not possessive): its end (one past
 * the '}'), with *lo and *hi (UINT32_MAX: no upper bound); 0 when there is none. */
static size_t counted_repeat(const char *re, size_t n, size_t i, uint32_t *lo, uint32_t *hi)
{
    if (i >= n || re[i] != '{' || i + 1 >= n || re[i + 1] < '0' || re[i + 1] > '9') return 0;
    char *e;
    unsigned long a = strtoul(re + i + 1, &e, 10), z = a;
    if (*e == ',') {
        z = e[1] >= '0' && e[1] <= '9' ? strtoul(e + 1, &e, 10) : ULONG_MAX;
        if (z == ULONG_MAX) e++;
    }
    if (*e != '}' || a > 65535 || (z != ULONG_MAX && (z > 65535 || z < a))) return 0;
    size_t end = (size_t)(e - re) + 1;
    if (end < n && re[end] == '+') return 0; /* possessive: a wider repeat would match less */
    *lo = (uint32_t)a;
    *hi = z == ULONG_MAX ? UINT32_MAX : (uint32_t)z;
    return end;
}

/* Hyperscan compiles a counted repeat as that many copies of what it repeats, and two kinds
 * of atom are big in UTF-8: a Unicode property (\p{L}, or a class holding one: hundreds of
 * byte ranges) and '.' (every sequence of one to four bytes). "[^\\p{L}\\p{N}\\s]{20,}"
 * alone took 2.2 s to compile, in each database holding it, and ".{0,60}" most of a
 * database's time. Hyperscan only proposes; PCRE2 confirms every hit on the pattern as
 * written. So Hyperscan is given a superset that compiles in milliseconds:
 *  - a property class under a counted repeat becomes exactly its ASCII members (PCRE2 tells
 *    which, with the pattern's options) plus any character beyond ASCII;
 *  - a '.' or property class repeated up to more than WIDE_REPEAT_MAX times loses the upper
 *    bound (".{0,60}" is ".*").
 * Returns NULL when there is nothing to widen or the pattern is beyond this simple reading
 * (\Q..\E, \c, inline options or comments, negative assertions). */
#define WIDE_REPEAT_MAX 8

static char *widen_repeats(const char *re, uint32_t pcre_opts)
{
    size_t n = strlen(re);
    /* a wider atom inside a negative assertion would reject more, not less */
    if (strstr(re, "(?!") || strstr(re, "(?<!")) return NULL;
    for (size_t i = 0; i + 2 < n; i++)
        if (re[i] == '(' && re[i + 1] == '?' && strchr("imnsxUJ^-#", re[i + 2])) return NULL;
    wh_buf b;
    wh_buf_init(&b);
    bool any = false;
    for (size_t i = 0; i < n;) {
        if (re[i] == '\\' && i + 1 < n && strchr("QEc", re[i + 1])) goto keep_all;
        size_t end = re[i] == '.'                      ? i + 1
                     : (re[i] == '[' || re[i] == '\\') ? class_end(re, n, i)
                                                       : 0;
        if (re[i] == '[' && !end) goto keep_all;
        bool property = end && re[i] != '.' &&
                        (memmem(re + i, end - i, "\\p", 2) || memmem(re + i, end - i, "\\P", 2));
        uint32_t lo = 0, hi = 0;
        size_t qend = end && (property || re[i] == '.') ? counted_repeat(re, n, end, &lo, &hi) : 0;
        bool unbound = qend && hi != UINT32_MAX && hi > lo && hi > WIDE_REPEAT_MAX;
        if (!qend || (!property && !unbound)) {
            size_t step = end ? end - i : (re[i] == '\\' && i + 1 < n ? 2 : 1);
            wh_buf_append(&b, re + i, step);
            i += step;
            continue;
        }
        if (property) { /* its ASCII members, then all beyond */
            char cls[300];
            if (end - i + 1 > sizeof(cls)) goto keep_all;
            memcpy(cls, re + i, end - i);
            cls[end - i] = 0;
            int err;
            PCRE2_SIZE off;
            pcre2_code *c = pcre2_compile((PCRE2_SPTR)cls, PCRE2_ZERO_TERMINATED,
                                          pcre_opts | PCRE2_ANCHORED, &err, &off, NULL);
            pcre2_match_data *md = c ? pcre2_match_data_create_from_pattern(c, NULL) : NULL;
            if (!md) {
                pcre2_code_free(c);
                goto keep_all;
            }
            bool in[129] = {false};
            for (int ch = 0; ch < 128; ch++) {
                char one = (char)ch;
                in[ch] = pcre2_match(c, (PCRE2_SPTR)&one, 1, 0, 0, md, NULL) >= 0;
            }
            pcre2_match_data_free(md);
            pcre2_code_free(c);
            wh_buf_putc(&b, '[');
            for (int ch = 0, run; ch < 128; ch += run) {
                for (run = 1; in[ch] && in[ch + run]; run++)
                    ;
                if (in[ch])
                    wh_buf_printf(&b, run > 1 ? "\\x%02x-\\x%02x" : "\\x%02x", ch, ch + run - 1);
            }
            wh_buf_puts(&b, "\\x{80}-\\x{10ffff}]");
        } else {
            wh_buf_append(&b, re + i, end - i);
        }
        if (unbound)
            wh_buf_printf(&b, "{%u,}", lo);
        else
            wh_buf_append(&b, re + end, qend - end);
        any = true;
        i = qend;
    }
    if (!any || b.oom) goto keep_all;
    char *out = strdup(wh_buf_cstr(&b));
    wh_buf_free(&b);
    return out;
keep_all:
    wh_buf_free(&b);
    return NULL;
}

static bool make_exprs(const wh_pattern_spec *sp, pat *p)
{
    p->permit_set = sp->permit_set;
    p->cancel_set = sp->cancel_set;
    p->kind = sp->kind;
    p->view = sp->view;
    p->scan_view = sp->view;
    if (sp->kind == WH_PAT_REGEX) {
        /* A regex reports once: many match everywhere ("\\b(\\w{2,})(\\s+\\1\\b){5,}" widened is
         * any six words), and their end offsets would cost more to collect than the search
         * they could save. PCRE2 searches its whole view (see windows). */
        p->hs_flags = HS_FLAG_SINGLEMATCH | HS_FLAG_UTF8;
        p->pcre_opts = PCRE2_UTF;
        if (sp->view != WH_VIEW_RAW) {
            p->hs_flags |= HS_FLAG_CASELESS;
            p->pcre_opts |= PCRE2_CASELESS;
        }
        char *wide = widen_backrefs(sp->expr);
        p->hs_expr = widen_repeats(wide ? wide : sp->expr, p->pcre_opts);
        if (p->hs_expr)
            free(wide);
        else
            p->hs_expr = wide ? wide : strdup(sp->expr);
        p->pcre_expr = strdup(sp->expr);
        return p->hs_expr && p->pcre_expr;
    }
    wh_buf body, hs, pc;
    wh_buf_init(&body);
    wh_buf_init(&hs);
    wh_buf_init(&pc);
    if (sp->literal) {
        for (const unsigned char *q = (const unsigned char *)sp->expr; *q; q++)
            wh_buf_printf(&body, "\\x%02x", *q);
        p->hs_expr = strdup(wh_buf_cstr(&body));
        p->pcre_expr = strdup(wh_buf_cstr(&body));
        p->hs_flags = 0;
        p->pcre_opts = 0;
        p->width = (uint32_t)strlen(sp->expr);
        bool ok = !body.oom && p->hs_expr && p->pcre_expr;
        wh_buf_free(&body);
        wh_buf_free(&hs);
        wh_buf_free(&pc);
        return ok;
    }
    word_body(&body, sp->expr);
    const char *bd = wh_buf_cstr(&body);
    word_prefilter(&hs, sp);
    p->scan_view = WH_VIEW_COLLAPSED;
    wh_buf_printf(&pc, "(?<![^ ])%s%s%s(?![^ ])", sp->prefix_star ? "[^ ]*" : "", bd,
                  sp->suffix_star ? "[^ ]*" : "");
    p->hs_expr = strdup(wh_buf_cstr(&hs));
    p->pcre_expr = strdup(wh_buf_cstr(&pc));
    p->hs_flags = 0;
    p->pcre_opts = 0;
    p->words = 1;
    for (const char *q = sp->expr; *q && p->words < UINT16_MAX; q++)
        p->words += *q == ' ';
    bool ok = !body.oom && !hs.oom && !pc.oom && p->hs_expr && p->pcre_expr;
    wh_buf_free(&body);
    wh_buf_free(&hs);
    wh_buf_free(&pc);
    return ok;
}

static pcre2_code *pcre_compile_expr(const char *expr, uint32_t opts, char *msg, size_t msgn)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)expr, PCRE2_ZERO_TERMINATED, opts, &err, &off, NULL);
    if (!c) {
        if (msg) {
            PCRE2_UCHAR buf[200];
            pcre2_get_error_message(err, buf, sizeof(buf));
            snprintf(msg, msgn, "PCRE2: %s at offset %zu", (char *)buf, (size_t)off);
        }
        return NULL;
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* no JIT is slower, not wrong */
    return c;
}

char *wh_regex_check(const char *regex, wh_view_id view, bool full)
{
    char msg[300];
    uint32_t opts = PCRE2_UTF | (view != WH_VIEW_RAW ? PCRE2_CASELESS : 0);
    int perr;
    PCRE2_SIZE poff;
    pcre2_code *c =
        pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, opts, &perr, &poff, NULL);
    if (!c) {
        PCRE2_UCHAR buf[200];
        pcre2_get_error_message(perr, buf, sizeof(buf));
        snprintf(msg, sizeof(msg), "PCRE2: %s at offset %zu", (char *)buf, (size_t)poff);
        return strdup(msg);
    }
    pcre2_code_free(c);
    if (!full) return NULL;
    unsigned flags =
        HS_FLAG_SINGLEMATCH | HS_FLAG_UTF8 | (view != WH_VIEW_RAW ? HS_FLAG_CASELESS : 0);
    hs_database_t *db = NULL;
    hs_compile_error_t *e = NULL;
    if (hs_compile(regex, flags, HS_MODE_BLOCK, NULL, &db, &e) == HS_SUCCESS) {
        hs_free_database(db);
        return NULL;
    }
    snprintf(msg, sizeof(msg), "Hyperscan rejects this regex: %s", e ? e->message : "?");
    hs_free_compile_error(e);
    e = NULL;
    if (hs_compile(regex, flags | HS_FLAG_PREFILTER, HS_MODE_BLOCK, NULL, &db, &e) == HS_SUCCESS) {
        hs_free_database(db);
        return NULL; /* usable as a prefilter confirmed by PCRE2 */
    }
    hs_free_compile_error(e);
    return strdup(msg);
}

/* ---- reversed words ---- */

/* "kcuf" is "fuck" written backwards. Compiling every term reversed into Hyperscan cost 5% of
 * the core stream and flagged 23 dictionary words (docs/architecture.md), so a reversed term
 * is instead one hash look-up per word of the collapsed view, and only for terms where
 * reading backwards is rarely innocent:
 *  - whole words only, single-word terms of ASCII letters without '*';
 *  - REV_MIN letters or more; read backwards (collapsed, l as i), 15 of the 38 four-letter
 *    LDNOOBW English terms look up a word of the nine dictionaries of tests/run.sh ("lana",
 *    "tums", "flim", Turkish "suna"), against 3 of the 228 longer ones ("clips", "stilt"), of
 *    which the PCRE2 confirmation leaves one ("orgen");
 *  - never a reversal that is itself a word of those dictionaries: for four letters the whole
 *    set of their four-letter words (words4.c, 12,960 of them, with 'l' also read as 'i'),
 *    for longer terms the words that are a term of the npm word lists backwards
 *    (wh_rev_stop: German "regen", French "norte"); nor a palindrome.
 * A hash hit is only a candidate: the term's own PCRE2 form confirms the word read backwards,
 * so stretch, l/i and doubled-letter rules hold the same way round. */
#define REV_MIN 4
#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

static uint64_t rev_hash(const char *s, uint32_t n)
{
    uint64_t h = FNV_OFFSET;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    return h | 1; /* 0 marks an empty slot */
}

/* Whether w[0..3] (lowercase ASCII letters) is one of wh_words4 (sorted, 5 bits a letter,
 * the first lowest). */
static bool is_word4(const char *w)
{
    uint32_t code = 0;
    for (int i = 0; i < 4; i++) {
        if (w[i] < 'a' || w[i] > 'z') return false;
        code |= (uint32_t)(w[i] - 'a') << (5 * i);
    }
    uint32_t lo = 0, hi = wh_words4_len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (wh_words4[mid] < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < wh_words4_len && wh_words4[lo] == code;
}

/* Whether the four letters w, or any of them with an 'l' read as 'i' (as the term's own
 * form reads them), spell a dictionary word. */
static bool rev_is_word4(const char *w)
{
    for (uint32_t mask = 0; mask < 16; mask++) {
        char v[4];
        bool ok = true;
        for (int i = 0; i < 4; i++) {
            bool swap = mask >> i & 1;
            if (swap && w[i] != 'l') ok = false;
            v[i] = swap ? 'i' : w[i];
        }
        if (ok && is_word4(v)) return true;
    }
    return false;
}

/* The collapsed reversal of a word term into out (n + 1 bytes), or 0 when the term is not
 * read backwards. */
static uint32_t rev_eligible(const wh_pattern_spec *sp, char *out)
{
    if (sp->kind != WH_PAT_WORD || sp->literal || sp->permit_set >= 0 || sp->prefix_star ||
        sp->suffix_star)
        return 0;
    size_t n = strlen(sp->expr);
    if (n < REV_MIN || n > 64) return 0;
    char rev[65];
    for (size_t i = 0; i < n; i++) {
        if (sp->expr[i] < 'a' || sp->expr[i] > 'z') return 0;
        rev[i] = sp->expr[n - 1 - i];
    }
    if (!memcmp(rev, sp->expr, n)) return 0;
    if (n == 4 && rev_is_word4(rev)) return 0;
    /* a stop word is the reversal letter for letter, 'l' and 'i' alike (as the term's own form
     * reads them: "toggaf" is not TOGAF, a doubled letter being another word) */
    for (uint32_t k = 0; k < wh_rev_stop_len; k++) {
        const char *w = wh_rev_stop[k];
        size_t i = 0;
        while (
            i < n && w[i] &&
            (w[i] == rev[i] || ((w[i] == 'l' || w[i] == 'i') && (rev[i] == 'l' || rev[i] == 'i'))))
            i++;
        if (i == n && !w[i]) return 0;
    }
    return wh_collapse(rev, (uint32_t)n, out);
}

/* The two bits of a word in rev_filter (a Bloom filter of 32,768 bits): a hash of its first
 * two letters, its last letter and its length. With the first two letters alone, "tihs"
 * ("shit" backwards) let every "tide", "time" and "tiny" through to the hash. */
static inline uint32_t rev_key(const char *w, uint32_t len)
{
    uint32_t v = (unsigned char)w[0] | (uint32_t)(unsigned char)w[1] << 8 |
                 (uint32_t)(unsigned char)w[len ? len - 1 : 0] << 16 | len << 24;
    return v * 0x9E3779B1u;
}
static inline uint64_t rev_bit(const wh_matcher *m, uint32_t bit)
{
    return m->rev_filter[bit >> 6] >> (bit & 63) & 1;
}

static bool rev_build(wh_matcher *m, const wh_pattern_spec *specs, uint32_t n)
{
    char c[65];
    uint32_t cnt = 0, size = 16;
    for (uint32_t i = 0; i < n; i++)
        cnt += rev_eligible(&specs[i], c) > 0;
    if (!cnt) return true;
    while (size < cnt * 2)
        size *= 2;
    m->rev = calloc(size, sizeof(*m->rev));
    if (!m->rev) return false;
    m->rev_mask = size - 1;
    m->rev_lo = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t cn = rev_eligible(&specs[i], c);
        if (cn < 2 || m->pats[i].failed) continue;
        uint32_t b = rev_key(c, cn) >> 17;
        m->rev_filter[b >> 6] |= 1ull << (b & 63);
        uint64_t h = rev_hash(c, cn);
        uint32_t k = (uint32_t)(h >> 32) & m->rev_mask;
        while (m->rev[k].h)
            k = (k + 1) & m->rev_mask;
        m->rev[k] = (struct rev_slot){h, i};
        if (cn < m->rev_lo) m->rev_lo = cn;
        if (cn > m->rev_hi) m->rev_hi = cn;
    }
    return true;
}

/* Bit i: byte i of the 64 at p separates words (' ', or '\n' before an alternate reading). */
static inline uint64_t sep_mask64(const char *p)
{
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        __m128i sep = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
                                   _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
        m |= (uint64_t)(uint32_t)_mm_movemask_epi8(sep) << (16 * k);
    }
    return m;
}

/* A word of the collapsed view that may be a reversed term: the filter bit on (first two
 * letters, length) first, which almost every word fails without a jump taken. */
static inline void rev_word(const wh_matcher *m, wh_match_scratch *s, const char *w, uint32_t len,
                            uint32_t tok)
{
    uint32_t key = rev_key(w, len);
    bool maybe = (len - m->rev_lo <= m->rev_hi - m->rev_lo) & rev_bit(m, key >> 17);
    if (__builtin_expect(!maybe, 1)) return;
    uint64_t h = rev_hash(w, len);
    for (uint32_t k = (uint32_t)(h >> 32) & m->rev_mask; m->rev[k].h; k = (k + 1) & m->rev_mask) {
        if (m->rev[k].h != h || s->nrev == MAX_REV_HITS) continue;
        s->rev[s->nrev++] = (struct rev_hit){m->rev[k].pattern, tok};
        if (s->nhits < s->cap_hits) s->hits[s->nhits++] = m->rev[k].pattern;
    }
}

/* Looks each word of the collapsed view up among the reversed terms; a hit becomes a
 * candidate of its pattern (confirmed in wh_matcher_scan by rev_confirm). Word boundaries
 * come from a mask of the separators 64 bytes at a time (a chat line is one block; the view
 * has WH_VIEW_PAD readable bytes past its end), walked by word ends, each word's start being
 * the last start before it; a word whose first two letters and length no reversed term has
 * is dropped by one bit test. Every message pays this, so per byte it must cost next to
 * nothing (docs/architecture.md has the figure). */
static void rev_scan(const wh_matcher *m, wh_match_scratch *s, const wh_view *co)
{
    const char *p = co->s;
    uint32_t n = co->len, tok = 0, open_at = 0;
    uint64_t prev_sep = 1; /* the byte before the block is a separator (or the start) */
    for (uint32_t base = 0; base < n; base += 64) {
        uint64_t sep = sep_mask64(p + base);
        if (n - base < 64) sep |= ~0ull << (n - base); /* past the end: separators */
        uint64_t before = (sep << 1) | prev_sep;       /* bit i: byte i - 1 separates */
        uint64_t starts = ~sep & before, ends = sep & ~before;
        while (ends) {
            uint32_t e = (uint32_t)__builtin_ctzll(ends);
            ends &= ends - 1;
            uint64_t below = starts & ((1ull << e) - 1);
            uint32_t st = below ? base + 63 - (uint32_t)__builtin_clzll(below) : open_at;
            rev_word(m, s, p + st, base + e - st, tok++);
        }
        if (!(sep >> 63) && starts) open_at = base + 63 - (uint32_t)__builtin_clzll(starts);
        prev_sep = sep >> 63;
    }
    if (!prev_sep) rev_word(m, s, p + open_at, n - open_at, tok); /* ran to the end */
}

/* The word of a candidate, read backwards, against its term: [*vs, *ve) in the squashed view
 * when the whole word is the term. */
static bool rev_confirm(pcre2_code *c, wh_match_scratch *s, const wh_view *qv, uint32_t token,
                        uint32_t *vs, uint32_t *ve)
{
    uint32_t i = 0, a = 0, b = 0;
    for (uint32_t t = 0;; t++) {
        while (i < qv->len && (qv->s[i] == ' ' || qv->s[i] == '\n'))
            i++;
        if (i == qv->len) return false;
        a = i;
        while (i < qv->len && qv->s[i] != ' ' && qv->s[i] != '\n')
            i++;
        b = i;
        if (t == token) break;
    }
    char w[256];
    if (b - a >= sizeof(w)) return false;
    for (uint32_t k = 0; k < b - a; k++) {
        if ((unsigned char)qv->s[b - 1 - k] >= 0x80) return false;
        w[k] = qv->s[b - 1 - k];
    }
    int rc = pcre2_match(c, (PCRE2_SPTR)w, b - a, 0, PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED, s->md,
                         s->mctx);
    if (rc < 0 || pcre2_get_ovector_pointer(s->md)[1] != b - a) return false;
    *vs = a;
    *ve = b;
    return true;
}

/* ---- cache ---- */

static void cache_key(const wh_matcher *m, unsigned mask, const hs_platform_info_t *plat,
                      char out[33])
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_128bits_reset(st);
    const char *ver = hs_version();
    XXH3_128bits_update(st, "whiply-hsdb-1", 13);
    XXH3_128bits_update(st, ver, strlen(ver));
    XXH3_128bits_update(st, &plat->tune, sizeof(plat->tune));
    XXH3_128bits_update(st, &plat->cpu_features, sizeof(plat->cpu_features));
    for (uint32_t i = 0; i < m->n; i++) {
        const pat *p = &m->pats[i];
        if (!(mask & (1u << p->scan_view))) continue;
        unsigned flags = p->hs_flags; /* as written: prefilter/failed are decided by compiling */
        uint32_t len = (uint32_t)strlen(p->hs_expr);
        XXH3_128bits_update(st, &i, sizeof(i));
        XXH3_128bits_update(st, &flags, sizeof(flags));
        XXH3_128bits_update(st, &len, sizeof(len));
        XXH3_128bits_update(st, p->hs_expr, len);
    }
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

static void mkdir_p(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    mkdir(tmp, 0755);
}

static hs_database_t *cache_load(const char *dir, const char *key)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s.hsdb", dir, key);
    char *bytes;
    size_t len;
    if (wh_read_file(path, &bytes, &len) != WH_OK) return NULL;
    hs_database_t *db = NULL;
    if (hs_deserialize_database(bytes, len, &db) != HS_SUCCESS) db = NULL; /* corrupt: rebuild */
    free(bytes);
    return db;
}

static void cache_store(const char *dir, const char *key, const hs_database_t *db)
{
    char *bytes = NULL;
    size_t len = 0;
    if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) return;
    mkdir_p(dir);
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/%s.hsdb", dir, key);
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f) {
        bool ok = fwrite(bytes, 1, len, f) == len;
        ok = (fclose(f) == 0) && ok;
        if (ok) ok = rename(tmp, path) == 0; /* atomic: readers never see half a file */
        if (!ok) unlink(tmp);
    }
    free(bytes);
}

/* ---- build ---- */

/* One database to compile. Jobs run on several threads, so each keeps its own copy of what
 * compiling decides about a pattern (a prefilter, or rejected) and its own list of errors;
 * wh_matcher_build reads both once the threads are joined. */
enum { JOB_PREFILTER = 1, JOB_FAILED = 2 };

typedef struct {
    wh_matcher *m;
    unsigned mask;
    hs_database_t **dbp;
    const hs_platform_info_t *plat;
    bool report;    /* a single view's database: it reports the patterns Hyperscan rejects */
    uint8_t *state; /* JOB_* per pattern, from the patterns' own at the start */
    struct job_error {
        uint32_t pattern; /* UINT32_MAX: the database as a whole */
        char *message;
    } * errors;
    uint32_t nerrors;
    wh_status st;
} compile_job;

static bool job_error(compile_job *j, uint32_t pattern, const char *message)
{
    struct job_error *e = realloc(j->errors, sizeof(*e) * (j->nerrors + 1));
    if (!e) return false;
    j->errors = e;
    e[j->nerrors].pattern = pattern;
    e[j->nerrors].message = strdup(message);
    return e[j->nerrors++].message != NULL;
}

/* Compiles the patterns scanned on the views in j->mask into *j->dbp. */
static wh_status compile_set(compile_job *j)
{
    wh_matcher *m = j->m;
    unsigned mask = j->mask;
    for (;;) {
        uint32_t cnt = 0;
        for (uint32_t i = 0; i < m->n; i++)
            if ((mask & (1u << m->pats[i].scan_view)) && !(j->state[i] & JOB_FAILED)) cnt++;
        if (!cnt) return WH_OK;
        const char **exprs = malloc(sizeof(char *) * cnt);
        unsigned *flags = malloc(sizeof(unsigned) * cnt);
        unsigned *ids = malloc(sizeof(unsigned) * cnt);
        if (!exprs || !flags || !ids) {
            free(exprs);
            free(flags);
            free(ids);
            return WH_ENOMEM;
        }
        uint32_t k = 0;
        for (uint32_t i = 0; i < m->n; i++) {
            pat *p = &m->pats[i];
            if (!(mask & (1u << p->scan_view)) || (j->state[i] & JOB_FAILED)) continue;
            exprs[k] = p->hs_expr;
            flags[k] = p->hs_flags | (j->state[i] & JOB_PREFILTER ? HS_FLAG_PREFILTER : 0);
            ids[k] = i;
            k++;
        }
        hs_compile_error_t *e = NULL;
        hs_error_t rc =
            hs_compile_multi(exprs, flags, ids, cnt, HS_MODE_BLOCK, j->plat, j->dbp, &e);
        int bad = (rc != HS_SUCCESS && e) ? e->expression : -1;
        uint32_t bad_id = bad >= 0 && (uint32_t)bad < cnt ? ids[bad] : UINT32_MAX;
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", e ? e->message : "unknown Hyperscan error");
        hs_free_compile_error(e);
        free(exprs);
        free(flags);
        free(ids);
        if (rc == HS_SUCCESS) return WH_OK;
        if (bad_id == UINT32_MAX) {
            if (j->report && !job_error(j, UINT32_MAX, msg)) return WH_ENOMEM;
            return WH_EINVAL;
        }
        /* Hyperscan cannot run the pattern exactly: retry it as a prefilter (PCRE2 then
         * confirms every hit); if even that fails, report it and leave it out. */
        if (!(j->state[bad_id] & JOB_PREFILTER) && m->pats[bad_id].kind == WH_PAT_REGEX) {
            j->state[bad_id] |= JOB_PREFILTER;
            continue;
        }
        j->state[bad_id] |= JOB_FAILED;
        char full[400];
        snprintf(full, sizeof(full), "Hyperscan rejects this pattern: %s", msg);
        if (j->report && !job_error(j, bad_id, full)) return WH_ENOMEM;
    }
}

typedef struct {
    compile_job *jobs;
    uint32_t n;
    uint32_t order[8]; /* the jobs, most patterns first */
    atomic_uint next;
} job_queue;

static void *compile_worker(void *arg)
{
    job_queue *q = arg;
    for (uint32_t k; (k = atomic_fetch_add(&q->next, 1)) < q->n;)
        q->jobs[q->order[k]].st = compile_set(&q->jobs[q->order[k]]);
    return NULL;
}

/* Runs the jobs (at most 8) on up to as many threads as there are cores (Hyperscan's
 * compiler is reentrant): the databases of a ruleset compile side by side, the one with the
 * most patterns first, so that it does not start last and run alone. */
static void compile_all(compile_job *jobs, uint32_t n)
{
    job_queue q = {.jobs = jobs, .n = n};
    uint32_t size[8];
    for (uint32_t k = 0; k < n; k++) {
        size[k] = 0;
        for (uint32_t i = 0; i < jobs[k].m->n; i++)
            size[k] += (jobs[k].mask >> jobs[k].m->pats[i].scan_view) & 1;
        uint32_t at = k;
        for (; at > 0 && size[q.order[at - 1]] < size[k]; at--)
            q.order[at] = q.order[at - 1];
        q.order[at] = k;
    }
    atomic_init(&q.next, 0);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t nt = cores < 1 ? 1 : cores > 8 ? 8 : (uint32_t)cores;
    if (nt > n) nt = n;
    pthread_t th[8];
    uint32_t started = 0;
    while (started + 1 < nt && pthread_create(&th[started], NULL, compile_worker, &q) == 0)
        started++;
    compile_worker(&q); /* this thread works too, and alone when no thread could start */
    for (uint32_t t = 0; t < started; t++)
        pthread_join(th[t], NULL);
}

wh_status wh_matcher_build(const wh_pattern_spec *specs, uint32_t n, const wh_matcher_opts *opts,
                           wh_pattern_error_fn on_error, void *ud, wh_matcher **out)
{
    wh_status st = WH_ENOMEM;
    wh_matcher *m = calloc(1, sizeof(*m));
    if (!m) return WH_ENOMEM;
    m->pats = calloc(n ? n : 1, sizeof(pat));
    if (!m->pats) goto fail;
    m->n = n;
    for (uint32_t i = 0; i < n; i++) {
        if (!make_exprs(&specs[i], &m->pats[i])) goto fail;
        atomic_init(&m->pats[i].code, NULL);
        if (specs[i].kind == WH_PAT_REGEX) {
            /* Regexes are few: compile their PCRE2 form now, so a bad one fails the load. */
            char msg[300];
            pcre2_code *c =
                pcre_compile_expr(m->pats[i].pcre_expr, m->pats[i].pcre_opts, msg, sizeof(msg));
            if (!c) {
                m->pats[i].failed = true;
                if (on_error) on_error(ud, i, msg);
                continue;
            }
            atomic_store(&m->pats[i].code, c);
        }
    }
    hs_platform_info_t plat;
    if (hs_populate_platform(&plat) != HS_SUCCESS) memset(&plat, 0, sizeof(plat));
    bool all_cached = true;
    for (int v = 0; v < WH_VIEW__COUNT; v++) {
        bool any = false;
        for (uint32_t i = 0; i < n; i++)
            if (m->pats[i].scan_view == (wh_view_id)v && !m->pats[i].failed) any = true;
        if (any) m->views |= 1u << v;
    }
    /* Keys come from the patterns as written, before any compile changes their flags, so
     * the same rules always look up the same files. */
    static const unsigned nmasks = 1u << WH_VIEW__COUNT;
    char(*keys)[33] = calloc(nmasks, 33);
    if (!keys) goto fail;
    for (unsigned mask = 1; mask < nmasks; mask++)
        cache_key(m, mask, &plat, keys[mask]);
    /* Single views first (they report the patterns Hyperscan rejects and decide which are
     * prefilters), then the unions, which take those decisions as they are. */
    compile_job jobs[8];
    uint32_t nj = 0;
    st = WH_OK;
    for (int phase = 0; phase < 2; phase++) {
        nj = 0;
        for (unsigned mask = 1; mask < nmasks; mask++) {
            bool single = (mask & (mask - 1)) == 0;
            if (single != (phase == 0)) continue;
            /* Unions only of views that wh_matcher_scan groups: raw = folded, folded =
             * skeleton, or all three. Raw and skeleton alone are never scanned together (the
             * equalities are raw-folded and folded-skeleton), so that union would be compiled
             * for nothing. */
            if (!single && mask != 3 && mask != 6 && mask != 7) continue;
            if ((mask & m->views) != mask) continue; /* every member must have patterns */
            hs_database_t **dbp = single ? &m->db[__builtin_ctz(mask)] : &m->udb[mask];
            if (opts && opts->cache_dir) {
                *dbp = cache_load(opts->cache_dir, keys[mask]);
                if (*dbp) continue;
            }
            all_cached = false;
            compile_job *j = &jobs[nj++];
            *j = (compile_job){.m = m, .mask = mask, .dbp = dbp, .plat = &plat, .report = single};
            j->state = malloc(n ? n : 1);
            if (!j->state) {
                nj--;
                st = WH_ENOMEM;
                break;
            }
            for (uint32_t i = 0; i < n; i++)
                j->state[i] = (m->pats[i].prefilter ? JOB_PREFILTER : 0) |
                              (m->pats[i].failed ? JOB_FAILED : 0);
        }
        if (st == WH_OK) compile_all(jobs, nj); /* else the jobs are only freed */
        for (uint32_t k = 0; k < nj; k++) {
            compile_job *j = &jobs[k];
            for (uint32_t e = 0; e < j->nerrors; e++) {
                if (on_error) on_error(ud, j->errors[e].pattern, j->errors[e].message);
                free(j->errors[e].message);
            }
            free(j->errors);
            /* A database missing a rejected pattern is never cached: the next load must
             * compile, and report the pattern, again. */
            bool complete = true;
            for (uint32_t i = 0; i < n; i++) {
                if (!(j->mask & (1u << m->pats[i].scan_view))) continue;
                if (j->state[i] & JOB_FAILED) complete = false;
                if (j->report) { /* a single view: its decisions hold for the unions */
                    m->pats[i].prefilter = j->state[i] & JOB_PREFILTER;
                    m->pats[i].failed = j->state[i] & JOB_FAILED;
                }
            }
            free(j->state);
            if (j->st != WH_OK && st == WH_OK) st = j->st;
            if (j->st == WH_OK && opts && opts->cache_dir && *j->dbp && complete)
                cache_store(opts->cache_dir, keys[j->mask], *j->dbp);
        }
        if (st != WH_OK) break;
    }
    if (st != WH_OK) {
        free(keys);
        goto fail;
    }
    free(keys);
    if (!rev_build(m, specs, n)) {
        st = WH_ENOMEM;
        goto fail;
    }
    if (opts && opts->cache_hit) *opts->cache_hit = all_cached;
    for (int k = 0; k < WH_VIEW__COUNT + 8; k++) {
        hs_database_t *db = k < WH_VIEW__COUNT ? m->db[k] : m->udb[k - WH_VIEW__COUNT];
        if (!db) continue;
        if (hs_alloc_scratch(db, &m->proto) != HS_SUCCESS) {
            st = WH_ENOMEM;
            goto fail;
        }
    }
    *out = m;
    return WH_OK;
fail:
    wh_matcher_free(m);
    return st;
}

void wh_matcher_free(wh_matcher *m)
{
    if (!m) return;
    for (uint32_t i = 0; m->pats && i < m->n; i++) {
        pat *p = &m->pats[i];
        free(p->hs_expr);
        free(p->pcre_expr);
        pcre2_code *c = atomic_load(&p->code);
        if (c && c != PCRE2_FAILED) pcre2_code_free(c);
    }
    free(m->pats);
    free(m->rev);
    for (int v = 0; v < WH_VIEW__COUNT; v++)
        hs_free_database(m->db[v]);
    for (int k = 0; k < 8; k++)
        hs_free_database(m->udb[k]);
    if (m->proto) hs_free_scratch(m->proto);
    free(m);
}

wh_match_scratch *wh_match_scratch_new(const wh_matcher *m)
{
    wh_match_scratch *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    if (m->proto && hs_clone_scratch(m->proto, &s->hs) != HS_SUCCESS) goto fail;
    s->md = pcre2_match_data_create(4, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    s->jit = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
    s->cap_hits = m->n + 1 + MAX_REV_HITS;
    s->hits = malloc(sizeof(uint32_t) * s->cap_hits);
    s->confirmed = malloc(sizeof(uint32_t) * s->cap_hits);
    s->ends = calloc(m->n ? m->n : 1, sizeof(*s->ends));
    s->cap_ranges = s->cap_win = 256;
    s->ranges = malloc(sizeof(*s->ranges) * s->cap_ranges);
    s->win = malloc(sizeof(*s->win) * s->cap_win);
    if (!s->md || !s->mctx || !s->jit || !s->hits || !s->confirmed || !s->ends || !s->ranges ||
        !s->win)
        goto fail;
    /* Bound the work a hostile regex can make PCRE2 do on one message. */
    pcre2_set_match_limit(s->mctx, 200000);
    pcre2_set_depth_limit(s->mctx, 5000);
    pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
    return s;
fail:
    wh_match_scratch_free(s);
    return NULL;
}

void wh_match_scratch_free(wh_match_scratch *s)
{
    if (!s) return;
    if (s->hs) hs_free_scratch(s->hs);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    pcre2_jit_stack_free(s->jit);
    free(s->hits);
    free(s->confirmed);
    free(s->ends);
    free(s->ranges);
    free(s->win);
    free(s->sq_ws);
    free(s->co_ws);
    free(s);
}

/* ---- scan ---- */

/* Records that pattern id matched, ending at byte to of the scanned view. Hyperscan reports
 * every end offset (no HS_FLAG_SINGLEMATCH), almost always in order: an end within END_GAP
 * of the pattern's last range joins it, so a pattern that matches everywhere ("\\d{12,}"
 * over a wall of digits) keeps one range, and the ranges of a scan are at most the
 * scanned bytes / END_GAP per pattern. When no memory is left, the last range grows
 * instead: wider, never wrong. */
static int on_hit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                  void *ctx)
{
    (void)from;
    (void)flags;
    wh_match_scratch *s = ctx;
    struct pat_ends *pe = &s->ends[id];
    uint32_t e = (uint32_t)to;
    if (pe->stamp != s->epoch) {
        pe->stamp = s->epoch;
        pe->head = pe->tail = NONE;
        pe->unsorted = pe->whole = false;
        if (s->nhits < s->cap_hits) s->hits[s->nhits++] = id; /* always true: see the struct */
    }
    if (pe->tail != NONE) {
        struct end_range *r = &s->ranges[pe->tail];
        if (e >= r->lo && e <= r->hi + END_GAP) {
            if (e > r->hi) r->hi = e;
            return 0;
        }
        if (e < r->lo) pe->unsorted = true;
    }
    if (s->nranges == s->cap_ranges) {
        uint32_t cap = s->cap_ranges * 2;
        struct end_range *nr = cap > s->cap_ranges ? realloc(s->ranges, sizeof(*nr) * cap) : NULL;
        if (!nr && pe->tail == NONE) {
            pe->whole = true;
            return 0;
        }
        if (!nr) {
            struct end_range *r = &s->ranges[pe->tail];
            r->lo = e < r->lo ? e : r->lo;
            r->hi = e > r->hi ? e : r->hi;
            return 0;
        }
        s->ranges = nr;
        s->cap_ranges = cap;
    }
    s->ranges[s->nranges] = (struct end_range){e, e, NONE};
    if (pe->tail == NONE)
        pe->head = s->nranges;
    else
        s->ranges[pe->tail].next = s->nranges;
    pe->tail = s->nranges++;
    return 0;
}

static pcre2_code *get_code(const wh_matcher *m, uint32_t i)
{
    pat *p = &m->pats[i];
    pcre2_code *c = atomic_load_explicit(&p->code, memory_order_acquire);
    if (c) return c == PCRE2_FAILED ? NULL : c;
    /* First hit of this word: compile now (10,000 terms would cost seconds up front). Two
     * threads may race; the loser frees its copy. */
    c = pcre_compile_expr(p->pcre_expr, p->pcre_opts, NULL, 0);
    pcre2_code *expected = NULL;
    pcre2_code *store = c ? c : PCRE2_FAILED;
    if (!atomic_compare_exchange_strong(&p->code, &expected, store)) {
        if (c) pcre2_code_free(c);
        return expected == PCRE2_FAILED ? NULL : expected;
    }
    return c;
}

void wh_match_scratch_set_whole(wh_match_scratch *s, bool whole)
{
    s->whole = whole;
}

const uint32_t *wh_match_confirmed(const wh_match_scratch *s, uint32_t *n)
{
    *n = s->nconfirmed;
    return s->confirmed;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Keeps one span of pattern pi unless a permitted term covers it. Returns false once the
 * pattern needs no more spans (out[] full or MAX_SPANS_PER_PATTERN kept). */
static bool keep_span(wh_match_scratch *s, uint32_t pi, const pat *pt, uint32_t vs, uint32_t ve,
                      uint32_t rs, uint32_t re, uint32_t *kept, wh_match *out, uint32_t *nout,
                      uint32_t cap, bool *truncated)
{
    for (uint32_t k = 0; k < s->npermits && pt->cancel_set >= 0; k++)
        if (s->permits[k].set == pt->cancel_set && s->permits[k].rs <= rs && re <= s->permits[k].re)
            return true;
    if ((*kept)++ == 0) s->confirmed[s->nconfirmed++] = pi;
    if (*nout >= cap || *kept > MAX_SPANS_PER_PATTERN) {
        *truncated = true;
        return false;
    }
    out[(*nout)++] =
        (wh_match){.pattern = pi, .view = pt->view, .vs = vs, .ve = ve, .rs = rs, .re = re};
    return true;
}

/* Bit i: byte i of the 64 at p is a space. */
static inline uint64_t space_mask64(const char *p)
{
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        m |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')))
             << (16 * k);
    }
    return m;
}

/* The starts of v's words into ws (room for v->len / 2 + 1), from masks of 64 bytes, a
 * jump per word rather than per byte. Returns how many. */
static uint32_t word_starts(const wh_view *v, uint32_t *ws)
{
    uint32_t n = 0;
    uint64_t prev = 1; /* the byte before the block is a space (or the start) */
    char tail[64];
    for (uint32_t base = 0; base < v->len; base += 64) {
        const char *p = v->s + base;
        if (v->len - base < 64) { /* the last block, padded with spaces */
            memset(tail, ' ', sizeof(tail));
            memcpy(tail, p, v->len - base);
            p = tail;
        }
        uint64_t sp = space_mask64(p), starts = ~sp & ((sp << 1) | prev);
        prev = sp >> 63;
        while (starts) {
            ws[n++] = base + (uint32_t)__builtin_ctzll(starts);
            starts &= starts - 1;
        }
    }
    return n;
}

/* The words of the squashed and collapsed views (see the scratch): a word of the collapsed
 * view is its squashed word with runs collapsed and 'l' as 'i', so the k-th words of both
 * are the same word. Returns tables_state. */
static int word_tables(wh_match_scratch *s, const wh_text *t)
{
    if (s->tables_state) return s->tables_state;
    s->tables_state = 2;
    const wh_view *qv = &t->v[WH_VIEW_SQUASHED], *co = &t->v[WH_VIEW_COLLAPSED];
    uint32_t nq = qv->len / 2 + 1, nc = co->len / 2 + 1; /* a word and a space: two bytes */
    if (nq > s->cap_sq) {
        uint32_t *p = realloc(s->sq_ws, sizeof(*p) * nq);
        if (!p) return 2;
        s->sq_ws = p;
        s->cap_sq = nq;
    }
    if (nc > s->cap_co) {
        uint32_t *p = realloc(s->co_ws, sizeof(*p) * nc);
        if (!p) return 2;
        s->co_ws = p;
        s->cap_co = nc;
    }
    nq = word_starts(qv, s->sq_ws);
    if (nq == 0 || word_starts(co, s->co_ws) != nq) return 2; /* never seen: whole views */
    s->nsq = nq;
    return s->tables_state = 1;
}

/* The word of the collapsed view that byte i is in, or for a space the word before it
 * (0 before the first). */
static uint32_t co_word(const wh_match_scratch *s, uint32_t i)
{
    uint32_t lo = 0, hi = s->nsq; /* the first start > i */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->co_ws[mid] <= i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : 0;
}

static int cmp_window(const void *a, const void *b)
{
    const struct window *x = a, *y = b;
    return x->ws < y->ws ? -1 : x->ws > y->ws;
}

typedef enum {
    WIN_WHOLE, /* one search of the whole view, from offset 0 (a regex) */
    WIN_WORDS, /* windows of squashed words: a match may start at each word's start */
    WIN_BYTES  /* windows of byte offsets where a match may start (a literal term) */
} win_kind;

/* Where the PCRE2 matches of pattern pi may start: windows of its own view, sorted and
 * merged, into s->win (*nw of them). Each PCRE2 match of a pattern is a match of its
 * Hyperscan expression too (a word's near-literal is a superset of its exact form), so it
 * ends where Hyperscan reported an end:
 *  - a word term (Hyperscan on the collapsed view, PCRE2 on the squashed one) matches whole
 *    words, at most one more than the term has spaces, the last one the word of an end;
 *  - a literal term is its bytes: it starts its length before an end;
 *  - a regex reports its first end only (HS_FLAG_SINGLEMATCH, see make_exprs): its whole
 *    view it is. Regexes are a few per ruleset, not one per distinct word of a text. */
static win_kind windows(const pat *pt, uint32_t pi, wh_match_scratch *s, const wh_text *t,
                        uint32_t *nw)
{
    const struct pat_ends *pe = &s->ends[pi];
    *nw = 0;
    if (s->whole) goto whole;
    /* Only a reversed word's candidate: Hyperscan saw no match forwards, so PCRE2 has none
     * (the whole search, which the windows are checked against, finds none either). */
    if (pe->stamp != s->epoch) return WIN_WORDS;
    bool word = pt->scan_view == WH_VIEW_COLLAPSED && pt->view == WH_VIEW_SQUASHED;
    if (!word && !pt->width) goto whole;
    uint32_t n = 0;
    for (uint32_t r = pe->head; r != NONE; r = s->ranges[r].next)
        n++;
    if (pe->whole || n == 0 || (word && word_tables(s, t) != 1)) goto whole;
    if (n > s->cap_win) {
        struct window *p = realloc(s->win, sizeof(*p) * n);
        if (!p) goto whole;
        s->win = p;
        s->cap_win = n;
    }
    const wh_view *co = &t->v[WH_VIEW_COLLAPSED];
    uint32_t k = 0;
    for (uint32_t r = pe->head; r != NONE; r = s->ranges[r].next) {
        uint32_t lo = s->ranges[r].lo, hi = s->ranges[r].hi;
        if (word) {
            uint32_t a = co_word(s, lo ? lo - 1 : 0), b = co_word(s, hi ? hi - 1 : 0);
            if (hi && co->s[hi - 1] == ' ') b++; /* ends on a separator: take the next word */
            a = a >= pt->words - 1u ? a - (pt->words - 1u) : 0;
            b = b < s->nsq ? b : s->nsq - 1;
            s->win[k++] = (struct window){a, b};
        } else {
            s->win[k++] = (struct window){lo > pt->width ? lo - pt->width : 0,
                                          hi > pt->width ? hi - pt->width : 0};
        }
    }
    if (pe->unsorted) qsort(s->win, k, sizeof(*s->win), cmp_window);
    n = 0;
    for (uint32_t i = 0; i < k; i++) {
        if (n && s->win[i].ws <= s->win[n - 1].we + 1) {
            if (s->win[i].we > s->win[n - 1].we) s->win[n - 1].we = s->win[i].we;
        } else {
            s->win[n++] = s->win[i];
        }
    }
    *nw = n;
    return word ? WIN_WORDS : WIN_BYTES;
whole:
    s->win[0] = (struct window){0, NONE};
    *nw = 1;
    return WIN_WHOLE;
}

/* The confirmation of one pattern: the spans a search of its view from offset 0 would find,
 * one after another, found only where they may start. */
typedef struct {
    const pat *pt;
    uint32_t pi;
    const wh_view *vw;
    int pass;
    PCRE2_SIZE off; /* where the last match ended: the next may not start before */
    uint32_t kept, found;
    wh_match *out;
    uint32_t *nout, cap;
    bool *truncated;
} confirm;

/* Takes the match in s->md. Returns false when the pattern needs no more. */
static bool take(wh_match_scratch *s, confirm *k)
{
    const wh_view *vw = k->vw;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
    uint32_t vs = (uint32_t)ov[0], ve = (uint32_t)ov[1], rs, re;
    k->off = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
    /* Do not restart inside a UTF-8 sequence. */
    while (k->off < vw->len && ((unsigned char)vw->s[k->off] & 0xC0) == 0x80)
        k->off++;
    bool more = ++k->found < MAX_TRIES_PER_PATTERN;
    wh_view_to_raw(vw, vs, ve, &rs, &re);
    if (k->pass == 1) {
        if (s->npermits < MAX_PERMIT_SPANS)
            s->permits[s->npermits++] = (struct permit_span){k->pt->permit_set, rs, re};
        return more;
    }
    /* false once confirmed with all the spans it may keep */
    return keep_span(s, k->pi, k->pt, vs, ve, rs, re, &k->kept, k->out, k->nout, k->cap,
                     k->truncated) &&
           more;
}

/* Searches [from, to) of the view (to: the subject's end, so a literal without assertions
 * stops there; the view's length for the whole view) for matches one after another. */
static bool search(wh_match_scratch *s, pcre2_code *c, confirm *k, PCRE2_SIZE from, PCRE2_SIZE to)
{
    while (from <= to) {
        int rc = pcre2_match(c, (PCRE2_SPTR)k->vw->s, to, from, PCRE2_NO_UTF_CHECK, s->md, s->mctx);
        if (rc < 0) return rc == PCRE2_ERROR_NOMATCH; /* a match limit: a hostile regex stops */
        if (!take(s, k)) return false;
        from = k->off;
    }
    return true;
}

/* Word windows: a word term's match is whole words ("(?<![^ ])" ... "(?![^ ])"), at most
 * pt->words of them, so one starting at a word of [a, b] ends before word b + words starts:
 * the subject ends there (a separator or the view's end follows a word, as in the whole
 * view, so the lookahead reads the same), and a match found starting past word b is left
 * to the window it belongs to (it may be cut short here). */
static bool search_words(wh_match_scratch *s, pcre2_code *c, confirm *k, uint32_t a, uint32_t b)
{
    PCRE2_SIZE last = s->sq_ws[b], from = s->sq_ws[a];
    uint32_t e = b + k->pt->words;
    PCRE2_SIZE to = e < s->nsq ? s->sq_ws[e] : k->vw->len;
    from = k->off > from ? k->off : from;
    while (from <= last) {
        int rc = pcre2_match(c, (PCRE2_SPTR)k->vw->s, to, from, PCRE2_NO_UTF_CHECK, s->md, s->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) return true;
        if (rc < 0) return false;
        if (pcre2_get_ovector_pointer(s->md)[0] > last) return true;
        if (!take(s, k)) return false;
        from = k->off;
    }
    return true;
}

uint32_t wh_matcher_scan(const wh_matcher *m, wh_match_scratch *s, const wh_text *t, wh_match *out,
                         uint32_t cap, bool *truncated)
{
    s->nhits = 0;
    s->nranges = 0;
    s->tables_state = 0;
    if (++s->epoch == 0) { /* once in 4 billion scans: stamps of old epochs could collide */
        for (uint32_t i = 0; i < m->n; i++)
            s->ends[i].stamp = 0;
        s->epoch = 1;
    }
    *truncated = false;
    /* Group raw/folded/skeleton by equal bytes; each group is one scan. */
    unsigned groups[3], ng = 0;
    if (t->same_rf && t->same_fs) {
        groups[ng++] = 7;
    } else if (t->same_rf) {
        groups[ng++] = 3;
        groups[ng++] = 4;
    } else if (t->same_fs) {
        groups[ng++] = 1;
        groups[ng++] = 6;
    } else {
        groups[ng++] = 1;
        groups[ng++] = 2;
        groups[ng++] = 4;
    }
    for (unsigned g = 0; g < ng; g++) {
        unsigned mask = groups[g] & m->views;
        if (!mask) continue;
        unsigned first = (unsigned)__builtin_ctz(mask);
        hs_database_t *db = (mask & (mask - 1)) ? m->udb[mask] : m->db[first];
        const wh_view *vw = &t->v[first];
        hs_scan(db, vw->s, vw->len, 0, s->hs, on_hit, s);
    }
    for (int v = WH_VIEW_SQUASHED; v < WH_VIEW__COUNT; v++) {
        if (!m->db[v]) continue;
        const wh_view *vw = &t->v[v];
        hs_scan(m->db[v], vw->s, vw->len, 0, s->hs, on_hit, s);
    }
    s->nrev = 0;
    if (m->rev) rev_scan(m, s, &t->v[WH_VIEW_COLLAPSED]);
    s->nconfirmed = 0;
    s->npermits = 0;
    if (s->nhits == 0) return 0;
    if (s->nhits > 1) qsort(s->hits, s->nhits, sizeof(uint32_t), cmp_u32);
    uint32_t nout = 0;
    /* Pass 1: where the permitted terms are. Pass 2: the other patterns' spans, less those
     * a permitted term covers; a pattern counts once one span survives, so neither a long
     * run of permitted words ("cocktail" x 100, then "cock") nor a full out[] can hide it. */
    for (int pass = 1; pass <= 2; pass++) {
        for (uint32_t h = 0; h < s->nhits; h++) {
            uint32_t pi = s->hits[h];
            if (h && s->hits[h - 1] == pi) continue;
            const pat *pt = &m->pats[pi];
            if ((pass == 1) != (pt->permit_set >= 0)) continue;
            pcre2_code *c = get_code(m, pi);
            if (!c) continue;
            confirm k = {.pt = pt,
                         .pi = pi,
                         .vw = &t->v[pt->view],
                         .pass = pass,
                         .out = out,
                         .nout = &nout,
                         .cap = cap,
                         .truncated = truncated};
            uint32_t nw;
            win_kind kind = windows(pt, pi, s, t, &nw);
            bool more = true;
            for (uint32_t w = 0; w < nw && more; w++) {
                const struct window *x = &s->win[w];
                if (kind == WIN_WHOLE) {
                    more = search(s, c, &k, 0, k.vw->len);
                } else if (kind == WIN_WORDS) {
                    more = search_words(s, c, &k, x->ws, x->we);
                } else {
                    PCRE2_SIZE to = (PCRE2_SIZE)x->we + pt->width;
                    more = search(s, c, &k, k.off > x->ws ? k.off : x->ws,
                                  to < k.vw->len ? to : k.vw->len);
                }
            }
            uint32_t kept = k.kept;
            for (uint32_t r = 0; pass == 2 && r < s->nrev; r++) {
                const wh_view *qv = &t->v[WH_VIEW_SQUASHED];
                uint32_t vs, ve, rs, re;
                if (s->rev[r].pattern != pi || !rev_confirm(c, s, qv, s->rev[r].token, &vs, &ve))
                    continue;
                wh_view_to_raw(qv, vs, ve, &rs, &re);
                if (!keep_span(s, pi, pt, vs, ve, rs, re, &kept, out, &nout, cap, truncated)) break;
            }
        }
    }
    return nout;
}
