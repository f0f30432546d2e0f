/* utf8.h - UTF-8 validation and decoding (RFC 3629: no overlongs, no surrogates). */
#ifndef WH_UTF8_H
#define WH_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Returns the byte offset of the first invalid sequence, or (size_t)-1 when valid. */
size_t wh_utf8_invalid_at(const char *s, size_t n);
/* True when every byte is < 0x80. */
bool wh_is_ascii(const char *s, size_t n);
/* Decodes one code point from valid UTF-8; returns its length in bytes. */
static inline unsigned wh_utf8_decode(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}
/* wh_utf8_encode lives in base (the JSON unescaper needs it too). */
#include "base/base.h"

#endif
