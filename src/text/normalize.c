/* normalize.c - builds the text views and character features (see normalize.h).
 *
 * Two paths: pure ASCII (most chat) needs no Unicode tables and keeps identity offset
 * maps; anything else walks code points, folding each grapheme-like cluster (a starter
 * and its combining marks) with utf8proc and mapping it to ASCII with the generated
 * skeleton table. */
#include "normalize.h"

#include <emmintrin.h>
#include <string.h>
#include <utf8proc.h>

#include "skeleton_table.h"
#include "utf8.h"

const char *const wh_view_names[WH_VIEW__COUNT] = {"raw", "folded", "skeleton", "squashed",
                                                   "collapsed"};

bool wh_view_from_name(const char *name, size_t n, wh_view_id *out)
{
    for (int i = 0; i < WH_VIEW__PUBLIC; i++) {
        if (strlen(wh_view_names[i]) == n && memcmp(wh_view_names[i], name, n) == 0) {
            *out = (wh_view_id)i;
            return true;
        }
    }
    return false;
}

/* A view under construction: bytes plus per-byte raw spans. */
typedef struct {
    char *s;
    uint32_t *st, *en;
    uint32_t len, cap;
    wh_arena *a;
    bool oom;
} vbuild;

static bool vb_init(vbuild *b, wh_arena *a, uint32_t cap)
{
    b->a = a;
    b->cap = cap < 16 ? 16 : cap;
    b->len = 0;
    b->oom = false;
    b->s = wh_arena_alloc(a, b->cap + 1);
    b->st = wh_arena_alloc(a, sizeof(uint32_t) * b->cap);
    b->en = wh_arena_alloc(a, sizeof(uint32_t) * b->cap);
    b->oom = !b->s || !b->st || !b->en;
    return !b->oom;
}

static bool vb_grow(vbuild *b, uint32_t extra)
{
    if (b->oom) return false;
    if (b->len + extra <= b->cap) return true;
    uint32_t cap = b->cap * 2;
    while (cap < b->len + extra)
        cap *= 2;
    char *s = wh_arena_alloc(b->a, cap + 1);
    uint32_t *st = wh_arena_alloc(b->a, sizeof(uint32_t) * cap);
    uint32_t *en = wh_arena_alloc(b->a, sizeof(uint32_t) * cap);
    if (!s || !st || !en) {
        b->oom = true;
        return false;
    }
    memcpy(s, b->s, b->len);
    memcpy(st, b->st, sizeof(uint32_t) * b->len);
    memcpy(en, b->en, sizeof(uint32_t) * b->len);
    b->s = s;
    b->st = st;
    b->en = en;
    b->cap = cap;
    return true;
}

static inline void vb_push(vbuild *b, const char *p, uint32_t k, uint32_t rs, uint32_t re)
{
    if (__builtin_expect(b->len + k > b->cap, 0) && !vb_grow(b, k)) return;
    for (uint32_t i = 0; i < k; i++) {
        b->s[b->len] = p[i];
        b->st[b->len] = rs;
        b->en[b->len] = re;
        b->len++;
    }
}

static void vb_finish(vbuild *b, wh_view *v)
{
    b->s[b->len] = 0;
    v->s = b->s;
    v->len = b->len;
    v->start = b->st;
    v->end = b->en;
}

void wh_view_to_raw(const wh_view *v, uint32_t from, uint32_t to, uint32_t *rs, uint32_t *re)
{
    if (!v->start) {
        *rs = from;
        *re = to;
        return;
    }
    if (v->len == 0) {
        *rs = *re = 0;
        return;
    }
    if (from >= v->len) from = v->len - 1;
    if (to > v->len) to = v->len;
    if (to <= from) to = from + 1;
    *rs = v->start[from];
    *re = v->end[to - 1];
    if (*re <= *rs) {
        /* a copy read right to left (upside-down text) or a regex across an appended copy:
         * the raw bytes the span covers, never a reversed span */
        for (uint32_t k = from; k < to; k++) {
            if (v->start[k] < *rs) *rs = v->start[k];
            if (v->end[k] > *re) *re = v->end[k];
        }
    }
}

/* ---- leetspeak ---------------------------------------------------------------- */

static const char leet_map[128] = {
    ['0'] = 'o', ['1'] = 'i', ['3'] = 'e', ['4'] = 'a', ['5'] = 's', ['7'] = 't', ['8'] = 'b',
    ['9'] = 'g', ['@'] = 'a', ['$'] = 's', ['!'] = 'i', ['|'] = 'i', ['+'] = 't',
};

static inline bool is_alpha(unsigned char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}
static inline bool is_digit(unsigned char c)
{
    return (unsigned char)(c - '0') < 10;
}
static inline bool is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}
static inline bool is_leet(unsigned char c)
{
    return c < 128 && leet_map[c];
}

/* '|' reads as 'i' like '!' and '1' ("sh|t", "b|tch"): a term's 'l' also matches a text 'i'
 * (see matcher.c), so "ki||" is still "kill", while an 'l' would miss every term with an 'i'.
 *
 * Maps leet characters inside runs of letters/digits/leet symbols that contain at least one
 * letter, so "h4x0r" -> "haxor" and "a$$" -> "ass", while "2024", "$50" and ":)" stay. Symbols
 * that are ordinary punctuation ('!', '|', '+') map only when a letter follows in the run
 * ("sh!t" but not "wow!!"); '@' at the start of a run is a mention, not an 'a'. With
 * symbols false only digits are mapped: the reading where the symbols are separators
 * ("f|u|c|k", "blow+job"; see add_alternates). Returns LEET_* bits. */
enum { LEET_ANY = 1, LEET_SYMBOL = 2 };
static unsigned leet_in_place(char *s, uint32_t n, bool symbols)
{
    unsigned changed = 0;
    uint32_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (!(is_alnum(c) || is_leet(c))) {
            i++;
            continue;
        }
        uint32_t a = i, last_letter = UINT32_MAX;
        bool needs = false;
        while (i < n) {
            c = (unsigned char)s[i];
            if (is_alpha(c))
                last_letter = i;
            else if (is_leet(c))
                needs = true;
            else if (!is_digit(c))
                break;
            i++;
        }
        if (!needs || last_letter == UINT32_MAX) continue;
        for (uint32_t k = a; k < i; k++) {
            c = (unsigned char)s[k];
            if (!is_leet(c) || (!symbols && !is_digit(c))) continue;
            if (c == '!' || c == '|' || c == '+') {
                /* punctuation unless a letter or digit follows it in the run ("$H!7") */
                if (k > last_letter && !(k + 1 < i && is_digit((unsigned char)s[k + 1]))) continue;
            } else if (c == '@') {
                /* "@name" is a mention; "@$$" is not */
                if (k == a && k + 1 < i && (is_alnum((unsigned char)s[k + 1]) || s[k + 1] == '_'))
                    continue;
            }
            s[k] = leet_map[c];
            /* a symbol between two letters or digits may be a separator instead ("f|u|c|k") */
            bool inner = !is_digit(c) && k > a && k + 1 < i;
            changed |= inner ? LEET_ANY | LEET_SYMBOL : LEET_ANY;
        }
    }
    return changed;
}

/* ---- ASCII classes (one table lookup instead of a chain of compares) ------------- */
enum { C_ALPHA = 1, C_UPPER = 2, C_DIGIT = 4, C_SPACE = 8, C_SYMBOL = 16, C_LEET = 32 };
static unsigned char ascii_class[128];
static char ascii_lower[128];
__attribute__((constructor)) static void init_ascii_tables(void)
{
    for (int c = 0; c < 128; c++) {
        unsigned char k = 0;
        if (is_alpha((unsigned char)c)) k |= C_ALPHA;
        if (c >= 'A' && c <= 'Z') k |= C_UPPER;
        if (is_digit((unsigned char)c)) k |= C_DIGIT;
        if (c == ' ' || (c >= 9 && c <= 13)) k |= C_SPACE;
        if (!k) k |= C_SYMBOL;
        if (leet_map[c]) k |= C_LEET;
        ascii_class[c] = k;
        ascii_lower[c] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
}

/* Where one symbol sits between two word characters ("fU.cK"): the trigger of the
 * mixed-case reading, noted per separator rather than looked for per byte. */
typedef struct {
    uint32_t pos[8];
    uint32_t n;
    bool all; /* more than fit, or not noted (the general path): look at every word */
} lone_syms;

/* Squashes the 64 bytes at p (ASCII) into out: letters and digits as they are, the rest as
 * spaces. *alnum: the bits of letters and digits; *sym: of the other bytes but spaces. */
static inline void ascii_squash64(const char *p, char *out, uint64_t *alnum, uint64_t *sym)
{
    uint64_t t = 0, y = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        __m128i lo = _mm_or_si128(v, _mm_set1_epi8(0x20)); /* letters lowercased */
        __m128i al = _mm_and_si128(_mm_cmpgt_epi8(lo, _mm_set1_epi8('a' - 1)),
                                   _mm_cmplt_epi8(lo, _mm_set1_epi8('z' + 1)));
        __m128i dg = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                   _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        __m128i sp = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
                                  _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(8)),
                                                _mm_cmplt_epi8(v, _mm_set1_epi8(14))));
        __m128i an = _mm_or_si128(al, dg);
        __m128i o = _mm_or_si128(_mm_and_si128(an, v), _mm_andnot_si128(an, _mm_set1_epi8(' ')));
        _mm_storeu_si128((__m128i *)(out + 16 * k), o);
        t |= (uint64_t)(uint32_t)_mm_movemask_epi8(an) << (16 * k);
        y |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_or_si128(an, sp)) << (16 * k);
    }
    *alnum = t;
    *sym = ~y;
}

/* ASCII squash without offset maps: separators become spaces, byte for byte. Returns false
 * when three spaced-out single characters need joining (the general squash handles that).
 * Words come from bit masks 64 bytes at a time and the collapsed view from a loop without
 * a jump that depends on the text: word lengths vary, and a loop per word mispredicted
 * its end once a word. s and out have WH_VIEW_PAD bytes of room past n + 1 (their bytes
 * there are read and written, and mean nothing). */
static bool squash_ascii(const char *s, uint32_t n, char *out, char *co, uint32_t *co_len,
                         lone_syms *ls)
{
    uint32_t singles = 0, open_at = 0;
    bool fail = false;
    uint64_t prev_an = 0;  /* byte before the block is a letter or digit */
    uint64_t pend_sym = 0; /* the last block's byte 63: a symbol after a word character */
    for (uint32_t base = 0; base < n; base += 64) {
        uint32_t left = n - base;
        uint64_t T, Y, valid = left >= 64 ? ~0ull : (1ull << left) - 1;
        ascii_squash64(s + base, out + base, &T, &Y); /* both have the room: see the caller */
        T &= valid;                                   /* past the end: spaces */
        Y &= valid;
        /* a symbol between two word characters ("fU.cK"), the text's first byte excepted */
        if (pend_sym && (T & 1)) {
            if (ls->n < WH_ARRAY_LEN(ls->pos))
                ls->pos[ls->n++] = base - 1;
            else
                ls->all = true;
        }
        uint64_t lone = Y & ((T << 1) | prev_an) & (T >> 1);
        if (base == 0) lone &= ~1ull;
        while (__builtin_expect(lone != 0, 0)) {
            uint32_t i = (uint32_t)__builtin_ctzll(lone);
            lone &= lone - 1;
            if (ls->n < WH_ARRAY_LEN(ls->pos))
                ls->pos[ls->n++] = base + i;
            else
                ls->all = true;
        }
        pend_sym = (Y >> 63) & (T >> 62) & 1;
        /* words: each ends where a word character is followed by another byte */
        uint64_t before = (T << 1) | prev_an;
        uint64_t starts = T & ~before, ends = ~T & before;
        while (ends) {
            uint32_t e = (uint32_t)__builtin_ctzll(ends);
            ends &= ends - 1;
            uint64_t below = starts & ((1ull << e) - 1);
            uint32_t st = below ? base + 63 - (uint32_t)__builtin_clzll(below) : open_at;
            singles = base + e - st == 1 ? singles + 1 : 0;
            fail |= singles >= 3;
        }
        if ((T >> 63) && starts) open_at = base + 63 - (uint32_t)__builtin_clzll(starts);
        prev_an = T >> 63;
    }
    if (prev_an) { /* a word ran to the end */
        singles = n - open_at == 1 ? singles + 1 : 0;
        fail |= singles >= 3;
    }
    if (fail) return false;
    /* the collapsed view: runs of a byte once, 'l' read as 'i' */
    uint32_t w = 0;
    unsigned char last = 0;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char o = (unsigned char)out[i];
        unsigned char d = o == 'l' ? 'i' : o;
        co[w] = (char)d;
        w += d != last;
        last = d;
    }
    out[n] = 0;
    co[w] = 0;
    *co_len = w;
    return true;
}

/* ---- Unicode classification -------------------------------------------------- */

static inline bool cat_is_mark(utf8proc_category_t c)
{
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_MC;
}
static inline bool cat_is_letter(utf8proc_category_t c)
{
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}
static inline bool cat_is_number(utf8proc_category_t c)
{
    return c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO;
}
static bool is_latin(uint32_t cp)
{
    return cp < 0x250 || (cp >= 0x1E00 && cp <= 0x1EFF) || (cp >= 0x2C60 && cp <= 0x2C7F) ||
           (cp >= 0xA720 && cp <= 0xA7FF) || (cp >= 0xAB30 && cp <= 0xAB6F) ||
           (cp >= 0xFF21 && cp <= 0xFF5A) || (cp >= 0x1D400 && cp <= 0x1D7FF) ||
           (cp >= 0x1D00 && cp <= 0x1DBF);
}

static void count_ascii(wh_features *f, unsigned char c)
{
    f->length++;
    if (is_alpha(c)) {
        f->letters++;
        if (c <= 'Z') f->upper++;
    } else if (is_digit(c)) {
        f->digits++;
    } else if (c == ' ' || (c >= 9 && c <= 13)) {
        f->spaces++;
    } else {
        f->symbols++;
    }
}

static void count_cp(wh_features *f, uint32_t cp, utf8proc_category_t cat)
{
    f->length++;
    if (cat_is_letter(cat)) {
        f->letters++;
        if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LT) f->upper++;
        if (!is_latin(cp)) f->non_latin++;
    } else if (cat_is_number(cat)) {
        f->digits++;
    } else if (cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
               cat == UTF8PROC_CATEGORY_ZP) {
        f->spaces++;
    } else if (cat_is_mark(cat)) {
        f->marks++;
    } else if (cat != UTF8PROC_CATEGORY_CF) {
        f->symbols++;
    }
}

/* ---- views --------------------------------------------------------------------- */

/* The UTS #46 label separators: browsers read "evil-site。com" and "evil-site｡com" as
 * "evil-site.com", so the folded view does too (links, hosts and word boundaries). */
static inline bool is_label_dot(uint32_t cp)
{
    return cp == 0x3002 || cp == 0xFF0E || cp == 0xFF61;
}

/* Upside-down text ("ʞɔnɟ" is "fuck" turned half a circle): the letter each character is when
 * turned back. Only characters that are not also ordinary letters of a language are listed;
 * a message with one of them is also read turned back, right to left (see add_alternates). */
static const struct {
    uint32_t cp;
    char c;
} flip_table[] = {
    {0x0186, 'c'}, {0x018E, 'e'}, {0x01DD, 'e'}, {0x0250, 'a'}, {0x0254, 'c'}, {0x025F, 'f'},
    {0x0265, 'h'}, {0x026F, 'm'}, {0x0279, 'r'}, {0x0283, 'l'}, {0x0287, 't'}, {0x028C, 'v'},
    {0x028D, 'w'}, {0x028E, 'y'}, {0x029E, 'k'}, {0x02E5, 'l'}, {0x0500, 'p'}, {0x1D09, 'i'},
    {0x1D1A, 'r'}, {0x2132, 'f'}, {0x2141, 'g'}, {0x2144, 'y'}, {0x2200, 'a'}, {0x2229, 'u'},
    {0x22A5, 't'}, {0x15E1, 'd'}, {0x15FA, 'b'}, {0xA7B0, 'k'}, {0xA780, 'l'}, {0x0183, 'g'},
    {0x027E, 'j'}, {0x0196, '1'}, {0x1105, '2'},
};

static char flip_letter(uint32_t cp)
{
    /* most text (accented Latin, Cyrillic, CJK, emoji) is outside the table's ranges */
    if (cp < 0x180 ||
        (cp > 0x2E5 && cp < 0x2132 && cp != 0x500 && cp != 0x1105 && cp != 0x15E1 && cp != 0x15FA &&
         cp != 0x1D09 && cp != 0x1D1A) ||
        (cp > 0x22A5 && cp < 0xA780) || cp > 0xA7B0)
        return 0;
    for (size_t i = 0; i < WH_ARRAY_LEN(flip_table); i++)
        if (flip_table[i].cp == cp) return flip_table[i].c;
    return 0;
}

/* ASCII letters in upside-down text: the ones that turn into another letter. */
static char flip_ascii(unsigned char c)
{
    static const char from[] = "nudpbqwmNUDPBQWM", to[] = "unpdqbmw";
    const char *k = memchr(from, c, sizeof(from) - 1);
    if (k) return to[(k - from) % 8];
    return is_alpha(c) ? (char)(c | 0x20) : 0;
}

#define CLUSTER_MAX 32 /* marks past this many on one letter are zalgo: counted, dropped */

/* Folds raw into fb and maps it to the skeleton in sb in one pass. The skeleton of a
 * cluster comes from the table entry of its raw starter when there is one: the table was
 * built from the unfolded character, which keeps what capitals look like (Greek 'H' is an
 * 'h', though its lowercase is an 'n'-like eta). */
static void fold_general(const char *raw, uint32_t n, vbuild *fb, vbuild *sb, wh_features *f,
                         bool *flipped, bool *inner_cap)
{
    const unsigned char *s = (const unsigned char *)raw;
    uint32_t i = 0, prev_cp = UINT32_MAX, run = 0;
    utf8proc_int32_t buf[CLUSTER_MAX * 4];
    while (i < n) {
        uint32_t cp;
        unsigned l = wh_utf8_decode(s + i, &cp);
        utf8proc_category_t cat = cp < 0x80 ? UTF8PROC_CATEGORY_CN : utf8proc_category((int32_t)cp);
        /* Extent of the cluster: this code point and the combining marks after it. */
        uint32_t j = i + l, ncp = 1, cap_end = j;
        while (j < n && s[j] >= 0x80) {
            uint32_t m;
            unsigned ml = wh_utf8_decode(s + j, &m);
            if (!cat_is_mark(utf8proc_category((int32_t)m))) break;
            f->marks++;
            f->length++;
            j += ml;
            if (++ncp <= CLUSTER_MAX) cap_end = j;
        }
        if (cp == prev_cp && cp != ' ') {
            if (++run > f->max_run) f->max_run = run;
        } else {
            prev_cp = cp;
            run = 1;
            if (f->max_run == 0) f->max_run = 1;
        }
        if (cp < 0x80 && j == i + 1) { /* plain ASCII */
            count_ascii(f, s[i]);
            char c = (char)s[i];
            if (c >= 'A' && c <= 'Z') {
                c = (char)(c + 32);
                if (i > 0 && is_alpha(s[i - 1])) *inner_cap = true; /* "fU.cK" */
            }
            vb_push(fb, &c, 1, i, i + 1);
            vb_push(sb, &c, 1, i, i + 1);
            i = j;
            continue;
        }
        if (cp < 0x80)
            count_ascii(f, s[i]);
        else
            count_cp(f, cp, cat);
        if (!*flipped && flip_letter(cp)) *flipped = true;
        if (is_label_dot(cp)) {
            vb_push(fb, ".", 1, i, j);
            vb_push(sb, ".", 1, i, j);
            i = j;
            continue;
        }
        utf8proc_ssize_t k = utf8proc_decompose(
            s + i, (utf8proc_ssize_t)(cap_end - i), buf, (utf8proc_ssize_t)WH_ARRAY_LEN(buf),
            UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE |
                UTF8PROC_LUMP | UTF8PROC_STABLE);
        if (k >= 0 && k <= (utf8proc_ssize_t)WH_ARRAY_LEN(buf)) {
            k = utf8proc_normalize_utf32(buf, k, UTF8PROC_COMPOSE | UTF8PROC_STABLE);
        }
        bool folded_ok = k >= 0 && k <= (utf8proc_ssize_t)WH_ARRAY_LEN(buf);
        if (!folded_ok) {
            vb_push(fb, raw + i, cap_end - i, i, j); /* cannot normalize: keep as sent */
        } else {
            for (utf8proc_ssize_t q = 0; q < k; q++) {
                char e[4];
                unsigned el = wh_utf8_encode((uint32_t)buf[q], e);
                vb_push(fb, e, el, i, j);
            }
        }
        const char *rep;
        unsigned rl;
        if (cp < 0x80) {
            char c = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp); /* marks dropped */
            vb_push(sb, &c, 1, i, j);
        } else if ((rl = wh_skel_lookup(cp, &rep))) {
            vb_push(sb, rep, rl, i, j);
        } else if (folded_ok) {
            for (utf8proc_ssize_t q = 0; q < k; q++) {
                uint32_t fc = (uint32_t)buf[q];
                char e[4];
                if (fc < 0x80) {
                    e[0] = (char)fc;
                    vb_push(sb, e, 1, i, j);
                } else if ((rl = wh_skel_lookup(fc, &rep))) {
                    vb_push(sb, rep, rl, i, j);
                } else if (!cat_is_mark(utf8proc_category((int32_t)fc))) {
                    vb_push(sb, e, wh_utf8_encode(fc, e), i, j);
                }
            }
        } else if (!cat_is_mark(cat)) {
            vb_push(sb, raw + i, l, i, j);
        }
        i = j;
    }
}

/* Is the code point at s a word character (letter or digit) in the squashed sense? */
static inline unsigned word_char(const unsigned char *s, bool *word)
{
    if (s[0] < 0x80) {
        *word = is_alnum(s[0]);
        return 1;
    }
    uint32_t cp;
    unsigned l = wh_utf8_decode(s, &cp);
    utf8proc_category_t c = utf8proc_category((int32_t)cp);
    *word = cat_is_letter(c) || cat_is_number(c);
    return l;
}

#define SPAN_S(k) (sv->start ? sv->start[k] : (k))
#define SPAN_E(k) (sv->end ? sv->end[k] : (k) + 1)

/* Emits a group of spaced-out single characters as one word (digits read as leet). */
static void emit_group(vbuild *qb, const wh_view *sv, uint32_t p, const uint32_t *ends,
                       uint32_t count)
{
    const unsigned char *s = (const unsigned char *)sv->s;
    uint32_t n = sv->len;
    for (uint32_t t = 0; t < count; t++) {
        bool dummy;
        unsigned cl = word_char(s + p, &dummy);
        char c = (char)s[p];
        if (cl == 1 && is_digit((unsigned char)c) && leet_map[(unsigned char)c])
            c = leet_map[(unsigned char)c];
        if (cl == 1)
            vb_push(qb, &c, 1, SPAN_S(p), SPAN_E(p));
        else
            vb_push(qb, (const char *)s + p, cl, SPAN_S(p), SPAN_E(p + cl - 1));
        p = ends[t];
        if (t + 1 < count) { /* skip the separators to the next letter */
            while (p < n) {
                bool sw;
                unsigned sl = word_char(s + p, &sw);
                if (sw) break;
                p += sl;
            }
        }
    }
}

/* Separators of one spelled word must be alike, so "a c.u.n.t" does not take the "a" in:
 * the same bytes, or both punctuation without whitespace ("a/n_a.l", "f-u.c_k"). */
static bool sep_alike(const unsigned char *s, uint32_t a, uint32_t an, uint32_t b, uint32_t bn)
{
    if (an == bn && memcmp(s + a, s + b, an) == 0) return true;
    if (memchr(s + a, ' ', an) || memchr(s + a, '\t', an)) return false;
    return !memchr(s + b, ' ', bn) && !memchr(s + b, '\t', bn);
}

/* Raw case of a spelled letter: 1 upper, 0 lower, -1 not an ASCII letter. */
static int raw_case(const char *raw, const wh_view *sv, uint32_t k)
{
    unsigned char c = (unsigned char)raw[SPAN_S(k)];
    if (!is_alpha(c) || SPAN_E(k) - SPAN_S(k) != 1) return -1;
    return c <= 'Z';
}

/* Can the first (or last) letter of a spelled group be a word of its own beside it? The
 * English one-letter words ("a f u c k", "f u c k i hate"; "u" for "you"), a number ("f u c k
 * 3 times"), the tail of a contraction ("can't f u c k"), a letter written in another case
 * ("plan B f u c k it"). A trailing "a" is not dropped: "s p i c a" (the star Spica) would
 * read as a slur, and "f u c k a" is rare (see docs/architecture.md). */
static bool edge_word(const char *raw, const wh_view *sv, const uint32_t *starts, uint32_t count,
                      bool first)
{
    const unsigned char *s = (const unsigned char *)sv->s;
    uint32_t k = first ? starts[0] : starts[count - 1];
    uint32_t nb = first ? starts[1] : starts[count - 2];
    unsigned char c = s[k];
    if (is_digit(c) || c == 'i' || c == 'u' || (first && c == 'a')) return true;
    int ck = raw_case(raw, sv, k), cn = raw_case(raw, sv, nb);
    if (ck >= 0 && cn >= 0 && ck != cn) return true;
    return first && k >= 2 && s[k - 1] == '\'' && is_alpha(s[k - 2]);
}

/* Squashes sv into qb. Returns true when the output is byte-for-byte aligned with the input
 * (no group was joined), in which case the caller may keep the input's offset map. */
static bool squash(const char *raw, const wh_view *sv, vbuild *qb)
{
    const unsigned char *s = (const unsigned char *)sv->s;
    uint32_t n = sv->len, i = 0;
    bool aligned = true;
    struct {
        uint32_t start, count, ends[64];
    } alts[8];
    uint32_t nalts = 0;
    while (i < n) {
        bool w;
        unsigned l = word_char(s + i, &w);
        if (!w) {
            /* One space per separator code point keeps ASCII output aligned. */
            for (unsigned k = 0; k < l; k++)
                vb_push(qb, " ", 1, SPAN_S(i), SPAN_E(i + l - 1));
            i += l;
            continue;
        }
        /* A token: is it a single code point followed by more single ones? */
        uint32_t te = i + l;
        bool w2 = false;
        if (te < n) word_char(s + te, &w2);
        if (!w2) {
            /* Count the group of single-character tokens starting here. */
            uint32_t k = i, count = 0, letters = 0;
            uint32_t starts[64], ends[64];
            uint32_t sep0 = 0, sep0_len = 0; /* the group's separator: all must be alike */
            while (k < n && count < 64) {
                bool kw;
                unsigned kl = word_char(s + k, &kw);
                if (!kw) break;
                uint32_t ke = k + kl;
                bool nw = false;
                if (ke < n) word_char(s + ke, &nw);
                if (nw) break; /* a longer token: not part of the group */
                if (is_alpha(s[k]) || s[k] >= 0x80) letters++;
                starts[count] = k;
                ends[count++] = ke;
                /* Separator run: at most 3 code points, no line break. */
                uint32_t sep = ke, nsep = 0;
                while (sep < n && nsep < 4) {
                    bool sw;
                    unsigned sl = word_char(s + sep, &sw);
                    if (sw || s[sep] == '\n') break;
                    sep += sl;
                    nsep++;
                }
                if (nsep == 0 || nsep > 3 || sep >= n || s[sep] == '\n') break;
                if (count == 1) {
                    sep0 = ke;
                    sep0_len = sep - ke;
                } else if (!sep_alike(s, ke, sep - ke, sep0, sep0_len)) {
                    break;
                }
                k = sep;
            }
            if (count >= 3 && letters > 0) {
                emit_group(qb, sv, i, ends, count);
                /* A one-letter word or a number next to a spelled word may or may not belong
                 * to it ("a s s h o l e" does), so the group without such a first or last
                 * letter (or both) is also added after the text, where a term can match it
                 * alone. */
                bool df = count >= 4 && edge_word(raw, sv, starts, count, true);
                bool dl = count >= 4 && edge_word(raw, sv, starts, count, false);
                for (uint32_t v = 0; v < 3; v++) {
                    uint32_t lo = v != 1, hi = v != 0; /* drop first, last, both */
                    if ((lo && !df) || (hi && !dl) || count - lo - hi < 3 ||
                        nalts >= WH_ARRAY_LEN(alts))
                        continue;
                    alts[nalts].start = starts[lo];
                    alts[nalts].count = count - lo - hi;
                    memcpy(alts[nalts].ends, ends + lo, sizeof(uint32_t) * alts[nalts].count);
                    nalts++;
                }
                aligned = false;
                i = ends[count - 1];
                continue;
            }
        }
        /* An ordinary token: copy it. */
        while (i < n) {
            bool tw;
            unsigned tl = word_char(s + i, &tw);
            if (!tw) break;
            vb_push(qb, (const char *)s + i, tl, SPAN_S(i), SPAN_E(i + tl - 1));
            i += tl;
        }
    }
    for (uint32_t k = 0; k < nalts; k++) {
        /* " \n ": a space for the word boundary, and a byte no term or spacing crosses, so
         * nothing matches from the text into the copy ("i h a t e you" is not "you hate"). */
        vb_push(qb, " \n ", 3, SPAN_S(alts[k].start), SPAN_E(alts[k].start));
        emit_group(qb, sv, alts[k].start, alts[k].ends, alts[k].count);
    }
    return aligned;
}

/* ---- alternate readings ---------------------------------------------------------
 *
 * Some evasions have two readings, and the skeleton can only hold one: in "f|u|c|k" a '|' is
 * an 'i' ("sh|t") or a separator; "ffuucckk" has every letter doubled where "Bonner" has one
 * (a term's letter matches once or three-plus times, see matcher.c). Such readings are added
 * after the squashed text, each behind " \n " like the spelled-word copies of squash(), so
 * a term matches the text or a copy but never across them, and each copy keeps the offset
 * map to the raw bytes it came from. A message gets a copy only when it has the trigger,
 * checked on the way (a leet symbol between two letters or digits, two doubled letters in a
 * row, a lone symbol between word characters in a text with capitals and small letters, an
 * upside-down letter), so ordinary chat pays for a check, not a copy. */
enum { ALT_LEET_SEP = 1, ALT_DOUBLED = 2, ALT_CASE_PUNCT = 4, ALT_FLIP = 8 };

typedef struct {
    vbuild qb;
    const wh_view *qv; /* the squashed text the copies follow */
    wh_arena *a;
    bool started;
} alt_out;

/* Starts a copy: on the first one, the squashed text itself, with its map. */
static bool alt_begin(alt_out *o, uint32_t rs, uint32_t re)
{
    if (!o->started) {
        const wh_view *qv = o->qv;
        if (!vb_init(&o->qb, o->a, qv->len * 2 + 64)) return false;
        for (uint32_t i = 0; i < qv->len; i++) {
            o->qb.s[i] = qv->s[i];
            o->qb.st[i] = qv->start ? qv->start[i] : i;
            o->qb.en[i] = qv->end ? qv->end[i] : i + 1;
        }
        o->qb.len = qv->len;
        o->started = true;
    }
    vb_push(&o->qb, " \n ", 3, rs, re);
    return !o->qb.oom;
}

/* "ffuucckk", "ppuussssyy": a token of six or more letters where every letter is doubled (each
 * run of a letter has an even length), read halved. One doubled letter is a different word
 * ("Bonner", "rapping"), every letter doubled is not; docs/architecture.md has what that
 * costs on the dictionaries. */
static void alt_doubled(alt_out *o)
{
    const wh_view *qv = o->qv;
    const unsigned char *s = (const unsigned char *)qv->s;
    for (uint32_t i = 0; i < qv->len;) {
        if (!is_alnum(s[i])) {
            i++;
            continue;
        }
        uint32_t st = i;
        while (i < qv->len && is_alnum(s[i]))
            i++;
        uint32_t len = i - st;
        if (len < 6 || len % 2) continue;
        bool pairs = true;
        uint32_t runs = 0;
        for (uint32_t k = st; k < i && pairs; runs++) {
            uint32_t r = k;
            while (r < i && s[r] == s[k])
                r++;
            pairs = (r - k) % 2 == 0;
            k = r;
        }
        if (!pairs || runs < 2) continue; /* "kkkkkk" is laughter, not a doubled "kkk" */
        uint32_t rs = qv->start ? qv->start[st] : st;
        if (!alt_begin(o, rs, rs + 1)) return;
        for (uint32_t k = st; k < i; k += 2)
            vb_push(&o->qb, (const char *)s + k, 1, qv->start ? qv->start[k] : k,
                    qv->end ? qv->end[k + 1] : k + 2);
    }
}

/* "fU.cK": one symbol inside a word whose case is mixed beyond a capital first letter, read
 * without the symbol. "Node.js", "e.g." and "U.S.A." are not mixed that way (or have more
 * than one symbol) and stay as they are. The word is sv[st, e). */
static void case_punct_word(alt_out *o, const char *raw, const wh_view *sv, uint32_t st, uint32_t e)
{
    const unsigned char *s = (const unsigned char *)sv->s;
    uint32_t sym = UINT32_MAX, nsym = 0;
    for (uint32_t k = st; k < e; k++) {
        if (s[k] >= 0x80) return;
        if (!is_alnum(s[k])) {
            sym = k;
            nsym++;
        }
    }
    if (nsym != 1 || sym == st || sym + 1 == e) return;
    bool upper_inside = false, lower = false;
    for (uint32_t k = st; k < e; k++) {
        int c = k == sym ? -1 : raw_case(raw, sv, k);
        upper_inside |= c == 1 && k > st;
        lower |= c == 0;
    }
    if (!upper_inside || !lower) return;
    if (!alt_begin(o, SPAN_S(st), SPAN_E(e - 1))) return;
    for (uint32_t k = st; k < e; k++)
        if (k != sym) vb_push(&o->qb, (const char *)s + k, 1, SPAN_S(k), SPAN_E(k));
}

static inline bool is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* The words around the lone symbols squash_ascii found, or every word (ls->all). */
static void alt_case_punct(alt_out *o, const char *raw, const wh_view *sv, const lone_syms *ls)
{
    const unsigned char *s = (const unsigned char *)sv->s;
    uint32_t n = sv->len, done = 0; /* words end at or before done are seen */
    for (uint32_t q = 0, i = 0; ls->all ? i < n : q < ls->n; q++) {
        uint32_t st = ls->all ? i : ls->pos[q], e;
        if (ls->all) {
            while (st < n && is_blank(s[st]))
                st++;
        } else {
            while (st > 0 && !is_blank(s[st - 1]))
                st--;
        }
        for (e = st; e < n && !is_blank(s[e]);)
            e++;
        if (st < e && e > done) case_punct_word(o, raw, sv, st, e);
        done = e;
        i = e;
    }
}

/* "ʞɔnɟ", "ʇᴉɥs ɟo ǝɔǝᴉd": a message with an upside-down letter, read turned back: right to
 * left, each letter turned (ASCII "n" is a turned "u"), anything else a space. */
static void alt_flip(alt_out *o, const char *raw, uint32_t n)
{
    const unsigned char *s = (const unsigned char *)raw;
    if (!alt_begin(o, 0, n ? 1 : 0)) return;
    bool space = true;
    for (uint32_t e = n; e > 0;) {
        uint32_t b = e - 1, cp;
        while (b > 0 && (s[b] & 0xC0) == 0x80)
            b--;
        wh_utf8_decode(s + b, &cp);
        char c = cp < 0x80 ? flip_ascii((unsigned char)cp) : flip_letter(cp);
        if (c) {
            vb_push(&o->qb, &c, 1, b, e);
            space = false;
        } else if (!space && (cp < 0x80 || !cat_is_mark(utf8proc_category((int32_t)cp)))) {
            vb_push(&o->qb, " ", 1, b, e);
            space = true;
        }
        e = b;
    }
}

/* Adds the readings of `kinds` after the squashed view (see above); preleet is the skeleton
 * before leetspeak (same length and map) for ALT_LEET_SEP. */
static wh_status add_alternates(wh_text *out, const char *raw, uint32_t n, char *preleet,
                                const lone_syms *ls, unsigned kinds, wh_arena *a)
{
    const wh_view *sv = &out->v[WH_VIEW_SKELETON];
    alt_out o = {.qv = &out->v[WH_VIEW_SQUASHED], .a = a};
    if ((kinds & ALT_LEET_SEP) && preleet) {
        /* "f|u|c|k", "blow+job": the symbols as separators, the digits still leet */
        leet_in_place(preleet, sv->len, false);
        wh_view av = {preleet, sv->len, sv->start, sv->end};
        if (alt_begin(&o, 0, n ? 1 : 0)) squash(raw, &av, &o.qb);
    }
    if (kinds & ALT_DOUBLED) alt_doubled(&o);
    if (kinds & ALT_CASE_PUNCT) alt_case_punct(&o, raw, sv, ls);
    if (kinds & ALT_FLIP) alt_flip(&o, raw, n);
    if (!o.started) return WH_OK;
    if (o.qb.oom) return WH_ENOMEM;
    vb_finish(&o.qb, &out->v[WH_VIEW_SQUASHED]);
    out->v[WH_VIEW_COLLAPSED].s = NULL; /* rebuilt from the longer squashed view */
    return WH_OK;
}

/* ---- links and mentions ------------------------------------------------------- */

static const char *const tlds[] = {
    "com",    "net",   "org",   "io",   "gg",    "tv",    "ly",      "me",   "co",   "xyz",
    "ru",     "info",  "biz",   "app",  "dev",   "link",  "click",   "top",  "site", "online",
    "live",   "store", "shop",  "gift", "gifts", "cn",    "tk",      "ml",   "ga",   "cf",
    "gq",     "pw",    "cc",    "us",   "uk",    "de",    "fr",      "eu",   "nl",   "ws",
    "su",     "pro",   "fun",   "icu",  "vip",   "win",   "bid",     "loan", "men",  "party",
    "stream", "game",  "games", "news", "club",  "space", "website", "tech", "art",  "codes",
    "promo",  "sale",  "ai",    "gl",   "gd",    "ee",
};

static bool is_tld(const char *p, size_t n)
{
    for (size_t i = 0; i < WH_ARRAY_LEN(tlds); i++)
        if (strlen(tlds[i]) == n && memcmp(tlds[i], p, n) == 0) return true;
    return false;
}

static inline bool host_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '-' || c >= 0x80;
}

/* Finds links and mentions in the folded view (so fullwidth dots and letters count). */
static void find_links(const wh_view *fv, wh_arena *a, wh_features *f)
{
    const char *s = fv->s;
    uint32_t n = fv->len, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '@' && (i == 0 || s[i - 1] == ' ') && i + 1 < n &&
            (is_alnum((unsigned char)s[i + 1]) || s[i + 1] == '_')) {
            f->mentions++;
            i++;
            while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '_'))
                i++;
            continue;
        }
        if (!host_char(c) || (i > 0 && (host_char((unsigned char)s[i - 1]) || s[i - 1] == '@'))) {
            i++;
            continue;
        }
        uint32_t hs = i, he = i;
        while (he < n && host_char((unsigned char)s[he]))
            he++;
        uint32_t link_start = hs, host_s = hs, host_e = he;
        bool is_link = false;
        /* scheme://host */
        if (he + 3 <= n && memcmp(s + he, "://", 3) == 0 && he - hs <= 10) {
            host_s = he + 3;
            /* "https://twitch.tv@grabify.link/": what precedes an '@' in the authority is
             * a user name; the browser goes to the host after the last one. */
            uint32_t auth_e = host_s;
            while (auth_e < n && !strchr("/?# ", s[auth_e]))
                auth_e++;
            for (uint32_t k = host_s; k < auth_e; k++)
                if (s[k] == '@') host_s = k + 1;
            host_e = host_s;
            while (host_e < n && host_char((unsigned char)s[host_e]))
                host_e++;
            is_link = host_e > host_s;
        } else {
            uint32_t e = he;
            while (e > hs && (s[e - 1] == '.' || s[e - 1] == '-'))
                e--;
            host_e = e;
            const char *dot = NULL;
            for (uint32_t k = hs; k < e; k++)
                if (s[k] == '.') dot = s + k;
            if (dot && dot > s + hs) {
                size_t tl = (size_t)(s + e - dot - 1);
                if ((e - hs >= 4 && memcmp(s + hs, "www.", 4) == 0) || is_tld(dot + 1, tl))
                    is_link = true;
            }
        }
        uint32_t end = host_e;
        if (is_link) {
            while (end < n && s[end] != ' ')
                end++; /* the path, up to whitespace */
            if (f->nlinks < WH_MAX_LINKS) {
                wh_link *lk = &f->links[f->nlinks];
                uint32_t he2 = host_e;
                while (he2 > host_s && s[he2 - 1] == '.')
                    he2--;
                char *h = wh_arena_strndup(a, s + host_s, he2 - host_s);
                lk->host.p = h;
                lk->host.n = h ? he2 - host_s : 0;
                wh_view_to_raw(fv, link_start, end, &lk->start, &lk->end);
            }
            f->nlinks++;
        }
        i = end > he ? end : he;
    }
}

uint32_t wh_collapse(const char *s, uint32_t n, char *out)
{
    uint32_t w = 0;
    unsigned char last = 0;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 'l') c = 'i';
        if (c == last && (c == ' ' || is_alnum(c))) continue;
        out[w++] = (char)c;
        last = c;
    }
    out[w] = 0;
    return w;
}

typedef struct {
    uint32_t up, al, dg, sp, lt, pr; /* counts; leet and pair bits */
    uint32_t prevq, carry, longest;  /* Q of the last chunk; E run at its end; longest run */
    unsigned char prev;              /* the last chunk's last byte */
} ascii_acc;

/* One chunk of wh_ascii_pass: v its bytes, valid the bits of real ones, first whether it is
 * the text's first. Returns v lowercased. Without a jump that depends on the text. */
static inline __attribute__((always_inline)) __m128i ascii_chunk(__m128i v, uint32_t valid,
                                                                 bool first, ascii_acc *c)
{
    const __m128i x20 = _mm_set1_epi8(0x20);
#define IN(lo, hi)                                                                                 \
    _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8((lo)-1)),                                        \
                  _mm_cmplt_epi8(v, _mm_set1_epi8((hi) + 1)))
#define EQ(ch) _mm_cmpeq_epi8(v, _mm_set1_epi8(ch))
    __m128i u = IN('A', 'Z'), l = IN('a', 'z'), d = IN('0', '9');
    __m128i w = _mm_or_si128(EQ(' '), IN(9, 13));
    /* leet_map's keys: the digits but 2 and 6, and @ $ ! | + */
    __m128i lk = _mm_or_si128(_mm_andnot_si128(_mm_or_si128(EQ('2'), EQ('6')), d),
                              _mm_or_si128(_mm_or_si128(EQ('@'), EQ('$')),
                                           _mm_or_si128(_mm_or_si128(EQ('!'), EQ('|')), EQ('+'))));
#undef IN
#undef EQ
    __m128i pv = _mm_or_si128(_mm_slli_si128(v, 1), _mm_cvtsi32_si128(c->prev));
    uint32_t U = (uint32_t)_mm_movemask_epi8(u) & valid;
    uint32_t A = (uint32_t)_mm_movemask_epi8(_mm_or_si128(u, l)) & valid;
    uint32_t D = (uint32_t)_mm_movemask_epi8(d) & valid;
    uint32_t S = (uint32_t)_mm_movemask_epi8(w) & valid;
    /* the text's first byte repeats nothing (not even a NUL) */
    uint32_t Q = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, pv)) & valid & (first ? ~1u : ~0u);
    uint32_t E = Q & ~S;
    c->up += (uint32_t)__builtin_popcount(U);
    c->al += (uint32_t)__builtin_popcount(A);
    c->dg += (uint32_t)__builtin_popcount(D);
    c->sp += (uint32_t)__builtin_popcount(S);
    c->lt |= (uint32_t)_mm_movemask_epi8(lk) & valid;
    /* pairs: W's bit i + 2 is Q_i, its bits 0 and 1 the last chunk's Q_14 and Q_15 */
    uint32_t W = (Q << 2) | (c->prevq >> 14);
    c->pr |= E & ~(W >> 1) & W;
    c->prevq = Q;
    /* the longest run of E bits: the one continued from the last chunk, then those inside
     * (each x &= x >> 1 shortens every run by one; runs of 4+ are rare enough to loop) */
    uint32_t lead = c->carry + (uint32_t)__builtin_ctz(~E);
    uint32_t x = E, k = x != 0;
    x &= x >> 1, k += x != 0;
    x &= x >> 1, k += x != 0;
    x &= x >> 1;
    while (__builtin_expect(x != 0, 0))
        k++, x &= x >> 1;
    uint32_t m = lead > k ? lead : k;
    c->longest = m > c->longest ? m : c->longest;
    c->carry = (uint32_t)__builtin_clz(~(E << 16)) + (E == 0xFFFFu ? c->carry : 0);
    c->prev = (unsigned char)(_mm_extract_epi16(v, 7) >> 8);
    return _mm_or_si128(v, _mm_and_si128(u, x20));
}

/* The ASCII pass, 16 bytes at a time (SSE2): lowercases raw[0..n) into fo and sk, counts
 * the features' classes, finds the longest run of one character (a space does not repeat:
 * "a    b" is not spam), whether a leetspeak character occurs (*leet) and whether two
 * doubled letters follow each other ("ffuu", the trigger of the doubled reading: *pairs).
 * Byte i's bits: E (it repeats byte i - 1 and is not a space) and Q (it equals byte i - 1;
 * never for the first byte). A run of k equal bytes is k - 1 E bits in a row;
 * a pair starts at i when E_i, not Q_(i-1), and Q_(i-2), i >= 3. This is the scalar loop it
 * replaced, bit for bit (test_normalize checks it against that loop on random texts): every
 * chat line pays it, and byte at a time it was a third of the view building. */
void wh_ascii_pass(const char *raw, uint32_t n, char *fo, char *sk, wh_features *f, bool *leet,
                   bool *pairs)
{
    ascii_acc c = {0};
    uint32_t base = 0;
    for (; base + 16 <= n; base += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(raw + base));
        __m128i lower = ascii_chunk(v, 0xFFFFu, base == 0, &c);
        _mm_storeu_si128((__m128i *)(fo + base), lower);
        _mm_storeu_si128((__m128i *)(sk + base), lower);
    }
    if (base < n) {
        uint32_t left = n - base;
        char t[16] = {0};
        memcpy(t, raw + base, left);
        __m128i lower =
            ascii_chunk(_mm_loadu_si128((const __m128i *)t), (1u << left) - 1, base == 0, &c);
        _mm_storeu_si128((__m128i *)(fo + base), lower); /* they have the room */
        _mm_storeu_si128((__m128i *)(sk + base), lower);
    }
    f->length = n;
    f->letters = c.al;
    f->upper = c.up;
    f->digits = c.dg;
    f->spaces = c.sp;
    f->symbols = n - c.al - c.dg - c.sp;
    f->max_run = n ? c.longest + 1 : 0;
    *leet = c.lt != 0;
    *pairs = c.pr != 0;
}

wh_status wh_text_build(const char *raw, uint32_t n, wh_arena *a, wh_text *out)
{
    memset(out, 0, sizeof(*out));
    wh_features *f = &out->f;
    unsigned kinds = 0;
    char *preleet = NULL;
    out->v[WH_VIEW_RAW] = (wh_view){raw, n, NULL, NULL};
    out->ascii = wh_is_ascii(raw, n);
    if (out->ascii) {
        /* room past the end: 16-byte stores here, 64-byte reads in squash_ascii */
        char *fo = wh_arena_alloc(a, (size_t)n + 1 + 16);
        char *sk = wh_arena_alloc(a, (size_t)n + 1 + WH_VIEW_PAD);
        if (!fo || !sk) return WH_ENOMEM;
        bool any_leet, pairs;
        wh_ascii_pass(raw, n, fo, sk, f, &any_leet, &pairs);
        fo[n] = sk[n] = 0;
        unsigned leet = any_leet ? leet_in_place(sk, n, true) : 0;
        if (leet & LEET_SYMBOL) {
            preleet = wh_arena_alloc(a, (size_t)n + 1);
            if (!preleet) return WH_ENOMEM;
            memcpy(preleet, fo, (size_t)n + 1);
            kinds |= ALT_LEET_SEP;
        }
        if (pairs) kinds |= ALT_DOUBLED;
        /* Equal views need one Hyperscan scan, not two (see matcher.c). */
        out->same_rf = f->upper == 0;
        out->same_fs = !leet;
        out->v[WH_VIEW_FOLDED] = (wh_view){fo, n, NULL, NULL};
        out->v[WH_VIEW_SKELETON] = (wh_view){sk, n, NULL, NULL};
    } else {
        vbuild fb, sb;
        if (!vb_init(&fb, a, n + 16) || !vb_init(&sb, a, n + 16)) return WH_ENOMEM;
        bool flipped = false;
        bool inner_cap = false;
        fold_general(raw, n, &fb, &sb, f, &flipped, &inner_cap);
        if (fb.oom || sb.oom) return WH_ENOMEM;
        vb_finish(&fb, &out->v[WH_VIEW_FOLDED]);
        sb.s[sb.len] = 0; /* strpbrk below reads up to the terminator */
        if (strpbrk(sb.s, "@$!|+")) {
            preleet = wh_arena_alloc(a, (size_t)sb.len + 1);
            if (!preleet) return WH_ENOMEM;
            memcpy(preleet, sb.s, (size_t)sb.len + 1);
        }
        if (leet_in_place(sb.s, sb.len, true) & LEET_SYMBOL) kinds |= ALT_LEET_SEP;
        if (f->max_run >= 2) kinds |= ALT_DOUBLED;
        if (inner_cap) kinds |= ALT_CASE_PUNCT;
        if (flipped) kinds |= ALT_FLIP;
        vb_finish(&sb, &out->v[WH_VIEW_SKELETON]);
    }
    const wh_view *sv = &out->v[WH_VIEW_SKELETON];
    char *sq = out->ascii ? wh_arena_alloc(a, (size_t)sv->len * 2 + 2 + WH_VIEW_PAD) : NULL;
    uint32_t co_len = 0;
    lone_syms ls = {.n = 0, .all = !out->ascii};
    if (sq && squash_ascii(sv->s, sv->len, sq, sq + sv->len + 1, &co_len, &ls)) {
        out->v[WH_VIEW_SQUASHED] = (wh_view){sq, sv->len, NULL, NULL}; /* identity map */
        out->v[WH_VIEW_COLLAPSED] = (wh_view){sq + sv->len + 1, co_len, NULL, NULL};
    } else {
        vbuild qb;
        if (!vb_init(&qb, a, sv->len + 16)) return WH_ENOMEM;
        bool aligned = squash(raw, sv, &qb);
        if (qb.oom) return WH_ENOMEM;
        vb_finish(&qb, &out->v[WH_VIEW_SQUASHED]);
        if (aligned && !sv->start) {
            out->v[WH_VIEW_SQUASHED].start = NULL; /* identity: skip the map on the hot path */
            out->v[WH_VIEW_SQUASHED].end = NULL;
        }
    }
    if (f->upper && f->letters > f->upper && f->symbols &&
        (ls.n || (out->ascii ? !out->v[WH_VIEW_COLLAPSED].s : (kinds & ALT_CASE_PUNCT) != 0)))
        kinds |= ALT_CASE_PUNCT;
    else
        kinds &= ~(unsigned)ALT_CASE_PUNCT;
    if (kinds) {
        if (!out->v[WH_VIEW_COLLAPSED].s) ls.all = true; /* squash_ascii stopped early */
        wh_status st = add_alternates(out, raw, n, preleet, &ls, kinds, a);
        if (st != WH_OK) return st;
    }
    if (!out->v[WH_VIEW_COLLAPSED].s) {
        const wh_view *qv = &out->v[WH_VIEW_SQUASHED];
        char *co = wh_arena_alloc(a, (size_t)qv->len + 1 + WH_VIEW_PAD);
        if (!co) return WH_ENOMEM;
        out->v[WH_VIEW_COLLAPSED] = (wh_view){co, wh_collapse(qv->s, qv->len, co), NULL, NULL};
    }
    const wh_view *fv = &out->v[WH_VIEW_FOLDED];
    /* Links have a dot and mentions an '@': most messages have neither. */
    if (memchr(fv->s, '.', fv->len) || memchr(fv->s, '@', fv->len)) find_links(fv, a, f);
    return WH_OK;
}

const char *wh_normalize_term(const char *term, size_t n, wh_view_id view, wh_arena *a,
                              uint32_t *out_len)
{
    wh_text t;
    if (wh_utf8_invalid_at(term, n) != (size_t)-1) return NULL;
    if (wh_text_build(term, (uint32_t)n, a, &t) != WH_OK) return NULL;
    /* A term is its own text, not the alternate readings added after it ("a$$hole" is the
     * term "asshole", not also "a hole"): they follow the first newline. */
    char *s = (char *)t.v[view].s;
    uint32_t len = t.v[view].len;
    const char *nl = memchr(s, '\n', len);
    if (nl && view >= WH_VIEW_SQUASHED) {
        len = (uint32_t)(nl - s);
        while (len && s[len - 1] == ' ')
            len--;
        s[len] = 0;
    }
    *out_len = len;
    return s;
}
