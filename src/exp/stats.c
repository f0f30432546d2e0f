/* stats.c - Wilson intervals, McNemar's tests, Newcombe's paired difference (stats.h). */
#include "stats.h"

#include <math.h>

wh_interval wh_wilson(uint64_t k, uint64_t n, double z)
{
    if (n == 0 || k > n) return (wh_interval){NAN, NAN, NAN};
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double centre = p + z2 / (2 * nn);
    double half = z * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    double den = 1 + z2 / nn;
    double lo = (centre - half) / den, hi = (centre + half) / den;
    /* exact ends: rounding must not put 0/n above 0 or n/n below 1 */
    return (wh_interval){p, k == 0 ? 0 : fmax(lo, 0), k == n ? 1 : fmin(hi, 1)};
}

static double log_pmf_half(uint64_t k, uint64_t n)
{
    double nn = (double)n, kk = (double)k;
    return lgamma(nn + 1) - lgamma(kk + 1) - lgamma(nn - kk + 1) - nn * M_LN2;
}

double wh_binom_half_pmf(uint64_t k, uint64_t n)
{
    return k > n ? 0 : exp(log_pmf_half(k, n));
}

/* The lower tail, summed from k down by the ratio of neighbouring terms (term(i - 1) =
 * term(i) * i / (n - i + 1)) until the terms no longer change the sum. */
double wh_binom_half_cdf(uint64_t k, uint64_t n)
{
    if (k >= n) return 1;
    double term = wh_binom_half_pmf(k, n), sum = 0;
    for (uint64_t i = k;; i--) {
        sum += term;
        if (i == 0 || term < sum * 1e-17) break;
        term *= (double)i / (double)(n - i + 1);
    }
    return sum > 1 ? 1 : sum;
}

wh_mcnemar wh_mcnemar_test(uint64_t b, uint64_t c)
{
    wh_mcnemar m = {b, c, 1, 1};
    uint64_t n = b + c, lo = b < c ? b : c;
    if (n == 0) return m;
    if (b == c) {
        m.mid_p = 1 - 0.5 * wh_binom_half_pmf(b, n);
        return m;
    }
    double exact = 2 * wh_binom_half_cdf(lo, n);
    m.exact = exact > 1 ? 1 : exact;
    m.mid_p = m.exact - wh_binom_half_pmf(lo, n);
    return m;
}

wh_interval wh_newcombe_paired(uint64_t a, uint64_t b, uint64_t c, uint64_t d, double z)
{
    uint64_t n = a + b + c + d;
    if (n == 0) return (wh_interval){NAN, NAN, NAN};
    uint64_t r1 = a + b, r2 = c + d, c1 = a + c, c2 = b + d; /* margins */
    double nn = (double)n, p1 = (double)r1 / nn, p2 = (double)c1 / nn, est = p1 - p2;
    wh_interval w1 = wh_wilson(r1, n, z), w2 = wh_wilson(c1, n, z);
    /* phi: the correlation of the two margins, with Newcombe's continuity correction of
     * its numerator (0 when it is between 0 and n/2) */
    double phi = 0;
    if (r1 && r2 && c1 && c2) {
        double prod = (double)r1 * (double)r2 * (double)c1 * (double)c2;
        double num = (double)a * (double)d - (double)b * (double)c;
        if (num > nn / 2)
            phi = (num - nn / 2) / sqrt(prod);
        else if (num < 0)
            phi = num / sqrt(prod);
    }
    double dl1 = p1 - w1.lo, du1 = w1.hi - p1, dl2 = p2 - w2.lo, du2 = w2.hi - p2;
    double lo = est - sqrt(fmax(dl1 * dl1 + du2 * du2 - 2 * phi * dl1 * du2, 0));
    double hi = est + sqrt(fmax(dl2 * dl2 + du1 * du1 - 2 * phi * dl2 * du1, 0));
    return (wh_interval){est, lo, hi};
}
