/* fuzz_session.c - what the dashboard parses from a request: the Cookie header
 * (wh_cookie_find), the sign-in body and a manual action's body (src/serve/request.c), and the
 * Origin check of a state-changing request (wh_session_check_origin).
 *
 * Checks: a cookie value found lies inside the header and holds no ';'; a parsed sign-in has
 * a non-empty token without control characters; a parsed action is one of warn, timeout, ban,
 * unban, with a duration exactly when it is a timeout (1 to 14 days), and non-empty channel and
 * user; a refusal names a code and a message; the Origin check accepts only an Origin naming
 * the Host with the session's CSRF token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/request.h"
#include "serve/session.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_session: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *v = NULL;
    size_t vl = 0;
    if (wh_cookie_find(s, size, WH_SESSION_COOKIE, &v, &vl)) {
        CHECK(v >= s && v + vl <= s + size);
        CHECK(!memchr(v, ';', vl));
    }
    const char *code = NULL;
    char msg[256] = "";
    wh_signin_request si;
    if (wh_signin_request_parse(s, size, &si, &code, msg, sizeof(msg))) {
        CHECK(si.len > 0 && si.len == strlen(si.token));
        for (size_t i = 0; i < si.len; i++)
            CHECK((unsigned char)si.token[i] >= 0x20 && si.token[i] != 0x7f);
    } else {
        CHECK(code && *code && msg[0]);
    }
    wh_action_request a;
    code = NULL;
    msg[0] = 0;
    if (wh_action_request_parse(s, size, &a, &code, msg, sizeof(msg))) {
        bool timeout = !strcmp(a.action, "timeout");
        CHECK(timeout || !strcmp(a.action, "warn") || !strcmp(a.action, "ban") ||
              !strcmp(a.action, "unban"));
        CHECK(timeout ? a.duration_s >= 1 && a.duration_s <= 1209600 : a.duration_s == 0);
        CHECK(a.channel[0] && a.user[0]);
    } else {
        CHECK(code && *code && msg[0]);
    }
    /* the input, cut in three, as Origin, Host and X-CSRF-Token */
    char buf[3][128];
    size_t third = size / 3;
    for (int i = 0; i < 3; i++) {
        size_t n = i < 2 ? third : size - 2 * third;
        if (n > sizeof(buf[i]) - 1) n = sizeof(buf[i]) - 1;
        memcpy(buf[i], s + i * third, n);
        buf[i][n] = 0;
    }
    wh_session ses = {.scopes = 2};
    memset(ses.csrf, 'a', WH_SESSION_ID_HEX);
    if (!wh_session_check_origin(&ses, buf[0], buf[1], buf[2])) {
        const char *sep = strstr(buf[0], "://");
        CHECK(sep && !strcmp(sep + 3, buf[1]) && !strcmp(buf[2], ses.csrf));
    }
    return 0;
}
