/* test_ingest.c - the ingest seam (src/serve/ingest.h) as an adapter uses it: a real
 * service (SQLite audit in a temporary folder), events submitted with a completion
 * callback, decisions in input order, errors per line, the idempotency window, and the
 * audit rows there once the callback says the decisions are durable. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "serve/ingest.h"
#include "service_helper.h"
#include "t.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    bool durable;
} done_box;

static void on_done(wh_ingest_req *r, bool durable)
{
    done_box *b = r->ud;
    pthread_mutex_lock(&b->mu);
    b->calls++;
    b->durable = durable;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Waits (up to 30 s: a bound, not a pace) for the callback; returns how often it ran. */
static int await_done(done_box *b)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&b->mu);
    while (!b->calls && pthread_cond_timedwait(&b->cv, &b->mu, &until) == 0) {
    }
    int n = b->calls;
    pthread_mutex_unlock(&b->mu);
    return n;
}

static wh_service *open_service(wh_config *cfg, char *dir)
{
    strcpy(dir, "/tmp/whiply-ingest.XXXXXX");
    if (!mkdtemp(dir)) return NULL;
    return th_service_open(cfg, dir,
                           "version: 1\nrules:\n"
                           "  - {id: slur, when: {words: [bitch]}, action: delete}\n"
                           "  - {id: flood, when: {rate: {count: 2, per: 1m}}, action: {timeout: "
                           "1m}}\n",
                           "");
}

TEST(an_adapter_submits_and_is_called_back_once_the_decisions_are_durable)
{
    wh_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char dir[64];
    wh_service *s = open_service(&cfg, dir);
    ASSERT(s != NULL);
    const char *body =
        "{\"id\":\"e1\",\"channel\":\"#a\",\"user\":{\"id\":\"u\"},\"text\":\"hi\"}\n"
        "\n"
        "{\"id\":\"e2\",\"channel\":\"#a\",\"user\":{\"id\":\"u\"},\"text\":\"hey\"}\n"
        "{\"id\":\"bad\",\"text\":\n"
        "{\"id\":\"e3\",\"channel\":\"#a\",\"user\":{\"id\":\"u\"},\"text\":\"b1tch\"}\n"
        "{\"id\":\"e4\",\"channel\":\"#a\",\"user\":{\"id\":\"u\"},\"text\":\"ok\"}\n";
    wh_buf out;
    wh_buf_init(&out);
    done_box box = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};
    wh_ingest_req r = {.body = body, .len = strlen(body), .out = &out, .done = on_done, .ud = &box};
    ASSERT_EQ(wh_ingest_submit(s, &r), WH_OK);
    ASSERT_EQ(await_done(&box), 1);
    ASSERT(box.durable);
    ASSERT_EQ(r.nlines, 5); /* the blank line gives nothing */
    ASSERT_EQ(r.nerrors, 1);
    /* in input order: the third message in a minute is over the rate */
    const char *l1 = strstr(wh_buf_cstr(&out), "\"id\":\"e1\"");
    const char *l2 = strstr(out.p, "\"id\":\"e2\"");
    const char *lb = strstr(out.p, "\"line\":4");
    const char *l3 = strstr(out.p, "\"id\":\"e3\",\"action\":\"timeout\"");
    const char *l4 = strstr(out.p, "\"id\":\"e4\",\"action\":\"timeout\"");
    ASSERT(l1 && l2 && lb && l3 && l4);
    ASSERT(l1 < l2 && l2 < lb && lb < l3 && l3 < l4);
    /* durable means in the audit trail */
    wh_buf row;
    wh_buf_init(&row);
    ASSERT_EQ(wh_store_decision(wh_service_store(s), "e3", &row), WH_OK);
    ASSERT_CONTAINS(wh_buf_cstr(&row), "timeout");
    /* the same event again: the same answer from the idempotency window, called back too */
    done_box again = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};
    wh_buf out2;
    wh_buf_init(&out2);
    const char *e3 =
        "{\"id\":\"e3\",\"channel\":\"#a\",\"user\":{\"id\":\"u\"},\"text\":\"b1tch\"}";
    wh_ingest_req r2 = {
        .body = e3, .len = strlen(e3), .single = true, .out = &out2, .done = on_done, .ud = &again};
    ASSERT_EQ(wh_ingest_submit(s, &r2), WH_OK);
    ASSERT_EQ(await_done(&again), 1);
    ASSERT(again.durable);
    const char *first = l3, *nl = strchr(l3, '\n');
    ASSERT(nl != NULL);
    ASSERT_EQ(out2.len, (size_t)(nl - first) + strlen("{") + 1);
    ASSERT(!memcmp(out2.p + 1, first, (size_t)(nl - first)));
    /* without a callback the caller gets the ticket to wait for itself */
    wh_buf out3;
    wh_buf_init(&out3);
    const char *e5 = "{\"id\":\"e5\",\"channel\":\"#b\",\"text\":\"hello\"}";
    wh_ingest_req r3 = {.body = e5, .len = strlen(e5), .single = true, .out = &out3};
    ASSERT_EQ(wh_ingest_submit(s, &r3), WH_OK);
    ASSERT(wh_store_wait(wh_service_store(s), r3.ticket));
    wh_buf_free(&row);
    wh_buf_init(&row);
    ASSERT_EQ(wh_store_decision(wh_service_store(s), "e5", &row), WH_OK);
    wh_buf_free(&row);
    wh_buf_free(&out);
    wh_buf_free(&out2);
    wh_buf_free(&out3);
    wh_service_close(s);
    wh_config_free(&cfg);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
}
