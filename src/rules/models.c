/* models.c - classifiers: the `models:` section and the `score` predicate (see loader.h,
 * docs/ml.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "text/utf8.h"

/* ---- classifiers: `models:` and the `score` predicate ---- */

static const char *const model_keys[] = {"file", NULL};

void ld_parse_models(ld_t *L, struct fy_node *n)
{
    if (!ld_map_start(L, n, "'models'")) return;
    int cnt = fy_node_mapping_item_count(n);
    L->rs->models = wh_arena_alloc(L->a, sizeof(wh_rmodel) * (size_t)(cnt > 0 ? cnt : 1));
    struct fy_node *kn, *v;
    char *name;
    FOR_PAIRS(L, n, kn, v, name)
    {
        if (!ld_valid_id(name)) {
            ERR(L, kn, "model name '%s' must be letters, digits, '-' or '_'", name);
            continue;
        }
        struct fy_node *fnode = NULL;
        if (v && fy_node_get_type(v) == FYNT_SCALAR) {
            fnode = v; /* spam: models/spam.whm */
        } else if (ld_map_start(L, v, "a model")) {
            void *it2 = NULL;
            struct fy_node_pair *p2;
            while ((p2 = fy_node_mapping_iterate(v, &it2))) {
                struct fy_node *k2 = fy_node_pair_key(p2);
                char *key = ld_scalar(L, k2, "a key");
                if (key && !strcmp(key, "file"))
                    fnode = fy_node_pair_value(p2);
                else if (key)
                    ld_unknown_key(L, k2, key, model_keys, "a model");
            }
        } else {
            continue;
        }
        char *rel = fnode ? ld_scalar(L, fnode, "a model file") : NULL;
        if (!rel) {
            if (!fnode) ERR(L, v, "model '%s' needs a file: {file: models/%s.whm}", name, name);
            continue;
        }
        for (uint32_t i = 0; i < L->rs->nmodels; i++)
            if (!strcmp(L->rs->models[i].name, name))
                ERR(L, kn, "model '%s' is defined twice", name);
        size_t pl = strlen(L->dir) + strlen(rel) + 2;
        char *path = wh_arena_alloc(L->a, pl);
        if (rel[0] == '/')
            snprintf(path, pl, "%s", rel);
        else
            snprintf(path, pl, "%s/%s", L->dir, rel);
        wh_error err;
        wh_model *m = wh_model_open(path, &err);
        if (!m) {
            ERR(L, fnode, "model '%s': %s: %s", name, path, err.message);
            continue;
        }
        XXH3_64bits_update(L->hash, wh_model_checksum(m), 32);
        wh_rmodel *rm = &L->rs->models[L->rs->nmodels++];
        rm->name = name;
        rm->path = path;
        rm->model = m;
        rm->slot0 = L->rs->nscores;
        L->rs->nscores += wh_model_nlabels(m);
    }
    wh_ruleset *rs = L->rs;
    rs->score_names = wh_arena_alloc(L->a, sizeof(char *) * (rs->nscores ? rs->nscores : 1));
    for (uint32_t i = 0; i < rs->nmodels; i++) {
        const wh_rmodel *rm = &rs->models[i];
        uint32_t nl = wh_model_nlabels(rm->model);
        for (uint32_t l = 0; l < nl; l++) {
            const char *lab = wh_model_label(rm->model, l);
            size_t k = strlen(rm->name) + strlen(lab) + 2;
            char *sn = wh_arena_alloc(L->a, k);
            if (nl == 1)
                snprintf(sn, k, "%s", rm->name);
            else
                snprintf(sn, k, "%s.%s", rm->name, lab);
            rs->score_names[rm->slot0 + l] = sn;
        }
    }
}

static const char *const score_keys[] = {"model", "label", "gt", "gte", "lt", "lte", NULL};

/* score: {model: spam, gte: 0.9} (and label: for a model of several labels). */
wh_cond *ld_parse_score(ld_t *L, struct fy_node *kn, struct fy_node *n)
{
    if (!ld_map_start(L, n, "'score'")) return NULL;
    struct fy_node *k, *v, *mnode = NULL, *lnode = NULL;
    char *key;
    wh_cmp cmps[4];
    struct fy_node *cnodes[4];
    uint32_t ncmp = 0, nbounds = 0;
    FOR_PAIRS(L, n, k, v, key)
    {
        static const struct {
            const char *k;
            wh_cmp_op op;
        } ops[] = {{"gt", WH_OP_GT}, {"gte", WH_OP_GE}, {"lt", WH_OP_LT}, {"lte", WH_OP_LE}};
        if (!strcmp(key, "model")) {
            mnode = v;
            continue;
        }
        if (!strcmp(key, "label")) {
            lnode = v;
            continue;
        }
        bool found = false;
        for (size_t i = 0; i < WH_ARRAY_LEN(ops) && !found; i++) {
            if (strcmp(key, ops[i].k)) continue;
            found = true;
            nbounds++;
            double x;
            if (ncmp < 4 && ld_get_number(L, v, "a score bound", 0, 1, false, &x)) {
                cnodes[ncmp] = k;
                cmps[ncmp++] = (wh_cmp){ops[i].op, x};
            }
        }
        if (!found) ld_unknown_key(L, k, key, score_keys, "'score'");
    }
    char *mname = mnode ? ld_scalar(L, mnode, "'model'") : NULL;
    if (!mnode) ERR(L, n, "'score' needs the model it reads: {model: spam, gte: 0.9}");
    if (!nbounds) ERR(L, n, "'score' needs a bound: gt, gte, lt or lte (a number from 0 to 1)");
    if (!mname || !ncmp) return NULL;
    const wh_rmodel *rm = NULL;
    for (uint32_t i = 0; i < L->rs->nmodels && !rm; i++)
        if (!strcmp(L->rs->models[i].name, mname)) rm = &L->rs->models[i];
    if (!rm) {
        ERR(L, mnode, "unknown model '%s' (define it under 'models:')", mname);
        return NULL;
    }
    uint32_t nl = wh_model_nlabels(rm->model);
    int32_t lab = nl == 1 ? 0 : wh_model_find_label(rm->model, mname);
    if (lnode) {
        char *ls = ld_scalar(L, lnode, "'label'");
        lab = ls ? wh_model_find_label(rm->model, ls) : -1;
        if (ls && lab < 0) {
            wh_buf b;
            wh_buf_init(&b);
            for (uint32_t i = 0; i < nl; i++)
                wh_buf_printf(&b, "%s%s", i ? ", " : "", wh_model_label(rm->model, i));
            ERR(L, lnode, "model '%s' has no label '%s' (its labels: %s)", mname, ls,
                wh_buf_cstr(&b));
            wh_buf_free(&b);
            return NULL;
        }
    } else if (lab < 0) {
        ERR(L, n, "model '%s' has %u labels: name one with 'label:'", mname, nl);
        return NULL;
    }
    if (lab < 0) return NULL;
    wh_cond *all = NULL;
    if (ncmp > 1) {
        all = ld_new_cond(L, WH_C_ALL, kn);
        all->kids = wh_arena_alloc(L->a, sizeof(wh_cond *) * ncmp);
    }
    wh_cond *c = NULL;
    for (uint32_t i = 0; i < ncmp; i++) {
        c = ld_new_cond(L, WH_C_SCORE, cnodes[i]);
        c->slot = rm->slot0 + (uint32_t)lab;
        c->cmp = cmps[i];
        if (all) all->kids[all->nkids++] = c;
    }
    return all ? all : c;
}
