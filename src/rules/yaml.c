/* yaml.c - see yaml.h. */
#include "yaml.h"

#include <string.h>

#include "text/utf8.h"

/* libfyaml 0.7 has marks on tokens, not nodes: a collection's position is the position
 * of its first scalar, which is where a reader's eye goes anyway. */
static const struct fy_mark *node_mark(struct fy_node *n, int depth)
{
    if (!n || depth > 64) return NULL;
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        struct fy_token *t = fy_node_get_scalar_token(n);
        return t ? fy_token_start_mark(t) : NULL;
    }
    case FYNT_MAPPING: {
        struct fy_node_pair *pr = fy_node_mapping_get_by_index(n, 0);
        return pr ? node_mark(fy_node_pair_key(pr), depth + 1) : NULL;
    }
    case FYNT_SEQUENCE:
        return node_mark(fy_node_sequence_get_by_index(n, 0), depth + 1);
    }
    return NULL;
}

uint32_t wh_yaml_line(struct fy_node *n)
{
    const struct fy_mark *m = node_mark(n, 0);
    return m ? (uint32_t)m->line + 1 : 0;
}
uint32_t wh_yaml_col(struct fy_node *n)
{
    const struct fy_mark *m = node_mark(n, 0);
    return m ? (uint32_t)m->column + 1 : 0;
}

struct fy_document *wh_yaml_parse(const char *path, const char *text, size_t tlen, const char *what,
                                  wh_diags *diags)
{
    struct fy_diag *fyd = NULL;
    struct fy_document *doc = NULL;
    size_t bad = wh_utf8_invalid_at(text, tlen);
    if (bad != (size_t)-1) {
        wh_diags_add(diags, path, 0, 0, "invalid UTF-8 at byte %zu", bad + 1);
        goto fail;
    }
    /* YAML allows no control characters but tab and line breaks (YAML 1.2, c-printable);
     * libfyaml 0.7.12 crashes on some NUL bytes instead of reporting them. */
    for (size_t i = 0, line = 1, col = 1; i < tlen; i++, col++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            line++;
            col = 0;
        } else if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
            wh_diags_add(diags, path, (uint32_t)line, (uint32_t)col,
                         "control character 0x%02x is not allowed in YAML", c);
            goto fail;
        }
    }
    /* Explicit "? " keys (complex mapping keys) are never needed in a rules file, and some
     * malformed ones crash libfyaml 0.7.12 (found by fuzz_rules, at a line's start and after
     * "key: "): refuse a "?" indicator wherever a node may start (line start, after "- ",
     * ": ", "[", "{" or ","), outside quotes and comments. A "?" inside a scalar stays. Lines
     * end at "\n", "\r\n" or a lone "\r", as YAML's do (a "?" after a lone "\r" crashed it). */
    for (size_t i = 0, line = 1; i < tlen; line++) {
        size_t ls = i;
        char q = 0;       /* inside '...' or "..." */
        char prev = '\n'; /* the last character that is not a space or tab, '\n' at start */
        for (; i < tlen && text[i] != '\n' && text[i] != '\r'; i++) {
            char c = text[i];
            if (q) {
                if (c == '\\' && q == '"' && i + 1 < tlen)
                    i++;
                else if (c == q)
                    q = 0;
                prev = c;
                continue;
            }
            if (c == '#' && (i == ls || text[i - 1] == ' ' || text[i - 1] == '\t')) {
                while (i < tlen && text[i] != '\n' && text[i] != '\r')
                    i++;
                break;
            }
            bool at_node = prev == '\n' || prev == '[' || prev == '{' || prev == ',' ||
                           ((prev == '-' || prev == ':') && i > ls &&
                            (text[i - 1] == ' ' || text[i - 1] == '\t'));
            if (c == '?' && at_node && (i + 1 == tlen || strchr(" \t\r\n", text[i + 1]))) {
                wh_diags_add(diags, path, (uint32_t)line, (uint32_t)(i - ls + 1),
                             "explicit '?' mapping keys are not supported in %s", what);
                goto fail;
            }
            if ((c == '"' || c == '\'') && at_node) q = c;
            if (c != ' ' && c != '\t') prev = c;
        }
        if (i + 1 < tlen && text[i] == '\r' && text[i + 1] == '\n') i++;
        i++;
    }
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = NULL;
    dcfg.colorize = false;
    fyd = fy_diag_create(&dcfg);
    if (!fyd) goto fail;
    fy_diag_set_collect_errors(fyd, true);
    struct fy_parse_cfg pcfg = {
        .search_path = "", .flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG, .diag = fyd};
    doc = fy_document_build_from_string(&pcfg, text, tlen);
    if (!doc || fy_diag_got_error(fyd)) {
        void *it = NULL;
        struct fy_diag_error *e;
        bool any = false;
        while ((e = fy_diag_errors_iterate(fyd, &it))) {
            wh_diags_add(diags, path, (uint32_t)e->line + 1, (uint32_t)e->column + 1, "YAML: %s",
                         e->msg);
            any = true;
        }
        if (!any) wh_diags_add(diags, path, 0, 0, "YAML: the file could not be parsed");
        goto fail;
    }
    fy_diag_destroy(fyd);
    return doc;
fail:
    if (doc) fy_document_destroy(doc);
    if (fyd) fy_diag_destroy(fyd);
    return NULL;
}
