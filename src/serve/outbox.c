/* outbox.c - the action outbox (outbox.h, outbox_impl.h): operations from decisions, reviews
 * and outcomes; one worker thread per executor that carries the due ones out and records each
 * outcome with an audit row in one commit; /v1/actions; metrics. */
#define _GNU_SOURCE
#include "outbox_impl.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "io/webhook.h"

const char *const wh_op_kind_names[WH_OP__COUNT] = {"warn",  "delete",    "timeout",      "ban",
                                                    "unban", "untimeout", "channel_mode", "release",
                                                    "deny",  "webhook",   "alert"};

/* The outcomes counted per executor, in this order. */
static const char *const outcome_names[] = {"done", "retry", "dead", "unsupported"};
#define NOUT 4

/* ---- pure parts ---- */

void wh_outbox_op_id(const char *source, size_t sn, const char *kind, const char *target, size_t tn,
                     char out[33])
{
    uint8_t h[32];
    unsigned hl = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, source, sn) &&
              EVP_DigestUpdate(md, "", 1) && EVP_DigestUpdate(md, kind, strlen(kind)) &&
              EVP_DigestUpdate(md, "", 1) && EVP_DigestUpdate(md, target, tn) &&
              EVP_DigestFinal_ex(md, h, &hl);
    EVP_MD_CTX_free(md);
    if (!ok) memset(h, 0, sizeof(h)); /* OpenSSL cannot fail SHA-256 short of memory */
    wh_hex_encode(h, 16, out);
    out[32] = 0;
}

int64_t wh_outbox_backoff_ms(int64_t base_ms, int64_t cap_ms, uint32_t attempt, uint64_t rnd)
{
    if (base_ms < 1) base_ms = 1;
    int64_t ceil = base_ms;
    for (uint32_t i = 1; i < attempt && ceil < cap_ms; i++)
        ceil *= 2;
    if (ceil > cap_ms) ceil = cap_ms;
    return (int64_t)(rnd % (uint64_t)(ceil + 1));
}

wh_outbox_next wh_outbox_settle(const wh_outbox_opts *o, uint32_t attempt, const wh_op_result *r,
                                int64_t now, uint64_t rnd)
{
    switch (r->code) {
    case WH_OPR_DONE:
        return (wh_outbox_next){"done", -1};
    case WH_OPR_UNSUPPORTED:
        return (wh_outbox_next){"unsupported", -1};
    case WH_OPR_FAILED:
        return (wh_outbox_next){"dead", -1};
    case WH_OPR_RETRY:
        break;
    }
    if (attempt >= o->attempts) return (wh_outbox_next){"dead", -1};
    /* the platform's own wait when it gave one (never less), else the backoff */
    int64_t wait = wh_outbox_backoff_ms(o->base_ms, o->cap_ms, attempt, rnd);
    if (r->retry_after_ms > 0) wait = r->retry_after_ms;
    return (wh_outbox_next){"retry", now + wait};
}

int wh_op_kind_parse(const char *n, size_t len)
{
    for (int k = 0; k < WH_OP__COUNT; k++)
        if (strlen(wh_op_kind_names[k]) == len && !memcmp(wh_op_kind_names[k], n, len)) return k;
    return -1;
}

/* ---- executors and their workers ---- */

/* An alert executor takes a group of operations at once (grouped by the worker). */
typedef void (*batch_fn)(void *ud, const wh_op *const *ops, uint32_t n, wh_op_result *res);

typedef struct exec {
    struct wh_outbox *o;
    char *platform;
    wh_executor_fn fn;
    batch_fn batch;
    void *ud;
    int64_t min_interval_ms, window_ms; /* alerts */
    pthread_t th;
    bool started;
    pthread_mutex_t mu; /* kick, stop, inflight */
    pthread_cond_t cv;
    bool kick, stop;
    char inflight[33]; /* the operation being carried out ("" none) */
    uint64_t rng;
    _Atomic uint64_t outcomes[NOUT];
    struct exec *next;
} exec_t;

struct wh_outbox {
    wh_store *store;
    const wh_config *cfg;
    wh_outbox_opts o;
    pthread_rwlock_t rw; /* the list of executors */
    exec_t *execs;
    /* the outbox's own executors (their configuration is cfg's) */
    wh_webhook **hooks;
    wh_alerter **alerts;
};

/* An operation read back, with its strings in one block. */
typedef struct {
    wh_op op;
    uint32_t attempts;
    int64_t created_ms;
    char *mem;
} op_copy;

typedef struct {
    op_copy *v;
    uint32_t n, cap;
} op_list;

static void op_list_clear(op_list *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        free(l->v[i].mem);
    l->n = 0;
}

static void keep_state(void *ud, const wh_op_state *st)
{
    op_list *l = ud;
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 16;
        op_copy *v = realloc(l->v, sizeof(*v) * cap);
        if (!v) return;
        l->v = v;
        l->cap = cap;
    }
    size_t total = 0;
    for (int i = 0; i < WH_OC__STR; i++)
        total += st->op.n[i] + 1;
    char *m = malloc(total);
    if (!m) return;
    const char *s[WH_OC__STR];
    char *p = m;
    for (int i = 0; i < WH_OC__STR; i++) {
        memcpy(p, st->op.s[i], st->op.n[i]);
        p[st->op.n[i]] = 0;
        s[i] = p;
        p += st->op.n[i] + 1;
    }
    int k = wh_op_kind_parse(st->op.s[WH_OC_KIND], st->op.n[WH_OC_KIND]);
    op_copy *c = &l->v[l->n++];
    c->mem = m;
    c->attempts = st->attempts;
    c->created_ms = st->created_ms;
    c->op = (wh_op){.id = s[WH_OC_ID],
                    .kind = k < 0 ? WH_OP_WARN : (wh_op_kind)k,
                    .platform = s[WH_OC_PLATFORM],
                    .channel = s[WH_OC_CHANNEL],
                    .user_id = s[WH_OC_USER_ID],
                    .user_name = s[WH_OC_USER_NAME],
                    .event_id = s[WH_OC_EVENT_ID],
                    .msg_id = s[WH_OC_MSG_ID],
                    .message = s[WH_OC_MESSAGE],
                    .reason = s[WH_OC_REASON],
                    .rule = s[WH_OC_RULE],
                    .mode = s[WH_OC_MODE],
                    .duration_s = st->op.duration_s,
                    .payload = s[WH_OC_PAYLOAD],
                    .attempt = st->attempts + 1};
}

/* A column from a slice of the event (none when empty: wh_op_encode reads a NULL as ""). */
static void set_str(wh_op_row *r, wh_op_col c, wh_str v)
{
    r->s[c] = v.n ? v.p : NULL;
    r->n[c] = v.n;
}

static void json_kv(wh_buf *b, const char *k, const char *v)
{
    wh_buf_printf(b, ",\"%s\":", k);
    wh_buf_json_str(b, v, strlen(v));
}

/* RFC 3339 UTC with milliseconds. */
static void put_time(wh_buf *b, int64_t ms)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char t[40];
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
    wh_buf_printf(b, "\"%s.%03dZ\"", t, (int)(ms % 1000));
}

static bool in_list(const wh_cfg_list *l, const char *s, size_t n)
{
    if (!l->n) return true;
    for (uint32_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == n && !memcmp(l->v[i], s, n)) return true;
    return false;
}

/* A delivery of the outbox's own (kind "webhook" or "alert") to platform "KIND:NAME": its id
 * from (source, kind, "KIND:NAME/TYPE"), so each webhook or alert gets each source once per
 * type. */
static void delivery_op(wh_buf *ops, const char *kind, const char *name, const char *type,
                        const char *source, size_t sn, const char *channel, const char *rule,
                        const char *payload, size_t pn)
{
    char platform[200], id[33], target[220];
    snprintf(platform, sizeof(platform), "%s:%s", kind, name);
    int tn = snprintf(target, sizeof(target), "%s/%s", platform, type);
    wh_outbox_op_id(source, sn, kind, target, (size_t)tn, id);
    wh_op_row r = {0};
    r.s[WH_OC_ID] = id;
    r.s[WH_OC_KIND] = kind;
    r.s[WH_OC_PLATFORM] = platform;
    r.s[WH_OC_CHANNEL] = channel;
    r.s[WH_OC_EVENT_ID] = source;
    r.n[WH_OC_EVENT_ID] = (uint32_t)sn;
    r.s[WH_OC_RULE] = rule;
    r.s[WH_OC_MODE] = type;
    r.s[WH_OC_PAYLOAD] = payload;
    r.n[WH_OC_PAYLOAD] = (uint32_t)pn;
    wh_op_encode(ops, &r);
}

/* One webhook delivery per configured webhook that wants `what` (WH_HOOK_*) and whose
 * filters pass: its payload {"type","timestamp","data"} (Standard Webhooks' shape). */
static void webhook_ops(wh_outbox *o, unsigned what, const char *type, const char *source,
                        size_t sn, const char *channel, const char *action, const char *rule,
                        const char *data, size_t dn, wh_buf *ops)
{
    const wh_config *c = o->cfg;
    wh_buf pay;
    wh_buf_init(&pay);
    for (uint32_t i = 0; i < c->nwebhooks; i++) {
        const wh_webhook_cfg *w = &c->webhooks[i];
        if (!(w->events & what)) continue;
        if (what != WH_HOOK_CHECKPOINT && (!in_list(&w->channels, channel, strlen(channel)) ||
                                           !in_list(&w->actions, action, strlen(action)) ||
                                           !in_list(&w->rules, rule, strlen(rule))))
            continue;
        if (!pay.len) {
            wh_buf_printf(&pay, "{\"type\":\"%s\",\"timestamp\":", type);
            put_time(&pay, wh_now_ms());
            wh_buf_puts(&pay, ",\"data\":");
            wh_buf_append(&pay, data, dn);
            wh_buf_putc(&pay, '}');
        }
        if (!pay.oom)
            delivery_op(ops, "webhook", w->name, type, source, sn, channel, rule, pay.p, pay.len);
    }
    wh_buf_free(&pay);
}

/* One alert per configured alert that wants `what` (WH_ALERT_*) for channel: the item as
 * {"kind",...} (rendered, with the others of its group, when it is posted). */
static void alert_ops(wh_outbox *o, unsigned what, const char *kind, const char *source, size_t sn,
                      const char *channel, const char *item, size_t in, wh_buf *ops)
{
    const wh_config *c = o->cfg;
    for (uint32_t i = 0; i < c->nalerts; i++) {
        const wh_alert_cfg *a = &c->alerts[i];
        if (!(a->events & what) || !in_list(&a->channels, channel, strlen(channel))) continue;
        delivery_op(ops, "alert", a->name, kind, source, sn, channel, "", item, in);
    }
}

static exec_t *find_exec(wh_outbox *o, const char *platform, size_t n)
{
    for (exec_t *x = o->execs; x; x = x->next)
        if (strlen(x->platform) == n && !memcmp(x->platform, platform, n)) return x;
    return NULL;
}

static bool has_exec(wh_outbox *o, const char *platform, size_t n)
{
    pthread_rwlock_rdlock(&o->rw);
    bool has = find_exec(o, platform, n) != NULL;
    pthread_rwlock_unlock(&o->rw);
    return has;
}

bool wh_outbox_has_executor(wh_outbox *o, const char *platform)
{
    return o && platform && *platform && has_exec(o, platform, strlen(platform));
}

/* The platform operations of one target user (the event's own user: with its message). */
static void user_ops(const wh_verdict *v, const wh_event *ev, wh_str user, bool own,
                     const char *msg_id, const char *rule, const char *reason, wh_buf *ops)
{
    wh_op_kind kinds[2];
    int nk = 0;
    switch (v->action) {
    case WH_ACT_WARN:
        kinds[nk++] = WH_OP_WARN;
        break;
    case WH_ACT_DELETE:
        if (own) kinds[nk++] = WH_OP_DELETE;
        break;
    case WH_ACT_TIMEOUT:
        if (own) kinds[nk++] = WH_OP_DELETE;
        kinds[nk++] = WH_OP_TIMEOUT;
        break;
    case WH_ACT_BAN:
        if (own) kinds[nk++] = WH_OP_DELETE;
        kinds[nk++] = WH_OP_BAN;
        break;
    default: /* allow; hold goes to the review queue, not to the platform */
        break;
    }
    char plat[200], chan[256];
    snprintf(plat, sizeof(plat), "%.*s", (int)ev->platform.n, ev->platform.p);
    snprintf(chan, sizeof(chan), "%.*s", (int)ev->channel.n, ev->channel.p);
    for (int k = 0; k < nk; k++) {
        if (kinds[k] == WH_OP_DELETE && !*msg_id) continue; /* nothing to name the message by */
        const char *kn = wh_op_kind_names[kinds[k]];
        char id[33];
        wh_outbox_op_id(ev->id.p, ev->id.n, kn, user.p, user.n, id);
        wh_op_row r = {0};
        r.s[WH_OC_ID] = id;
        r.s[WH_OC_KIND] = kn;
        r.s[WH_OC_PLATFORM] = plat;
        r.s[WH_OC_CHANNEL] = chan;
        if (own) {
            set_str(&r, WH_OC_USER_ID, ev->user_id);
            set_str(&r, WH_OC_USER_NAME, ev->user_name);
        } else { /* a wave's or raid's member: the id the engine keys it by */
            set_str(&r, WH_OC_USER_ID, user);
        }
        set_str(&r, WH_OC_EVENT_ID, ev->id);
        if (own) r.s[WH_OC_MSG_ID] = msg_id;
        r.s[WH_OC_MESSAGE] = kinds[k] == WH_OP_WARN && v->message ? v->message : "";
        r.s[WH_OC_REASON] = reason;
        r.s[WH_OC_RULE] = rule;
        r.duration_s = kinds[k] == WH_OP_TIMEOUT ? v->duration_s : 0;
        wh_op_encode(ops, &r);
    }
}

void wh_outbox_decision_ops(wh_outbox *o, const wh_verdict *v, const wh_event *ev, const char *json,
                            size_t n, wh_buf *ops)
{
    if (!o) return;
    const wh_config *c = o->cfg;
    bool acts = v->kind == WH_VK_DECIDED && (v->action != WH_ACT_ALLOW || v->chan_mode >= 0);
    if (!acts && !c->nwebhooks) return;
    const char *rule = v->rule >= 0 && v->rs ? v->rs->rules[v->rule].id : "";
    char reason[1024], chan[256];
    snprintf(reason, sizeof(reason), "%.*s", (int)v->reason.n, v->reason.p ? v->reason.p : "");
    snprintf(chan, sizeof(chan), "%.*s", (int)ev->channel.n, ev->channel.p);
    const char *act = wh_action_names[v->action];
    if (acts && ev->platform.n && has_exec(o, ev->platform.p, ev->platform.n)) {
        char msg_id[256] = "";
        if (!wh_json_get_string(ev->meta.p, ev->meta.n, "msg_id", msg_id, sizeof(msg_id)))
            msg_id[0] = 0;
        wh_str me = ev->user_id.n ? ev->user_id : ev->user_name;
        if (me.n) user_ops(v, ev, me, true, msg_id, rule, reason, ops);
        for (uint32_t i = 0; i < v->ntargets; i++)
            if (!(v->targets[i].n == me.n && !memcmp(v->targets[i].p, me.p, me.n)))
                user_ops(v, ev, v->targets[i], false, "", rule, reason, ops);
        if (v->chan_mode >= 0) {
            const char *mode = wh_chan_mode_names[v->chan_mode];
            char id[33], plat[200];
            snprintf(plat, sizeof(plat), "%.*s", (int)ev->platform.n, ev->platform.p);
            wh_outbox_op_id(ev->id.p, ev->id.n, "channel_mode", mode, strlen(mode), id);
            wh_op_row r = {0};
            r.s[WH_OC_ID] = id;
            r.s[WH_OC_KIND] = "channel_mode";
            r.s[WH_OC_PLATFORM] = plat;
            r.s[WH_OC_CHANNEL] = chan;
            set_str(&r, WH_OC_EVENT_ID, ev->id);
            r.s[WH_OC_REASON] = reason;
            r.s[WH_OC_RULE] = rule;
            r.s[WH_OC_MODE] = mode;
            r.duration_s = v->chan_for_s;
            wh_op_encode(ops, &r);
        }
    }
    webhook_ops(o, WH_HOOK_DECISION, "decision", ev->id.p, ev->id.n, chan, act, rule, json, n, ops);
    /* escalations for the humans: a hold, a wave, a raid */
    unsigned what = v->kind != WH_VK_DECIDED ? 0
                    : v->has_targets ? (ev->type == WH_EV_JOIN ? WH_ALERT_RAID : WH_ALERT_WAVE)
                    : v->action == WH_ACT_HOLD ? WH_ALERT_HOLD
                                               : 0;
    if (!what || !c->nalerts) return;
    const char *kind = what == WH_ALERT_RAID ? "raid" : what == WH_ALERT_WAVE ? "wave" : "hold";
    wh_buf item;
    wh_buf_init(&item);
    wh_buf_printf(&item, "{\"kind\":\"%s\"", kind);
    wh_buf_puts(&item, ",\"event_id\":");
    wh_buf_json_str(&item, ev->id.p, ev->id.n);
    wh_buf_puts(&item, ",\"platform\":");
    wh_buf_json_str(&item, ev->platform.p ? ev->platform.p : "", ev->platform.n);
    json_kv(&item, "channel", chan);
    wh_str user = ev->user_id.n ? ev->user_id : ev->user_name;
    wh_buf_puts(&item, ",\"user\":");
    wh_buf_json_str(&item, user.p ? user.p : "", user.n);
    wh_buf_puts(&item, ",\"user_name\":");
    wh_buf_json_str(&item, ev->user_name.p ? ev->user_name.p : "", ev->user_name.n);
    wh_buf_puts(&item, ",\"text\":");
    wh_buf_json_str(&item, ev->text.p ? ev->text.p : "", ev->text.n);
    json_kv(&item, "rule", rule);
    json_kv(&item, "reason", reason);
    json_kv(&item, "action", act);
    wh_buf_puts(&item, ",\"targets\":[");
    for (uint32_t i = 0; i < v->ntargets; i++) {
        if (i) wh_buf_putc(&item, ',');
        wh_buf_json_str(&item, v->targets[i].p, v->targets[i].n);
    }
    wh_buf_puts(&item, "]}");
    if (!item.oom) alert_ops(o, what, kind, ev->id.p, ev->id.n, chan, item.p, item.len, ops);
    wh_buf_free(&item);
}

void wh_outbox_review_ops(wh_outbox *o, const char *event_id, bool approve, const char *platform,
                          const char *channel, const char *user, const char *event,
                          const char *body, wh_buf *ops)
{
    if (!o) return;
    const char *verb = approve ? "approve" : "deny";
    if (platform && *platform && has_exec(o, platform, strlen(platform))) {
        char msg_id[256] = "";
        if (event) { /* the held event's meta.msg_id */
            wh_jtok tok[512];
            size_t pos;
            const char *what;
            size_t en = strlen(event);
            int nt = wh_json_tokenize(event, en, tok, 512, 32, &pos, &what);
            for (int i = 1; nt > 0 && tok[0].type == WH_J_OBJECT && i + 1 < nt;
                 i = tok[i + 1].next) {
                if (tok[i].end - tok[i].start == 4 && !memcmp(event + tok[i].start, "meta", 4) &&
                    tok[i + 1].type == WH_J_OBJECT) {
                    const wh_jtok *m = &tok[i + 1];
                    if (!wh_json_get_string(event + m->start, (size_t)(m->end - m->start), "msg_id",
                                            msg_id, sizeof(msg_id)))
                        msg_id[0] = 0;
                    break;
                }
            }
        }
        wh_op_kind k = approve ? WH_OP_RELEASE : WH_OP_DENY;
        char id[33];
        wh_outbox_op_id(event_id, strlen(event_id), wh_op_kind_names[k], "", 0, id);
        wh_op_row r = {0};
        r.s[WH_OC_ID] = id;
        r.s[WH_OC_KIND] = wh_op_kind_names[k];
        r.s[WH_OC_PLATFORM] = platform;
        r.s[WH_OC_CHANNEL] = channel;
        r.s[WH_OC_USER_ID] = user;
        r.s[WH_OC_EVENT_ID] = event_id;
        r.s[WH_OC_MSG_ID] = msg_id;
        r.s[WH_OC_REASON] = approve ? "approved by a moderator" : "denied by a moderator";
        wh_op_encode(ops, &r);
    }
    char source[400];
    int sn = snprintf(source, sizeof(source), "review:%s:%s", verb, event_id);
    webhook_ops(o, WH_HOOK_REVIEW, "review", source, (size_t)sn, channel ? channel : "", verb, "",
                body, strlen(body), ops);
}

/* The checkpoint hook (the writer's thread, inside the signing transaction). */
static void checkpoint_ops(void *ud, const char *json, size_t n, wh_buf *ops)
{
    wh_outbox *o = ud;
    char source[64];
    /* the checkpoint's seq names it: {"seq":N,...} */
    const char *p = strstr(json, "\"seq\":");
    long long seq = p ? strtoll(p + 6, NULL, 10) : 0;
    int sn = snprintf(source, sizeof(source), "checkpoint:%lld", seq);
    webhook_ops(o, WH_HOOK_CHECKPOINT, "checkpoint", source, (size_t)sn, "", "", "", json, n, ops);
}

/* ---- a worker ---- */

static void put_op_json(wh_buf *b, const wh_op *op, const char *status, uint32_t attempts,
                        const char *detail)
{
    wh_buf_puts(b, "{\"id\":");
    wh_buf_json_str(b, op->id, strlen(op->id));
    json_kv(b, "kind", wh_op_kind_names[op->kind]);
    json_kv(b, "platform", op->platform);
    json_kv(b, "channel", op->channel);
    json_kv(b, "user_id", op->user_id);
    json_kv(b, "event_id", op->event_id);
    json_kv(b, "status", status);
    wh_buf_printf(b, ",\"attempts\":%u", attempts);
    json_kv(b, "detail", detail);
    wh_buf_putc(b, '}');
}

/* The outcome of one attempt of c (res) as an ACTION record, with what it causes: action
 * webhooks (final outcomes of platform operations) and dead-letter alerts. */
static void outcome_rec(exec_t *x, const op_copy *c, const wh_op_result *res, int64_t now,
                        wh_rec_batch *b)
{
    wh_outbox *o = x->o;
    uint32_t attempt = c->attempts + 1;
    wh_outbox_next nx = wh_outbox_settle(&o->o, attempt, res, now, wh_splitmix64(&x->rng));
    const wh_op *op = &c->op;
    char detail[300];
    snprintf(detail, sizeof(detail), "%s%s",
             nx.due_at < 0 && !strcmp(nx.status, "dead") && res->code == WH_OPR_RETRY
                 ? "attempts exhausted: "
                 : "",
             res->detail);
    wh_buf body, enc, ops;
    wh_buf_init(&body);
    wh_buf_init(&enc);
    wh_buf_init(&ops);
    put_op_json(&body, op, nx.status, attempt, detail);
    if (nx.due_at >= 0) { /* when it is tried next */
        body.len--;
        wh_buf_printf(&body, ",\"due_at\":%lld}", (long long)nx.due_at);
    }
    wh_outcome_row orow = {.id = op->id,
                           .status = nx.status,
                           .detail = detail,
                           .attempts = attempt,
                           .due_at = nx.due_at};
    wh_outcome_encode(&enc, &orow);
    bool platform_op = op->kind != WH_OP_WEBHOOK && op->kind != WH_OP_ALERT;
    if (nx.due_at < 0 && platform_op) {
        char source[64];
        int sn = snprintf(source, sizeof(source), "%s#%u", op->id, attempt);
        webhook_ops(o, WH_HOOK_ACTION, "action", source, (size_t)sn, op->channel,
                    wh_op_kind_names[op->kind], op->rule, body.p, body.len, &ops);
    }
    if (!strcmp(nx.status, "dead") && op->kind != WH_OP_ALERT) {
        wh_buf item;
        wh_buf_init(&item);
        wh_buf_puts(&item, "{\"kind\":\"dead_letter\",\"event_id\":");
        wh_buf_json_str(&item, op->event_id, strlen(op->event_id));
        json_kv(&item, "platform", op->platform);
        json_kv(&item, "channel", op->channel);
        json_kv(&item, "user", op->user_id);
        json_kv(&item, "user_name", op->user_name);
        json_kv(&item, "text", "");
        json_kv(&item, "rule", op->rule);
        json_kv(&item, "reason", detail);
        json_kv(&item, "action", wh_op_kind_names[op->kind]);
        json_kv(&item, "op", op->id);
        wh_buf_puts(&item, ",\"targets\":[]}");
        alert_ops(o, WH_ALERT_DEAD_LETTER, "dead_letter", op->id, strlen(op->id), op->channel,
                  item.p, item.len, &ops);
        wh_buf_free(&item);
    }
    wh_rec *r = wh_rec_add(b, WH_REC_ACTION);
    wh_rec_set(b, r, WH_RF_EVENT_ID, op->event_id, strlen(op->event_id));
    if (*op->channel) wh_rec_set(b, r, WH_RF_CHANNEL, op->channel, strlen(op->channel));
    const char *u = *op->user_id ? op->user_id : op->user_name;
    if (*u) wh_rec_set(b, r, WH_RF_USER, u, strlen(u));
    wh_rec_set(b, r, WH_RF_ACTION, nx.status, strlen(nx.status));
    wh_rec_set(b, r, WH_RF_BODY, body.p, body.len);
    wh_rec_set(b, r, WH_RF_OUTCOME, enc.p, enc.len);
    if (ops.len) wh_rec_set(b, r, WH_RF_OPS, ops.p, ops.len);
    if (body.oom || enc.oom || ops.oom) b->oom = true;
    for (int i = 0; i < NOUT; i++)
        if (!strcmp(outcome_names[i], nx.status)) atomic_fetch_add(&x->outcomes[i], 1);
    wh_buf_free(&body);
    wh_buf_free(&enc);
    wh_buf_free(&ops);
}

/* Waits on x->cv until `until` (ms, wall clock; <0: until kicked), or stop. True when
 * stopping. */
static bool worker_wait(exec_t *x, int64_t until, bool wake_on_kick)
{
    pthread_mutex_lock(&x->mu);
    for (;;) {
        if (x->stop) break;
        if (wake_on_kick && x->kick) break;
        int64_t now = wh_now_ms();
        if (until >= 0 && now >= until) break;
        if (until < 0) {
            pthread_cond_wait(&x->cv, &x->mu);
        } else {
            struct timespec ts = wh_deadline_ms(until - now);
            pthread_cond_timedwait(&x->cv, &x->mu, &ts);
        }
    }
    if (wake_on_kick) x->kick = false;
    bool stop = x->stop;
    pthread_mutex_unlock(&x->mu);
    return stop;
}

/* Queues b (an outcome) until the audit queue takes it; its ticket, 0 when stopping first. */
static uint64_t submit_outcome(exec_t *x, wh_rec_batch *b)
{
    for (;;) {
        uint64_t t = wh_store_submit(x->o->store, b);
        if (t || b->oom) return t;
        if (wh_store_error(x->o->store)) return 0;
        /* the queue is full (backpressure): the outcome waits for room, not the platform */
        if (worker_wait(x, wh_now_ms() + 20, false)) return 0;
    }
}

static void set_inflight(exec_t *x, const char *id)
{
    pthread_mutex_lock(&x->mu);
    snprintf(x->inflight, sizeof(x->inflight), "%s", id);
    pthread_mutex_unlock(&x->mu);
}

static void *worker_main(void *arg)
{
    exec_t *x = arg;
    wh_outbox *o = x->o;
    op_list due = {0};
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    int64_t next_due = 0; /* look at once: operations left from before a restart */
    int64_t last_post = 0;
    for (;;) {
        if (worker_wait(x, next_due, true)) break;
        if (wh_store_error(o->store)) { /* nothing can be recorded: carry nothing out */
            worker_wait(x, -1, false);
            break;
        }
        int64_t now = wh_now_ms();
        op_list_clear(&due);
        int n = wh_store_ops_due(o->store, x->platform, now, o->o.batch, keep_state, &due);
        if (n <= 0) {
            next_due = wh_store_ops_next_due(o->store, x->platform);
            if (n < 0 && next_due < 0) next_due = now + 1000; /* a failed read: look again */
            continue;
        }
        uint64_t last = 0;
        if (x->batch) {
            /* alerts: at most one post per min_interval, and the items of a window together */
            int64_t at = last_post + x->min_interval_ms;
            if (due.v[0].created_ms + x->window_ms > at) at = due.v[0].created_ms + x->window_ms;
            if (at > now) {
                if (worker_wait(x, at, false)) break;
                next_due = 0;
                continue; /* read again: more may have come */
            }
            uint32_t k = due.n < WH_ALERT_MAX_ITEMS ? due.n : WH_ALERT_MAX_ITEMS;
            const wh_op *ops[WH_ALERT_MAX_ITEMS];
            for (uint32_t i = 0; i < k; i++)
                ops[i] = &due.v[i].op;
            wh_op_result res = {.code = WH_OPR_RETRY};
            x->batch(x->ud, ops, k, &res);
            last_post = wh_now_ms();
            for (uint32_t i = 0; i < k; i++)
                outcome_rec(x, &due.v[i], &res, last_post, &b);
            last = submit_outcome(x, &b);
        } else {
            for (uint32_t i = 0; i < due.n; i++) {
                wh_op_result res = {.code = WH_OPR_RETRY};
                set_inflight(x, due.v[i].op.id);
                x->fn(x->ud, &due.v[i].op, &res);
                set_inflight(x, "");
                res.detail[sizeof(res.detail) - 1] = 0;
                outcome_rec(x, &due.v[i], &res, wh_now_ms(), &b);
                uint64_t t = submit_outcome(x, &b);
                wh_rec_batch_reset(&b);
                if (t) last = t;
                pthread_mutex_lock(&x->mu);
                bool stop = x->stop;
                pthread_mutex_unlock(&x->mu);
                if (stop) break;
            }
        }
        wh_rec_batch_reset(&b);
        /* the rows read as settled only once committed: read again after that */
        if (last) wh_store_wait(o->store, last);
        next_due = 0;
    }
    op_list_clear(&due);
    free(due.v);
    wh_rec_batch_free(&b);
    return NULL;
}

static void kick_all(void *ud)
{
    wh_outbox *o = ud;
    pthread_rwlock_rdlock(&o->rw);
    for (exec_t *x = o->execs; x; x = x->next) {
        pthread_mutex_lock(&x->mu);
        x->kick = true;
        pthread_cond_signal(&x->cv);
        pthread_mutex_unlock(&x->mu);
    }
    pthread_rwlock_unlock(&o->rw);
}

static void exec_stop(exec_t *x)
{
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
    if (x->started) pthread_join(x->th, NULL);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    free(x->platform);
    free(x);
}

static wh_status add_exec(wh_outbox *o, const char *platform, wh_executor_fn fn, batch_fn batch,
                          void *ud, int64_t min_interval_ms, int64_t window_ms)
{
    if (!o || !platform || !*platform || (!fn && !batch)) return WH_EINVAL;
    exec_t *x = calloc(1, sizeof(*x));
    if (!x || !(x->platform = strdup(platform))) {
        free(x);
        return WH_ENOMEM;
    }
    x->o = o;
    x->fn = fn;
    x->batch = batch;
    x->ud = ud;
    x->min_interval_ms = min_interval_ms;
    x->window_ms = window_ms;
    x->rng = wh_random_seed();
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    pthread_rwlock_wrlock(&o->rw);
    if (find_exec(o, platform, strlen(platform))) {
        pthread_rwlock_unlock(&o->rw);
        exec_stop(x);
        return WH_EINVAL;
    }
    if (pthread_create(&x->th, NULL, worker_main, x) != 0) {
        pthread_rwlock_unlock(&o->rw);
        exec_stop(x);
        return WH_ENOMEM;
    }
    x->started = true;
    x->next = o->execs;
    o->execs = x;
    pthread_rwlock_unlock(&o->rw);
    return WH_OK;
}

wh_status wh_outbox_register(wh_outbox *o, const char *platform, wh_executor_fn fn, void *ud)
{
    /* the outbox's own names are taken by its own executors */
    if (platform && (!strncmp(platform, "webhook:", 8) || !strncmp(platform, "alert:", 6)))
        return WH_EINVAL;
    return add_exec(o, platform, fn, NULL, ud, 0, 0);
}

void wh_outbox_unregister(wh_outbox *o, const char *platform)
{
    if (!o) return;
    pthread_rwlock_wrlock(&o->rw);
    exec_t *x = NULL;
    for (exec_t **p = &o->execs; *p; p = &(*p)->next)
        if (!strcmp((*p)->platform, platform)) {
            x = *p;
            *p = x->next;
            break;
        }
    pthread_rwlock_unlock(&o->rw);
    if (x) exec_stop(x);
}

wh_outbox *wh_outbox_new(wh_store *st, const wh_config *c, wh_error *e)
{
    wh_outbox *o = calloc(1, sizeof(*o));
    if (!o) {
        wh_error_set(e, WH_ENOMEM, "out of memory");
        return NULL;
    }
    o->store = st;
    o->cfg = c;
    o->o = (wh_outbox_opts){.base_ms = c->outbox.base_ms,
                            .cap_ms = c->outbox.cap_ms,
                            .attempts = (uint32_t)c->outbox.attempts,
                            .batch = (int)c->outbox.batch};
    pthread_rwlock_init(&o->rw, NULL);
    o->hooks = calloc(c->nwebhooks + 1, sizeof(*o->hooks));
    o->alerts = calloc(c->nalerts + 1, sizeof(*o->alerts));
    if (!o->hooks || !o->alerts) {
        wh_error_set(e, WH_ENOMEM, "out of memory");
        goto fail;
    }
    char name[200];
    for (uint32_t i = 0; i < c->nwebhooks; i++) {
        snprintf(name, sizeof(name), "webhook:%s", c->webhooks[i].name);
        if (!(o->hooks[i] = wh_webhook_new(&c->webhooks[i])) ||
            add_exec(o, name, wh_webhook_exec, NULL, o->hooks[i], 0, 0) != WH_OK) {
            wh_error_set(e, WH_ENOMEM, "cannot start the webhook '%s'", c->webhooks[i].name);
            goto fail;
        }
    }
    for (uint32_t i = 0; i < c->nalerts; i++) {
        const wh_alert_cfg *a = &c->alerts[i];
        snprintf(name, sizeof(name), "alert:%s", a->name);
        if (!(o->alerts[i] = wh_alert_new(a)) ||
            add_exec(o, name, NULL, wh_alert_exec, o->alerts[i], a->min_interval_ms,
                     a->window_ms) != WH_OK) {
            wh_error_set(e, WH_ENOMEM, "cannot start the alert '%s'", a->name);
            goto fail;
        }
    }
    wh_store_set_ops_hook(st, kick_all, o);
    if (c->nwebhooks) wh_store_set_checkpoint_hook(st, checkpoint_ops, o);
    return o;
fail:
    wh_outbox_free(o);
    return NULL;
}

void wh_outbox_free(wh_outbox *o)
{
    if (!o) return;
    wh_store_set_ops_hook(o->store, NULL, NULL);
    wh_store_set_checkpoint_hook(o->store, NULL, NULL);
    pthread_rwlock_wrlock(&o->rw);
    exec_t *x = o->execs;
    o->execs = NULL;
    pthread_rwlock_unlock(&o->rw);
    while (x) {
        exec_t *next = x->next;
        exec_stop(x);
        x = next;
    }
    for (uint32_t i = 0; o->hooks && i < o->cfg->nwebhooks; i++)
        wh_webhook_free(o->hooks[i]);
    for (uint32_t i = 0; o->alerts && i < o->cfg->nalerts; i++)
        wh_alert_free(o->alerts[i]);
    free(o->hooks);
    free(o->alerts);
    pthread_rwlock_destroy(&o->rw);
    free(o);
}

/* ---- the API ---- */

typedef struct {
    wh_outbox *o;
    wh_buf *out;
    int n;
    char last[33];
} list_ctx;

/* The status, or "in_flight" while a worker carries it out. */
static const char *shown_status(wh_outbox *o, const wh_op_state *st)
{
    if (st->due_at < 0) return st->status;
    const char *s = st->status;
    pthread_rwlock_rdlock(&o->rw);
    for (exec_t *x = o->execs; x; x = x->next) {
        pthread_mutex_lock(&x->mu);
        if (x->inflight[0] && !strncmp(x->inflight, st->op.s[WH_OC_ID], 32)) s = "in_flight";
        pthread_mutex_unlock(&x->mu);
    }
    pthread_rwlock_unlock(&o->rw);
    return s;
}

static void put_state(wh_outbox *o, wh_buf *b, const wh_op_state *st)
{
    wh_buf_putc(b, '{');
    for (int i = 0; i < WH_OC__STR; i++) {
        if (i == WH_OC_PAYLOAD) continue; /* a webhook's body: large, and not the point */
        if (i) wh_buf_putc(b, ',');
        wh_buf_printf(b, "\"%s\":", wh_op_col_names[i]);
        wh_buf_json_str(b, st->op.s[i], st->op.n[i]);
    }
    wh_buf_printf(b, ",\"duration_s\":%u", st->op.duration_s);
    json_kv(b, "status", shown_status(o, st));
    wh_buf_printf(b, ",\"attempts\":%u", st->attempts);
    json_kv(b, "detail", st->detail);
    wh_buf_puts(b, ",\"due_at\":");
    if (st->due_at >= 0)
        wh_buf_i64(b, st->due_at);
    else
        wh_buf_puts(b, "null");
    wh_buf_printf(b, ",\"created_ms\":%lld,\"updated_ms\":%lld}", (long long)st->created_ms,
                  (long long)st->updated_ms);
}

static void list_one(void *ud, const wh_op_state *st)
{
    list_ctx *c = ud;
    if (c->n++) wh_buf_putc(c->out, ',');
    put_state(c->o, c->out, st);
    snprintf(c->last, sizeof(c->last), "%.*s", (int)st->op.n[WH_OC_ID], st->op.s[WH_OC_ID]);
}

wh_status wh_outbox_list(wh_outbox *o, const wh_op_filter *f, wh_buf *out)
{
    list_ctx c = {o, out, 0, ""};
    wh_buf_puts(out, "{\"actions\":[");
    int count = 0;
    if (wh_store_ops_list(o->store, f, list_one, &c, &count) != WH_OK) return WH_EIO;
    wh_buf_puts(out, "],\"next\":");
    if (count == f->limit && c.last[0])
        wh_buf_printf(out, "\"%s\"", c.last);
    else
        wh_buf_puts(out, "null");
    wh_buf_putc(out, '}');
    return WH_OK;
}

static void get_one(void *ud, const wh_op_state *st)
{
    list_ctx *c = ud;
    put_state(c->o, c->out, st);
}

wh_status wh_outbox_get(wh_outbox *o, const char *id, wh_buf *out)
{
    list_ctx c = {o, out, 0, ""};
    return wh_store_op_get(o->store, id, get_one, &c);
}

typedef struct {
    op_list l;
    char status[16];
} one_ctx;

static void keep_one(void *ud, const wh_op_state *st)
{
    one_ctx *c = ud;
    snprintf(c->status, sizeof(c->status), "%s", st->status);
    keep_state(&c->l, st);
}

static int api_error(wh_buf *out, int status, const char *code, const char *msg)
{
    out->len = 0;
    wh_buf_printf(out, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    wh_buf_json_str(out, msg, strlen(msg));
    wh_buf_puts(out, "}}");
    return status;
}

int wh_outbox_retry(wh_outbox *o, const char *id, const char *who, wh_buf *out, uint64_t *ticket)
{
    *ticket = 0;
    one_ctx c = {0};
    char msg[300];
    wh_status st = wh_store_op_get(o->store, id, keep_one, &c);
    int status = 200;
    if (st == WH_EINVAL) {
        snprintf(msg, sizeof(msg), "no action '%s'", id);
        status = api_error(out, 404, "not_found", msg);
    } else if (st != WH_OK || !c.l.n) {
        status = api_error(out, 503, "store_error", "the outbox cannot be read");
    } else if (strcmp(c.status, "dead") && strcmp(c.status, "unsupported")) {
        snprintf(msg, sizeof(msg),
                 "action '%s' is %s: only a dead or unsupported action can be retried", id,
                 c.status);
        status = api_error(out, 409, "not_final", msg);
    }
    if (status != 200) goto done;
    const wh_op *op = &c.l.v[0].op;
    char detail[200];
    snprintf(detail, sizeof(detail), "retry requested by %s", who);
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    wh_buf body, enc;
    wh_buf_init(&body);
    wh_buf_init(&enc);
    put_op_json(&body, op, "retry", 0, detail);
    wh_outcome_row orow = {.id = op->id,
                           .status = "retry",
                           .detail = detail,
                           .attempts = 0,
                           .due_at = wh_now_ms(),
                           .only_if_final = true};
    wh_outcome_encode(&enc, &orow);
    wh_rec *r = wh_rec_add(&b, WH_REC_ACTION);
    wh_rec_set(&b, r, WH_RF_EVENT_ID, op->event_id, strlen(op->event_id));
    if (*op->channel) wh_rec_set(&b, r, WH_RF_CHANNEL, op->channel, strlen(op->channel));
    wh_rec_set(&b, r, WH_RF_ACTION, "retried", 7);
    wh_rec_set(&b, r, WH_RF_BODY, body.p, body.len);
    wh_rec_set(&b, r, WH_RF_OUTCOME, enc.p, enc.len);
    if (body.oom || enc.oom) b.oom = true;
    uint64_t t = wh_store_submit(o->store, &b);
    if (!t) {
        status = api_error(out, 429, "busy", "the audit queue is full; retry later");
    } else {
        *ticket = t;
        out->len = 0;
        wh_buf_puts(out, "{\"id\":");
        wh_buf_json_str(out, op->id, strlen(op->id));
        wh_buf_puts(out, ",\"status\":\"retry\",\"attempts\":0}");
    }
    wh_buf_free(&body);
    wh_buf_free(&enc);
    wh_rec_batch_free(&b);
done:
    op_list_clear(&c.l);
    free(c.l.v);
    return status;
}

/* A string field of a flat JSON request object into out; false with why when it is absent
 * (required) or not a string. */
typedef struct {
    const char *name;
    bool required;
    char *out;
    size_t cap;
} req_field;

int wh_outbox_request(wh_outbox *o, const char *body, size_t len, wh_buf *out, uint64_t *ticket)
{
    *ticket = 0;
    char rid[WH_MAX_ID + 1] = "", kind[32] = "", platform[128] = "", channel[256] = "",
                         user_id[256] = "", user_name[256] = "", reason[512] = "",
                         moderator[128] = "", msg[300];
    req_field fs[] = {{"id", true, rid, sizeof(rid)},
                      {"kind", true, kind, sizeof(kind)},
                      {"platform", true, platform, sizeof(platform)},
                      {"channel", true, channel, sizeof(channel)},
                      {"user_id", false, user_id, sizeof(user_id)},
                      {"user_name", false, user_name, sizeof(user_name)},
                      {"reason", false, reason, sizeof(reason)},
                      {"moderator", true, moderator, sizeof(moderator)}};
    wh_jtok tok[64];
    size_t pos;
    const char *what;
    int nt = wh_json_tokenize(body, len, tok, 64, 4, &pos, &what);
    if (nt <= 0 || tok[0].type != WH_J_OBJECT)
        return api_error(out, 400, "bad_request",
                         "the body must be one JSON object {id, kind, platform, channel, "
                         "user_id or user_name, moderator, reason, duration_s}");
    for (size_t i = 0; i < WH_ARRAY_LEN(fs); i++) {
        bool str_ok = wh_json_get_string(body, len, fs[i].name, fs[i].out, fs[i].cap);
        if (!str_ok && fs[i].required) {
            snprintf(msg, sizeof(msg), "'%s' is required, as a string of at most %zu bytes",
                     fs[i].name, fs[i].cap - 1);
            return api_error(out, 400, "bad_request", msg);
        }
    }
    int64_t duration = 0;
    for (int i = 1; i + 1 < nt; i = tok[i + 1].next)
        if (tok[i].end - tok[i].start == 10 && !memcmp(body + tok[i].start, "duration_s", 10))
            duration = strtoll(body + tok[i + 1].start, NULL, 10);
    int k = wh_op_kind_parse(kind, strlen(kind));
    if (k < 0 || k == WH_OP_WEBHOOK || k == WH_OP_ALERT) {
        snprintf(msg, sizeof(msg),
                 "'kind' must be warn, delete, timeout, ban, unban, untimeout, channel_mode, "
                 "release or deny, not '%s'",
                 kind);
        return api_error(out, 400, "bad_request", msg);
    }
    if (!*user_id && !*user_name && k != WH_OP_CHANNEL_MODE)
        return api_error(out, 400, "bad_request", "give 'user_id' or 'user_name'");
    if (duration < 0 || duration > 14 * 86400)
        return api_error(out, 400, "bad_request", "'duration_s' must be 0 to 1209600");
    if (!has_exec(o, platform, strlen(platform))) {
        snprintf(msg, sizeof(msg), "no executor is registered for platform '%s'", platform);
        return api_error(out, 409, "no_executor", msg);
    }
    char source[WH_MAX_ID + 16], id[33];
    int sn = snprintf(source, sizeof(source), "api:%s", rid);
    const char *target = *user_id ? user_id : user_name;
    wh_outbox_op_id(source, (size_t)sn, kind, target, strlen(target), id);
    wh_op_row r = {0};
    r.s[WH_OC_ID] = id;
    r.s[WH_OC_KIND] = kind;
    r.s[WH_OC_PLATFORM] = platform;
    r.s[WH_OC_CHANNEL] = channel;
    r.s[WH_OC_USER_ID] = user_id;
    r.s[WH_OC_USER_NAME] = user_name;
    r.s[WH_OC_EVENT_ID] = source;
    r.s[WH_OC_REASON] = reason;
    if (k == WH_OP_WARN) r.s[WH_OC_MESSAGE] = reason; /* what the user is told */
    r.duration_s = (uint32_t)duration;
    wh_buf ops, rb;
    wh_buf_init(&ops);
    wh_buf_init(&rb);
    wh_op_encode(&ops, &r);
    wh_buf_puts(&rb, "{\"id\":");
    wh_buf_json_str(&rb, id, 32);
    json_kv(&rb, "kind", kind);
    json_kv(&rb, "platform", platform);
    json_kv(&rb, "channel", channel);
    json_kv(&rb, "user_id", user_id);
    json_kv(&rb, "user_name", user_name);
    json_kv(&rb, "moderator", moderator);
    json_kv(&rb, "reason", reason);
    wh_buf_printf(&rb, ",\"duration_s\":%lld,\"status\":\"requested\"}", (long long)duration);
    wh_rec_batch b;
    wh_rec_batch_init(&b);
    wh_rec *rec = wh_rec_add(&b, WH_REC_ACTION);
    wh_rec_set(&b, rec, WH_RF_EVENT_ID, source, (size_t)sn);
    wh_rec_set(&b, rec, WH_RF_CHANNEL, channel, strlen(channel));
    wh_rec_set(&b, rec, WH_RF_USER, target, strlen(target));
    wh_rec_set(&b, rec, WH_RF_ACTION, "requested", 9);
    wh_rec_set(&b, rec, WH_RF_BODY, rb.p, rb.len);
    wh_rec_set(&b, rec, WH_RF_MODERATOR, moderator, strlen(moderator));
    wh_rec_set(&b, rec, WH_RF_OPS, ops.p, ops.len);
    if (ops.oom || rb.oom) b.oom = true;
    uint64_t t = wh_store_submit(o->store, &b);
    int status = 202;
    if (!t) {
        status = api_error(out, 429, "busy", "the audit queue is full; retry later");
    } else {
        *ticket = t;
        wh_buf_append(out, rb.p, rb.len);
    }
    wh_rec_batch_free(&b);
    wh_buf_free(&ops);
    wh_buf_free(&rb);
    return status;
}

/* ---- metrics ---- */

static void count_one(void *ud, const char *platform, const char *status, int64_t n)
{
    wh_buf *b = ud;
    wh_buf_printf(b, "whiply_outbox_operations{platform=");
    wh_buf_json_str(b, platform, strlen(platform));
    wh_buf_printf(b, ",status=\"%s\"} %lld\n", status, (long long)n);
}

void wh_outbox_metrics(wh_outbox *o, wh_buf *b)
{
    if (!o) return;
    wh_buf_puts(b, "# HELP whiply_outbox_outcomes_total Outbox attempts by platform and outcome "
                   "since start.\n# TYPE whiply_outbox_outcomes_total counter\n");
    pthread_rwlock_rdlock(&o->rw);
    for (exec_t *x = o->execs; x; x = x->next)
        for (int i = 0; i < NOUT; i++) {
            wh_buf_puts(b, "whiply_outbox_outcomes_total{platform=");
            wh_buf_json_str(b, x->platform, strlen(x->platform));
            wh_buf_printf(b, ",outcome=\"%s\"} %llu\n", outcome_names[i],
                          (unsigned long long)atomic_load(&x->outcomes[i]));
        }
    pthread_rwlock_unlock(&o->rw);
    wh_buf_puts(b, "# HELP whiply_outbox_operations Outbox operations still due (pending or "
                   "retry) and dead-lettered, by platform.\n# TYPE whiply_outbox_operations "
                   "gauge\n");
    wh_store_ops_counts(o->store, count_one, b);
}
