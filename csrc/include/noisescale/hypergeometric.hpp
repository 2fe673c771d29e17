// Exact hypergeometric sampling, shared by CPU and GPU.
#pragma once
#include <cmath>
#include <cstdint>

#include "detmath.hpp"
#include "hd.hpp"
#include "philox.hpp"

namespace noisescale {

// Below this many items the sampler walks the items one by one (selection sampling).
constexpr int64_t kHypergeometricWalk = 16;

// How many of `items` particular items out of `total` fall in a uniform sample of `selected`
// (Knuth's selection sampling: each item is taken with probability left / remaining).
NS_HD int64_t selection_walk(int64_t total, int64_t selected, int64_t items, EntryRng& rng) {
    int64_t x = 0, left = selected;
    for (int64_t i = 0; i < items && left > 0; ++i) {
        if (static_cast<int64_t>(rng.below(static_cast<uint64_t>(total - i))) < left) {
            ++x;
            --left;
        }
    }
    return x;
}

// Ratio-of-uniforms sampler HRUA (Stadlober 1989) for large arguments. The proposal is
// truncated 16 standard deviations above the mean (tail mass below 1e-50).
NS_HD int64_t hypergeometric_hrua(int64_t total, int64_t marked, int64_t sample, EntryRng& rng) {
    const double D1 = 1.7155277699214135;  // 2 sqrt(2/e)
    const double D2 = 0.8989161620588988;  // 3 - 2 sqrt(3/e)
    const int64_t m_s = sample < total - sample ? sample : total - sample;
    const int64_t min_gb = marked < total - marked ? marked : total - marked;
    const int64_t max_gb = total - min_gb;
    const double N = static_cast<double>(total), ms = static_cast<double>(m_s);
    const double mn = static_cast<double>(min_gb), mx = static_cast<double>(max_gb);
    const double p = mn / N, q = mx / N;
    const double a = ms * p + 0.5;
    const double var = (N - ms) * ms * p * q / (N - 1.0);
    const double c = sqrt(var + 0.5);
    const double h = D1 * c + D2;
    const double mode = floor((ms + 1.0) * (mn + 1.0) / (N + 2.0));
    const double g = dm::log_factorial(mode) + dm::log_factorial(mn - mode) +
                     dm::log_factorial(ms - mode) + dm::log_factorial(mx - ms + mode);
    const double upper = fmin(fmin(ms, mn) + 1.0, floor(a + 16.0 * c));
    double k;
    for (;;) {
        const double U = rng.uniform(), V = rng.uniform();
        const double X = a + h * (V - 0.5) / U;
        if (X < 0.0 || X >= upper) continue;
        k = floor(X);
        const double T = g - (dm::log_factorial(k) + dm::log_factorial(mn - k) +
                              dm::log_factorial(ms - k) + dm::log_factorial(mx - ms + k));
        if (U * (4.0 - U) - 3.0 <= T) break;  // quick accept
        if (U * (U - T) >= 1.0) continue;       // quick reject
        if (2.0 * dm::log(U) <= T) break;
    }
    int64_t x = static_cast<int64_t>(k);
    if (marked > total - marked) x = m_s - x;  // counted the unmarked items
    if (m_s < sample) x = marked - x;          // sampled the complement
    return x;
}

// Number of marked items in a uniform sample without replacement of `sample` items from
// `total` items of which `marked` are marked (0 <= marked, sample <= total).
NS_HD int64_t hypergeometric(int64_t total, int64_t marked, int64_t sample, EntryRng& rng) {
    if (sample == 0 || marked == 0) return 0;
    if (sample == total) return marked;
    if (marked == total) return sample;
    if (marked <= kHypergeometricWalk) return selection_walk(total, sample, marked, rng);
    if (sample <= kHypergeometricWalk) return selection_walk(total, marked, sample, rng);
    if (total - sample <= kHypergeometricWalk)
        return marked - selection_walk(total, marked, total - sample, rng);
    if (total - marked <= kHypergeometricWalk)
        return sample - selection_walk(total, sample, total - marked, rng);
    return hypergeometric_hrua(total, marked, sample, rng);
}

}  // namespace noisescale
