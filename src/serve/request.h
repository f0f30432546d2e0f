/* request.h - decoding the small JSON bodies of the HTTP API: a rate-limit request and a
 * moderator's review verdict. Separate from http.c so that they can be fuzzed
 * (fuzz/fuzz_request.c) without a server. */
#ifndef WH_REQUEST_H
#define WH_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/gcra.h"
#include "state/ratelimit.h"

#define WH_RL_KEY_MAX 1024

typedef struct {
    char key[WH_RL_KEY_MAX + 1]; /* UTF-8, no NUL inside */
    size_t keylen;
    int64_t cost;        /* 0..1000000, default 1 */
    bool quota;          /* a quota (per, limit), else a GCRA limit */
    wh_quota_period per; /* quota */
    int64_t limit;       /* quota: >= 1 */
    wh_gcra_limit gcra;  /* GCRA: valid (wh_gcra_limit_valid) */
} wh_rl_request;

typedef struct {
    char moderator[256]; /* UTF-8, not empty */
    char note[2048];     /* UTF-8 */
    bool has_note;
} wh_review_request;

/* Each returns true when the body is valid; else false with *code (bad_json, bad_field,
 * bad_utf8) and msg (what is wrong and where) set. */
bool wh_rl_request_parse(const char *s, size_t n, wh_rl_request *r, const char **code, char *msg,
                         size_t msglen);
bool wh_review_request_parse(const char *s, size_t n, wh_review_request *r, const char **code,
                             char *msg, size_t msglen);

#endif
