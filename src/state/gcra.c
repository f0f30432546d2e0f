/* gcra.c - see gcra.h. Scaled time: t_s = t_ms * count, emission interval T_s = period_ms. */
#include "gcra.h"

bool wh_gcra_limit_valid(const wh_gcra_limit *l)
{
    return l->period_ms > 0 && l->period_ms <= (int64_t)1 << 40 && l->count >= 1 &&
           l->count <= WH_GCRA_MAX_COUNT && l->burst >= 1 && l->burst <= (int64_t)1 << 20;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return a <= 0 ? 0 : (a + b - 1) / b;
}

void wh_gcra_take(wh_gcra *s, const wh_gcra_limit *l, int64_t now_ms, int64_t quantity,
                  wh_gcra_result *out)
{
    const int64_t T = l->period_ms;   /* emission interval, scaled */
    const int64_t dvt = T * l->burst; /* delay variation tolerance, scaled */
    const int64_t now = now_ms * l->count;
    int64_t tat = s->tat > now ? s->tat : now;
    if (quantity < 0) quantity = 0;
    int64_t new_tat = tat + T * quantity;
    int64_t allow_at = new_tat - dvt;
    out->limit = l->burst;
    if (now < allow_at) {
        out->allowed = false;
        out->retry_after_ms = quantity > l->burst ? -1 : ceil_div(allow_at - now, l->count);
        out->reset_after_ms = ceil_div(tat - now, l->count);
        int64_t rem = (now - (tat - dvt)) / T; /* what could still be taken now */
        out->remaining = rem < 0 ? 0 : rem;
        return;
    }
    s->tat = new_tat;
    out->allowed = true;
    out->retry_after_ms = 0;
    out->reset_after_ms = ceil_div(new_tat - now, l->count);
    out->remaining = (now - allow_at) / T;
}
