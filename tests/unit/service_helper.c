/* service_helper.c - see service_helper.h. */
#include "service_helper.h"

#include <stdio.h>
#include <string.h>

wh_service *th_service_open(wh_config *cfg, const char *dir, const char *rules_yaml,
                            const char *extra)
{
    char rules[600], yaml[2000];
    snprintf(rules, sizeof(rules), "%s/rules.yaml", dir);
    FILE *f = fopen(rules, "w");
    if (!f) return NULL;
    fputs(rules_yaml, f);
    fclose(f);
    snprintf(yaml, sizeof(yaml),
             "data: %s/data\nrules: %s\nthreads: 2\n%s"
             "store: {signing_key: none, checkpoints: none, preallocate: 0}\n",
             dir, rules, extra);
    wh_diags d = {0};
    if (wh_config_load_mem("test.yaml", yaml, strlen(yaml), cfg, &d) != WH_OK) return NULL;
    wh_error err;
    wh_service *s = wh_service_open(cfg, &err);
    if (!s) fprintf(stderr, "wh_service_open: %s\n", err.message);
    return s;
}
