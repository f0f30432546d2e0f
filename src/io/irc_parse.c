/* irc_parse.c - see irc_parse.h. */
#include "irc_parse.h"

#include <string.h>

static wh_status fail(const char **why, const char *what)
{
    if (why) *why = what;
    return WH_ESYNTAX;
}

/* A tag key: an optional '+', an optional vendor ("example.com/"), then letters, digits and
 * '-' (the spec's grammar; '/' and '.' are allowed for the vendor part). */
static bool key_ok(const char *k, size_t n)
{
    size_t i = k[0] == '+';
    if (i == n) return false;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '/' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

static wh_status parse_tags(const char *p, size_t n, wh_irc_msg *m, const char **why)
{
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && p[e] != ';')
            e++;
        if (e > i) { /* an empty item (";;" or a trailing ';') is skipped */
            const char *eq = memchr(p + i, '=', e - i);
            size_t kn = eq ? (size_t)(eq - (p + i)) : e - i;
            if (!kn) return fail(why, "a tag key is empty");
            if (!key_ok(p + i, kn)) return fail(why, "a tag key has a character keys may not have");
            if (m->ntags == WH_IRC_MAX_TAGS) return fail(why, "more tags than whiply reads (64)");
            wh_irc_tag *t = &m->tags[m->ntags++];
            t->key = (wh_str){p + i, (uint32_t)kn};
            t->value = eq ? (wh_str){eq + 1, (uint32_t)(e - i - kn - 1)} : (wh_str){p + e, 0};
        }
        i = e + 1;
    }
    return WH_OK;
}

static void split_prefix(wh_irc_msg *m)
{
    const char *p = m->prefix.p;
    size_t n = m->prefix.n;
    const char *bang = memchr(p, '!', n), *at = memchr(p, '@', n);
    if (at && bang && at < bang) bang = NULL; /* "nick@host!x": the '!' is in the host */
    size_t nick_end = bang ? (size_t)(bang - p) : at ? (size_t)(at - p) : n;
    m->nick = (wh_str){p, (uint32_t)nick_end};
    if (bang) {
        size_t ue = at ? (size_t)(at - p) : n;
        m->user = (wh_str){bang + 1, (uint32_t)(ue - nick_end - 1)};
    }
    if (at) m->host = (wh_str){at + 1, (uint32_t)(n - (size_t)(at - p) - 1)};
}

wh_status wh_irc_parse(const char *line, size_t n, wh_irc_msg *m, const char **why)
{
    memset(m, 0, sizeof(*m));
    if (n && line[n - 1] == '\n') n--;
    if (n && line[n - 1] == '\r') n--;
    if (memchr(line, 0, n)) return fail(why, "a NUL byte in the line");
    if (memchr(line, '\r', n) || memchr(line, '\n', n))
        return fail(why, "a CR or LF inside the line");
    size_t i = 0;
    if (n && line[0] == '@') {
        const char *sp = memchr(line, ' ', n);
        if (!sp) return fail(why, "tags and nothing after them");
        size_t tn = (size_t)(sp - line) - 1;
        if (tn > WH_IRC_TAGS_MAX_LEN) return fail(why, "the tags are longer than 8191 bytes");
        wh_status st = parse_tags(line + 1, tn, m, why);
        if (st != WH_OK) return st;
        i = tn + 1;
    }
    while (i < n && line[i] == ' ')
        i++;
    if (n - i > WH_IRC_REST_MAX_LEN) return fail(why, "the line is longer than 512 bytes");
    if (i < n && line[i] == ':') {
        size_t s = ++i;
        while (i < n && line[i] != ' ')
            i++;
        if (i == s) return fail(why, "an empty prefix");
        m->prefix = (wh_str){line + s, (uint32_t)(i - s)};
        split_prefix(m);
        while (i < n && line[i] == ' ')
            i++;
    }
    size_t s = i;
    while (i < n && line[i] != ' ')
        i++;
    if (i == s) return fail(why, "no command");
    bool digits = i - s == 3, letters = true;
    for (size_t k = s; k < i; k++) {
        char c = line[k];
        if (!(c >= '0' && c <= '9')) digits = false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) letters = false;
    }
    if (!digits && !letters) return fail(why, "a command is letters or three digits");
    m->command = (wh_str){line + s, (uint32_t)(i - s)};
    for (;;) {
        while (i < n && line[i] == ' ')
            i++;
        if (i >= n) break;
        if (line[i] == ':' || m->nparams == WH_IRC_MAX_PARAMS - 1) {
            i += line[i] == ':';
            m->params[m->nparams++] = (wh_str){line + i, (uint32_t)(n - i)};
            m->trailing = true;
            break;
        }
        s = i;
        while (i < n && line[i] != ' ')
            i++;
        m->params[m->nparams++] = (wh_str){line + s, (uint32_t)(i - s)};
    }
    return WH_OK;
}

bool wh_irc_tag_get(const wh_irc_msg *m, const char *key, wh_str *value)
{
    size_t kn = strlen(key);
    for (uint32_t i = m->ntags; i-- > 0;)
        if (wh_str_eq(m->tags[i].key, key, kn)) {
            *value = m->tags[i].value;
            return true;
        }
    return false;
}

size_t wh_irc_tag_unescape(wh_str v, char *out)
{
    size_t o = 0;
    for (uint32_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (++i == v.n) break; /* a lone '\' at the end is dropped */
        static const char from[] = ":s\\rn", to[] = "; \\\r\n";
        const char *k = memchr(from, v.p[i], sizeof(from) - 1);
        out[o++] = k ? to[k - from] : v.p[i];
    }
    return o;
}

void wh_irc_tag_escape(wh_buf *b, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (v[i]) {
        case ';':
            wh_buf_append(b, "\\:", 2);
            break;
        case ' ':
            wh_buf_append(b, "\\s", 2);
            break;
        case '\\':
            wh_buf_append(b, "\\\\", 2);
            break;
        case '\r':
            wh_buf_append(b, "\\r", 2);
            break;
        case '\n':
            wh_buf_append(b, "\\n", 2);
            break;
        default:
            wh_buf_putc(b, v[i]);
        }
    }
}

bool wh_irc_is(const wh_irc_msg *m, const char *c)
{
    size_t n = strlen(c);
    if (m->command.n != n) return false;
    for (size_t i = 0; i < n; i++)
        if ((m->command.p[i] | 0x20) != (c[i] | 0x20)) return false;
    return true;
}

static char fold(char c)
{
    if (c >= 'A' && c <= 'Z') return (char)(c + 32);
    switch (c) {
    case '[':
        return '{';
    case ']':
        return '}';
    case '\\':
        return '|';
    case '~':
        return '^';
    default:
        return c;
    }
}

bool wh_irc_name_eq(wh_str a, wh_str b)
{
    if (a.n != b.n) return false;
    for (uint32_t i = 0; i < a.n; i++)
        if (fold(a.p[i]) != fold(b.p[i])) return false;
    return true;
}
