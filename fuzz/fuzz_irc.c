/* fuzz_irc.c - IRC lines (src/io/irc_parse.h): any bytes parse or are refused with a reason;
 * what parses points inside the line, and every tag value unescapes within its length and
 * escapes back to a value that unescapes to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "io/irc_parse.h"

static void inside(wh_str s, const unsigned char *data, size_t size)
{
    if (s.n &&
        ((const unsigned char *)s.p < data || (const unsigned char *)s.p + s.n > data + size))
        abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static wh_irc_msg m;
    const char *why = NULL;
    if (wh_irc_parse((const char *)data, size, &m, &why) != WH_OK) {
        if (!why || !*why) abort();
        return 0;
    }
    if (!m.command.n || m.nparams > WH_IRC_MAX_PARAMS || m.ntags > WH_IRC_MAX_TAGS) abort();
    inside(m.prefix, data, size);
    inside(m.nick, data, size);
    inside(m.user, data, size);
    inside(m.host, data, size);
    inside(m.command, data, size);
    for (uint32_t i = 0; i < m.nparams; i++)
        inside(m.params[i], data, size);
    wh_buf b;
    wh_buf_init(&b);
    for (uint32_t i = 0; i < m.ntags; i++) {
        inside(m.tags[i].key, data, size);
        inside(m.tags[i].value, data, size);
        char *out = malloc(m.tags[i].value.n + 1), *back = NULL;
        size_t n = wh_irc_tag_unescape(m.tags[i].value, out);
        if (n > m.tags[i].value.n) abort();
        b.len = 0;
        wh_irc_tag_escape(&b, out, n);
        back = malloc(b.len + 1);
        size_t n2 = wh_irc_tag_unescape((wh_str){b.p ? b.p : "", (uint32_t)b.len}, back);
        if (n2 != n || (n && memcmp(out, back, n))) abort();
        char key[WH_IRC_TAGS_MAX_LEN + 1];
        memcpy(key, m.tags[i].key.p, m.tags[i].key.n);
        key[m.tags[i].key.n] = 0;
        wh_str v;
        if (!wh_irc_tag_get(&m, key, &v)) abort(); /* a key parsed is a key found */
        free(out);
        free(back);
    }
    wh_buf_free(&b);
    if (m.nick.n && !wh_irc_name_eq(m.nick, m.nick)) abort();
    return 0;
}
