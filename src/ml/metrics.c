/* metrics.c - accuracy, precision, recall, F1, false-positive rate and ROC-AUC. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml.h"

void wh_ml_confusion_at(const float *score, const bool *y, uint64_t n, double threshold,
                        wh_ml_confusion *out)
{
    memset(out, 0, sizeof(*out));
    out->threshold = threshold;
    for (uint64_t i = 0; i < n; i++) {
        bool p = score[i] >= threshold;
        if (y[i])
            p ? out->tp++ : out->fn++;
        else
            p ? out->fp++ : out->tn++;
    }
}

typedef struct {
    float s;
    bool y;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    float x = ((const pair *)a)->s, z = ((const pair *)b)->s;
    return x < z ? -1 : x > z;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0;
}

/* The Mann-Whitney statistic: the chance that a random positive scores above a random
 * negative, ties counting one half (average ranks). */
static double auc(const float *score, const bool *y, uint64_t n, uint64_t pos, uint64_t neg)
{
    if (!pos || !neg) return NAN; /* undefined without both classes */
    pair *v = malloc(n * sizeof(pair));
    if (!v) return NAN;
    for (uint64_t i = 0; i < n; i++)
        v[i] = (pair){score[i], y[i]};
    qsort(v, n, sizeof(pair), pair_cmp);
    double rank_sum = 0;
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i;
        uint64_t p = 0;
        while (j < n && v[j].s == v[i].s)
            p += v[j++].y;
        double avg = (double)(i + 1 + j) / 2; /* ranks i+1 .. j */
        rank_sum += avg * (double)p;
        i = j;
    }
    free(v);
    return (rank_sum - (double)pos * (double)(pos + 1) / 2) / ((double)pos * (double)neg);
}

void wh_ml_metrics_compute(const float *score, const bool *y, uint64_t n, double threshold,
                           wh_ml_metrics *m)
{
    memset(m, 0, sizeof(*m));
    wh_ml_confusion_at(score, y, n, threshold, &m->at);
    const wh_ml_confusion *c = &m->at;
    m->n = n;
    m->pos = c->tp + c->fn;
    m->neg = c->tn + c->fp;
    m->accuracy = ratio(c->tp + c->tn, n);
    m->precision = ratio(c->tp, c->tp + c->fp);
    m->recall = ratio(c->tp, m->pos);
    m->f1 = m->precision + m->recall > 0 ? 2 * m->precision * m->recall / (m->precision + m->recall)
                                         : 0;
    m->fpr = ratio(c->fp, m->neg);
    m->auc = auc(score, y, n, m->pos, m->neg);
}
