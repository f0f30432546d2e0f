/* stats.h - the statistics of replays and comparisons: Wilson score intervals for one
 * proportion, McNemar's exact conditional and mid-p tests for paired decisions, and
 * Newcombe's square-and-add interval for the difference of two paired proportions.
 *
 * Each is checked against published values in tests/unit/test_exp.c (Fagerland, Lydersen and
 * Laake, "Statistical Analysis of Contingency Tables", CRC 2017, through its R package
 * contingencytables). Pure functions, any thread. */
#ifndef WH_EXP_STATS_H
#define WH_EXP_STATS_H

#include <stdint.h>

/* The 97.5th percentile of the standard normal: the z of a two-sided 95% interval. */
#define WH_Z95 1.959963984540054

typedef struct {
    double est, lo, hi; /* NaN (est, lo, hi) when the denominator is 0 */
} wh_interval;

/* Wilson's score interval for k successes in n trials (Wilson 1927; no continuity
 * correction): what R's prop.test(k, n, correct = FALSE) reports. */
wh_interval wh_wilson(uint64_t k, uint64_t n, double z);

/* P(X <= k) for X ~ Binomial(n, 1/2), and P(X = k), for any n: P(X = k) from lgamma (to
 * about 1e-9 relative at n = 2 million), the tail summed from k downwards, so millions of
 * discordant pairs are fine. */
double wh_binom_half_cdf(uint64_t k, uint64_t n);
double wh_binom_half_pmf(uint64_t k, uint64_t n);

/* McNemar's test on the discordant pairs of a paired 2x2 table: b pairs where only the
 * first is "yes", c where only the second is. Two-sided exact conditional p-value
 * (2 P(X <= min(b, c)), at most 1) and mid-p (exact less P(X = min(b, c)); 1 - P(X = b) / 2
 * when b = c), as Fagerland, Lydersen and Laake (BMC Med Res Methodol 13:91, 2013) define
 * them. */
typedef struct {
    uint64_t b, c;
    double exact, mid_p;
} wh_mcnemar;
wh_mcnemar wh_mcnemar_test(uint64_t b, uint64_t c);

/* The paired table of two yes/no outcomes on the same n = a + b + c + d items: a both yes,
 * b first only, c second only, d neither. The difference of the "yes" shares, first minus
 * second ((b - c) / n), with Newcombe's square-and-add interval (Newcombe 1998, Stat Med
 * 17:2635, method 10: Wilson intervals of the two margins joined through their correlation). */
wh_interval wh_newcombe_paired(uint64_t a, uint64_t b, uint64_t c, uint64_t d, double z);

#endif
