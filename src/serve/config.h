/* config.h - the daemon's configuration (whiply.yaml), documented in docs/config.md.
 *
 * One table lists every option with its type, bounds and default (the embedded default is
 * that table, printed by `whiply serve --print-config`); a file overrides what it names,
 * and the command line overrides the file. Relative paths in a file are relative to the
 * file's folder; in the embedded default, to the working directory. */
#ifndef WH_CONFIG_H
#define WH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/rules.h"

/* The largest whiply.yaml read (a regular file only, like the rules). */
#define WH_CONFIG_FILE_MAX ((size_t)1 << 20)

/* Token scopes: what a bearer token may call (docs/api.md lists each route's scope). */
enum {
    WH_SCOPE_EVENTS = 1, /* POST /v1/events, POST /v1/ratelimit */
    WH_SCOPE_REVIEW = 2, /* decisions and the review queue */
    WH_SCOPE_RULES = 4,  /* read, validate and reload rules */
    WH_SCOPE_ADMIN = 8,  /* everything */
    WH_SCOPE_READ = 16,  /* see: decisions, the review queue, the stream, the audit (a viewer) */
};

typedef struct {
    char name[64];
    uint8_t sha256[32]; /* of the token: the config never holds a token itself */
    unsigned scopes;
} wh_token;

/* One IRC network of `platforms.irc` (docs/config.md, "Platforms"): whiply connects, joins
 * the channels, reads chat and carries out the actions decided on it (src/io/irc.h). */
typedef struct {
    char *name;      /* the events' "platform" and the outbox executor's name */
    char *host;      /* the server */
    int64_t port;    /* default 6667, 6697 with tls */
    bool tls;        /* TLS (OpenSSL) */
    bool tls_verify; /* check the server's certificate and name (default true) */
    char *ca_file;   /* trust this PEM file instead of the system's CAs (NULL: the system's) */
    char *nick, *user, *realname;
    char *password;              /* server PASS (NULL: none) */
    char *sasl_user, *sasl_pass; /* SASL PLAIN (NULL: none) */
    char *oper_name, *oper_pass; /* OPER after 001, then MODE +o itself where it is not op */
    char **channels;
    uint32_t nchannels;
    int64_t flood_burst;                        /* lines that may go at once */
    int64_t flood_every_ms;                     /* then one line per this */
    int64_t reconnect_min_ms, reconnect_max_ms; /* backoff between connection attempts */
    int64_t ping_ms; /* a PING to the server after this much silence; dead after 2x */
    /* platforms.twitch only: chat in through Twitch's IRC dialect, actions out through Helix
     * (src/io/twitch.h) */
    bool twitch;
    char *broadcaster_id, *moderator_id; /* the channel's user id, the bot's user id */
    char *client_id, *client_secret;     /* the application's (the secret: token refresh) */
    char *access_token, *refresh_token;  /* the bot's user access token and its refresh */
    char *helix_url, *token_url;         /* Helix's base URL, the OAuth token endpoint */
    char *eventsub_secret;               /* EventSub webhooks' HMAC secret (NULL: none) */
} wh_irc_config;

/* Outgoing webhooks and alerts (config_hooks.c; docs/config.md, docs/platforms.md). */
enum { WH_HOOK_DECISION = 1, WH_HOOK_ACTION = 2, WH_HOOK_REVIEW = 4, WH_HOOK_CHECKPOINT = 8 };
enum { WH_ALERT_HOLD = 1, WH_ALERT_WAVE = 2, WH_ALERT_RAID = 4, WH_ALERT_DEAD_LETTER = 8 };

typedef struct {
    char **v;
    uint32_t n;
} wh_cfg_list; /* empty: any */

typedef struct {
    char *name, *url;
    uint8_t secret[256]; /* the key: base64-decoded (a "whsec_" prefix is dropped first) */
    uint32_t secret_n;
    unsigned events; /* WH_HOOK_* */
    wh_cfg_list channels, actions, rules;
    int64_t timeout_ms;
} wh_webhook_cfg;

typedef struct {
    char *name, *url;
    bool slack;      /* format: slack, else discord */
    unsigned events; /* WH_ALERT_* */
    char *template;  /* one line per item, with {placeholders}; NULL: the default */
    char *dashboard_url;
    wh_cfg_list channels;
    int64_t min_interval_ms; /* at most one post this often */
    int64_t window_ms;       /* items within this of the first are grouped into one post */
    int64_t timeout_ms;
} wh_alert_cfg;

typedef struct {
    char *listen;         /* HOST:PORT (port 0: any free port) */
    char *data;           /* folder of the SQLite database, state snapshot and admin token */
    char *rules;          /* the rules file */
    int64_t threads;      /* requests deciding at once: state shards, each with its own lock */
    int64_t http_threads; /* HTTP event loops (0: two per CPU) */
    struct {
        int64_t body;        /* bytes in a request body */
        int64_t events;      /* events in one request */
        int64_t text;        /* bytes of an event's text */
        int64_t json_depth;  /* nesting of an event or request object */
        int64_t connections; /* open HTTP connections */
        int64_t per_address; /* open HTTP connections from one client address (0: no cap) */
        int64_t head_ms;     /* a request's head (line and headers) must arrive within this */
        int64_t idle_ms;     /* a connection with no request in progress is closed after this */
        int64_t queue;       /* audit rows waiting to be written (beyond: 429) */
        int64_t dedupe;      /* recent event ids remembered per shard (0: none) */
        int64_t state_users; /* reserved */
    } limits;
    struct {
        int64_t audit_ms;  /* audit rows older than this are deleted (0: kept forever) */
        int64_t review_ms; /* resolved review items older than this are deleted (0: kept) */
        int64_t every_ms;  /* how often retention runs */
    } retention;
    struct {
        bool sync_full;       /* fsync every commit (power-loss safe) vs. WAL NORMAL */
        int64_t snapshot_ms;  /* how often the behaviour state is saved (0: only at exit) */
        int64_t preallocate;  /* bytes of WAL written ahead and of database growth at a time */
        char *signing_key;    /* Ed25519 key signing audit checkpoints ("auto": DATA-signing.key
                                 beside the data folder; "none": no signatures) */
        char *checkpoints;    /* where each signed checkpoint is appended, one JSON line each
                                 ("auto": DATA-checkpoints.ndjson; "none": the database only) */
        char *checkpoint_url; /* and POSTed to, as JSON ("none": nowhere) */
        int64_t sign_rows;    /* sign a checkpoint after this many new audit rows */
        int64_t sign_ms;      /* and at least this often while rows are written */
    } store;
    int64_t ratelimit_keys; /* most keys the rate-limit service holds */
    struct {
        char *url;             /* NATS servers, comma-separated ("none": no bus) */
        int64_t partitions;    /* partitions of the events stream */
        char *instance;        /* this instance's name ("auto": host name and process id) */
        int64_t lease_ms;      /* how long a partition's claim lives unless renewed */
        int64_t replicas;      /* stream replicas */
        int64_t duplicates_ms; /* JetStream's duplicate window */
        int64_t batch;         /* events fetched at once per partition */
        int64_t snapshot_ms;   /* an owned partition's state is snapshotted this often */
        char *http;            /* POST /v1/events: "decide" here, or "publish" to the bus */
    } bus;
    struct {
        int64_t base_ms, cap_ms; /* retry backoff: full jitter under min(cap, base * 2^n) */
        int64_t attempts;        /* an operation is dead-lettered after this many */
        int64_t batch;           /* due operations a worker takes at once */
    } outbox;
    wh_webhook_cfg *webhooks;
    uint32_t nwebhooks;
    wh_alert_cfg *alerts;
    uint32_t nalerts;
    wh_token *tokens;
    uint32_t ntokens;
    struct {
        wh_irc_config *irc; /* platforms.irc: the IRC networks, then platforms.twitch */
        uint32_t nirc;
    } platforms;
    char *path;            /* the file it came from, or NULL for the embedded default */
    const char *cache_dir; /* Hyperscan database cache (set by the command line, not a file) */
    bool start_afresh;     /* serve --start-afresh (the command line only): see wh_store_open */
} wh_config;

/* A deep copy of one IRC network's settings (the client keeps its own); false when out of
 * memory (dst is then freed). */
bool wh_irc_config_copy(wh_irc_config *dst, const wh_irc_config *src);
void wh_irc_config_free(wh_irc_config *n);

/* Loads path (NULL: the embedded default only). Every problem is added to diags as
 * file:line:col; returns WH_OK only when there were none. */
wh_status wh_config_load(const char *path, wh_config *c, wh_diags *diags);
/* The same from text (over the embedded default; paths stay as written): for tests. */
wh_status wh_config_load_mem(const char *label, const char *text, size_t len, wh_config *c,
                             wh_diags *diags);
void wh_config_free(wh_config *c);

/* Replaces a string option (the --listen/--data/--rules flags). */
void wh_config_set(char **field, const char *value);

/* Parses the `webhooks:` (alerts false) or `alerts:` list node v of file into c, replacing
 * what was there (config_hooks.c); every problem goes to d as file:line:col. */
struct fy_node;
void wh_config_hooks_parse(wh_config *c, wh_diags *d, const char *file, struct fy_node *v,
                           bool alerts);
void wh_config_hooks_free(wh_config *c);
/* The key of a Standard Webhooks secret: base64 after an optional "whsec_" prefix. False
 * when it is not base64 or does not fit in cap. */
bool wh_config_webhook_secret(const char *s, size_t n, uint8_t *key, size_t cap, uint32_t *kn);

/* The embedded default, as YAML with comments. */
extern const char wh_config_default_yaml[];

/* Parses "events,review" or a YAML sequence item into scope bits; 0 on an unknown name. */
unsigned wh_scope_parse(const char *name, size_t n);
/* "events,review,rules,admin" for the bits, into buf. */
void wh_scope_format(unsigned scopes, char *buf, size_t n);

#endif
