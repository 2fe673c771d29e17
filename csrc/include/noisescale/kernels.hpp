// Per-entry and per-row sampling kernels: the one source the CPU loops and the CUDA kernels call.
//
// Determinism contract. For seed s, the output at matrix entry (global row i, column j) depends
// only on (s, i, j, the input count at (i, j), the fractions) for thinning, and on
// (s, i, row i's counts, target) for downsampling. It does not depend on storage format
// (CSR, CSC, dense), thread count, chunking of the rows (given each chunk's row offset) or
// device. Randomness for (i, j) and purpose `stream` is the Philox sequence of EntryRng.
#pragma once
#include <cstdint>
#include <type_traits>

#include "binomial.hpp"
#include "hd.hpp"
#include "hypergeometric.hpp"
#include "philox.hpp"

namespace noisescale {

// Largest count accepted: every integer up to 2^53 is exact in a double.
constexpr int64_t kMaxCount = int64_t(1) << 53;

// Most nested levels one call can produce.
constexpr int kMaxLevels = 64;

// Largest count a dtype holds exactly (float32: 2^24, int32: 2^31 - 1, others: 2^53).
template <class V>
NS_HD constexpr int64_t max_count() {
    if (std::is_same<V, float>::value) return int64_t(1) << 24;
    if (std::is_same<V, int32_t>::value) return 2147483647;
    return kMaxCount;
}

// Convert a stored count; false unless it is a whole number in [0, max_count<V>()] (NaN and
// infinities included). Branch-free so CPU loops vectorize.
template <class V>
NS_HD bool count_ok(V v, int64_t* c) {
    if (std::is_same<V, float>::value) {
        // float counts are <= 2^24, so the round trip goes through int32 (vectorizes on SSE2).
        const bool in = (v >= V(0)) & (v <= V(16777216));  // NaN: false
        const V safe = in ? v : V(0);
        const int32_t i = static_cast<int32_t>(safe);
        *c = i;
        return in & (static_cast<V>(i) == safe);
    } else if (std::is_floating_point<V>::value) {
        const bool in = (v >= V(0)) & (v <= static_cast<V>(max_count<V>()));  // NaN: false
        const V safe = in ? v : V(0);
        const int64_t i = static_cast<int64_t>(safe);
        *c = i;
        return in & (static_cast<V>(i) == safe);
    } else {
        *c = static_cast<int64_t>(v);
        return (v >= V(0)) & (static_cast<int64_t>(v) <= max_count<V>());
    }
}

// Level `level` of thinning at entry (row, col): Binomial(c, plan.p) drawn from the entry's
// sequence for stream `level`.
NS_HD int64_t thin_level(int64_t c, const BinomialPlan& plan, uint64_t seed, int64_t row,
                         int64_t col, uint32_t level) {
    if (c == 0 || plan.p == 0.0 || plan.p == 1.0) return plan.p == 0.0 ? 0 : c;
    EntryRng rng(seed, row, col, level);
    return binomial(c, plan, rng);
}

// Thin count c through `levels` nested levels: level l keeps each UMI left after level l - 1
// with probability plans[l].p (level 0 starts from c). out[l] receives the count after level l.
NS_HD void thin_entry(int64_t c, const BinomialPlan* plans, int levels, uint64_t seed,
                      int64_t row, int64_t col, int64_t* out) {
    for (int l = 0; l < levels; ++l) {
        c = thin_level(c, plans[l], seed, row, col, static_cast<uint32_t>(l));
        out[l] = c;
    }
}

// Downsample one row to at most `target` UMIs by drawing `target` of its `total` UMIs without
// replacement (a multivariate hypergeometric draw). The row's counts are visited in increasing
// column order; count(k) gives the k-th of `len` entries in that order, rng_at(k) its random
// sequence (EntryRng(seed, row, col(k), kStreamDownsample)), and emit(k, value) receives its
// new value. Entry k is a hypergeometric draw of the UMIs still to be taken among the UMIs not
// yet visited.
template <class CountAt, class RngAt, class Emit>
NS_HD void downsample_row(int64_t len, int64_t total, int64_t target, CountAt count, RngAt rng_at,
                          Emit emit) {
    if (total <= target) {
        for (int64_t k = 0; k < len; ++k) emit(k, count(k));
        return;
    }
    int64_t left_total = total, left_take = target;
    for (int64_t k = 0; k < len; ++k) {
        const int64_t c = count(k);
        int64_t x;
        if (left_take == 0 || c == 0)
            x = 0;
        else if (left_take == left_total)
            x = c;
        else {
            EntryRng rng = rng_at(k);
            x = hypergeometric(left_total, c, left_take, rng);
        }
        emit(k, x);
        left_total -= c;
        left_take -= x;
    }
}

}  // namespace noisescale
