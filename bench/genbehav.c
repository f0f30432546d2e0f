/* genbehav.c - reproducible event streams for the whiply behaviour benchmark
 * (bench/behaviour.sh).
 *
 *   genbehav users --seed N --users N --channels N --out FILE
 *                  [--second-pct 50] [--other-channel-pct 10] [--gap-ms 2]
 *   genbehav wave  --seed N --chat EVENTS.ndjson --out FILE --out-truth FILE
 *                  [--channel NAME] [--skip-min 5] [--minutes 10] [--accounts 50]
 *                  [--spam-at-min 5] [--gap-ms-min 500] [--gap-ms-max 3000]
 *
 * users: every one of --users distinct users sends one message, and --second-pct of them a
 *   second one (in their home channel, or in another channel --other-channel-pct of the
 *   time), in random order over --channels channels (popularity ~ 1/(rank+2)), one event
 *   every 0..2*--gap-ms ms. Writes whiply event NDJSON; a JSON line of counts to stderr,
 *   including "entries": the distinct (channel, user) pairs, which is what whiply's state
 *   counts as users.
 *
 * wave: a spam wave in real chat. The chat is the busiest channel (or --channel) of an
 *   existing genstream stream (--chat, sorted by ts), from --skip-min minutes after its
 *   first event for --minutes minutes, copied unchanged. Into it go --accounts new spam
 *   accounts, spam-1 .. spam-N, each posting one near-identical copy of the same spam
 *   message, starting --spam-at-min minutes into the window, --gap-ms-min..--gap-ms-max ms
 *   apart. Each copy is mutated: a suffix (a number, a random tag, or both), sometimes an
 *   @mention of a chatter in front, and letters disguised with one of: Cyrillic homoglyphs,
 *   mathematical bold / bold italic / sans-serif bold letters, fullwidth letters, or a mix.
 *   --out gets the merged events; --out-truth one line per spam message:
 *   "<event id>\t<account index, 1-based>\t<user id>\t<text>". A JSON line of counts to
 *   stderr.
 *
 * Standalone C11, libc only; integer PRNG (xoshiro256** through splitmix64, shared with
 * genstream.c in gen_common.h), so a seed gives the same bytes everywhere.
 */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_common.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------- PRNG (the generator itself: gen_common.h) */

static int64_t irange(rng_t *r, int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)below(r, (uint64_t)(hi - lo + 1));
}

static bool pct(rng_t *r, unsigned p) /* true with probability p% */
{
    return below(r, 100) < p;
}

#define PICK(r, arr) ((arr)[below((r), NELEM(arr))])

/* ------------------------------------------------------------------ utils */

static _Noreturn void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "genbehav: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) die("%s", "out of memory");
    return p;
}

static uint64_t parse_u64(const char *s, const char *opt)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || *e || s[0] == '-' || !s[0]) die("bad number for %s", opt);
    return (uint64_t)v;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static void fmt_time(char *out, int64_t ms, bool with_ms)
{
    int64_t s = ms / 1000, days = s / 86400, rem = s % 86400;
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (with_ms)
        sprintf(out, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600),
                (int)(rem / 60 % 60), (int)(rem % 60), (int)(ms % 1000));
    else
        sprintf(out, "%04d-%02u-%02uT%02d:%02d:%02dZ", y, m, d, (int)(rem / 3600),
                (int)(rem / 60 % 60), (int)(rem % 60));
}

/* "2026-11-24T11:00:00.123Z" -> ms; -1 when not that shape */
static int64_t parse_time(const char *s, size_t n)
{
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return -1;
    int y = atoi(s), mo = atoi(s + 5), d = atoi(s + 8), h = atoi(s + 11), mi = atoi(s + 14),
        se = atoi(s + 17);
    int64_t ms = 0;
    if (s[19] == '.') {
        int k = 0;
        for (size_t i = 20; i < n && s[i] >= '0' && s[i] <= '9' && k < 3; i++, k++)
            ms = ms * 10 + (s[i] - '0');
        while (k++ < 3)
            ms *= 10;
    }
    return ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se) *
            1000) +
           ms;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* the value of "key":"..." in a JSON line (no escapes in these values); NULL if absent */
static const char *json_field(const char *line, const char *key, size_t *n)
{
    const char *p = strstr(line, key);
    if (!p) return NULL;
    p += strlen(key);
    const char *e = strchr(p, '"');
    if (!e) return NULL;
    *n = (size_t)(e - p);
    return p;
}

/* ------------------------------------------------------------------ users */

// clang-format off
static const char *const PHRASES[] = {
    "hello chat", "hi everyone", "good morning", "that was insane", "no way", "lets go",
    "what a play", "clip that", "how is that possible", "gg well played", "so close",
    "next time for sure", "he's cooking", "this song slaps", "what game is this",
    "first time here", "love the stream", "when is the next stream", "unlucky", "nice shot",
    "check the map", "behind you", "go left", "use the shield", "what rank are you",
    "can you play with viewers", "audio is out of sync", "stream is lagging for me",
    "works fine for me", "just got here what did i miss", "did he win", "that boss is hard",
    "i can't believe it", "chat is this real", "we are so back", "it's over",
    "the new patch is terrible", "that team comp is broken", "how long have you been live",
    "what headset do you use", "greetings from brazil", "hello from germany",
    "my cat is watching too", "best stream on the platform", "take a break you earned it",
    "drink some water", "this is peak content", "i missed the start", "again again",
    "why did he do that", "the chat is so fast", "i have been here since 2019",
    "that was a clean round", "rip", "he's actually insane", "teach me your ways",
    "what settings do you use", "i would have done the same", "the music is fire",
    "someone explain the rules", "good night everyone",
};
static const char *const TAILS[] = {
    "lol", "LUL", "Kappa", "PogChamp", "haha", "ngl", "tbh", "fr", "!!", "?", "xd", "KEKW",
    "monkaS", "omg", "bro", "😂", "🔥", "👀",
};
static const char *const NAMES[] = {
    "neon", "pixel", "frozen", "lazy", "cosmic", "sleepy", "toxic", "happy", "shadow", "mega",
    "tiny", "salty", "golden", "silent", "crispy", "lucky",
};
static const char *const THINGS[] = {
    "fox", "otter", "toast", "frog", "panda", "ninja", "pirate", "noodle", "sniper", "wizard",
    "taco", "llama", "gamer", "knight", "duck", "bear",
};
// clang-format on

typedef struct {
    uint16_t home;
    uint8_t seen, is_new, sub;
    int32_t created_s; /* account creation, seconds from start */
} vuser_t;

static int cmd_users(int argc, char **argv)
{
    uint64_t seed = 7, nusers = 1000000, nchan = 2000, second = 50, other = 10, gap = 2;
    const char *out = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("missing value for %s", a);
        i++;
        if (!strcmp(a, "--seed"))
            seed = parse_u64(v, a);
        else if (!strcmp(a, "--users"))
            nusers = parse_u64(v, a);
        else if (!strcmp(a, "--channels"))
            nchan = parse_u64(v, a);
        else if (!strcmp(a, "--second-pct"))
            second = parse_u64(v, a);
        else if (!strcmp(a, "--other-channel-pct"))
            other = parse_u64(v, a);
        else if (!strcmp(a, "--gap-ms"))
            gap = parse_u64(v, a);
        else if (!strcmp(a, "--out"))
            out = v;
        else
            die("unknown option %s", a);
    }
    if (!out || nusers == 0 || nusers > 100000000 || nchan == 0 || nchan > 65535 || second > 100 ||
        other > 100)
        die("%s", "users: needs --out, 1 <= --users <= 1e8, 1 <= --channels <= 65535");
    rng_t r;
    rng_seed(&r, seed);

    /* channel popularity ~ 1/(rank+2): cumulative weights, scaled integers */
    uint64_t *cum = xcalloc(nchan, sizeof *cum), acc = 0;
    for (uint64_t c = 0; c < nchan; c++)
        cum[c] = acc += 1000000000ULL / (c + 2);
    vuser_t *u = xcalloc(nusers, sizeof *u);
    const int64_t start_ms = (days_from_civil(2026, 11, 24) * 86400 + 12 * 3600) * 1000;
    for (uint64_t i = 0; i < nusers; i++) {
        uint64_t x = below(&r, acc), lo = 0, hi = nchan - 1;
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;
            if (cum[mid] > x)
                hi = mid;
            else
                lo = mid + 1;
        }
        u[i].home = (uint16_t)lo;
        u[i].is_new = pct(&r, 5);
        u[i].sub = pct(&r, 25);
        /* accounts 2012-01-01 .. 2026-11-20; new ones in the last 7 days */
        int64_t oldest = (days_from_civil(2012, 1, 1) - days_from_civil(2026, 11, 24)) * 86400;
        u[i].created_s = u[i].is_new ? (int32_t)-irange(&r, 3600, 7 * 86400)
                                     : (int32_t)irange(&r, oldest, -4 * 86400);
    }
    /* the messages: each user once, some twice; shuffled */
    uint64_t nmsg = nusers;
    uint8_t *twice = xcalloc(nusers, 1);
    for (uint64_t i = 0; i < nusers; i++)
        if (pct(&r, (unsigned)second)) twice[i] = 1, nmsg++;
    uint32_t *order = xcalloc(nmsg, sizeof *order);
    uint64_t k = 0;
    for (uint64_t i = 0; i < nusers; i++) {
        order[k++] = (uint32_t)i;
        if (twice[i]) order[k++] = (uint32_t)i;
    }
    for (uint64_t i = nmsg - 1; i > 0; i--) {
        uint64_t j = below(&r, i + 1);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    FILE *f = fopen(out, "wb");
    if (!f) die("cannot write %s", out);
    static char iobuf[1 << 22];
    setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
    int64_t ts = start_ms;
    uint64_t entries = 0, links = 0;
    char tsbuf[40], cbuf[40], text[512];
    for (uint64_t e = 0; e < nmsg; e++) {
        uint32_t id = order[e];
        vuser_t *v = &u[id];
        ts += (int64_t)below(&r, 2 * gap + 1);
        uint32_t ch = v->home;
        bool first = !v->seen;
        if (!first && pct(&r, (unsigned)other)) { /* the second message elsewhere */
            ch = (uint32_t)below(&r, nchan);
            if (ch == v->home) ch = (ch + 1) % (uint32_t)nchan;
        }
        entries += first || ch != v->home;
        v->seen = 1;
        /* text: one to three phrases, a tail now and then, a link in 2% */
        size_t o = 0;
        int np = (int)irange(&r, 1, 3);
        for (int p = 0; p < np; p++)
            o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", p ? " " : "",
                                  PICK(&r, PHRASES));
        if (pct(&r, 30)) o += (size_t)snprintf(text + o, sizeof text - o, " %s", PICK(&r, TAILS));
        if (pct(&r, 2)) {
            links++;
            /* one draw per statement: argument order is unspecified in C */
            const char *host = pct(&r, 70) ? "clips.twitch.tv" : "shorturl.example";
            char c1 = (char)('A' + below(&r, 26));
            char c2 = (char)('a' + below(&r, 26));
            unsigned long long num = below(&r, 1000000);
            o += (size_t)snprintf(text + o, sizeof text - o, " https://%s/%c%c%llu", host, c1, c2,
                                  num);
        }
        (void)o;
        bool discord = ch % 7 == 3;
        fmt_time(tsbuf, ts, true);
        fmt_time(cbuf, start_ms + (int64_t)v->created_s * 1000, false);
        fprintf(
            f,
            "{\"id\":\"b-%llu\",\"type\":\"message\",\"platform\":\"%s\",\"channel\":\"#ch%04u\","
            "\"user\":{\"id\":\"v%u\",\"name\":\"%s%s%u\",\"roles\":[%s],\"created_at\":\"%s\","
            "\"first_message\":%s},\"text\":",
            (unsigned long long)e + 1, discord ? "discord" : "twitch", ch, id,
            NAMES[id % NELEM(NAMES)], THINGS[id / NELEM(NAMES) % NELEM(THINGS)], id,
            v->sub ? "\"subscriber\"" : "", cbuf, first && v->is_new ? "true" : "false");
        json_str(f, text);
        fprintf(f, ",\"ts\":\"%s\"}\n", tsbuf);
    }
    if (fclose(f)) die("cannot write %s", out);
    free(cum);
    free(u);
    free(twice);
    free(order);
    fprintf(stderr,
            "{\"users\":%llu,\"channels\":%llu,\"events\":%llu,\"entries\":%llu,\"links\":%llu,"
            "\"seconds\":%.1f}\n",
            (unsigned long long)nusers, (unsigned long long)nchan, (unsigned long long)nmsg,
            (unsigned long long)entries, (unsigned long long)links,
            (double)(ts - start_ms) / 1000.0);
    return 0;
}

/* ------------------------------------------------------------------ wave */

static const char SPAM[] = "Wanna become famous? Buy followers, primes and viewers on "
                           "streamboost . store (remove the space) and get 50 percent off today";

/* Latin letter -> Cyrillic look-alike (0: none) */
static uint32_t cyrillic(int c)
{
    switch (c) {
    case 'a':
        return 0x0430;
    case 'e':
        return 0x0435;
    case 'o':
        return 0x043E;
    case 'p':
        return 0x0440;
    case 'c':
        return 0x0441;
    case 'x':
        return 0x0445;
    case 'y':
        return 0x0443;
    case 'i':
        return 0x0456;
    case 's':
        return 0x0455;
    case 'A':
        return 0x0410;
    case 'B':
        return 0x0412;
    case 'E':
        return 0x0415;
    case 'H':
        return 0x041D;
    case 'K':
        return 0x041A;
    case 'M':
        return 0x041C;
    case 'O':
        return 0x041E;
    case 'P':
        return 0x0420;
    case 'C':
        return 0x0421;
    case 'T':
        return 0x0422;
    case 'X':
        return 0x0425;
    default:
        return 0;
    }
}

enum { ST_CYRILLIC, ST_BOLD, ST_BOLD_ITALIC, ST_SANS_BOLD, ST_FULLWIDTH, ST_MIX, ST__COUNT };
static const char *const STYLE_NAMES[ST__COUNT] = {
    "cyrillic", "math_bold", "math_bold_italic", "math_sans_bold", "fullwidth", "mix"};

static uint32_t styled(int style, int c)
{
    bool lo = c >= 'a' && c <= 'z', up = c >= 'A' && c <= 'Z', dg = c >= '0' && c <= '9';
    switch (style) {
    case ST_BOLD:
        return lo   ? 0x1D41A + (uint32_t)(c - 'a')
               : up ? 0x1D400 + (uint32_t)(c - 'A')
               : dg ? 0x1D7CE + (uint32_t)(c - '0')
                    : 0;
    case ST_BOLD_ITALIC:
        return lo ? 0x1D482 + (uint32_t)(c - 'a') : up ? 0x1D468 + (uint32_t)(c - 'A') : 0;
    case ST_SANS_BOLD:
        return lo   ? 0x1D5EE + (uint32_t)(c - 'a')
               : up ? 0x1D5D4 + (uint32_t)(c - 'A')
               : dg ? 0x1D7EC + (uint32_t)(c - '0')
                    : 0;
    case ST_FULLWIDTH:
        return lo   ? 0xFF41 + (uint32_t)(c - 'a')
               : up ? 0xFF21 + (uint32_t)(c - 'A')
               : dg ? 0xFF10 + (uint32_t)(c - '0')
                    : 0;
    default:
        return 0;
    }
}

/* One spam copy into out (UTF-8): disguise letters, add a suffix, maybe a mention. */
static void make_spam(rng_t *r, const char *mention, char *out, size_t cap, int *style_out)
{
    int style = (int)below(r, ST__COUNT);
    *style_out = style;
    size_t o = 0;
    if (mention) o += (size_t)snprintf(out + o, cap - o, "@%s ", mention);
    /* which words get the fancy letters: all of them, or a random half */
    bool all_words = pct(r, 40);
    bool word_on = all_words || pct(r, 50);
    for (const char *p = SPAM; *p && o + 8 < cap; p++) {
        int c = (unsigned char)*p;
        if (c == ' ') {
            word_on = all_words || pct(r, 50);
            out[o++] = ' ';
            continue;
        }
        uint32_t cp = 0;
        int s = style == ST_MIX ? (int)below(r, ST_FULLWIDTH + 1) : style;
        if (s == ST_CYRILLIC) {
            if (pct(r, 60)) cp = cyrillic(c);
        } else if (word_on) {
            cp = styled(s, c);
        }
        if (cp)
            o += (size_t)put_utf8(out + o, cp);
        else
            out[o++] = (char)c;
    }
    /* suffix: a number, a random tag, or both */
    static const char ALNUM[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned kind = (unsigned)below(r, 10);
    if (kind < 4 || kind >= 8)
        o += (size_t)snprintf(out + o, cap - o, " %llu", (unsigned long long)irange(r, 10, 999999));
    if (kind >= 4) {
        static const char *const OPEN[] = {"#", "[", "(", "~", ""}, *const CLOSE[] = {"", "]", ")",
                                                                                      "", ""};
        size_t w = below(r, NELEM(OPEN));
        o += (size_t)snprintf(out + o, cap - o, " %s", OPEN[w]);
        int n = (int)irange(r, 4, 7);
        for (int i = 0; i < n && o + 2 < cap; i++)
            out[o++] = ALNUM[below(r, sizeof ALNUM - 1)];
        o += (size_t)snprintf(out + o, cap - o, "%s", CLOSE[w]);
    }
    out[o < cap ? o : cap - 1] = 0;
}

typedef struct {
    char *s;
} str_t;

static int cmd_wave(int argc, char **argv)
{
    uint64_t seed = 11, skip_min = 5, minutes = 10, accounts = 50, spam_at = 5, gmin = 500,
             gmax = 3000;
    const char *chat = NULL, *out = NULL, *truth = NULL, *channel = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("missing value for %s", a);
        i++;
        if (!strcmp(a, "--seed"))
            seed = parse_u64(v, a);
        else if (!strcmp(a, "--chat"))
            chat = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--out-truth"))
            truth = v;
        else if (!strcmp(a, "--channel"))
            channel = v;
        else if (!strcmp(a, "--skip-min"))
            skip_min = parse_u64(v, a);
        else if (!strcmp(a, "--minutes"))
            minutes = parse_u64(v, a);
        else if (!strcmp(a, "--accounts"))
            accounts = parse_u64(v, a);
        else if (!strcmp(a, "--spam-at-min"))
            spam_at = parse_u64(v, a);
        else if (!strcmp(a, "--gap-ms-min"))
            gmin = parse_u64(v, a);
        else if (!strcmp(a, "--gap-ms-max"))
            gmax = parse_u64(v, a);
        else
            die("unknown option %s", a);
    }
    if (!chat || !out || !truth || accounts == 0 || accounts > 100000 || gmax < gmin ||
        spam_at > minutes)
        die("%s", "wave: needs --chat, --out, --out-truth; --gap-ms-min <= --gap-ms-max; "
                  "--spam-at-min <= --minutes");

    /* pass 1: the window, and the busiest channel in it */
    FILE *in = fopen(chat, "rb");
    if (!in) die("cannot open %s", chat);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int64_t first_ms = -1, from = 0, to = 0;
    enum { NCH = 4096 };
    static char *cname[NCH];
    static uint64_t ccount[NCH];
    size_t nch = 0;
    while ((len = getline(&line, &lcap, in)) > 0) {
        size_t n;
        const char *t = json_field(line, "\"ts\":\"", &n);
        if (!t) continue;
        int64_t ms = parse_time(t, n);
        if (ms < 0) continue;
        if (first_ms < 0) {
            first_ms = ms;
            from = first_ms + (int64_t)skip_min * 60000;
            to = from + (int64_t)minutes * 60000;
        }
        if (ms >= to) break;
        if (ms < from || channel) continue;
        const char *c = json_field(line, "\"channel\":\"", &n);
        if (!c || !strstr(line, "\"type\":\"message\"")) continue;
        size_t k;
        for (k = 0; k < nch; k++)
            if (strlen(cname[k]) == n && !memcmp(cname[k], c, n)) break;
        if (k == nch) {
            if (nch == NCH) continue;
            cname[nch] = xcalloc(n + 1, 1);
            memcpy(cname[nch], c, n);
            nch++;
        }
        ccount[k]++;
    }
    if (first_ms < 0) die("no events with a ts in %s", chat);
    if (!channel) {
        size_t best = 0;
        for (size_t k = 1; k < nch; k++)
            if (ccount[k] > ccount[best]) best = k;
        if (!nch) die("no messages in the window of %s", chat);
        channel = cname[best];
    }

    /* pass 2: the channel's messages in the window, with the spam merged in by ts */
    rewind(in);
    char key[512];
    snprintf(key, sizeof key, "\"channel\":\"%s\"", channel);
    FILE *f = fopen(out, "wb"), *tf = fopen(truth, "wb");
    if (!f) die("cannot write %s", out);
    if (!tf) die("cannot write %s", truth);
    rng_t r;
    rng_seed(&r, seed);
    /* spam schedule */
    int64_t *spam_ts = xcalloc(accounts, sizeof *spam_ts);
    int64_t t = from + (int64_t)spam_at * 60000;
    for (uint64_t k = 0; k < accounts; k++) {
        if (k) t += irange(&r, (int64_t)gmin, (int64_t)gmax);
        spam_ts[k] = t;
    }
    /* chatters seen so far, for the spam's @mentions */
    enum { NRECENT = 64 };
    static char recent[NRECENT][64];
    size_t nrecent = 0;
    uint64_t next = 0, normal = 0, styles[ST__COUNT] = {0};
    char platform[64] = "twitch";
    uint64_t nusers_cap = 1 << 16, nusers = 0;
    char **users = xcalloc(nusers_cap, sizeof *users); /* distinct normal chatters (linear set) */
    char text[2048], tsbuf[40], cbuf[40];
    for (;;) {
        len = getline(&line, &lcap, in);
        int64_t ms = INT64_MAX;
        bool mine = false;
        if (len > 0) {
            size_t n;
            const char *tv = json_field(line, "\"ts\":\"", &n);
            if (!tv || (ms = parse_time(tv, n)) < 0) continue;
            if (ms >= to) ms = INT64_MAX, len = 0;
            mine = ms >= from && strstr(line, key) && strstr(line, "\"type\":\"message\"");
        }
        while (next < accounts && spam_ts[next] <= ms) {
            const char *mention = nrecent && pct(&r, 20)
                                      ? recent[below(&r, nrecent < NRECENT ? nrecent : NRECENT)]
                                      : NULL;
            int style;
            make_spam(&r, mention, text, sizeof text, &style);
            styles[style]++;
            fmt_time(tsbuf, spam_ts[next], true);
            fmt_time(cbuf, spam_ts[next] - irange(&r, 600, 36 * 3600) * 1000, false);
            const char *thing = THINGS[below(&r, NELEM(THINGS))];
            unsigned long long tag = (unsigned long long)irange(&r, 100, 9999);
            fprintf(f,
                    "{\"id\":\"spam-%llu\",\"type\":\"message\",\"platform\":\"%s\","
                    "\"channel\":\"%s\",\"user\":{\"id\":\"spam%llu\",\"name\":\"promo_%s%llu\","
                    "\"roles\":[],\"created_at\":\"%s\",\"first_message\":true},\"text\":",
                    (unsigned long long)next + 1, platform, channel, (unsigned long long)next + 1,
                    thing, tag, cbuf);
            json_str(f, text);
            fprintf(f, ",\"ts\":\"%s\"}\n", tsbuf);
            fprintf(tf, "spam-%llu\t%llu\tspam%llu\t%s\t%s\n", (unsigned long long)next + 1,
                    (unsigned long long)next + 1, (unsigned long long)next + 1, STYLE_NAMES[style],
                    text);
            next++;
        }
        if (len <= 0) break;
        if (!mine) continue;
        size_t n;
        const char *pv = json_field(line, "\"platform\":\"", &n);
        if (pv && n < sizeof platform) memcpy(platform, pv, n), platform[n] = 0;
        const char *uv = json_field(line, "\"user\":{\"id\":\"", &n);
        if (uv && n < 64) {
            memcpy(recent[nrecent % NRECENT], uv, n);
            recent[nrecent % NRECENT][n] = 0;
            nrecent++;
            bool found = false; /* distinct chatters: a small open-addressing set */
            uint64_t h = 1469598103934665603ULL;
            for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char)uv[i]) * 1099511628211ULL;
            for (uint64_t i = h & (nusers_cap - 1); users[i]; i = (i + 1) & (nusers_cap - 1))
                if (strlen(users[i]) == n && !memcmp(users[i], uv, n)) {
                    found = true;
                    break;
                }
            if (!found && nusers * 2 < nusers_cap) {
                uint64_t i = h & (nusers_cap - 1);
                while (users[i])
                    i = (i + 1) & (nusers_cap - 1);
                users[i] = xcalloc(n + 1, 1);
                memcpy(users[i], uv, n);
                nusers++;
            }
        }
        fputs(line, f);
        if (line[len - 1] != '\n') fputc('\n', f);
        normal++;
    }
    fclose(in);
    free(line);
    if (fclose(f)) die("cannot write %s", out);
    if (fclose(tf)) die("cannot write %s", truth);
    fprintf(stderr,
            "{\"channel\":\"%s\",\"platform\":\"%s\",\"normal\":%llu,\"normal_users\":%llu,"
            "\"minutes\":%llu,\"spam\":%llu,\"spam_seconds\":%.1f,\"styles\":{",
            channel, platform, (unsigned long long)normal, (unsigned long long)nusers,
            (unsigned long long)minutes, (unsigned long long)next,
            (double)(spam_ts[accounts - 1] - spam_ts[0]) / 1000.0);
    for (int s = 0; s < ST__COUNT; s++)
        fprintf(stderr, "%s\"%s\":%llu", s ? "," : "", STYLE_NAMES[s],
                (unsigned long long)styles[s]);
    fputs("}}\n", stderr);
    for (uint64_t i = 0; i < nusers_cap; i++)
        free(users[i]);
    free(users);
    for (size_t k = 0; k < nch; k++)
        free(cname[k]);
    free(spam_ts);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "users")) return cmd_users(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "wave")) return cmd_wave(argc, argv);
    fputs("usage: genbehav users --seed N --users N --channels N --out FILE\n"
          "                      [--second-pct 50] [--other-channel-pct 10] [--gap-ms 2]\n"
          "       genbehav wave --seed N --chat EVENTS.ndjson --out FILE --out-truth FILE\n"
          "                     [--channel NAME] [--skip-min 5] [--minutes 10] [--accounts 50]\n"
          "                     [--spam-at-min 5] [--gap-ms-min 500] [--gap-ms-max 3000]\n",
          stderr);
    return 2;
}
