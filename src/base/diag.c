/* diag.c - see diag.h. */
#define _GNU_SOURCE
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wh_diags_add(wh_diags *d, const char *file, uint32_t line, uint32_t col, const char *fmt, ...)
{
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 16;
        wh_diag *v = realloc(d->v, sizeof(*v) * cap);
        if (!v) return;
        d->v = v;
        d->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    wh_diag *x = &d->v[d->n++];
    x->file = strdup(file ? file : "<rules>");
    x->line = line;
    x->col = col;
    x->message = msg;
}

static int diag_cmp(const void *a, const void *b)
{
    const wh_diag *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c) return c;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return x->col < y->col ? -1 : x->col > y->col;
}

void wh_diags_print(const wh_diags *d, void *fp)
{
    if (d->n > 1) qsort(d->v, d->n, sizeof(wh_diag), diag_cmp);
    for (uint32_t i = 0; i < d->n; i++) {
        const wh_diag *x = &d->v[i];
        if (x->line)
            fprintf(fp, "%s:%u:%u: error: %s\n", x->file, x->line, x->col,
                    x->message ? x->message : "?");
        else
            fprintf(fp, "%s: error: %s\n", x->file, x->message ? x->message : "?");
    }
}

char *wh_diags_text(const wh_diags *d)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    wh_diags_print(d, f);
    fclose(f);
    return text;
}

void wh_diags_free(wh_diags *d)
{
    for (uint32_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].message);
    }
    free(d->v);
    memset(d, 0, sizeof(*d));
}
