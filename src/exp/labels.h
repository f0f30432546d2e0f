/* labels.h - a sampled review's labels: one JSON object per line naming an event and what a
 * careful human reviewer made of it, for `whiply replay --labels FILE`.
 *
 *   {"id": "e-17", "label": "harmful"}      harmful: "harmful", "removed", "remove", true
 *   {"id": "e-18", "label": "ok"}           fine:    "ok", "approved", false
 *
 * `whiply review export` writes lines of this form ("removed" / "ok"), so the daemon's own
 * review verdicts can be a labels file. Other keys are ignored. */
#ifndef WH_EXP_LABELS_H
#define WH_EXP_LABELS_H

#include "base/base.h"

typedef enum { WH_LABEL_NONE = 0, WH_LABEL_HARMFUL, WH_LABEL_OK } wh_label;

#define WH_LABEL_ID_MAX 128 /* as an event id */

/* Decodes line[0..len) (without its newline). A blank line gives WH_OK and WH_LABEL_NONE.
 * Otherwise WH_OK with the id (unescaped, NUL-terminated, in id: WH_LABEL_ID_MAX + 1 bytes)
 * and its label, or WH_ESYNTAX with e saying what is wrong ("no \"label\"", "\"label\" is
 * \"maybe\": ..."). */
wh_status wh_label_decode(const char *line, size_t len, char *id, wh_label *label, wh_error *e);

#endif
