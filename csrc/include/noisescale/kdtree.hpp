// Exact max-norm (Chebyshev) k-d tree: the neighbour searches of the KSG mutual-information
// estimators.
//
// Two queries, both over the tree's own points (a point is never its own neighbour, by index, so
// duplicate points are neighbours at distance 0):
//   kth_distance(k)      -> for every point, the distance to its k-th nearest other point;
//   count_within(radii)  -> for every point i, the number of other points at distance < radii[i]
//                           (strictly closer).
// Every decision uses max_d |a_d - b_d| computed in float64, exactly as a reference
// implementation would, so the results are exact: they do not depend on the tree's shape, the
// thread count or the order of the search.
//
// Speed: queries go in blocks of nearby points (a subtree), so one traversal serves the whole
// block and each leaf is read once per block; leaves are scanned in float32 with SIMD
// (AVX-512/AVX2 when the CPU has them) and only the points whose float32 distance is within a
// rounding bound of a decision are re-measured in float64. Host-only code (OpenMP over blocks).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "noisescale/simd.hpp"
#include "noisescale/threads.hpp"

namespace noisescale {
namespace knn {

// Leaf scans in float32. Leaf blocks store their points coordinate-major, padded to a multiple
// of kLane points with +inf coordinates (so padded points are never below a finite threshold).
// A scan takes the max-norm float32 distance from q to each point of a block and reports, per
// run of kLane points, the bit masks of distances < lo and < hi. Every instruction set gives the
// same bits: |a - b| and max are correctly rounded single operations.
constexpr int64_t kLane = 16;

using LeafScanFn = void (*)(const float* q, const float* block, int64_t s, int64_t dim, float lo,
                            float hi, uint32_t* below_lo, uint32_t* below_hi);

inline void leaf_scan_scalar(const float* q, const float* block, int64_t s, int64_t dim, float lo,
                             float hi, uint32_t* below_lo, uint32_t* below_hi) {
    for (int64_t j0 = 0; j0 < s; j0 += kLane) {
        float acc[kLane] = {};
        for (int64_t d = 0; d < dim; ++d) {
            const float qd = q[d];
            const float* col = block + d * s + j0;
            for (int64_t jj = 0; jj < kLane; ++jj) {
                const float t = std::fabs(qd - col[jj]);
                acc[jj] = acc[jj] > t ? acc[jj] : t;
            }
        }
        uint32_t ml = 0, mh = 0;
        for (int64_t jj = 0; jj < kLane; ++jj) {
            ml |= static_cast<uint32_t>(acc[jj] < lo) << jj;
            mh |= static_cast<uint32_t>(acc[jj] < hi) << jj;
        }
        below_lo[j0 / kLane] = ml;
        below_hi[j0 / kLane] = mh;
    }
}

#ifdef NOISESCALE_X86_SIMD
__attribute__((target("avx2"))) inline void leaf_scan_avx2(const float* q, const float* block,
                                                           int64_t s, int64_t dim, float lo,
                                                           float hi, uint32_t* below_lo,
                                                           uint32_t* below_hi) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    for (int64_t j0 = 0; j0 < s; j0 += kLane) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int64_t d = 0; d < dim; ++d) {
            const __m256 qd = _mm256_set1_ps(q[d]);
            const float* col = block + d * s + j0;
            a0 = _mm256_max_ps(a0, _mm256_and_ps(_mm256_sub_ps(qd, _mm256_loadu_ps(col)), abs_mask));
            a1 = _mm256_max_ps(a1,
                               _mm256_and_ps(_mm256_sub_ps(qd, _mm256_loadu_ps(col + 8)), abs_mask));
        }
        below_lo[j0 / kLane] =
            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a0, vlo, _CMP_LT_OQ))) |
            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a1, vlo, _CMP_LT_OQ))) << 8;
        below_hi[j0 / kLane] =
            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a0, vhi, _CMP_LT_OQ))) |
            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a1, vhi, _CMP_LT_OQ))) << 8;
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push  // GCC 12's _mm512_max_ps wrapper trips -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) inline void leaf_scan_avx512(const float* q, const float* block,
                                                               int64_t s, int64_t dim, float lo,
                                                               float hi, uint32_t* below_lo,
                                                               uint32_t* below_hi) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int64_t j0 = 0; j0 < s; j0 += kLane) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t d = 0; d < dim; ++d) {
            const __m512 diff =
                _mm512_sub_ps(_mm512_set1_ps(q[d]), _mm512_loadu_ps(block + d * s + j0));
            acc = _mm512_max_ps(acc, _mm512_castsi512_ps(
                                         _mm512_and_si512(_mm512_castps_si512(diff), abs_mask)));
        }
        below_lo[j0 / kLane] = _mm512_cmp_ps_mask(acc, vlo, _CMP_LT_OQ);
        below_hi[j0 / kLane] = _mm512_cmp_ps_mask(acc, vhi, _CMP_LT_OQ);
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// float32 bounds on either side of a double: as_float_below(v) <= v <= as_float_above(v).
inline float as_float_below(double v) {
    float f = static_cast<float>(v);
    return static_cast<double>(f) > v ? std::nextafter(f, -std::numeric_limits<float>::infinity())
                                      : f;
}
inline float as_float_above(double v) {
    float f = static_cast<float>(v);
    return static_cast<double>(f) < v ? std::nextafter(f, std::numeric_limits<float>::infinity())
                                      : f;
}

// The widest leaf scan this CPU runs; see best_isa().
inline LeafScanFn leaf_scan() {
#ifdef NOISESCALE_X86_SIMD
    switch (best_isa()) {
        case Isa::avx512:
            return &leaf_scan_avx512;
        case Isa::avx2:
            return &leaf_scan_avx2;
        default:
            return &leaf_scan_scalar;
    }
#else
    return &leaf_scan_scalar;
#endif
}

class ChebyshevTree {
public:
    static constexpr double kMaxCoordinate = 1e30;  // float32 copies must stay finite

    // points: row-major (n, dim) float64; copied into tree order. leaf_size: points per leaf.
    ChebyshevTree(const double* points, int64_t n, int64_t dim, int64_t leaf_size = 128,
                  int64_t block_size = 256)
        : n_(n), dim_(dim), leaf_(std::max<int64_t>(leaf_size, 1)),
          block_(std::max<int64_t>(block_size, leaf_)) {
        if (n < 1) throw std::invalid_argument("a neighbour tree needs at least one point");
        if (dim < 1) throw std::invalid_argument("points must have at least one coordinate");
        for (int64_t i = 0; i < n * dim; ++i)
            if (!(std::fabs(points[i]) <= kMaxCoordinate))
                throw std::invalid_argument(
                    "coordinates must be finite and at most 1e30 in magnitude (standardize "
                    "the data first); found " + std::to_string(points[i]) + " in point " +
                    std::to_string(i / dim));
        order_.resize(static_cast<size_t>(n));
        std::iota(order_.begin(), order_.end(), int64_t{0});
        nodes_.reserve(static_cast<size_t>(2 * (n / leaf_ + 1)));
        build(points, 0, n);
        pts_.resize(static_cast<size_t>(n * dim));
        for (int64_t i = 0; i < n; ++i)
            std::copy_n(points + order_[i] * dim, dim, pts_.data() + i * dim);
        box_.resize(nodes_.size() * static_cast<size_t>(2 * dim));
        for (size_t v = 0; v < nodes_.size(); ++v) fill_box(static_cast<int64_t>(v));
        collect_blocks(0);
        int64_t padded = 0;
        for (Node& node : nodes_) {
            if (node.left >= 0) continue;
            node.soa = padded;
            padded += pad(node.end - node.begin) * dim;
            max_leaf_ = std::max(max_leaf_, node.end - node.begin);
        }
        soa_.assign(static_cast<size_t>(padded), std::numeric_limits<float>::infinity());
        double largest = 0.0;
        for (const Node& node : nodes_) {
            if (node.left >= 0) continue;
            const int64_t s = node.end - node.begin, sp = pad(s);
            for (int64_t j = 0; j < s; ++j)
                for (int64_t d = 0; d < dim; ++d) {
                    const double c = pts_[(node.begin + j) * dim + d];
                    soa_[node.soa + d * sp + j] = static_cast<float>(c);
                    largest = std::max(largest, std::fabs(c));
                }
        }
        // A float32 distance is within 2^-22 * max|coordinate| of the float64 one (rounding of
        // both coordinates and of the difference), plus a few subnormal steps for tiny values;
        // leaf scans run in float32 and re-check in float64 only the points within twice that
        // of a decision.
        tol_ = std::ldexp(largest, -21) + 4.0 * std::numeric_limits<float>::denorm_min();
    }

    int64_t size() const { return n_; }
    int64_t dim() const { return dim_; }

    // out[i] = distance from point i (input order) to its k-th nearest other point; 1 <= k < n.
    void kth_distance(int64_t k, double* out, int threads) const {
        if (k < 1 || k >= n_)
            throw std::invalid_argument("k must be in [1, n_points - 1], got k=" +
                                        std::to_string(k) + " with " + std::to_string(n_) +
                                        " points");
        const int64_t n_blocks = static_cast<int64_t>(blocks_.size());
#pragma omp parallel num_threads(resolve_threads(threads))
        {
            Scratch w(max_block_, k, max_leaf_, dim_);
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < n_blocks; ++b) kth_block(blocks_[static_cast<size_t>(b)], k, w, out);
        }
    }

    // out[i] = number of points j != i with distance(i, j) < radii[i] (radii in input order).
    void count_within(const double* radii, int64_t* out, int threads) const {
        const int64_t n_blocks = static_cast<int64_t>(blocks_.size());
#pragma omp parallel num_threads(resolve_threads(threads))
        {
            Scratch w(max_block_, 1, max_leaf_, dim_);
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < n_blocks; ++b)
                count_block(blocks_[static_cast<size_t>(b)], radii, w, out);
        }
    }

private:
    struct Node {
        int64_t begin, end;
        int64_t left, right;  // -1 for a leaf
        int64_t soa;          // leaf: offset of its padded float32 block in soa_
    };

    static int64_t pad(int64_t s) { return (s + kLane - 1) / kLane * kLane; }
    struct Frame {
        int64_t node;
        double bound;  // lower bound on the distance from the query to the node's box
    };

    // Query blocks: the largest nodes with at most block_ points, in tree order.
    void collect_blocks(int64_t v) {
        const Node& node = nodes_[static_cast<size_t>(v)];
        if (node.left < 0 || node.end - node.begin <= block_) {
            blocks_.push_back(v);
            max_block_ = std::max(max_block_, node.end - node.begin);
            return;
        }
        collect_blocks(node.left);
        collect_blocks(node.right);
    }

    // Median split on the coordinate of widest spread, recursively; returns the node index.
    int64_t build(const double* points, int64_t begin, int64_t end) {
        const int64_t v = static_cast<int64_t>(nodes_.size());
        nodes_.push_back({begin, end, -1, -1, 0});
        if (end - begin <= leaf_) return v;
        int64_t axis = 0;
        double widest = -1.0;
        for (int64_t d = 0; d < dim_; ++d) {
            double lo = std::numeric_limits<double>::infinity(), hi = -lo;
            for (int64_t i = begin; i < end; ++i) {
                const double c = points[order_[i] * dim_ + d];
                lo = std::min(lo, c);
                hi = std::max(hi, c);
            }
            if (hi - lo > widest) {
                widest = hi - lo;
                axis = d;
            }
        }
        if (!(widest > 0.0)) return v;  // all points equal: keep them in one leaf
        const int64_t mid = begin + (end - begin) / 2;
        std::nth_element(order_.begin() + begin, order_.begin() + mid, order_.begin() + end,
                         [&](int64_t a, int64_t b) {
                             const double ca = points[a * dim_ + axis];
                             const double cb = points[b * dim_ + axis];
                             return ca < cb || (ca == cb && a < b);
                         });
        const int64_t left = build(points, begin, mid);
        const int64_t right = build(points, mid, end);
        nodes_[static_cast<size_t>(v)].left = left;
        nodes_[static_cast<size_t>(v)].right = right;
        return v;
    }

    void fill_box(int64_t v) {
        const Node& node = nodes_[static_cast<size_t>(v)];
        double* lo = box_.data() + v * 2 * dim_;
        double* hi = lo + dim_;
        std::fill_n(lo, dim_, std::numeric_limits<double>::infinity());
        std::fill_n(hi, dim_, -std::numeric_limits<double>::infinity());
        for (int64_t i = node.begin; i < node.end; ++i) {
            const double* x = pts_.data() + i * dim_;
            for (int64_t d = 0; d < dim_; ++d) {
                lo[d] = std::min(lo[d], x[d]);
                hi[d] = std::max(hi[d], x[d]);
            }
        }
    }

    // Max-norm distance from q to node v's box, or any value >= bound once it is known to be.
    double box_near(const double* q, int64_t v, double bound) const {
        const double* lo = box_.data() + v * 2 * dim_;
        const double* hi = lo + dim_;
        double near = 0.0;
        for (int64_t d = 0; d < dim_; ++d) {
            const double below = lo[d] - q[d], above = q[d] - hi[d];
            const double gap = below > above ? below : above;
            near = near > gap ? near : gap;
            if (near >= bound) break;
        }
        return near;
    }

    // Whether every point of node v's box is at max-norm distance < r from q.
    bool box_inside(const double* q, int64_t v, double r) const {
        const double* lo = box_.data() + v * 2 * dim_;
        const double* hi = lo + dim_;
        for (int64_t d = 0; d < dim_; ++d)
            if (!(q[d] - lo[d] < r && hi[d] - q[d] < r)) return false;
        return true;
    }

    // Exact float64 max-norm distance between tree points (or the query q) and tree point j.
    double distance(const double* q, int64_t j) const {
        const double* b = pts_.data() + j * dim_;
        double m = 0.0;
        for (int64_t d = 0; d < dim_; ++d) {
            const double t = std::fabs(q[d] - b[d]);
            m = m > t ? m : t;
        }
        return m;
    }

    // Per-thread working memory of the block searches.
    struct Scratch {
        Scratch(int64_t block, int64_t k, int64_t leaf, int64_t dim)
            : best(static_cast<size_t>(block * k)), radius(static_cast<size_t>(block)),
              count(static_cast<size_t>(block)), below_lo(static_cast<size_t>(pad(leaf) / kLane)),
              below_hi(below_lo.size()), q32(static_cast<size_t>(dim)), scan(leaf_scan()) {
            stack.reserve(128);
        }
        std::vector<double> best;    // per query: its k smallest distances so far, ascending
        std::vector<double> radius;  // per query: the current search radius
        std::vector<int64_t> count;
        std::vector<uint32_t> below_lo, below_hi;  // scan masks of one leaf
        std::vector<float> q32;                    // the query in float32
        LeafScanFn scan;
        std::vector<Frame> stack;
    };

    // Max-norm distance between the boxes of nodes a and b: the smallest between any two of
    // their points (0 when the boxes overlap), or with `farthest` the largest.
    double box_distance(int64_t a, int64_t b, bool farthest) const {
        const double* alo = box_.data() + a * 2 * dim_;
        const double* ahi = alo + dim_;
        const double* blo = box_.data() + b * 2 * dim_;
        const double* bhi = blo + dim_;
        double m = 0.0;
        for (int64_t d = 0; d < dim_; ++d) {
            const double t = farthest ? std::max(bhi[d] - alo[d], ahi[d] - blo[d])
                                      : std::max(blo[d] - ahi[d], alo[d] - bhi[d]);
            m = m > t ? m : t;
        }
        return m;
    }

    // k-th neighbour distances of the points of query block `qv` (a node), all found in one
    // traversal of the tree so that each leaf is read once for the whole block.
    void kth_block(int64_t qv, int64_t k, Scratch& w, double* out) const {
        const Node& qn = nodes_[static_cast<size_t>(qv)];
        const int64_t m = qn.end - qn.begin;
        double* best = w.best.data();
        std::fill_n(best, m * k, std::numeric_limits<double>::infinity());
        double worst = std::numeric_limits<double>::infinity();  // max over the block of kth
        auto& stack = w.stack;
        stack.clear();
        stack.push_back({0, 0.0});
        while (!stack.empty()) {
            const Frame f = stack.back();
            stack.pop_back();
            if (f.bound >= worst) continue;
            const Node& node = nodes_[static_cast<size_t>(f.node)];
            if (node.left >= 0) {
                const double gl = box_distance(qv, node.left, false);
                const double gr = box_distance(qv, node.right, false);
                if (gl <= gr) {  // visit the nearer child first: push it last
                    stack.push_back({node.right, gr});
                    stack.push_back({node.left, gl});
                } else {
                    stack.push_back({node.left, gl});
                    stack.push_back({node.right, gr});
                }
                continue;
            }
            const int64_t s = node.end - node.begin;
            const float* block = soa_.data() + node.soa;
            worst = 0.0;
            for (int64_t i = 0; i < m; ++i) {
                double* bi = best + i * k;
                const int64_t p = qn.begin + i;
                const double* q = pts_.data() + p * dim_;
                if (box_near(q, f.node, bi[k - 1]) < bi[k - 1]) {
                    for (int64_t d = 0; d < dim_; ++d) w.q32[d] = static_cast<float>(q[d]);
                    // Candidates: float32 distance below the current k-th distance + tol.
                    const float thr = as_float_above(bi[k - 1] + tol_);
                    w.scan(w.q32.data(), block, pad(s), dim_, thr, thr, w.below_lo.data(),
                           w.below_hi.data());
                    for (int64_t g = 0; g < pad(s) / kLane; ++g) {
                        for (uint32_t bits = w.below_hi[g]; bits != 0; bits &= bits - 1) {
                            const int64_t j = g * kLane + __builtin_ctz(bits);
                            if (node.begin + j == p) continue;
                            const double dist = distance(q, node.begin + j);
                            if (!(dist < bi[k - 1])) continue;
                            int64_t slot = k - 1;
                            while (slot > 0 && bi[slot - 1] > dist) {
                                bi[slot] = bi[slot - 1];
                                --slot;
                            }
                            bi[slot] = dist;
                        }
                    }
                }
                worst = worst > bi[k - 1] ? worst : bi[k - 1];
            }
        }
        for (int64_t i = 0; i < m; ++i) out[order_[qn.begin + i]] = best[i * k + k - 1];
    }

    // Strict radius counts for the points of query block `qv`, in one traversal of the tree.
    void count_block(int64_t qv, const double* radii, Scratch& w, int64_t* out) const {
        const Node& qn = nodes_[static_cast<size_t>(qv)];
        const int64_t m = qn.end - qn.begin;
        double* r = w.radius.data();
        int64_t* count = w.count.data();
        double rmin = std::numeric_limits<double>::infinity(), rmax = 0.0;
        for (int64_t i = 0; i < m; ++i) {
            r[i] = radii[order_[qn.begin + i]];
            rmin = std::min(rmin, r[i]);
            rmax = std::max(rmax, r[i]);
            count[i] = 0;
        }
        auto& stack = w.stack;
        stack.clear();
        if (rmax > 0.0) stack.push_back({0, 0.0});
        while (!stack.empty()) {
            const int64_t v = stack.back().node;
            stack.pop_back();
            if (box_distance(qv, v, false) >= rmax) continue;
            const Node& node = nodes_[static_cast<size_t>(v)];
            const int64_t s = node.end - node.begin;
            if (box_distance(qv, v, true) < rmin) {  // the whole node is inside every query's ball
                for (int64_t i = 0; i < m; ++i) count[i] += s;
                continue;
            }
            if (node.left >= 0) {
                stack.push_back({node.right, 0.0});
                stack.push_back({node.left, 0.0});
                continue;
            }
            const float* block = soa_.data() + node.soa;
            for (int64_t i = 0; i < m; ++i) {
                const double* q = pts_.data() + (qn.begin + i) * dim_;
                if (box_near(q, v, r[i]) >= r[i]) continue;
                if (box_inside(q, v, r[i])) {
                    count[i] += s;
                    continue;
                }
                for (int64_t d = 0; d < dim_; ++d) w.q32[d] = static_cast<float>(q[d]);
                // float32 distances below `in` surely count, at or above `out` surely not; only
                // the points in between are measured in float64.
                const float in = as_float_below(r[i] - tol_), out = as_float_above(r[i] + tol_);
                w.scan(w.q32.data(), block, pad(s), dim_, in, out, w.below_lo.data(),
                       w.below_hi.data());
                int64_t c = 0;
                for (int64_t g = 0; g < pad(s) / kLane; ++g) {
                    c += __builtin_popcount(w.below_lo[g]);
                    for (uint32_t bits = w.below_hi[g] & ~w.below_lo[g]; bits != 0;
                         bits &= bits - 1) {
                        const int64_t j = g * kLane + __builtin_ctz(bits);
                        c += distance(q, node.begin + j) < r[i] ? 1 : 0;
                    }
                }
                count[i] += c;
            }
        }
        // Each point is at distance 0 from itself, which was counted whenever its radius > 0.
        for (int64_t i = 0; i < m; ++i) out[order_[qn.begin + i]] = count[i] - (r[i] > 0.0 ? 1 : 0);
    }

    int64_t n_, dim_, leaf_, block_;
    int64_t max_leaf_ = 0;   // largest leaf (a leaf of equal points may exceed leaf_)
    int64_t max_block_ = 0;  // largest query block (likewise)
    std::vector<int64_t> blocks_;  // query blocks (node indices)
    std::vector<int64_t> order_;  // tree position -> input row
    std::vector<double> pts_;     // points in tree order, row-major
    std::vector<Node> nodes_;
    std::vector<double> box_;     // per node: lo[dim], hi[dim]
    std::vector<float> soa_;      // float32 points in tree order, each leaf coordinate-major
    double tol_ = 0.0;            // bound on |float32 distance - float64 distance|, doubled
};

}  // namespace knn
}  // namespace noisescale
