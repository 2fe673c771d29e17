// Exact binomial sampling, shared by CPU and GPU.
//
// Binomial(n, p) is drawn by
//   * inversion of a precomputed CDF table (one 64-bit word) for n <= kTableMaxN,
//   * inversion by sequential search (BINV, Kachitvichyanukul & Schmeiser 1988) for n p < 10,
//   * transformed rejection with squeeze (BTRS, Hörmann 1993) otherwise,
// always on min(p, 1 - p), mirrored back when p > 1/2. Every path samples the binomial law
// itself (no normal or Poisson approximation); the only error is double rounding of the pmf.
#pragma once
#include <cmath>
#include <cstdint>

#include "detmath.hpp"
#include "hd.hpp"
#include "philox.hpp"

namespace noisescale {

constexpr int kTableMaxN = 32;
// Thresholds for n = 1..kTableMaxN, n + 1 each.
constexpr int kTableSize = (kTableMaxN - 1) * (kTableMaxN + 2) / 2 + kTableMaxN + 1;

NS_HD int table_offset(int n) { return (n - 1) * (n + 2) / 2; }

constexpr int kSmallN = 8;

// Everything about one success probability that does not depend on n.
struct BinomialPlan {
    double p;          // success probability, in [0, 1]
    double pp;         // min(p, 1 - p)
    double log1m_pp;   // log(1 - pp)
    int flip;          // 1 when p > 1/2: sample the failures
    // thr[table_offset(n) + k] = floor(2^64 * P(X <= k)) for X ~ Binomial(n, pp), k < n;
    // thr[table_offset(n) + n] = 2^64 - 1.
    uint64_t thr[kTableSize];
    // The same thresholds for n < kSmallN, padded with 2^64 - 1 to kSmallN columns, so the
    // inversion is a fixed number of comparisons (branch-free on the CPU).
    uint64_t small[kSmallN][kSmallN];
    // Transposed high halves, small_hi[k][n] = small[n][k] >> 32, padded to 16 entries (one
    // 16-lane SIMD register per k).
    uint32_t small_hi[kSmallN][16];
};

NS_HD uint64_t probability_to_u64(double c) {
    const double v = c * 18446744073709551616.0;  // 2^64
    if (!(v > 0.0)) return 0;
    if (v >= 18446744073709551616.0) return ~uint64_t(0);
    return static_cast<uint64_t>(v);
}

// Build the plan for probability p in [0, 1] (validated by the caller).
NS_HD void make_binomial_plan(double p, BinomialPlan* plan) {
    plan->p = p;
    plan->flip = p > 0.5 ? 1 : 0;
    plan->pp = plan->flip ? 1.0 - p : p;  // exact for p in [1/2, 1]
    const double pp = plan->pp, qq = 1.0 - pp;
    plan->log1m_pp = dm::log1p(-pp);
    const double ratio = pp / qq;
    for (int n = 1; n <= kTableMaxN; ++n) {
        uint64_t* t = plan->thr + table_offset(n);
        double pmf = dm::exp(n * plan->log1m_pp), cdf = 0.0;
        for (int k = 0; k < n; ++k) {
            cdf += pmf;
            t[k] = probability_to_u64(cdf);
            pmf *= ratio * static_cast<double>(n - k) / static_cast<double>(k + 1);
        }
        t[n] = ~uint64_t(0);
    }
    for (int n = 0; n < kSmallN; ++n)
        for (int k = 0; k < kSmallN; ++k)
            plan->small[n][k] = k < n ? plan->thr[table_offset(n) + k] : ~uint64_t(0);
    for (int k = 0; k < kSmallN; ++k)
        for (int n = 0; n < 16; ++n) {
            const uint64_t t = n < kSmallN ? plan->small[n][k] : ~uint64_t(0);
            plan->small_hi[k][n] = static_cast<uint32_t>(t >> 32);
        }
}

// binomial_table for n < kSmallN without branches: the number of thresholds <= u.
NS_HD int64_t binomial_small(int64_t n, const BinomialPlan& plan, uint64_t u) {
    const uint64_t* t = plan.small[n];
    int64_t k = 0;
    for (int j = 0; j < kSmallN; ++j) k += u >= t[j] ? 1 : 0;
    return k < n ? k : n;
}

// Binomial(n, pp) for 1 <= n <= kTableMaxN by inverting the table at the 64-bit word u.
NS_HD int64_t binomial_table(int64_t n, const BinomialPlan& plan, uint64_t u) {
    const uint64_t* t = plan.thr + table_offset(static_cast<int>(n));
    int64_t k = 0;
    while (k < n && u >= t[k]) ++k;
    return k;
}

// Binomial(n, pp) by inversion, for n pp < 10.
NS_HD int64_t binomial_inversion(int64_t n, const BinomialPlan& plan, EntryRng& rng) {
    const double pp = plan.pp, qq = 1.0 - pp, s = pp / qq;
    const double a = (static_cast<double>(n) + 1.0) * s;
    const double r0 = dm::exp(static_cast<double>(n) * plan.log1m_pp);
    for (;;) {
        double u = rng.uniform(), r = r0;
        int64_t x = 0;
        bool ok = true;
        while (u > r) {
            u -= r;
            ++x;
            r *= a / static_cast<double>(x) - s;
            // Rounding left u beyond the total mass: start again (probability < 1e-15).
            if (x > n || !(r > 0.0)) {
                ok = false;
                break;
            }
        }
        if (ok) return x;
    }
}

// Binomial(n, pp) by BTRS, for n pp >= 10.
NS_HD int64_t binomial_btrs(int64_t n, const BinomialPlan& plan, EntryRng& rng) {
    const double p = plan.pp, q = 1.0 - p, dn = static_cast<double>(n);
    const double spq = sqrt(dn * p * q);
    const double b = 1.15 + 2.53 * spq;
    const double a = -0.0873 + 0.0248 * b + 0.01 * p;
    const double c = dn * p + 0.5;
    const double v_r = 0.92 - 4.2 / b;
    const double alpha = (2.83 + 5.1 / b) * spq;
    const double lpq = dm::log(p / q);
    const double m = floor((dn + 1.0) * p);
    const double h = dm::log_factorial(m) + dm::log_factorial(dn - m);
    for (;;) {
        const double u = rng.uniform() - 0.5;
        double v = rng.uniform();
        const double us = 0.5 - fabs(u);
        const double k = floor((2.0 * a / us + b) * u + c);
        if (k < 0.0 || k > dn) continue;
        if (us >= 0.07 && v <= v_r) return static_cast<int64_t>(k);
        v = dm::log(v * alpha / (a / (us * us) + b));
        if (v <= h - dm::log_factorial(k) - dm::log_factorial(dn - k) + (k - m) * lpq)
            return static_cast<int64_t>(k);
    }
}

// Binomial(n, plan.p), n >= 0.
NS_HD int64_t binomial(int64_t n, const BinomialPlan& plan, EntryRng& rng) {
    if (n == 0 || plan.p == 0.0) return 0;
    if (plan.p == 1.0) return n;
    int64_t x;
    if (n <= kTableMaxN)
        x = binomial_table(n, plan, rng.next_u64());
    else if (static_cast<double>(n) * plan.pp < 10.0)
        x = binomial_inversion(n, plan, rng);
    else
        x = binomial_btrs(n, plan, rng);
    return plan.flip ? n - x : x;
}

}  // namespace noisescale
