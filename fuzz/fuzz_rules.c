/* fuzz_rules.c - YAML text -> wh_ruleset_load_mem (compile=true, no cache).
 *
 * base_dir is a directory that does not exist, so `file:` lists fail cleanly instead of
 * reading whatever the fuzzer names. Diagnostics and the ruleset are always freed, so
 * LeakSanitizer reports anything the loader forgets on an error path. Checks: a ruleset is
 * returned exactly when there are no diagnostics, and every diagnostic has a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_rules: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts o = {.cache_dir = NULL, .compile = true};
    wh_status st = wh_ruleset_load_mem("fuzz.yaml", "/nonexistent-whiply-fuzz/rules",
                                       (const char *)data, size, &o, &d, &rs);
    if (st == WH_OK) {
        CHECK(rs != NULL);
        CHECK(d.n == 0);
        CHECK(rs->hash[16] == 0 && strlen(rs->hash) == 16);
        for (uint32_t i = 0; i < rs->nrules; i++)
            CHECK(rs->rules[i].id != NULL);
        for (uint32_t i = 0; i < rs->npats; i++) {
            CHECK(rs->pats[i].group < rs->ngroups);
            CHECK(rs->pats[i].rule < rs->nrules);
        }
    } else {
        CHECK(rs == NULL);
        CHECK(d.n > 0 || st == WH_ENOMEM);
    }
    for (uint32_t i = 0; i < d.n; i++)
        CHECK(d.v[i].message != NULL);
    wh_diags_free(&d);
    wh_ruleset_release(rs);
    return 0;
}
