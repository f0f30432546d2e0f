/* subject.c - see subject.h. */
#include "subject.h"

#include <string.h>

#include "state/shard.h"

uint32_t wh_bus_partition(wh_str platform, wh_str channel, uint32_t npart)
{
    return wh_shard_of(wh_chan_key(platform, channel), npart ? npart : 1);
}

static bool literal(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

void wh_subject_token(wh_buf *out, wh_str name)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!name.n) {
        wh_buf_putc(out, '~');
        return;
    }
    for (size_t i = 0; i < name.n; i++) {
        unsigned char c = (unsigned char)name.p[i];
        if (literal(c)) {
            wh_buf_putc(out, (char)c);
        } else {
            char e[3] = {'~', hex[c >> 4], hex[c & 15]};
            wh_buf_append(out, e, 3);
        }
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool wh_subject_token_decode(const char *s, size_t n, wh_buf *out)
{
    if (n == 1 && s[0] == '~') return true; /* the empty name */
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (literal(c)) {
            wh_buf_putc(out, (char)c);
            continue;
        }
        if (c != '~' || i + 2 >= n) return false;
        int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0) return false;
        unsigned char b = (unsigned char)(hi << 4 | lo);
        if (literal(b)) return false; /* one name, one encoding */
        wh_buf_putc(out, (char)b);
        i += 2;
    }
    return true;
}

static void subject(wh_buf *out, const char *kind, int64_t part, wh_str platform, wh_str channel)
{
    out->len = 0;
    wh_buf_puts(out, "whiply.");
    wh_buf_puts(out, kind);
    wh_buf_putc(out, '.');
    if (part >= 0) {
        wh_buf_u64(out, (uint64_t)part);
        wh_buf_putc(out, '.');
    }
    wh_subject_token(out, platform);
    wh_buf_putc(out, '.');
    wh_subject_token(out, channel);
    wh_buf_cstr(out);
}

void wh_subject_events(wh_buf *out, uint32_t part, wh_str platform, wh_str channel)
{
    subject(out, "events", part, platform, channel);
}

void wh_subject_decisions(wh_buf *out, uint32_t part, wh_str platform, wh_str channel)
{
    subject(out, "decisions", part, platform, channel);
}

void wh_subject_actions(wh_buf *out, wh_str platform, wh_str channel)
{
    subject(out, "actions", -1, platform, channel);
}

void wh_bus_msg_id(wh_buf *out, wh_str id)
{
    out->len = 0;
    wh_buf_json_str(out, id.p ? id.p : "", id.n);
    if (out->len >= 2) { /* drop the quotes */
        memmove(out->p, out->p + 1, out->len - 2);
        out->len -= 2;
    }
    wh_buf_cstr(out);
}
