// CPU (OpenMP) drivers of the sampling kernels over CSR/CSC/dense matrices.
//
// Host only. Inputs are validated while they are read (counts must be non-negative integers
// held exactly by the dtype; indices in range; no duplicate entries) and the first problem is
// thrown as std::invalid_argument after the parallel region. Inputs are never written to.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "binomial.hpp"
#include "kernels.hpp"
#include "matrix.hpp"
#include "philox.hpp"
#include "philox_batch.hpp"

namespace noisescale {
namespace cpu {

inline int resolve_threads(int threads) {
#ifdef _OPENMP
    return threads > 0 ? threads : omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

// ---------------------------------------------------------------------------------------------
// Count validation

enum class Problem : int { none = 0, negative, non_integer, non_finite, too_large, index_range,
                           duplicate };

// count_ok(), plus what is wrong with a rejected count.
template <class V>
inline Problem read_count(V v, int64_t* c) {
    if (count_ok(v, c)) return Problem::none;
    if constexpr (std::is_floating_point_v<V>) {
        if (!std::isfinite(v)) return Problem::non_finite;
        if (v < 0) return Problem::negative;
        if (v != std::floor(v)) return Problem::non_integer;
        return Problem::too_large;
    } else {
        return v < 0 ? Problem::negative : Problem::too_large;
    }
}

// A group of up to kBatch entries of one line (row of a CSR, column of a CSC matrix).
template <class I>
struct Group {
    int n = 0;
    bool rows_major = true;
    int64_t major = 0;       // global row (CSR) or column (CSC) of the line
    int64_t row_offset = 0;  // global row of local row 0
    uint32_t stream = 0;     // random stream: the level of a series
    alignas(64) int64_t counts[kBatch] = {0};
    alignas(64) uint32_t c0[kBatch] = {0}, c1[kBatch] = {0}, c2[kBatch] = {0};  // block-0 counters
    I minors[kBatch] = {0};

    int64_t row(int i) const {
        return rows_major ? major : row_offset + static_cast<int64_t>(minors[i]);
    }
    int64_t col(int i) const { return rows_major ? static_cast<int64_t>(minors[i]) : major; }

    // Counters rng_counter(row(i), col(i), stream, 0) of the first n lanes.
    void set_counters() {
        const uint32_t s = stream << 16;
        if (rows_major) {
            const uint64_t r = static_cast<uint64_t>(major);
            for (int i = 0; i < n; ++i) {
                c0[i] = static_cast<uint32_t>(minors[i]);
                c1[i] = static_cast<uint32_t>(r);
                c2[i] = (static_cast<uint32_t>(r >> 32) & 0xFFFFu) | s;
            }
        } else {
            for (int i = 0; i < n; ++i) {
                const uint64_t r = static_cast<uint64_t>(row_offset + minors[i]);
                c0[i] = static_cast<uint32_t>(major);
                c1[i] = static_cast<uint32_t>(r);
                c2[i] = (static_cast<uint32_t>(r >> 32) & 0xFFFFu) | s;
            }
        }
    }
};

// Read n entries of one line into g: counts, minor indices and Philox counters;
// returns whether every count and index is valid and sets *sorted to false if the minor
// indices are not strictly increasing after `prev`. Branch-free so compilers vectorize it.
template <class V, class I>
__attribute__((always_inline)) inline bool load_group_body(const V* __restrict data,
                                                           const I* __restrict indices, int n,
                                                           int64_t n_minor, int64_t prev,
                                                           bool* sorted, Group<I>& g) {
    int64_t* __restrict counts = g.counts;
    I* __restrict minors = g.minors;
    uint32_t bad = 0;
    for (int i = 0; i < n; ++i) {  // selects and bit operations only: vectorizes
        const I minor = indices[i];
        bad |= static_cast<uint32_t>(minor < 0) |
               static_cast<uint32_t>(static_cast<int64_t>(minor) >= n_minor);
        int64_t c;
        bad |= static_cast<uint32_t>(!count_ok(data[i], &c));
        counts[i] = c;
        minors[i] = minor;
    }
    uint32_t unsorted = static_cast<uint32_t>(static_cast<int64_t>(indices[0]) <= prev);
    for (int i = 1; i < n; ++i) unsorted |= static_cast<uint32_t>(indices[i] <= indices[i - 1]);
    *sorted = *sorted && unsorted == 0;
    g.n = n;
    g.set_counters();
    return bad == 0;
}

template <class V, class I>
using LoadGroupFn = bool (*)(const V*, const I*, int, int64_t, int64_t, bool*, Group<I>&);

template <class V, class I>
inline bool load_group_generic(const V* data, const I* indices, int n, int64_t n_minor,
                               int64_t prev, bool* sorted, Group<I>& g) {
    return load_group_body(data, indices, n, n_minor, prev, sorted, g);
}

#ifdef NOISESCALE_X86_SIMD
template <class V, class I>
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) inline bool load_group_avx512(
    const V* data, const I* indices, int n, int64_t n_minor, int64_t prev, bool* sorted,
    Group<I>& g) {
    return load_group_body(data, indices, n, n_minor, prev, sorted, g);
}

template <class V, class I>
__attribute__((target("avx2"))) inline bool load_group_avx2(const V* data, const I* indices, int n,
                                                            int64_t n_minor, int64_t prev,
                                                            bool* sorted, Group<I>& g) {
    return load_group_body(data, indices, n, n_minor, prev, sorted, g);
}
#endif

// load_group for the instruction set batch_impl() chose.
template <class V, class I>
inline LoadGroupFn<V, I> load_group_impl() {
#ifdef NOISESCALE_X86_SIMD
    const std::string isa = batch_impl().isa;
    if (isa == "avx512") return &load_group_avx512<V, I>;
    if (isa == "avx2") return &load_group_avx2<V, I>;
#endif
    return &load_group_generic<V, I>;
}

// Append the kept entries of a group (values vals[0..n), minor indices minors[0..n)) at
// oi/od: those with a non-zero value, or all with keep_zeros. Returns how many were written;
// never writes past them.
template <class V, class I>
using EmitFn = int (*)(const int64_t*, const I*, int, bool, I*, V*);

template <class V, class I>
inline int emit_generic(const int64_t* vals, const I* minors, int n, bool keep_zeros, I* oi,
                        V* od) {
    int p = 0;
    for (int i = 0; i < n; ++i) {  // branch-free: write, then advance when kept
        oi[p] = minors[i];
        od[p] = static_cast<V>(vals[i]);
        p += (keep_zeros || vals[i] != 0) ? 1 : 0;
    }
    return p;
}

#ifdef NOISESCALE_X86_SIMD
// AVX-512: compress the kept lanes in registers and store them with a lane mask, 8 at a time.
template <class V, class I>
__attribute__((target("avx512f,avx512dq,avx512vl"))) inline int emit_avx512(
    const int64_t* vals, const I* minors, int n, bool keep_zeros, I* oi, V* od) {
    int p = 0;
    for (int h = 0; h < n; h += 8) {
        const __mmask8 live = static_cast<__mmask8>(n - h >= 8 ? 0xFF : (1u << (n - h)) - 1);
        const __m512i v = _mm512_maskz_loadu_epi64(live, vals + h);
        const __mmask8 keep =
            keep_zeros ? live : _mm512_mask_cmpneq_epi64_mask(live, v, _mm512_setzero_si512());
        const int k = __builtin_popcount(keep);
        const __mmask8 out = static_cast<__mmask8>((1u << k) - 1);
        if constexpr (sizeof(I) == 4) {
            const __m256i m = _mm256_maskz_loadu_epi32(live, minors + h);
            _mm256_mask_storeu_epi32(oi + p, out, _mm256_maskz_compress_epi32(keep, m));
        } else {
            const __m512i m = _mm512_maskz_loadu_epi64(live, minors + h);
            _mm512_mask_storeu_epi64(oi + p, out, _mm512_maskz_compress_epi64(keep, m));
        }
        const __m512i cv = _mm512_maskz_compress_epi64(keep, v);
        if constexpr (std::is_same_v<V, float>)
            _mm256_mask_storeu_ps(od + p, out, _mm512_cvtepi64_ps(cv));
        else if constexpr (std::is_same_v<V, double>)
            _mm512_mask_storeu_pd(od + p, out, _mm512_cvtepi64_pd(cv));
        else if constexpr (std::is_same_v<V, int32_t>)
            _mm256_mask_storeu_epi32(od + p, out, _mm512_cvtepi64_epi32(cv));
        else
            _mm512_mask_storeu_epi64(od + p, out, cv);
        p += k;
    }
    return p;
}
#endif

template <class V, class I>
inline EmitFn<V, I> emit_impl() {
#ifdef NOISESCALE_X86_SIMD
    if (std::string(batch_impl().isa) == "avx512") return &emit_avx512<V, I>;
#endif
    return &emit_generic<V, I>;
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
                m << "count " << value << " is larger than this dtype holds exactly "
                  << "(float32: 2^24; otherwise 2^53); convert the matrix to int64 or float64";
                break;
            case Problem::index_range:
                m << "index " << static_cast<int64_t>(value) << " is out of range [0, "
                  << n_cols_for_range << ")";
                break;
            case Problem::duplicate:
                m << "duplicate entries for the same (row, column); call "
                     "sum_duplicates() on the matrix first";
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

// ---------------------------------------------------------------------------------------------
// Thinning

// Thin a group by one level (stream g.stream): vals[i] receives Binomial(g.counts[i], plan.p).
// The whole group is drawn at once (SIMD Philox and table inversion), with the scalar kernel
// only for counts >= kSmallN.
template <class I>
inline void thin_group(const Group<I>& g, const BinomialPlan& p, uint64_t seed, int64_t* vals) {
    const int n = g.n;
    if (p.p == 0.0 || p.p == 1.0) {  // no randomness
        for (int i = 0; i < n; ++i) vals[i] = p.p == 0.0 ? 0 : g.counts[i];
        return;
    }
    const BatchImpl& impl = batch_impl();
    PhiloxLanes blk;
    impl.philox(seed, g.c0, g.c1, g.c2, &blk);
    uint32_t big = impl.small(blk, g.counts, n, p, vals);
    while (big != 0) {  // rare: counts >= kSmallN
        const int i = __builtin_ctz(big);
        big &= big - 1;
        const Philox4 b0{{blk.v[0][i], blk.v[1][i], blk.v[2][i], blk.v[3][i]}};
        const int64_t c = g.counts[i];
        if (c <= kTableMaxN) {
            const uint64_t u = (static_cast<uint64_t>(b0.v[0]) << 32) | b0.v[1];
            const int64_t k = binomial_table(c, p, u);
            vals[i] = p.flip ? c - k : k;
        } else {
            EntryRng rng(seed, g.row(i), g.col(i), g.stream, b0);
            vals[i] = binomial(c, p, rng);
        }
    }
}

// Reusable uninitialised storage (one per thread and level).
template <class T>
struct Scratch {
    Buffer<T> buf;
    int64_t cap = 0;
    T* reserve(int64_t n) {
        if (n > cap) {
            buf = allocate<T>(n);
            cap = n;
        }
        return buf.get();
    }
};

// Where each (block, level) of a compressed output is written, and how the pieces become one
// array. Dense levels (expected kept fraction >= kInPlaceFraction) write in place into a
// full-size buffer at the block's input offset; the gaps are closed at the end and the buffer
// trimmed. Sparse levels write into a per-thread scratch buffer that is copied into an
// exact-size chunk, and the chunks are concatenated at the end: a full-size buffer would be
// touched (and zeroed by the kernel) far beyond what a small fraction keeps.
constexpr double kInPlaceFraction = 0.25;

template <class V, class I>
class BlockOutput {
public:
    BlockOutput(const std::vector<int64_t>& block_start, int64_t nnz, int levels,
                const std::vector<bool>& in_place)
        : levels_(levels),
          nblocks_(static_cast<int64_t>(block_start.size()) - 1),
          start_(block_start),
          in_place_(in_place),
          full_idx_(static_cast<size_t>(levels)),
          full_data_(static_cast<size_t>(levels)),
          idx_(static_cast<size_t>(nblocks_ * levels)),
          data_(static_cast<size_t>(nblocks_ * levels)),
          count_(static_cast<size_t>(nblocks_ * levels), 0) {
        for (int l = 0; l < levels; ++l)
            if (in_place_[static_cast<size_t>(l)]) {
                full_idx_[static_cast<size_t>(l)] = allocate<I>(nnz);
                full_data_[static_cast<size_t>(l)] = allocate<V>(nnz);
            }
    }

    bool in_place(int l) const { return in_place_[static_cast<size_t>(l)]; }
    I* full_indices(int l, int64_t b) const {
        return full_idx_[static_cast<size_t>(l)].get() + start_[static_cast<size_t>(b)];
    }
    V* full_data(int l, int64_t b) const {
        return full_data_[static_cast<size_t>(l)].get() + start_[static_cast<size_t>(b)];
    }

    // Block b wrote n entries of level l at idx/data (in place, or in scratch to be copied).
    void keep(int64_t b, int l, const I* idx, const V* data, int64_t n) {
        const size_t k = static_cast<size_t>(b * levels_ + l);
        count_[k] = n;
        if (in_place(l)) return;
        idx_[k] = allocate<I>(n);
        data_[k] = allocate<V>(n);
        std::memcpy(idx_[k].get(), idx, static_cast<size_t>(n) * sizeof(I));
        std::memcpy(data_[k].get(), data, static_cast<size_t>(n) * sizeof(V));
    }

    // Join level l's blocks in order into o.indices / o.data and set o.nnz.
    void assemble(int l, Compressed<V, I>& o, int threads) {
        std::vector<int64_t> offset(static_cast<size_t>(nblocks_) + 1, 0);
        for (int64_t b = 0; b < nblocks_; ++b)
            offset[static_cast<size_t>(b + 1)] =
                offset[static_cast<size_t>(b)] + count_[static_cast<size_t>(b * levels_ + l)];
        o.nnz = offset[static_cast<size_t>(nblocks_)];
        if (in_place(l)) {  // destinations never pass their sources: move blocks down in order
            o.indices = std::move(full_idx_[static_cast<size_t>(l)]);
            o.data = std::move(full_data_[static_cast<size_t>(l)]);
            for (int64_t b = 0; b < nblocks_; ++b) {
                const int64_t n = count_[static_cast<size_t>(b * levels_ + l)];
                const int64_t src = start_[static_cast<size_t>(b)];
                const int64_t dst = offset[static_cast<size_t>(b)];
                if (dst != src && n > 0) {
                    std::memmove(o.indices.get() + dst, o.indices.get() + src, n * sizeof(I));
                    std::memmove(o.data.get() + dst, o.data.get() + src, n * sizeof(V));
                }
            }
            shrink(o.indices, o.nnz);
            shrink(o.data, o.nnz);
            return;
        }
        o.indices = allocate<I>(o.nnz);
        o.data = allocate<V>(o.nnz);
        I* oi = o.indices.get();
        V* od = o.data.get();
#pragma omp parallel for schedule(dynamic, 4) num_threads(resolve_threads(threads))
        for (int64_t b = 0; b < nblocks_; ++b) {
            const size_t k = static_cast<size_t>(b * levels_ + l);
            const int64_t n = count_[k], at = offset[static_cast<size_t>(b)];
            if (n > 0) {
                std::memcpy(oi + at, idx_[k].get(), static_cast<size_t>(n) * sizeof(I));
                std::memcpy(od + at, data_[k].get(), static_cast<size_t>(n) * sizeof(V));
            }
            idx_[k].reset();
            data_[k].reset();
        }
    }

private:
    int levels_;
    int64_t nblocks_;
    std::vector<int64_t> start_;
    std::vector<bool> in_place_;
    std::vector<Buffer<I>> full_idx_;
    std::vector<Buffer<V>> full_data_;
    std::vector<Buffer<I>> idx_;
    std::vector<Buffer<V>> data_;
    std::vector<int64_t> count_;
};

// Turn per-line counts stored at indptr[m + 1] into offsets.
template <class I>
void counts_to_indptr(I* indptr, int64_t n_major) {
    indptr[0] = 0;
    for (int64_t m = 0; m < n_major; ++m) indptr[m + 1] += indptr[m];
}

// Thin a compressed matrix through `levels` nested levels. Explicit zeros in the output are
// dropped unless keep_zeros. Returns one compressed matrix per level, same dtypes, same
// minor order as the input.
template <class V, class I>
std::vector<Compressed<V, I>> thin_compressed(const CompressedIn<V, I>& in,
                                              const std::vector<BinomialPlan>& plans,
                                              uint64_t seed, bool keep_zeros, int threads) {
    const int levels = static_cast<int>(plans.size());
    if (levels < 1 || levels > kMaxLevels)
        throw std::invalid_argument("between 1 and 64 fractions are supported");
    check_global_shape(in.row_offset, in.rows_are_major ? in.n_major : in.n_minor,
                       in.rows_are_major ? in.n_minor : in.n_major);
    std::vector<Compressed<V, I>> out(static_cast<size_t>(levels));
    for (auto& o : out) o.indptr = allocate<I>(in.n_major + 1);
    const std::vector<int64_t> bounds = split_lines(in.indptr, in.n_major);
    const int64_t nblocks = static_cast<int64_t>(bounds.size()) - 1;
    const std::vector<int64_t> block_start = entry_offsets(in.indptr, bounds);
    std::vector<bool> in_place(static_cast<size_t>(levels));
    double kept = 1.0;  // expected fraction of entries left after each level
    for (int l = 0; l < levels; ++l) {
        kept *= plans[static_cast<size_t>(l)].p;
        in_place[static_cast<size_t>(l)] = keep_zeros || kept >= kInPlaceFraction;
    }
    BlockOutput<V, I> chunks(block_start, in.nnz(), levels, in_place);
    FirstProblem problem;
    const LoadGroupFn<V, I> load = load_group_impl<V, I>();
    const EmitFn<V, I> emit = emit_impl<V, I>();

#pragma omp parallel num_threads(resolve_threads(threads))
    {
    std::vector<Scratch<I>> sidx(static_cast<size_t>(levels));  // this thread's block outputs
    std::vector<Scratch<V>> sdata(static_cast<size_t>(levels));
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nblocks; ++b) {
        if (problem.any.load(std::memory_order_relaxed)) continue;
        const int64_t m0 = bounds[static_cast<size_t>(b)], m1 = bounds[static_cast<size_t>(b + 1)];
        const int64_t block_nnz =
            static_cast<int64_t>(in.indptr[m1]) - static_cast<int64_t>(in.indptr[m0]);
        I* oidx[kMaxLevels];
        V* odata[kMaxLevels];
        int64_t pos[kMaxLevels];
        for (int l = 0; l < levels; ++l) {
            oidx[l] = chunks.in_place(l) ? chunks.full_indices(l, b)
                                         : sidx[static_cast<size_t>(l)].reserve(block_nnz);
            odata[l] = chunks.in_place(l) ? chunks.full_data(l, b)
                                          : sdata[static_cast<size_t>(l)].reserve(block_nnz);
            pos[l] = 0;
        }
        Group<I> grp;
        grp.rows_major = in.rows_are_major;
        grp.row_offset = in.row_offset;
        int64_t vals[kBatch] = {0};
        bool bad = false;
        // Level 0 reads the block's input; level l > 0 reads what level l - 1 kept, so later
        // levels only visit surviving entries.
        for (int l = 0; l < levels && !bad; ++l) {
            const I* src_idx = l == 0 ? in.indices : oidx[l - 1];
            const V* src_data = l == 0 ? in.data : odata[l - 1];
            const I* prev_counts = l == 0 ? nullptr : out[static_cast<size_t>(l - 1)].indptr.get();
            I* line_counts = out[static_cast<size_t>(l)].indptr.get();
            const BinomialPlan& plan = plans[static_cast<size_t>(l)];
            grp.stream = static_cast<uint32_t>(l);
            int64_t e1 = l == 0 ? static_cast<int64_t>(in.indptr[m0]) : 0;
            for (int64_t m = m0; m < m1 && !bad; ++m) {
                grp.major = in.rows_are_major ? in.row_offset + m : m;
                const int64_t e0 = e1;
                e1 = l == 0 ? static_cast<int64_t>(in.indptr[m + 1])
                            : e0 + static_cast<int64_t>(prev_counts[m + 1]);
                int64_t prev = -1, line_nnz = 0;
                bool sorted = true;
                for (int64_t g = e0; g < e1 && !bad; g += kBatch) {
                    const int n = static_cast<int>(std::min<int64_t>(kBatch, e1 - g));
                    // Read and check without branches; locate a problem only if there is one
                    // (only level 0 can find one: later levels read checked values).
                    const bool ok =
                        load(src_data + g, src_idx + g, n, in.n_minor, prev, &sorted, grp);
                    prev = static_cast<int64_t>(grp.minors[n - 1]);
                    if (!ok) {
                        for (int i = 0; i < n && !bad; ++i) {
                            const int64_t e = g + i;
                            const int64_t minor = static_cast<int64_t>(in.indices[e]);
                            if (minor < 0 || minor >= in.n_minor) {
                                problem.record(Problem::index_range, e,
                                               in.rows_are_major ? in.row_offset + m : -1,
                                               in.rows_are_major ? -1 : m,
                                               static_cast<double>(minor));
                                bad = true;
                            } else if (read_count(in.data[e], &grp.counts[i]) != Problem::none) {
                                problem.record(read_count(in.data[e], &grp.counts[i]), e,
                                               in.row(m, minor), in.col(m, minor),
                                               static_cast<double>(in.data[e]));
                                bad = true;
                            }
                        }
                        bad = true;  // ok == false always means a problem was recorded
                        break;
                    }
                    thin_group(grp, plan, seed, vals);
                    const int k = emit(vals, grp.minors, n, keep_zeros, oidx[l] + pos[l],
                                       odata[l] + pos[l]);
                    line_nnz += k;
                    pos[l] += k;
                }
                if (bad) break;
                if (l == 0 && !sorted) {  // unsorted line: make sure no (row, col) appears twice
                    std::vector<I> idx(in.indices + e0, in.indices + e1);
                    std::sort(idx.begin(), idx.end());
                    if (std::adjacent_find(idx.begin(), idx.end()) != idx.end()) {
                        problem.record(Problem::duplicate, e0,
                                       in.rows_are_major ? in.row_offset + m : -1,
                                       in.rows_are_major ? -1 : m, 0.0);
                        bad = true;
                        break;
                    }
                }
                line_counts[m + 1] = static_cast<I>(line_nnz);
            }
        }
        if (!bad)
            for (int l = 0; l < levels; ++l) chunks.keep(b, l, oidx[l], odata[l], pos[l]);
    }
    }  // omp parallel
    problem.raise_if_any(in.n_minor);

    for (int l = 0; l < levels; ++l) {
        Compressed<V, I>& o = out[static_cast<size_t>(l)];
        chunks.assemble(l, o, threads);
        counts_to_indptr(o.indptr.get(), in.n_major);
    }
    return out;
}

// Thin a dense matrix (C order: rows are lines; F order: columns are lines) into `levels`
// preallocated outputs of the same shape and order.
template <class V>
void thin_dense(const V* in, int64_t n_rows, int64_t n_cols, bool c_order, int64_t row_offset,
                const std::vector<BinomialPlan>& plans, uint64_t seed, V* const* outs,
                int threads) {
    const int levels = static_cast<int>(plans.size());
    if (levels < 1 || levels > kMaxLevels)
        throw std::invalid_argument("between 1 and 64 fractions are supported");
    check_global_shape(row_offset, n_rows, n_cols);
    const int64_t n_major = c_order ? n_rows : n_cols, n_minor = c_order ? n_cols : n_rows;
    FirstProblem problem;
#pragma omp parallel for schedule(dynamic, 16) num_threads(resolve_threads(threads))
    for (int64_t m = 0; m < n_major; ++m) {
        if (problem.any.load(std::memory_order_relaxed)) continue;
        const V* line = in + m * n_minor;
        Group<int64_t> grp;  // minors: positions of the line's non-zero entries
        grp.rows_major = c_order;
        grp.row_offset = row_offset;
        grp.major = c_order ? row_offset + m : m;
        int64_t vals[kMaxLevels * kBatch] = {0};
        for (int l = 0; l < levels; ++l)
            std::fill(outs[l] + m * n_minor, outs[l] + (m + 1) * n_minor, V(0));
        int n = 0;
        for (int64_t k = 0; k <= n_minor; ++k) {
            if (k < n_minor) {
                int64_t c;
                const Problem p = read_count(line[k], &c);
                if (p != Problem::none) {
                    problem.record(p, m * n_minor + k, row_offset + (c_order ? m : k),
                                   c_order ? k : m, static_cast<double>(line[k]));
                    break;
                }
                if (c == 0) continue;
                grp.counts[n] = c;
                grp.minors[n] = k;
                ++n;
            }
            if (n == kBatch || (k == n_minor && n > 0)) {
                grp.n = n;
                for (int l = 0; l < levels; ++l) {  // level l thins level l - 1's counts
                    if (l > 0) std::copy(vals, vals + n, grp.counts);
                    grp.stream = static_cast<uint32_t>(l);
                    grp.set_counters();
                    thin_group(grp, plans[static_cast<size_t>(l)], seed, vals);
                    for (int i = 0; i < n; ++i)
                        outs[l][m * n_minor + grp.minors[i]] = static_cast<V>(vals[i]);
                }
                n = 0;
            }
        }
    }
    problem.raise_if_any();
}

// ---------------------------------------------------------------------------------------------
// Downsampling each row to a target total

// Block 0 of the downsampling sequence of entries (row, cols[k]), k < len, in SIMD batches.
template <class I>
void downsample_blocks(const I* cols, int64_t len, int64_t row, uint64_t seed, Philox4* out) {
    const BatchImpl& impl = batch_impl();
    alignas(64) uint32_t c0[kBatch] = {0}, c1[kBatch], c2[kBatch];
    const uint64_t r = static_cast<uint64_t>(row);
    for (int i = 0; i < kBatch; ++i) {
        c1[i] = static_cast<uint32_t>(r);
        c2[i] = (static_cast<uint32_t>(r >> 32) & 0xFFFFu) | (kStreamDownsample << 16);
    }
    PhiloxLanes blk;
    for (int64_t g = 0; g < len; g += kBatch) {
        const int n = static_cast<int>(std::min<int64_t>(kBatch, len - g));
        for (int i = 0; i < n; ++i) c0[i] = static_cast<uint32_t>(cols[g + i]);
        impl.philox(seed, c0, c1, c2, &blk);
        for (int i = 0; i < n; ++i)
            out[g + i] = Philox4{{blk.v[0][i], blk.v[1][i], blk.v[2][i], blk.v[3][i]}};
    }
}

// Downsample a CSR matrix; zeros produced are dropped unless keep_zeros.
template <class V, class I>
Compressed<V, I> downsample_csr(const CompressedIn<V, I>& in, Targets targets, uint64_t seed,
                                bool keep_zeros, int threads) {
    check_global_shape(in.row_offset, in.n_major, in.n_minor);
    Compressed<V, I> o;
    o.indptr = allocate<I>(in.n_major + 1);
    const std::vector<int64_t> bounds = split_lines(in.indptr, in.n_major);
    const int64_t nblocks = static_cast<int64_t>(bounds.size()) - 1;
    const std::vector<int64_t> block_start = entry_offsets(in.indptr, bounds);
    BlockOutput<V, I> chunks(block_start, in.nnz(), 1, std::vector<bool>{keep_zeros});
    FirstProblem problem;

#pragma omp parallel num_threads(resolve_threads(threads))
    {
    Scratch<I> sidx;  // this thread's block output
    Scratch<V> sdata;
    std::vector<int64_t> counts, order, vals;
    std::vector<Philox4> blocks;
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nblocks; ++b) {
        if (problem.any.load(std::memory_order_relaxed)) continue;
        const int64_t m0 = bounds[static_cast<size_t>(b)], m1 = bounds[static_cast<size_t>(b + 1)];
        const int64_t block_nnz =
            static_cast<int64_t>(in.indptr[m1]) - static_cast<int64_t>(in.indptr[m0]);
        I* oidx = sidx.reserve(block_nnz);
        V* odata = sdata.reserve(block_nnz);
        int64_t pos = 0;
        bool bad = false;
        for (int64_t m = m0; m < m1; ++m) {
            const int64_t e0 = static_cast<int64_t>(in.indptr[m]);
            const int64_t len = static_cast<int64_t>(in.indptr[m + 1]) - e0;
            const int64_t row = in.row_offset + m;
            counts.resize(static_cast<size_t>(len));
            vals.resize(static_cast<size_t>(len));
            int64_t total = 0, prev = -1;
            bool sorted = true;
            for (int64_t k = 0; k < len; ++k) {
                const int64_t e = e0 + k;
                const int64_t col = static_cast<int64_t>(in.indices[e]);
                if (col < 0 || col >= in.n_minor) {
                    problem.record(Problem::index_range, e, row, -1, static_cast<double>(col));
                    bad = true;
                    break;
                }
                const Problem p = read_count(in.data[e], &counts[static_cast<size_t>(k)]);
                if (p != Problem::none) {
                    problem.record(p, e, row, col, static_cast<double>(in.data[e]));
                    bad = true;
                    break;
                }
                if (col <= prev) sorted = false;
                prev = col;
                total += counts[static_cast<size_t>(k)];  // <= 2^53 * 2^31: no overflow
            }
            if (bad) break;
            const int64_t* cnt = counts.data();
            const I* idx = in.indices + e0;
            int64_t* out = vals.data();
            const bool draws = total > targets[m];
            if (draws) {  // block 0 of every entry's sequence, in SIMD batches
                blocks.resize(static_cast<size_t>(len));
                downsample_blocks(idx, len, row, seed, blocks.data());
            }
            const Philox4* blk = blocks.data();
            if (sorted) {
                downsample_row(
                    len, total, targets[m], [&](int64_t k) { return cnt[k]; },
                    [&](int64_t k) {
                        return EntryRng(seed, row, static_cast<int64_t>(idx[k]), kStreamDownsample,
                                        blk[k]);
                    },
                    [&](int64_t k, int64_t x) { out[k] = x; });
            } else {
                order.resize(static_cast<size_t>(len));
                for (int64_t k = 0; k < len; ++k) order[static_cast<size_t>(k)] = k;
                std::sort(order.begin(), order.end(),
                          [&](int64_t a, int64_t c) { return idx[a] < idx[c]; });
                for (int64_t k = 1; k < len; ++k)
                    if (idx[order[static_cast<size_t>(k)]] == idx[order[static_cast<size_t>(k - 1)]]) {
                        problem.record(Problem::duplicate, e0, row, -1, 0.0);
                        bad = true;
                        break;
                    }
                if (bad) break;
                const int64_t* ord = order.data();
                downsample_row(
                    len, total, targets[m], [&](int64_t k) { return cnt[ord[k]]; },
                    [&](int64_t k) {
                        return EntryRng(seed, row, static_cast<int64_t>(idx[ord[k]]),
                                        kStreamDownsample, blk[ord[k]]);
                    },
                    [&](int64_t k, int64_t x) { out[ord[k]] = x; });
            }
            const int64_t before = pos;
            for (int64_t k = 0; k < len; ++k) {
                oidx[pos] = idx[k];
                odata[pos] = static_cast<V>(out[k]);
                pos += (keep_zeros || out[k] != 0) ? 1 : 0;
            }
            o.indptr[m + 1] = static_cast<I>(pos - before);
        }
        if (!bad) chunks.keep(b, 0, oidx, odata, pos);
    }
    }  // omp parallel
    problem.raise_if_any(in.n_minor);
    chunks.assemble(0, o, threads);
    counts_to_indptr(o.indptr.get(), in.n_major);
    return o;
}

// Downsample a C-ordered dense matrix row by row into a preallocated output.
template <class V>
void downsample_dense(const V* in, int64_t n_rows, int64_t n_cols, int64_t row_offset,
                      Targets targets, uint64_t seed, V* out, int threads) {
    check_global_shape(row_offset, n_rows, n_cols);
    FirstProblem problem;
#pragma omp parallel for schedule(dynamic, 16) num_threads(resolve_threads(threads))
    for (int64_t r = 0; r < n_rows; ++r) {
        if (problem.any.load(std::memory_order_relaxed)) continue;
        const V* line = in + r * n_cols;
        V* dst = out + r * n_cols;
        std::vector<int64_t> counts, cols;
        int64_t total = 0;
        bool bad = false;
        for (int64_t k = 0; k < n_cols; ++k) {
            int64_t c;
            const Problem p = read_count(line[k], &c);
            if (p != Problem::none) {
                problem.record(p, r * n_cols + k, row_offset + r, k, static_cast<double>(line[k]));
                bad = true;
                break;
            }
            dst[k] = V(0);
            if (c == 0) continue;
            counts.push_back(c);
            cols.push_back(k);
            total += c;
        }
        if (bad) continue;
        const int64_t* cnt = counts.data();
        const int64_t* cl = cols.data();
        const int64_t row = row_offset + r;
        downsample_row(
            static_cast<int64_t>(counts.size()), total, targets[r], [&](int64_t k) { return cnt[k]; },
            [&](int64_t k) { return EntryRng(seed, row, cl[k], kStreamDownsample); },
            [&](int64_t k, int64_t x) { dst[cl[k]] = static_cast<V>(x); });
    }
    problem.raise_if_any();
}

}  // namespace cpu
}  // namespace noisescale
