// Checks that every SIMD path of the CPU batch kernels gives the scalar path's bits, including
// lanes constructed to hit the rare cases (a uniform whose high half equals a threshold's high
// half, saturated counts, p > 1/2). Built and run by tests/test_cpp.py; exits non-zero on a
// mismatch.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "noisescale/binomial.hpp"
#include "noisescale/philox_batch.hpp"

using namespace noisescale;

namespace {

uint64_t splitmix(uint64_t& s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int failures = 0;

void expect(bool ok, const char* what, int trial, int lane) {
    if (!ok && failures++ < 10) std::printf("MISMATCH %s (trial %d, lane %d)\n", what, trial, lane);
}

}  // namespace

int main() {
    uint64_t s = 12345;
    const double ps[] = {0.0001, 0.1, 0.37, 0.5, 0.63, 0.9, 0.9999};
    int checked = 0;
    for (double p : ps) {
        BinomialPlan plan;
        make_binomial_plan(p, &plan);
        for (int trial = 0; trial < 2000; ++trial) {
            PhiloxLanes blk;
            int64_t counts[kBatch];
            const int n = 1 + static_cast<int>(splitmix(s) % kBatch);
            for (int i = 0; i < kBatch; ++i) {
                const uint64_t r = splitmix(s);
                counts[i] = static_cast<int64_t>(r % 40);  // 0..39: small, table, big lanes
                if (r % 97 == 0) counts[i] = int64_t(1) << 40;
                uint64_t u = splitmix(s);
                if (r % 5 == 0 && counts[i] < kSmallN) {
                    // Tie: put u's high half on a threshold's high half, low half random.
                    const int j = static_cast<int>(splitmix(s) % kSmallN);
                    u = (plan.small[counts[i]][j] & 0xFFFFFFFF00000000ull) | (u & 0xFFFFFFFFull);
                }
                for (int w = 0; w < 4; ++w) blk.v[w][i] = static_cast<uint32_t>(splitmix(s));
                blk.v[0][i] = static_cast<uint32_t>(u >> 32);
                blk.v[1][i] = static_cast<uint32_t>(u);
            }
            // Reference: the scalar small path, then binomial_table for counts up to
            // kTableMaxN (a SIMD path may handle those itself); larger counts are the caller's.
            int64_t ref[kBatch] = {0}, got[kBatch] = {0};
            small_batch_scalar(blk, counts, n, plan, ref);
            for (int i = 0; i < n; ++i)
                if (counts[i] >= kSmallN && counts[i] <= kTableMaxN) {
                    const uint64_t u = (static_cast<uint64_t>(blk.v[0][i]) << 32) | blk.v[1][i];
                    const int64_t k = binomial_table(counts[i], plan, u);
                    ref[i] = plan.flip ? counts[i] - k : k;
                }
            const BatchImpl& impl = batch_impl();
            const uint32_t big_got = impl.small(blk, counts, n, plan, got);
            for (int i = 0; i < n; ++i) {
                const bool left = (big_got >> i) & 1;
                expect(left == (counts[i] >= kSmallN) || (!left && counts[i] <= kTableMaxN),
                       "lanes left to the caller", trial, i);
                expect(!left || counts[i] >= kSmallN, "small lane left to the caller", trial, i);
                if (!left) expect(ref[i] == got[i], impl.isa, trial, i), ++checked;
            }
            // Philox batches against the scalar function.
            uint32_t c0[kBatch], c1[kBatch], c2[kBatch];
            for (int i = 0; i < kBatch; ++i) {
                c0[i] = static_cast<uint32_t>(splitmix(s));
                c1[i] = static_cast<uint32_t>(splitmix(s));
                c2[i] = static_cast<uint32_t>(splitmix(s));
            }
            const uint64_t seed = splitmix(s);
            PhiloxLanes a, b;
            philox_batch_scalar(seed, c0, c1, c2, &a);
            impl.philox(seed, c0, c1, c2, &b);
            expect(std::memcmp(&a, &b, sizeof a) == 0, "philox batch", trial, -1);
        }
    }
    std::printf("%s: %d lanes checked, %d mismatches\n", batch_impl().isa, checked, failures);
    return failures == 0 ? 0 : 1;
}
