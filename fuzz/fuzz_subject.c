/* fuzz_subject.c - bus subject tokens (src/io/subject.h): any bytes decode or are refused,
 * and what decodes encodes back to the same token; any name encodes to a token that decodes
 * back to it. */
#include <stdlib.h>
#include <string.h>

#include "io/subject.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    wh_buf a, b;
    wh_buf_init(&a);
    wh_buf_init(&b);
    if (wh_subject_token_decode((const char *)data, size, &a)) {
        wh_subject_token(&b, (wh_str){a.p ? a.p : "", a.len});
        if (b.len != size || memcmp(b.p, data, size)) abort(); /* one name, one token */
    }
    a.len = b.len = 0;
    wh_subject_token(&a, (wh_str){(const char *)data, size});
    if (!wh_subject_token_decode(a.p, a.len, &b) || b.len != size ||
        (size && memcmp(b.p, data, size)))
        abort();
    (void)wh_bus_partition((wh_str){(const char *)data, size / 2},
                           (wh_str){(const char *)data + size / 2, size - size / 2}, 7);
    wh_buf_free(&a);
    wh_buf_free(&b);
    return 0;
}
