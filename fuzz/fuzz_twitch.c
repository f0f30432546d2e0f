/* fuzz_twitch.c - the Twitch adapter's parsers (src/io/twitch_parse.c): EventSub payloads,
 * Helix error answers, OAuth token answers, badges. Any bytes are parsed or refused with a
 * reason; every event line written is one JSON object ending in a newline. */
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "io/twitch.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *s = (const char *)data;
    wh_buf out;
    wh_buf_init(&out);
    uint32_t n = 0;
    char why[200] = "";
    wh_status st = wh_eventsub_events("twitch", "es-1", s, size, &out, &n, why, sizeof(why));
    if (st != WH_OK && (!why[0] || out.len)) abort(); /* a reason, and nothing half-written */
    if (st == WH_OK && n) {
        if (!out.len || out.p[out.len - 1] != '\n') abort();
        static wh_jtok tok[4096];
        size_t pos;
        const char *what;
        int nt = wh_json_tokenize(out.p, out.len - 1, tok, 4096, 32, &pos, &what);
        if (nt <= 0 || tok[0].type != WH_J_OBJECT) abort(); /* valid JSON for the ingest */
    }
    char msg[128], a[128], r[128];
    (void)wh_helix_error(s, size, msg, sizeof(msg));
    if (wh_twitch_token_parse(s, size, a, sizeof(a), r, sizeof(r)) && !a[0]) abort();
    out.len = 0;
    wh_twitch_roles(&out, (wh_str){s, (uint32_t)size}, size & 1);
    wh_buf_free(&out);
    return 0;
}
