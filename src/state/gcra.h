/* gcra.h - the generic cell rate algorithm (GCRA), with redis-cell's semantics.
 *
 * A limit of `count` per `period` with a burst of `burst` (the most taken at once) is a
 * token bucket of `burst` tokens refilled continuously at count/period, stored as one
 * number: the theoretical arrival time (TAT). Time is the caller's (event time in rules,
 * so replays decide alike). All arithmetic is in integers scaled by `count`, so it is exact
 * at the boundaries: no rounding of period/count ever drifts.
 *
 * This is the building block of the `rate` predicate (per user/channel state) and of the
 * daemon's rate-limit service; it owns no memory. */
#ifndef WH_GCRA_H
#define WH_GCRA_H

#include <stdbool.h>
#include <stdint.h>

#define WH_GCRA_MAX_COUNT 1000000 /* keeps now_ms * count far from int64 overflow */

typedef struct {
    int64_t period_ms; /* > 0 */
    int64_t count;     /* 1..WH_GCRA_MAX_COUNT requests per period */
    int64_t burst;     /* >= 1: requests allowed at once (redis-cell's max_burst + 1) */
} wh_gcra_limit;

typedef struct {
    int64_t tat; /* theoretical arrival time, in ms * count; 0 = never used */
} wh_gcra;

typedef struct {
    bool allowed;
    int64_t limit;          /* = burst */
    int64_t remaining;      /* requests still allowed right now */
    int64_t retry_after_ms; /* when denied: wait this long (-1: never, quantity > burst) */
    int64_t reset_after_ms; /* until the bucket is full again */
} wh_gcra_result;

/* True when the limit is usable (see the field comments). */
bool wh_gcra_limit_valid(const wh_gcra_limit *l);

/* Takes `quantity` (>= 0; 0 only asks) at now_ms. Updates *s only when allowed. Time going
 * backwards (out-of-order events) is treated as no time passing. */
void wh_gcra_take(wh_gcra *s, const wh_gcra_limit *l, int64_t now_ms, int64_t quantity,
                  wh_gcra_result *out);

#endif
