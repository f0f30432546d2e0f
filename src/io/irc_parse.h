/* irc_parse.h - one IRC line into its parts (RFC 1459/2812 framing with IRCv3 message tags).
 *
 *   [@tags SPACE] [:prefix SPACE] command [params...] [SPACE :trailing]
 *
 * Pure: no I/O, no allocation. Every slice points into the line given; tag values are kept
 * escaped (the message-tags spec's \: \s \\ \r \n) and unescaped on demand with
 * wh_irc_tag_unescape, so that parsing a line costs no copy. A prefix nick!user@host is
 * split; a server name (no '!' and no '@') is in nick with user and host empty.
 *
 * Limits (the specs'): the tag section at most 8191 bytes, the rest at most 510 bytes
 * (512 with CR LF) -- a server's longer line is refused, not cut; at most 15 parameters
 * (RFC 2812: a 15th middle parameter takes the rest of the line, as a trailing one); at most
 * WH_IRC_MAX_TAGS tags (the rest are refused as a whole line: a server sends few). */
#ifndef WH_IO_IRC_PARSE_H
#define WH_IO_IRC_PARSE_H

#include "base/base.h"

#define WH_IRC_MAX_PARAMS 15
#define WH_IRC_MAX_TAGS 64
#define WH_IRC_TAGS_MAX_LEN 8191 /* the tag section, '@' and the space excluded */
#define WH_IRC_REST_MAX_LEN 510  /* the line after the tags, CR LF excluded */

typedef struct {
    wh_str key;   /* with its client-only '+' and vendor/ when present */
    wh_str value; /* escaped, as on the wire; empty for a tag without '=' or with "=" */
} wh_irc_tag;

typedef struct {
    wh_irc_tag tags[WH_IRC_MAX_TAGS];
    uint32_t ntags;
    wh_str prefix;           /* without ':'; empty when the line has none */
    wh_str nick, user, host; /* the prefix split */
    wh_str command;          /* a word of letters, or three digits */
    wh_str params[WH_IRC_MAX_PARAMS];
    uint32_t nparams;
    bool trailing; /* the last parameter came after " :" (it may hold spaces, or be empty) */
} wh_irc_msg;

/* Parses line[0..n) (CR LF, or a bare LF, at the end are ignored). WH_OK, or WH_ESYNTAX with
 * *why (when not NULL) a static sentence saying what is wrong ("no command", "a tag key is
 * empty", ...). m is filled only as far as the parse went on failure. */
wh_status wh_irc_parse(const char *line, size_t n, wh_irc_msg *m, const char **why);

/* The value of the tag key (the last one when a key is repeated, as the spec asks);
 * false when the line has no such tag. */
bool wh_irc_tag_get(const wh_irc_msg *m, const char *key, wh_str *value);

/* Unescapes a tag value into out (at most v.n bytes are written; out may not alias v).
 * Returns the length. \: is ';', \s ' ', \\ '\', \r CR, \n LF, '\' before any other
 * character is dropped, and a lone '\' at the end is dropped. */
size_t wh_irc_tag_unescape(wh_str v, char *out);
/* Appends v escaped to b (the reverse). */
void wh_irc_tag_escape(wh_buf *b, const char *v, size_t n);

/* True when the command is c (IRC commands are case-insensitive). */
bool wh_irc_is(const wh_irc_msg *m, const char *c);

/* RFC 1459 case mapping (the default CASEMAPPING): A-Z and []\~ fold to a-z and {}|^. Used
 * to compare nicks and channels ("is this KICK about me?"). */
bool wh_irc_name_eq(wh_str a, wh_str b);

#endif
