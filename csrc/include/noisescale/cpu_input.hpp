// CPU drivers, part 1: input validation with precise errors, and the split of a compressed
// matrix into blocks of lines. Host only.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels.hpp"

namespace noisescale {
namespace cpu {

// The drivers' precondition on the number of nested levels (their per-entry buffers hold
// kMaxLevels). Fractions themselves are checked once, by nested_plans() in api.hpp.
inline void check_levels(int64_t levels) {
    if (levels < 1 || levels > kMaxLevels)
        throw std::invalid_argument("thinning takes 1 to " + std::to_string(kMaxLevels) +
                                    " levels, got " + std::to_string(levels) +
                                    " (build the plans with nested_plans())");
}

// ---------------------------------------------------------------------------------------------
// Count validation

// too_large: above what a float32 holds exactly (2^24; a wider dtype helps); beyond_2_53: an
// int64 or float64 count above 2^53, which no dtype helps with (the samplers are exact up to
// 2^53 only).
enum class Problem : int { none = 0, negative, non_integer, non_finite, too_large, beyond_2_53,
                           index_range, duplicate, row_total };

// count_ok(), plus what is wrong with a rejected count.
template <class V>
inline Problem read_count(V v, int64_t* c) {
    if (count_ok(v, c)) return Problem::none;
    constexpr Problem large =
        max_count<V>() < kMaxCount ? Problem::too_large : Problem::beyond_2_53;
    if constexpr (std::is_floating_point_v<V>) {
        if (!std::isfinite(v)) return Problem::non_finite;
        if (v < 0) return Problem::negative;
        if (v != std::floor(v)) return Problem::non_integer;
        return large;
    } else {
        return v < 0 ? Problem::negative : large;
    }
}

// First problem found: the smallest storage position wins so the message is reproducible.
struct FirstProblem {
    std::atomic<bool> any{false};
    Problem what = Problem::none;
    int64_t pos = std::numeric_limits<int64_t>::max();
    int64_t row = -1, col = -1;
    double value = 0.0;

    void record(Problem p, int64_t at, int64_t r, int64_t c, double v) {
#pragma omp critical(noisescale_first_problem)
        {
            if (at < pos) {
                what = p;
                pos = at;
                row = r;
                col = c;
                value = v;
            }
        }
        any.store(true, std::memory_order_relaxed);
    }

    // A whole-number count as digits while it fits in int64 (1152921504606846976, not
    // 1.152921504606847e+18); as a double beyond.
    static std::string whole(double v) {
        if (v < 9.2e18) return std::to_string(static_cast<int64_t>(v));
        std::ostringstream m;
        m.precision(17);
        m << v;
        return m.str();
    }

    void raise_if_any(int64_t n_cols_for_range = -1) const {
        if (what == Problem::none) return;
        std::ostringstream m;
        m.precision(17);
        switch (what) {
            case Problem::negative:
                m << "counts must be non-negative, found " << value;
                break;
            case Problem::non_integer:
                m << "counts must be whole numbers, found " << value;
                break;
            case Problem::non_finite:
                m << "counts must be finite, found " << value;
                break;
            case Problem::too_large:
                m << "count " << whole(value) << " is larger than this dtype holds exactly "
                  << "(float32: 2^24); convert the matrix to int64";
                break;
            case Problem::beyond_2_53:
                m << "count " << whole(value) << " is larger than 2^53, the largest count that "
                  << "can be thinned or downsampled exactly (in any dtype)";
                break;
            case Problem::index_range:
                m << "index " << static_cast<int64_t>(value) << " is out of range [0, "
                  << n_cols_for_range << ")";
                break;
            case Problem::duplicate:
                m << "duplicate entries for the same (row, column); call "
                     "sum_duplicates() on the matrix first";
                break;
            case Problem::row_total:
                m << "a cell's total count exceeds 2^53, too many UMIs to downsample exactly";
                break;
            default:
                m << "invalid input";
        }
        if (row >= 0) m << " at row " << row;
        if (col >= 0) m << ", column " << col;
        throw std::invalid_argument(m.str());
    }
};

// Split lines [0, n_major) into blocks of similar work (entries + lines), independent of the
// thread count so the output layout never depends on it.
template <class I>
std::vector<int64_t> split_lines(const I* indptr, int64_t n_major) {
    const int64_t nnz = n_major == 0 ? 0 : static_cast<int64_t>(indptr[n_major]);
    const int64_t work = nnz + n_major;
    const int64_t target = 1 << 15;
    const int64_t nblocks = std::max<int64_t>(1, std::min<int64_t>(n_major, work / target));
    std::vector<int64_t> bounds(static_cast<size_t>(nblocks) + 1, n_major);
    bounds[0] = 0;
    int64_t m = 0;
    for (int64_t b = 1; b < nblocks; ++b) {
        const int64_t goal = work * b / nblocks;
        while (m < n_major && static_cast<int64_t>(indptr[m]) + m < goal) ++m;
        bounds[static_cast<size_t>(b)] = m;
    }
    return bounds;
}

// The storage offset of the first entry of each block.
template <class I>
std::vector<int64_t> entry_offsets(const I* indptr, const std::vector<int64_t>& bounds) {
    std::vector<int64_t> start(bounds.size());
    for (size_t b = 0; b < bounds.size(); ++b) start[b] = static_cast<int64_t>(indptr[bounds[b]]);
    return start;
}

}  // namespace cpu
}  // namespace noisescale
