/* metrics.c - the daemon's counters and latency histograms, and their Prometheus text
 * (see service.h). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "internal.h"
#include "outbox_impl.h"

void wh_histo_add(wh_histo *h, uint64_t ns, uint64_t n)
{
    double sec = (double)ns * 1e-9;
    size_t i = 0;
    while (i < NB && sec > wh_lat_bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->b[i], n, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns * n, memory_order_relaxed);
}

/* ---- metrics ---- */

void wh_service_observe(wh_service *s, wh_route r, int status, uint64_t ns)
{
    size_t i = 0;
    while (i < NS && status_codes[i] != status)
        i++;
    atomic_fetch_add_explicit(&s->http[r][i], 1, memory_order_relaxed);
    wh_histo_add(&s->http_lat[r], ns, 1);
}

void wh_service_count_ratelimit(wh_service *s, bool quota, bool allowed)
{
    atomic_fetch_add_explicit(&s->rl_answers[quota][allowed], 1, memory_order_relaxed);
}

void wh_service_count_rejected(wh_service *s, wh_reject why)
{
    atomic_fetch_add_explicit(&s->rejected[why], 1, memory_order_relaxed);
}

void wh_service_connections(wh_service *s, int delta)
{
    atomic_fetch_add(&s->connections, delta);
}

static void histo_out(wh_buf *b, const char *name, const char *label, const wh_histo *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= NB; i++) {
        cum += atomic_load_explicit(&h->b[i], memory_order_relaxed);
        if (i < NB)
            wh_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, *label ? "," : "",
                          wh_lat_bounds[i], (unsigned long long)cum);
        else
            wh_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, *label ? "," : "",
                          (unsigned long long)cum);
    }
    const char *o = *label ? "{" : "", *c = *label ? "}" : "";
    wh_buf_printf(b, "%s_sum%s%s%s %.9f\n%s_count%s%s%s %llu\n", name, o, label, c,
                  (double)atomic_load(&h->sum_ns) * 1e-9, name, o, label, c,
                  (unsigned long long)cum);
}

static void help(wh_buf *b, const char *name, const char *type, const char *text)
{
    wh_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

void wh_service_metrics(wh_service *s, wh_buf *b)
{
    help(b, "whiply_events_total", "counter", "Events decided.");
    wh_buf_printf(b, "whiply_events_total %llu\n", (unsigned long long)atomic_load(&s->events));
    help(b, "whiply_events_replayed_total", "counter",
         "Events sent again with a recent id: answered as before, not decided again.");
    wh_buf_printf(b, "whiply_events_replayed_total %llu\n",
                  (unsigned long long)atomic_load(&s->replayed));
    help(b, "whiply_event_errors_total", "counter", "Input lines that were not events.");
    wh_buf_printf(b, "whiply_event_errors_total %llu\n",
                  (unsigned long long)atomic_load(&s->errors));
    help(b, "whiply_decisions_total", "counter", "Decisions by action.");
    for (int a = 0; a < WH_ACT__COUNT; a++)
        wh_buf_printf(b, "whiply_decisions_total{action=\"%s\"} %llu\n", wh_action_names[a],
                      (unsigned long long)atomic_load(&s->actions[a]));
    help(b, "whiply_rule_hits_total", "counter", "Times a rule fired (enforced or shadow).");
    pthread_rwlock_rdlock(&s->gen_rw);
    gen_t *g = s->g;
    pthread_mutex_lock(&s->hits_lock);
    for (uint32_t ri = 0; ri < g->rs->nrules; ri++) {
        uint64_t n = 0;
        for (uint32_t k = 0; k < g->nshards; k++)
            n += wh_decider_hits(g->dec[k], ri);
        for (uint32_t i = 0; i < s->nold_hits; i++)
            if (!strcmp(s->old_hits[i].id, g->rs->rules[ri].id)) n += s->old_hits[i].n;
        wh_buf_puts(b, "whiply_rule_hits_total{rule=");
        wh_buf_json_str(b, g->rs->rules[ri].id, strlen(g->rs->rules[ri].id));
        wh_buf_printf(b, "} %llu\n", (unsigned long long)n);
    }
    pthread_mutex_unlock(&s->hits_lock);
    wh_shard_stats ss = {0};
    for (uint32_t k = 0; k < g->nshards; k++) {
        pthread_mutex_lock(&g->dec_lock[k]);
        wh_shard *sh = wh_decider_shard(g->dec[k]);
        if (sh) wh_shard_stats_add(sh, &ss);
        pthread_mutex_unlock(&g->dec_lock[k]);
    }
    help(b, "whiply_ruleset_info", "gauge", "The ruleset serving (its hash).");
    wh_buf_printf(b, "whiply_ruleset_info{ruleset=\"%s\"} 1\n", g->rs->hash);
    help(b, "whiply_score", "histogram",
         "Classifier scores of the messages decided since the rules were loaded.");
    for (uint32_t slot = 0; slot < g->rs->nscores; slot++) {
        uint64_t counts[WH_SCORE_BUCKETS] = {0}, sum = 0, cum = 0;
        for (uint32_t k = 0; k < g->nshards; k++)
            wh_decider_score_hist(g->dec[k], slot, counts, &sum);
        const char *sn = g->rs->score_names[slot];
        for (int i = 0; i < WH_SCORE_BUCKETS; i++) {
            cum += counts[i];
            wh_buf_puts(b, "whiply_score_bucket{score=");
            wh_buf_json_str(b, sn, strlen(sn));
            wh_buf_printf(b, ",le=\"%.1f\"} %llu\n", (double)(i + 1) / WH_SCORE_BUCKETS,
                          (unsigned long long)cum);
        }
        wh_buf_puts(b, "whiply_score_bucket{score=");
        wh_buf_json_str(b, sn, strlen(sn));
        wh_buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        wh_buf_puts(b, "whiply_score_sum{score=");
        wh_buf_json_str(b, sn, strlen(sn));
        wh_buf_printf(b, "} %.6f\n", (double)sum / 1e6);
        wh_buf_puts(b, "whiply_score_count{score=");
        wh_buf_json_str(b, sn, strlen(sn));
        wh_buf_printf(b, "} %llu\n", (unsigned long long)cum);
    }
    help(b, "whiply_model_info", "gauge", "The classifiers the rules load (checksum, labels).");
    for (uint32_t i = 0; i < g->rs->nmodels; i++) {
        const wh_rmodel *rm = &g->rs->models[i];
        wh_buf_puts(b, "whiply_model_info{model=");
        wh_buf_json_str(b, rm->name, strlen(rm->name));
        wh_buf_printf(b, ",checksum=\"%s\",labels=", wh_model_checksum(rm->model));
        wh_buf tmp;
        wh_buf_init(&tmp);
        for (uint32_t l = 0; l < wh_model_nlabels(rm->model); l++)
            wh_buf_printf(&tmp, "%s%s", l ? "," : "", wh_model_label(rm->model, l));
        wh_buf_json_str(b, tmp.p ? tmp.p : "", tmp.len);
        wh_buf_free(&tmp);
        wh_buf_puts(b, "} 1\n");
    }
    pthread_rwlock_unlock(&s->gen_rw);
    help(b, "whiply_state_entries", "gauge", "Behaviour state entries held.");
    wh_buf_printf(b, "whiply_state_entries{kind=\"user\"} %llu\n", (unsigned long long)ss.users);
    wh_buf_printf(b, "whiply_state_entries{kind=\"channel\"} %llu\n",
                  (unsigned long long)ss.channels);
    help(b, "whiply_state_evictions_total", "counter", "State entries evicted at the cap.");
    wh_buf_printf(b, "whiply_state_evictions_total{kind=\"user\"} %llu\n",
                  (unsigned long long)(ss.user_evictions + atomic_load(&s->old_user_evictions)));
    wh_buf_printf(
        b, "whiply_state_evictions_total{kind=\"channel\"} %llu\n",
        (unsigned long long)(ss.channel_evictions + atomic_load(&s->old_channel_evictions)));
    help(b, "whiply_state_bytes", "gauge", "Memory of the behaviour state tables.");
    wh_buf_printf(b, "whiply_state_bytes %llu\n", (unsigned long long)ss.bytes);

    wh_store_stats st;
    wh_store_stats_get(s->store, &st);
    help(b, "whiply_audit_queue_depth", "gauge", "Audit rows waiting to be written.");
    wh_buf_printf(b, "whiply_audit_queue_depth %llu\n", (unsigned long long)st.queued);
    help(b, "whiply_audit_queue_capacity", "gauge", "Most audit rows queued before 429.");
    wh_buf_printf(b, "whiply_audit_queue_capacity %lld\n", (long long)s->cfg->limits.queue);
    help(b, "whiply_audit_rows_total", "counter", "Audit rows committed since start.");
    wh_buf_printf(b, "whiply_audit_rows_total %llu\n", (unsigned long long)st.written);
    help(b, "whiply_audit_commits_total", "counter", "Audit transactions committed.");
    wh_buf_printf(b, "whiply_audit_commits_total %llu\n", (unsigned long long)st.commits);
    help(b, "whiply_audit_commit_seconds_total", "counter", "Time spent committing.");
    wh_buf_printf(b, "whiply_audit_commit_seconds_total %.6f\n", (double)st.commit_ns * 1e-9);
    help(b, "whiply_audit_head_seq", "gauge", "Sequence number of the newest audit row.");
    wh_buf_printf(b, "whiply_audit_head_seq %llu\n", (unsigned long long)st.last_seq);
    help(b, "whiply_audit_failed", "gauge", "1 when the audit store failed (writes refused).");
    wh_buf_printf(b, "whiply_audit_failed %d\n", wh_store_error(s->store) ? 1 : 0);
    wh_store_health sh;
    wh_store_health_get(s->store, &sh);
    help(b, "whiply_audit_damaged", "gauge",
         "1 when the audit trail's check found damage (/healthz says why).");
    wh_buf_printf(b, "whiply_audit_damaged %d\n", strcmp(sh.state, "damaged") == 0);
    help(b, "whiply_audit_check_done", "gauge", "1 once the background check of the trail ended.");
    wh_buf_printf(b, "whiply_audit_check_done %d\n", strcmp(sh.state, "checking") != 0);
    help(b, "whiply_audit_rows_verified", "gauge", "Audit rows the background check walked.");
    wh_buf_printf(b, "whiply_audit_rows_verified %llu\n", (unsigned long long)sh.rows_verified);
    help(b, "whiply_audit_signed_seq", "gauge", "Newest audit row covered by a signed checkpoint.");
    wh_buf_printf(b, "whiply_audit_signed_seq %llu\n", (unsigned long long)sh.signed_seq);
    help(b, "whiply_review_pending", "gauge", "Held events waiting for a moderator.");
    wh_buf_printf(b, "whiply_review_pending %llu\n", (unsigned long long)st.pending_reviews);

    help(b, "whiply_ratelimit_decisions_total", "counter", "Rate-limit service answers.");
    for (int q = 0; q < 2; q++)
        for (int a = 1; a >= 0; a--)
            wh_buf_printf(b, "whiply_ratelimit_decisions_total{kind=\"%s\",result=\"%s\"} %llu\n",
                          q ? "quota" : "gcra", a ? "allowed" : "limited",
                          (unsigned long long)atomic_load(&s->rl_answers[q][a]));
    wh_rl_stats rls;
    wh_rl_stats_get(s->rl, &rls);
    help(b, "whiply_ratelimit_keys", "gauge", "Keys held by the rate-limit service.");
    wh_buf_printf(b, "whiply_ratelimit_keys{kind=\"gcra\"} %llu\n", (unsigned long long)rls.keys);
    wh_buf_printf(b, "whiply_ratelimit_keys{kind=\"quota\"} %llu\n",
                  (unsigned long long)rls.quota_keys);
    help(b, "whiply_ratelimit_evictions_total", "counter", "Rate-limit keys evicted at the cap.");
    wh_buf_printf(b, "whiply_ratelimit_evictions_total %llu\n", (unsigned long long)rls.evictions);

    help(b, "whiply_reloads_total", "counter", "Rules reloads by result.");
    wh_buf_printf(b, "whiply_reloads_total{result=\"ok\"} %llu\n",
                  (unsigned long long)atomic_load(&s->reloads_ok));
    wh_buf_printf(b, "whiply_reloads_total{result=\"refused\"} %llu\n",
                  (unsigned long long)atomic_load(&s->reloads_failed));
    help(b, "whiply_rejected_total", "counter", "Requests refused by a limit.");
    static const char *const reject_names[WH_REJ__COUNT] = {
        "queue", "connections", "body", "events", "head_timeout", "idle", "evicted", "bad_request"};
    for (int i = 0; i < WH_REJ__COUNT; i++)
        wh_buf_printf(b, "whiply_rejected_total{reason=\"%s\"} %llu\n", reject_names[i],
                      (unsigned long long)atomic_load(&s->rejected[i]));
    help(b, "whiply_http_connections", "gauge", "Open HTTP connections.");
    wh_buf_printf(b, "whiply_http_connections %lld\n", (long long)atomic_load(&s->connections));
    help(b, "whiply_http_requests_total", "counter", "HTTP requests by route and status.");
    for (int r = 0; r < WH_RT__COUNT; r++)
        for (size_t i = 0; i <= NS; i++) {
            uint64_t n = atomic_load_explicit(&s->http[r][i], memory_order_relaxed);
            if (!n) continue;
            if (i < NS)
                wh_buf_printf(b, "whiply_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                              wh_route_names[r], status_codes[i], (unsigned long long)n);
            else
                wh_buf_printf(b, "whiply_http_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                              wh_route_names[r], (unsigned long long)n);
        }
    help(b, "whiply_http_request_duration_seconds", "histogram", "HTTP request latency.");
    for (int r = 0; r < WH_RT__COUNT; r++) {
        char label[64];
        snprintf(label, sizeof(label), "route=\"%s\"", wh_route_names[r]);
        histo_out(b, "whiply_http_request_duration_seconds", label, &s->http_lat[r]);
    }
    help(b, "whiply_engine_seconds_per_event", "histogram",
         "Analysis and decision time per event (a request's time over its events).");
    histo_out(b, "whiply_engine_seconds_per_event", "", &s->engine_lat);
    wh_outbox_metrics(s->outbox, b);
    pthread_mutex_lock(&s->hits_lock);
    if (s->extra) s->extra(s->extra_ud, b);
    pthread_mutex_unlock(&s->hits_lock);
}

void wh_service_set_event_sink(wh_service *s, wh_event_sink_fn fn, void *ud)
{
    pthread_rwlock_wrlock(&s->sink_rw);
    s->sink = fn;
    s->sink_ud = ud;
    pthread_rwlock_unlock(&s->sink_rw);
}

wh_status wh_service_sink_events(wh_service *s, const char *body, size_t len, bool single,
                                 wh_buf *out, uint32_t *nlines, uint32_t *nerrors)
{
    pthread_rwlock_rdlock(&s->sink_rw);
    wh_status st =
        s->sink ? s->sink(s->sink_ud, body, len, single, out, nlines, nerrors) : WH_EUNAVAILABLE;
    pthread_rwlock_unlock(&s->sink_rw);
    return st;
}

void wh_service_set_metrics(wh_service *s, wh_metrics_fn fn, void *ud)
{
    pthread_mutex_lock(&s->hits_lock);
    s->extra = fn;
    s->extra_ud = ud;
    pthread_mutex_unlock(&s->hits_lock);
}
