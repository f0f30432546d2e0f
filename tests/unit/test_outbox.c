/* test_outbox.c - the action outbox (src/serve/outbox.c, src/store/outbox.c): the backoff,
 * the id derivation and the state machine alone; then a real service (SQLite in a temporary
 * folder) with an executor registered the way an adapter registers one, fed through the
 * ingest seam: which operations a verdict makes, retries, the platform's Retry-After, an
 * unsupported operation, a replay after a restart that is not carried out twice, and an
 * API-requested reversal. Alerts' JSON and the webhook signature against the Standard
 * Webhooks example. */
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "io/webhook.h"
#include "serve/ingest.h"
#include "serve/outbox_impl.h"
#include "t.h"

TEST(backoff_is_full_jitter_under_a_doubling_capped_ceiling)
{
    /* the ceiling: base * 2^(attempt-1), capped; the delay anywhere in [0, ceiling] */
    ASSERT_EQ(wh_outbox_backoff_ms(1000, 300000, 1, 1000), 1000);
    ASSERT_EQ(wh_outbox_backoff_ms(1000, 300000, 1, 1001), 0);
    ASSERT_EQ(wh_outbox_backoff_ms(1000, 300000, 4, 8000), 8000);
    ASSERT_EQ(wh_outbox_backoff_ms(1000, 300000, 4, 8001), 0);
    ASSERT_EQ(wh_outbox_backoff_ms(1000, 300000, 60, 300000), 300000);
    ASSERT_EQ(wh_outbox_backoff_ms(1000, 300000, 60, 300001), 0);
    /* spread: random draws cover the range (not stuck at an end) */
    uint64_t seed = 42, lo = 0, hi = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t d = wh_outbox_backoff_ms(100, 10000, 3, wh_splitmix64(&seed));
        ASSERT(d >= 0 && d <= 400);
        lo += d<100, hi += d> 300;
    }
    ASSERT(lo > 150 && hi > 150);
}

TEST(an_id_is_sha256_of_source_kind_target)
{
    char id[33];
    wh_outbox_op_id("e-1", 3, "timeout", "u42", 3, id);
    uint8_t h[32];
    SHA256((const unsigned char *)"e-1\0timeout\0u42", 15, h);
    char want[65];
    wh_hex_encode(h, 16, want);
    want[32] = 0;
    ASSERT_STR(id, want);
    ASSERT_STR(id, "02ea220c17f1f319d269cf781f302596"); /* Python's hashlib, independently */
    char other[33];
    wh_outbox_op_id("e-1", 3, "ban", "u42", 3, other);
    ASSERT(strcmp(id, other) != 0);
    wh_outbox_op_id("e-1", 3, "timeout", "u43", 3, other);
    ASSERT(strcmp(id, other) != 0);
    /* no ambiguity between fields: ("e-1t", "imeout") is another id */
    wh_outbox_op_id("e-1t", 4, "imeout", "u42", 3, other);
    ASSERT(strcmp(id, other) != 0);
}

TEST(the_state_machine_done_retry_dead_unsupported)
{
    wh_outbox_opts o = {.base_ms = 100, .cap_ms = 1000, .attempts = 3, .batch = 8};
    wh_op_result r = {.code = WH_OPR_DONE};
    wh_outbox_next n = wh_outbox_settle(&o, 1, &r, 5000, 7);
    ASSERT_STR(n.status, "done");
    ASSERT_EQ(n.due_at, -1);
    r.code = WH_OPR_UNSUPPORTED;
    ASSERT_STR(wh_outbox_settle(&o, 1, &r, 5000, 7).status, "unsupported");
    r.code = WH_OPR_FAILED; /* a 4xx: dead at once, whatever the attempts left */
    n = wh_outbox_settle(&o, 1, &r, 5000, 7);
    ASSERT_STR(n.status, "dead");
    ASSERT_EQ(n.due_at, -1);
    r.code = WH_OPR_RETRY;
    n = wh_outbox_settle(&o, 2, &r, 5000, 150); /* ceiling 200: 150 % 201 */
    ASSERT_STR(n.status, "retry");
    ASSERT_EQ(n.due_at, 5150);
    r.retry_after_ms = 2500; /* the platform's own wait wins */
    n = wh_outbox_settle(&o, 2, &r, 5000, 150);
    ASSERT_EQ(n.due_at, 7500);
    n = wh_outbox_settle(&o, 3, &r, 5000, 150); /* the last attempt */
    ASSERT_STR(n.status, "dead");
}

TEST(operations_and_outcomes_encode_and_decode)
{
    wh_buf b;
    wh_buf_init(&b);
    wh_op_row a = {0}, d;
    a.s[WH_OC_ID] = "0123456789abcdef0123456789abcdef";
    a.s[WH_OC_KIND] = "ban";
    a.s[WH_OC_MESSAGE] = "with\0nul";
    a.n[WH_OC_MESSAGE] = 8;
    a.duration_s = 77;
    wh_op_encode(&b, &a);
    a.s[WH_OC_KIND] = "warn";
    wh_op_encode(&b, &a);
    size_t pos = 0;
    ASSERT(wh_op_decode(b.p, b.len, &pos, &d));
    ASSERT_EQ(d.n[WH_OC_KIND], 3);
    ASSERT(!memcmp(d.s[WH_OC_KIND], "ban", 3));
    ASSERT_EQ(d.n[WH_OC_MESSAGE], 8);
    ASSERT(!memcmp(d.s[WH_OC_MESSAGE], "with\0nul", 8));
    ASSERT_EQ(d.n[WH_OC_CHANNEL], 0);
    ASSERT_EQ(d.duration_s, 77);
    ASSERT(wh_op_decode(b.p, b.len, &pos, &d));
    ASSERT(!memcmp(d.s[WH_OC_KIND], "warn", 4));
    ASSERT(!wh_op_decode(b.p, b.len, &pos, &d));
    /* a truncated list is refused, not read past its end */
    pos = 0;
    ASSERT(!wh_op_decode(b.p, 30, &pos, &d));
    b.len = 0;
    wh_outcome_row o = {.id = "abc",
                        .status = "retry",
                        .detail = "HTTP 429",
                        .attempts = 2,
                        .due_at = 12345,
                        .only_if_final = true},
                   od;
    wh_outcome_encode(&b, &o);
    ASSERT(wh_outcome_decode(b.p, b.len, &od));
    ASSERT_EQ(od.status_n, 5);
    ASSERT(!memcmp(od.detail, "HTTP 429", 8));
    ASSERT_EQ(od.attempts, 2);
    ASSERT_EQ(od.due_at, 12345);
    ASSERT(od.only_if_final);
    ASSERT(!wh_outcome_decode(b.p, b.len - 1, &od));
    wh_buf_free(&b);
}

TEST(the_signature_is_the_standard_webhooks_example)
{
    uint8_t key[64];
    uint32_t kn = 0;
    ASSERT(wh_config_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 38, key, sizeof(key),
                                    &kn));
    ASSERT_EQ(kn, 24);
    char sig[100];
    const char *body = "{\"test\": 2432232314}";
    wh_webhook_sign(key, kn, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body), sig,
                    sizeof(sig));
    ASSERT_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    ASSERT(!wh_config_webhook_secret("whsec_not base64!", 17, key, sizeof(key), &kn));
    ASSERT(!wh_config_webhook_secret("abc", 3, key, sizeof(key), &kn));
}

/* ---- a service with an executor ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char log[64][200]; /* "kind platform channel user msg_id duration attempt" */
    char ids[64][33];
    int n;
    int retry_first; /* answer RETRY (with Retry-After 30 ms) to the first attempt of each op */
} calls;

static void record(void *ud, const wh_op *op, wh_op_result *res)
{
    calls *c = ud;
    pthread_mutex_lock(&c->mu);
    if (c->n < 64) {
        snprintf(c->log[c->n], sizeof(c->log[0]), "%s %s %s %s %s %u #%u",
                 wh_op_kind_names[op->kind], op->platform, op->channel,
                 *op->user_id ? op->user_id : op->user_name, *op->msg_id ? op->msg_id : "-",
                 op->duration_s, op->attempt);
        snprintf(c->ids[c->n], 33, "%s", op->id);
        c->n++;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    res->code = WH_OPR_DONE;
    if (op->kind == WH_OP_WARN) {
        res->code = WH_OPR_UNSUPPORTED;
        snprintf(res->detail, sizeof(res->detail), "no warnings here");
    } else if (c->retry_first && op->attempt == 1) {
        res->code = WH_OPR_RETRY;
        res->retry_after_ms = 30;
        snprintf(res->detail, sizeof(res->detail), "rate limited");
    }
}

/* Waits (30 s at most: a bound, not a pace) until the executor was called n times. */
static int await_calls(calls *c, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&c->mu);
    while (c->n < n && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0) {
    }
    int got = c->n;
    pthread_mutex_unlock(&c->mu);
    return got;
}

static bool logged(calls *c, const char *line)
{
    pthread_mutex_lock(&c->mu);
    bool found = false;
    for (int i = 0; i < c->n; i++)
        found |= !strcmp(c->log[i], line);
    pthread_mutex_unlock(&c->mu);
    return found;
}

static wh_service *open_at(wh_config *cfg, const char *dir)
{
    char rules[600], yaml[2000];
    snprintf(rules, sizeof(rules), "%s/rules.yaml", dir);
    FILE *f = fopen(rules, "w");
    if (!f) return NULL;
    fputs("version: 1\nrules:\n"
          "  - {id: slur, when: {words: [bitch]}, action: {timeout: 10m}, reason: slur}\n"
          "  - {id: caps, when: {words: [shout]}, action: {warn: \"no shouting\"}}\n",
          f);
    fclose(f);
    snprintf(yaml, sizeof(yaml),
             "data: %s/data\nrules: %s\nthreads: 2\nlimits: {dedupe: 0}\n"
             "outbox: {backoff: 10ms, backoff_cap: 50ms, attempts: 4}\n"
             "store: {signing_key: none, checkpoints: none, preallocate: 0}\n",
             dir, rules);
    wh_diags d = {0};
    if (wh_config_load_mem("test.yaml", yaml, strlen(yaml), cfg, &d) != WH_OK) return NULL;
    wh_error err;
    wh_service *s = wh_service_open(cfg, &err);
    if (!s) fprintf(stderr, "wh_service_open: %s\n", err.message);
    return s;
}

static void submit(wh_service *s, const char *body)
{
    wh_buf out;
    wh_buf_init(&out);
    wh_ingest_req r = {.body = body, .len = strlen(body), .out = &out};
    ASSERT_EQ(wh_ingest_submit(s, &r), WH_OK);
    ASSERT(r.ticket == 0 || wh_store_wait(wh_service_store(s), r.ticket));
    wh_buf_free(&out);
}

TEST(a_verdict_becomes_operations_carried_out_once_even_after_a_restart)
{
    char dir[64] = "/tmp/whiply-outbox.XXXXXX";
    ASSERT(mkdtemp(dir));
    calls c = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    wh_config cfg;
    wh_service *s = open_at(&cfg, dir);
    ASSERT(s);
    wh_outbox *o = wh_service_outbox(s);
    ASSERT_EQ(wh_outbox_register(o, "chat", record, &c), WH_OK);
    ASSERT_EQ(wh_outbox_register(o, "chat", record, &c), WH_EINVAL); /* one per platform */
    ASSERT_EQ(wh_outbox_register(o, "webhook:x", record, &c), WH_EINVAL);
    submit(s, "{\"id\":\"e1\",\"platform\":\"chat\",\"channel\":\"#a\",\"user\":{\"id\":\"u1\","
              "\"name\":\"bob\"},\"text\":\"you bitch\",\"meta\":{\"msg_id\":\"m1\"}}\n"
              "{\"id\":\"e2\",\"platform\":\"other\",\"channel\":\"#a\",\"user\":{\"id\":\"u2\"},"
              "\"text\":\"you bitch\"}\n"
              "{\"id\":\"e3\",\"platform\":\"chat\",\"channel\":\"#a\",\"user\":{\"id\":\"u3\"},"
              "\"text\":\"shout\"}\n");
    ASSERT_EQ(await_calls(&c, 3), 3);
    /* a timeout deletes the message (by its msg_id) and times the user out for 600 s; the
     * platform without an executor gets nothing; a warn carries its message */
    ASSERT(logged(&c, "delete chat #a u1 m1 0 #1"));
    ASSERT(logged(&c, "timeout chat #a u1 m1 600 #1"));
    ASSERT(logged(&c, "warn chat #a u3 - 0 #1"));
    wh_buf out;
    wh_buf_init(&out);
    char id[33];
    wh_outbox_op_id("e3", 2, "warn", "u3", 2, id);
    /* the outcome is committed after the call: wait for the row to say so */
    for (int i = 0; i < 3000; i++) {
        out.len = 0;
        ASSERT_EQ(wh_outbox_get(o, id, &out), WH_OK);
        if (strstr(wh_buf_cstr(&out), "\"status\":\"unsupported\"")) break;
        usleep(10000);
    }
    ASSERT_CONTAINS(wh_buf_cstr(&out), "\"status\":\"unsupported\"");
    ASSERT_CONTAINS(wh_buf_cstr(&out), "\"detail\":\"no warnings here\"");
    wh_service_close(s);
    wh_config_free(&cfg);

    /* restarted without the idempotency window: e1 is decided again, its operations are the
     * same rows (INSERT OR IGNORE) and are not carried out again; e4 after it is */
    s = open_at(&cfg, dir);
    ASSERT(s);
    o = wh_service_outbox(s);
    c.retry_first = 1;
    ASSERT_EQ(wh_outbox_register(o, "chat", record, &c), WH_OK);
    submit(s, "{\"id\":\"e1\",\"platform\":\"chat\",\"channel\":\"#a\",\"user\":{\"id\":\"u1\"},"
              "\"text\":\"you bitch\",\"meta\":{\"msg_id\":\"m1\"}}\n"
              "{\"id\":\"e4\",\"platform\":\"chat\",\"channel\":\"#a\",\"user\":{\"id\":\"u4\"},"
              "\"text\":\"you bitch\",\"meta\":{\"msg_id\":\"m4\"}}\n");
    /* e4's two operations, each tried twice (RETRY with a Retry-After of 30 ms, then DONE) */
    ASSERT_EQ(await_calls(&c, 7), 7);
    ASSERT(logged(&c, "delete chat #a u4 m4 0 #2"));
    ASSERT(logged(&c, "timeout chat #a u4 m4 600 #2"));
    int e1 = 0;
    for (int i = 0; i < c.n; i++)
        e1 += strstr(c.log[i], " u1 ") != NULL;
    ASSERT_EQ(e1, 2); /* from the first run only */

    /* an API-requested reversal */
    c.retry_first = 0;
    const char *req = "{\"id\":\"r1\",\"kind\":\"untimeout\",\"platform\":\"chat\",\"channel\":"
                      "\"#a\",\"user_id\":\"u4\",\"moderator\":\"mo\"}";
    uint64_t t = 0;
    out.len = 0;
    ASSERT_EQ(wh_outbox_request(o, req, strlen(req), &out, &t), 202);
    ASSERT(t && wh_store_wait(wh_service_store(s), t));
    ASSERT_EQ(await_calls(&c, 8), 8);
    ASSERT(logged(&c, "untimeout chat #a u4 - 0 #1"));
    out.len = 0;
    const char *bad = "{\"id\":\"r2\",\"kind\":\"explode\",\"platform\":\"chat\",\"channel\":"
                      "\"#a\",\"user_id\":\"u4\",\"moderator\":\"mo\"}";
    ASSERT_EQ(wh_outbox_request(o, bad, strlen(bad), &out, &t), 400);
    ASSERT_CONTAINS(wh_buf_cstr(&out), "'kind' must be");
    out.len = 0;
    const char *nox = "{\"id\":\"r3\",\"kind\":\"unban\",\"platform\":\"nowhere\",\"channel\":"
                      "\"#a\",\"user_id\":\"u4\",\"moderator\":\"mo\"}";
    ASSERT_EQ(wh_outbox_request(o, nox, strlen(nox), &out, &t), 409);
    wh_outbox_unregister(o, "chat");
    wh_buf_free(&out);
    wh_service_close(s);
    wh_config_free(&cfg);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* ---- alerts ---- */

TEST(alerts_render_discord_and_slack_naming_every_item)
{
    wh_alert_cfg c = {.name = "m", .url = "http://x", .dashboard_url = "https://mods.example/"};
    char items[30][300], ids[30][33];
    wh_op ops[30];
    const wh_op *p[30];
    for (int i = 0; i < 30; i++) {
        snprintf(items[i], sizeof(items[i]),
                 "{\"kind\":\"hold\",\"event_id\":\"ev %d\",\"channel\":\"#a\",\"user\":\"u%d\","
                 "\"user_name\":\"<b>\",\"text\":\"hi @everyone & <x>\",\"rule\":\"links\"}",
                 i, i);
        snprintf(ids[i], 33, "%032d", i);
        ops[i] = (wh_op){.id = ids[i], .kind = WH_OP_ALERT, .payload = items[i]};
        p[i] = &ops[i];
    }
    wh_buf b;
    wh_buf_init(&b);
    wh_alert_render(&c, p, 25, &b);
    const char *d = wh_buf_cstr(&b);
    const char *dhead = "{\"content\":\"whiply: 25 held for review in #a\",\"embeds\":[";
    ASSERT(!strncmp(d, dhead, strlen(dhead)));
    ASSERT_CONTAINS(d, "\"allowed_mentions\":{\"parse\":[]}");
    ASSERT_CONTAINS(d, "[approve/deny](https://mods.example/#/review/ev%2024)");
    for (int i = 0; i < 25; i++) {
        char want[80];
        snprintf(want, sizeof(want), "#/review/ev%%20%d)", i);
        ASSERT_CONTAINS(d, want);
    }
    b.len = 0;
    c.slack = true;
    c.template = "{kind}: {user_name} said {text} {link}";
    wh_alert_render(&c, p, 3, &b);
    d = wh_buf_cstr(&b);
    const char *head = "{\"text\":\"whiply: 3 held for review in #a\",\"blocks\":[{\"type\":"
                       "\"header\"";
    ASSERT(!strncmp(d, head, strlen(head)));
    /* Slack markup is escaped in what users wrote; the link is Slack's <url|label> */
    ASSERT_CONTAINS(d, "hold: &lt;b&gt; said hi @everyone &amp; &lt;x&gt; "
                       "<https://mods.example/#/review/ev%200|approve/deny>");
    wh_buf_free(&b);
}
