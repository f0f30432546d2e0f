/* fuzz_checkpoint.c - a line of the signed checkpoints file (src/store/sign.c), which the
 * daemon reads at start and `whiply audit verify --checkpoints` reads whole: a file anyone
 * with the disk may have written.
 *
 * Checks: a parsed checkpoint written back as JSON parses to the same checkpoint, and the
 * verification of a parsed checkpoint against a fixed key runs (and fails unless signed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sign.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_checkpoint: check failed: %s (%s:%d)\n", #c, __FILE__,           \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_checkpoint cp, again;
    if (!wh_checkpoint_parse((const char *)data, size, &cp)) return 0;
    wh_buf b;
    wh_buf_init(&b);
    wh_checkpoint_json(&cp, &b);
    CHECK(!b.oom);
    CHECK(wh_checkpoint_parse(b.p, b.len, &again));
    CHECK(again.seq == cp.seq && again.time_ms == cp.time_ms);
    CHECK(!memcmp(again.head, cp.head, 32) && !memcmp(again.key_id, cp.key_id, 8));
    CHECK(!memcmp(again.sig, cp.sig, 64));
    wh_buf_free(&b);
    static const uint8_t pub[32] = {1, 2, 3};
    (void)wh_checkpoint_verify(pub, &cp);
    return 0;
}
