/* json.h - a validating, zero-copy JSON tokenizer for the decode hot path.
 *
 * It replaces jsmn (see docs/architecture.md for the measurement): one pass that both
 * tokenizes and validates (RFC 8259 separators, literals, numbers, escapes, no raw control
 * characters in strings, a depth limit), scanning string bodies 16 bytes at a time.
 * Tokens point into the input; string tokens exclude their quotes (as jsmn's do). */
#ifndef WH_JSON_H
#define WH_JSON_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { WH_J_OBJECT = 1, WH_J_ARRAY, WH_J_STRING, WH_J_PRIMITIVE } wh_jtype;

typedef struct {
    uint8_t type;    /* wh_jtype */
    uint8_t escaped; /* strings: contains a backslash escape */
    int32_t start, end;
    int32_t size; /* objects: number of keys; arrays: number of items */
    int32_t next; /* index of the token after this one's subtree */
} wh_jtok;

enum { WH_J_ENOMEM = -1, WH_J_EINVAL = -2, WH_J_EDEPTH = -3 };

/* Tokenizes s[0..n). Returns the number of tokens, or a negative WH_J_* code with *err_pos
 * (byte offset) and *err_what (a short description) set. Whitespace may surround the single
 * top-level value. */
int wh_json_tokenize(const char *s, size_t n, wh_jtok *tok, int cap, int max_depth, size_t *err_pos,
                     const char **err_what);

/* A sentence for a tokenizer error (code, err_what, err_pos as returned), e.g. "missing or
 * unexpected ',', ':' or bracket at byte 17" (1-based byte). */
void wh_json_describe(int code, const char *what, size_t pos, int max_depth, char *out, size_t n);

/* The value of the top-level key of a small JSON object (at most 256 tokens, nesting
 * WH_J_GET_DEPTH), unescaped into out (NUL-terminated): false when there is no such key, it is
 * not a string, or it does not fit in cap. For objects we wrote or bounded ones (an event's
 * meta, an API request), not for the hot path. */
#define WH_J_GET_DEPTH 8
bool wh_json_get_string(const char *js, size_t n, const char *key, char *out, size_t cap);

#endif
