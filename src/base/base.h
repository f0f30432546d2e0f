/* base.h - status codes, string slices, arenas, growable buffers, time, JSON string
 * unescaping.
 *
 * Everything here is dependency-free. Ownership: an arena owns every
 * block it hands out; wh_arena_reset() frees them all in one step (the per-event
 * memory model of ARCHITECTURE.md). */
#ifndef WH_BASE_H
#define WH_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

typedef enum {
    WH_OK = 0,
    WH_ENOMEM,
    WH_EINVAL,
    WH_EIO,
    WH_ELIMIT,
    WH_ESYNTAX,
    WH_EUTF8,
    WH_ECORRUPT,     /* stored data does not match what vouches for it (the audit chain) */
    WH_EBUSY,        /* backpressure: a queue is full; nothing was done, try again later */
    WH_EUNAVAILABLE, /* a service it needs failed (the audit store) */
    WH_ERULES,       /* the rules do not load (the diagnostics say why) */
} wh_status;

/* The one status of whiply's C code (as nats.c's natsStatus): every fallible call returns
 * one, and fills an optional wh_error with what went wrong. */
const char *wh_status_str(wh_status st);

/* For the implementations behind the wh_error wrappers: GCC must not analyse them across the
 * call (the wrapper's constant message size turns the safe truncations of their snprintf
 * calls into warnings); clang has no noipa and does not warn. */
#if defined(__clang__)
#define WH_NOIPA __attribute__((noinline))
#else
#define WH_NOIPA __attribute__((noipa))
#endif

/* What went wrong: a status and a message that names what and where ("cannot write
 * /x/state.snap: No space left on device", "rules.yaml:3:5: ..."). */
typedef struct {
    wh_status code;
    char message[1024];
} wh_error;

/* Sets e (when not NULL) and returns code, so that `return wh_error_set(e, WH_EIO, ...)`
 * reads as one step. */
wh_status wh_error_set(wh_error *e, wh_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A byte slice; not NUL-terminated unless said otherwise. */
typedef struct {
    const char *p;
    uint32_t n;
} wh_str;

#define WH_STR_NULL ((wh_str){NULL, 0})
static inline bool wh_str_eq(wh_str a, const char *b, size_t bn)
{
    return a.n == bn && (bn == 0 || __builtin_memcmp(a.p, b, bn) == 0);
}
#define WH_STR_EQ_LIT(s, lit) wh_str_eq((s), (lit), sizeof(lit) - 1)

/* ---- arena ---------------------------------------------------------------- */
typedef struct wh_arena_chunk wh_arena_chunk;
typedef struct {
    wh_arena_chunk *head;  /* current chunk */
    wh_arena_chunk *spare; /* kept after reset so the hot path never mallocs */
    size_t chunk_size;
} wh_arena;

void wh_arena_init(wh_arena *a, size_t chunk_size);
void *wh_arena_alloc(wh_arena *a, size_t n); /* 8-byte aligned; NULL on OOM */
char *wh_arena_strndup(wh_arena *a, const char *s, size_t n);
void wh_arena_reset(wh_arena *a);
void wh_arena_free(wh_arena *a);

/* ---- growable byte buffer --------------------------------------------------- */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom; /* sticky: set once an append failed */
} wh_buf;

void wh_buf_init(wh_buf *b);
void wh_buf_free(wh_buf *b);
/* Room for extra more bytes (and a NUL); false once out of memory. The common case (room
 * already there) is inline: decisions are written a few bytes at a time. */
bool wh_buf_grow(wh_buf *b, size_t extra);
static inline bool wh_buf_reserve(wh_buf *b, size_t extra)
{
    if (__builtin_expect(!b->oom && b->len + extra + 1 <= b->cap, 1)) return true;
    return wh_buf_grow(b, extra);
}
static inline void wh_buf_append(wh_buf *b, const void *p, size_t n)
{
    if (n == 0 || !wh_buf_reserve(b, n)) return; /* p may be NULL when n is 0 */
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
static inline void wh_buf_putc(wh_buf *b, char c)
{
    if (!wh_buf_reserve(b, 1)) return;
    b->p[b->len++] = c;
}
static inline void wh_buf_puts(wh_buf *b, const char *s)
{
    wh_buf_append(b, s, strlen(s));
}
void wh_buf_printf(wh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wh_buf_u64(wh_buf *b, uint64_t v);
void wh_buf_i64(wh_buf *b, int64_t v);
/* Appends s as a JSON string literal (with quotes), escaping as RFC 8259 requires. */
void wh_buf_json_str(wh_buf *b, const char *s, size_t n);
const char *wh_buf_cstr(wh_buf *b); /* NUL-terminates (not counted in len) */

/* ---- time ------------------------------------------------------------------- */
/* Parses RFC 3339 ("2026-11-24T11:00:00.123Z", offsets allowed) into unix ms. */
bool wh_parse_rfc3339(const char *s, size_t n, int64_t *ms_out);
/* Parses a duration such as "10s", "5m", "1h30m", "7d", "250ms", "2w" into ms. */
bool wh_parse_duration(const char *s, size_t n, int64_t *ms_out);
int64_t wh_now_ms(void);
uint64_t wh_mono_ns(void);
/* The wall-clock time ms milliseconds from now, as pthread_cond_timedwait wants it. */
struct timespec wh_deadline_ms(int64_t ms);
/* 64 random bits for hash seeds (getrandom; a clock-and-address mix when the kernel has no
 * entropy yet, still different per process and per call). */
uint64_t wh_random_seed(void);

/* splitmix64: its finalizer (a bijective mix of 64 bits), and the next value of the sequence
 * a seed starts (the same seed gives the same values on every machine). */
static inline uint64_t wh_splitmix64_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline uint64_t wh_splitmix64(uint64_t *state)
{
    return wh_splitmix64_mix(*state += 0x9e3779b97f4a7c15ULL);
}

/* Lowercase hex of p[0..n) into out (2n + 1 bytes, NUL-terminated). */
void wh_hex_encode(const uint8_t *p, size_t n, char *out);
/* Exactly 2 * n hex digits (either case) of s[0..len) into out[0..n); false otherwise. */
bool wh_hex_decode(const char *s, size_t len, uint8_t *out, size_t n);

/* Encodes cp (must be a valid scalar value) into out; returns its length (1 to 4). */
unsigned wh_utf8_encode(uint32_t cp, char *out);

/* Decodes the body of a JSON string (between the quotes) into out (room for n bytes is
 * enough: escapes never grow). Returns false on a bad escape or a lone surrogate, with
 * *bad_at set to the offset of the escape. */
bool wh_json_unescape(const char *p, size_t n, char *out, size_t *out_len, size_t *bad_at);

/* ---- misc ------------------------------------------------------------------ */
size_t wh_levenshtein(const char *a, const char *b); /* small strings only */
/* Reads a whole file into a NUL-terminated malloc'd buffer. */
wh_status wh_read_file(const char *path, char **out, size_t *len);
/* The same for files named by an operator (the config, rules, lists): only a regular file
 * (WH_EINVAL otherwise: a FIFO, a directory, a device such as /dev/urandom) of at most max
 * bytes (WH_ELIMIT otherwise; never more than max + 1 bytes are read). WH_EIO with errno
 * when it cannot be opened or read. */
wh_status wh_read_file_max(const char *path, size_t max, char **out, size_t *len);
/* Why wh_read_file_max failed, for an error message ("not a regular file", "larger than
 * the limit of 16 MiB", strerror(errno)); buf (n bytes) may hold the text. */
const char *wh_read_file_why(wh_status st, size_t max, char *buf, size_t n);

#define WH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define WH_UNUSED(x) (void)(x)

#endif
