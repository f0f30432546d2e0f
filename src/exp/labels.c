/* labels.c - a sampled review's labels file, one line at a time (labels.h). */
#include "labels.h"

#include <stdio.h>

#include "base/json.h"

#define MAX_TOKENS 512 /* a review export line is a dozen; nested values count too */

static const struct {
    const char *name;
    bool literal; /* the JSON literal, not the string */
    wh_label label;
} label_names[] = {
    {"harmful", false, WH_LABEL_HARMFUL}, {"removed", false, WH_LABEL_HARMFUL},
    {"remove", false, WH_LABEL_HARMFUL},  {"true", true, WH_LABEL_HARMFUL},
    {"ok", false, WH_LABEL_OK},           {"approved", false, WH_LABEL_OK},
    {"false", true, WH_LABEL_OK},
};

static bool key_is(const char *s, const wh_jtok *t, const char *k)
{
    size_t n = strlen(k);
    return !t->escaped && (size_t)(t->end - t->start) == n && !memcmp(s + t->start, k, n);
}

/* The token's text (a string unescaped, a primitive as written) into out[0..cap). */
static bool token_text(const char *s, const wh_jtok *t, char *out, size_t cap, size_t *n)
{
    size_t len = (size_t)(t->end - t->start), bad;
    if (len >= cap) return false;
    if (t->type == WH_J_STRING && t->escaped) {
        if (!wh_json_unescape(s + t->start, len, out, n, &bad)) return false;
    } else {
        memcpy(out, s + t->start, len);
        *n = len;
    }
    out[*n] = 0;
    return true;
}

wh_status wh_label_decode(const char *line, size_t len, char *id, wh_label *label, wh_error *e)
{
    *label = WH_LABEL_NONE;
    id[0] = 0;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len) return WH_OK;
    wh_jtok tok[MAX_TOKENS];
    size_t pos = 0;
    const char *what = NULL;
    int nt = wh_json_tokenize(line, len, tok, MAX_TOKENS, 32, &pos, &what);
    if (nt < 0) {
        char why[160];
        wh_json_describe(nt, what, pos, 32, why, sizeof(why));
        return wh_error_set(e, WH_ESYNTAX, "not JSON: %s", why);
    }
    if (tok[0].type != WH_J_OBJECT) return wh_error_set(e, WH_ESYNTAX, "not a JSON object");
    int id_tok = -1, label_tok = -1;
    for (int k = 1; k < nt; k = tok[k + 1].next) {
        if (key_is(line, &tok[k], "id")) {
            if (id_tok >= 0) return wh_error_set(e, WH_ESYNTAX, "\"id\" given twice");
            id_tok = k + 1;
        } else if (key_is(line, &tok[k], "label")) {
            if (label_tok >= 0) return wh_error_set(e, WH_ESYNTAX, "\"label\" given twice");
            label_tok = k + 1;
        }
    }
    if (id_tok < 0) return wh_error_set(e, WH_ESYNTAX, "no \"id\"");
    if (label_tok < 0) return wh_error_set(e, WH_ESYNTAX, "no \"label\"");
    const wh_jtok *it = &tok[id_tok], *lt = &tok[label_tok];
    size_t n = 0;
    if ((it->type != WH_J_STRING && it->type != WH_J_PRIMITIVE) ||
        (it->type == WH_J_PRIMITIVE &&
         !(line[it->start] == '-' || (line[it->start] >= '0' && line[it->start] <= '9'))))
        return wh_error_set(e, WH_ESYNTAX, "\"id\" is not a string or a number");
    if (!token_text(line, it, id, WH_LABEL_ID_MAX + 1, &n))
        return wh_error_set(e, WH_ESYNTAX, "\"id\" is over %d bytes or badly escaped",
                            WH_LABEL_ID_MAX);
    if (n == 0) return wh_error_set(e, WH_ESYNTAX, "\"id\" is empty");
    if (memchr(id, 0, n)) return wh_error_set(e, WH_ESYNTAX, "\"id\" holds a NUL");
    char lv[32];
    bool ok = (lt->type == WH_J_STRING || lt->type == WH_J_PRIMITIVE) &&
              token_text(line, lt, lv, sizeof(lv), &n);
    for (size_t k = 0; ok && k < WH_ARRAY_LEN(label_names); k++)
        if (!strcmp(lv, label_names[k].name) &&
            label_names[k].literal == (lt->type == WH_J_PRIMITIVE)) {
            *label = label_names[k].label;
            return WH_OK;
        }
    id[0] = 0;
    return wh_error_set(e, WH_ESYNTAX,
                        "\"label\" must be \"harmful\", \"removed\", \"remove\" or true (harmful), "
                        "\"ok\", \"approved\" or false (fine)");
}
