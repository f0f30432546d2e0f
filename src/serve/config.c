/* config.c - see config.h. The embedded default is parsed first, then the file: one parser,
 * one set of bounds, and the defaults are documented where they are set. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "rules/yaml.h"

const char wh_config_default_yaml[] =
    "# whiply.yaml - the daemon's configuration (docs/config.md)\n"
    "listen: 127.0.0.1:8080      # HOST:PORT; port 0 picks a free one\n"
    "data: ./data                # SQLite audit + review queue, state snapshot, admin.token\n"
    "rules: examples/rules.yaml  # reloaded on SIGHUP or POST /v1/rules/reload\n"
    "threads: 2                  # requests deciding at once (state shards)\n"
    "http_threads: 0             # HTTP event loops; 0: two per CPU\n"
    "limits:\n"
    "  body: 8MiB                # request body\n"
    "  events: 10000             # events in one request\n"
    "  text: 64KiB               # an event's text\n"
    "  json_depth: 32            # nesting of an event\n"
    "  connections: 512          # open HTTP connections\n"
    "  per_address: 64           # open connections from one client address; 0: no cap\n"
    "  head_timeout: 10s         # a request's line and headers must arrive within this\n"
    "  idle_timeout: 60s         # a connection with no request in progress closes after this\n"
    "  queue: 200000             # audit rows waiting to be written; beyond: 429\n"
    "  dedupe: 100000            # recent event ids per shard answered again, not re-decided\n"
    "retention:\n"
    "  audit: 0                  # delete audit rows older than this (e.g. 90d); 0 keeps all\n"
    "  review: 0                 # delete resolved review items older than this; 0 keeps all\n"
    "  every: 1h                 # how often retention runs\n"
    "store:\n"
    "  sync: normal              # normal: survives a crash of whiply; full: of the machine\n"
    "  snapshot: 5m              # save the behaviour state this often (and at exit); 0: at exit\n"
    "  preallocate: 64MiB        # audit disk space written ahead (fewer commit stalls); 0: none\n"
    "  signing_key: auto         # Ed25519 key for audit checkpoints (auto: DATA-signing.key); "
    "none\n"
    "  checkpoints: auto         # signed checkpoints appended here (auto: "
    "DATA-checkpoints.ndjson)\n"
    "  checkpoint_url: none      # and POSTed here as JSON (a witness, a webhook)\n"
    "  sign_rows: 10000          # sign a checkpoint after this many new audit rows\n"
    "  sign_every: 1m            # and at least this often while rows are written\n"
    "ratelimit:\n"
    "  keys: 1000000             # most keys the rate-limit service holds\n"
    "bus:                        # NATS JetStream (docs/bus.md)\n"
    "  url: none                 # nats://HOST:PORT[,nats://...]; none: no bus\n"
    "  partitions: 8             # events are spread over this many partitions\n"
    "  instance: auto            # this instance's name (auto: host name and process id)\n"
    "  lease: 10s                # a partition's owner renews its claim 3 times a lease\n"
    "  replicas: 1               # copies of each stream (3 on a 3-node cluster)\n"
    "  duplicates: 2m            # JetStream drops a republish of one id within this\n"
    "  batch: 128                # events fetched and decided at once per partition\n"
    "  snapshot: 30s             # each owned partition's state is saved this often\n"
    "  http: decide              # POST /v1/events: decide here, or publish to the bus\n"
    "outbox:                     # actions carried out, webhooks, alerts (docs/platforms.md)\n"
    "  backoff: 1s               # first retry within this (full jitter), doubling...\n"
    "  backoff_cap: 5m           # ...up to this\n"
    "  attempts: 8               # dead-lettered after this many attempts\n"
    "  batch: 64                 # due operations a worker takes at once\n"
    "webhooks: []                # signed webhooks: [{name, url, secret, events, ...}]\n"
    "alerts: []                  # Discord/Slack alerts: [{name, url, format, events, ...}]\n"
    "tokens: []                  # none: an admin token is made in DATA/admin.token\n"
    "platforms: {}               # chat to read and act on: irc, twitch (docs/config.md, "
    "Platforms)\n";

typedef enum { OPT_STR, OPT_INT, OPT_SIZE, OPT_DURATION, OPT_SYNC } opt_type;

typedef struct {
    const char *name; /* dotted path */
    opt_type type;
    size_t off;
    int64_t min, max;
    bool path; /* a path: relative to the config file's folder */
} opt_def;

#define O(f) offsetof(wh_config, f)
static const opt_def opts[] = {
    {"listen", OPT_STR, O(listen), 0, 0, false},
    {"data", OPT_STR, O(data), 0, 0, true},
    {"rules", OPT_STR, O(rules), 0, 0, true},
    {"threads", OPT_INT, O(threads), 1, 64, false},
    {"http_threads", OPT_INT, O(http_threads), 0, 256, false},
    {"limits.body", OPT_SIZE, O(limits.body), 1024, (int64_t)1 << 30, false},
    {"limits.events", OPT_INT, O(limits.events), 1, 1000000, false},
    {"limits.text", OPT_SIZE, O(limits.text), 1, 64 * 1024, false},
    {"limits.json_depth", OPT_INT, O(limits.json_depth), 2, 32, false},
    {"limits.connections", OPT_INT, O(limits.connections), 1, 65536, false},
    {"limits.per_address", OPT_INT, O(limits.per_address), 0, 65536, false},
    {"limits.head_timeout", OPT_DURATION, O(limits.head_ms), 1000, 3600 * 1000, false},
    {"limits.idle_timeout", OPT_DURATION, O(limits.idle_ms), 1000, 24 * 3600 * 1000, false},
    {"limits.queue", OPT_INT, O(limits.queue), 1000, 100000000, false},
    {"limits.dedupe", OPT_INT, O(limits.dedupe), 0, 100000000, false},
    {"retention.audit", OPT_DURATION, O(retention.audit_ms), 0, INT64_MAX / 4, false},
    {"retention.review", OPT_DURATION, O(retention.review_ms), 0, INT64_MAX / 4, false},
    {"retention.every", OPT_DURATION, O(retention.every_ms), 1000, INT64_MAX / 4, false},
    {"store.sync", OPT_SYNC, O(store.sync_full), 0, 0, false},
    {"store.snapshot", OPT_DURATION, O(store.snapshot_ms), 0, INT64_MAX / 4, false},
    {"store.preallocate", OPT_SIZE, O(store.preallocate), 0, (int64_t)1 << 30, false},
    {"store.signing_key", OPT_STR, O(store.signing_key), 0, 0, true},
    {"store.checkpoints", OPT_STR, O(store.checkpoints), 0, 0, true},
    {"store.checkpoint_url", OPT_STR, O(store.checkpoint_url), 0, 0, false},
    {"store.sign_rows", OPT_INT, O(store.sign_rows), 1, 100000000, false},
    {"store.sign_every", OPT_DURATION, O(store.sign_ms), 1000, INT64_MAX / 4, false},
    {"ratelimit.keys", OPT_INT, O(ratelimit_keys), 64, 100000000, false},
    {"bus.url", OPT_STR, O(bus.url), 0, 0, false},
    {"bus.partitions", OPT_INT, O(bus.partitions), 1, 1024, false},
    {"bus.instance", OPT_STR, O(bus.instance), 0, 0, false},
    {"bus.lease", OPT_DURATION, O(bus.lease_ms), 1000, 3600 * 1000, false},
    {"bus.replicas", OPT_INT, O(bus.replicas), 1, 5, false},
    {"bus.duplicates", OPT_DURATION, O(bus.duplicates_ms), 1000, 7 * 86400 * 1000LL, false},
    {"bus.batch", OPT_INT, O(bus.batch), 1, 10000, false},
    {"bus.snapshot", OPT_DURATION, O(bus.snapshot_ms), 1000, 86400 * 1000LL, false},
    {"bus.http", OPT_STR, O(bus.http), 0, 0, false},
    {"outbox.backoff", OPT_DURATION, O(outbox.base_ms), 1, 3600 * 1000, false},
    {"outbox.backoff_cap", OPT_DURATION, O(outbox.cap_ms), 1, 86400 * 1000, false},
    {"outbox.attempts", OPT_INT, O(outbox.attempts), 1, 1000, false},
    {"outbox.batch", OPT_INT, O(outbox.batch), 1, 10000, false},
};
#undef O

static const struct {
    const char *name;
    unsigned bit;
} scope_names[] = {{"events", WH_SCOPE_EVENTS},
                   {"review", WH_SCOPE_REVIEW},
                   {"rules", WH_SCOPE_RULES},
                   {"admin", WH_SCOPE_ADMIN},
                   {"read", WH_SCOPE_READ}};

unsigned wh_scope_parse(const char *name, size_t n)
{
    for (size_t i = 0; i < WH_ARRAY_LEN(scope_names); i++)
        if (strlen(scope_names[i].name) == n && !memcmp(scope_names[i].name, name, n))
            return scope_names[i].bit;
    return 0;
}

void wh_scope_format(unsigned scopes, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < WH_ARRAY_LEN(scope_names); i++)
        if (scopes & scope_names[i].bit && len < n)
            len +=
                (size_t)snprintf(buf + len, n - len, "%s%s", len ? "," : "", scope_names[i].name);
}

void wh_config_set(char **field, const char *value)
{
    char *v = strdup(value);
    if (!v) return;
    free(*field);
    *field = v;
}

typedef struct {
    wh_config *c;
    wh_diags *d;
    const char *file; /* for diagnostics */
    const char *dir;  /* relative paths resolve here (NULL: as written) */
} cfg_ld;

#define CERR(L, node, ...)                                                                         \
    wh_diags_add((L)->d, (L)->file, wh_yaml_line(node), wh_yaml_col(node), __VA_ARGS__)

static bool scalar_of(cfg_ld *L, struct fy_node *v, const char *name, const char **s, size_t *n)
{
    if (!v || fy_node_get_type(v) != FYNT_SCALAR || !(*s = fy_node_get_scalar(v, n))) {
        CERR(L, v, "'%s' must be a scalar", name);
        return false;
    }
    return true;
}

static bool parse_size(const char *s, size_t n, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t mul;
    } units[] = {{"", 1},          {"B", 1},     {"KiB", 1024},   {"MiB", 1 << 20},
                 {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000000}, {"GB", 1000000000}};
    size_t i = 0;
    int64_t v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        v = v * 10 + (s[i++] - '0');
        if (v > (int64_t)1 << 40) return false;
    }
    if (i == 0) return false;
    for (size_t k = 0; k < WH_ARRAY_LEN(units); k++)
        if (strlen(units[k].unit) == n - i && !memcmp(units[k].unit, s + i, n - i)) {
            *out = v * units[k].mul;
            return true;
        }
    return false;
}

static void set_opt(cfg_ld *L, const opt_def *o, struct fy_node *v)
{
    const char *s;
    size_t n;
    if (!scalar_of(L, v, o->name, &s, &n)) return;
    char *field = (char *)L->c + o->off;
    int64_t x = 0;
    bool ok = true;
    switch (o->type) {
    case OPT_STR: {
        if (!strcmp(o->name, "bus.http") && !(n == 6 && !memcmp(s, "decide", 6)) &&
            !(n == 7 && !memcmp(s, "publish", 7))) {
            CERR(L, v, "'bus.http' must be decide or publish, not '%.*s'", (int)n, s);
            return;
        }
        if (n == 0) {
            CERR(L, v, "'%s' must not be empty", o->name);
            return;
        }
        char *val = NULL;
        bool word = (n == 4 && !memcmp(s, "auto", 4)) || (n == 4 && !memcmp(s, "none", 4));
        if (o->path && L->dir && s[0] != '/' && !word) {
            if (asprintf(&val, "%s/%.*s", L->dir, (int)n, s) < 0) val = NULL;
        } else if ((val = malloc(n + 1))) { /* s is not NUL-terminated */
            memcpy(val, s, n);
            val[n] = 0;
        }
        if (!val) return;
        free(*(char **)field);
        *(char **)field = val;
        return;
    }
    case OPT_SYNC:
        if (n == 6 && !memcmp(s, "normal", 6))
            *(bool *)field = false;
        else if (n == 4 && !memcmp(s, "full", 4))
            *(bool *)field = true;
        else
            CERR(L, v, "'%s' must be normal or full, not '%.*s'", o->name, (int)n, s);
        return;
    case OPT_INT: {
        char *end;
        errno = 0;
        char tmp[32];
        if (n >= sizeof(tmp)) {
            ok = false;
            break;
        }
        memcpy(tmp, s, n);
        tmp[n] = 0;
        long long y = strtoll(tmp, &end, 10);
        ok = n > 0 && !*end && errno == 0;
        x = y;
        break;
    }
    case OPT_SIZE:
        ok = parse_size(s, n, &x);
        break;
    case OPT_DURATION:
        ok = (n == 1 && s[0] == '0') || wh_parse_duration(s, n, &x);
        break;
    }
    if (!ok) {
        static const char *const what[] = {"", "an integer", "a size (like 8MiB)",
                                           "a duration (like 90d, 1h, 30s) or 0", ""};
        CERR(L, v, "'%s' must be %s, not '%.*s'", o->name, what[o->type], (int)n, s);
        return;
    }
    if (x < o->min || x > o->max) {
        CERR(L, v, "'%s' is %lld; it must be between %lld and %lld", o->name, (long long)x,
             (long long)o->min, (long long)o->max);
        return;
    }
    *(int64_t *)field = x;
}

static void parse_tokens(cfg_ld *L, struct fy_node *v)
{
    wh_config *c = L->c;
    free(c->tokens);
    c->tokens = NULL;
    c->ntokens = 0;
    if (!v || fy_node_get_type(v) != FYNT_SEQUENCE) {
        CERR(L, v, "'tokens' must be a list of {name, sha256, scopes}");
        return;
    }
    int cnt = fy_node_sequence_item_count(v);
    if (cnt <= 0) return;
    c->tokens = calloc((size_t)cnt, sizeof(wh_token));
    if (!c->tokens) return;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it))) {
        if (fy_node_get_type(item) != FYNT_MAPPING) {
            CERR(L, item, "a token must be a mapping with name, sha256 and scopes");
            continue;
        }
        wh_token t = {0};
        bool has_hash = false;
        void *it2 = NULL;
        struct fy_node_pair *pr;
        while ((pr = fy_node_mapping_iterate(item, &it2))) {
            struct fy_node *k = fy_node_pair_key(pr), *val = fy_node_pair_value(pr);
            const char *ks, *s;
            size_t kn, n;
            if (!scalar_of(L, k, "a key", &ks, &kn)) continue;
            if (kn == 4 && !memcmp(ks, "name", 4)) {
                if (scalar_of(L, val, "name", &s, &n))
                    snprintf(t.name, sizeof(t.name), "%.*s", (int)n, s);
            } else if (kn == 6 && !memcmp(ks, "sha256", 6)) {
                if (!scalar_of(L, val, "sha256", &s, &n)) continue;
                if (!wh_hex_decode(s, n, t.sha256, 32))
                    CERR(L, val,
                         "'sha256' must be 64 hex digits (whiply token hash TOKEN prints it)");
                else
                    has_hash = true;
            } else if (kn == 6 && !memcmp(ks, "scopes", 6)) {
                if (!val || fy_node_get_type(val) != FYNT_SEQUENCE) {
                    CERR(L, val, "'scopes' must be a list of events, review, rules, admin, read");
                    continue;
                }
                void *it3 = NULL;
                struct fy_node *sc;
                while ((sc = fy_node_sequence_iterate(val, &it3))) {
                    if (!scalar_of(L, sc, "a scope", &s, &n)) continue;
                    unsigned b = wh_scope_parse(s, n);
                    if (!b)
                        CERR(L, sc, "unknown scope '%.*s' (events, review, rules, admin, read)",
                             (int)n, s);
                    t.scopes |= b;
                }
            } else {
                CERR(L, k, "unknown token key '%.*s' (name, sha256, scopes)", (int)kn, ks);
            }
        }
        if (!has_hash) CERR(L, item, "a token needs 'sha256'");
        if (!t.scopes) CERR(L, item, "a token needs 'scopes'");
        if (!t.name[0]) snprintf(t.name, sizeof(t.name), "token%u", c->ntokens + 1);
        if (has_hash && t.scopes) c->tokens[c->ntokens++] = t;
    }
}

/* ---- platforms.irc: one row per key of a network (the config table's habit) ---- */
typedef enum { NK_STR, NK_INT, NK_BOOL, NK_DURATION, NK_CHANNELS, NK_ENV, NK_LOGIN } net_kind;
typedef struct {
    const char *name; /* a dotted key inside the network's mapping */
    net_kind kind;
    size_t off;
    int64_t min, max;
    size_t env_of; /* NK_ENV: the string field it fills */
} net_key;

#define N(f) offsetof(wh_irc_config, f)
static const net_key irc_keys[] = {
    {"name", NK_STR, N(name), 0, 0, 0},
    {"host", NK_STR, N(host), 0, 0, 0},
    {"port", NK_INT, N(port), 1, 65535, 0},
    {"tls", NK_BOOL, N(tls), 0, 0, 0},
    {"tls_verify", NK_BOOL, N(tls_verify), 0, 0, 0},
    {"ca_file", NK_STR, N(ca_file), 0, 0, 0},
    {"nick", NK_STR, N(nick), 0, 0, 0},
    {"user", NK_STR, N(user), 0, 0, 0},
    {"realname", NK_STR, N(realname), 0, 0, 0},
    {"password", NK_STR, N(password), 0, 0, 0},
    {"password_env", NK_ENV, 0, 0, 0, N(password)},
    {"sasl_user", NK_STR, N(sasl_user), 0, 0, 0},
    {"sasl_pass", NK_STR, N(sasl_pass), 0, 0, 0},
    {"sasl_pass_env", NK_ENV, 0, 0, 0, N(sasl_pass)},
    {"oper.name", NK_STR, N(oper_name), 0, 0, 0},
    {"oper.password", NK_STR, N(oper_pass), 0, 0, 0},
    {"oper.password_env", NK_ENV, 0, 0, 0, N(oper_pass)},
    {"channels", NK_CHANNELS, 0, 0, 0, 0},
    {"flood.burst", NK_INT, N(flood_burst), 1, 1000, 0},
    {"flood.every", NK_DURATION, N(flood_every_ms), 0, 60000, 0},
    {"reconnect.min", NK_DURATION, N(reconnect_min_ms), 10, 3600 * 1000, 0},
    {"reconnect.max", NK_DURATION, N(reconnect_max_ms), 10, 24 * 3600 * 1000, 0},
    {"ping", NK_DURATION, N(ping_ms), 1000, 3600 * 1000, 0},
};
/* platforms.twitch: the same client on Twitch's IRC, with Helix for the actions. */
static const net_key twitch_keys[] = {
    {"name", NK_STR, N(name), 0, 0, 0},
    {"channel", NK_LOGIN, 0, 0, 0, 0},
    {"bot_login", NK_STR, N(nick), 0, 0, 0},
    {"broadcaster_id", NK_STR, N(broadcaster_id), 0, 0, 0},
    {"moderator_id", NK_STR, N(moderator_id), 0, 0, 0},
    {"client_id", NK_STR, N(client_id), 0, 0, 0},
    {"client_secret", NK_STR, N(client_secret), 0, 0, 0},
    {"client_secret_env", NK_ENV, 0, 0, 0, N(client_secret)},
    {"access_token", NK_STR, N(access_token), 0, 0, 0},
    {"access_token_env", NK_ENV, 0, 0, 0, N(access_token)},
    {"refresh_token", NK_STR, N(refresh_token), 0, 0, 0},
    {"refresh_token_env", NK_ENV, 0, 0, 0, N(refresh_token)},
    {"eventsub_secret", NK_STR, N(eventsub_secret), 0, 0, 0},
    {"eventsub_secret_env", NK_ENV, 0, 0, 0, N(eventsub_secret)},
    {"helix_url", NK_STR, N(helix_url), 0, 0, 0},
    {"token_url", NK_STR, N(token_url), 0, 0, 0},
    {"irc.host", NK_STR, N(host), 0, 0, 0},
    {"irc.port", NK_INT, N(port), 1, 65535, 0},
    {"irc.tls", NK_BOOL, N(tls), 0, 0, 0},
    {"tls_verify", NK_BOOL, N(tls_verify), 0, 0, 0},
    {"ca_file", NK_STR, N(ca_file), 0, 0, 0},
    {"flood.burst", NK_INT, N(flood_burst), 1, 1000, 0},
    {"flood.every", NK_DURATION, N(flood_every_ms), 0, 60000, 0},
    {"reconnect.min", NK_DURATION, N(reconnect_min_ms), 10, 3600 * 1000, 0},
    {"reconnect.max", NK_DURATION, N(reconnect_max_ms), 10, 24 * 3600 * 1000, 0},
    {"ping", NK_DURATION, N(ping_ms), 1000, 3600 * 1000, 0},
};
#undef N

static char *dup_n(const char *s, size_t n)
{
    char *v = malloc(n + 1);
    if (v) {
        memcpy(v, s, n);
        v[n] = 0;
    }
    return v;
}

/* What IRC lets into a word of a command line: no space, CR, LF, NUL, and not a leading
 * ':' (which would start the trailing parameter). */
static bool irc_word(const char *s, size_t n)
{
    if (!n || s[0] == ':') return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ' || s[i] == '\r' || s[i] == '\n' || s[i] == 0 || s[i] == ',') return false;
    return true;
}

static void set_net_key(cfg_ld *L, const char *full, const net_key *k, wh_irc_config *net,
                        struct fy_node *v)
{
    const char *s;
    size_t n;
    if (k->kind == NK_CHANNELS) {
        if (!v || fy_node_get_type(v) != FYNT_SEQUENCE) {
            CERR(L, v, "'%s' must be a list of channels, like [\"#chat\"]", full);
            return;
        }
        int cnt = fy_node_sequence_item_count(v);
        for (uint32_t i = 0; i < net->nchannels; i++)
            free(net->channels[i]);
        free(net->channels);
        net->nchannels = 0;
        net->channels = cnt > 0 ? calloc((size_t)cnt, sizeof(char *)) : NULL;
        void *it = NULL;
        struct fy_node *item;
        while ((item = fy_node_sequence_iterate(v, &it))) {
            if (!scalar_of(L, item, full, &s, &n)) continue;
            if (!irc_word(s, n) || !strchr("#&+!", s[0]))
                CERR(L, item,
                     "'%s': '%.*s' is not a channel name (it starts with #, &, + or ! and has no "
                     "space or comma; quote it in YAML: \"#chat\")",
                     full, (int)n, s);
            else if (net->channels)
                net->channels[net->nchannels++] = dup_n(s, n);
        }
        return;
    }
    if (!scalar_of(L, v, full, &s, &n)) return;
    char *field = (char *)net + k->off;
    if (k->kind == NK_LOGIN) { /* a Twitch channel: its login, the IRC channel #login */
        bool ok = n > 0 && n <= 25;
        for (size_t i = 0; ok && i < n; i++)
            ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_';
        if (!ok) {
            CERR(L, v, "'%s' is the channel's login (lowercase letters, digits, '_'), not '%.*s'",
                 full, (int)n, s);
            return;
        }
        for (uint32_t i = 0; i < net->nchannels; i++)
            free(net->channels[i]);
        free(net->channels);
        net->channels = calloc(1, sizeof(char *));
        net->nchannels = 0;
        if (net->channels && asprintf(&net->channels[0], "#%.*s", (int)n, s) > 0)
            net->nchannels = 1;
        return;
    }
    switch (k->kind) {
    case NK_ENV: {
        char *name = dup_n(s, n);
        const char *val = name ? getenv(name) : NULL;
        if (!val || !*val)
            CERR(L, v, "'%s': the environment variable %.*s is not set", full, (int)n, s);
        else {
            char **dst = (char **)((char *)net + k->env_of);
            free(*dst);
            *dst = strdup(val);
        }
        free(name);
        return;
    }
    case NK_STR:
        if (!n) {
            CERR(L, v, "'%s' must not be empty", full);
            return;
        }
        if (!strcmp(k->name, "name")) {
            for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_')) {
                    CERR(L, v, "'%s' is letters, digits, '-' and '_', not '%.*s'", full, (int)n, s);
                    return;
                }
        } else if ((!strcmp(k->name, "nick") || !strcmp(k->name, "user") ||
                    !strcmp(k->name, "host") || !strcmp(k->name, "sasl_user")) &&
                   !irc_word(s, n)) {
            CERR(L, v, "'%s' must be one word without spaces, commas or a leading ':', not '%.*s'",
                 full, (int)n, s);
            return;
        } else if (memchr(s, '\r', n) || memchr(s, '\n', n)) {
            CERR(L, v, "'%s' must be one line", full);
            return;
        }
        free(*(char **)field);
        if (k->off == offsetof(wh_irc_config, ca_file) && L->dir && s[0] != '/') {
            if (asprintf((char **)field, "%s/%.*s", L->dir, (int)n, s) < 0) *(char **)field = NULL;
        } else {
            *(char **)field = dup_n(s, n);
        }
        return;
    case NK_BOOL:
        if (n == 4 && !memcmp(s, "true", 4))
            *(bool *)field = true;
        else if (n == 5 && !memcmp(s, "false", 5))
            *(bool *)field = false;
        else
            CERR(L, v, "'%s' must be true or false, not '%.*s'", full, (int)n, s);
        return;
    case NK_INT:
    case NK_DURATION: {
        int64_t x = 0;
        bool ok;
        if (k->kind == NK_DURATION) {
            ok = (n == 1 && s[0] == '0') || wh_parse_duration(s, n, &x);
        } else {
            char tmp[24], *end;
            ok = n > 0 && n < sizeof(tmp);
            if (ok) {
                memcpy(tmp, s, n);
                tmp[n] = 0;
                errno = 0;
                x = strtoll(tmp, &end, 10);
                ok = !*end && !errno;
            }
        }
        if (!ok)
            CERR(L, v, "'%s' must be %s, not '%.*s'", full,
                 k->kind == NK_INT ? "an integer" : "a duration (like 500ms, 2s)", (int)n, s);
        else if (x < k->min || x > k->max)
            CERR(L, v, "'%s' is %lld; it must be between %lld and %lld", full, (long long)x,
                 (long long)k->min, (long long)k->max);
        else
            *(int64_t *)field = x;
        return;
    }
    case NK_CHANNELS:
    case NK_LOGIN:
        return;
    }
}

static void walk_net(cfg_ld *L, struct fy_node *map, const char *where, const char *prefix,
                     wh_irc_config *net, const net_key *keys, size_t nkeys)
{
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(map, &it))) {
        struct fy_node *k = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        const char *ks;
        size_t kn;
        if (!scalar_of(L, k, "a key", &ks, &kn)) continue;
        char key[64], full[192];
        snprintf(key, sizeof(key), "%s%s%.*s", prefix, *prefix ? "." : "", (int)kn, ks);
        snprintf(full, sizeof(full), "%s.%s", where, key);
        const net_key *nk = NULL;
        bool parent = false;
        size_t kl = strlen(key);
        for (size_t i = 0; i < nkeys; i++) {
            if (!strcmp(keys[i].name, key)) nk = &keys[i];
            if (!strncmp(keys[i].name, key, kl) && keys[i].name[kl] == '.') parent = true;
        }
        if (nk)
            set_net_key(L, full, nk, net, v);
        else if (parent && v && fy_node_get_type(v) == FYNT_MAPPING)
            walk_net(L, v, where, key, net, keys, nkeys);
        else if (parent)
            CERR(L, v, "'%s' must be a mapping", full);
        else
            CERR(L, k, "unknown option '%s' (docs/config.md, Platforms, lists them)", full);
    }
}

/* The string fields of a network, for copy and free. */
#define IRC_STRS(n)                                                                                \
    {                                                                                              \
        &(n)->name, &(n)->host, &(n)->ca_file, &(n)->nick, &(n)->user, &(n)->realname,             \
            &(n)->password, &(n)->sasl_user, &(n)->sasl_pass, &(n)->oper_name, &(n)->oper_pass,    \
            &(n)->broadcaster_id, &(n)->moderator_id, &(n)->client_id, &(n)->client_secret,        \
            &(n)->access_token, &(n)->refresh_token, &(n)->helix_url, &(n)->token_url,             \
            &(n)->eventsub_secret                                                                  \
    }

void wh_irc_config_free(wh_irc_config *n)
{
    char **strs[] = IRC_STRS(n);
    for (size_t i = 0; i < WH_ARRAY_LEN(strs); i++)
        free(*strs[i]);
    for (uint32_t i = 0; n->channels && i < n->nchannels; i++)
        free(n->channels[i]);
    free(n->channels);
    memset(n, 0, sizeof(*n));
}

bool wh_irc_config_copy(wh_irc_config *dst, const wh_irc_config *src)
{
    *dst = *src;
    char **strs[] = IRC_STRS(dst);
    bool ok = true;
    for (size_t i = 0; i < WH_ARRAY_LEN(strs); i++)
        if (*strs[i] && !(*strs[i] = strdup(*strs[i]))) ok = false;
    dst->channels = calloc(src->nchannels ? src->nchannels : 1, sizeof(char *));
    if (!dst->channels) {
        dst->nchannels = 0;
        ok = false;
    }
    for (uint32_t i = 0; dst->channels && i < src->nchannels; i++)
        if (!(dst->channels[i] = strdup(src->channels[i]))) ok = false;
    if (!ok) wh_irc_config_free(dst);
    return ok;
}

/* A key a network must have: its field, and its name in that list. */
typedef struct {
    size_t off;
    const char *key;
} net_req;

/* platforms.irc (twitch false) or platforms.twitch: each item is appended to
 * c->platforms.irc when it has no error. */
static void parse_nets(cfg_ld *L, struct fy_node *v, bool twitch)
{
    wh_config *c = L->c;
    const char *list = twitch ? "platforms.twitch" : "platforms.irc";
    if (!v || fy_node_get_type(v) != FYNT_SEQUENCE) {
        CERR(L, v, "'%s' must be a list (docs/config.md, Platforms)", list);
        return;
    }
    int cnt = fy_node_sequence_item_count(v);
    if (cnt <= 0) return;
    wh_irc_config *grown =
        realloc(c->platforms.irc, (c->platforms.nirc + (size_t)cnt) * sizeof(wh_irc_config));
    if (!grown) return;
    c->platforms.irc = grown;
    static const net_req irc_req[] = {{offsetof(wh_irc_config, name), "name"},
                                      {offsetof(wh_irc_config, host), "host"},
                                      {offsetof(wh_irc_config, nick), "nick"}};
    static const net_req twitch_req[] = {
        {offsetof(wh_irc_config, nick), "bot_login"},
        {offsetof(wh_irc_config, broadcaster_id), "broadcaster_id"},
        {offsetof(wh_irc_config, moderator_id), "moderator_id"},
        {offsetof(wh_irc_config, client_id), "client_id"},
        {offsetof(wh_irc_config, access_token), "access_token (or access_token_env)"}};
    void *it = NULL;
    struct fy_node *item;
    uint32_t idx = 0;
    while ((item = fy_node_sequence_iterate(v, &it))) {
        char where[48];
        snprintf(where, sizeof(where), "%s[%u]", list, idx++);
        if (fy_node_get_type(item) != FYNT_MAPPING) {
            CERR(L, item, "'%s' must be a mapping (docs/config.md, Platforms)", where);
            continue;
        }
        wh_irc_config *n = &c->platforms.irc[c->platforms.nirc];
        *n = (wh_irc_config){.tls_verify = true,
                             .flood_burst = twitch ? 20 : 5, /* Twitch: 20 a 30 s for a user */
                             .flood_every_ms = twitch ? 1500 : 500,
                             .reconnect_min_ms = 1000,
                             .reconnect_max_ms = 300000,
                             .ping_ms = 60000,
                             .twitch = twitch,
                             .tls = twitch};
        uint32_t nd0 = L->d->n;
        if (twitch)
            walk_net(L, item, where, "", n, twitch_keys, WH_ARRAY_LEN(twitch_keys));
        else
            walk_net(L, item, where, "", n, irc_keys, WH_ARRAY_LEN(irc_keys));
        const net_req *req = twitch ? twitch_req : irc_req;
        size_t nreq = twitch ? WH_ARRAY_LEN(twitch_req) : WH_ARRAY_LEN(irc_req);
        for (size_t i = 0; i < nreq; i++)
            if (!*(char **)((char *)n + req[i].off))
                CERR(L, item, "'%s' needs '%s'", where, req[i].key);
        if (!n->nchannels && L->d->n == nd0) /* not when its channels were refused */
            CERR(L, item,
                 twitch ? "'%s' needs 'channel' (the channel's login)"
                        : "'%s' needs 'channels' (at least one)",
                 where);
        if (!!n->sasl_user != !!n->sasl_pass)
            CERR(L, item, "'%s': SASL needs both 'sasl_user' and 'sasl_pass' (or sasl_pass_env)",
                 where);
        if (!!n->oper_name != !!n->oper_pass)
            CERR(L, item, "'%s': 'oper' needs both 'name' and 'password' (or password_env)", where);
        if (n->reconnect_min_ms > n->reconnect_max_ms)
            CERR(L, item, "'%s': 'reconnect.min' is longer than 'reconnect.max'", where);
        if (twitch) {
            static const struct {
                size_t off;
                const char *def;
            } defs[] = {{offsetof(wh_irc_config, name), "twitch"},
                        {offsetof(wh_irc_config, host), "irc.chat.twitch.tv"},
                        {offsetof(wh_irc_config, helix_url), "https://api.twitch.tv/helix"},
                        {offsetof(wh_irc_config, token_url), "https://id.twitch.tv/oauth2/token"}};
            for (size_t i = 0; i < WH_ARRAY_LEN(defs); i++)
                if (!*(char **)((char *)n + defs[i].off))
                    *(char **)((char *)n + defs[i].off) = strdup(defs[i].def);
            if (n->refresh_token && !n->client_secret)
                CERR(L, item, "'%s': a refresh_token needs 'client_secret' (or client_secret_env)",
                     where);
        }
        for (uint32_t j = 0; n->name && j < c->platforms.nirc; j++)
            if (!strcasecmp(c->platforms.irc[j].name, n->name))
                CERR(L, item, "'%s': the name '%s' is taken by %s", where, n->name,
                     c->platforms.irc[j].twitch ? "a platforms.twitch item"
                                                : "a platforms.irc item");
        if (!n->port) n->port = n->tls ? 6697 : 6667;
        if (!n->user && n->nick) n->user = strdup(n->nick);
        if (!n->realname) n->realname = strdup("whiply moderation");
        if (L->d->n != nd0) {
            wh_irc_config_free(n);
            continue;
        }
        c->platforms.nirc++;
    }
}

static void parse_platforms(cfg_ld *L, struct fy_node *v)
{
    for (uint32_t i = 0; i < L->c->platforms.nirc; i++)
        wh_irc_config_free(&L->c->platforms.irc[i]);
    free(L->c->platforms.irc);
    L->c->platforms.irc = NULL;
    L->c->platforms.nirc = 0;
    if (!v || fy_node_get_type(v) != FYNT_MAPPING) {
        CERR(L, v, "'platforms' must be a mapping (irc: [...], twitch: [...])");
        return;
    }
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(v, &it))) {
        struct fy_node *k = fy_node_pair_key(pr), *val = fy_node_pair_value(pr);
        const char *ks;
        size_t kn;
        if (!scalar_of(L, k, "a key", &ks, &kn)) continue;
        if (kn == 3 && !memcmp(ks, "irc", 3))
            parse_nets(L, val, false);
        else if (kn == 6 && !memcmp(ks, "twitch", 6))
            parse_nets(L, val, true);
        else
            CERR(L, k, "unknown platform 'platforms.%.*s' (irc, twitch)", (int)kn, ks);
    }
}

static void walk(cfg_ld *L, struct fy_node *map, const char *prefix)
{
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(map, &it))) {
        struct fy_node *k = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        const char *ks;
        size_t kn;
        if (!scalar_of(L, k, "a key", &ks, &kn)) continue;
        char full[128];
        snprintf(full, sizeof(full), "%s%s%.*s", prefix, *prefix ? "." : "", (int)kn, ks);
        if (!*prefix && !strcmp(full, "tokens")) {
            parse_tokens(L, v);
            continue;
        }
        if (!*prefix && !strcmp(full, "platforms")) {
            parse_platforms(L, v);
            continue;
        }
        if (!*prefix && (!strcmp(full, "webhooks") || !strcmp(full, "alerts"))) {
            wh_config_hooks_parse(L->c, L->d, L->file, v, full[0] == 'a');
            continue;
        }
        const opt_def *o = NULL;
        bool parent = false;
        size_t fl = strlen(full);
        for (size_t i = 0; i < WH_ARRAY_LEN(opts); i++) {
            if (!strcmp(opts[i].name, full)) o = &opts[i];
            if (!strncmp(opts[i].name, full, fl) && opts[i].name[fl] == '.') parent = true;
        }
        if (o) {
            set_opt(L, o, v);
        } else if (parent && v && fy_node_get_type(v) == FYNT_MAPPING) {
            walk(L, v, full);
        } else if (parent) {
            CERR(L, v, "'%s' must be a mapping", full);
        } else {
            CERR(L, k, "unknown option '%s' (docs/config.md lists them)", full);
        }
    }
}

static void load_text(cfg_ld *L, const char *text, size_t len)
{
    struct fy_document *doc = wh_yaml_parse(L->file, text, len, "the config", L->d);
    if (!doc) return;
    struct fy_node *root = fy_document_root(doc);
    if (root && fy_node_get_type(root) == FYNT_MAPPING)
        walk(L, root, "");
    else if (root)
        wh_diags_add(L->d, L->file, 1, 1, "the config must be a mapping of options");
    fy_document_destroy(doc);
}

/* Checks between options. */
static void check_all(cfg_ld *L)
{
    if (L->c->limits.events > L->c->limits.queue)
        wh_diags_add(L->d, L->file, 0, 0,
                     "'limits.events' (%lld) is larger than 'limits.queue' (%lld): a full "
                     "request could never be queued",
                     (long long)L->c->limits.events, (long long)L->c->limits.queue);
    if (L->c->outbox.base_ms > L->c->outbox.cap_ms)
        wh_diags_add(L->d, L->file, 0, 0,
                     "'outbox.backoff' (%lld ms) is larger than 'outbox.backoff_cap' (%lld ms)",
                     (long long)L->c->outbox.base_ms, (long long)L->c->outbox.cap_ms);
}

wh_status wh_config_load(const char *path, wh_config *c, wh_diags *diags)
{
    memset(c, 0, sizeof(*c));
    uint32_t nd0 = diags->n;
    cfg_ld L = {c, diags, "<default config>", NULL};
    load_text(&L, wh_config_default_yaml, sizeof(wh_config_default_yaml) - 1);
    if (path) {
        char *text = NULL;
        size_t len = 0;
        c->path = strdup(path);
        wh_status rst = wh_read_file_max(path, WH_CONFIG_FILE_MAX, &text, &len);
        if (rst != WH_OK) {
            char why[64];
            wh_diags_add(diags, path, 0, 0, "cannot read the config: %s",
                         wh_read_file_why(rst, WH_CONFIG_FILE_MAX, why, sizeof(why)));
        } else {
            char *dir = strdup(path);
            char *slash = dir ? strrchr(dir, '/') : NULL;
            if (slash)
                *slash = 0;
            else if (dir)
                strcpy(dir, ".");
            L.file = path;
            L.dir = dir;
            load_text(&L, text, len);
            free(dir);
            free(text);
        }
    }
    check_all(&L);
    return diags->n == nd0 ? WH_OK : WH_EINVAL;
}

wh_status wh_config_load_mem(const char *label, const char *text, size_t len, wh_config *c,
                             wh_diags *diags)
{
    memset(c, 0, sizeof(*c));
    uint32_t nd0 = diags->n;
    cfg_ld L = {c, diags, "<default config>", NULL};
    load_text(&L, wh_config_default_yaml, sizeof(wh_config_default_yaml) - 1);
    L.file = label;
    load_text(&L, text, len);
    check_all(&L);
    return diags->n == nd0 ? WH_OK : WH_EINVAL;
}

void wh_config_free(wh_config *c)
{
    free(c->listen);
    free(c->data);
    free(c->rules);
    free(c->store.signing_key);
    free(c->store.checkpoints);
    free(c->store.checkpoint_url);
    free(c->bus.url);
    free(c->bus.instance);
    free(c->bus.http);
    free(c->tokens);
    for (uint32_t i = 0; i < c->platforms.nirc; i++)
        wh_irc_config_free(&c->platforms.irc[i]);
    free(c->platforms.irc);
    wh_config_hooks_free(c);
    free(c->path);
    memset(c, 0, sizeof(*c));
}
