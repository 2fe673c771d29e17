// CPU drivers, part 2: the per-group pipeline of thinning (load and check up to kBatch
// entries of a line, draw them in SIMD batches, append the kept ones). Host only.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "binomial.hpp"
#include "kernels.hpp"
#include "philox.hpp"
#include "philox_batch.hpp"
#include "simd.hpp"

namespace noisescale {
namespace cpu {

// A group of up to kBatch entries of one line (row of a CSR, column of a CSC matrix).
template <class I>
struct Group {
    int n = 0;
    bool rows_major = true;
    int64_t major = 0;       // global row (CSR) or column (CSC) of the line
    int64_t row_offset = 0;  // CSC: global row of local row 0 (CSR lines carry theirs in major)
    uint32_t stream = 0;     // random stream: the level of a series
    alignas(64) int64_t counts[kBatch] = {0};
    alignas(64) uint32_t c0[kBatch] = {0}, c1[kBatch] = {0}, c2[kBatch] = {0};  // block-0 counters
    I minors[kBatch] = {0};
    bool row_words_set = false;  // c1/c2 hold the current row's words in every lane

    int64_t row(int i) const {
        return rows_major ? major : row_offset + static_cast<int64_t>(minors[i]);
    }
    int64_t col(int i) const { return rows_major ? static_cast<int64_t>(minors[i]) : major; }

    // Words 0..2 of counter_words(row(i), col(i), stream, 0) in lane i < n.
    void set_counters() {
        if (rows_major) {  // one row: words 1 and 2 (row, stream) change only with the line
            const Philox4 w = counter_words(major, 0, stream, 0);
            if (c1[0] != w.v[1] || c2[0] != w.v[2] || !row_words_set) {
                std::fill(c1, c1 + kBatch, w.v[1]);
                std::fill(c2, c2 + kBatch, w.v[2]);
                row_words_set = true;
            }
            for (int i = 0; i < n; ++i)
                c0[i] = counter_words(major, static_cast<int64_t>(minors[i]), stream, 0).v[0];
        } else {
            for (int i = 0; i < n; ++i) {
                const Philox4 w =
                    counter_words(row_offset + static_cast<int64_t>(minors[i]), major, stream, 0);
                c0[i] = w.v[0];
                c1[i] = w.v[1];
                c2[i] = w.v[2];
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
    if constexpr (sizeof(I) == 4 && sizeof(V) == 4) {  // 16 lanes of 32-bit indices and values
        for (int h = 0; h < n; h += 16) {
            const int left = n - h;
            const __mmask16 live =
                static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
            const __mmask8 lo_live = static_cast<__mmask8>(live), hi_live = static_cast<__mmask8>(live >> 8);
            const __m512i vlo = _mm512_maskz_loadu_epi64(lo_live, vals + h);
            const __m512i vhi = _mm512_maskz_loadu_epi64(hi_live, vals + h + 8);
            __mmask16 keep = live;
            if (!keep_zeros) {
                const __m512i z = _mm512_setzero_si512();
                keep = static_cast<__mmask16>(_mm512_mask_cmpneq_epi64_mask(lo_live, vlo, z) |
                                              (_mm512_mask_cmpneq_epi64_mask(hi_live, vhi, z) << 8));
            }
            const int k = __builtin_popcount(keep);
            const __mmask16 out = static_cast<__mmask16>((1u << k) - 1);
            const __m512i m = _mm512_maskz_loadu_epi32(live, minors + h);
            _mm512_mask_storeu_epi32(oi + p, out, _mm512_maskz_compress_epi32(keep, m));
            if constexpr (std::is_same_v<V, float>) {
                const __m512 f = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtepi64_ps(vlo)),
                                                    _mm512_cvtepi64_ps(vhi), 1);
                _mm512_mask_storeu_ps(od + p, out, _mm512_maskz_compress_ps(keep, f));
            } else {
                const __m512i d = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(vlo)),
                                                     _mm512_cvtepi64_epi32(vhi), 1);
                _mm512_mask_storeu_epi32(od + p, out, _mm512_maskz_compress_epi32(keep, d));
            }
            p += k;
        }
        return p;
    }
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

// Thin a group by one level (stream g.stream): vals[i] receives Binomial(g.counts[i], plan.p).
// The whole group is drawn at once (SIMD Philox and table inversion), with the scalar kernel
// only for the lanes the batch leaves (counts >= kSmallN, or > kTableMaxN with AVX-512).
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
    while (big != 0) {  // rare: large counts
        const int i = __builtin_ctz(big);
        big &= big - 1;
        const Philox4 b0 = blk.lane(i);
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

}  // namespace cpu
}  // namespace noisescale
