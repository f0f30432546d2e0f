/* irc.c - the IRC adapter (see irc.h). */
#define _GNU_SOURCE
#include "irc.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/irc_parse.h"
#include "io/twitch.h"
#include "serve/ingest.h"
#include "text/utf8.h"

enum { PRIO_NOW = 0, PRIO_ACTION, PRIO_NORMAL, NPRIO }; /* PONG/registration, actions, rest */
#define QUEUE_MAX 20000          /* outgoing lines waiting; beyond, new ones are refused */
#define USERS 4096               /* users remembered (nick -> user@host, account, status) */
#define USER_PROBES 8            /* slots looked at per nick; the stalest is evicted */
#define TIMERS_MAX 10000         /* pending reversals (a quiet's or a mode's end) */
#define SEND_WAIT_MS 15000       /* an action not written within this is retried */
#define CONNECT_TIMEOUT_MS 10000 /* TCP connect and TLS handshake, each */
#define REGISTER_TIMEOUT_MS 60000
#define BUSY_RETRY_MS 50 /* the ingest pushed back: read again after this */
#define SEEN_SLOTS 4096  /* read times of recent events, for the seen -> sent histogram */

/* The seen -> sent histogram's bucket bounds (ms): fine where the goal (50 ms) is. */
static const double lat_bounds_ms[] = {0.25, 0.5, 1,  2,   3,   5,   7.5, 10,  15,   20,  30,
                                       40,   50,  75, 100, 150, 200, 300, 500, 1000, 5000};

typedef struct send_wait {
    uint32_t pending; /* lines queued or in the write buffer */
    bool lost;        /* the connection dropped before they were all written */
} send_wait;

typedef struct line {
    struct line *next;
    send_wait *w;
    uint16_t n;
    char s[];
} line_t;

typedef struct {
    char nick[64], user[32], host[128], account[64];
    uint64_t modes[3]; /* per channel index, a bit: [0] owner, [1] operator/halfop, [2] voice */
    uint64_t seen;     /* a clock of lookups: the least recent is evicted */
} user_t;

typedef struct {
    const char *name; /* the configured channel */
    bool joined, op;
} chan_t;

typedef struct tmr {
    struct tmr *next;
    int64_t at_ms;
    uint32_t chan;
    char line[512];
} tmr_t;

struct wh_irc {
    wh_irc_config cfg; /* a deep copy */
    wh_helix *helix;   /* Twitch: the executor (Helix), and the token for PASS */
    wh_service *svc;
    pthread_t th;
    int wake; /* eventfd: a line was queued, or stop */
    atomic_bool stop;

    pthread_mutex_t mu; /* everything below up to the loop's own state */
    pthread_cond_t sent;
    line_t *qh[NPRIO], *qt[NPRIO];
    uint32_t qn;
    bool registered;
    char nick[64];
    chan_t *chans;
    user_t *users;
    uint64_t clock;
    /* from 005 (ISUPPORT) and CAP */
    char chanmodes[4][40]; /* A (lists), B, C, D */
    char prefix_modes[16], prefix_syms[16];
    char extban_prefix[8], extban_types[40];
    char chantypes[8];
    bool cap_redact;
    tmr_t *timers;
    uint32_t ntimers;
    send_wait **wb_waits; /* the waits whose lines are in wbuf */
    uint32_t nwb, wbcap;

    /* the loop thread's own */
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    bool ssl_want_write;
    char rbuf[WH_IRC_TAGS_MAX_LEN + WH_IRC_REST_MAX_LEN + 16];
    size_t rlen;
    bool rskip; /* dropping the rest of an overlong line */
    wh_buf wbuf;
    size_t woff;
    double tokens;
    uint64_t refill_ns;
    uint32_t attempts;
    uint64_t counter;
    uint64_t last_rx_ns, ping_sent_ns, connected_ns, join_ns;
    bool caps_done, sasl_ok, is_oper;
    bool ngircd_f;  /* 004: ngIRCd with user mode F (relaxed flood protection, for operators) */
    wh_buf caps_ls; /* CAP LS may come in several lines */
    wh_buf batch;   /* event lines read and not yet submitted */
    uint32_t nbatch;
    uint64_t busy_until_ns;
    uint64_t read_ns; /* when the bytes being parsed were read */
    uint64_t rng;

    _Atomic uint64_t n_connects, n_in, n_out, n_events, n_bad, n_busy, n_actions, n_dropped;

    /* seen -> sent: when each recent event's line was read (by a hash of its id, under mu),
     * and a histogram of the time to the action's last line written */
    struct {
        uint64_t key, ns;
    } seen[SEEN_SLOTS];
    _Atomic uint64_t lat_le[WH_ARRAY_LEN(lat_bounds_ms) + 1];
    _Atomic uint64_t lat_sum_us;
};

/* ---------------------------------------------------------------- small helpers */

static char ifold(char c)
{
    if (c >= 'A' && c <= 'Z') return (char)(c + 32);
    return c == '[' ? '{' : c == ']' ? '}' : c == '\\' ? '|' : c == '~' ? '^' : c;
}

static bool name_eq(const char *a, wh_str b)
{
    return wh_irc_name_eq((wh_str){a, (uint32_t)strlen(a)}, b);
}

/* Glob (* and ?) under IRC case folding, for ban masks against nick!user@host. */
static bool glob(const char *p, const char *s)
{
    const char *star = NULL, *ss = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            ss = s;
        } else if (*p && (*p == '?' || ifold(*p) == ifold(*s))) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++ss;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return !*p;
}

static void copy_str(char *dst, size_t cap, wh_str s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = 0;
}

static void cstr_copy(char *dst, size_t cap, const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < cap && s[i]; i++)
        dst[i] = s[i];
    dst[i] = 0;
}

static void wake(wh_irc *c)
{
    uint64_t one = 1;
    ssize_t r = write(c->wake, &one, sizeof(one));
    (void)r;
}

/* ---------------------------------------------------------------- users */

static uint64_t fold_hash(const char *nick, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)ifold(nick[i])) * 1099511628211ULL;
    return h;
}

/* The user of nick (under mu); create: make one, evicting the stalest of its probes. */
static user_t *user_get(wh_irc *c, wh_str nick, bool create)
{
    if (!nick.n || nick.n >= sizeof(c->users[0].nick)) return NULL;
    uint64_t h = fold_hash(nick.p, nick.n);
    user_t *stalest = NULL;
    for (uint32_t k = 0; k < USER_PROBES; k++) {
        user_t *u = &c->users[(h + k) % USERS];
        if (u->nick[0] && name_eq(u->nick, nick)) {
            u->seen = ++c->clock;
            return u;
        }
        if (!stalest || u->seen < stalest->seen) stalest = u;
    }
    if (!create) return NULL;
    memset(stalest, 0, sizeof(*stalest));
    copy_str(stalest->nick, sizeof(stalest->nick), nick);
    stalest->seen = ++c->clock;
    return stalest;
}

/* Remembers what a prefix says about its user (under mu). */
static user_t *user_seen(wh_irc *c, const wh_irc_msg *m)
{
    user_t *u = user_get(c, m->nick, true);
    if (!u) return NULL;
    if (m->user.n) copy_str(u->user, sizeof(u->user), m->user);
    if (m->host.n) copy_str(u->host, sizeof(u->host), m->host);
    wh_str acc;
    if (wh_irc_tag_get(m, "account", &acc) && acc.n && !(acc.n == 1 && acc.p[0] == '*'))
        copy_str(u->account, sizeof(u->account), acc);
    return u;
}

static int chan_index(wh_irc *c, wh_str name)
{
    for (uint32_t i = 0; i < c->cfg.nchannels; i++)
        if (name_eq(c->chans[i].name, name)) return (int)i;
    return -1;
}

/* ---------------------------------------------------------------- outgoing lines */

/* Queues one line (under mu). Refused (false) when the queue is full. */
static bool enqueue(wh_irc *c, int prio, send_wait *w, const char *s, size_t n)
{
    if (c->qn >= QUEUE_MAX) {
        atomic_fetch_add(&c->n_dropped, 1);
        return false;
    }
    if (n > 510) n = 510; /* a longer line is cut, not sent broken */
    line_t *l = malloc(sizeof(*l) + n + 2);
    if (!l) return false;
    memcpy(l->s, s, n);
    memcpy(l->s + n, "\r\n", 2);
    l->n = (uint16_t)(n + 2);
    l->w = w;
    l->next = NULL;
    if (c->qt[prio])
        c->qt[prio]->next = l;
    else
        c->qh[prio] = l;
    c->qt[prio] = l;
    c->qn++;
    if (w) w->pending++;
    return true;
}

static void sendf(wh_irc *c, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sendf(wh_irc *c, int prio, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof(line)) n = sizeof(line) - 1;
    pthread_mutex_lock(&c->mu);
    enqueue(c, prio, NULL, line, (size_t)n);
    pthread_mutex_unlock(&c->mu);
}

/* Text for a trailing parameter: one line (CR, LF and NUL become spaces), at most max bytes,
 * cut on a UTF-8 boundary. */
static void safe_text(char *out, size_t max, const char *s)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    out[n] = 0;
}

/* A nick or mask for a middle parameter: no space, no leading ':'. */
static bool safe_word(const char *s)
{
    if (!*s || *s == ':') return false;
    for (; *s; s++)
        if (*s == ' ' || *s == '\r' || *s == '\n' || *s == ',') return false;
    return true;
}

/* Drops every queued line (on a disconnect), failing the waits (under mu). */
static void drop_queue(wh_irc *c)
{
    for (int p = 0; p < NPRIO; p++) {
        for (line_t *l = c->qh[p], *nx; l; l = nx) {
            nx = l->next;
            if (l->w) l->w->lost = true;
            free(l);
        }
        c->qh[p] = c->qt[p] = NULL;
    }
    c->qn = 0;
    for (uint32_t i = 0; i < c->nwb; i++)
        c->wb_waits[i]->lost = true;
    c->nwb = 0;
    pthread_cond_broadcast(&c->sent);
}

/* Removes the queued lines of w (an executor giving up), under mu. */
static void unqueue(wh_irc *c, send_wait *w)
{
    for (int p = 0; p < NPRIO; p++) {
        line_t *prev = NULL;
        for (line_t *l = c->qh[p], *nx; l; l = nx) {
            nx = l->next;
            if (l->w != w) {
                prev = l;
                continue;
            }
            if (prev)
                prev->next = nx;
            else
                c->qh[p] = nx;
            if (c->qt[p] == l) c->qt[p] = prev;
            c->qn--;
            w->pending--;
            free(l);
        }
    }
}

/* ---------------------------------------------------------------- the socket */

static ssize_t io_write(wh_irc *c, const char *p, size_t n)
{
    if (c->ssl) {
        size_t w = 0;
        int r = SSL_write_ex(c->ssl, p, n, &w);
        if (r > 0) return (ssize_t)w;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return 0;
        return -1;
    }
    ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    return r;
}

/* -1: closed or failed; 0: nothing now. */
static ssize_t io_read(wh_irc *c, char *p, size_t n)
{
    if (c->ssl) {
        size_t got = 0;
        c->ssl_want_write = false;
        int r = SSL_read_ex(c->ssl, p, n, &got);
        if (r > 0) return (ssize_t)got;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) return 0;
        if (e == SSL_ERROR_WANT_WRITE) {
            c->ssl_want_write = true;
            return 0;
        }
        return -1;
    }
    ssize_t r = recv(c->fd, p, n, 0);
    if (r == 0) return -1;
    if (r < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    return r;
}

/* Waits for fd (events) or the wake fd, up to ms; false on stop or timeout. */
static bool wait_fd(wh_irc *c, int fd, short events, int ms)
{
    struct pollfd p[2] = {{fd, events, 0}, {c->wake, POLLIN, 0}};
    uint64_t end = wh_mono_ns() + (uint64_t)ms * 1000000;
    for (;;) {
        if (atomic_load(&c->stop)) return false;
        uint64_t now = wh_mono_ns();
        if (now >= end) return false;
        int r = poll(p, fd >= 0 ? 2 : 1, (int)((end - now) / 1000000) + 1);
        if (r < 0 && errno != EINTR) return false;
        if (fd >= 0 && p[0].revents) return true;
        if (p[1].revents) {
            uint64_t v;
            ssize_t rr = read(c->wake, &v, sizeof(v));
            (void)rr;
            if (fd < 0 && atomic_load(&c->stop)) return false;
        }
        if (fd < 0) p[0] = p[1];
    }
}

/* Sleeps ms unless stopped (false then). */
static bool nap(wh_irc *c, int64_t ms)
{
    struct pollfd p = {c->wake, POLLIN, 0};
    uint64_t end = wh_mono_ns() + (uint64_t)ms * 1000000;
    while (!atomic_load(&c->stop)) {
        uint64_t now = wh_mono_ns();
        if (now >= end) return true;
        if (poll(&p, 1, (int)((end - now) / 1000000) + 1) > 0) {
            uint64_t v;
            ssize_t r = read(c->wake, &v, sizeof(v));
            (void)r;
        }
    }
    return false;
}

static bool tcp_connect(wh_irc *c, char *why, size_t whyn)
{
    char port[8];
    snprintf(port, sizeof(port), "%lld", (long long)c->cfg.port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(c->cfg.host, port, &hints, &res);
    if (g) {
        snprintf(why, whyn, "cannot resolve %s: %s", c->cfg.host, gai_strerror(g));
        return false;
    }
    snprintf(why, whyn, "cannot connect to %s:%s", c->cfg.host, port);
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS && wait_fd(c, fd, POLLOUT, CONNECT_TIMEOUT_MS)) {
            int err = 0;
            socklen_t l = sizeof(err);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
            r = err ? -1 : 0;
            if (err) errno = err;
        }
        if (r == 0) {
            c->fd = fd;
            freeaddrinfo(res);
            return true;
        }
        snprintf(why, whyn, "cannot connect to %s:%s: %s", c->cfg.host, port, strerror(errno));
        close(fd);
    }
    freeaddrinfo(res);
    return false;
}

static bool tls_handshake(wh_irc *c, char *why, size_t whyn)
{
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) goto fail;
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* the name to check: an address literal is matched against the certificate's IP
     * addresses (and is not sent as SNI), a host name against its DNS names */
    unsigned char ip[16];
    bool literal =
        inet_pton(AF_INET, c->cfg.host, ip) == 1 || inet_pton(AF_INET6, c->cfg.host, ip) == 1;
    if (!literal) SSL_set_tlsext_host_name(c->ssl, c->cfg.host);
    if (c->cfg.tls_verify &&
        !(literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->cfg.host)
                  : SSL_set1_host(c->ssl, c->cfg.host)))
        goto fail;
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1) return true;
        int e = SSL_get_error(c->ssl, r);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev || !wait_fd(c, c->fd, ev, CONNECT_TIMEOUT_MS)) break;
    }
fail:;
    unsigned long err = ERR_get_error();
    long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    snprintf(why, whyn, "TLS with %s failed: %s", c->cfg.host,
             vr != X509_V_OK ? X509_verify_cert_error_string(vr)
             : err           ? ERR_reason_error_string(err)
                             : "the handshake did not finish");
    ERR_clear_error();
    return false;
}

static void disconnect(wh_irc *c, const char *why)
{
    if (c->fd < 0) return;
    fprintf(stderr, "whiply: irc %s: disconnected: %s\n", c->cfg.name, why);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    c->fd = -1;
    c->rlen = 0;
    c->rskip = false;
    c->wbuf.len = c->woff = 0;
    pthread_mutex_lock(&c->mu);
    c->registered = false;
    for (uint32_t i = 0; i < c->cfg.nchannels; i++)
        c->chans[i].joined = c->chans[i].op = false;
    drop_queue(c);
    pthread_mutex_unlock(&c->mu);
}

/* Registration: CAP LS 302 first so that the capabilities are settled before 001. */
static void hello(wh_irc *c)
{
    c->caps_done = c->sasl_ok = c->is_oper = c->ngircd_f = false;
    c->caps_ls.len = 0;
    c->tokens = (double)c->cfg.flood_burst;
    c->refill_ns = wh_mono_ns();
    c->last_rx_ns = c->connected_ns = wh_mono_ns();
    c->ping_sent_ns = 0;
    pthread_mutex_lock(&c->mu);
    snprintf(c->nick, sizeof(c->nick), "%s", c->cfg.nick);
    c->cap_redact = false;
    memset(c->chanmodes, 0, sizeof(c->chanmodes));
    snprintf(c->chanmodes[0], sizeof(c->chanmodes[0]), "b"); /* RFC 2812's until 005 says */
    snprintf(c->prefix_modes, sizeof(c->prefix_modes), "ov");
    snprintf(c->prefix_syms, sizeof(c->prefix_syms), "@+");
    snprintf(c->chantypes, sizeof(c->chantypes), "#&");
    c->extban_prefix[0] = c->extban_types[0] = 0;
    pthread_mutex_unlock(&c->mu);
    if (c->cfg.twitch) { /* Twitch's IRC: CAP REQ without LS, the token as the password */
        char tok[512];
        wh_helix_token(c->helix, tok, sizeof(tok));
        sendf(c, PRIO_NOW, "CAP REQ :twitch.tv/tags twitch.tv/commands twitch.tv/membership");
        sendf(c, PRIO_NOW, "PASS oauth:%s", tok);
        OPENSSL_cleanse(tok, sizeof(tok));
        sendf(c, PRIO_NOW, "NICK %s", c->cfg.nick);
        return;
    }
    sendf(c, PRIO_NOW, "CAP LS 302");
    if (c->cfg.password) sendf(c, PRIO_NOW, "PASS :%s", c->cfg.password);
    sendf(c, PRIO_NOW, "NICK %s", c->cfg.nick);
    sendf(c, PRIO_NOW, "USER %s 0 * :%s", c->cfg.user, c->cfg.realname);
}

/* ---------------------------------------------------------------- events in */

/* One submission: the request with its body and answer lines. The ingest's notice (from the
 * audit writer) and flush_batch each hold a reference: the notice may come before
 * wh_ingest_submit returns, or after flush_batch is done with the answers. */
typedef struct {
    wh_ingest_req r; /* first: the notice gets &r */
    wh_buf body, out;
    atomic_int refs;
} submission;

static void sub_release(submission *sb)
{
    if (atomic_fetch_sub(&sb->refs, 1) != 1) return;
    wh_buf_free(&sb->body);
    wh_buf_free(&sb->out);
    free(sb);
}

static void submit_done(wh_ingest_req *r, bool durable)
{
    (void)durable; /* not durable: the decisions are not acted on (the outbox has none) */
    sub_release((submission *)r);
}

/* Submits the events read so far; false when the ingest pushed back (they stay). */
static bool flush_batch(wh_irc *c)
{
    if (!c->nbatch) return true;
    submission *sb = calloc(1, sizeof(*sb));
    if (!sb) return false;
    sb->body = c->batch; /* ownership moves to the submission */
    wh_buf_init(&sb->out);
    atomic_init(&sb->refs, 2);
    sb->r.body = sb->body.p;
    sb->r.len = sb->body.len;
    sb->r.out = &sb->out;
    sb->r.done = submit_done;
    wh_status st = wh_ingest_submit(c->svc, &sb->r);
    if (st == WH_EBUSY) {
        c->batch = sb->body;
        wh_buf_free(&sb->out);
        free(sb);
        atomic_fetch_add(&c->n_busy, 1);
        c->busy_until_ns = wh_mono_ns() + BUSY_RETRY_MS * 1000000ULL;
        return false;
    }
    if (st != WH_OK) { /* no notice comes */
        fprintf(stderr, "whiply: irc %s: %u events not decided: %s\n", c->cfg.name, c->nbatch,
                wh_status_str(st));
        atomic_store(&sb->refs, 1);
    } else {
        atomic_fetch_add(&c->n_events, sb->r.nlines - sb->r.nerrors);
        if (sb->r.nerrors) { /* an event this adapter made that is not one: say which */
            atomic_fetch_add(&c->n_bad, sb->r.nerrors);
            const char *e = strstr(wh_buf_cstr(&sb->out), "\"error\"");
            const char *bol = e ? e : "";
            while (e && bol > sb->out.p && bol[-1] != '\n')
                bol--;
            fprintf(stderr, "whiply: irc %s: %u events refused, the first: %.*s\n", c->cfg.name,
                    sb->r.nerrors, (int)strcspn(bol, "\n"), bol);
        }
    }
    sub_release(sb);
    wh_buf_init(&c->batch);
    c->nbatch = 0;
    return st == WH_OK;
}

/* The event's id: the server's msgid where it gave one, else network-time-counter. */
static void event_head(wh_irc *c, const wh_irc_msg *m, const char *type, wh_str channel,
                       int64_t *ts, uint32_t sub)
{
    wh_buf *b = &c->batch;
    wh_str t;
    *ts = 0;
    if (c->cfg.twitch && wh_irc_tag_get(m, "tmi-sent-ts", &t) && t.n && t.n < 16) {
        for (uint32_t i = 0; i < t.n && t.p[i] >= '0' && t.p[i] <= '9'; i++)
            *ts = *ts * 10 + (t.p[i] - '0');
    } else if (!wh_irc_tag_get(m, "time", &t) || !wh_parse_rfc3339(t.p, t.n, ts)) {
        *ts = 0;
    }
    if (!*ts) *ts = wh_now_ms();
    wh_str id;
    bool ok = wh_irc_tag_get(m, c->cfg.twitch ? "id" : "msgid", &id) && id.n && id.n <= 100;
    for (uint32_t i = 0; ok && i < id.n; i++)
        if ((unsigned char)id.p[i] < 0x20 || id.p[i] == 0x7f || id.p[i] == '\\') ok = false;
    wh_buf_puts(b, "{\"id\":");
    char tmp[160];
    int n;
    if (ok)
        n = snprintf(tmp, sizeof(tmp), "%.*s%s%.0u", (int)id.n, id.p, sub ? "." : "", sub);
    else
        n = snprintf(tmp, sizeof(tmp), "irc-%s-%lld-%llu", c->cfg.name, (long long)*ts,
                     (unsigned long long)++c->counter);
    wh_buf_json_str(b, tmp, (size_t)n);
    uint64_t key = fold_hash(tmp, (size_t)n) | 1; /* (under mu, as the executor reads it) */
    c->seen[key % SEEN_SLOTS].key = key;
    c->seen[key % SEEN_SLOTS].ns = c->read_ns;
    wh_buf_printf(b, ",\"type\":\"%s\",\"platform\":", type);
    wh_buf_json_str(b, c->cfg.name, strlen(c->cfg.name));
    wh_buf_puts(b, ",\"channel\":");
    const char *ch = c->chans[chan_index(c, channel)].name; /* as configured */
    wh_buf_json_str(b, ch, strlen(ch));
}

/* Text as UTF-8: a line that is not is taken as Latin-1, as IRC clients do. */
static void json_text(wh_buf *b, wh_str s)
{
    if (wh_utf8_invalid_at(s.p, s.n) == (size_t)-1) {
        wh_buf_json_str(b, s.p, s.n);
        return;
    }
    char *u = malloc((size_t)s.n * 2 + 1);
    if (!u) return;
    size_t o = 0;
    for (uint32_t i = 0; i < s.n; i++)
        o += wh_utf8_encode((unsigned char)s.p[i], u + o);
    wh_buf_json_str(b, u, o);
    free(u);
}

/* The id whiply keys a user by: the account where the network says it, else the nick
 * (under mu). */
static wh_str user_key(const user_t *u, wh_str nick)
{
    if (u && u->account[0]) return (wh_str){u->account, (uint32_t)strlen(u->account)};
    return nick;
}

static void json_user(wh_irc *c, const user_t *u, wh_str nick, int ci)
{
    wh_buf *b = &c->batch;
    wh_str key = user_key(u, nick);
    wh_buf_puts(b, ",\"user\":{\"id\":");
    wh_buf_json_str(b, key.p, key.n);
    wh_buf_puts(b, ",\"name\":");
    wh_buf_json_str(b, nick.p, nick.n);
    if (u && ci >= 0) {
        static const char *const role[3] = {"broadcaster", "moderator", "vip"};
        const char *sep = ",\"roles\":[";
        for (int k = 0; k < 3; k++)
            if (u->modes[k] >> ci & 1) {
                wh_buf_printf(b, "%s\"%s\"", sep, role[k]);
                sep = ",";
            }
        if (*sep == ',' && sep[1] == 0) wh_buf_putc(b, ']');
    }
    wh_buf_putc(b, '}');
}

static void end_event(wh_irc *c, int64_t ts, const user_t *u, wh_str msgid)
{
    wh_buf *b = &c->batch;
    wh_buf_printf(b, ",\"ts\":%lld", (long long)ts);
    if (msgid.n || (u && u->host[0])) {
        wh_buf_puts(b, ",\"meta\":{");
        if (msgid.n) {
            wh_buf_puts(b, "\"msg_id\":");
            wh_buf_json_str(b, msgid.p, msgid.n);
        }
        if (u && u->host[0]) {
            if (msgid.n) wh_buf_putc(b, ',');
            wh_buf_puts(b, "\"host\":");
            wh_buf_json_str(b, u->host, strlen(u->host));
        }
        wh_buf_putc(b, '}');
    }
    wh_buf_puts(b, "}\n");
    c->nbatch++;
}

static bool from_me(wh_irc *c, const wh_irc_msg *m)
{
    return name_eq(c->nick, m->nick);
}

/* A tag's value unescaped into out (NUL-terminated, cut to cap); "" when absent. */
static const char *tag_str(const wh_irc_msg *m, const char *key, char *out, size_t cap)
{
    wh_str v;
    out[0] = 0;
    if (!wh_irc_tag_get(m, key, &v) || v.n >= cap) return out;
    out[wh_irc_tag_unescape(v, out)] = 0;
    return out;
}

/* Twitch's PRIVMSG (twitch.tv/tags): user-id, display-name, badges, first-msg, id,
 * tmi-sent-ts, room-id, returning-chatter, emotes (under mu). */
static void twitch_message(wh_irc *c, const wh_irc_msg *m, user_t *u, wh_str text)
{
    wh_buf *b = &c->batch;
    char uid[64], name[128], v[512];
    tag_str(m, "user-id", uid, sizeof(uid));
    tag_str(m, "display-name", name, sizeof(name));
    if (u && uid[0]) cstr_copy(u->account, sizeof(u->account), uid, sizeof(uid)); /* the key */
    int64_t ts;
    event_head(c, m, "message", m->params[0], &ts, 0);
    wh_buf_puts(b, ",\"user\":{\"id\":");
    if (uid[0])
        wh_buf_json_str(b, uid, strlen(uid));
    else
        wh_buf_json_str(b, m->nick.p, m->nick.n);
    wh_buf_puts(b, ",\"name\":");
    if (name[0])
        wh_buf_json_str(b, name, strlen(name));
    else
        wh_buf_json_str(b, m->nick.p, m->nick.n);
    wh_str badges = {0}, mod = {0}, first = {0};
    wh_irc_tag_get(m, "badges", &badges);
    wh_irc_tag_get(m, "mod", &mod);
    wh_twitch_roles(b, badges, WH_STR_EQ_LIT(mod, "1"));
    if (wh_irc_tag_get(m, "first-msg", &first) && first.n == 1)
        wh_buf_printf(b, ",\"first_message\":%s", first.p[0] == '1' ? "true" : "false");
    wh_buf_puts(b, "},\"text\":");
    json_text(b, text);
    wh_buf_printf(b, ",\"ts\":%lld,\"meta\":{\"login\":", (long long)ts);
    wh_buf_json_str(b, m->nick.p, m->nick.n);
    static const struct {
        const char *tag, *key;
    } meta[] = {{"id", "msg_id"}, {"room-id", "room_id"}, {"emotes", "emotes"}};
    for (size_t i = 0; i < WH_ARRAY_LEN(meta); i++)
        if (tag_str(m, meta[i].tag, v, sizeof(v))[0]) {
            wh_buf_printf(b, ",\"%s\":", meta[i].key);
            wh_buf_json_str(b, v, strlen(v));
        }
    if (tag_str(m, "returning-chatter", v, sizeof(v))[0])
        wh_buf_printf(b, ",\"returning_chatter\":%s", v[0] == '1' ? "true" : "false");
    wh_buf_puts(b, "}}\n");
    c->nbatch++;
}

/* CLEARCHAT #chan :login (a ban, or a timeout with ban-duration) and CLEARMSG (one message
 * deleted) by the channel's moderators; those whiply's own Helix calls caused are skipped.
 * Twitch does not say which moderator. */
static void twitch_clear(wh_irc *c, const wh_irc_msg *m, bool one)
{
    if (m->nparams < 2 || chan_index(c, m->params[0]) < 0) return; /* CLEARCHAT alone: chat */
    char target[64], dur[16], msg[128];
    tag_str(m, one ? "target-msg-id" : "target-user-id", target, sizeof(target));
    if (target[0] && c->helix && wh_helix_recent(c->helix, target, strlen(target))) return;
    pthread_mutex_lock(&c->mu);
    wh_str login = m->params[1];
    if (one) { /* the user, by the id whiply keys them by when it saw them speak */
        tag_str(m, "login", msg, sizeof(msg));
        login = (wh_str){msg, (uint32_t)strlen(msg)};
        user_t *u = user_get(c, login, false);
        wh_str key = user_key(u, login);
        char ref[128];
        cstr_copy(ref, sizeof(ref), target, sizeof(target));
        int64_t ts;
        event_head(c, m, "mod_action", m->params[0], &ts, 0);
        wh_buf_puts(&c->batch, ",\"target\":");
        wh_buf_json_str(&c->batch, key.p, key.n);
        wh_buf_puts(&c->batch, ",\"action\":\"delete\",\"ref_event\":");
        wh_buf_json_str(&c->batch, ref, strlen(ref));
        wh_buf_printf(&c->batch, ",\"ts\":%lld}\n", (long long)ts);
        c->nbatch++;
    } else {
        tag_str(m, "ban-duration", dur, sizeof(dur));
        int64_t ts;
        event_head(c, m, "mod_action", m->params[0], &ts, 0);
        wh_buf_puts(&c->batch, ",\"target\":");
        if (target[0])
            wh_buf_json_str(&c->batch, target, strlen(target));
        else
            wh_buf_json_str(&c->batch, login.p, login.n);
        wh_buf_printf(&c->batch, ",\"action\":\"%s\"", dur[0] ? "timeout" : "ban");
        if (dur[0]) wh_buf_printf(&c->batch, ",\"duration_s\":%lld", atoll(dur));
        wh_buf_printf(&c->batch, ",\"ts\":%lld}\n", (long long)ts);
        c->nbatch++;
    }
    pthread_mutex_unlock(&c->mu);
}

/* USERNOTICE msg-id=raid: another channel's viewers arrive. whiply sees raids as bursts of
 * joins (docs/rules.md, joins): the raid itself is one join, of the raiding broadcaster,
 * with meta.raid {from, viewers}; its viewers count as they join. */
static void twitch_usernotice(wh_irc *c, const wh_irc_msg *m)
{
    char kind[32], login[64], uid[64], viewers[16];
    if (m->nparams < 1 || chan_index(c, m->params[0]) < 0 ||
        strcmp(tag_str(m, "msg-id", kind, sizeof(kind)), "raid"))
        return;
    tag_str(m, "msg-param-login", login, sizeof(login));
    tag_str(m, "user-id", uid, sizeof(uid));
    tag_str(m, "msg-param-viewerCount", viewers, sizeof(viewers));
    pthread_mutex_lock(&c->mu);
    int64_t ts;
    event_head(c, m, "join", m->params[0], &ts, 0);
    wh_buf *b = &c->batch;
    wh_buf_puts(b, ",\"user\":{\"id\":");
    wh_buf_json_str(b, uid[0] ? uid : login, strlen(uid[0] ? uid : login));
    wh_buf_puts(b, ",\"name\":");
    wh_buf_json_str(b, login, strlen(login));
    wh_buf_printf(b, "},\"ts\":%lld,\"meta\":{\"raid\":{\"from\":", (long long)ts);
    wh_buf_json_str(b, login, strlen(login));
    wh_buf_printf(b, ",\"viewers\":%lld}}}\n", atoll(viewers));
    c->nbatch++;
    pthread_mutex_unlock(&c->mu);
}

static void on_privmsg(wh_irc *c, const wh_irc_msg *m)
{
    if (m->nparams < 2 || !m->host.n) return; /* a server's or a service's */
    int ci = chan_index(c, m->params[0]);
    if (ci < 0 || from_me(c, m)) return; /* a private message, or a channel not ours */
    wh_str text = m->params[1];
    if (text.n && text.p[0] == 1) { /* CTCP: ACTION is said text, the rest is not chat */
        if (text.n < 8 || memcmp(text.p, "\1ACTION ", 8)) return;
        text.p += 8;
        text.n -= 8;
        if (text.n && text.p[text.n - 1] == 1) text.n--;
    }
    int64_t ts;
    pthread_mutex_lock(&c->mu);
    user_t *u = user_seen(c, m);
    if (c->cfg.twitch) {
        twitch_message(c, m, u, text);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    event_head(c, m, "message", m->params[0], &ts, 0);
    json_user(c, u, m->nick, ci);
    wh_buf_puts(&c->batch, ",\"text\":");
    json_text(&c->batch, text);
    wh_str msgid = {0};
    wh_irc_tag_get(m, "msgid", &msgid);
    end_event(c, ts, u, msgid);
    pthread_mutex_unlock(&c->mu);
}

static void on_join_part(wh_irc *c, const wh_irc_msg *m, bool join)
{
    if (m->nparams < 1) return;
    int ci = chan_index(c, m->params[0]);
    if (ci < 0) return;
    pthread_mutex_lock(&c->mu);
    if (from_me(c, m)) {
        c->chans[ci].joined = join;
        if (!join) c->chans[ci].op = false;
        pthread_mutex_unlock(&c->mu);
        if (join) fprintf(stderr, "whiply: irc %s: joined %s\n", c->cfg.name, c->chans[ci].name);
        return;
    }
    user_t *u = user_seen(c, m);
    if (join && u && m->nparams >= 2 && !(m->params[1].n == 1 && m->params[1].p[0] == '*'))
        copy_str(u->account, sizeof(u->account), m->params[1]); /* extended-join */
    if (u && !join)
        for (int k = 0; k < 3; k++)
            u->modes[k] &= ~(1ULL << ci);
    int64_t ts;
    event_head(c, m, join ? "join" : "part", m->params[0], &ts, 0);
    json_user(c, u, m->nick, ci);
    end_event(c, ts, u, (wh_str){0});
    pthread_mutex_unlock(&c->mu);
}

static void mod_action(wh_irc *c, const wh_irc_msg *m, wh_str target, const char *action,
                       wh_str mask, uint32_t sub)
{
    int64_t ts;
    event_head(c, m, "mod_action", m->params[0], &ts, sub);
    wh_buf *b = &c->batch;
    wh_buf_puts(b, ",\"moderator\":");
    wh_buf_json_str(b, m->nick.p, m->nick.n);
    wh_buf_puts(b, ",\"target\":");
    wh_buf_json_str(b, target.p, target.n);
    wh_buf_printf(b, ",\"action\":\"%s\"", action);
    wh_buf_printf(b, ",\"ts\":%lld", (long long)ts);
    if (mask.n) {
        wh_buf_puts(b, ",\"meta\":{\"mask\":");
        wh_buf_json_str(b, mask.p, mask.n);
        wh_buf_putc(b, '}');
    }
    wh_buf_puts(b, "}\n");
    c->nbatch++;
}

static void on_kick(wh_irc *c, const wh_irc_msg *m)
{
    if (m->nparams < 2) return;
    int ci = chan_index(c, m->params[0]);
    if (ci < 0) return;
    pthread_mutex_lock(&c->mu);
    if (name_eq(c->nick, m->params[1])) { /* whiply itself: join again */
        c->chans[ci].joined = c->chans[ci].op = false;
        pthread_mutex_unlock(&c->mu);
        fprintf(stderr, "whiply: irc %s: kicked from %s by %.*s; joining again\n", c->cfg.name,
                c->chans[ci].name, (int)m->nick.n, m->nick.p);
        sendf(c, PRIO_NORMAL, "JOIN %s", c->chans[ci].name);
        return;
    }
    user_t *u = user_get(c, m->params[1], false);
    if (u)
        for (int k = 0; k < 3; k++)
            u->modes[k] &= ~(1ULL << ci);
    /* A kick removes the user for now, as a timeout does: it counts as one. */
    if (!from_me(c, m) && m->host.n)
        mod_action(c, m, user_key(u, m->params[1]), "timeout", (wh_str){0}, 0);
    pthread_mutex_unlock(&c->mu);
}

/* What a ban mask (extban prefix stripped) names: a nick!*@* mask's nick, else a user seen
 * that matches it, else the mask itself (under mu). */
static wh_str mask_target(wh_irc *c, wh_str mask)
{
    char mk[256];
    copy_str(mk, sizeof(mk), mask);
    const char *bang = strchr(mk, '!');
    if (bang && !strcmp(bang, "!*@*") && !memchr(mk, '*', (size_t)(bang - mk)) &&
        !memchr(mk, '?', (size_t)(bang - mk))) {
        user_t *u = user_get(c, (wh_str){mask.p, (uint32_t)(bang - mk)}, false);
        return user_key(u, (wh_str){mask.p, (uint32_t)(bang - mk)});
    }
    for (uint32_t i = 0; i < USERS; i++) {
        user_t *u = &c->users[i];
        if (!u->nick[0] || !u->host[0]) continue;
        char full[256];
        snprintf(full, sizeof(full), "%s!%s@%s", u->nick, u->user, u->host);
        if (glob(mk, full)) return user_key(u, (wh_str){u->nick, (uint32_t)strlen(u->nick)});
    }
    return mask;
}

/* A quiet as this server writes it: the mode letter and the mask prefix (under mu). */
typedef struct {
    char mode;       /* 0: the server has no quiet */
    char prefix[16]; /* "m:" (InspIRCd's muteban), "~q:" (UnrealIRCd), "" (+q lists) */
} quiet_t;

static quiet_t quiet_of(wh_irc *c)
{
    quiet_t q = {0};
    if (strchr(c->chanmodes[0], 'q') && !strchr(c->prefix_modes, 'q')) {
        q.mode = 'q';
    } else if (strchr(c->extban_types, 'm') && strchr(c->chanmodes[0], 'b')) {
        q.mode = 'b';
        snprintf(q.prefix, sizeof(q.prefix), "%sm:", c->extban_prefix);
    } else if (strchr(c->extban_types, 'q') && strchr(c->chanmodes[0], 'b')) {
        q.mode = 'b';
        snprintf(q.prefix, sizeof(q.prefix), "%sq:", c->extban_prefix);
    }
    return q;
}

static void on_mode(wh_irc *c, const wh_irc_msg *m)
{
    if (m->nparams < 2) return;
    int ci = chan_index(c, m->params[0]);
    if (ci < 0) return;
    pthread_mutex_lock(&c->mu);
    bool human = m->host.n && !from_me(c, m);
    quiet_t q = quiet_of(c);
    wh_str modes = m->params[1];
    uint32_t arg = 2, sub = 0;
    bool plus = true;
    for (uint32_t i = 0; i < modes.n; i++) {
        char ch = modes.p[i];
        if (ch == '+' || ch == '-') {
            plus = ch == '+';
            continue;
        }
        const char *pm = strchr(c->prefix_modes, ch);
        bool takes = pm || strchr(c->chanmodes[0], ch) || strchr(c->chanmodes[1], ch) ||
                     (plus && strchr(c->chanmodes[2], ch));
        if (!takes) continue;
        if (arg >= m->nparams) break;
        wh_str a = m->params[arg++];
        if (pm) { /* a status mode: whose, and whiply's own operator status */
            int k = *pm == 'v' ? 2 : (pm == c->prefix_modes && c->prefix_modes[0] != 'o') ? 0 : 1;
            if (*pm == 'h' || *pm == 'a') k = 1;
            if (name_eq(c->nick, a)) {
                if (k <= 1) c->chans[ci].op = plus;
                continue;
            }
            user_t *u = user_get(c, a, true);
            if (u) u->modes[k] = plus ? u->modes[k] | (1ULL << ci) : u->modes[k] & ~(1ULL << ci);
            continue;
        }
        if (!human || !(ch == 'b' || (q.mode == 'q' && ch == 'q'))) continue;
        const char *action = plus ? "ban" : "unban";
        wh_str mask = a;
        size_t pl = strlen(q.prefix);
        if (ch == 'q' || (pl && a.n > pl && !memcmp(a.p, q.prefix, pl))) {
            action = plus ? "timeout" : "untimeout";
            if (ch == 'b') mask = (wh_str){a.p + pl, (uint32_t)(a.n - pl)};
        }
        mod_action(c, m, mask_target(c, mask), action, a, ++sub);
    }
    pthread_mutex_unlock(&c->mu);
}

/* 353 RPL_NAMREPLY: "me = #chan :@op +voiced plain" (several prefixes with multi-prefix). */
static void on_names(wh_irc *c, const wh_irc_msg *m)
{
    if (m->nparams < 4) return;
    int ci = chan_index(c, m->params[2]);
    if (ci < 0) return;
    wh_str s = m->params[3];
    pthread_mutex_lock(&c->mu);
    for (uint32_t i = 0; i < s.n;) {
        while (i < s.n && s.p[i] == ' ')
            i++;
        uint32_t st = i;
        while (i < s.n && s.p[i] != ' ')
            i++;
        uint64_t bits[3] = {0};
        uint32_t k = st;
        for (; k < i; k++) {
            const char *ps = strchr(c->prefix_syms, s.p[k]);
            if (!ps || !s.p[k]) break;
            char mode = c->prefix_modes[ps - c->prefix_syms];
            int slot = mode == 'v' ? 2 : (ps == c->prefix_syms && mode != 'o') ? 0 : 1;
            bits[slot] = 1;
        }
        wh_str nick = {s.p + k, i - k};
        if (!nick.n) continue;
        if (name_eq(c->nick, nick)) {
            c->chans[ci].op = bits[0] || bits[1];
            continue;
        }
        user_t *u = user_get(c, nick, true);
        for (int b = 0; u && b < 3; b++)
            u->modes[b] = bits[b] ? u->modes[b] | (1ULL << ci) : u->modes[b] & ~(1ULL << ci);
    }
    pthread_mutex_unlock(&c->mu);
}

/* 005 RPL_ISUPPORT: CHANMODES, PREFIX, EXTBAN, CHANTYPES. */
static void on_isupport(wh_irc *c, const wh_irc_msg *m)
{
    pthread_mutex_lock(&c->mu);
    for (uint32_t i = 1; i + (m->trailing ? 1 : 0) < m->nparams; i++) {
        char tok[128];
        copy_str(tok, sizeof(tok), m->params[i]);
        if (!strncmp(tok, "CHANMODES=", 10)) {
            const char *p = tok + 10;
            for (int k = 0; k < 4; k++) {
                size_t n = strcspn(p, ",");
                cstr_copy(c->chanmodes[k], sizeof(c->chanmodes[k]), p, n);
                p += n + (p[n] == ',');
            }
        } else if (!strncmp(tok, "PREFIX=(", 8)) {
            const char *close = strchr(tok, ')');
            if (close) {
                cstr_copy(c->prefix_modes, sizeof(c->prefix_modes), tok + 8,
                          (size_t)(close - tok - 8));
                cstr_copy(c->prefix_syms, sizeof(c->prefix_syms), close + 1, 4096);
            }
        } else if (!strncmp(tok, "EXTBAN=", 7)) {
            const char *comma = strchr(tok + 7, ',');
            if (comma) {
                cstr_copy(c->extban_prefix, sizeof(c->extban_prefix), tok + 7,
                          (size_t)(comma - tok - 7));
                cstr_copy(c->extban_types, sizeof(c->extban_types), comma + 1, 4096);
            }
        } else if (!strncmp(tok, "CHANTYPES=", 10)) {
            cstr_copy(c->chantypes, sizeof(c->chantypes), tok + 10, 4096);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------------- registration */

static bool cap_listed(const char *list, const char *cap)
{
    size_t n = strlen(cap);
    for (const char *p = list; (p = strstr(p, cap)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '=' || !p[n])) return true;
    return false;
}

static void caps_end(wh_irc *c)
{
    if (c->caps_done) return;
    c->caps_done = true;
    sendf(c, PRIO_NOW, "CAP END");
}

static void on_cap(wh_irc *c, const wh_irc_msg *m)
{
    if (m->nparams < 3) return;
    wh_str sub = m->params[1];
    if (WH_STR_EQ_LIT(sub, "LS")) {
        bool more = m->nparams >= 4 && WH_STR_EQ_LIT(m->params[2], "*");
        wh_str list = m->params[m->nparams - 1];
        wh_buf_append(&c->caps_ls, " ", 1);
        wh_buf_append(&c->caps_ls, list.p, list.n);
        if (more) return;
        const char *have = wh_buf_cstr(&c->caps_ls);
        static const char *const want[] = {"message-tags", "server-time",
                                           "account-tag",  "extended-join",
                                           "multi-prefix", "draft/message-redaction"};
        char req[300] = "";
        size_t n = 0;
        for (size_t i = 0; i < WH_ARRAY_LEN(want); i++)
            if (cap_listed(have, want[i]))
                n += (size_t)snprintf(req + n, sizeof(req) - n, "%s%s", n ? " " : "", want[i]);
        if (c->cfg.sasl_user && cap_listed(have, "sasl"))
            n += (size_t)snprintf(req + n, sizeof(req) - n, "%ssasl", n ? " " : "");
        else if (c->cfg.sasl_user)
            fprintf(stderr, "whiply: irc %s: the server offers no SASL; going on without it\n",
                    c->cfg.name);
        if (n)
            sendf(c, PRIO_NOW, "CAP REQ :%s", req);
        else
            caps_end(c);
    } else if (WH_STR_EQ_LIT(sub, "ACK")) {
        char acked[300];
        copy_str(acked, sizeof(acked), m->params[m->nparams - 1]);
        pthread_mutex_lock(&c->mu);
        c->cap_redact = cap_listed(acked, "draft/message-redaction");
        pthread_mutex_unlock(&c->mu);
        if (c->cfg.sasl_user && cap_listed(acked, "sasl"))
            sendf(c, PRIO_NOW, "AUTHENTICATE PLAIN");
        else
            caps_end(c);
    } else if (WH_STR_EQ_LIT(sub, "NAK")) {
        caps_end(c);
    }
}

/* AUTHENTICATE +: the PLAIN credentials, base64, in lines of 400 (RFC 4616; IRCv3 SASL). */
static void sasl_plain(wh_irc *c)
{
    size_t un = strlen(c->cfg.sasl_user), pn = strlen(c->cfg.sasl_pass);
    size_t rn = 2 * un + pn + 2;
    unsigned char *raw = malloc(rn);
    char *b64 = malloc(4 * ((rn + 2) / 3) + 1);
    if (!raw || !b64) goto out;
    memcpy(raw, c->cfg.sasl_user, un); /* authzid */
    raw[un] = 0;
    memcpy(raw + un + 1, c->cfg.sasl_user, un); /* authcid */
    raw[2 * un + 1] = 0;
    memcpy(raw + 2 * un + 2, c->cfg.sasl_pass, pn);
    int n = EVP_EncodeBlock((unsigned char *)b64, raw, (int)rn);
    for (int i = 0; i < n; i += 400)
        sendf(c, PRIO_NOW, "AUTHENTICATE %.*s", n - i < 400 ? n - i : 400, b64 + i);
    if (n % 400 == 0) sendf(c, PRIO_NOW, "AUTHENTICATE +");
out:
    if (raw) OPENSSL_cleanse(raw, rn);
    free(raw);
    free(b64);
}

static void join_all(wh_irc *c)
{
    c->join_ns = wh_mono_ns();
    for (uint32_t i = 0; i < c->cfg.nchannels; i++)
        sendf(c, PRIO_NORMAL, "JOIN %s", c->chans[i].name);
}

/* An IRC operator gives itself +o where it is in a channel without it (ngIRCd with
 * OperCanUseMode, InspIRCd with m_override). */
static void op_self(wh_irc *c)
{
    if (!c->is_oper) return;
    for (uint32_t i = 0; i < c->cfg.nchannels; i++) {
        pthread_mutex_lock(&c->mu);
        bool need = c->chans[i].joined && !c->chans[i].op;
        pthread_mutex_unlock(&c->mu);
        if (need) sendf(c, PRIO_ACTION, "MODE %s +o %s", c->chans[i].name, c->nick);
    }
}

static void on_line(wh_irc *c, const char *line, size_t n)
{
    wh_irc_msg m;
    const char *why;
    atomic_fetch_add(&c->n_in, 1);
    if (wh_irc_parse(line, n, &m, &why) != WH_OK) {
        atomic_fetch_add(&c->n_bad, 1);
        fprintf(stderr, "whiply: irc %s: a line from the server was not IRC (%s): %.80s\n",
                c->cfg.name, why, line);
        return;
    }
    if (wh_irc_is(&m, "PRIVMSG")) {
        on_privmsg(c, &m);
    } else if (wh_irc_is(&m, "PING")) {
        if (m.nparams)
            sendf(c, PRIO_NOW, "PONG :%.*s", (int)m.params[0].n, m.params[0].p);
        else
            sendf(c, PRIO_NOW, "PONG");
    } else if (wh_irc_is(&m, "JOIN") || wh_irc_is(&m, "PART")) {
        on_join_part(c, &m, wh_irc_is(&m, "JOIN"));
    } else if (wh_irc_is(&m, "KICK")) {
        on_kick(c, &m);
    } else if (wh_irc_is(&m, "MODE")) {
        on_mode(c, &m);
    } else if (wh_irc_is(&m, "NICK") && m.nparams) {
        pthread_mutex_lock(&c->mu);
        if (from_me(c, &m)) {
            copy_str(c->nick, sizeof(c->nick), m.params[0]);
        } else {
            user_t *old = user_get(c, m.nick, false), *nu = user_get(c, m.params[0], true);
            if (old && nu && old != nu) {
                user_t keep = *old;
                copy_str(keep.nick, sizeof(keep.nick), m.params[0]);
                *nu = keep;
            }
        }
        pthread_mutex_unlock(&c->mu);
    } else if (c->cfg.twitch && (wh_irc_is(&m, "CLEARCHAT") || wh_irc_is(&m, "CLEARMSG"))) {
        twitch_clear(c, &m, wh_irc_is(&m, "CLEARMSG"));
    } else if (c->cfg.twitch && wh_irc_is(&m, "USERNOTICE")) {
        twitch_usernotice(c, &m);
    } else if (c->cfg.twitch && wh_irc_is(&m, "RECONNECT")) {
        disconnect(c, "Twitch asked for a reconnect");
    } else if (wh_irc_is(&m, "CAP")) {
        on_cap(c, &m);
    } else if (wh_irc_is(&m, "AUTHENTICATE")) {
        if (m.nparams && WH_STR_EQ_LIT(m.params[0], "+") && c->cfg.sasl_user) sasl_plain(c);
    } else if (wh_irc_is(&m, "903")) {
        c->sasl_ok = true;
        caps_end(c);
    } else if (wh_irc_is(&m, "902") || wh_irc_is(&m, "904") || wh_irc_is(&m, "905") ||
               wh_irc_is(&m, "906") || wh_irc_is(&m, "908")) {
        fprintf(stderr, "whiply: irc %s: SASL login as %s failed (%.*s %.*s); going on without\n",
                c->cfg.name, c->cfg.sasl_user, (int)m.command.n, m.command.p,
                m.nparams ? (int)m.params[m.nparams - 1].n : 0,
                m.nparams ? m.params[m.nparams - 1].p : "");
        caps_end(c);
    } else if (wh_irc_is(&m, "001")) {
        pthread_mutex_lock(&c->mu);
        if (m.nparams) copy_str(c->nick, sizeof(c->nick), m.params[0]);
        c->registered = true;
        pthread_mutex_unlock(&c->mu);
        c->caps_done = true;
        c->attempts = 0;
        fprintf(stderr, "whiply: irc %s: registered as %s on %s:%lld%s\n", c->cfg.name, c->nick,
                c->cfg.host, (long long)c->cfg.port, c->sasl_ok ? " (SASL)" : "");
        if (c->cfg.oper_name) sendf(c, PRIO_NOW, "OPER %s %s", c->cfg.oper_name, c->cfg.oper_pass);
        join_all(c);
    } else if (wh_irc_is(&m, "381")) { /* RPL_YOUREOPER */
        c->is_oper = true;
        fprintf(stderr, "whiply: irc %s: IRC operator as %s\n", c->cfg.name, c->cfg.oper_name);
        /* ngIRCd reads 3 commands a second from a user without +F: whiply's actions would
         * queue behind that */
        if (c->ngircd_f) sendf(c, PRIO_NOW, "MODE %s +F", c->nick);
        op_self(c);
    } else if (wh_irc_is(&m, "366")) { /* end of NAMES: whiply's status there is known */
        op_self(c);
    } else if (wh_irc_is(&m, "004") && m.nparams >= 4) {
        c->ngircd_f = m.params[2].n >= 6 && !strncasecmp(m.params[2].p, "ngircd", 6) &&
                      memchr(m.params[3].p, 'F', m.params[3].n);
    } else if (wh_irc_is(&m, "005")) {
        on_isupport(c, &m);
    } else if (wh_irc_is(&m, "353")) {
        on_names(c, &m);
    } else if ((wh_irc_is(&m, "433") || wh_irc_is(&m, "432") || wh_irc_is(&m, "437")) &&
               !c->registered) {
        pthread_mutex_lock(&c->mu);
        size_t l = strlen(c->nick);
        if (l + 1 < sizeof(c->nick)) memcpy(c->nick + l, "_", 2);
        pthread_mutex_unlock(&c->mu);
        sendf(c, PRIO_NOW, "NICK %s", c->nick);
    } else if (wh_irc_is(&m, "ERROR")) {
        disconnect(c, m.nparams ? "the server said ERROR" : "ERROR");
    } else if (m.command.n == 3 &&
               strstr(" 401 403 404 441 442 471 473 474 475 477 478 481 482 "
                      "491 ",
                      (char[6]){' ', m.command.p[0], m.command.p[1], m.command.p[2], ' ', 0})) {
        /* not a channel operator, not on that channel, banned from it, ...: said, and the
         * next action there finds out again */
        wh_str last = m.nparams ? m.params[m.nparams - 1] : (wh_str){"", 0};
        fprintf(stderr, "whiply: irc %s: the server refused: %.*s %.*s\n", c->cfg.name,
                (int)m.command.n, m.command.p, (int)last.n, last.p);
    }
}

/* Splits rbuf into lines. */
static void read_lines(wh_irc *c)
{
    size_t st = 0;
    for (size_t i = 0; i < c->rlen; i++) {
        if (c->rbuf[i] != '\n') continue;
        if (c->rskip)
            c->rskip = false;
        else if (i > st)
            on_line(c, c->rbuf + st, i - st);
        st = i + 1;
        if (c->fd < 0) return; /* ERROR disconnected */
    }
    memmove(c->rbuf, c->rbuf + st, c->rlen - st);
    c->rlen -= st;
    if (c->rlen == sizeof(c->rbuf)) { /* a line longer than any IRC line: dropped */
        atomic_fetch_add(&c->n_bad, 1);
        c->rskip = true;
        c->rlen = 0;
    }
}

/* ---------------------------------------------------------------- the loop */

static void refill(wh_irc *c)
{
    uint64_t now = wh_mono_ns();
    if (c->cfg.flood_every_ms == 0) {
        c->tokens = (double)c->cfg.flood_burst;
    } else {
        c->tokens += (double)(now - c->refill_ns) / ((double)c->cfg.flood_every_ms * 1e6);
        if (c->tokens > (double)c->cfg.flood_burst) c->tokens = (double)c->cfg.flood_burst;
    }
    c->refill_ns = now;
}

/* Moves lines into the write buffer (the token bucket allowing), highest priority first;
 * returns ms until a token is due when lines wait for one (-1: none wait). */
static int fill_wbuf(wh_irc *c)
{
    int due = -1;
    if (c->woff < c->wbuf.len) return due;
    c->wbuf.len = c->woff = 0;
    refill(c);
    pthread_mutex_lock(&c->mu);
    for (int p = 0; p < NPRIO && c->wbuf.len < 8192; p++) {
        while (c->qh[p] && c->wbuf.len < 8192) {
            if (p != PRIO_NOW) {
                if (!c->registered) break;
                if (c->tokens < 1.0) {
                    due = (int)((1.0 - c->tokens) * (double)c->cfg.flood_every_ms) + 1;
                    break;
                }
                c->tokens -= 1.0;
            }
            line_t *l = c->qh[p];
            c->qh[p] = l->next;
            if (!c->qh[p]) c->qt[p] = NULL;
            c->qn--;
            wh_buf_append(&c->wbuf, l->s, l->n);
            if (l->w) {
                if (c->nwb == c->wbcap) {
                    uint32_t nc = c->wbcap ? 2 * c->wbcap : 16;
                    send_wait **nw = realloc(c->wb_waits, nc * sizeof(*nw));
                    if (nw) c->wb_waits = nw, c->wbcap = nc;
                }
                if (c->nwb < c->wbcap)
                    c->wb_waits[c->nwb++] = l->w;
                else
                    l->w->lost = true;
            }
            atomic_fetch_add(&c->n_out, 1);
            free(l);
        }
        if (due >= 0) break; /* lower priorities wait behind this one */
    }
    pthread_mutex_unlock(&c->mu);
    return due;
}

/* Writes what it can; once the buffer is out, the waits of its lines are told. */
static bool flush_wbuf(wh_irc *c)
{
    while (c->woff < c->wbuf.len) {
        ssize_t w = io_write(c, c->wbuf.p + c->woff, c->wbuf.len - c->woff);
        if (w < 0) return false;
        if (w == 0) return true;
        c->woff += (size_t)w;
    }
    pthread_mutex_lock(&c->mu);
    for (uint32_t i = 0; i < c->nwb; i++)
        c->wb_waits[i]->pending--;
    if (c->nwb) pthread_cond_broadcast(&c->sent);
    c->nwb = 0;
    pthread_mutex_unlock(&c->mu);
    return true;
}

/* Reversals that are due go out (once whiply is in the channel again). */
static int run_timers(wh_irc *c)
{
    int64_t now = wh_now_ms(), next = -1;
    pthread_mutex_lock(&c->mu);
    for (tmr_t **pp = &c->timers; *pp;) {
        tmr_t *t = *pp;
        if (t->at_ms <= now && c->chans[t->chan].joined) {
            enqueue(c, PRIO_ACTION, NULL, t->line, strlen(t->line));
            *pp = t->next;
            c->ntimers--;
            free(t);
            continue;
        }
        int64_t left = t->at_ms > now ? t->at_ms - now : 1000;
        if (next < 0 || left < next) next = left;
        pp = &t->next;
    }
    pthread_mutex_unlock(&c->mu);
    return next < 0 ? -1 : next > 60000 ? 60000 : (int)next;
}

static void session(wh_irc *c)
{
    hello(c);
    while (!atomic_load(&c->stop) && c->fd >= 0) {
        int due = fill_wbuf(c);
        if (!flush_wbuf(c)) {
            disconnect(c, "the connection failed while writing");
            return;
        }
        uint64_t now = wh_mono_ns();
        int timeout = 1000;
        if (due >= 0 && due < timeout) timeout = due;
        int t = run_timers(c);
        if (t >= 0 && t < timeout) timeout = t;
        bool paused = c->busy_until_ns > now;
        if (paused) {
            int left = (int)((c->busy_until_ns - now) / 1000000) + 1;
            if (left < timeout) timeout = left;
        }
        short ev =
            (paused ? 0 : POLLIN) | ((c->woff < c->wbuf.len || c->ssl_want_write) ? POLLOUT : 0);
        if (c->ssl && SSL_pending(c->ssl) && !paused) timeout = 0;
        struct pollfd p[2] = {{c->fd, ev, 0}, {c->wake, POLLIN, 0}};
        if (poll(p, 2, timeout) < 0 && errno != EINTR) {
            disconnect(c, strerror(errno));
            return;
        }
        if (p[1].revents) {
            uint64_t v;
            ssize_t r = read(c->wake, &v, sizeof(v));
            (void)r;
        }
        now = wh_mono_ns();
        if (paused && c->busy_until_ns <= now && !flush_batch(c)) continue;
        if (!paused &&
            ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) || (c->ssl && SSL_pending(c->ssl)))) {
            for (;;) {
                ssize_t r = io_read(c, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
                if (r < 0) {
                    flush_batch(c);
                    disconnect(c, "the server closed the connection");
                    return;
                }
                if (r == 0) break;
                c->rlen += (size_t)r;
                c->last_rx_ns = c->read_ns = wh_mono_ns();
                read_lines(c);
                if (c->fd < 0) {
                    flush_batch(c);
                    return;
                }
                if (c->nbatch >= 512) break; /* decide what came so far */
            }
            flush_batch(c);
        }
        /* keepalive: a PING after ping of silence, and the connection is dead after twice */
        now = wh_mono_ns(); /* after the reads, which move last_rx_ns */
        uint64_t idle = now - c->last_rx_ns, ping_ns = (uint64_t)c->cfg.ping_ms * 1000000;
        if (idle > 2 * ping_ns) {
            disconnect(c, "no answer to PING");
            return;
        }
        if (idle > ping_ns && (!c->ping_sent_ns || c->ping_sent_ns < c->last_rx_ns)) {
            sendf(c, PRIO_NOW, "PING :whiply");
            c->ping_sent_ns = now;
        }
        pthread_mutex_lock(&c->mu);
        bool reg = c->registered, missing = false;
        for (uint32_t i = 0; i < c->cfg.nchannels; i++)
            missing |= !c->chans[i].joined;
        pthread_mutex_unlock(&c->mu);
        if (reg && missing && now - c->join_ns > 30000000000ULL) /* refused (+b, +i, +k)? */
            join_all(c);
        if (!reg && now - c->connected_ns > (uint64_t)REGISTER_TIMEOUT_MS * 1000000) {
            disconnect(c, "no welcome (001) within 60 s");
            return;
        }
    }
}

static void *loop(void *arg)
{
    wh_irc *c = arg;
    while (!atomic_load(&c->stop)) {
        if (c->attempts) {
            /* exponential backoff with jitter: between half and all of min * 2^(attempts-1) */
            int64_t d = c->cfg.reconnect_min_ms;
            for (uint32_t i = 1; i < c->attempts && d < c->cfg.reconnect_max_ms; i++)
                d *= 2;
            if (d > c->cfg.reconnect_max_ms) d = c->cfg.reconnect_max_ms;
            d = d / 2 + (int64_t)(wh_splitmix64(&c->rng) % (uint64_t)(d / 2 + 1));
            if (!nap(c, d)) break;
        }
        c->attempts++;
        char why[512];
        if (!tcp_connect(c, why, sizeof(why)) ||
            (c->cfg.tls && !tls_handshake(c, why, sizeof(why)))) {
            if (c->ssl) SSL_free(c->ssl);
            c->ssl = NULL;
            if (c->fd >= 0) close(c->fd);
            c->fd = -1;
            if (!atomic_load(&c->stop))
                fprintf(stderr, "whiply: irc %s: %s (attempt %u)\n", c->cfg.name, why, c->attempts);
            continue;
        }
        atomic_fetch_add(&c->n_connects, 1);
        fprintf(stderr, "whiply: irc %s: connected to %s:%lld%s\n", c->cfg.name, c->cfg.host,
                (long long)c->cfg.port, c->ssl ? " (TLS)" : "");
        session(c);
    }
    if (c->fd >= 0) {
        /* QUIT, best effort: straight to the socket, the queue is for a live session */
        const char quit[] = "QUIT :whiply stopping\r\n";
        io_write(c, quit, sizeof(quit) - 1);
        disconnect(c, "stopping");
    }
    flush_batch(c);
    return NULL;
}

/* ---------------------------------------------------------------- the executor */

static void result(wh_op_result *res, wh_op_result_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void result(wh_op_result *res, wh_op_result_code code, const char *fmt, ...)
{
    res->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
}

/* *!*@host where whiply saw the user's host, else nick!*@* (under mu). */
static void ban_mask(wh_irc *c, const char *nick, char *out, size_t n)
{
    user_t *u = user_get(c, (wh_str){nick, (uint32_t)strlen(nick)}, false);
    if (u && u->host[0] && safe_word(u->host))
        snprintf(out, n, "*!*@%s", u->host);
    else
        snprintf(out, n, "%s!*@*", nick);
}

/* Channel modes for channel_action's modes: the letter this server has for each, if any. */
static char mode_letter(wh_irc *c, const char *mode)
{
    static const struct {
        const char *mode;
        char letter;                      /* the mode that comes closest on IRC */
    } map[] = {{"followers_only", 'M'},   /* only registered (identified) users may speak */
               {"subscribers_only", 'm'}, /* moderated: only voiced users and operators */
               {"slow", 0},               /* no standard IRC mode */
               {"emote_only", 0}};
    for (size_t i = 0; i < WH_ARRAY_LEN(map); i++)
        if (!strcmp(map[i].mode, mode))
            return map[i].letter && strchr(c->chanmodes[3], map[i].letter) ? map[i].letter : 0;
    return 0;
}

static bool add_timer(wh_irc *c, uint32_t chan, uint32_t after_s, const char *line)
{
    if (!after_s || c->ntimers >= TIMERS_MAX) return false;
    tmr_t *t = calloc(1, sizeof(*t));
    if (!t) return false;
    t->at_ms = wh_now_ms() + (int64_t)after_s * 1000;
    t->chan = chan;
    cstr_copy(t->line, sizeof(t->line), line, 4096);
    t->next = c->timers;
    c->timers = t;
    c->ntimers++;
    return true;
}

/* The nick now of the user whiply keys by this account (user_key), if one is known (under mu):
 * an operation requested by id alone (POST /v1/moderate, /v1/actions) names the user as the
 * events did, and on a network that says accounts that id is not a nick. */
static bool nick_of_account(wh_irc *c, const char *id, char *out, size_t cap)
{
    if (!id[0]) return false;
    for (uint32_t i = 0; i < USERS; i++) {
        const user_t *u = &c->users[i];
        if (u->nick[0] && u->account[0] && !strcmp(u->account, id)) {
            snprintf(out, cap, "%s", u->nick);
            return true;
        }
    }
    return false;
}

void wh_irc_execute(void *ud, const wh_op *op, wh_op_result *res)
{
    wh_irc *c = ud;
    res->retry_after_ms = 0;
    atomic_fetch_add(&c->n_actions, 1);
    const char *net = c->cfg.name, *ch = op->channel;
    const char *nick = op->user_name[0] ? op->user_name : op->user_id;
    char by_account[sizeof(c->users[0].nick)];
    switch (op->kind) {
    case WH_OP_RELEASE:
    case WH_OP_DENY:
        return result(res, WH_OPR_UNSUPPORTED,
                      "IRC has no held messages: a message is delivered as it is sent");
    case WH_OP_WEBHOOK:
    case WH_OP_ALERT:
        return result(res, WH_OPR_FAILED, "not an IRC operation");
    default:
        break;
    }
    pthread_mutex_lock(&c->mu);
    if (!op->user_name[0] && nick_of_account(c, op->user_id, by_account, sizeof(by_account)))
        nick = by_account; /* a moderator's action names the user by whiply's id: the account */
    int ci = chan_index(c, (wh_str){ch, (uint32_t)strlen(ch)});
    char lines[3][560];
    int nl = 0, prio = PRIO_ACTION;
    bool need_op = true;
    char mask[300], text[420];
    safe_text(text, 300, op->message[0] ? op->message : op->reason[0] ? op->reason : "");
    if (ci < 0) {
        pthread_mutex_unlock(&c->mu);
        return result(res, WH_OPR_FAILED, "%s is not one of the channels of %s (platforms.irc)", ch,
                      net);
    }
    if (!c->registered || !c->chans[ci].joined) {
        pthread_mutex_unlock(&c->mu);
        return result(res, WH_OPR_RETRY, "not in %s on %s yet (%s)", ch, net,
                      c->registered ? "joining" : "not connected");
    }
    if (op->kind != WH_OP_CHANNEL_MODE && !safe_word(nick)) {
        pthread_mutex_unlock(&c->mu);
        return result(res, WH_OPR_FAILED, "'%s' is not an IRC nick", nick);
    }
    quiet_t q = quiet_of(c);
    const char *outcome = "";
    switch (op->kind) {
    case WH_OP_WARN:
        need_op = false;
        prio = PRIO_NORMAL;
        snprintf(lines[nl++], sizeof(lines[0]), "NOTICE %s :[%s] %s", nick, ch,
                 text[0] ? text : "please mind the channel rules");
        outcome = "NOTICE sent";
        break;
    case WH_OP_DELETE:
        if (c->cap_redact && op->msg_id[0] && safe_word(op->msg_id)) {
            snprintf(lines[nl++], sizeof(lines[0]), "REDACT %s %s :%s", ch, op->msg_id, text);
            outcome = "REDACT sent (draft/message-redaction)";
            break;
        }
        pthread_mutex_unlock(&c->mu);
        return result(res, WH_OPR_UNSUPPORTED,
                      "IRC has no message deletion: %s does not offer draft/message-redaction, "
                      "and a message cannot be taken back once relayed",
                      net);
    case WH_OP_TIMEOUT:
        if (q.mode) {
            ban_mask(c, nick, mask, sizeof(mask));
            snprintf(lines[nl++], sizeof(lines[0]), "MODE %s +%c %s%s", ch, q.mode, q.prefix, mask);
            char undo[560];
            snprintf(undo, sizeof(undo), "MODE %s -%c %s%s", ch, q.mode, q.prefix, mask);
            bool timed = add_timer(c, (uint32_t)ci, op->duration_s, undo);
            outcome = timed ? "quieted; lifted when the time is up" : "quieted";
        } else {
            snprintf(lines[nl++], sizeof(lines[0]), "KICK %s %s :%s", ch, nick,
                     text[0] ? text : "timeout");
            outcome = "kicked (the server has no quiet mode)";
        }
        break;
    case WH_OP_UNTIMEOUT:
        if (!q.mode) {
            pthread_mutex_unlock(&c->mu);
            return result(res, WH_OPR_DONE, "nothing to lift: a kick ends by itself");
        }
        ban_mask(c, nick, mask, sizeof(mask));
        snprintf(lines[nl++], sizeof(lines[0]), "MODE %s -%c %s%s", ch, q.mode, q.prefix, mask);
        outcome = "quiet lifted";
        break;
    case WH_OP_BAN:
        ban_mask(c, nick, mask, sizeof(mask));
        snprintf(lines[nl++], sizeof(lines[0]), "MODE %s +b %s", ch, mask);
        snprintf(lines[nl++], sizeof(lines[0]), "KICK %s %s :%s", ch, nick,
                 text[0] ? text : "banned");
        outcome = "banned and kicked";
        break;
    case WH_OP_UNBAN:
        ban_mask(c, nick, mask, sizeof(mask));
        snprintf(lines[nl++], sizeof(lines[0]), "MODE %s -b %s", ch, mask);
        outcome = "ban lifted";
        break;
    case WH_OP_CHANNEL_MODE: {
        char l = mode_letter(c, op->mode);
        if (!l) {
            pthread_mutex_unlock(&c->mu);
            return result(res, WH_OPR_UNSUPPORTED, "%s has no channel mode for '%s'", net,
                          op->mode);
        }
        snprintf(lines[nl++], sizeof(lines[0]), "MODE %s +%c", ch, l);
        char undo[64];
        snprintf(undo, sizeof(undo), "MODE %s -%c", ch, l);
        add_timer(c, (uint32_t)ci, op->duration_s, undo);
        outcome = "channel mode set";
        break;
    }
    default:
        pthread_mutex_unlock(&c->mu);
        return result(res, WH_OPR_FAILED, "unknown operation");
    }
    if (need_op && !c->chans[ci].op) {
        pthread_mutex_unlock(&c->mu);
        return result(res, WH_OPR_RETRY, "whiply (%s) is not a channel operator in %s on %s",
                      c->nick, ch, net);
    }
    send_wait w = {0};
    bool queued = true;
    for (int i = 0; i < nl && queued; i++)
        queued = enqueue(c, prio, &w, lines[i], strlen(lines[i]));
    if (!queued) {
        unqueue(c, &w);
        pthread_mutex_unlock(&c->mu);
        return result(res, WH_OPR_RETRY, "the outgoing queue of %s is full", net);
    }
    wake(c);
    struct timespec until = wh_deadline_ms(SEND_WAIT_MS);
    while (w.pending && !w.lost)
        if (pthread_cond_timedwait(&c->sent, &c->mu, &until) == ETIMEDOUT) break;
    if (w.pending && !w.lost) {
        unqueue(c, &w);
        /* lines already in the write buffer go out; their waits are this frame's: forget
         * them there */
        for (uint32_t i = 0; i < c->nwb; i++)
            if (c->wb_waits[i] == &w) c->wb_waits[i--] = c->wb_waits[--c->nwb];
    }
    bool ok = !w.pending && !w.lost;
    uint64_t key = fold_hash(op->event_id, strlen(op->event_id)) | 1, seen = 0;
    if (ok && c->seen[key % SEEN_SLOTS].key == key) seen = c->seen[key % SEEN_SLOTS].ns;
    pthread_mutex_unlock(&c->mu);
    if (seen) { /* the first action of the event, written: the time it took since its line */
        double ms = (double)(wh_mono_ns() - seen) / 1e6;
        size_t k = 0;
        while (k < WH_ARRAY_LEN(lat_bounds_ms) && ms > lat_bounds_ms[k])
            k++;
        atomic_fetch_add(&c->lat_le[k], 1);
        atomic_fetch_add(&c->lat_sum_us, (uint64_t)(ms * 1000));
        pthread_mutex_lock(&c->mu);
        if (c->seen[key % SEEN_SLOTS].key == key) c->seen[key % SEEN_SLOTS].key = 0;
        pthread_mutex_unlock(&c->mu);
    }
    if (!ok)
        return result(res, WH_OPR_RETRY, "not sent: %s",
                      w.lost ? "the connection dropped" : "the flood budget held it");
    result(res, WH_OPR_DONE, "%s: %s", outcome, lines[0]);
}

/* ---------------------------------------------------------------- start, stop */

static void irc_free(wh_irc *c)
{
    if (c->cfg.twitch && c->cfg.eventsub_secret) wh_eventsub_remove(c->cfg.name);
    wh_helix_free(c->helix);
    if (c->ctx) SSL_CTX_free(c->ctx);
    if (c->wake >= 0) close(c->wake);
    for (tmr_t *t = c->timers, *nx; t; t = nx) {
        nx = t->next;
        free(t);
    }
    for (int p = 0; p < NPRIO; p++)
        for (line_t *l = c->qh[p], *nx; l; l = nx) {
            nx = l->next;
            free(l);
        }
    free(c->wb_waits);
    free(c->users);
    free(c->chans);
    wh_buf_free(&c->wbuf);
    wh_buf_free(&c->caps_ls);
    wh_buf_free(&c->batch);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->sent);
    wh_irc_config_free(&c->cfg);
    free(c);
}

wh_irc *wh_irc_start(wh_service *svc, const wh_irc_config *cfg, wh_error *e)
{
    wh_irc *c = calloc(1, sizeof(*c));
    if (!c) {
        wh_error_set(e, WH_ENOMEM, "irc %s: out of memory", cfg->name);
        return NULL;
    }
    c->svc = svc;
    c->fd = c->wake = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->sent, NULL);
    wh_buf_init(&c->wbuf);
    wh_buf_init(&c->caps_ls);
    wh_buf_init(&c->batch);
    c->rng = wh_random_seed();
    c->chans = calloc(cfg->nchannels ? cfg->nchannels : 1, sizeof(chan_t));
    c->users = calloc(USERS, sizeof(user_t));
    if (!wh_irc_config_copy(&c->cfg, cfg) || !c->chans || !c->users || cfg->nchannels > 64) {
        wh_error_set(e, WH_ENOMEM, "irc %s: out of memory (or more than 64 channels)", cfg->name);
        irc_free(c);
        return NULL;
    }
    for (uint32_t i = 0; i < cfg->nchannels; i++)
        c->chans[i].name = c->cfg.channels[i];
    if ((c->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        wh_error_set(e, WH_EIO, "irc %s: eventfd: %s", cfg->name, strerror(errno));
        irc_free(c);
        return NULL;
    }
    if (cfg->tls) {
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx) {
            wh_error_set(e, WH_ENOMEM, "irc %s: cannot make a TLS context", cfg->name);
            irc_free(c);
            return NULL;
        }
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
        if (cfg->tls_verify) {
            SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
            int ok = cfg->ca_file ? SSL_CTX_load_verify_locations(c->ctx, cfg->ca_file, NULL)
                                  : SSL_CTX_set_default_verify_paths(c->ctx);
            if (!ok) {
                wh_error_set(e, WH_EINVAL, "irc %s: cannot load the CA file %s: %s", cfg->name,
                             cfg->ca_file ? cfg->ca_file : "(the system's)",
                             ERR_reason_error_string(ERR_get_error()));
                ERR_clear_error();
                irc_free(c);
                return NULL;
            }
        }
    }
    /* the executor first (outbox.h: before events from the platform are decided), under the
     * network's name, which is the events' platform */
    if (c->cfg.twitch && !(c->helix = wh_helix_new(&c->cfg, e))) {
        irc_free(c);
        return NULL;
    }
    if (c->cfg.twitch && c->cfg.eventsub_secret &&
        wh_eventsub_add(c->cfg.name, c->cfg.eventsub_secret) != WH_OK) {
        wh_error_set(e, WH_ENOMEM, "twitch %s: out of memory", cfg->name);
        irc_free(c);
        return NULL;
    }
    if (wh_outbox_register(wh_service_outbox(svc), c->cfg.name,
                           c->helix ? wh_helix_execute : wh_irc_execute,
                           c->helix ? (void *)c->helix : (void *)c) != WH_OK) {
        wh_error_set(e, WH_EINVAL, "irc %s: cannot register its executor (is the name taken?)",
                     cfg->name);
        irc_free(c);
        return NULL;
    }
    if (pthread_create(&c->th, NULL, loop, c) != 0) {
        wh_error_set(e, WH_EIO, "irc %s: cannot start its thread", cfg->name);
        wh_outbox_unregister(wh_service_outbox(svc), c->cfg.name);
        irc_free(c);
        return NULL;
    }
    return c;
}

void wh_irc_stop(wh_irc *c)
{
    if (!c) return;
    wh_outbox_unregister(wh_service_outbox(c->svc), c->cfg.name); /* waits for a call */
    atomic_store(&c->stop, true);
    wake(c);
    pthread_join(c->th, NULL);
    irc_free(c);
}

const char *wh_irc_name(const wh_irc *c)
{
    return c->cfg.name;
}

void wh_irc_stats_get(wh_irc *c, wh_irc_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->mu);
    out->registered = c->registered;
    for (uint32_t i = 0; i < c->cfg.nchannels; i++)
        out->channels_joined += c->chans[i].joined;
    pthread_mutex_unlock(&c->mu);
    out->connects = atomic_load(&c->n_connects);
    out->lines_in = atomic_load(&c->n_in);
    out->lines_out = atomic_load(&c->n_out);
    out->events = atomic_load(&c->n_events);
    out->bad_lines = atomic_load(&c->n_bad);
    out->busy = atomic_load(&c->n_busy);
    out->actions = atomic_load(&c->n_actions);
    out->dropped = atomic_load(&c->n_dropped);
}

void wh_irc_metrics(wh_irc *const *cs, uint32_t n, wh_buf *b)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } rows[] = {
        {"connects", "Connections made to the IRC network.", offsetof(wh_irc_stats, connects)},
        {"lines_in", "Lines read from the IRC network.", offsetof(wh_irc_stats, lines_in)},
        {"lines_out", "Lines written to the IRC network.", offsetof(wh_irc_stats, lines_out)},
        {"events", "Events submitted from the IRC network.", offsetof(wh_irc_stats, events)},
        {"bad_lines", "Lines or events from the IRC network that were refused.",
         offsetof(wh_irc_stats, bad_lines)},
        {"busy", "Times the ingest pushed back.", offsetof(wh_irc_stats, busy)},
        {"actions", "Operations the outbox handed to the IRC executor.",
         offsetof(wh_irc_stats, actions)},
        {"dropped", "Outgoing lines refused: the queue was full.", offsetof(wh_irc_stats, dropped)},
    };
    if (!n) return;
    wh_irc_stats *st = calloc(n, sizeof(*st));
    if (!st) return;
    for (uint32_t i = 0; i < n; i++)
        wh_irc_stats_get(cs[i], &st[i]);
    wh_buf_puts(b, "# HELP whiply_irc_connected 1 when registered on the IRC network.\n"
                   "# TYPE whiply_irc_connected gauge\n");
    for (uint32_t i = 0; i < n; i++)
        wh_buf_printf(b, "whiply_irc_connected{network=\"%s\"} %d\n", cs[i]->cfg.name,
                      st[i].registered);
    wh_buf_puts(b, "# HELP whiply_irc_channels_joined Configured channels whiply is in now.\n"
                   "# TYPE whiply_irc_channels_joined gauge\n");
    for (uint32_t i = 0; i < n; i++)
        wh_buf_printf(b, "whiply_irc_channels_joined{network=\"%s\"} %u\n", cs[i]->cfg.name,
                      st[i].channels_joined);
    for (size_t r = 0; r < WH_ARRAY_LEN(rows); r++) {
        wh_buf_printf(b, "# HELP whiply_irc_%s_total %s\n# TYPE whiply_irc_%s_total counter\n",
                      rows[r].name, rows[r].help, rows[r].name);
        for (uint32_t i = 0; i < n; i++)
            wh_buf_printf(b, "whiply_irc_%s_total{network=\"%s\"} %llu\n", rows[r].name,
                          cs[i]->cfg.name,
                          (unsigned long long)*(uint64_t *)((char *)&st[i] + rows[r].off));
    }
    wh_buf_puts(b, "# HELP whiply_irc_action_seconds From reading an event's line to writing "
                   "the last line of its first action.\n"
                   "# TYPE whiply_irc_action_seconds histogram\n");
    for (uint32_t i = 0; i < n; i++) {
        uint64_t cum = 0;
        for (size_t k = 0; k <= WH_ARRAY_LEN(lat_bounds_ms); k++) {
            cum += atomic_load(&cs[i]->lat_le[k]);
            if (k < WH_ARRAY_LEN(lat_bounds_ms))
                wh_buf_printf(b,
                              "whiply_irc_action_seconds_bucket{network=\"%s\",le=\"%g\"} %llu\n",
                              cs[i]->cfg.name, lat_bounds_ms[k] / 1000, (unsigned long long)cum);
            else
                wh_buf_printf(b,
                              "whiply_irc_action_seconds_bucket{network=\"%s\",le=\"+Inf\"} %llu\n",
                              cs[i]->cfg.name, (unsigned long long)cum);
        }
        wh_buf_printf(b, "whiply_irc_action_seconds_sum{network=\"%s\"} %.6f\n", cs[i]->cfg.name,
                      (double)atomic_load(&cs[i]->lat_sum_us) / 1e6);
        wh_buf_printf(b, "whiply_irc_action_seconds_count{network=\"%s\"} %llu\n", cs[i]->cfg.name,
                      (unsigned long long)cum);
    }
    free(st);
}
