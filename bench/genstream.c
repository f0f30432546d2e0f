/* genstream.c - reproducible synthetic chat stream + ruleset for the whiply benchmark.
 *
 *   genstream --seed N --events N --out-events FILE --out-rules FILE --out-list FILE
 *             --words WORDLIST.json [WORDLIST.json ...]
 *             [--max-terms N] [--min-rating N] [--stats-prefix N] [--out-stats FILE]
 *
 * Standalone C11, libc only (no libm: every random draw is integer arithmetic, so the
 * same seed gives the same bytes on every platform). PRNG: xoshiro256** seeded through
 * splitmix64.
 *
 * Word lists (--words): a JSON array of strings (npm naughty-words `en.json`), a JSON
 * object mapping term -> rating (npm cuss, exported to JSON; only terms with
 * rating >= --min-rating, default 1), or a plain text file (one term a line). Terms are
 * lowercased, trimmed, deduplicated; arrays and text files count as rating 2. The
 * --max-terms (default 1000) highest-rated terms are kept (ties: the order given) and
 * written sorted to --out-list.
 *
 * Output: --out-events (whiply event NDJSON), --out-rules (whiply rules YAML v1, see
 * docs/rules.md), --out-list (the word list .txt). A JSON line of distribution
 * statistics goes to stderr (and to --out-stats when given).
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_common.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_CPS 300
#define MIN_CPS 5

/* ---------------------------------------- PRNG (the generator itself: gen_common.h) */

static int irange(rng_t *r, int lo, int hi) /* inclusive */
{
    return lo + (int)below(r, (uint64_t)(hi - lo + 1));
}

/* true with probability ppm / 1,000,000 */
static bool chance(rng_t *r, uint32_t ppm)
{
    return below(r, 1000000) < ppm;
}

#define PICK(r, arr) ((arr)[below((r), NELEM(arr))])

/* cumulative integer weights, sampled by binary search */
typedef struct {
    uint64_t *cum;
    size_t n;
} wtable_t;

static size_t wt_sample(const wtable_t *w, rng_t *r)
{
    uint64_t x = below(r, w->cum[w->n - 1]);
    size_t lo = 0, hi = w->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ------------------------------------------------------------------ small utils */

static _Noreturn void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "genstream: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("%s", "out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

static size_t utf8_cps(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}
static int upper(int c)
{
    return (c >= 'a' && c <= 'z') ? c - 32 : c;
}

/* ------------------------------------------------------------------ string set */

typedef struct {
    char **slot;
    size_t cap, n;
} strset_t;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void set_init(strset_t *s, size_t cap)
{
    s->cap = cap;
    s->n = 0;
    s->slot = calloc(cap, sizeof(char *));
    if (!s->slot) die("%s", "out of memory");
}

static bool set_has_n(const strset_t *s, const char *k, size_t n)
{
    size_t i = fnv1a(k, n) & (s->cap - 1);
    while (s->slot[i]) {
        if (strlen(s->slot[i]) == n && memcmp(s->slot[i], k, n) == 0) return true;
        i = (i + 1) & (s->cap - 1);
    }
    return false;
}

static bool set_add(strset_t *s, const char *k) /* true when newly added */
{
    size_t n = strlen(k);
    if (s->n * 2 >= s->cap) die("%s", "string set full");
    size_t i = fnv1a(k, n) & (s->cap - 1);
    while (s->slot[i]) {
        if (strcmp(s->slot[i], k) == 0) return false;
        i = (i + 1) & (s->cap - 1);
    }
    s->slot[i] = xstrdup(k);
    s->n++;
    return true;
}

/* ------------------------------------------------------------------ word lists */

typedef struct {
    char *term;
    int rating;
    size_t order;
} cand_t;

static cand_t *g_cands;
static size_t g_ncands, g_capcands;

static void add_candidate(const char *raw, size_t n, int rating)
{
    char buf[256];
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = o > 0;
            continue;
        }
        if (c < 0x20) return; /* control chars: not a term */
        if (space) {
            if (o + 1 >= sizeof buf) return;
            buf[o++] = ' ';
            space = false;
        }
        if (o + 1 >= sizeof buf) return;
        buf[o++] = (char)lower(c);
    }
    buf[o] = 0;
    if (o == 0 || o > 64 || buf[0] == '#' || buf[0] == '@' || strchr(buf, '*')) return;
    if (g_ncands == g_capcands) {
        g_capcands = g_capcands ? g_capcands * 2 : 1024;
        g_cands = realloc(g_cands, g_capcands * sizeof *g_cands);
        if (!g_cands) die("%s", "out of memory");
    }
    g_cands[g_ncands].term = xstrdup(buf);
    g_cands[g_ncands].rating = rating;
    g_cands[g_ncands].order = g_ncands;
    g_ncands++;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    char *b = xmalloc(cap + 1);
    size_t k;
    while ((k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
            if (!b) die("%s", "out of memory");
        }
    }
    fclose(f);
    b[n] = 0;
    *len = n;
    return b;
}

/* minimal JSON reader: enough for arrays of strings and objects of string -> number */
typedef struct {
    const char *p, *end, *path;
} jr_t;

static void jr_ws(jr_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static unsigned jr_hex4(jr_t *j)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (j->p >= j->end) die("bad \\u escape in %s", j->path);
        char c = *j->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            die("bad \\u escape in %s", j->path);
    }
    return v;
}

/* parses a string at j->p (which is '"') into out (cap bytes); returns length */
static size_t jr_string(jr_t *j, char *out, size_t cap)
{
    size_t o = 0;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        char tmp[4];
        int tn;
        if (*j->p == '\\') {
            j->p++;
            if (j->p >= j->end) break;
            char e = *j->p++;
            switch (e) {
            case 'n':
                tmp[0] = '\n';
                tn = 1;
                break;
            case 't':
                tmp[0] = '\t';
                tn = 1;
                break;
            case 'r':
                tmp[0] = '\r';
                tn = 1;
                break;
            case 'b':
                tmp[0] = '\b';
                tn = 1;
                break;
            case 'f':
                tmp[0] = '\f';
                tn = 1;
                break;
            case 'u': {
                uint32_t cp = jr_hex4(j);
                if (cp >= 0xD800 && cp < 0xDC00 && j->p + 6 <= j->end && j->p[0] == '\\' &&
                    j->p[1] == 'u') {
                    j->p += 2;
                    uint32_t lo = jr_hex4(j);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                tn = put_utf8(tmp, cp);
                break;
            }
            default:
                tmp[0] = e;
                tn = 1;
                break;
            }
        } else {
            tmp[0] = *j->p++;
            tn = 1;
        }
        for (int i = 0; i < tn; i++)
            if (o + 1 < cap) out[o++] = tmp[i];
    }
    if (j->p >= j->end) die("unterminated string in %s", j->path);
    j->p++;
    out[o] = 0;
    return o;
}

static double jr_number(jr_t *j)
{
    char tmp[64];
    size_t n = 0;
    while (j->p < j->end && n + 1 < sizeof tmp && strchr("+-0123456789.eE", *j->p))
        tmp[n++] = *j->p++;
    tmp[n] = 0;
    return strtod(tmp, NULL);
}

static void jr_skip_value(jr_t *j)
{
    jr_ws(j);
    if (j->p >= j->end) return;
    char c = *j->p;
    char tmp[512];
    if (c == '"') {
        jr_string(j, tmp, sizeof tmp);
        return;
    }
    if (c == '[' || c == '{') {
        int depth = 0;
        while (j->p < j->end) {
            c = *j->p;
            if (c == '"') {
                jr_string(j, tmp, sizeof tmp);
                continue;
            }
            if (c == '[' || c == '{') depth++;
            if (c == ']' || c == '}') depth--;
            j->p++;
            if (depth == 0) return;
        }
        return;
    }
    while (j->p < j->end && !strchr(",]} \t\r\n", *j->p))
        j->p++;
}

static void load_wordlist(const char *path, int min_rating)
{
    size_t len;
    char *data = read_file(path, &len);
    jr_t j = {data, data + len, path};
    char term[512];
    jr_ws(&j);
    if (j.p < j.end && *j.p == '[') {
        j.p++;
        for (;;) {
            jr_ws(&j);
            if (j.p >= j.end) die("unterminated array in %s", path);
            if (*j.p == ']') break;
            if (*j.p == ',') {
                j.p++;
                continue;
            }
            if (*j.p == '"') {
                size_t n = jr_string(&j, term, sizeof term);
                add_candidate(term, n, 2);
            } else
                jr_skip_value(&j);
        }
    } else if (j.p < j.end && *j.p == '{') {
        j.p++;
        for (;;) {
            jr_ws(&j);
            if (j.p >= j.end) die("unterminated object in %s", path);
            if (*j.p == '}') break;
            if (*j.p == ',') {
                j.p++;
                continue;
            }
            if (*j.p != '"') die("expected a key in %s", path);
            size_t n = jr_string(&j, term, sizeof term);
            jr_ws(&j);
            if (j.p < j.end && *j.p == ':') j.p++;
            jr_ws(&j);
            int rating = 2;
            if (j.p < j.end && (*j.p == '-' || (*j.p >= '0' && *j.p <= '9'))) {
                double v = jr_number(&j);
                rating = (int)v;
            } else
                jr_skip_value(&j);
            if (rating >= min_rating) add_candidate(term, n, rating);
        }
    } else { /* text: one term a line */
        char *line = data;
        while (line < data + len) {
            char *nl = memchr(line, '\n', (size_t)(data + len - line));
            size_t n = nl ? (size_t)(nl - line) : (size_t)(data + len - line);
            add_candidate(line, n, 2);
            line += n + 1;
        }
    }
    free(data);
}

static int cmp_cand(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->rating != y->rating) return y->rating - x->rating;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the selected terms */
static char **g_terms;
static size_t g_nterms;
static strset_t g_termset;
/* single-word ASCII-letter terms of 3..12 letters: the ones evasions are built from */
static const char **g_evadable;
static size_t g_nevadable;
static const char **g_popular_present;
static size_t g_npopular_present;

/* ------------------------------------------------------------------ embedded vocabulary */

// clang-format off
static const char *const FRAGMENTS[] = {
    "no way", "that was insane", "lets go", "LETS GOOO", "what a play", "chat is this real",
    "first time here", "hello chat", "hi everyone", "good morning chat", "good night everyone",
    "this is so good", "i can't believe it", "he actually did it", "how is that possible", "clip that",
    "someone clip it", "what just happened", "that's crazy", "im dying", "i love this stream",
    "best streamer ever", "this game looks fun", "what game is this", "when is the next stream",
    "how long have you been live", "can you play with viewers", "what's your rank", "nice shot", "unlucky",
    "so close", "next time for sure", "he's cooking", "let him cook", "this is peak", "we are so back",
    "it's over", "that boss is impossible", "use the shield", "go left", "behind you", "check the map",
    "you missed the chest", "what's the song name", "music is fire", "turn up the volume", "can't hear you",
    "mic is muted", "audio is out of sync", "stream is lagging", "buffering for me", "works fine for me",
    "refresh the page", "just got here what did i miss", "did he win", "gg everyone", "well played",
    "that was close", "not even close", "skill issue", "touch grass", "it's a feature not a bug",
    "ok that was funny", "i'm crying", "actual genius", "big brain move", "the timing on that",
    "perfect timing", "bro thinks he's him", "he is him", "main character energy", "this chat is wild",
    "mods are asleep", "hi mods", "thanks for the raid", "raid hype", "welcome raiders", "thanks for the sub",
    "happy birthday", "drink water", "posture check", "take a break", "what time is it there",
    "greetings from germany", "watching from work", "watching from school", "lunch break stream",
    "love from brazil", "where are you from", "how old is the dog", "show the cat", "cat cam when",
    "the cat is back", "pet the dog", "what are you eating", "that pizza looks good", "i'm hungry now",
    "speedrun strats", "any% no glitches", "world record pace", "personal best incoming", "don't reset",
    "one more game", "just one more", "last game for real", "it's 3am", "i have work tomorrow", "can't sleep",
    "who else is here", "anyone else", "fr fr", "no cap", "to be fair", "i think so", "i don't think so",
    "absolutely not", "what do you think", "ask chat", "chat decide", "team blue", "team red",
    "predictions are open", "i bet all my points", "lost all my points", "i believed", "called it",
    "i knew it", "told you", "trust the process", "new update is out", "read the patch notes", "nerf this",
    "broken character", "tier list when", "rate my setup", "what keyboard is that", "what headset do you use",
    "the lighting looks great", "camera looks clean", "new overlay looks nice", "love the new emotes",
    "can we get an emote for that", "subathon when", "thanks for streaming", "see you tomorrow", "bye chat",
    "how do you do that", "teach me", "tutorial when", "he saw it coming", "that's my streamer",
    "chat behave", "the mods are fast today", "what did he say", "i missed it what happened", "replay it",
    "do it again", "one more time", "that's illegal", "he's so back", "cooked", "we're cooked",
    "never doubted", "i was here", "history in the making", "that was clean", "so smooth", "the aim is crazy",
    "how many hours today", "is this a new game", "did you beat it yet", "don't go in there", "it's a trap",
    "open the door", "save first", "you forgot to save", "why did you sell it", "keep the sword",
    "equip the armor", "check settings", "lower the sensitivity", "your crosshair is huge",
    "turn on subtitles", "bring back the old map", "love this song", "add it to the playlist",
    "what's the bpm", "this beat goes hard",
};
// clang-format on

/* ordinary chat vocabulary, by part of speech, for the sentence templates below */
static const char *const NOUNS[] = {
    "game",     "stream",       "boss",       "map",        "chest",      "sword",
    "gun",      "shot",         "build",      "base",       "run",        "record",
    "clip",     "vod",          "song",       "music",      "mic",        "camera",
    "cat",      "dog",          "pizza",      "coffee",     "team",       "round",
    "match",    "level",        "item",       "loot",       "skin",       "emote",
    "overlay",  "setup",        "keyboard",   "mouse",      "headset",    "chair",
    "server",   "update",       "patch",      "bug",        "glitch",     "combo",
    "strat",    "chat",         "streamer",   "raid",       "prediction", "character",
    "weapon",   "armor",        "quest",      "puzzle",     "ending",     "dungeon",
    "lobby",    "queue",        "tournament", "controller", "monitor",    "desk",
    "console",  "car",          "train",      "plane",      "hotel",      "weather",
    "rain",     "snow",         "city",       "party",      "birthday",   "friend",
    "brother",  "sister",       "mom",        "dad",        "kid",        "money",
    "price",    "store",        "gift",       "box",        "door",       "bridge",
    "tower",    "castle",       "island",     "forest",     "cave",       "river",
    "boat",     "horse",        "dragon",     "zombie",     "shield",     "bow",
    "arrow",    "potion",       "spell",      "ult",        "jungle",     "lane",
    "mid lane", "support",      "tank",       "healer",     "sniper",     "shotgun",
    "pistol",   "grenade",      "vehicle",    "checkpoint", "save file",  "menu",
    "settings", "sensitivity",  "crosshair",  "fps",        "ping",       "internet",
    "wifi",     "router",       "phone",      "laptop",     "pc",         "gpu",
    "cpu",      "ram",          "background", "lighting",   "hair",       "hoodie",
    "shirt",    "hat",          "glasses",    "breakfast",  "lunch",      "dinner",
    "snack",    "burger",       "sushi",      "tacos",      "soup",       "tea",
    "water",    "energy drink", "weekend",    "monday",     "friday",     "morning",
    "night",    "week",         "year",       "day",        "hour",       "minute",
    "vibe",     "plan",
};
static const char *const ADJS[] = {
    "good",      "bad",       "great",      "nice",        "cool",       "fun",       "funny",
    "crazy",     "insane",    "wild",       "weird",       "easy",       "hard",      "fast",
    "slow",      "big",       "small",      "huge",        "tiny",       "broken",    "clean",
    "smooth",    "cursed",    "scuffed",    "goated",      "mid",        "based",     "cringe",
    "sus",       "lucky",     "unlucky",    "new",         "old",        "cozy",      "loud",
    "quiet",     "laggy",     "fire",       "overpowered", "underrated", "overrated", "spicy",
    "beautiful", "cute",      "chill",      "sweaty",      "toxic",      "wholesome", "legendary",
    "rare",      "expensive", "cheap",      "free",        "perfect",    "random",    "real",
    "fake",      "late",      "early",      "tired",       "hungry",     "ready",     "confused",
    "hyped",     "nervous",   "impossible", "dark",        "bright",
};
static const char *const VERBS[] = {
    "play",  "watch",    "use",    "build",   "grind",   "farm",   "skip", "buy",   "sell",
    "try",   "fix",      "check",  "open",    "save",    "loot",   "heal", "carry", "dodge",
    "parry", "nerf",     "buff",   "clip",    "mute",    "stream", "beat", "win",   "lose",
    "throw", "pick",     "craft",  "upgrade", "reset",   "pause",  "read", "climb", "jump",
    "miss",  "hit",      "finish", "explore", "restart", "change", "love", "like",  "need",
    "want",  "remember", "forget", "see",     "hear",    "find",   "keep", "leave", "take",
    "drop",  "equip",    "sell",   "trade",
};
/* small words that end or pad a message */
// clang-format off
static const char *const TAILS[] = {
    "lol", "lmao", "haha", "fr", "tbh", "ngl", "bro", "chat", "honestly", "xd", "imo", "omg", "man", "dude",
    "guys", "ikr", "smh", "frfr", "literally", "actually", "again", "already", "today", "tonight", "too",
    "for real", "no cap", "i guess", "probably", "maybe", "tho", "btw", "rn", "icl", "lowkey", "highkey",
    "2024", "100%", "$5", "3am", "caf\xC3\xA9", "na\xC3\xAFve", "jalape\xC3\xB1o",
};
// clang-format on
/* {n} noun, {p} plural noun, {a} adjective, {v} verb, {t} tail, {N} number */
// clang-format off
static const char *const TEMPLATES[] = {
    "this {n} is so {a}", "that {n} was {a}", "the {n} looks {a}", "why is the {n} so {a}", "i {v} this {n}",
    "can you {v} the {n}", "he needs to {v} the {n}", "{a} {n}", "{n} is {a} {t}", "what {n} is that",
    "just {v} it", "don't {v} the {n}", "{a} {n} {t}", "we need a {a} {n}", "imagine not having a {a} {n}",
    "my {n} is {a} today", "how do you {v} that {n}", "{t} {a}", "is the {n} {a}", "the {n} is {a} {t}",
    "{v} the {n} first", "you have to {v} the {n}", "did he {v} the {n}", "i would {v} the {n}",
    "{a} {n} honestly", "that's a {a} {n}", "new {n} is {a}", "old {n} was better", "{n} diff",
    "{N} {p} in a row", "{N} hours of {n}", "{v} it {t}", "please {v} the {n}", "never {v} the {n}",
    "can we {v} the {n} again", "the {n} and the {n}", "wait is that a {a} {n}", "bro really {v} the {n}",
    "{a} {t}", "so {a}", "very {a} {n}", "{n} when", "{n} {t}", "i {v} {a} {p}",
};
// clang-format on

static const char *const REACTIONS[] = {
    "lol",   "lmao",    "LMAO",   "gg",   "ggs",  "W",         "L",          "pog",
    "POG",   "xd",      "XD",     "omg",  "OMG",  "ez",        "no way",     "true",
    "real",  "REAL",    "based",  "bruh", "BRUH", "wait what", "huh",        "HUH",
    "what",  "yes",     "YES",    "no",   "NO",   "same",      "facts",      "fr",
    "ratio", "lets go", "hahaha", "LOL",  "ok",   "wow",       "WOW",        "nice",
    "NICE",  "oof",     "rip",    "F",    "o7",   "W stream",  "W streamer", "L take",
    "+1",    "1",       "2",      "?",    "??",   "...",       "KEKW",
};

static const char *const EMOTICONS[] = {
    ":)", ":D",  "<3", "xD", ":(",    "D:", "\xC2\xAF\\_(\xE3\x83\x84)_/\xC2\xAF", "^^", ":P", "o7",
    ";)", ">:(", ":O", "XD", "<3 <3", ":3",
};

typedef struct {
    const char *name;
    const char *id;
} emote_t;

/* native Twitch emotes (these go into meta.emotes) */
static const emote_t TWITCH_EMOTES[] = {
    {"Kappa", "25"},
    {"Keepo", "1902"},
    {"BibleThump", "86"},
    {"Kreygasm", "41"},
    {"DansGame", "33"},
    {"SwiftRage", "34"},
    {"PJSalt", "36"},
    {"MrDestructoid", "28"},
    {"ResidentSleeper", "245"},
    {"4Head", "354"},
    {"FailFish", "360"},
    {"SMOrc", "52"},
    {"LUL", "425618"},
    {"NotLikeThis", "58765"},
    {"SeemsGood", "64138"},
    {"WutFace", "28087"},
    {"HeyGuys", "30259"},
    {"BabyRage", "22639"},
    {"VoHiYo", "81274"},
    {"cmonBruh", "84608"},
    {"CoolStoryBob", "123171"},
    {"Jebaited", "114836"},
    {"PogChamp", "305954156"},
    {"BloodTrail", "69"},
    {"KappaPride", "55338"},
    {"TwitchUnity", "196892"},
    {"GivePLZ", "112291"},
    {"TakeNRG", "112292"},
    {"PopCorn", "724216"},
    {"HotPokket", "357"},
    {"OhMyDog", "81103"},
    {"CoolCat", "58127"},
    {"TheIlluminati", "145315"},
    {"StinkyCheese", "304486301"},
    {"GlitchCat", "304486302"},
    {"PogBones", "301425"},
    {"SingsNote", "300116350"},
    {"LuvHearts", "30525"},
};

/* third-party (BTTV/7TV/FFZ) emotes: plain text, not in meta.emotes */
static const char *const TEXT_EMOTES[] = {
    "KEKW",       "OMEGALUL", "monkaS",     "Pog",      "PepeHands", "Sadge",          "catJAM",
    "EZ",         "Clap",     "peepoHappy", "Aware",    "Copium",    "ICANT",          "xdd",
    "PepeLaugh",  "monkaW",   "pepeD",      "COPIUM",   "Pepega",    "widepeepoHappy", "Stare",
    "Deadge",     "Okayge",   "Classic",    "forsenCD", "LULW",      "5Head",          "HYPERS",
    "PauseChamp", "BatChest",
};

static const char *const DISCORD_EMOJI_NAMES[] = {
    "pepe_laugh", "kekw",  "catjam",      "blobwave", "pogcat",
    "sadcat",     "thonk", "partyparrot", "wave",     "salute",
};

static const char *const EMOJI[] = {
    "\xF0\x9F\x98\x82", "\xF0\x9F\xA4\xA3",
    "\xF0\x9F\x94\xA5", "\xE2\x9D\xA4\xEF\xB8\x8F",
    "\xF0\x9F\x91\x80", "\xF0\x9F\x98\xAD",
    "\xF0\x9F\x92\x80", "\xF0\x9F\x99\x8F",
    "\xF0\x9F\x91\x8D", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "\xF0\x9F\xA5\xB2", "\xF0\x9F\x98\xB3",
    "\xF0\x9F\xA4\x94", "\xF0\x9F\x8E\x89",
    "\xF0\x9F\x92\xAF", "\xF0\x9F\x98\x8E",
    "\xF0\x9F\xA5\xB6", "\xF0\x9F\xA4\xA1",
    "\xF0\x9F\xAB\xA1", "\xE2\x9C\xA8",
    "\xF0\x9F\x99\x8C", "\xF0\x9F\x98\xA4",
    "\xF0\x9F\x90\x90", "\xF0\x9F\x8D\x95",
    "\xE2\x98\x95",     "\xF0\x9F\x8E\xAE",
    "\xF0\x9F\x8F\x86", "\xF0\x9F\xA7\x91\xE2\x80\x8D\xF0\x9F\x92\xBB",
    "\xF0\x9F\xAB\xA0", "\xF0\x9F\x91\x8B",
};

/* non-English chat: accented Latin, Cyrillic, CJK, Hangul, Arabic */
// clang-format off
static const char *const FOREIGN_ES[] = {
    "\xC2\xBFqu\xC3\xA9 pas\xC3\xB3?", "qu\xC3\xA9 bueno", "est\xC3\xA1 incre\xC3\255ble", "jajaja",
    "saludos desde M\xC3\xA9xico", "buen\xC3\xADsimo", "\xC2\xA1vamos!", "qu\xC3\xA9 risa",
    "ma\xC3\261ana otra vez", "el mejor streamer", "qu\xC3\xA9 jugada", "no manches",
};
// clang-format on
// clang-format off
static const char *const FOREIGN_PT[] = {
    "n\xC3\xA3o acredito", "que jogada", "kkkkkk", "bom dia", "sauda\xC3\xA7\xC3\265es do Brasil",
    "muito bom", "voc\xC3\xAA \xC3\xA9 o melhor", "at\xC3\xA9 amanh\xC3\xA3",
};
// clang-format on
static const char *const FOREIGN_FR[] = {
    "tr\xC3\xA8s bien", "c'est incroyable", "mdr",           "bonne soir\xC3\251e",
    "\xC3\247a marche", "allez allez",      "quelle partie", "\xC3\xA0 demain",
};
static const char *const FOREIGN_DE[] = {
    "sch\xC3\xB6n",         "Gr\xC3\xBC\xC3\237e aus \xC3\x96sterreich",
    "das war knapp",        "\xC3\274bertrieben gut",
    "tsch\xC3\xBC\xC3\x9F", "gute Nacht",
};
static const char *const FOREIGN_MISC[] = {
    "dzie\xC5\x84 dobry",      "cze\xC5\x9B\xC4\x87 wszystkim",
    "\xC3\xA7ok g\xC3\xBCzel", "g\xC3\xBCnayd\xC4\xB1n",
    "j\xC3\xB3 reggelt",
};
static const char *const FOREIGN_RU[] = {
    "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xB2\xD1\x81\xD0\xB5\xD0\xBC",
    "\xD0\xBA\xD1\x80\xD1\x83\xD1\x82\xD0\xBE",
    "\xD0\xB0\xD1\x85\xD0\xB0\xD1\x85\xD0\xB0",
    "\xD1\x87\xD1\x82\xD0\xBE "
    "\xD0\xBF\xD1\x80\xD0\xBE\xD0\xB8\xD1\x81\xD1\x85\xD0\xBE\xD0\xB4\xD0\xB8\xD1\x82",
    "\xD0\xB4\xD0\xB0\xD0\xB2\xD0\xB0\xD0\xB9",
    "\xD1\x85\xD0\xBE\xD1\x80\xD0\xBE\xD1\x88\xD0\xB0\xD1\x8F \xD0\xB8\xD0\xB3\xD1\x80\xD0\xB0",
    "\xD1\x81\xD0\xBF\xD0\xB0\xD1\x81\xD0\xB8\xD0\xB1\xD0\xBE \xD0\xB7\xD0\xB0 "
    "\xD1\x81\xD1\x82\xD1\x80\xD0\xB8\xD0\xBC",
    "\xD1\x8D\xD1\x82\xD0\xBE \xD0\xB1\xD1\x8B\xD0\xBB\xD0\xBE "
    "\xD1\x81\xD0\xB8\xD0\xBB\xD1\x8C\xD0\xBD\xD0\xBE",
    "\xD0\xB2\xD1\x81\xD0\xB5\xD0\xBC \xD0\xBF\xD0\xBE\xD0\xBA\xD0\xB0",
    "\xD0\xB4\xD1\x8F\xD0\xBA\xD1\x83\xD1\x8E",
};
// clang-format off
static const char *const FOREIGN_JA[] = {
    "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF", "\xE8\x8D\x89",
    "\xE3\x81\x99\xE3\x81\x94\xE3\x81\x84", "\xE3\x83\x8A\xE3\x82\xA4\xE3\x82\xB9",
    "\xE3\x81\x8A\xE3\x81\xA4\xE3\x81\x8B\xE3\x82\x8C", "\xE3\x81\x8B\xE3\x82\x8F\xE3\x81\x84\xE3\x81\x84",
    "\xE3\x82\x84\xE3\x81\xB0\xE3\x81\x84", "\xE3\x81\x82\xE3\x82\x8A\xE3\x81\x8C\xE3\x81\xA8\xE3\x81\x86",
};
// clang-format on
// clang-format off
static const char *const FOREIGN_ZH[] = {
    "\xE5\x8A\xA0\xE6\xB2\xB9", "\xE5\x93\x88\xE5\x93\x88\xE5\x93\x88",
    "\xE5\xA4\xAA\xE5\xBC\xBA\xE4\xBA\x86", "666", "\xE5\xA5\xBD\xE5\x8E\x89\xE5\xAE\xB3",
    "\xE6\x99\x9A\xE4\xB8\x8A\xE5\xA5\xBD",
    "\xE8\xBF\x99\xE6\x98\xAF\xE4\xBB\x80\xE4\xB9\x88\xE6\xB8\xB8\xE6\x88\x8F",
};
// clang-format on
// clang-format off
static const char *const FOREIGN_KO[] = {
    "\xE3\x85\x8B\xE3\x85\x8B\xE3\x85\x8B\xE3\x85\x8B",
    "\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94", "\xEB\x8C\x80\xEB\xB0\x95",
    "\xEA\xB0\x90\xEC\x82\xAC\xED\x95\xA9\xEB\x8B\x88\xEB\x8B\xA4", "\xED\x99\x94\xEC\x9D\xB4\xED\x8C\x85",
};
// clang-format on
static const char *const FOREIGN_AR[] = {
    "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7",
    "\xD9\x87\xD9\x87\xD9\x87\xD9\x87\xD9\x87",
};

static const char *const COMMANDS[] = {
    "!uptime",  "!discord", "!followage", "!song", "!points",
    "!socials", "!specs",   "!rank",      "!lurk", "!prime",
};

/* words the generator injects as plain profanity / evasions, when present in the list */
static const char *const POPULAR_PROFANITY[] = {
    "fuck",  "shit",  "bitch",   "asshole",  "dick",         "cunt",      "bastard",
    "pussy", "cock",  "slut",    "whore",    "motherfucker", "bullshit",  "wanker",
    "twat",  "prick", "fucking", "dickhead", "jackass",      "douchebag",
};

static const char *const NAME_A[] = {
    "dark",  "shadow", "lil",    "big",   "the",    "mr",      "its",    "not",
    "real",  "pro",    "just",   "sir",   "lady",   "captain", "sleepy", "happy",
    "angry", "silent", "cosmic", "pixel", "neon",   "frozen",  "crispy", "salty",
    "spicy", "lazy",   "tiny",   "mega",  "ultra",  "hyper",   "retro",  "lucky",
    "wild",  "chill",  "cozy",   "toxic", "clutch",
};
static const char *const NAME_B[] = {
    "wolf",   "gamer", "ninja",  "cat",    "dragon", "fox",    "panda",  "potato",
    "noodle", "toast", "pickle", "ghost",  "knight", "wizard", "pirate", "viking",
    "sniper", "tiger", "falcon", "raven",  "bear",   "otter",  "frog",   "duck",
    "bean",   "taco",  "waffle", "cookie", "mango",  "lemon",  "storm",  "blaze",
    "frost",  "echo",  "nova",   "pixel",  "byte",   "glitch", "spark",  "comet",
};
static const char *const CHAN_A[] = {
    "xq",     "shroud", "poki",  "tim",  "summit", "sodapop", "lirik", "sykk",  "nmp",  "esl",
    "riot",   "ludw",   "hasan", "myth", "dr",     "moist",   "ninja", "tfue",  "cohh", "sacri",
    "zack",   "mizk",   "kai",   "jynx", "quin",   "papa",    "cdew",  "asmon", "ibai", "auron",
    "gaules", "rubius", "tarik", "stew", "emiru",  "fuslie",  "valk",  "nick",
};
static const char *const CHAN_B[] = {
    "tv",       "gaming", "plays", "live",  "irl",   "hd",     "stream", "gg",   "ttv",
    "official", "bear",   "zilla", "man",   "ster",  "ify",    "ow",     "ey",   "o",
    "s",        "x",      "cast",  "games", "arena", "lounge", "den",    "zone",
};

static const char *const SCAM_HOSTS[] = {
    "free-nitro.gift",  "discord-gift.ru", "steamcommunlty.com", "dlscord-nitro.com",
    "twitch-drops.xyz", "grabify.link",    "stake-bonus.click",  "iplogger.org",
    "nitro-claim.shop", "viewerboost.top",
};
static const char *const ALLOWED_HOSTS[] = {
    "twitch.tv",  "youtube.com", "youtu.be",      "imgur.com",   "x.com",     "twitter.com",
    "reddit.com", "github.com",  "wikipedia.org", "spotify.com", "tenor.com", "discord.gg",
};
static const char *const BENIGN_OTHER_LINKS[] = {
    "https://www.amazon.com/dp/B0",   "https://store.steampowered.com/app/",
    "https://steamcommunity.com/id/", "example.com/",
    "https://www.pcgamer.com/news/",  "https://docs.google.com/spreadsheets/d/",
    "https://pastebin.com/",          "https://www.speedrun.com/",
};

/* regex bait: placeholders {host} {code} {phone} {intl} {btc} {eth} {user} {chan} {email} {ip}
 * {num} */
static const char *const BAIT[] = {
    "FREE NITRO for 3 months \xF0\x9F\x91\x89 https://{host}/{code}",
    "fr33 nitr0 claim here {host}/gift",
    "free discord nitro, just login: https://{host}/claim",
    "Wanna become famous? Buy followers, primes and viewers on {host}",
    "cheap viewers and followers {host}",
    "call me {phone}",
    "text me at {phone} for the giveaway",
    "my number is {phone} lol",
    "whatsapp me {intl}",
    "send 0.1 btc to {btc} and get 2x back",
    "send 500 usdt to {eth} and I double it back",
    "my wallet {eth} if you want to support",
    "donate btc {btc}",
    "follow me at instagram {user}",
    "f0llow me on twitch.tv/{chan} pls",
    "follow me on tiktok @{user}",
    "check out my channel twitch.tv/{chan}",
    "check my stream, small streamer here",
    "sub4sub anyone?",
    "follow for follow",
    "email me at {email}",
    "join my server discord.gg/{code}",
    "bit.ly/{code} free skins",
    "WHAT!!!!!!!!",
    "no way?????????",
    "wait........... what",
    "verify your account at https://{host}/login",
    "twitch staff here, your account will be suspended unless you verify at {host}",
    "selling accounts cheap dm me",
    "use code {code} on stake.com for free spins",
    "giveaway winner dm me to claim your prize",
    "claim your free skins now",
    "looking for a gf",
    "his ip is {ip}",
    "he lives at {num} maple street",
    "kys",
    "just go die",
    "you are so ugly",
    "nobody asked",
    "L + ratio",
    "spoiler: he dies at the end",
    "copy and paste this if you love the streamer",
    "\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA0\xBF\xE2\xA0"
    "\xBF\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA3\xBF\xE2\xA0\x9F\xE2"
    "\xA0\x9B",
    "\xF0\x9F\x98\x82\xF0\x9F\x98\x82\xF0\x9F\x98\x82\xF0\x9F\x98\x82\xF0\x9F\x98\x82\xF0\x9F\x98"
    "\x82\xF0\x9F\x98\x82\xF0\x9F\x98\x82\xF0\x9F\x98\x82",
    "AAAAAAAAAAAAAAAAAAAA",
    "{num}{num}{num}{num}",
    "my seed phrase got leaked",
    "tell me your recovery phrase and I fix it",
    "selling cs2 cases cheap, rust gamble site {host}",
    "onlyfans link in bio",
    "t.me/{user} for the leaks",
    "h0t singles in your area {host}",
    "https://{ip}/download.exe",
    "xn--twtch-6ra.tv/login",
};

// clang-format off
static const char *const PHONE_FMT[] = {
    "(%d%d%d) %d%d%d-%d%d%d%d", "%d%d%d-%d%d%d-%d%d%d%d", "%d%d%d.%d%d%d.%d%d%d%d",
    "+1 %d%d%d %d%d%d %d%d%d%d",
};
// clang-format on

/* ------------------------------------------------------------------ pools after scrubbing */

typedef struct {
    const char **v;
    size_t n;
} pool_t;

static pool_t P_FRAG, P_NOUN, P_ADJ, P_VERB, P_TAIL, P_TMPL, P_REACT, P_NAME_A, P_NAME_B,
    P_TEXTEMOTE, P_BAIT;
static size_t g_scrubbed;
/* indexes of TWITCH_EMOTES that survived scrubbing */
static int g_twemote_ok[NELEM(TWITCH_EMOTES)];
static int g_ntwemote_ok;

/* per-language phrase pools and how often each language is picked (per mille) */
typedef struct {
    const char *const *src;
    size_t n;
    unsigned weight;
    pool_t pool;
} lang_t;
#define LANG(a, w)                                                                                 \
    {                                                                                              \
        a, NELEM(a), w,                                                                            \
        {                                                                                          \
            NULL, 0                                                                                \
        }                                                                                          \
    }
static lang_t LANGS[] = {
    LANG(FOREIGN_ES, 200),  LANG(FOREIGN_PT, 180), LANG(FOREIGN_RU, 150), LANG(FOREIGN_FR, 100),
    LANG(FOREIGN_DE, 100),  LANG(FOREIGN_JA, 80),  LANG(FOREIGN_KO, 60),  LANG(FOREIGN_ZH, 50),
    LANG(FOREIGN_MISC, 50), LANG(FOREIGN_AR, 30),
};

/* true when some token (or pair of adjacent tokens) of s is a list term */
static bool hits_list(const char *s)
{
    char tok[64][48];
    int nt = 0;
    const char *p = s;
    while (*p && nt < 64) {
        while (*p && !((unsigned char)*p >= 0x80 || is_alpha(*p) || (*p >= '0' && *p <= '9') ||
                       *p == '$' || *p == '\''))
            p++;
        if (!*p) break;
        size_t n = 0;
        while (*p && ((unsigned char)*p >= 0x80 || is_alpha(*p) || (*p >= '0' && *p <= '9') ||
                      *p == '$' || *p == '\'')) {
            if (n + 1 < sizeof tok[0]) tok[nt][n++] = (char)lower((unsigned char)*p);
            p++;
        }
        tok[nt][n] = 0;
        nt++;
    }
    for (int i = 0; i < nt; i++) {
        if (set_has_n(&g_termset, tok[i], strlen(tok[i]))) return true;
        if (i + 1 < nt) {
            char pair[100];
            snprintf(pair, sizeof pair, "%s %s", tok[i], tok[i + 1]);
            if (set_has_n(&g_termset, pair, strlen(pair))) return true;
        }
    }
    return false;
}

static void make_pool(pool_t *p, const char *const *src, size_t n)
{
    p->v = xmalloc(n * sizeof *p->v);
    p->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (hits_list(src[i])) {
            g_scrubbed++;
            continue;
        }
        p->v[p->n++] = src[i];
    }
    if (p->n == 0) { /* never empty */
        p->v[0] = "ok";
        p->n = 1;
    }
}

static const char *pool_pick(rng_t *r, const pool_t *p)
{
    return p->v[below(r, p->n)];
}

/* ------------------------------------------------------------------ world: users, channels */

enum {
    R_BROADCASTER = 1,
    R_MODERATOR = 2,
    R_VIP = 4,
    R_SUBSCRIBER = 8,
    R_FOUNDER = 16,
    R_TURBO = 32
};

typedef struct {
    char name[28];
    uint8_t roles;
    uint8_t is_new, seen;
    uint16_t home;
    int64_t created_s;
} user_t;

typedef struct {
    char name[40];
    bool discord;
    uint32_t owner;
} channel_t;

#define NUSERS 50000
#define NCHANNELS 200

static user_t *g_users;
static channel_t g_chan[NCHANNELS];
static wtable_t g_user_w, g_chan_w;

/* days since 1970-01-01 <-> civil date (H. Hinnant's algorithms) */
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

static int fmt_time_ms(char *out, int64_t ms, bool with_ms)
{
    int64_t s = ms / 1000, days = s / 86400, rem = s % 86400;
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (with_ms)
        return sprintf(out, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600),
                       (int)(rem / 60 % 60), (int)(rem % 60), (int)(ms % 1000));
    return sprintf(out, "%04d-%02u-%02uT%02d:%02d:%02dZ", y, m, d, (int)(rem / 3600),
                   (int)(rem / 60 % 60), (int)(rem % 60));
}

static void make_world(rng_t *r, int64_t start_ms)
{
    g_users = calloc(NUSERS, sizeof *g_users);
    if (!g_users) die("%s", "out of memory");

    /* channels: unique names, ~1 in 7 on discord */
    strset_t cn;
    set_init(&cn, 1024);
    for (int c = 0; c < NCHANNELS; c++) {
        char nm[40];
        do {
            int form = irange(r, 0, 3);
            const char *a = PICK(r, CHAN_A), *b = PICK(r, CHAN_B);
            if (form == 0)
                snprintf(nm, sizeof nm, "#%s%s", a, b);
            else if (form == 1)
                snprintf(nm, sizeof nm, "#%s_%s", a, b);
            else if (form == 2)
                snprintf(nm, sizeof nm, "#%s%s%d", a, b, irange(r, 1, 99));
            else
                snprintf(nm, sizeof nm, "#%s", pool_pick(r, &P_NAME_B));
        } while (!set_add(&cn, nm) || hits_list(nm + 1));
        memcpy(g_chan[c].name, nm, sizeof nm);
        g_chan[c].discord = (c % 7) == 3;
    }

    /* channel popularity: Zipf-Mandelbrot w ~ 1/(rank+2) */
    g_chan_w.n = NCHANNELS;
    g_chan_w.cum = xmalloc(NCHANNELS * sizeof(uint64_t));
    uint64_t acc = 0;
    for (int c = 0; c < NCHANNELS; c++)
        g_chan_w.cum[c] = acc += (1ULL << 40) / (uint64_t)(c + 3);

    /* users: activity w ~ 1/(rank+30) */
    g_user_w.n = NUSERS;
    g_user_w.cum = xmalloc(NUSERS * sizeof(uint64_t));
    acc = 0;
    int64_t start_s = start_ms / 1000;
    int64_t oldest = days_from_civil(2012, 1, 1) * 86400;
    int64_t newest = days_from_civil(2026, 11, 20) * 86400;
    for (int u = 0; u < NUSERS; u++) {
        user_t *us = &g_users[u];
        g_user_w.cum[u] = acc += (1ULL << 40) / (uint64_t)(u + 31);
        int form = irange(r, 0, 5);
        const char *a = pool_pick(r, &P_NAME_A), *b = pool_pick(r, &P_NAME_B);
        switch (form) {
        case 0:
            snprintf(us->name, sizeof us->name, "%s%s", a, b);
            break;
        case 1:
            snprintf(us->name, sizeof us->name, "%s%s%d", a, b, irange(r, 1, 9999));
            break;
        case 2:
            snprintf(us->name, sizeof us->name, "%s_%s", a, b);
            break;
        case 3:
            snprintf(us->name, sizeof us->name, "%s%d", b, irange(r, 1, 999));
            break;
        case 4:
            snprintf(us->name, sizeof us->name, "%c%s%c%s", upper(a[0]), a + 1, upper(b[0]), b + 1);
            break;
        default:
            snprintf(us->name, sizeof us->name, "%s%sttv", a, b);
            break;
        }
        uint8_t roles = 0;
        uint32_t x = (uint32_t)below(r, 1000);
        if (x < 8)
            roles |= R_MODERATOR;
        else if (x < 23)
            roles |= R_VIP;
        if (chance(r, 280000)) roles |= R_SUBSCRIBER;
        if ((roles & R_SUBSCRIBER) && chance(r, 40000)) roles |= R_FOUNDER;
        if (chance(r, 10000)) roles |= R_TURBO;
        us->roles = roles;
        us->home = (uint16_t)wt_sample(&g_chan_w, r);
        us->is_new = chance(r, 50000);
        us->created_s = us->is_new ? start_s - (int64_t)below(r, 4 * 86400)
                                   : oldest + (int64_t)below(r, (uint64_t)(newest - oldest));
    }
    /* channel owners: distinct users outside the most active head */
    for (int c = 0; c < NCHANNELS; c++)
        g_chan[c].owner = (uint32_t)(1000 + c * 211) % NUSERS;
}

/* ------------------------------------------------------------------ message building */

enum { SEG_WORD, SEG_PROF, SEG_EMOTE_NATIVE, SEG_EMOTE_TEXT, SEG_OTHER };

typedef struct {
    uint32_t off, len, cps;
    int32_t emote; /* index into TWITCH_EMOTES for SEG_EMOTE_NATIVE */
    uint8_t kind;
} seg_t;

#define MAXSEG 512
typedef struct {
    char arena[16384];
    uint32_t used;
    seg_t seg[MAXSEG];
    int n;
    uint32_t cps; /* sum of segment cps + separating spaces */
} msg_t;

static void msg_reset(msg_t *m)
{
    m->used = 0;
    m->n = 0;
    m->cps = 0;
}

static uint32_t msg_cps_with(const msg_t *m, uint32_t extra)
{
    return m->cps + extra + (m->n ? 1 : 0);
}

/* inserts a segment at index pos (pos == -1: append); returns false when full */
static bool msg_insert(msg_t *m, int pos, int kind, const char *s, size_t len, int emote)
{
    if (m->n >= MAXSEG || m->used + len > sizeof m->arena || len == 0) return false;
    if (pos < 0 || pos > m->n) pos = m->n;
    memmove(&m->seg[pos + 1], &m->seg[pos], (size_t)(m->n - pos) * sizeof(seg_t));
    seg_t *g = &m->seg[pos];
    g->off = m->used;
    g->len = (uint32_t)len;
    g->cps = (uint32_t)utf8_cps(s, len);
    g->emote = emote;
    g->kind = (uint8_t)kind;
    memcpy(m->arena + m->used, s, len);
    m->used += (uint32_t)len;
    m->cps += g->cps + (m->n ? 1 : 0);
    m->n++;
    return true;
}

static bool msg_add(msg_t *m, int kind, const char *s)
{
    return msg_insert(m, -1, kind, s, strlen(s), -1);
}

/* ------------------------------------------------------------------ evasions */

enum {
    EV_LEET,
    EV_HOMOGLYPH,
    EV_FULLWIDTH,
    EV_MATHBOLD,
    EV_SPACED,
    EV_DOTTED,
    EV_STRETCHED,
    EV_ZEROWIDTH,
    EV_ZALGO,
    EV__COUNT
};
static const char *const EV_NAMES[EV__COUNT] = {"leet",      "homoglyph",  "fullwidth",
                                                "math_bold", "spaced",     "dotted",
                                                "stretched", "zero_width", "zalgo"};

static uint32_t cyrillic_for(int c)
{
    switch (c) {
    case 'a':
        return 0x0430;
    case 'c':
        return 0x0441;
    case 'e':
        return 0x0435;
    case 'o':
        return 0x043E;
    case 'p':
        return 0x0440;
    case 'x':
        return 0x0445;
    case 'y':
        return 0x0443;
    case 'i':
        return 0x0456;
    case 'j':
        return 0x0458;
    case 's':
        return 0x0455;
    case 'h':
        return 0x04BB;
    case 'd':
        return 0x0501;
    default:
        return 0;
    }
}

static const char *leet_for(rng_t *r, int c)
{
    switch (c) {
    case 'a':
        return chance(r, 500000) ? "4" : "@";
    case 'e':
        return "3";
    case 'i':
        return chance(r, 500000) ? "1" : "!";
    case 'o':
        return "0";
    case 's':
        return chance(r, 500000) ? "$" : "5";
    case 't':
        return "7";
    default:
        return NULL;
    }
}

/* writes an evasion of the ASCII lowercase word w into out; returns bytes; kind may change
 * (fallback) */
static size_t make_evasion(rng_t *r, const char *w, int *kindp, char *out)
{
    size_t n = strlen(w), o = 0;
    int kind = *kindp;
    if (kind == EV_LEET || kind == EV_HOMOGLYPH) { /* needs a substitutable letter */
        bool any = false;
        for (size_t i = 0; i < n; i++)
            any |= kind == EV_LEET ? leet_for(r, w[i]) != NULL : cyrillic_for(w[i]) != 0;
        if (!any) kind = EV_SPACED;
    }
    *kindp = kind;
    bool caps = chance(r, 150000);
    switch (kind) {
    case EV_LEET: {
        size_t done = 0, last = n;
        for (size_t i = 0; i < n; i++)
            if (leet_for(r, w[i])) last = i;
        for (size_t i = 0; i < n; i++) {
            const char *l = leet_for(r, w[i]);
            if (l && (chance(r, 600000) || (done == 0 && i == last))) {
                o += (size_t)sprintf(out + o, "%s", l);
                done++;
            } else
                out[o++] = (char)(caps ? upper(w[i]) : w[i]);
        }
        break;
    }
    case EV_HOMOGLYPH: {
        size_t done = 0, last = n;
        for (size_t i = 0; i < n; i++)
            if (cyrillic_for(w[i])) last = i;
        for (size_t i = 0; i < n; i++) {
            uint32_t cp = cyrillic_for(w[i]);
            if (cp && (chance(r, 500000) || (done == 0 && i == last))) {
                o += (size_t)put_utf8(out + o, cp);
                done++;
            } else
                out[o++] = w[i];
        }
        break;
    }
    case EV_FULLWIDTH:
        for (size_t i = 0; i < n; i++)
            o += (size_t)put_utf8(out + o, (uint32_t)(caps ? upper(w[i]) : w[i]) + 0xFEE0);
        break;
    case EV_MATHBOLD: {
        /* bold, bold italic, bold script, bold fraktur, sans-serif bold: alphabets without holes */
        static const uint32_t base_upper[] = {0x1D400, 0x1D468, 0x1D4D0, 0x1D56C, 0x1D5D4};
        uint32_t bu = base_upper[chance(r, 600000) ? 0 : below(r, NELEM(base_upper))];
        for (size_t i = 0; i < n; i++) {
            int c = caps ? upper(w[i]) : w[i];
            uint32_t cp = c >= 'a' ? bu + 26 + (uint32_t)(c - 'a') : bu + (uint32_t)(c - 'A');
            o += (size_t)put_utf8(out + o, cp);
        }
        break;
    }
    case EV_SPACED:
    case EV_DOTTED: {
        char sep = kind == EV_SPACED ? ' ' : (chance(r, 800000) ? '.' : '-');
        for (size_t i = 0; i < n; i++) {
            if (i) out[o++] = sep;
            out[o++] = (char)(caps ? upper(w[i]) : w[i]);
        }
        break;
    }
    case EV_STRETCHED: {
        size_t at = n; /* the last vowel, else the last letter */
        for (size_t i = 0; i < n; i++)
            if (strchr("aeiouy", w[i])) at = i;
        if (at == n) at = n - 1;
        int reps = irange(r, 3, 8);
        for (size_t i = 0; i < n; i++) {
            int c = caps ? upper(w[i]) : w[i];
            out[o++] = (char)c;
            if (i == at)
                for (int k = 1; k < reps; k++)
                    out[o++] = (char)c;
        }
        break;
    }
    case EV_ZEROWIDTH: {
        static const uint32_t zw[] = {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF};
        size_t at1 = 1 + below(r, n - 1), at2 = chance(r, 400000) ? 1 + below(r, n - 1) : 0;
        for (size_t i = 0; i < n; i++) {
            if (i == at1 || i == at2) o += (size_t)put_utf8(out + o, zw[below(r, NELEM(zw))]);
            out[o++] = w[i];
        }
        break;
    }
    case EV_ZALGO:
    default:
        for (size_t i = 0; i < n; i++) {
            out[o++] = w[i];
            int k = irange(r, 1, 2);
            for (int j = 0; j < k; j++)
                o += (size_t)put_utf8(out + o, 0x0300 + (uint32_t)below(r, 0x70));
        }
        break;
    }
    out[o] = 0;
    return o;
}

/* ------------------------------------------------------------------ stats */

typedef struct {
    uint64_t messages, non_ascii, plain, evasion, ev_kind[EV__COUNT], links, scam_links, mentions,
        mention_spam, native_emote_msgs, native_emotes, text_emote_msgs, foreign, emoji, caps,
        zalgo, repeated, copypasta, bait, commands, exempt, discord, bytes_text, cps_text,
        first_message;
    uint64_t len_hist[MAX_CPS + 2];
} stats_t;

/* ------------------------------------------------------------------ the generator */

typedef struct {
    rng_t r;
    msg_t m;
    stats_t all, prefix;
    uint64_t prefix_n;
    char out[65536];
} gen_t;

static void rand_alnum(rng_t *r, char *o, int n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < n; i++)
        o[i] = a[below(r, sizeof a - 1)];
    o[n] = 0;
}

static void expand_bait(gen_t *g, const char *t, char *o, size_t cap)
{
    rng_t *r = &g->r;
    size_t n = 0;
    while (*t && n + 128 < cap) {
        if (*t != '{') {
            o[n++] = *t++;
            continue;
        }
        const char *e = strchr(t, '}');
        size_t kl = (size_t)(e - t - 1);
        char tmp[128];
        const char *key = t + 1;
#define KEY(k) (kl == strlen(k) && !strncmp(key, k, kl))
        /* one random draw per statement: the order of argument evaluation is unspecified */
        if (KEY("host"))
            snprintf(tmp, sizeof tmp, "%s", PICK(r, SCAM_HOSTS));
        else if (KEY("code"))
            rand_alnum(r, tmp, irange(r, 6, 10));
        else if (KEY("phone")) {
            const char *f = PICK(r, PHONE_FMT);
            int d[10];
            for (int i = 0; i < 10; i++)
                d[i] = (i == 0 || i == 3) ? irange(r, 2, 9) : irange(r, 0, 9);
            snprintf(tmp, sizeof tmp, f, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8],
                     d[9]);
        } else if (KEY("intl")) {
            static const int cc[] = {44, 49, 33, 34, 55, 91};
            int c = PICK(r, cc);
            int x = irange(r, 7000, 7999);
            int y = irange(r, 0, 999);
            int z = irange(r, 0, 9999);
            snprintf(tmp, sizeof tmp, "+%d %d %03d %04d", c, x, y, z);
        } else if (KEY("btc")) {
            static const char b58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
            static const char b32[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
            if (chance(r, 500000)) {
                tmp[0] = chance(r, 500000) ? '1' : '3';
                for (int i = 1; i < 34; i++)
                    tmp[i] = b58[below(r, sizeof b58 - 1)];
                tmp[34] = 0;
            } else {
                memcpy(tmp, "bc1q", 4);
                for (int i = 4; i < 42; i++)
                    tmp[i] = b32[below(r, sizeof b32 - 1)];
                tmp[42] = 0;
            }
        } else if (KEY("eth")) {
            static const char hx[] = "0123456789abcdef";
            memcpy(tmp, "0x", 2);
            for (int i = 2; i < 42; i++)
                tmp[i] = hx[below(r, 16)];
            tmp[42] = 0;
        } else if (KEY("user"))
            snprintf(tmp, sizeof tmp, "%s", g_users[below(r, NUSERS)].name);
        else if (KEY("chan"))
            snprintf(tmp, sizeof tmp, "%s", g_chan[below(r, NCHANNELS)].name + 1);
        else if (KEY("email")) {
            static const char *const dom[] = {"gmail.com", "outlook.com", "proton.me", "yahoo.com"};
            const char *u = g_users[below(r, NUSERS)].name;
            int num = irange(r, 1, 99);
            const char *d = PICK(r, dom);
            snprintf(tmp, sizeof tmp, "%s%d@%s", u, num, d);
        } else if (KEY("ip")) {
            int q[4];
            for (int i = 0; i < 4; i++)
                q[i] = i == 0 ? irange(r, 11, 223) : i == 3 ? irange(r, 1, 254) : irange(r, 0, 255);
            snprintf(tmp, sizeof tmp, "%d.%d.%d.%d", q[0], q[1], q[2], q[3]);
        } else if (KEY("num"))
            snprintf(tmp, sizeof tmp, "%d", irange(r, 100, 9999));
        else
            tmp[0] = 0;
#undef KEY
        size_t tl = strlen(tmp);
        memcpy(o + n, tmp, tl);
        n += tl;
        t = e + 1;
    }
    o[n] = 0;
}

/* a link; *scam set when its host is a scam host */
static void make_link(gen_t *g, int channel, char *o, size_t cap, bool *scam)
{
    rng_t *r = &g->r;
    char code[32];
    *scam = false;
    uint32_t x = (uint32_t)below(r, 100);
    if (x < 35) {
        char slug[64]; /* AdjectiveNounEmote-xxxxxxxxxxxxxxxx, as Twitch names clips */
        const char *a = pool_pick(r, &P_ADJ), *b = pool_pick(r, &P_NOUN);
        snprintf(slug, sizeof slug, "%c%s%c%s%s", upper(a[0]), a + 1, upper(b[0]), b + 1,
                 TWITCH_EMOTES[g_twemote_ok[below(r, (uint64_t)g_ntwemote_ok)]].name);
        for (char *q = slug; *q; q++)
            if (*q == ' ') *q = '_';
        rand_alnum(r, code, 16);
        snprintf(o, cap, "https://clips.twitch.tv/%s-%s", slug, code);
    } else if (x < 60) {
        rand_alnum(r, code, 11);
        uint32_t y = (uint32_t)below(r, 4);
        if (y == 0)
            snprintf(o, cap, "https://www.youtube.com/watch?v=%s", code);
        else if (y == 1)
            snprintf(o, cap, "https://youtu.be/%s", code);
        else if (y == 2)
            snprintf(o, cap, "youtube.com/shorts/%s", code);
        else
            snprintf(o, cap, "https://www.youtube.com/watch?v=%s&t=%ds", code, irange(r, 10, 5000));
    } else if (x < 68) {
        const char *scheme = chance(r, 500000) ? "https://www." : "";
        snprintf(o, cap, "%stwitch.tv/%s", scheme, g_chan[below(r, NCHANNELS)].name + 1);
    } else if (x < 83) {
        rand_alnum(r, code, 7);
        static const char *const f[] = {"https://imgur.com/a/%s",
                                        "https://x.com/%s/status/1",
                                        "https://www.reddit.com/r/LivestreamFail/comments/%s",
                                        "https://github.com/%s/dotfiles",
                                        "https://en.wikipedia.org/wiki/%s",
                                        "https://open.spotify.com/track/%s",
                                        "https://tenor.com/view/%s"};
        snprintf(o, cap, f[below(r, NELEM(f))], code);
    } else if (x < 92) {
        rand_alnum(r, code, 8);
        snprintf(o, cap, "%s%s", BENIGN_OTHER_LINKS[below(r, NELEM(BENIGN_OTHER_LINKS))], code);
    } else {
        rand_alnum(r, code, 6);
        const char *h = PICK(r, SCAM_HOSTS);
        uint32_t y = (uint32_t)below(r, 3);
        if (y == 0)
            snprintf(o, cap, "https://%s/%s", h, code);
        else if (y == 1)
            snprintf(o, cap, "%s/%s", h, code);
        else
            snprintf(o, cap, "http://www.%s", h);
        *scam = true;
    }
    (void)channel;
}

/* length target in code points: most short, long tail (buckets lo, hi, weight per mille) */
static uint32_t target_length(rng_t *r)
{
    static const uint16_t B[][3] = {{5, 8, 170},   {9, 15, 230},   {16, 25, 200},
                                    {26, 40, 160}, {41, 60, 110},  {61, 90, 65},
                                    {91, 130, 35}, {131, 200, 20}, {201, 300, 10}};
    uint32_t x = (uint32_t)below(r, 1000), acc = 0;
    for (size_t i = 0; i < NELEM(B); i++) {
        acc += B[i][2];
        if (x < acc) return (uint32_t)irange(r, B[i][0], B[i][1]);
    }
    return 20;
}

static const char *pick_prof_term(rng_t *r, bool evadable_only)
{
    if (evadable_only) {
        if (g_npopular_present && chance(r, 700000))
            return g_popular_present[below(r, g_npopular_present)];
        return g_nevadable ? g_evadable[below(r, g_nevadable)] : NULL;
    }
    if (g_npopular_present && chance(r, 600000))
        return g_popular_present[below(r, g_npopular_present)];
    return g_nterms ? g_terms[below(r, g_nterms)] : NULL;
}

static void stat_add(stats_t *s, const char *text, size_t len, size_t cps)
{
    s->messages++;
    s->bytes_text += len;
    s->cps_text += cps;
    s->len_hist[cps > MAX_CPS ? MAX_CPS + 1 : cps]++;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] >= 0x80) {
            s->non_ascii++;
            break;
        }
}

typedef struct {
    bool plain, evasion, link, scam, mention, mention_spam, foreign, emoji, caps, zalgo, repeated,
        copypasta, bait, command, exempt, discord, first_message;
    int ev_kind;
    int native_emotes, text_emotes;
    const char *term; /* the injected list term */
} flags_t;

static void count(stats_t *s, const flags_t *f)
{
    s->plain += f->plain;
    s->evasion += f->evasion;
    if (f->evasion) s->ev_kind[f->ev_kind]++;
    s->links += f->link;
    s->scam_links += f->scam;
    s->mentions += f->mention;
    s->mention_spam += f->mention_spam;
    s->native_emote_msgs += f->native_emotes > 0;
    s->native_emotes += (uint64_t)f->native_emotes;
    s->text_emote_msgs += f->text_emotes > 0;
    s->foreign += f->foreign;
    s->emoji += f->emoji;
    s->caps += f->caps;
    s->zalgo += f->zalgo;
    s->repeated += f->repeated;
    s->copypasta += f->copypasta;
    s->bait += f->bait;
    s->commands += f->command;
    s->exempt += f->exempt;
    s->discord += f->discord;
    s->first_message += f->first_message;
}

static void add_discord_emote(gen_t *g, flags_t *f, int pos)
{
    rng_t *r = &g->r;
    msg_t *m = &g->m;
    if (chance(r, 300000)) { /* unicode emoji */
        const char *e = PICK(r, EMOJI);
        msg_insert(m, pos, SEG_OTHER, e, strlen(e), -1);
        f->emoji = true;
    } else { /* custom server emoji: <:name:id> */
        char t[80];
        int k = (int)below(r, NELEM(DISCORD_EMOJI_NAMES));
        int n = snprintf(t, sizeof t, "<:%s:%llu>", DISCORD_EMOJI_NAMES[k],
                         900000000000000000ULL + (unsigned long long)k * 7919ULL);
        msg_insert(m, pos, SEG_EMOTE_NATIVE, t, (size_t)n, k);
        f->native_emotes++;
    }
}

static void add_twitch_emote(gen_t *g, flags_t *f, int pos)
{
    rng_t *r = &g->r;
    if (chance(r, 550000)) {
        int k = g_twemote_ok[below(r, (uint64_t)g_ntwemote_ok)];
        msg_insert(&g->m, pos, SEG_EMOTE_NATIVE, TWITCH_EMOTES[k].name,
                   strlen(TWITCH_EMOTES[k].name), k);
        f->native_emotes++;
    } else {
        const char *e = pool_pick(r, &P_TEXTEMOTE);
        msg_insert(&g->m, pos, SEG_EMOTE_TEXT, e, strlen(e), -1);
        f->text_emotes++;
    }
}

static void add_emote(gen_t *g, bool discord, flags_t *f, int pos)
{
    if (discord)
        add_discord_emote(g, f, pos);
    else
        add_twitch_emote(g, f, pos);
}

/* one sentence from a template */
static void sentence(rng_t *r, char *o, size_t cap)
{
    const char *t = pool_pick(r, &P_TMPL);
    size_t n = 0;
    while (*t && n + 40 < cap) {
        if (t[0] == '{' && t[1] && t[2] == '}') {
            const char *w;
            char num[24];
            switch (t[1]) {
            case 'n':
                w = pool_pick(r, &P_NOUN);
                break;
            case 'p': {
                const char *nn = pool_pick(r, &P_NOUN);
                size_t l = strlen(nn);
                char last = nn[l - 1], prev = l > 1 ? nn[l - 2] : 0;
                if (last == 's' || last == 'x' || (last == 'h' && (prev == 'c' || prev == 's')))
                    snprintf(num, sizeof num, "%.*ses", (int)(l < 12 ? l : 12), nn);
                else if (last == 'y' && !strchr("aeiou", prev))
                    snprintf(num, sizeof num, "%.*sies", (int)(l - 1 < 11 ? l - 1 : 11), nn);
                else
                    snprintf(num, sizeof num, "%.*ss", (int)(l < 13 ? l : 13), nn);
                w = num;
                break;
            }
            case 'a':
                w = pool_pick(r, &P_ADJ);
                break;
            case 'v':
                w = pool_pick(r, &P_VERB);
                break;
            case 't':
                w = pool_pick(r, &P_TAIL);
                break;
            default:
                snprintf(num, sizeof num, "%d", irange(r, 2, 12));
                w = num;
                break;
            }
            size_t wl = strlen(w);
            memcpy(o + n, w, wl);
            n += wl;
            t += 3;
        } else
            o[n++] = *t++;
    }
    o[n] = 0;
}

/* fills the message with filler until it reaches target cps */
static void fill(gen_t *g, uint32_t target, const pool_t *foreign, bool discord, flags_t *f,
                 uint32_t emote_ppm)
{
    rng_t *r = &g->r;
    msg_t *m = &g->m;
    int guard = 0;
    char buf[256];
    while (m->cps < target && guard++ < 400) {
        uint32_t left = target - m->cps;
        if (emote_ppm && chance(r, emote_ppm) && msg_cps_with(m, 40) <= MAX_CPS) {
            add_emote(g, discord, f, (int)below(r, (uint64_t)m->n + 1));
            continue;
        }
        const char *s;
        if (foreign)
            s = chance(r, 900000) ? pool_pick(r, foreign) : pool_pick(r, &P_TAIL);
        else if (m->n == 0 && left <= 10 && chance(r, 600000))
            s = pool_pick(r, &P_REACT);
        else if (m->n > 0 && left <= 6)
            s = pool_pick(r, &P_TAIL);
        else if (chance(r, 450000))
            s = pool_pick(r, &P_FRAG);
        else {
            sentence(r, buf, sizeof buf);
            s = buf;
        }
        if (msg_cps_with(m, (uint32_t)utf8_cps(s, strlen(s))) > MAX_CPS) break;
        msg_add(m, SEG_WORD, s);
    }
}

/* writes s as JSON string contents */
static size_t json_esc(char *o, const char *s, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            o[k++] = '\\';
            o[k++] = (char)c;
        } else if (c < 0x20) {
            o[k++] = '\\';
            o[k++] = 'u';
            o[k++] = '0';
            o[k++] = '0';
            o[k++] = hx[c >> 4];
            o[k++] = hx[c & 15];
        } else
            o[k++] = (char)c;
    }
    return k;
}

static const char *const ROLE_NAMES[] = {"broadcaster", "moderator", "vip",
                                         "subscriber",  "founder",   "turbo"};

static void gen_event(gen_t *g, FILE *out, FILE *truth, uint64_t idx, int64_t ts_ms)
{
    rng_t *r = &g->r;
    msg_t *m = &g->m;
    flags_t f;
    memset(&f, 0, sizeof f);
    msg_reset(m);

    /* who and where */
    uint32_t uid = (uint32_t)wt_sample(&g_user_w, r);
    int ch = chance(r, 850000) ? g_users[uid].home : (int)wt_sample(&g_chan_w, r);
    uint8_t roles = g_users[uid].roles;
    if (chance(r, 2500)) { /* the broadcaster talks in their own channel */
        uid = g_chan[ch].owner;
        roles = (uint8_t)(g_users[uid].roles | R_BROADCASTER);
    }
    user_t *u = &g_users[uid];
    bool discord = g_chan[ch].discord;
    f.discord = discord;
    f.exempt = (roles & (R_BROADCASTER | R_MODERATOR)) != 0;
    if (u->is_new && !u->seen) f.first_message = true;
    u->seen = 1;

    uint32_t target = target_length(r);
    uint32_t emote_ppm = discord ? 60000 : 140000;

    /* message kind */
    uint32_t k = (uint32_t)below(r, 1000000);
    if (k < 15000) { /* bot command */
        const char *c = PICK(r, COMMANDS);
        msg_add(m, SEG_OTHER, c);
        f.command = true;
        if (!strcmp(c, "!so") || chance(r, 200000)) {
            char t[48];
            snprintf(t, sizeof t, "@%s", g_users[below(r, NUSERS)].name);
            msg_add(m, SEG_OTHER, t);
        }
        goto render;
    }
    k -= 15000;
    if (k < 15000) { /* bait for the regex rules */
        char t[512];
        expand_bait(g, pool_pick(r, &P_BAIT), t, sizeof t);
        msg_add(m, SEG_OTHER, t);
        f.bait = true;
        if (chance(r, 300000)) fill(g, m->cps + (uint32_t)irange(r, 5, 30), NULL, discord, &f, 0);
        goto render;
    }
    k -= 15000;
    if (k < 8000) { /* copypasta / long repeated text */
        f.copypasta = true;
        uint32_t t = (uint32_t)irange(r, 150, MAX_CPS);
        if (chance(r, 400000)) { /* one word or emote repeated */
            const char *w = chance(r, 500000) ? pool_pick(r, &P_TEXTEMOTE) : pool_pick(r, &P_REACT);
            size_t wl = utf8_cps(w, strlen(w));
            while (msg_cps_with(m, (uint32_t)wl) <= t)
                msg_add(m, SEG_WORD, w);
        } else {
            const char *a = pool_pick(r, &P_FRAG), *b = pool_pick(r, &P_FRAG);
            while (msg_cps_with(
                       m, (uint32_t)(utf8_cps(a, strlen(a)) + utf8_cps(b, strlen(b)) + 1)) <= t) {
                msg_add(m, SEG_WORD, a);
                msg_add(m, SEG_WORD, b);
            }
            if (m->n == 0) msg_add(m, SEG_WORD, a);
        }
        goto render;
    }
    k -= 8000;
    if (k < 5000 && !discord) { /* emote wall */
        int n = irange(r, 10, 30);
        for (int i = 0; i < n && m->cps < MAX_CPS - 20; i++)
            add_twitch_emote(g, &f, -1);
        goto render;
    }
    k -= 5000;
    const pool_t *lang = NULL;
    if (k < 45000) {
        f.foreign = true;
        uint32_t x = (uint32_t)below(r, 1000), acc = 0;
        for (size_t i = 0; i < NELEM(LANGS) && !lang; i++)
            if (x < (acc += LANGS[i].weight)) lang = &LANGS[i].pool;
        if (!lang) lang = &LANGS[0].pool;
    }

    /* add-ons */
    if (!f.exempt && chance(r, 50000)) { /* profanity, plain or evaded */
        char t[512];
        if (chance(r, 600000)) {
            const char *w = pick_prof_term(r, true);
            if (w) {
                int kind = (int)below(r, EV__COUNT);
                make_evasion(r, w, &kind, t);
                msg_add(m, SEG_PROF, t);
                f.term = w;
                f.evasion = true;
                f.ev_kind = kind;
            }
        } else {
            const char *w = pick_prof_term(r, false);
            if (w) {
                size_t n = strlen(w);
                memcpy(t, w, n + 1);
                uint32_t c = (uint32_t)below(r, 10);
                if (c < 2)
                    t[0] = (char)upper(t[0]);
                else if (c < 3)
                    for (size_t i = 0; i < n; i++)
                        t[i] = (char)upper(t[i]);
                msg_add(m, SEG_PROF, t);
                f.term = w;
                f.plain = true;
            }
        }
    }
    if (chance(r, 35000)) { /* link */
        char t[256];
        make_link(g, ch, t, sizeof t, &f.scam);
        msg_insert(m, chance(r, 700000) ? -1 : 0, SEG_OTHER, t, strlen(t), -1);
        f.link = true;
    }
    if (chance(r, 1500)) { /* mention spam */
        int n = irange(r, 5, 12);
        for (int i = 0; i < n; i++) {
            char t[48];
            snprintf(t, sizeof t, "@%s", g_users[below(r, NUSERS)].name);
            msg_insert(m, 0, SEG_OTHER, t, strlen(t), -1);
        }
        f.mention_spam = true;
    } else if (chance(r, 70000)) {
        char t[48];
        const char *who = g_users[below(r, NUSERS)].name;
        snprintf(t, sizeof t, "@%s%s", who, chance(r, 200000) ? "," : "");
        msg_insert(m, chance(r, 800000) ? 0 : -1, SEG_OTHER, t, strlen(t), -1);
        f.mention = true;
    }
    if (chance(r, 10000)) { /* stretched word or punctuation run */
        char t[64];
        int n = irange(r, 5, 25), o = 0;
        uint32_t x = (uint32_t)below(r, 4);
        if (x == 0) {
            t[o++] = 'L';
            for (int i = 0; i < n; i++)
                t[o++] = 'O';
            t[o++] = 'L';
        } else if (x == 1) {
            memcpy(t, "NOO", 3);
            o = 3;
            for (int i = 0; i < n; i++)
                t[o++] = 'O';
        } else {
            char c = x == 2 ? '!' : '?';
            for (int i = 0; i < n; i++)
                t[o++] = c;
        }
        t[o] = 0;
        msg_insert(m, x >= 2 ? -1 : (int)below(r, (uint64_t)m->n + 1), SEG_OTHER, t, (size_t)o, -1);
        f.repeated = true;
    }
    if (chance(r, 2000)) f.zalgo = true;
    if (!f.zalgo && chance(r, 25000)) f.caps = true;

    /* filler around the add-ons */
    {
        msg_t saved_specials;
        int nspecial = m->n;
        if (nspecial) memcpy(&saved_specials, m, sizeof *m);
        msg_reset(m);
        uint32_t special_cps = 0;
        for (int i = 0; i < nspecial; i++)
            special_cps += saved_specials.seg[i].cps + 1;
        uint32_t t = target > special_cps ? target - special_cps : 0;
        if (t > 0) fill(g, t, lang, discord, &f, f.zalgo ? 0 : emote_ppm);
        /* put the add-ons back: mentions in front, links at the end mostly, the rest anywhere */
        for (int i = 0; i < nspecial; i++) {
            seg_t *s = &saved_specials.seg[i];
            const char *txt = saved_specials.arena + s->off;
            int pos;
            if (txt[0] == '@')
                pos = i < m->n ? i : -1;
            else if (s->kind == SEG_OTHER && (strstr(txt, "://") || strchr(txt, '/')))
                pos = chance(r, 750000) ? -1 : 0;
            else
                pos = (int)below(r, (uint64_t)m->n + 1);
            if (msg_cps_with(m, s->cps) > MAX_CPS) { /* drop filler from the end to make room */
                while (m->n > 0 && msg_cps_with(m, s->cps) > MAX_CPS) {
                    m->cps -= m->seg[m->n - 1].cps + (m->n > 1 ? 1 : 0);
                    m->n--;
                }
                if (pos > m->n) pos = -1;
            }
            msg_insert(m, pos, s->kind, txt, s->len, s->emote);
        }
    }
    if (!f.zalgo && !f.foreign && chance(r, 30000)) {
        const char *e = PICK(r, EMOTICONS);
        if (msg_cps_with(m, (uint32_t)utf8_cps(e, strlen(e))) <= MAX_CPS) msg_add(m, SEG_OTHER, e);
    }
    if (!f.zalgo && chance(r, 20000)) { /* emoji */
        int n = chance(r, 700000) ? 1 : irange(r, 2, 4);
        for (int i = 0; i < n && m->cps + 3 < MAX_CPS; i++) {
            const char *e = PICK(r, EMOJI);
            msg_insert(m, chance(r, 800000) ? -1 : (int)below(r, (uint64_t)m->n + 1), SEG_OTHER, e,
                       strlen(e), -1);
        }
        f.emoji = true;
    }

render:
    if (m->cps < MIN_CPS) {
        while (m->cps < MIN_CPS)
            msg_add(m, SEG_WORD, pool_pick(r, &P_REACT));
    }
    /* render text, tracking native emote positions (code points, inclusive) */
    char text[8192];
    size_t tl = 0;
    uint32_t cp = 0;
    uint32_t em_pos[64][2];
    int em_idx[64];
    int nm = 0;
    uint32_t zalgo_budget = f.zalgo ? MAX_CPS - m->cps : 0;
    for (int i = 0; i < m->n; i++) {
        seg_t *s = &m->seg[i];
        const char *p = m->arena + s->off;
        if (i) {
            text[tl++] = ' ';
            cp++;
        }
        if (s->kind == SEG_EMOTE_NATIVE && !discord && nm < 64) {
            em_idx[nm] = s->emote;
            em_pos[nm][0] = cp;
            em_pos[nm][1] = cp + s->cps - 1;
            nm++;
        }
        for (uint32_t b = 0; b < s->len; b++) {
            unsigned char c = (unsigned char)p[b];
            if (f.caps && (s->kind == SEG_WORD || s->kind == SEG_PROF)) {
                c = (unsigned char)upper(c);
                /* Latin-1 lowercase letters U+00E0..U+00FE (not U+00F7) are C3 A0..BE */
                unsigned char nx = b + 1 < s->len ? (unsigned char)p[b + 1] : 0;
                if (c == 0xC3 && nx >= 0xA0 && nx <= 0xBE && nx != 0xB7) {
                    text[tl++] = (char)c;
                    text[tl++] = (char)(nx - 0x20);
                    b++;
                    cp++;
                    continue;
                }
            }
            text[tl++] = (char)c;
            if ((c & 0xC0) != 0x80) cp++;
            if (zalgo_budget && s->kind == SEG_WORD && is_alpha(c)) {
                int n = irange(r, 1, 5);
                for (int j = 0; j < n && zalgo_budget; j++, zalgo_budget--) {
                    tl += (size_t)put_utf8(text + tl, 0x0300 + (uint32_t)below(r, 0x70));
                    cp++;
                }
            }
        }
    }
    text[tl] = 0;

    /* meta */
    char meta[2048];
    size_t ml = 0;
    if (discord) {
        ml += (size_t)sprintf(meta + ml, "{\"msg_id\":\"%llu\"",
                              1200000000000000000ULL +
                                  (unsigned long long)(idx * 4099 + below(r, 4096)));
        bool first = true;
        for (int i = 0; i < m->n; i++)
            if (m->seg[i].kind == SEG_EMOTE_NATIVE) {
                if (ml > sizeof meta - 64) break;
                ml += (size_t)sprintf(meta + ml, "%s\"%llu\"", first ? ",\"emotes\":[" : ",",
                                      900000000000000000ULL +
                                          (unsigned long long)m->seg[i].emote * 7919ULL);
                first = false;
            }
        if (!first) meta[ml++] = ']';
        meta[ml++] = '}';
    } else {
        uint64_t a = rng_next(r), b = rng_next(r);
        ml += (size_t)sprintf(
            meta + ml, "{\"msg_id\":\"%08llx-%04llx-4%03llx-%04llx-%012llx\"",
            (unsigned long long)(a >> 32), (unsigned long long)((a >> 16) & 0xFFFF),
            (unsigned long long)(a & 0xFFF), (unsigned long long)(0x8000 | (b >> 50)),
            (unsigned long long)(b & 0xFFFFFFFFFFFFULL));
        if (nm) {
            ml += (size_t)sprintf(meta + ml, ",\"emotes\":\"");
            bool done[64] = {0};
            bool firstgrp = true;
            for (int i = 0; i < nm; i++) {
                if (done[i]) continue;
                ml += (size_t)sprintf(meta + ml, "%s%s:", firstgrp ? "" : "/",
                                      TWITCH_EMOTES[em_idx[i]].id);
                firstgrp = false;
                bool firstr = true;
                for (int j = i; j < nm; j++)
                    if (!done[j] && em_idx[j] == em_idx[i]) {
                        if (ml > sizeof meta - 48) break;
                        ml += (size_t)sprintf(meta + ml, "%s%u-%u", firstr ? "" : ",", em_pos[j][0],
                                              em_pos[j][1]);
                        firstr = false;
                        done[j] = true;
                    }
            }
            meta[ml++] = '"';
        }
        meta[ml++] = '}';
    }
    meta[ml] = 0;

    /* the event line */
    char *o = g->out;
    size_t n = 0;
    char ts[40], cr[40];
    fmt_time_ms(ts, ts_ms, true);
    fmt_time_ms(cr, u->created_s * 1000, false);
    n += (size_t)sprintf(
        o + n, "{\"id\":\"e-%llu\",\"type\":\"message\",\"platform\":\"%s\",\"channel\":\"%s\",",
        (unsigned long long)idx, discord ? "discord" : "twitch", g_chan[ch].name);
    n += (size_t)sprintf(o + n, "\"user\":{\"id\":\"u%u\",\"name\":\"%s\",\"roles\":[", uid,
                         u->name);
    bool firstrole = true;
    for (int i = 0; i < 6; i++)
        if (roles & (1 << i)) {
            n += (size_t)sprintf(o + n, "%s\"%s\"", firstrole ? "" : ",", ROLE_NAMES[i]);
            firstrole = false;
        }
    n += (size_t)sprintf(o + n, "],\"created_at\":\"%s\",\"first_message\":%s},\"text\":\"", cr,
                         f.first_message ? "true" : "false");
    n += json_esc(o + n, text, tl);
    n += (size_t)sprintf(o + n, "\",\"ts\":\"%s\",\"meta\":%s}\n", ts, meta);
    fwrite(o, 1, n, out);

    if (truth && (f.plain || f.evasion)) {
        fprintf(truth, "{\"id\":\"e-%llu\",\"kind\":\"%s\",\"term\":\"", (unsigned long long)idx,
                f.plain ? "plain" : EV_NAMES[f.ev_kind]);
        char esc[512];
        fwrite(esc, 1, json_esc(esc, f.term, strlen(f.term)), truth);
        fputs("\"}\n", truth);
    }
    size_t cps = utf8_cps(text, tl);
    stat_add(&g->all, text, tl, cps);
    count(&g->all, &f);
    if (idx <= g->prefix_n) {
        stat_add(&g->prefix, text, tl, cps);
        count(&g->prefix, &f);
    }
}

/* ------------------------------------------------------------------ rules file */

typedef struct {
    const char *id, *desc, *action, *extra;
    const char *pat[3], *view[3];
} rxrule_t;

/* 50 regex rules. view NULL = the default (folded). extra: raw YAML lines added to the rule. */
static const rxrule_t RX[] = {
    {"scam-free-nitro",
     "free Nitro scam",
     "ban",
     "    priority: 20\n",
     {"fr[e3]{2}\\s*(discord\\s*)?n[i1]tr[o0]", "nitro\\s+(giveaway|for\\s+free|drop)"},
     {"skeleton", "folded"}},
    {"scam-steam-gift",
     "Steam gift scam",
     "hold",
     NULL,
     {"steam\\s*(gift|wallet)\\s*(card|code)s?\\s*(for\\s*)?free"},
     {NULL}},
    {"scam-claim-prize",
     "prize claim scam",
     "delete",
     NULL,
     {"claim\\s+(your|ur)\\s+(free\\s+)?(prize|reward|gift|skin)s?"},
     {NULL}},
    {"scam-giveaway-dm",
     "fake giveaway asking for DMs",
     "hold",
     NULL,
     {"(giveaway|winner).{0,40}\\b(dm|message|whisper)\\s+me\\b"},
     {NULL}},
    {"scam-crypto-double",
     "crypto doubling scam",
     "ban",
     "    priority: 20\n",
     {"(send|sent)\\s+\\d+(\\.\\d+)?\\s*(btc|eth|usdt|sol)\\b.{0,60}\\b(back|double|x2|2x)\\b"},
     {"skeleton"}},
    {"crypto-btc-address",
     "Bitcoin address",
     "hold",
     NULL,
     {"\\b(bc1[02-9ac-hj-np-z]{25,59}|[13][a-km-zA-HJ-NP-Z1-9]{25,34})\\b"},
     {"raw"}},
    {"crypto-eth-address", "Ethereum address", "hold", NULL, {"\\b0x[0-9a-fA-F]{40}\\b"}, {"raw"}},
    {"crypto-seed-phrase",
     "asks about seed phrases",
     "hold",
     NULL,
     {"(seed|recovery)\\s+phrase"},
     {NULL}},
    {"contact-phone-us",
     "North American phone number",
     "hold",
     NULL,
     {"(?<!\\d)(\\+?1[\\s.-]?)?\\(?[2-9]\\d{2}\\)?[\\s.-]?\\d{3}[\\s.-]?\\d{4}(?!\\d)"},
     {"raw"}},
    {"contact-phone-intl",
     "international phone number",
     "hold",
     NULL,
     {"\\+\\d{2,3}[\\s.-]?\\d{2,4}[\\s.-]?\\d{3,4}[\\s.-]?\\d{3,4}"},
     {"raw"}},
    {"contact-email",
     "e-mail address",
     "warn",
     NULL,
     {"\\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}\\b"},
     {"raw"}},
    {"promo-follow-me",
     "self-promotion: follow me",
     "delete",
     NULL,
     {"f[o0]ll[o0]w\\s+(me|my)\\s+(at|on)\\b"},
     {"skeleton"}},
    {"promo-sub4sub",
     "sub4sub / follow4follow",
     "delete",
     NULL,
     {"\\b(sub|follow)\\s*(4|for)\\s*(sub|follow)\\b"},
     {"folded"}},
    {"promo-buy-viewers",
     "viewer/follower selling",
     "ban",
     "    priority: 10\n",
     {"(cheap|best|buy)\\s+(viewers|followers|primes|subs)\\b"},
     {"skeleton"}},
    {"promo-viewbot-brands",
     "known viewbot brands",
     "ban",
     NULL,
     {"\\b(bigfollows|dogehype|streamboo|viewerlabs)\\b"},
     {"skeleton"}},
    {"promo-check-my-channel",
     "self-promotion: my channel",
     "delete",
     NULL,
     {"check\\s+(out\\s+)?my\\s+(channel|stream|profile|bio)"},
     {NULL}},
    {"promo-onlyfans", "adult self-promotion", "delete", NULL, {"only\\s*fans"}, {"skeleton"}},
    {"promo-telegram",
     "telegram links",
     "delete",
     NULL,
     {"\\bt\\.me/\\w{4,}", "telegram\\s*[:@]\\s*\\w{4,}"},
     {"folded", "folded"}},
    {"promo-whatsapp", "whatsapp contact", "delete", NULL, {"whats\\s*app\\s*(me|\\+|at)"}, {NULL}},
    {"spam-punct-run", "repeated punctuation", "warn", NULL, {"[!?.]{6,}"}, {"raw"}},
    {"spam-symbol-run", "one symbol repeated", "warn", NULL, {"([^\\w\\s])\\1{7,}"}, {"raw"}},
    {"spam-word-repeat",
     "one word repeated",
     "warn",
     NULL,
     {"\\b(\\w{2,})(\\s+\\1\\b){5,}"},
     {NULL}},
    {"spam-symbol-wall", "wall of symbols", "hold", NULL, {"[^\\p{L}\\p{N}\\s]{20,}"}, {"raw"}},
    {"spam-ascii-art",
     "braille/block ASCII art",
     "delete",
     NULL,
     {"[\\x{2800}-\\x{28FF}\\x{2580}-\\x{259F}]{12,}"},
     {"raw"}},
    {"spam-copypasta",
     "copypasta chain",
     "warn",
     NULL,
     {"copy\\s*(and|&|n)\\s*paste|copypasta"},
     {NULL}},
    {"harass-kys",
     "self-harm incitement",
     "ban",
     "    priority: 30\n",
     {"\\bk\\s*y\\s*s\\b", "\\bkill\\s+(your|ur)\\s*self\\b"},
     {"skeleton", "skeleton"}},
    {"harass-go-die",
     "death wish",
     "{timeout: 10m}",
     NULL,
     {"\\b(go|just)\\s+die\\b"},
     {"skeleton"}},
    {"harass-insult",
     "direct insult",
     "{timeout: 60s}",
     NULL,
     {"\\byou('?re|\\s+are|\\s+r)\\s+(so\\s+)?(ugly|fat|stupid|dumb|trash)\\b"},
     {"skeleton"}},
    {"harass-nobody-asked",
     "dismissive reply",
     "warn",
     "    mode: shadow\n",
     {"\\b(nobody|no\\s*one)\\s+asked\\b"},
     {NULL}},
    {"harass-ratio", "ratio", "warn", "    mode: shadow\n", {"\\bl\\s*\\+\\s*ratio\\b"}, {NULL}},
    {"doxx-street-address",
     "street address",
     "hold",
     "    priority: 10\n",
     {"\\b\\d{1,5}\\s+\\w+(\\s+\\w+)?\\s+(street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln)\\b"},
     {NULL}},
    {"doxx-ip-address",
     "IPv4 address",
     "hold",
     NULL,
     {"\\b(25[0-5]|2[0-4]\\d|1?\\d?\\d)(\\.(25[0-5]|2[0-4]\\d|1?\\d?\\d)){3}\\b"},
     {"raw"}},
    {"spoiler-ending",
     "spoiler",
     "delete",
     "CHANNELS",
     {"\\b(dies|died|is\\s+dead)\\s+(at|in)\\s+the\\s+end\\b", "\\bspoiler\\s*(alert|:)"},
     {NULL, NULL}},
    {"bot-command-chain",
     "several bot commands at once",
     "warn",
     NULL,
     {"^![a-z]+(\\s+![a-z]+){3,}"},
     {"raw"}},
    {"link-shortener",
     "URL shortener",
     "hold",
     NULL,
     {"\\b(bit\\.ly|tinyurl\\.com|goo\\.gl|cutt\\.ly|is\\.gd)/\\w+"},
     {NULL}},
    {"link-ip-url",
     "URL with a bare IP",
     "ban",
     NULL,
     {"https?://\\d{1,3}(\\.\\d{1,3}){3}"},
     {"raw"}},
    {"link-discord-invite",
     "Discord invite",
     "delete",
     "    exempt_roles: [vip]\n",
     {"(discord\\.gg|discord(app)?\\.com/invite)/\\w+"},
     {"skeleton"}},
    {"link-punycode",
     "punycode host (lookalike domain)",
     "hold",
     NULL,
     {"xn--[a-z0-9-]+"},
     {"raw"}},
    {"gambling-sites",
     "gambling promotion",
     "delete",
     NULL,
     {"\\b(csgo|cs2|rust)\\s*(gamble|gambling|roll|case)s?\\b", "\\bstake\\.com\\b"},
     {NULL, NULL}},
    {"gambling-promo-code",
     "promo code",
     "warn",
     NULL,
     {"\\b(use|with)\\s+(my\\s+)?(code|promo\\s*code)\\s+\\w+"},
     {NULL}},
    {"selfharm-support",
     "possible self-harm: route to a human",
     "hold",
     "    priority: 40\n",
     {"\\b(want|going)\\s+to\\s+(die|end\\s+it)\\b"},
     {NULL}},
    {"spam-caps-word",
     "one very long capitalised word",
     "warn",
     NULL,
     {"\\b[A-Z]{12,}\\b"},
     {"raw"}},
    {"spam-long-number", "long digit string", "warn", NULL, {"\\d{12,}"}, {"raw"}},
    {"spam-emoji-wall", "emoji wall", "warn", NULL, {"[\\x{1F300}-\\x{1FAFF}]{8,}"}, {"raw"}},
    {"dating-scam",
     "dating spam",
     "ban",
     NULL,
     {"\\b(hot|lonely)\\s+(singles|moms|girls)\\s+(in|near)\\s+(your|ur)\\s+(area|city)\\b"},
     {"skeleton"}},
    {"scam-account-sale",
     "account trading",
     "hold",
     NULL,
     {"\\b(selling|buy(ing)?)\\s+(an?\\s+)?(account|acc|accs|accounts)\\b"},
     {NULL}},
    {"scam-staff-impersonation",
     "fake staff message",
     "ban",
     "    priority: 20\n",
     {"\\b(twitch|discord)\\s+(staff|support|admin|team)\\b.{0,60}\\b(verify|suspend(ed)?|ban(ned)?"
      ")\\b"},
     {"skeleton"}},
    {"scam-verify-account",
     "verification phishing",
     "hold",
     NULL,
     {"verify\\s+(your|ur)\\s+(account|age|identity)"},
     {NULL}},
    {"dating-spam",
     "dating request",
     "warn",
     NULL,
     {"\\blooking\\s+for\\s+(a\\s+)?(gf|bf|girlfriend|boyfriend)\\b"},
     {NULL}},
    {"malware-download",
     "executable download",
     "ban",
     NULL,
     {"\\.(exe|scr|bat|msi)\\b"},
     {"folded"}},
};

static void yaml_sq(FILE *f, const char *s) /* single-quoted YAML scalar */
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static void write_rules(FILE *f, const char *list_ref, uint64_t seed, size_t nterms)
{
    fprintf(
        f, "# whiply benchmark ruleset, generated by bench/genstream.c (seed %llu): do not edit.\n",
        (unsigned long long)seed);
    fprintf(f,
            "# %zu list terms (npm naughty-words en + cuss), 50 regex rules, message-shape and "
            "link rules.\n",
            nterms);
    fputs("version: 1\n\n", f);
    fputs("lists:\n", f);
    fprintf(f, "  profanity: {file: ");
    yaml_sq(f, list_ref);
    fputs("}\n", f);
    fputs("  scam_hosts: [", f);
    for (size_t i = 0; i < NELEM(SCAM_HOSTS); i++)
        fprintf(f, "%s%s", i ? ", " : "", SCAM_HOSTS[i]);
    fputs("]\n  allowed_hosts: [", f);
    for (size_t i = 0; i < NELEM(ALLOWED_HOSTS); i++)
        fprintf(f, "%s%s", i ? ", " : "", ALLOWED_HOSTS[i]);
    fputs("]\n\nexempt_roles: [broadcaster, moderator]\n\nrules:\n", f);

    fputs("  # bot commands never need moderation; skips every lower-priority rule\n"
          "  - id: bot-commands\n"
          "    description: known bot commands\n"
          "    priority: 50\n"
          "    when: {regex: '^!(uptime|followage|song|points|socials|specs|rank|lurk)$', view: "
          "raw}\n"
          "    action: allow\n\n",
          f);

    fputs("  - id: profanity\n"
          "    description: blocked word from the list\n"
          "    when:\n"
          "      words: [\"@profanity\"]\n"
          "      unless_words: [scunthorpe, penistone, \"cocktail*\", \"assassin*\", \"classic*\", "
          "\"grape*\"]\n"
          "    action: delete\n"
          "    reason: \"blocked word {term} (seen as {view})\"\n\n",
          f);

    fputs("  # message shape\n"
          "  - id: caps\n"
          "    description: shouting\n"
          "    when: {caps_ratio: \"> 0.7\", letters: \">= 12\"}\n"
          "    action: {warn: \"please don't shout\"}\n"
          "    exempt_roles: [vip]\n"
          "  - id: long-message\n"
          "    description: very long message\n"
          "    when: {length: \"> 250\"}\n"
          "    action: warn\n"
          "  - id: repeated-chars\n"
          "    description: character flood\n"
          "    when: {repeated_chars: \">= 15\"}\n"
          "    action: delete\n"
          "  - id: zalgo\n"
          "    description: zalgo text\n"
          "    when: {zalgo: \">= 12\"}\n"
          "    action: delete\n"
          "  - id: symbols\n"
          "    description: mostly symbols\n"
          "    when:\n"
          "      all:\n"
          "        - {symbol_ratio: \"> 0.5\"}\n"
          "        - {length: \">= 20\"}\n"
          "    action: warn\n"
          "  - id: mention-spam\n"
          "    description: mass mentions\n"
          "    when: {mentions: \">= 5\"}\n"
          "    action: {timeout: 5m}\n"
          "  - id: emote-spam\n"
          "    description: emote wall\n"
          "    when: {emotes: \">= 10\"}\n"
          "    action: delete\n"
          "    platforms: [twitch]\n"
          "    exempt_roles: [subscriber]\n"
          "  - id: non-latin\n"
          "    description: mostly non-Latin script (trial)\n"
          "    mode: shadow\n"
          "    when: {non_latin_ratio: \"> 0.8\", letters: \">= 4\"}\n"
          "    action: hold\n\n"
          "  # links\n"
          "  - id: scam-links\n"
          "    description: known scam host\n"
          "    priority: 20\n"
          "    when: {links: {deny: [\"@scam_hosts\"]}}\n"
          "    action: ban\n"
          "    reason: \"scam link ({match})\"\n"
          "  - id: unapproved-links\n"
          "    description: link to a host not on the allow list\n"
          "    when: {links: {allow: [\"@allowed_hosts\"]}}\n"
          "    action: delete\n"
          "    exempt_roles: [subscriber, vip]\n"
          "  - id: link-flood\n"
          "    description: many links in one message\n"
          "    when: {links: \">= 3\"}\n"
          "    action: hold\n"
          "  - id: new-account-link\n"
          "    description: links from non-subscribers (trial)\n"
          "    mode: shadow\n"
          "    when:\n"
          "      all:\n"
          "        - {links: {count: \">= 1\"}}\n"
          "        - not: {regex: 'clips\\.twitch\\.tv'}\n"
          "    action: hold\n"
          "    exempt_roles: [subscriber, vip]\n\n"
          "  # regex rules\n",
          f);

    for (size_t i = 0; i < NELEM(RX); i++) {
        const rxrule_t *x = &RX[i];
        int np = 0;
        while (np < 3 && x->pat[np])
            np++;
        fprintf(f, "  - id: %s\n    description: ", x->id);
        yaml_sq(f, x->desc);
        fputc('\n', f);
        if (x->extra && !strcmp(x->extra, "CHANNELS")) /* scoped to three channels of the stream */
            fprintf(f, "    channels: [\"%s\", \"%s\", \"%s\"]\n", g_chan[0].name, g_chan[1].name,
                    g_chan[2].name);
        else if (x->extra)
            fputs(x->extra, f);
        if (np == 1) {
            fputs("    when:\n      regex: ", f);
            yaml_sq(f, x->pat[0]);
            fputc('\n', f);
            if (x->view[0]) fprintf(f, "      view: %s\n", x->view[0]);
        } else {
            fputs("    when:\n      regex:\n", f);
            for (int p = 0; p < np; p++) {
                fputs("        - ", f);
                if (x->view[p]) {
                    fputs("{pattern: ", f);
                    yaml_sq(f, x->pat[p]);
                    fprintf(f, ", view: %s}\n", x->view[p]);
                } else {
                    yaml_sq(f, x->pat[p]);
                    fputc('\n', f);
                }
            }
        }
        fprintf(f, "    action: %s\n", x->action);
    }
}

/* relative reference from the rules file's folder to the list file */
static char *list_ref_for(const char *rules_path, const char *list_path)
{
    const char *rs = strrchr(rules_path, '/'), *ls = strrchr(list_path, '/');
    size_t rd = rs ? (size_t)(rs - rules_path) : 0, ld = ls ? (size_t)(ls - list_path) : 0;
    if (rd == ld && strncmp(rules_path, list_path, rd) == 0)
        return xstrdup(ls ? ls + 1 : list_path);
    if (list_path[0] == '/') return xstrdup(list_path);
    char *abs = realpath(list_path, NULL); /* the list file exists by now */
    return abs ? abs : xstrdup(list_path);
}

/* ------------------------------------------------------------------ main */

static void print_stats(FILE *f, const stats_t *s, const char *name, bool last)
{
    uint64_t pct[] = {10, 50, 90, 99, 999};
    uint64_t val[5];
    for (int q = 0; q < 5; q++) {
        uint64_t need = (s->messages * pct[q] + (q == 4 ? 999 : 99)) / (q == 4 ? 1000 : 100),
                 acc = 0;
        val[q] = 0;
        for (int i = 0; i <= MAX_CPS + 1; i++) {
            acc += s->len_hist[i];
            if (acc >= need && need) {
                val[q] = (uint64_t)i;
                break;
            }
        }
    }
    int mn = -1, mx = 0;
    for (int i = 0; i <= MAX_CPS + 1; i++)
        if (s->len_hist[i]) {
            if (mn < 0) mn = i;
            mx = i;
        }
    double m = s->messages ? (double)s->messages : 1;
    fprintf(f,
            "\"%s\":{\"messages\":%llu,\"length_cps\":{\"min\":%d,\"p10\":%llu,\"p50\":%llu,"
            "\"p90\":%llu,\"p99\":%llu,"
            "\"p999\":%llu,\"max\":%d,\"mean\":%.1f},\"mean_bytes\":%.1f,",
            name, (unsigned long long)s->messages, mn, (unsigned long long)val[0],
            (unsigned long long)val[1], (unsigned long long)val[2], (unsigned long long)val[3],
            (unsigned long long)val[4], mx, (double)s->cps_text / m, (double)s->bytes_text / m);
    fprintf(
        f,
        "\"non_ascii\":%llu,\"non_ascii_share\":%.4f,\"plain_profanity\":%llu,\"evasions\":%llu,"
        "\"evasion_share\":%.4f,\"profane_share\":%.4f,\"evasion_kinds\":{",
        (unsigned long long)s->non_ascii, (double)s->non_ascii / m, (unsigned long long)s->plain,
        (unsigned long long)s->evasion, (double)s->evasion / m,
        (double)(s->plain + s->evasion) / m);
    for (int i = 0; i < EV__COUNT; i++)
        fprintf(f, "%s\"%s\":%llu", i ? "," : "", EV_NAMES[i], (unsigned long long)s->ev_kind[i]);
    fprintf(f,
            "},\"links\":%llu,\"scam_links\":%llu,\"mentions\":%llu,\"mention_spam\":%llu,\"native_"
            "emote_msgs\":%llu,"
            "\"native_emotes\":%llu,\"text_emote_msgs\":%llu,\"foreign\":%llu,\"emoji\":%llu,"
            "\"caps\":%llu,\"zalgo\":%llu,"
            "\"repeated\":%llu,\"copypasta\":%llu,\"regex_bait\":%llu,\"commands\":%llu,\"exempt\":"
            "%llu,"
            "\"discord\":%llu,\"first_message\":%llu}%s",
            (unsigned long long)s->links, (unsigned long long)s->scam_links,
            (unsigned long long)s->mentions, (unsigned long long)s->mention_spam,
            (unsigned long long)s->native_emote_msgs, (unsigned long long)s->native_emotes,
            (unsigned long long)s->text_emote_msgs, (unsigned long long)s->foreign,
            (unsigned long long)s->emoji, (unsigned long long)s->caps, (unsigned long long)s->zalgo,
            (unsigned long long)s->repeated, (unsigned long long)s->copypasta,
            (unsigned long long)s->bait, (unsigned long long)s->commands,
            (unsigned long long)s->exempt, (unsigned long long)s->discord,
            (unsigned long long)s->first_message, last ? "" : ",");
}

static _Noreturn void usage(void)
{
    fputs(
        "usage: genstream --seed N --events N --out-events FILE --out-rules FILE --out-list FILE\n"
        "                 --words WORDLIST.json [WORDLIST.json ...]\n"
        "                 [--max-terms N (1000)] [--min-rating N (1)] [--stats-prefix N (100000)]\n"
        "                 [--out-stats FILE] [--out-truth FILE]\n",
        stderr);
    exit(2);
}

static uint64_t parse_u64(const char *s, const char *opt)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || *e || s[0] == '-' || !s[0]) die("bad number for %s", opt);
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    uint64_t seed = 42, events = 1000000, max_terms = 1000, prefix_n = 100000;
    int min_rating = 1;
    const char *out_events = NULL, *out_rules = NULL, *out_list = NULL, *out_stats = NULL,
               *out_truth = NULL;
    const char *words[32];
    int nwords = 0;
    bool have_seed = false, have_events = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), ""))
        if (!strcmp(a, "--seed")) {
            seed = parse_u64(NEXT(), a);
            have_seed = true;
        } else if (!strcmp(a, "--events")) {
            events = parse_u64(NEXT(), a);
            have_events = true;
        } else if (!strcmp(a, "--out-events"))
            out_events = NEXT();
        else if (!strcmp(a, "--out-rules"))
            out_rules = NEXT();
        else if (!strcmp(a, "--out-list"))
            out_list = NEXT();
        else if (!strcmp(a, "--out-stats"))
            out_stats = NEXT();
        else if (!strcmp(a, "--out-truth"))
            out_truth = NEXT();
        else if (!strcmp(a, "--max-terms"))
            max_terms = parse_u64(NEXT(), a);
        else if (!strcmp(a, "--min-rating"))
            min_rating = (int)parse_u64(NEXT(), a);
        else if (!strcmp(a, "--stats-prefix"))
            prefix_n = parse_u64(NEXT(), a);
        else if (!strcmp(a, "--words")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                if (nwords == (int)NELEM(words)) die("%s", "too many --words files");
                words[nwords++] = argv[++i];
            }
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            usage();
        else
            die("unknown option %s", a);
#undef NEXT
    }
    if (!have_seed || !have_events || !out_events || !out_rules || !out_list || nwords == 0)
        usage();

    /* ---- word list */
    for (int i = 0; i < nwords; i++)
        load_wordlist(words[i], min_rating);
    qsort(g_cands, g_ncands, sizeof *g_cands, cmp_cand);
    set_init(&g_termset, 1 << 14);
    g_terms = xmalloc((g_ncands + 1) * sizeof *g_terms);
    size_t candidates_unique = 0;
    {
        strset_t all;
        set_init(&all, 1 << 14);
        for (size_t i = 0; i < g_ncands; i++)
            if (set_add(&all, g_cands[i].term)) {
                candidates_unique++;
                if (g_nterms < max_terms) {
                    set_add(&g_termset, g_cands[i].term);
                    g_terms[g_nterms++] = g_cands[i].term;
                }
            }
    }
    if (g_nterms == 0) die("%s", "no terms in the word lists");
    qsort(g_terms, g_nterms, sizeof *g_terms, cmp_str);
    g_evadable = xmalloc(g_nterms * sizeof *g_evadable);
    for (size_t i = 0; i < g_nterms; i++) {
        const char *t = g_terms[i];
        size_t n = strlen(t);
        bool ok = n >= 3 && n <= 12;
        for (size_t j = 0; j < n && ok; j++)
            ok = t[j] >= 'a' && t[j] <= 'z';
        if (ok) g_evadable[g_nevadable++] = t;
    }
    g_popular_present = xmalloc(NELEM(POPULAR_PROFANITY) * sizeof(char *));
    for (size_t i = 0; i < NELEM(POPULAR_PROFANITY); i++)
        if (set_has_n(&g_termset, POPULAR_PROFANITY[i], strlen(POPULAR_PROFANITY[i])))
            g_popular_present[g_npopular_present++] = POPULAR_PROFANITY[i];

    FILE *lf = fopen(out_list, "wb");
    if (!lf) die("cannot write %s", out_list);
    fprintf(lf,
            "# whiply benchmark word list: %zu terms (of %zu unique candidates, rating >= %d), "
            "generated by "
            "bench/genstream.c\n",
            g_nterms, candidates_unique, min_rating);
    for (size_t i = 0; i < g_nterms; i++)
        fprintf(lf, "%s\n", g_terms[i]);
    if (fclose(lf)) die("cannot write %s", out_list);

    /* ---- vocabulary pools, scrubbed of list terms so injected profanity is the ground truth */
    make_pool(&P_FRAG, FRAGMENTS, NELEM(FRAGMENTS));
    make_pool(&P_NOUN, NOUNS, NELEM(NOUNS));
    make_pool(&P_ADJ, ADJS, NELEM(ADJS));
    make_pool(&P_VERB, VERBS, NELEM(VERBS));
    make_pool(&P_TAIL, TAILS, NELEM(TAILS));
    make_pool(&P_TMPL, TEMPLATES, NELEM(TEMPLATES));
    make_pool(&P_REACT, REACTIONS, NELEM(REACTIONS));
    for (size_t i = 0; i < NELEM(LANGS); i++)
        make_pool(&LANGS[i].pool, LANGS[i].src, LANGS[i].n);
    make_pool(&P_NAME_A, NAME_A, NELEM(NAME_A));
    make_pool(&P_NAME_B, NAME_B, NELEM(NAME_B));
    make_pool(&P_TEXTEMOTE, TEXT_EMOTES, NELEM(TEXT_EMOTES));
    make_pool(&P_BAIT, BAIT, NELEM(BAIT));
    for (size_t i = 0; i < NELEM(TWITCH_EMOTES); i++)
        if (!hits_list(TWITCH_EMOTES[i].name))
            g_twemote_ok[g_ntwemote_ok++] = (int)i;
        else
            g_scrubbed++;

    /* ---- events */
    static gen_t g;
    rng_seed(&g.r, seed);
    g.prefix_n = prefix_n;
    int64_t start_ms = (days_from_civil(2026, 11, 24) * 86400 + 11 * 3600) * 1000;
    make_world(&g.r, start_ms);

    /* ---- rules */
    FILE *rf = fopen(out_rules, "wb");
    if (!rf) die("cannot write %s", out_rules);
    char *ref = list_ref_for(out_rules, out_list);
    write_rules(rf, ref, seed, g_nterms);
    free(ref);
    if (fclose(rf)) die("cannot write %s", out_rules);

    FILE *tf = NULL;
    if (out_truth && !(tf = fopen(out_truth, "wb"))) die("cannot write %s", out_truth);
    FILE *ef = fopen(out_events, "wb");
    if (!ef) die("cannot write %s", out_events);
    static char iobuf[1 << 22];
    setvbuf(ef, iobuf, _IOFBF, sizeof iobuf);
    int64_t ts = start_ms;
    for (uint64_t i = 1; i <= events; i++) {
        /* arrivals: mostly 1-6 ms apart (~250 msg/s over 200 channels), sometimes a lull */
        ts += chance(&g.r, 900000) ? irange(&g.r, 1, 6) : irange(&g.r, 7, 40);
        gen_event(&g, ef, tf, i, ts);
    }
    if (fclose(ef)) die("cannot write %s", out_events);
    if (tf && fclose(tf)) die("cannot write %s", out_truth);

    /* ---- stats */
    for (int pass = 0; pass < 2; pass++) {
        FILE *sf = pass == 0 ? stderr : (out_stats ? fopen(out_stats, "wb") : NULL);
        if (!sf) continue;
        fprintf(sf,
                "{\"seed\":%llu,\"events\":%llu,\"terms\":%zu,\"term_candidates\":%zu,\"evadable_"
                "terms\":%zu,"
                "\"vocabulary_scrubbed\":%zu,\"regex_rules\":%zu,\"stats_prefix\":%llu,",
                (unsigned long long)seed, (unsigned long long)events, g_nterms, candidates_unique,
                g_nevadable, g_scrubbed, NELEM(RX), (unsigned long long)prefix_n);
        print_stats(sf, &g.all, "all", false);
        print_stats(sf, &g.prefix, "prefix", true);
        fputs("}\n", sf);
        if (sf != stderr) fclose(sf);
    }
    return 0;
}
