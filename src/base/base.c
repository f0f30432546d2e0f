/* base.c - see base.h. */
#define _GNU_SOURCE
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *wh_status_str(wh_status st)
{
    static const char *names[] = {
        [WH_OK] = "ok",
        [WH_ENOMEM] = "out of memory",
        [WH_EINVAL] = "invalid argument",
        [WH_EIO] = "i/o error",
        [WH_ELIMIT] = "limit exceeded",
        [WH_ESYNTAX] = "syntax error",
        [WH_EUTF8] = "invalid UTF-8",
        [WH_ECORRUPT] = "stored data does not match the audit trail",
        [WH_EBUSY] = "busy",
        [WH_EUNAVAILABLE] = "unavailable",
        [WH_ERULES] = "the rules do not load",
    };
    if ((unsigned)st < WH_ARRAY_LEN(names) && names[st]) return names[st];
    return "unknown status";
}

wh_status wh_error_set(wh_error *e, wh_status code, const char *fmt, ...)
{
    if (e) {
        e->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- arena ---- */
struct wh_arena_chunk {
    wh_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

void wh_arena_init(wh_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->spare = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
}

void *wh_arena_alloc(wh_arena *a, size_t n)
{
    if (n > SIZE_MAX / 4) return NULL; /* no rounding or header overflow below */
    n = (n + 15) & ~(size_t)15;
    wh_arena_chunk *c = a->head;
    if (c && c->cap - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    /* Take the spare chunk if it is big enough, otherwise allocate. */
    if (a->spare && a->spare->cap >= n) {
        c = a->spare;
        a->spare = c->next;
    } else {
        size_t cap = n > a->chunk_size ? n : a->chunk_size;
        c = malloc(sizeof(*c) + cap);
        if (!c) return NULL;
        c->cap = cap;
    }
    c->used = n;
    c->next = a->head;
    a->head = c;
    return c->data;
}

char *wh_arena_strndup(wh_arena *a, const char *s, size_t n)
{
    char *p = wh_arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void wh_arena_reset(wh_arena *a)
{
    /* Keep chunks of the standard size for reuse; free oversized ones. */
    wh_arena_chunk *c = a->head;
    while (c) {
        wh_arena_chunk *next = c->next;
        if (c->cap == a->chunk_size) {
            c->next = a->spare;
            a->spare = c;
        } else {
            free(c);
        }
        c = next;
    }
    a->head = NULL;
}

void wh_arena_free(wh_arena *a)
{
    wh_arena_reset(a);
    for (wh_arena_chunk *c = a->spare, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    a->spare = NULL;
}

/* ---- buffer ---- */
void wh_buf_init(wh_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void wh_buf_free(wh_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

bool wh_buf_grow(wh_buf *b, size_t extra)
{
    if (b->oom) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void wh_buf_printf(wh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(tmp)) {
        wh_buf_append(b, tmp, (size_t)n);
        return;
    }
    if (!wh_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void wh_buf_u64(wh_buf *b, uint64_t v)
{
    char tmp[24];
    int i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    wh_buf_append(b, tmp + i, sizeof(tmp) - (size_t)i);
}

void wh_buf_i64(wh_buf *b, int64_t v)
{
    if (v < 0) {
        wh_buf_putc(b, '-');
        wh_buf_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        wh_buf_u64(b, (uint64_t)v);
    }
}

void wh_buf_json_str(wh_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!wh_buf_reserve(b, n + 2)) return;
    wh_buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        wh_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            wh_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            wh_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            wh_buf_append(b, "\\n", 2);
            break;
        case '\r':
            wh_buf_append(b, "\\r", 2);
            break;
        case '\t':
            wh_buf_append(b, "\\t", 2);
            break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            wh_buf_append(b, e, 6);
        }
        }
    }
    wh_buf_append(b, s + run, n - run);
    wh_buf_putc(b, '"');
}

const char *wh_buf_cstr(wh_buf *b)
{
    if (!wh_buf_reserve(b, 0)) return "";
    b->p[b->len] = 0;
    return b->p;
}

/* ---- JSON strings ---- */
static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0) return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

unsigned wh_utf8_encode(uint32_t cp, char *o)
{
    unsigned char *u = (unsigned char *)o;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | (cp >> 18));
    u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

bool wh_json_unescape(const char *p, size_t n, char *o, size_t *out_len, size_t *bad_at)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') {
            o[w++] = p[i];
            continue;
        }
        size_t esc = i;
        if (++i >= n) goto bad;
        switch (p[i]) {
        case '"':
            o[w++] = '"';
            break;
        case '\\':
            o[w++] = '\\';
            break;
        case '/':
            o[w++] = '/';
            break;
        case 'b':
            o[w++] = '\b';
            break;
        case 'f':
            o[w++] = '\f';
            break;
        case 'n':
            o[w++] = '\n';
            break;
        case 'r':
            o[w++] = '\r';
            break;
        case 't':
            o[w++] = '\t';
            break;
        case 'u': {
            uint32_t cp;
            if (i + 4 >= n || !hex4(p + i + 1, &cp)) goto bad;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (i + 6 >= n || p[i + 1] != '\\' || p[i + 2] != 'u' || !hex4(p + i + 3, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    goto bad;
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                goto bad;
            }
            w += wh_utf8_encode(cp, o + w); /* at most 4 bytes from at least 6 escaped */
            break;
        }
        default:
            goto bad;
        }
        continue;
    bad:
        *bad_at = esc;
        return false;
    }
    *out_len = w;
    return true;
}

/* ---- time ---- */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: exact for the proleptic Gregorian calendar. */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static inline bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) return false;
        v = v * 10 + (int)d;
    }
    *out = v;
    return true;
}

bool wh_parse_rfc3339(const char *s, size_t n, int64_t *ms_out)
{
    int Y, M, D, h, m, sec;
    if (n < 20) return false;
    if (!digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
        !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 || sec > 60) return false;
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M == 2 && D == 29 && !leap) return false;
    size_t i = 19;
    int64_t ms = 0;
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        int64_t scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start) return false;
    }
    int64_t off_min = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    if (i != n) return false;
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t secs = days * 86400 + h * 3600 + m * 60 + (sec > 59 ? 59 : sec) - off_min * 60;
    *ms_out = secs * 1000 + ms;
    return true;
}

bool wh_parse_duration(const char *s, size_t n, int64_t *ms_out)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 604800000}};
    size_t i = 0;
    int64_t total = 0;
    if (n == 0) return false;
    while (i < n) {
        int64_t v = 0;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (s[i] - '0');
            if (v > (int64_t)1 << 40) return false;
            i++;
        }
        if (i == start) return false;
        size_t us = i;
        while (i < n && s[i] >= 'a' && s[i] <= 'z')
            i++;
        size_t ul = i - us;
        if (ul == 0) return false;
        bool found = false;
        for (size_t k = 0; k < WH_ARRAY_LEN(units); k++) {
            if (strlen(units[k].unit) == ul && memcmp(units[k].unit, s + us, ul) == 0) {
                if (v > (INT64_MAX / 4) / units[k].ms || total > INT64_MAX / 4) return false;
                total += v * units[k].ms;
                found = true;
                break;
            }
        }
        if (!found) return false;
    }
    *ms_out = total;
    return true;
}

int64_t wh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t wh_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t wh_levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = prev + cost;
            if (row[j] + 1 < v) v = row[j] + 1;
            if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
            row[j] = v;
            prev = cur;
        }
    }
    return row[lb];
}

wh_status wh_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return WH_EIO;
    wh_buf b;
    wh_buf_init(&b);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        wh_buf_append(&b, tmp, n);
    bool err = ferror(f);
    fclose(f);
    if (err) {
        wh_buf_free(&b);
        return WH_EIO;
    }
    if (b.oom) {
        wh_buf_free(&b);
        return WH_ENOMEM;
    }
    wh_buf_cstr(&b);
    if (!b.p) {
        b.p = calloc(1, 1);
        if (!b.p) return WH_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return WH_OK;
}

wh_status wh_read_file_max(const char *path, size_t max, char **out, size_t *len)
{
    /* O_NONBLOCK: opening a FIFO without a writer would wait forever; it is refused below
     * like every file that is not a regular one (a device such as /dev/urandom never ends). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return WH_EIO;
    struct stat st;
    wh_status ret = WH_EIO;
    char *p = NULL;
    size_t n = 0;
    int saved;
    if (fstat(fd, &st) != 0) goto fail;
    if (!S_ISREG(st.st_mode)) {
        ret = WH_EINVAL;
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        ret = WH_ELIMIT;
        goto fail;
    }
    /* The size is a hint (the file may grow while it is read; /proc files say 0): the read
     * is bounded by max itself, one byte past it telling that the file is over. */
    size_t cap = (size_t)st.st_size + 1 <= max ? (size_t)st.st_size + 1 : max + 1;
    if (cap < 4096) cap = 4096 <= max + 1 ? 4096 : max + 1;
    if (!(p = malloc(cap + 1))) {
        ret = WH_ENOMEM;
        goto fail;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                ret = WH_ELIMIT;
                goto fail;
            }
            size_t ncap = cap * 2 <= max + 1 ? cap * 2 : max + 1;
            char *q = realloc(p, ncap + 1);
            if (!q) {
                ret = WH_ENOMEM;
                goto fail;
            }
            p = q;
            cap = ncap;
        }
        ssize_t r = read(fd, p + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) goto fail;
        if (r == 0) break;
        n += (size_t)r;
    }
    if (n > max) {
        ret = WH_ELIMIT;
        goto fail;
    }
    close(fd);
    p[n] = 0;
    *out = p;
    *len = n;
    return WH_OK;
fail:
    saved = errno; /* close and free may change it */
    close(fd);
    free(p);
    errno = ret == WH_EINVAL ? EINVAL : ret == WH_ELIMIT ? EFBIG : saved;
    return ret;
}

const char *wh_read_file_why(wh_status st, size_t max, char *buf, size_t n)
{
    if (st == WH_EINVAL) return "not a regular file";
    if (st == WH_ELIMIT) {
        if (max % (1024 * 1024) == 0)
            snprintf(buf, n, "larger than the limit of %zu MiB", max / (1024 * 1024));
        else
            snprintf(buf, n, "larger than the limit of %zu bytes", max);
        return buf;
    }
    if (st == WH_ENOMEM) return "out of memory";
    return strerror(errno ? errno : EIO);
}

struct timespec wh_deadline_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

uint64_t wh_random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == (ssize_t)sizeof(s)) return s;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&s;
    return wh_splitmix64_mix(z);
}

void wh_hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

bool wh_hex_decode(const char *s, size_t len, uint8_t *out, size_t n)
{
    if (len != 2 * n) return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}
