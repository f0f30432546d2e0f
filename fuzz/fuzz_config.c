/* fuzz_config.c - YAML text -> wh_config_load_mem (the daemon's whiply.yaml), its `webhooks:`
 * and `alerts:` lists (config_hooks.c) included.
 *
 * Checks: the config loads exactly when there are no diagnostics; a loaded config has every
 * option inside its documented bounds, every token a scope, every webhook a name, an http(s)
 * URL, events and a key of at least 16 bytes, every alert a name, a URL and events;
 * everything is freed on every path (LeakSanitizer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/config.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_config: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_diags d = {0};
    wh_config c;
    wh_status st = wh_config_load_mem("fuzz.yaml", (const char *)data, size, &c, &d);
    if (st == WH_OK) {
        CHECK(d.n == 0);
        CHECK(c.listen && c.data && c.rules);
        CHECK(c.threads >= 1 && c.threads <= 64);
        CHECK(c.limits.body >= 1024 && c.limits.events >= 1 && c.limits.text <= 64 * 1024);
        CHECK(c.limits.json_depth >= 2 && c.limits.json_depth <= 32);
        for (uint32_t i = 0; i < c.ntokens; i++)
            CHECK(c.tokens[i].scopes != 0 && c.tokens[i].name[0]);
        CHECK(c.outbox.base_ms <= c.outbox.cap_ms && c.outbox.attempts >= 1);
        for (uint32_t i = 0; i < c.nwebhooks; i++) {
            const wh_webhook_cfg *w = &c.webhooks[i];
            CHECK(w->name && w->url && !strncmp(w->url, "http", 4) && w->events);
            CHECK(w->secret_n >= 16 && w->secret_n <= sizeof(w->secret));
        }
        for (uint32_t i = 0; i < c.nalerts; i++)
            CHECK(c.alerts[i].name && c.alerts[i].url && c.alerts[i].events);
    } else {
        CHECK(d.n > 0 || st == WH_ENOMEM);
        for (uint32_t i = 0; i < d.n; i++)
            CHECK(d.v[i].message && d.v[i].file);
    }
    wh_config_free(&c);
    wh_diags_free(&d);
    return 0;
}
