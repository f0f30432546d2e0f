/* framed.h - for fuzz targets of files that start with magic bytes and end in an XXH3-64
 * checksum the fuzzer could never guess: the input becomes the body of such a file (magic
 * added in front, the correct checksum, little-endian, behind), so that the parser behind
 * both checks gets explored. An input that already starts with the magic is used as it is,
 * which covers the checks themselves. Returns a malloc'd copy (never NULL for a size the
 * fuzzer gives) and its length. */
#ifndef WH_FUZZ_FRAMED_H
#define WH_FUZZ_FRAMED_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

static unsigned char *framed(const unsigned char *data, size_t size, const char magic[8],
                             size_t *len)
{
    unsigned char *buf;
    if (size >= 8 && !memcmp(data, magic, 8)) {
        buf = malloc(size ? size : 1);
        if (buf) memcpy(buf, data, size);
        *len = size;
        return buf;
    }
    *len = 8 + size + 8;
    buf = malloc(*len);
    if (!buf) return NULL;
    memcpy(buf, magic, 8);
    memcpy(buf + 8, data, size);
    uint64_t sum = XXH3_64bits(buf, 8 + size);
    for (int i = 0; i < 8; i++)
        buf[8 + size + i] = (unsigned char)(sum >> (8 * i));
    return buf;
}

#endif
