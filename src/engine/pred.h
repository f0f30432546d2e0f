/* pred.h - what each condition kind means when an event is decided: one row per kind, in
 * one file per family (the rules' side of a predicate, how its YAML is read, is its row in
 * pred_defs, src/rules/load.c):
 *
 *   pred_text.c    words and regex (matches), the message's shape, links
 *   pred_rate.c    rate, joins
 *   pred_repeat.c  duplicate, similar, wave
 *   pred_user.c    account_age, first_message, reputation, strikes
 *   pred_score.c   score (the classifiers)
 *
 * eval.c holds the combinators (all, any, not) and the table from kind to row. */
#ifndef WH_PRED_H
#define WH_PRED_H

#include "internal.h"

typedef enum {
    WH_SHOW_BOOL = 0, /* true or false */
    WH_SHOW_NUMBER,   /* the value */
    WH_SHOW_SECONDS,  /* a value in ms, shown in whole seconds */
} wh_pred_show;

typedef struct {
    /* whether the condition holds for the event and state of c */
    bool (*holds)(eval_ctx *c, const wh_cond *n);
    /* --explain, for a condition that held: either write what follows "feature":" (its
     * name, then its value and anything else, without the closing brace) ... */
    void (*explain)(wh_buf *out, const eval_ctx *c, const wh_cond *n);
    /* ... or give the name and the value, shown as `show` says */
    const char *feature;
    double (*value)(const eval_ctx *c, const wh_cond *n);
    wh_pred_show show;
} wh_pred_eval;

extern const wh_pred_eval wh_pred_match, wh_pred_num, wh_pred_links;
extern const wh_pred_eval wh_pred_rate, wh_pred_joins;
extern const wh_pred_eval wh_pred_dup, wh_pred_similar, wh_pred_wave;
extern const wh_pred_eval wh_pred_age, wh_pred_first, wh_pred_rep, wh_pred_strikes;
extern const wh_pred_eval wh_pred_score;

/* A message feature's value (NUM and LINKS conditions, and the `length` of --explain). */
double wh_feature(const wh_features *x, const wh_event *ev, wh_feature_id f);

#endif
