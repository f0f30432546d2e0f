/* pred.h - the predicates, one file per family; each file has both sides of its keys: how
 * the YAML is read (its rows, wh_pred_def in src/rules/loader.h, and their parsers) and what
 * the condition means when an event is decided (its wh_pred_eval rows, below):
 *
 *   pred_text.c    words, regex, unless_words, view (matches), the message's shape, links
 *   pred_rate.c    rate, joins
 *   pred_repeat.c  duplicate, similar, wave
 *   pred_user.c    account_age, first_message, reputation, strikes
 *   pred_score.c   score (the classifiers)
 *   pred_channel.c panic (the channel's panic switch)
 *
 * A condition points at its meaning (wh_cond.eval, set from the rows when it is made); eval.c
 * holds the combinators (all, any, not). src/rules/preds.c lists the families. */
#ifndef WH_PRED_H
#define WH_PRED_H

#include "internal.h"
#include "rules/loader.h"

typedef enum {
    WH_SHOW_BOOL = 0, /* true or false */
    WH_SHOW_NUMBER,   /* the value */
    WH_SHOW_SECONDS,  /* a value in ms, shown in whole seconds */
} wh_pred_show;

typedef struct wh_pred_eval {
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

/* A message feature's value (NUM and LINKS conditions, and the `length` of --explain). */
double wh_feature(const wh_features *x, const wh_event *ev, wh_feature_id f);

#endif
