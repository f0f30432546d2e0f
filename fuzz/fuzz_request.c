/* fuzz_request.c - the HTTP API's small JSON bodies: a rate-limit request and a review
 * verdict and a panic switch (src/serve/request.c), each parsed from the same bytes.
 *
 * Checks: a parsed rate-limit request has a non-empty UTF-8 key of at most 1024 bytes
 * without NUL, a cost in range, and either a quota (limit >= 1, a known period) or a valid
 * GCRA limit; a parsed verdict has a non-empty moderator; a refusal always names a code and
 * a message. The request line's path (wh_path_decode): a decoded path is never longer than
 * the input, and one accepted holds no control byte and is UTF-8; a refusal says why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/request.h"
#include "text/utf8.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_request: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *code = NULL;
    char msg[256] = "";
    wh_rl_request r;
    if (wh_rl_request_parse(s, size, &r, &code, msg, sizeof(msg))) {
        CHECK(r.keylen >= 1 && r.keylen <= WH_RL_KEY_MAX && strlen(r.key) == r.keylen);
        CHECK(wh_utf8_invalid_at(r.key, r.keylen) == (size_t)-1);
        CHECK(r.cost >= 0 && r.cost <= 1000000);
        if (r.quota)
            CHECK(r.limit >= 1 && r.per >= 0 && r.per < WH_Q__COUNT);
        else
            CHECK(wh_gcra_limit_valid(&r.gcra));
    } else {
        CHECK(code && *code && msg[0]);
    }
    wh_review_request v;
    code = NULL;
    msg[0] = 0;
    if (wh_review_request_parse(s, size, &v, &code, msg, sizeof(msg))) {
        CHECK(v.moderator[0] && strlen(v.moderator) < sizeof(v.moderator));
        CHECK(!v.has_note || strlen(v.note) < sizeof(v.note));
    } else {
        CHECK(code && *code && msg[0]);
    }
    wh_panic_request pr;
    code = NULL;
    msg[0] = 0;
    if (wh_panic_request_parse(s, size, &pr, &code, msg, sizeof(msg))) {
        CHECK(pr.for_s >= 0 && pr.for_s <= WH_PANIC_MAX_FOR_S);
        CHECK(strlen(pr.platform) < sizeof(pr.platform));
        CHECK(!pr.has_note || strlen(pr.note) < sizeof(pr.note));
    } else {
        CHECK(code && *code && msg[0]);
    }
    char *path = malloc(size + 1), why[200];
    size_t plen = 0;
    if (path) {
        bool ok = wh_path_decode(s, size, path, &plen, why, sizeof(why));
        CHECK(plen <= size && path[plen] == 0);
        if (ok) {
            CHECK(!why[0] && !wh_bad_bytes(path, plen, false, why, sizeof(why)));
            CHECK(strlen(path) == plen);
        } else {
            CHECK(why[0]);
        }
        free(path);
    }
    return 0;
}
