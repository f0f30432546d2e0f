/* sign.c - see sign.h. */
#define _GNU_SOURCE
#include "sign.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct wh_signer {
    EVP_PKEY *key;
    uint8_t pub[32];
    uint8_t id[8];
};

void wh_key_id(const uint8_t pub[32], uint8_t id[8])
{
    uint8_t h[32];
    unsigned n = 32;
    EVP_Digest(pub, 32, h, &n, EVP_sha256(), NULL);
    memcpy(id, h, 8);
}

/* The text that is signed (see sign.h); returns its length. */
static int signed_text(const wh_checkpoint *cp, char *out, size_t n)
{
    char id[17], head[65];
    wh_hex_encode(cp->key_id, 8, id);
    wh_hex_encode(cp->head, 32, head);
    return snprintf(out, n, "whiply-audit-checkpoint/v1\n%s\n%" PRIu64 "\n%s\n%" PRId64 "\n", id,
                    cp->seq, head, cp->time_ms);
}

static bool write_pub(const char *key_path, EVP_PKEY *k)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s.pub", key_path);
    FILE *f = fopen(path, "w");
    if (!f) return false;
    bool ok = PEM_write_PUBKEY(f, k) == 1;
    return fclose(f) == 0 && ok;
}

WH_NOIPA static wh_signer *signer_open_buf(const char *path, bool *created, char *err,
                                           size_t errlen)
{
    wh_signer *sg = calloc(1, sizeof(*sg));
    FILE *f = NULL;
    *created = false;
    if (!sg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f = fopen(path, "r");
    if (f) {
        sg->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        f = NULL;
        if (!sg->key || EVP_PKEY_get_base_id(sg->key) != EVP_PKEY_ED25519) {
            snprintf(err, errlen, "%s is not an Ed25519 private key (PEM)", path);
            goto fail;
        }
    } else if (errno == ENOENT) {
        sg->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!sg->key) {
            snprintf(err, errlen, "cannot make an Ed25519 key");
            goto fail;
        }
        /* O_EXCL: two daemons starting at once must not each write a key of their own. */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
            snprintf(err, errlen, "cannot create the signing key %s: %s", path, strerror(errno));
            if (fd >= 0) close(fd);
            goto fail;
        }
        bool ok = PEM_write_PrivateKey(f, sg->key, NULL, NULL, 0, NULL, NULL) == 1;
        ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
        if (fclose(f) != 0 || !ok) {
            f = NULL;
            snprintf(err, errlen, "cannot write the signing key %s", path);
            unlink(path);
            goto fail;
        }
        f = NULL;
        *created = true;
    } else {
        snprintf(err, errlen, "cannot read the signing key %s: %s", path, strerror(errno));
        goto fail;
    }
    size_t n = 32;
    if (EVP_PKEY_get_raw_public_key(sg->key, sg->pub, &n) != 1 || n != 32) {
        snprintf(err, errlen, "%s: no Ed25519 public key", path);
        goto fail;
    }
    wh_key_id(sg->pub, sg->id);
    if (!write_pub(path, sg->key))
        fprintf(stderr, "whiply: cannot write %s.pub (the public key is printed below)\n", path);
    return sg;
fail:
    wh_signer_free(sg);
    return NULL;
}

void wh_signer_free(wh_signer *sg)
{
    if (!sg) return;
    EVP_PKEY_free(sg->key);
    free(sg);
}

const uint8_t *wh_signer_pubkey(const wh_signer *sg)
{
    return sg->pub;
}

bool wh_signer_sign(wh_signer *sg, wh_checkpoint *cp)
{
    memcpy(cp->key_id, sg->id, 8);
    char msg[256];
    int n = signed_text(cp, msg, sizeof(msg));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sl = 64;
    /* Ed25519 is a one-shot signature: no digest is named (NULL), the message goes whole. */
    bool ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, sg->key) == 1 &&
              EVP_DigestSign(ctx, cp->sig, &sl, (const uint8_t *)msg, (size_t)n) == 1 && sl == 64;
    EVP_MD_CTX_free(ctx);
    return ok;
}

bool wh_checkpoint_verify(const uint8_t pub[32], const wh_checkpoint *cp)
{
    uint8_t id[8];
    wh_key_id(pub, id);
    if (memcmp(id, cp->key_id, 8) != 0) return false;
    char msg[256];
    int n = signed_text(cp, msg, sizeof(msg));
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = k && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
              EVP_DigestVerify(ctx, cp->sig, 64, (const uint8_t *)msg, (size_t)n) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    return ok;
}

WH_NOIPA static bool pubkey_load_buf(const char *path, uint8_t pub[32], char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    EVP_PKEY *k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    bool ok = false;
    if (k) {
        size_t n = 32;
        ok = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 &&
             EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == 32;
        EVP_PKEY_free(k);
    } else {
        char line[256] = "";
        rewind(f);
        if (fgets(line, sizeof(line), f)) {
            char *p = line + strspn(line, " \t");
            if (!strncmp(p, "ed25519:", 8)) p += 8;
            size_t n = strcspn(p, " \t\r\n");
            ok = n == 64 && wh_hex_decode(p, 64, pub, 32);
        }
    }
    fclose(f);
    if (!ok)
        snprintf(err, errlen,
                 "%s is not an Ed25519 public key (PEM, or 64 hex digits as the daemon "
                 "prints it)",
                 path);
    return ok;
}

void wh_checkpoint_json(const wh_checkpoint *cp, wh_buf *out)
{
    char id[17], head[65], sig[129];
    wh_hex_encode(cp->key_id, 8, id);
    wh_hex_encode(cp->head, 32, head);
    wh_hex_encode(cp->sig, 64, sig);
    wh_buf_printf(out,
                  "{\"v\":1,\"key_id\":\"%s\",\"seq\":%" PRIu64
                  ",\"head\":\"%s\",\"time_ms\":%" PRId64 ",\"sig\":\"%s\"}",
                  id, cp->seq, head, cp->time_ms, sig);
}

/* The hex string value of "key":"..." (exactly n bytes) after *p; advances *p. */
static bool take_hex(const char **p, const char *end, const char *key, uint8_t *out, size_t n)
{
    size_t kl = strlen(key);
    if ((size_t)(end - *p) < kl + 2 * n + 1 || memcmp(*p, key, kl) != 0) return false;
    *p += kl;
    if (!wh_hex_decode(*p, 2 * n, out, n) || (*p)[2 * n] != '"') return false;
    *p += 2 * n + 1;
    return true;
}

static bool take_int(const char **p, const char *end, const char *key, int64_t *v)
{
    size_t kl = strlen(key);
    if ((size_t)(end - *p) < kl + 1 || memcmp(*p, key, kl) != 0) return false;
    *p += kl;
    const char *s = *p;
    int64_t x = 0;
    if (s >= end || *s < '0' || *s > '9') return false;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (x > (INT64_MAX - (*s - '0')) / 10) return false; /* past int64: not ours */
        x = x * 10 + (*s - '0');
    }
    *p = s;
    *v = x;
    return true;
}

bool wh_checkpoint_parse(const char *line, size_t n, wh_checkpoint *cp)
{
    const char *p = line, *end = line + n;
    while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    int64_t seq, t;
    return take_hex(&p, end, "{\"v\":1,\"key_id\":\"", cp->key_id, 8) &&
           take_int(&p, end, ",\"seq\":", &seq) &&
           take_hex(&p, end, ",\"head\":\"", cp->head, 32) &&
           take_int(&p, end, ",\"time_ms\":", &t) &&
           take_hex(&p, end, ",\"sig\":\"", cp->sig, 64) && end - p == 1 && *p == '}' &&
           ((cp->seq = (uint64_t)seq), (cp->time_ms = t), true);
}

WH_NOIPA static int checkpoint_last_buf(const char *path, wh_checkpoint *cp, char *err,
                                        size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    char buf[4096];
    int ret = -1;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    if (st.st_size == 0) {
        ret = 0;
        goto done;
    }
    /* A line is about 330 bytes: the last 4 KiB hold the last complete one. */
    off_t off = st.st_size > (off_t)sizeof(buf) ? st.st_size - (off_t)sizeof(buf) : 0;
    ssize_t n = pread(fd, buf, sizeof(buf), off);
    if (n <= 0) {
        snprintf(err, errlen, "cannot read %s", path);
        goto done;
    }
    size_t end = (size_t)n;
    while (end > 0 && buf[end - 1] != '\n')
        end--; /* a torn last line (a crash while appending) is not a checkpoint yet */
    if (end == 0) {
        ret = 0;
        goto done;
    }
    size_t start = end - 1;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (!wh_checkpoint_parse(buf + start, end - start, cp)) {
        snprintf(err, errlen, "the last line of %s is not a signed checkpoint", path);
        goto done;
    }
    ret = 1;
done:
    close(fd);
    return ret;
}

/* ---- publisher ---- */

#define PUB_QUEUE                                                                                  \
    256 /* checkpoints waiting for the file; beyond, the oldest waiting is dropped                 \
         */

struct wh_publisher {
    char *file, *url, *sync_path;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    wh_checkpoint q[PUB_QUEUE];
    unsigned head, n;
    bool url_due; /* url_cp is newer than what the witness has */
    wh_checkpoint url_cp;
    bool stop;
};

static void append_file(wh_publisher *p, const wh_checkpoint *cp)
{
    if (p->sync_path) {
        int wfd = open(p->sync_path, O_RDONLY | O_CLOEXEC);
        if (wfd >= 0) {
            fdatasync(wfd);
            close(wfd);
        }
    }
    if (!p->file) return;
    wh_buf b;
    wh_buf_init(&b);
    wh_checkpoint_json(cp, &b);
    wh_buf_putc(&b, '\n');
    int fd = open(p->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && !b.oom && write(fd, b.p, b.len) == (ssize_t)b.len && fdatasync(fd) == 0;
    if (!ok)
        fprintf(stderr, "whiply: audit checkpoint %" PRIu64 " not appended to %s: %s\n", cp->seq,
                p->file, strerror(errno));
    if (fd >= 0) close(fd);
    wh_buf_free(&b);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr, (void)ud;
    return size * nmemb;
}

static bool post(const char *url, const wh_checkpoint *cp, long timeout_ms)
{
    CURL *c = curl_easy_init();
    if (!c) return false;
    wh_buf b;
    wh_buf_init(&b);
    wh_checkpoint_json(cp, &b);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, wh_buf_cstr(&b));
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)b.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    wh_buf_free(&b);
    return rc == CURLE_OK && code >= 200 && code < 300;
}

static void *pub_main(void *arg)
{
    wh_publisher *p = arg;
    int64_t retry_at = 0, backoff = 1000;
    bool said = false;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->n) {
            wh_checkpoint cp = p->q[p->head];
            p->head = (p->head + 1) % PUB_QUEUE;
            p->n--;
            pthread_mutex_unlock(&p->lock);
            append_file(p, &cp);
            pthread_mutex_lock(&p->lock);
        }
        if (p->url_due && wh_now_ms() >= retry_at) {
            /* Only the newest is sent: it covers every row the ones before it covered. */
            wh_checkpoint cp = p->url_cp;
            p->url_due = false;
            bool stop = p->stop;
            pthread_mutex_unlock(&p->lock);
            bool ok = post(p->url, &cp, stop ? 2000 : 10000);
            pthread_mutex_lock(&p->lock);
            if (ok) {
                if (said) fprintf(stderr, "whiply: audit checkpoints reach %s again\n", p->url);
                said = false;
                backoff = 1000;
            } else {
                if (!said)
                    fprintf(stderr,
                            "whiply: audit checkpoint %" PRIu64 " not delivered to %s; "
                            "retrying\n",
                            cp.seq, p->url);
                said = true;
                if (!p->url_due) p->url_cp = cp, p->url_due = true;
                retry_at = wh_now_ms() + backoff;
                backoff = backoff < 60000 ? backoff * 2 : 60000;
                if (stop) break;
            }
            continue;
        }
        if (p->stop && !p->n) break;
        struct timespec ts = wh_deadline_ms(1000);
        pthread_cond_timedwait(&p->wake, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

WH_NOIPA static wh_publisher *publisher_start_buf(const char *file, const char *url,
                                                  const char *sync_path, char *err, size_t errlen)
{
    wh_publisher *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->file = file ? strdup(file) : NULL;
    p->url = url ? strdup(url) : NULL;
    p->sync_path = sync_path ? strdup(sync_path) : NULL;
    if (p->url) pthread_once(&curl_once, curl_init);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (pthread_create(&p->thread, NULL, pub_main, p) != 0) {
        snprintf(err, errlen, "cannot start the checkpoint publisher");
        free(p->file), free(p->url), free(p->sync_path), free(p);
        return NULL;
    }
    return p;
}

void wh_publisher_put(wh_publisher *p, const wh_checkpoint *cp)
{
    pthread_mutex_lock(&p->lock);
    if (p->n == PUB_QUEUE) { /* a disk that stopped answering: keep the newest */
        p->head = (p->head + 1) % PUB_QUEUE;
        p->n--;
    }
    p->q[(p->head + p->n) % PUB_QUEUE] = *cp;
    p->n++;
    if (p->url) p->url_cp = *cp, p->url_due = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void wh_publisher_stop(wh_publisher *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->file), free(p->url), free(p->sync_path);
    free(p);
}

/* ---- the same, with the one error record ---- */

#define WITH_ERROR(e)                                                                              \
    wh_error scratch_;                                                                             \
    if (!(e)) (e) = &scratch_

wh_signer *wh_signer_open(const char *path, bool *created, wh_error *e)
{
    WITH_ERROR(e);
    wh_signer *sg = signer_open_buf(path, created, e->message, sizeof(e->message));
    e->code = sg ? WH_OK : WH_EIO;
    return sg;
}

bool wh_pubkey_load(const char *path, uint8_t pub[32], wh_error *e)
{
    WITH_ERROR(e);
    bool ok = pubkey_load_buf(path, pub, e->message, sizeof(e->message));
    e->code = ok ? WH_OK : WH_EINVAL;
    return ok;
}

int wh_checkpoint_last_in_file(const char *path, wh_checkpoint *cp, wh_error *e)
{
    WITH_ERROR(e);
    e->message[0] = 0;
    int r = checkpoint_last_buf(path, cp, e->message, sizeof(e->message));
    e->code = r < 0 ? WH_ECORRUPT : WH_OK;
    return r;
}

wh_publisher *wh_publisher_start(const char *file, const char *url, const char *sync_path,
                                 wh_error *e)
{
    WITH_ERROR(e);
    wh_publisher *p = publisher_start_buf(file, url, sync_path, e->message, sizeof(e->message));
    e->code = p ? WH_OK : WH_EIO;
    return p;
}
