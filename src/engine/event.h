/* event.h - decoding one NDJSON line into a wh_event (the input contract of
 * ARCHITECTURE.md). Zero-copy: every wh_str in the event points into the line, except
 * strings that contained escapes, which are unescaped into the caller's arena. */
#ifndef WH_EVENT_H
#define WH_EVENT_H

#include "base/base.h"

#define WH_MAX_ID 128
#define WH_MAX_TEXT (64 * 1024)
#define WH_MAX_LINE (1024 * 1024)
#define WH_MAX_DEPTH 32
#define WH_MAX_ROLES 32

typedef enum {
    WH_EV_MESSAGE = 0,
    WH_EV_JOIN,
    WH_EV_PART,
    WH_EV_MOD_ACTION,
    WH_EV_USER_UPDATE,
    WH_EV__COUNT
} wh_event_type;

extern const char *const wh_event_type_names[WH_EV__COUNT];

typedef struct {
    wh_str id;
    wh_event_type type;
    wh_str platform, channel;
    wh_str user_id, user_name;
    uint32_t nroles;
    int64_t created_at_ms; /* INT64_MIN when absent */
    int8_t first_message;  /* -1 absent, 0 false, 1 true */
    wh_str text;
    int64_t ts_ms;
    bool ts_given;
    wh_str meta;        /* raw JSON of "meta", empty when absent */
    wh_str meta_emotes; /* raw JSON value of meta.emotes (string contents or array) */
    bool meta_emotes_is_array;
    /* mod_action */
    wh_str moderator, target, mod_action, ref_event;
    int64_t duration_s;
    wh_str roles[WH_MAX_ROLES]; /* last: the fields before fit in a few cache lines */
} wh_event;

typedef struct {
    const char *code;  /* bad_json, bad_utf8, line_too_long, ... */
    char message[160]; /* names the problem and, where known, the byte offset */
    wh_str id;         /* the id, when it could be read */
} wh_decode_error;

/* Per-thread decoder scratch (the token array grows as needed). */
typedef struct wh_decoder wh_decoder;
wh_decoder *wh_decoder_new(void);
/* Lowers the nesting limit (2..WH_MAX_DEPTH; the default is WH_MAX_DEPTH). */
void wh_decoder_set_max_depth(wh_decoder *d, int depth);
void wh_decoder_free(wh_decoder *d);

/* Decodes line[0..len) (without its newline). On failure returns false and fills err.
 * now_ms is the receive time used when the event has no ts; WH_NOW reads the clock then
 * (only for events without a ts: most have one, and the clock costs ~25 ns). */
#define WH_NOW INT64_MIN
bool wh_event_decode(wh_decoder *d, const char *line, size_t len, wh_arena *arena, int64_t now_ms,
                     wh_event *ev, wh_decode_error *err);

/* True when line[0..len) is only whitespace (such lines produce no output). */
bool wh_line_is_blank(const char *line, size_t len);

#endif
