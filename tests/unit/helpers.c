/* helpers.c - see helpers.h. */
#define _GNU_SOURCE
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"

/* th_write_tmp's folder, removed (with its files) when the process exits. */
static char tmp_dir[256];

static void remove_tmp_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp_dir);
}

const char *th_write_tmp(const char *name, const char *text)
{
    static char paths[8][512];
    static int k;
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/whiply-test-XXXXXX");
        if (!mkdtemp(tmp_dir)) T_FAIL("mkdtemp failed");
        atexit(remove_tmp_dir); /* each case runs in a process of its own: so does its folder */
    }
    const char *dir = tmp_dir;
    char *p = paths[k++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) T_FAIL("cannot write %s", p);
    fputs(text, f);
    fclose(f);
    return p;
}

static char *diag_text(wh_diags *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    wh_diags_print(d, f);
    fclose(f);
    return buf;
}

wh_ruleset *th_rules(const char *yaml)
{
    const char *p = th_write_tmp("rules.yaml", yaml);
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts o = {.cache_dir = NULL, .compile = true};
    if (wh_ruleset_load(p, &o, &d, &rs) != WH_OK) {
        char *t = diag_text(&d);
        static char copy[900];
        snprintf(copy, sizeof(copy), "%s", t ? t : "");
        free(t);
        wh_diags_free(&d);
        T_FAIL("rules do not load:\n%s", copy);
    }
    wh_diags_free(&d);
    return rs;
}

char *th_lint(const char *yaml)
{
    const char *p = th_write_tmp("lint.yaml", yaml);
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts o = {.cache_dir = NULL, .compile = true, .lint = true};
    wh_ruleset_load(p, &o, &d, &rs);
    char *t = diag_text(&d);
    wh_diags_free(&d);
    wh_ruleset_release(rs);
    return t;
}

static const char *decide(wh_ruleset *rs, const char *line, bool explain)
{
    static char out[65536];
    wh_engine_opts eo = {.explain = explain};
    wh_worker *w = wh_worker_new(rs, &eo);
    if (!w) T_FAIL("worker");
    wh_buf b;
    wh_buf_init(&b);
    wh_worker_line(w, line, strlen(line), 1, 0, &b);
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.p ? b.p : "");
    wh_buf_free(&b);
    wh_worker_free(w);
    return out;
}

const char *th_decide(wh_ruleset *rs, const char *line)
{
    return decide(rs, line, false);
}

const char *th_decide_explain(wh_ruleset *rs, const char *line)
{
    return decide(rs, line, true);
}

const char *th_msg(const char *text)
{
    static char out[8][70000];
    static int k;
    wh_buf b;
    wh_buf_init(&b);
    wh_buf_puts(&b, "{\"id\":\"t\",\"platform\":\"twitch\",\"channel\":\"#c\",\"text\":");
    wh_buf_json_str(&b, text, strlen(text));
    wh_buf_puts(&b, "}");
    char *o = out[k++ % 8];
    snprintf(o, 70000, "%.*s", (int)b.len, b.p);
    wh_buf_free(&b);
    return o;
}
