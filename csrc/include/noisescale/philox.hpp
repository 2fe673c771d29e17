// Philox4x32-10 counter-based random numbers (Salmon et al., SC'11), shared by CPU and GPU.
//
// Every random number in noisescale is a pure function of (key, counter): no state is carried
// between cells, genes or threads. counter_words() is the one definition of the counter layout.
#pragma once
#include <cstdint>

#include "hd.hpp"

namespace noisescale {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;
constexpr int kPhiloxRounds = 10;

struct Philox4 {
    uint32_t v[4];
};

// One Philox4x32-10 block. Matches the Random123 known-answer vectors.
NS_HD Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
    for (int r = 0; r < kPhiloxRounds; ++r) {
        const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c.v[0];
        const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c.v[2];
        const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
        const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
        c = Philox4{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
    return c;
}

// Largest supported global row index + 1 (48 bits) and column index + 1 (32 bits).
constexpr int64_t kMaxRows = int64_t(1) << 48;
constexpr int64_t kMaxCols = int64_t(1) << 32;

// Purposes ("streams") of random numbers (16 bits); level l of a nested thinning series uses
// stream l.
constexpr uint32_t kStreamDownsample = 0x8000u;
// Per-gene thinning: the split at level L of the row tree uses stream kStreamPerGene + L.
constexpr uint32_t kStreamPerGene = 0x8100u;

// The Philox counter of block `block` of the random sequence of matrix entry (row, column) for
// purpose `stream`. The one definition of the counter layout: every kernel, the batched CPU
// drivers (which fill SIMD lanes with words 0..2 of block 0) and the CUDA code (through
// EntryRng) take their counters from here.
//   word 0 = column bits 0..31      word 1 = row bits 0..31
//   word 2 = row bits 32..47 | stream << 16      word 3 (kBlockWord) = block
constexpr int kBlockWord = 3;
NS_HD Philox4 counter_words(int64_t row, int64_t column, uint32_t stream, uint32_t block) {
    const uint64_t r = static_cast<uint64_t>(row);
    return Philox4{{static_cast<uint32_t>(column), static_cast<uint32_t>(r),
                    static_cast<uint32_t>((r >> 32) & 0xFFFFu) | (stream << 16), block}};
}

// A reproducible sequence of random words for one (seed, row, col, stream).
// Block b of the sequence is Philox(counter_words(row, col, stream, b), seed); its four 32-bit
// words v0..v3 are consumed in order. A 64-bit word is two consecutive 32-bit words, high
// first: the first two 64-bit words of a sequence are (v0 << 32 | v1) and (v2 << 32 | v3).
class EntryRng {
public:
    NS_HD EntryRng(uint64_t seed, int64_t row, int64_t col, uint32_t stream)
        : k0_(static_cast<uint32_t>(seed)), k1_(static_cast<uint32_t>(seed >> 32)),
          ctr_(counter_words(row, col, stream, 0)), pos_(4), started_(false) {}

    // Start with block 0 already computed (e.g. by a vectorised batch on the CPU).
    NS_HD EntryRng(uint64_t seed, int64_t row, int64_t col, uint32_t stream, const Philox4& block0)
        : k0_(static_cast<uint32_t>(seed)), k1_(static_cast<uint32_t>(seed >> 32)),
          ctr_(counter_words(row, col, stream, 0)), buf_(block0), pos_(0), started_(true) {}

    NS_HD uint32_t next_u32() {
        if (pos_ == 4) {
            if (started_) ++ctr_.v[kBlockWord];  // the next block
            started_ = true;
            buf_ = philox4x32_10(ctr_, k0_, k1_);
            pos_ = 0;
        }
        return buf_.v[pos_++];
    }

    NS_HD uint64_t next_u64() {
        const uint64_t hi = next_u32();
        return (hi << 32) | next_u32();
    }

    // Uniform double in the open interval (0, 1), 53 random bits.
    NS_HD double uniform() {
        return (static_cast<double>(next_u64() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    }

    // Uniform integer in [0, n) for n >= 1, exactly (Lemire's multiply-and-reject); one 32-bit
    // word per try when n <= 2^32, a 64-bit word otherwise.
    NS_HD uint64_t below(uint64_t n) {
        if (n <= (uint64_t(1) << 32)) {
            uint64_t m = static_cast<uint64_t>(next_u32()) * n;
            if (static_cast<uint32_t>(m) < n) {
                const uint64_t threshold = ((uint64_t(1) << 32) - n) % n;
                while (static_cast<uint32_t>(m) < threshold) m = static_cast<uint64_t>(next_u32()) * n;
            }
            return m >> 32;
        }
        uint64_t lo;
        uint64_t hi = mulhilo64(next_u64(), n, &lo);
        if (lo < n) {
            const uint64_t threshold = (0 - n) % n;
            while (lo < threshold) hi = mulhilo64(next_u64(), n, &lo);
        }
        return hi;
    }

private:
    uint32_t k0_, k1_;
    Philox4 ctr_;
    Philox4 buf_{{0, 0, 0, 0}};
    int pos_;
    bool started_;
};

}  // namespace noisescale
