// The hot path of thinning on the CPU, in batches of kBatch entries (lanes):
//   * philox_batch: block 0 of each lane's Philox sequence, philox4x32_10({c0, c1, c2, 0}, seed);
//   * small_batch: level-0 table inversion (binomial_small) for lanes whose count < kSmallN.
// AVX-512 or AVX2 versions are chosen once at run time when the CPU has them; every version
// gives the same bits as the scalar code.
#pragma once
#include <cstdint>

#include "binomial.hpp"
#include "philox.hpp"

#include "simd.hpp"

namespace noisescale {

constexpr int kBatch = 32;

// Lanes of block-0 words, structure of arrays.
struct PhiloxLanes {
    alignas(64) uint32_t v[4][kBatch];

    Philox4 lane(int i) const { return Philox4{{v[0][i], v[1][i], v[2][i], v[3][i]}}; }
};

// Every batch below takes lane i's counter words 0..2 in c0[i], c1[i], c2[i] (filled from
// counter_words(row, column, stream, 0)); word 3, the block, is 0 in every lane.
static_assert(kBlockWord == 3, "the batches take counter words 0..2 and set the block word to 0");

inline void philox_batch_scalar(uint64_t seed, const uint32_t* c0, const uint32_t* c1,
                                const uint32_t* c2, PhiloxLanes* out) {
    for (int i = 0; i < kBatch; ++i) {
        const Philox4 r = philox4x32_10(Philox4{{c0[i], c1[i], c2[i], 0u}},
                                        static_cast<uint32_t>(seed),
                                        static_cast<uint32_t>(seed >> 32));
        for (int w = 0; w < 4; ++w) out->v[w][i] = r.v[w];
    }
}

// Table draws for a batch: vals[i] = binomial(counts[i], plan) from lane i's first 64-bit
// word, for every lane with count < kSmallN (the AVX-512 version also those <= kTableMaxN).
// Returns the mask of lanes i < n it left to the caller.
inline uint32_t small_batch_scalar(const PhiloxLanes& blk, const int64_t* counts, int n,
                                   const BinomialPlan& plan, int64_t* vals) {
    uint32_t big = 0;
    const int64_t flip = plan.flip;
    for (int i = 0; i < n; ++i) {
        const int64_t c = counts[i];
        if (c < kSmallN) {
            const uint64_t u = (static_cast<uint64_t>(blk.v[0][i]) << 32) | blk.v[1][i];
            const int64_t k = binomial_small(c, plan, u);
            vals[i] = k + flip * (c - 2 * k);  // flip ? c - k : k
        } else {
            big |= uint32_t(1) << i;
        }
    }
    return big;
}

#ifdef NOISESCALE_X86_SIMD
// One Philox round on 8 lanes (AVX2): 32x32 -> 64-bit products of even, then odd lanes.
#define NS_PHILOX_ROUND_AVX2(x0, x1, x2, x3, k0v, k1v)                                     \
    do {                                                                                   \
        const __m256i pe0 = _mm256_mul_epu32(x0, m0);                                      \
        const __m256i po0 = _mm256_mul_epu32(_mm256_srli_epi64(x0, 32), m0);               \
        const __m256i pe1 = _mm256_mul_epu32(x2, m1);                                      \
        const __m256i po1 = _mm256_mul_epu32(_mm256_srli_epi64(x2, 32), m1);               \
        const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(pe0, 32), po0, 0xAA);     \
        const __m256i lo0 = _mm256_blend_epi32(pe0, _mm256_slli_epi64(po0, 32), 0xAA);     \
        const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(pe1, 32), po1, 0xAA);     \
        const __m256i lo1 = _mm256_blend_epi32(pe1, _mm256_slli_epi64(po1, 32), 0xAA);     \
        x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), k0v);                             \
        x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), k1v);                             \
        x1 = lo1;                                                                          \
        x3 = lo0;                                                                          \
    } while (0)

__attribute__((target("avx2"))) inline void philox_batch_avx2(uint64_t seed, const uint32_t* c0,
                                                              const uint32_t* c1,
                                                              const uint32_t* c2,
                                                              PhiloxLanes* out) {
    const __m256i m0 = _mm256_set1_epi64x(kPhiloxM0), m1 = _mm256_set1_epi64x(kPhiloxM1);
    for (int h = 0; h < kBatch; h += 16) {  // two independent 8-lane chains hide latency
#define NS_LOAD(p) _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
        __m256i a0 = NS_LOAD(c0 + h), a1 = NS_LOAD(c1 + h), a2 = NS_LOAD(c2 + h);
        __m256i b0 = NS_LOAD(c0 + h + 8), b1 = NS_LOAD(c1 + h + 8), b2 = NS_LOAD(c2 + h + 8);
#undef NS_LOAD
        __m256i a3 = _mm256_setzero_si256(), b3 = _mm256_setzero_si256();
        uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
        for (int r = 0; r < kPhiloxRounds; ++r) {
            const __m256i k0v = _mm256_set1_epi32(static_cast<int>(k0));
            const __m256i k1v = _mm256_set1_epi32(static_cast<int>(k1));
            NS_PHILOX_ROUND_AVX2(a0, a1, a2, a3, k0v, k1v);
            NS_PHILOX_ROUND_AVX2(b0, b1, b2, b3, k0v, k1v);
            k0 += kPhiloxW0;
            k1 += kPhiloxW1;
        }
#define NS_STORE(p, v) _mm256_store_si256(reinterpret_cast<__m256i*>(p), v)
        NS_STORE(out->v[0] + h, a0);
        NS_STORE(out->v[1] + h, a1);
        NS_STORE(out->v[2] + h, a2);
        NS_STORE(out->v[3] + h, a3);
        NS_STORE(out->v[0] + h + 8, b0);
        NS_STORE(out->v[1] + h + 8, b1);
        NS_STORE(out->v[2] + h + 8, b2);
        NS_STORE(out->v[3] + h + 8, b3);
#undef NS_STORE
    }
}
#undef NS_PHILOX_ROUND_AVX2

// GCC 12 flags its own AVX-512 intrinsic headers with -Wuninitialized (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// AVX-512 keeps each 32-bit word in a 64-bit lane: _mm512_mul_epu32 then yields the whole
// 64-bit product (hi = p >> 32, lo = p), and it ignores the upper halves of its inputs, so
// those may hold junk between rounds and no masking or blending is needed: one round of 8
// lanes is 2 multiplies, 2 shifts and 2 three-way xors.
#define NS_PHILOX_ROUND_AVX512(x0, x1, x2, x3, k0v, k1v)                                   \
    do {                                                                                   \
        const __m512i p0 = _mm512_mul_epu32(x0, m0);                                       \
        const __m512i p1 = _mm512_mul_epu32(x2, m1);                                       \
        x0 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), x1, k0v, 0x96);          \
        x2 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), x3, k1v, 0x96);          \
        x1 = p1;                                                                           \
        x3 = p0;                                                                           \
    } while (0)

__attribute__((target("avx512f"))) inline void philox_batch_avx512(uint64_t seed,
                                                                   const uint32_t* c0,
                                                                   const uint32_t* c1,
                                                                   const uint32_t* c2,
                                                                   PhiloxLanes* out) {
    static_assert(kBatch == 32, "four AVX-512 chains of 8 lanes");
    const __m512i m0 = _mm512_set1_epi64(kPhiloxM0), m1 = _mm512_set1_epi64(kPhiloxM1);
#define NS_WIDEN(p) _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))
    __m512i a0 = NS_WIDEN(c0), a1 = NS_WIDEN(c1), a2 = NS_WIDEN(c2), a3 = _mm512_setzero_si512();
    __m512i b0 = NS_WIDEN(c0 + 8), b1 = NS_WIDEN(c1 + 8), b2 = NS_WIDEN(c2 + 8), b3 = a3;
    __m512i e0 = NS_WIDEN(c0 + 16), e1 = NS_WIDEN(c1 + 16), e2 = NS_WIDEN(c2 + 16), e3 = a3;
    __m512i d0 = NS_WIDEN(c0 + 24), d1 = NS_WIDEN(c1 + 24), d2 = NS_WIDEN(c2 + 24), d3 = a3;
#undef NS_WIDEN
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int r = 0; r < kPhiloxRounds; ++r) {
        const __m512i k0v = _mm512_set1_epi64(k0), k1v = _mm512_set1_epi64(k1);
        NS_PHILOX_ROUND_AVX512(a0, a1, a2, a3, k0v, k1v);
        NS_PHILOX_ROUND_AVX512(b0, b1, b2, b3, k0v, k1v);
        NS_PHILOX_ROUND_AVX512(e0, e1, e2, e3, k0v, k1v);
        NS_PHILOX_ROUND_AVX512(d0, d1, d2, d3, k0v, k1v);
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
#define NS_NARROW(p, v) _mm256_store_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi64_epi32(v))
    NS_NARROW(out->v[0], a0), NS_NARROW(out->v[1], a1), NS_NARROW(out->v[2], a2);
    NS_NARROW(out->v[3], a3), NS_NARROW(out->v[0] + 8, b0), NS_NARROW(out->v[1] + 8, b1);
    NS_NARROW(out->v[2] + 8, b2), NS_NARROW(out->v[3] + 8, b3), NS_NARROW(out->v[0] + 16, e0);
    NS_NARROW(out->v[1] + 16, e1), NS_NARROW(out->v[2] + 16, e2), NS_NARROW(out->v[3] + 16, e3);
    NS_NARROW(out->v[0] + 24, d0), NS_NARROW(out->v[1] + 24, d1), NS_NARROW(out->v[2] + 24, d2);
    NS_NARROW(out->v[3] + 24, d3);
#undef NS_NARROW
}
#undef NS_PHILOX_ROUND_AVX512

// small_batch on 16 lanes at a time. The threshold of row `count` is picked with a permute
// and compared on its high 32 bits: u >= t exactly when u_hi > t_hi, unless u_hi == t_hi, which
// has probability < 2^-29 per lane; such lanes are redone with the 64-bit comparison. So the
// inversion is 8 permute-compare-count steps on 16 lanes, with no branches or gathers.
__attribute__((target("avx512f"))) inline uint32_t small_batch_avx512(const PhiloxLanes& blk,
                                                                      const int64_t* counts,
                                                                      int n,
                                                                      const BinomialPlan& plan,
                                                                      int64_t* vals) {
    static_assert(kSmallN == 8, "row indices fit one permute");
    const __m512i one = _mm512_set1_epi32(1), top = _mm512_set1_epi32(kSmallN - 1);
    const __mmask16 flip = plan.flip ? 0xFFFF : 0x0000;
    uint32_t big = 0, tie = 0;
    for (int h = 0; h < kBatch; h += 16) {
        const __m512i u_hi = _mm512_load_si512(blk.v[0] + h);
        // Counts as int32 (saturated, so anything large stays "big").
        const __m512i c = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm512_cvtsepi64_epi32(_mm512_loadu_si512(counts + h))),
            _mm512_cvtsepi64_epi32(_mm512_loadu_si512(counts + h + 8)), 1);
        big |= static_cast<uint32_t>(_mm512_cmpgt_epi32_mask(c, top)) << h;
        const __m512i row = _mm512_min_epi32(c, top);
        __m512i k = _mm512_setzero_si512();
        __mmask16 eq = 0;
        for (int j = 0; j < kSmallN; ++j) {
            const __m512i t_hi = _mm512_permutexvar_epi32(row, _mm512_loadu_si512(plan.small_hi[j]));
            k = _mm512_mask_add_epi32(k, _mm512_cmpgt_epu32_mask(u_hi, t_hi), k, one);
            eq |= _mm512_cmpeq_epi32_mask(u_hi, t_hi);
        }
        tie |= static_cast<uint32_t>(eq) << h;
        k = _mm512_min_epi32(k, c);
        k = _mm512_mask_sub_epi32(k, flip, c, k);  // flip ? c - k : k
        _mm512_storeu_si512(vals + h, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(k)));
        _mm512_storeu_si512(vals + h + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(k, 1)));
    }
    const uint32_t live = n == 32 ? ~uint32_t(0) : (uint32_t(1) << n) - 1;
    big &= live;
    tie &= live & ~big;
    // Counts kSmallN..kTableMaxN: count the row's thresholds <= u with four fixed masked
    // compares of 8 (no data-dependent trip count, so no mispredicted loop exits).
    uint32_t rest = big;
    big = 0;
    while (rest != 0) {
        const int i = __builtin_ctz(rest);
        rest &= rest - 1;
        const int64_t c = counts[i];
        if (c > kTableMaxN) {
            big |= uint32_t(1) << i;
            continue;
        }
        const uint64_t* t = plan.thr + table_offset(static_cast<int>(c));
        const __m512i u = _mm512_set1_epi64(static_cast<long long>(
            (static_cast<uint64_t>(blk.v[0][i]) << 32) | blk.v[1][i]));
        const uint32_t below = static_cast<uint32_t>((uint64_t(1) << c) - 1);  // j < c
        int k = 0;
        for (int q = 0; q < 4; ++q) {
            const __mmask8 m = static_cast<__mmask8>(below >> (8 * q));
            k += __builtin_popcount(
                _mm512_mask_cmpge_epu64_mask(m, u, _mm512_maskz_loadu_epi64(m, t + 8 * q)));
        }
        vals[i] = plan.flip ? c - k : k;
    }
    while (tie != 0) {  // u_hi equals a threshold's high half: decide on all 64 bits
        const int i = __builtin_ctz(tie);
        tie &= tie - 1;
        const int64_t ci = counts[i];
        const uint64_t u = (static_cast<uint64_t>(blk.v[0][i]) << 32) | blk.v[1][i];
        const int64_t ki = binomial_small(ci, plan, u);
        vals[i] = plan.flip ? ci - ki : ki;
    }
    return big;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

using PhiloxBatchFn = void (*)(uint64_t, const uint32_t*, const uint32_t*, const uint32_t*,
                               PhiloxLanes*);
using SmallBatchFn = uint32_t (*)(const PhiloxLanes&, const int64_t*, int, const BinomialPlan&,
                                  int64_t*);

struct BatchImpl {
    PhiloxBatchFn philox;
    SmallBatchFn small;
    const char* isa;  // "avx512", "avx2" or "scalar"
};

// The fastest implementation this CPU runs (all give the same bits); see best_isa().
inline const BatchImpl& batch_impl() {
#ifdef NOISESCALE_X86_SIMD
    static const BatchImpl impl = [] {
        switch (best_isa()) {
            case Isa::avx512:
                return BatchImpl{&philox_batch_avx512, &small_batch_avx512, "avx512"};
            case Isa::avx2:
                return BatchImpl{&philox_batch_avx2, &small_batch_scalar, "avx2"};
            default:
                return BatchImpl{&philox_batch_scalar, &small_batch_scalar, "scalar"};
        }
    }();
#else
    static const BatchImpl impl{&philox_batch_scalar, &small_batch_scalar, "scalar"};
#endif
    return impl;
}

}  // namespace noisescale
