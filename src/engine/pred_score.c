/* pred_score.c - score: a classifier's probability for a label, compared (see pred.h,
 * docs/ml.md). */
#include "pred.h"

#include <string.h>

static bool score_holds(eval_ctx *c, const wh_cond *n)
{
    return c->an->scores && wh_cmp_holds(n->cmp, c->an->scores[n->slot]);
}

static void score_explain(wh_buf *out, const eval_ctx *c, const wh_cond *n)
{
    const char *sn = c->rs->score_names[n->slot];
    wh_buf_puts(out, "score\",\"model\":");
    wh_buf_json_str(out, sn, strlen(sn));
    wh_buf_puts(out, ",\"value\":");
    wh_json_score(out, c->an->scores[n->slot]);
}

static const wh_pred_eval eval_score = {.holds = score_holds, .explain = score_explain};

/* ---- how the key is read (the models themselves: src/rules/models.c) ---- */

static wh_cond *pred_score(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    return ld_parse_score(L, m->key, v);
}

const wh_pred_def wh_preds_score[] = {
    {"score", WH_C_SCORE, 0, 0, pred_score, &eval_score},
    {NULL, 0, 0, 0, NULL, NULL},
};
