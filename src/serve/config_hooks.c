/* config_hooks.c - the `webhooks:` and `alerts:` lists of whiply.yaml (config.h;
 * docs/config.md). Each item is a mapping whose keys are rows of a table (name, type, where it
 * goes, which kind of list may have it), so both lists share one parser. */
#define _GNU_SOURCE
#include "config.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "rules/yaml.h"

#define HERR(d, file, node, ...)                                                                   \
    wh_diags_add((d), (file), wh_yaml_line(node), wh_yaml_col(node), __VA_ARGS__)

bool wh_config_webhook_secret(const char *s, size_t n, uint8_t *key, size_t cap, uint32_t *kn)
{
    if (n >= 6 && !memcmp(s, "whsec_", 6)) s += 6, n -= 6;
    if (!n || n % 4 || n > 1024) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok) return false;
    }
    if (s[n - 2] == '=' && s[n - 1] != '=') return false;
    unsigned char tmp[768];
    int got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
    size_t pad = (s[n - 1] == '=') + (s[n - 2] == '=');
    if (got < 0 || (size_t)got <= pad || (size_t)got - pad > cap) return false;
    *kn = (uint32_t)((size_t)got - pad);
    memcpy(key, tmp, *kn);
    return true;
}

typedef enum { K_STR, K_URL, K_SECRET, K_EVENTS, K_LIST, K_DURATION, K_FORMAT } key_type;
enum { IN_HOOKS = 1, IN_ALERTS = 2 };

typedef struct {
    const char *key;
    key_type type;
    unsigned where;             /* IN_HOOKS, IN_ALERTS */
    size_t hook_off, alert_off; /* the field in wh_webhook_cfg / wh_alert_cfg */
    int64_t min, max;           /* durations */
} key_def;

#define H(f) offsetof(wh_webhook_cfg, f)
#define A(f) offsetof(wh_alert_cfg, f)
static const key_def keys[] = {
    {"name", K_STR, IN_HOOKS | IN_ALERTS, H(name), A(name), 0, 0},
    {"url", K_URL, IN_HOOKS | IN_ALERTS, H(url), A(url), 0, 0},
    {"secret", K_SECRET, IN_HOOKS, 0, 0, 0, 0},
    {"events", K_EVENTS, IN_HOOKS | IN_ALERTS, H(events), A(events), 0, 0},
    {"channels", K_LIST, IN_HOOKS | IN_ALERTS, H(channels), A(channels), 0, 0},
    {"actions", K_LIST, IN_HOOKS, H(actions), 0, 0, 0},
    {"rules", K_LIST, IN_HOOKS, H(rules), 0, 0, 0},
    {"timeout", K_DURATION, IN_HOOKS | IN_ALERTS, H(timeout_ms), A(timeout_ms), 100, 120000},
    {"format", K_FORMAT, IN_ALERTS, 0, A(slack), 0, 0},
    {"template", K_STR, IN_ALERTS, 0, A(template), 0, 0},
    {"dashboard_url", K_URL, IN_ALERTS, 0, A(dashboard_url), 0, 0},
    {"min_interval", K_DURATION, IN_ALERTS, 0, A(min_interval_ms), 0, 3600 * 1000},
    {"window", K_DURATION, IN_ALERTS, 0, A(window_ms), 0, 3600 * 1000},
};
#undef H
#undef A

static const char *const hook_events[] = {"decision", "action", "review", "checkpoint"};
static const char *const alert_events[] = {"hold", "wave", "raid", "dead_letter"};

typedef struct {
    wh_diags *d;
    const char *file;
    bool alerts;
} hctx;

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static bool scalar(hctx *L, struct fy_node *v, const char *what, const char **s, size_t *n)
{
    if (!v || fy_node_get_type(v) != FYNT_SCALAR || !(*s = fy_node_get_scalar(v, n))) {
        HERR(L->d, L->file, v, "'%s' must be a scalar", what);
        return false;
    }
    return true;
}

static void list_free(wh_cfg_list *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* A list of scalars (a single scalar is a list of one). */
static void parse_list(hctx *L, struct fy_node *v, const char *key, wh_cfg_list *out)
{
    list_free(out);
    const char *s;
    size_t n;
    if (v && fy_node_get_type(v) == FYNT_SCALAR) {
        if (!scalar(L, v, key, &s, &n)) return;
        if ((out->v = calloc(1, sizeof(char *))) && (out->v[0] = dup_n(s, n))) out->n = 1;
        return;
    }
    if (!v || fy_node_get_type(v) != FYNT_SEQUENCE) {
        HERR(L->d, L->file, v, "'%s' must be a list", key);
        return;
    }
    int cnt = fy_node_sequence_item_count(v);
    if (cnt <= 0 || !(out->v = calloc((size_t)cnt, sizeof(char *)))) return;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it)))
        if (scalar(L, item, key, &s, &n) && (out->v[out->n] = dup_n(s, n))) out->n++;
}

static void parse_events(hctx *L, struct fy_node *v, unsigned *bits)
{
    const char *const *names = L->alerts ? alert_events : hook_events;
    *bits = 0;
    if (!v || fy_node_get_type(v) != FYNT_SEQUENCE) {
        HERR(L->d, L->file, v, "'events' must be a list (%s, %s, %s, %s)", names[0], names[1],
             names[2], names[3]);
        return;
    }
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it))) {
        const char *s;
        size_t n;
        if (!scalar(L, item, "events", &s, &n)) continue;
        int k = 0;
        while (k < 4 && !(strlen(names[k]) == n && !memcmp(names[k], s, n)))
            k++;
        if (k == 4)
            HERR(L->d, L->file, item, "unknown event '%.*s' (%s, %s, %s, %s)", (int)n, s, names[0],
                 names[1], names[2], names[3]);
        else
            *bits |= 1u << k;
    }
}

static bool is_url(const char *s, size_t n)
{
    return (n > 7 && !strncmp(s, "http://", 7)) || (n > 8 && !strncmp(s, "https://", 8));
}

/* One key of an item into the struct at base. */
static void set_key(hctx *L, const key_def *k, struct fy_node *v, char *base, uint8_t *secret,
                    uint32_t *secret_n)
{
    size_t off = L->alerts ? k->alert_off : k->hook_off;
    const char *s;
    size_t n;
    switch (k->type) {
    case K_EVENTS:
        parse_events(L, v, (unsigned *)(base + off));
        return;
    case K_LIST:
        parse_list(L, v, k->key, (wh_cfg_list *)(base + off));
        return;
    default:
        break;
    }
    if (!scalar(L, v, k->key, &s, &n)) return;
    switch (k->type) {
    case K_URL:
        if (!is_url(s, n)) {
            HERR(L->d, L->file, v, "'%s' must be an http:// or https:// URL, not '%.*s'", k->key,
                 (int)n, s);
            return;
        }
        /* fall through */
    case K_STR: {
        if (!n) {
            HERR(L->d, L->file, v, "'%s' must not be empty", k->key);
            return;
        }
        char **f = (char **)(base + off);
        free(*f);
        *f = dup_n(s, n);
        return;
    }
    case K_SECRET:
        if (!wh_config_webhook_secret(s, n, secret, 256, secret_n) || *secret_n < 16)
            HERR(L->d, L->file, v,
                 "'secret' must be base64 of 16 to 256 bytes, optionally after 'whsec_' "
                 "(openssl rand -base64 32 makes one)");
        return;
    case K_DURATION: {
        int64_t ms = 0;
        if (!((n == 1 && s[0] == '0') || wh_parse_duration(s, n, &ms)) || ms < k->min ||
            ms > k->max) {
            HERR(L->d, L->file, v, "'%s' must be a duration from %lldms to %llds, not '%.*s'",
                 k->key, (long long)k->min, (long long)(k->max / 1000), (int)n, s);
            return;
        }
        *(int64_t *)(base + off) = ms;
        return;
    }
    case K_FORMAT:
        if (n == 5 && !memcmp(s, "slack", 5))
            *(bool *)(base + off) = true;
        else if (n == 7 && !memcmp(s, "discord", 7))
            *(bool *)(base + off) = false;
        else
            HERR(L->d, L->file, v, "'format' must be discord or slack, not '%.*s'", (int)n, s);
        return;
    default:
        return;
    }
}

static bool good_name(const char *s)
{
    if (!*s || strlen(s) > 64) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static void hook_free(wh_webhook_cfg *w)
{
    free(w->name);
    free(w->url);
    list_free(&w->channels);
    list_free(&w->actions);
    list_free(&w->rules);
}

static void alert_free(wh_alert_cfg *a)
{
    free(a->name);
    free(a->url);
    free(a->template);
    free(a->dashboard_url);
    list_free(&a->channels);
}

void wh_config_hooks_free(wh_config *c)
{
    for (uint32_t i = 0; i < c->nwebhooks; i++)
        hook_free(&c->webhooks[i]);
    for (uint32_t i = 0; i < c->nalerts; i++)
        alert_free(&c->alerts[i]);
    free(c->webhooks);
    free(c->alerts);
    c->webhooks = NULL;
    c->alerts = NULL;
    c->nwebhooks = c->nalerts = 0;
}

void wh_config_hooks_parse(wh_config *c, wh_diags *d, const char *file, struct fy_node *v,
                           bool alerts)
{
    hctx L = {d, file, alerts};
    const char *what = alerts ? "alerts" : "webhooks";
    /* replace what the default (or an earlier document) had */
    if (alerts) {
        for (uint32_t i = 0; i < c->nalerts; i++)
            alert_free(&c->alerts[i]);
        free(c->alerts);
        c->alerts = NULL;
        c->nalerts = 0;
    } else {
        for (uint32_t i = 0; i < c->nwebhooks; i++)
            hook_free(&c->webhooks[i]);
        free(c->webhooks);
        c->webhooks = NULL;
        c->nwebhooks = 0;
    }
    if (!v || fy_node_get_type(v) != FYNT_SEQUENCE) {
        HERR(d, file, v, "'%s' must be a list of mappings (docs/config.md)", what);
        return;
    }
    int cnt = fy_node_sequence_item_count(v);
    if (cnt <= 0) return;
    if (cnt > 64) {
        HERR(d, file, v, "'%s' has %d items; at most 64", what, cnt);
        return;
    }
    void *arr = calloc((size_t)cnt, alerts ? sizeof(wh_alert_cfg) : sizeof(wh_webhook_cfg));
    if (!arr) return;
    if (alerts)
        c->alerts = arr;
    else
        c->webhooks = arr;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it))) {
        if (fy_node_get_type(item) != FYNT_MAPPING) {
            HERR(d, file, item, "an item of '%s' must be a mapping (name, url, ...)", what);
            continue;
        }
        wh_webhook_cfg w = {.timeout_ms = 10000};
        wh_alert_cfg a = {.timeout_ms = 10000, .min_interval_ms = 2000, .window_ms = 3000};
        char *base = alerts ? (char *)&a : (char *)&w;
        uint32_t nd0 = d->n;
        bool has_url = false, has_events = false, has_secret = false;
        void *it2 = NULL;
        struct fy_node_pair *pr;
        while ((pr = fy_node_mapping_iterate(item, &it2))) {
            struct fy_node *k = fy_node_pair_key(pr), *val = fy_node_pair_value(pr);
            const char *ks;
            size_t kn;
            if (!scalar(&L, k, "a key", &ks, &kn)) continue;
            const key_def *kd = NULL;
            for (size_t i = 0; i < WH_ARRAY_LEN(keys); i++)
                if (strlen(keys[i].key) == kn && !memcmp(keys[i].key, ks, kn) &&
                    keys[i].where & (alerts ? IN_ALERTS : IN_HOOKS))
                    kd = &keys[i];
            if (!kd) {
                HERR(d, file, k, "unknown key '%.*s' in an item of '%s' (docs/config.md)", (int)kn,
                     ks, what);
                continue;
            }
            has_url |= kd->type == K_URL && !strcmp(kd->key, "url");
            has_events |= kd->type == K_EVENTS;
            has_secret |= kd->type == K_SECRET;
            set_key(&L, kd, val, base, w.secret, &w.secret_n);
        }
        const char *name = alerts ? a.name : w.name;
        if (!name || !good_name(name))
            HERR(d, file, item,
                 "an item of '%s' needs a 'name' of letters, digits, '-', '_' "
                 "or '.' (at most 64)",
                 what);
        for (uint32_t i = 0; name && i < (alerts ? c->nalerts : c->nwebhooks); i++)
            if (!strcmp(alerts ? c->alerts[i].name : c->webhooks[i].name, name))
                HERR(d, file, item, "two items of '%s' are named '%s'", what, name);
        if (!has_url) HERR(d, file, item, "an item of '%s' needs a 'url'", what);
        if (!has_events)
            HERR(d, file, item, "an item of '%s' needs 'events' (%s)", what,
                 alerts ? "hold, wave, raid, dead_letter" : "decision, action, review, checkpoint");
        if (!alerts && !has_secret)
            HERR(d, file, item, "a webhook needs a 'secret' (base64, whsec_ accepted)");
        if (d->n != nd0) {
            if (alerts)
                alert_free(&a);
            else
                hook_free(&w);
            continue;
        }
        if (alerts)
            c->alerts[c->nalerts++] = a;
        else
            c->webhooks[c->nwebhooks++] = w;
    }
}
