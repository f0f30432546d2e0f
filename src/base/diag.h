/* diag.h - diagnostics: problems found in a file (rules, config), each with its file, line
 * and column, printed sorted as "file:line:col: error: message" (as compilers do). */
#ifndef WH_DIAG_H
#define WH_DIAG_H

#include <stdint.h>

typedef struct {
    char *file;
    uint32_t line, col; /* 1-based; 0 when unknown */
    char *message;
} wh_diag;

typedef struct {
    wh_diag *v;
    uint32_t n, cap;
} wh_diags;

void wh_diags_add(wh_diags *d, const char *file, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void wh_diags_print(const wh_diags *d, void *fp);
/* The same lines as one malloc'd string (NULL when out of memory). */
char *wh_diags_text(const wh_diags *d);
void wh_diags_free(wh_diags *d);

#endif
