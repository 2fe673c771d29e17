// Invariant checks of the C++ kernels through the public API, meant to run under
// AddressSanitizer + UndefinedBehaviorSanitizer (CMake option NOISESCALE_SANITIZE, or the
// pytest test that compiles this file with -fsanitize=address,undefined).
//
// Random CSR matrices of many shapes (empty rows, empty matrices, counts up to 2^31 - 1, int32
// and int64 indices, all count dtypes) are thinned, thinned in series and downsampled, and the
// results are checked entry by entry; the k-d tree is checked against brute force.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "noisescale/api.hpp"
#include "noisescale/cpu.hpp"
#include "noisescale/cpu_per_gene.hpp"
#include "noisescale/kdtree.hpp"
#include "noisescale/philox.hpp"
#include "noisescale/philox_batch.hpp"

namespace {

int failures = 0, checks = 0;

void expect(bool ok, const char* what, int64_t trial) {
    ++checks;
    if (!ok) {
        ++failures;
        std::printf("FAIL trial %lld: %s\n", static_cast<long long>(trial), what);
    }
}

template <class V, class I>
struct Owned {
    int64_t rows, cols;
    std::vector<I> indptr, indices;
    std::vector<V> data;
    noisescale::CsrView<V, I> view() const {
        return {rows, cols, indptr.data(), indices.data(), data.data()};
    }
};

template <class V, class I>
Owned<V, I> random_csr(std::mt19937_64& rng, int64_t trial) {
    std::uniform_int_distribution<int64_t> dim(0, 40);
    Owned<V, I> m{dim(rng), 1 + dim(rng), {}, {}, {}};
    const double max_count = std::is_same<V, float>::value ? 16777216.0 : 2147483647.0;
    m.indptr.push_back(0);
    for (int64_t r = 0; r < m.rows; ++r) {
        for (int64_t c = 0; c < m.cols; ++c) {
            if (rng() % 4 != 0) continue;  // ~25 % dense; some rows end up empty
            double v;
            switch (rng() % 5) {
                case 0: v = max_count - static_cast<double>(rng() % 3); break;  // extremes
                case 1: v = static_cast<double>(rng() % 100000); break;
                default: v = static_cast<double>(1 + rng() % 5); break;
            }
            if (trial % 7 == 0) v = 0;  // explicit zeros
            m.indices.push_back(static_cast<I>(c));
            m.data.push_back(static_cast<V>(v));
        }
        m.indptr.push_back(static_cast<I>(m.indices.size()));
    }
    return m;
}

template <class V, class I>
double row_total(const noisescale::CsrMatrix<V, I>& m, int64_t r) {
    double t = 0;
    for (I p = m.indptr[r]; p < m.indptr[r + 1]; ++p) t += static_cast<double>(m.data[p]);
    return t;
}

// The entry (r, c) of m, or 0.
template <class V, class I, class M>
double at(const M& m, int64_t r, int64_t c) {
    for (I p = m.indptr[r]; p < m.indptr[r + 1]; ++p)
        if (static_cast<int64_t>(m.indices[p]) == c) return static_cast<double>(m.data[p]);
    return 0.0;
}

template <class V, class I>
void check_thinning(std::mt19937_64& rng, int64_t trial) {
    const auto X = random_csr<V, I>(rng, trial);
    const auto v = X.view();
    const uint64_t seed = rng();
    const auto series = noisescale::thin_series(v, {0.9, 0.5, 0.1}, seed);
    for (int64_t r = 0; r < X.rows; ++r)
        for (I p = X.indptr[r]; p < X.indptr[r + 1]; ++p) {
            const int64_t c = X.indices[p];
            double prev = static_cast<double>(X.data[p]);
            for (const auto& level : series) {
                const double now = at<V, I>(level, r, c);
                expect(now >= 0 && now <= prev && now == std::floor(now), "nested thinning", trial);
                prev = now;
            }
        }
    const auto first = noisescale::thin(v, 0.9, seed);
    expect(first.data == series[0].data && first.indices == series[0].indices,
           "thin == first level of thin_series", trial);
    const auto all = noisescale::thin(v, 1.0, seed, /*keep_zeros=*/true);
    expect(all.data == X.data && all.indptr == X.indptr, "fraction 1 keeps everything", trial);
    const auto none = noisescale::thin(v, 0.0, seed);
    expect(none.data.empty(), "fraction 0 keeps nothing", trial);
    const int64_t target = static_cast<int64_t>(rng() % 50);
    const auto down = noisescale::downsample(v, target, seed);
    for (int64_t r = 0; r < X.rows; ++r) {
        double total = 0;
        for (I p = X.indptr[r]; p < X.indptr[r + 1]; ++p) total += static_cast<double>(X.data[p]);
        expect(row_total(down, r) == std::min<double>(total, static_cast<double>(target)),
               "downsampled total = min(total, target)", trial);
    }
    // keep_zeros keeps the input's structure and the same values.
    const auto kept = noisescale::downsample(v, target, seed, nullptr, /*keep_zeros=*/true);
    expect(kept.indptr == X.indptr && kept.indices == X.indices,
           "downsample keep_zeros keeps every entry", trial);
    for (int64_t r = 0; r < X.rows; ++r)
        for (I p = X.indptr[r]; p < X.indptr[r + 1]; ++p)
            expect(static_cast<double>(kept.data[p]) == at<V, I>(down, r, X.indices[p]),
                   "downsample keep_zeros = downsample", trial);
}

void check_tree(std::mt19937_64& rng, int64_t trial) {
    const int64_t n = 2 + static_cast<int64_t>(rng() % 300), dim = 1 + static_cast<int64_t>(rng() % 7);
    std::vector<double> pts(static_cast<size_t>(n * dim));
    for (auto& x : pts) x = static_cast<double>(rng() % 5) + (trial % 2 ? 1e-9 * (rng() % 3) : 0.0);
    const noisescale::knn::ChebyshevTree tree(pts.data(), n, dim, 1 + static_cast<int64_t>(rng() % 40),
                                              1 + static_cast<int64_t>(rng() % 100));
    const int64_t k = 1 + static_cast<int64_t>(rng() % (n - 1));
    std::vector<double> kth(static_cast<size_t>(n));
    std::vector<int64_t> count(static_cast<size_t>(n));
    tree.kth_distance(k, kth.data(), 0);
    tree.count_within(kth.data(), count.data(), 0);
    for (int64_t i = 0; i < n; ++i) {
        std::vector<double> d;
        for (int64_t j = 0; j < n; ++j) {
            if (j == i) continue;
            double m = 0;
            for (int64_t a = 0; a < dim; ++a) m = std::max(m, std::fabs(pts[i * dim + a] - pts[j * dim + a]));
            d.push_back(m);
        }
        std::sort(d.begin(), d.end());
        expect(kth[i] == d[static_cast<size_t>(k - 1)], "k-th distance = brute force", trial);
        const auto strictly = std::lower_bound(d.begin(), d.end(), kth[i]) - d.begin();
        expect(count[i] == strictly, "strict count = brute force", trial);
    }
}

// The Philox counter layout is defined once (counter_words); the SIMD lanes of the CPU drivers
// and the per-entry sequences (EntryRng, the CUDA path) must all take their counters from it.
void check_counters(std::mt19937_64& rng) {
    using namespace noisescale;
    const Philox4 w = counter_words(0x123456789ABLL, 0xDEADBEEFLL, 5, 7);
    expect(w.v[0] == 0xDEADBEEFu && w.v[1] == 0x456789ABu && w.v[2] == (0x0123u | (5u << 16)) &&
               w.v[3] == 7u, "counter_words layout", -1);
    for (int trial = 0; trial < 200; ++trial) {
        const uint64_t seed = rng();
        const auto k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
        const int64_t row = static_cast<int64_t>(rng() % (uint64_t(1) << 48));
        const int64_t col = static_cast<int64_t>(rng() % (uint64_t(1) << 32));
        const uint32_t stream = static_cast<uint32_t>(rng() % 64);
        // EntryRng: block b is Philox(counter_words(row, col, stream, b)), words in order.
        EntryRng e(seed, row, col, stream);
        for (uint32_t b = 0; b < 3; ++b) {
            const Philox4 ref = philox4x32_10(counter_words(row, col, stream, b), k0, k1);
            for (int j = 0; j < 4; ++j) expect(e.next_u32() == ref.v[j], "EntryRng blocks", trial);
        }
        // The SIMD lanes of a thinning group, CSR (one row) and CSC (one column).
        for (bool rows_major : {true, false}) {
            cpu::Group<int64_t> g;
            g.rows_major = rows_major;
            g.row_offset = rows_major ? 0 : row;
            g.major = rows_major ? row : col;
            g.stream = stream;
            g.n = 1 + static_cast<int>(rng() % kBatch);
            for (int i = 0; i < g.n; ++i)
                g.minors[i] = static_cast<int64_t>(rng() % (rows_major ? (uint64_t(1) << 32) : 1000));
            g.set_counters();
            for (int i = 0; i < g.n; ++i) {
                const Philox4 c = counter_words(g.row(i), g.col(i), stream, 0);
                expect(g.c0[i] == c.v[0] && g.c1[i] == c.v[1] && g.c2[i] == c.v[2] && c.v[3] == 0,
                       "group lanes = counter_words", trial);
            }
            PhiloxLanes blk;
            batch_impl().philox(seed, g.c0, g.c1, g.c2, &blk);
            for (int i = 0; i < g.n; ++i) {
                const Philox4 ref = philox4x32_10(counter_words(g.row(i), g.col(i), stream, 0), k0, k1);
                const Philox4 got = blk.lane(i);
                expect(std::equal(got.v, got.v + 4, ref.v), "batched block 0 = Philox(counter)", trial);
            }
        }
        // The downsampling batches.
        std::vector<int64_t> cols(1 + rng() % 70);
        for (auto& c : cols) c = static_cast<int64_t>(rng() % (uint64_t(1) << 32));
        std::vector<Philox4> blocks(cols.size());
        cpu::downsample_blocks(cols.data(), static_cast<int64_t>(cols.size()), row, seed,
                               blocks.data());
        for (size_t i = 0; i < cols.size(); ++i) {
            const Philox4 ref =
                philox4x32_10(counter_words(row, cols[i], kStreamDownsample, 0), k0, k1);
            expect(std::equal(ref.v, ref.v + 4, blocks[i].v), "downsample block 0 = Philox(counter)",
                   trial);
        }
    }
}

// f() throws std::invalid_argument with exactly `message`.
template <class F>
void expect_message(F f, const std::string& message) {
    try {
        f();
        expect(false, ("no error for: " + message).c_str(), -1);
    } catch (const std::invalid_argument& e) {
        expect(e.what() == message, (std::string("message: ") + e.what()).c_str(), -1);
    }
}

// Fractions and targets are checked in one place each (nested_plans, make_targets).
void check_argument_errors() {
    using noisescale::make_targets;
    using noisescale::nested_plans;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    expect_message([&] { nested_plans({nan}); }, "fraction must be in [0, 1], got nan");
    expect_message([] { nested_plans({1.5}); }, "fraction must be in [0, 1], got 1.5");
    expect_message([] { nested_plans({0.5, -0.25}); },
                   "fraction must be in [0, 1], got -0.25 (fractions[1])");
    expect_message([] { nested_plans({}); }, "fractions must not be empty");
    expect_message([] { nested_plans(std::vector<double>(65, 0.5)); },
                   "at most 64 fractions are supported, got 65");
    expect_message([] { nested_plans({0.2, 0.5}); },
                   "fractions must be strictly decreasing, got 0.2 then 0.5");
    expect_message([] { nested_plans({1, 0.5, 0.5}); },
                   "fractions must be strictly decreasing, got 0.5 then 0.5");
    expect(nested_plans({1.0, 0.5, 0.0}).size() == 3, "valid fractions", -1);
    const int64_t neg = -3, per[2] = {4, -2};
    expect_message([&] { make_targets(&neg, {}, 5); }, "target_umis must be >= 0, got -3");
    expect_message([&] { make_targets(per, {2}, 2); }, "target_umis must be >= 0 (row 1 has -2)");
    expect_message([&] { make_targets(per, {1}, 2); },
                   "target_umis must be a scalar or one value per cell (2), got shape (1,)");
    expect_message([&] { make_targets(per, {2, 1}, 2); },
                   "target_umis must be a scalar or one value per cell (2), got shape (2, 1)");
    expect(make_targets(per, {1}, 1)[0] == 4, "a 1-element target fits a 1-row matrix", -1);
    expect(make_targets(per, {}, 3)[2] == 4, "a scalar target fits every row", -1);
}

}  // namespace

// Per-gene thinning: each column keeps exactly floor(T * q) UMIs, no entry grows, and the
// two-pass blocked route (chunks of 2^bits rows) gives the whole-matrix bits.
template <class V, class I>
void check_per_gene(std::mt19937_64& rng, int64_t trial) {
    const auto X = random_csr<V, I>(rng, trial);
    const auto v = X.view();
    const uint64_t seed = rng();
    const double q = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const auto whole = noisescale::thin_per_gene(v, q, seed, /*keep_zeros=*/true);
    expect(whole.indices == X.indices, "per-gene keep_zeros keeps the structure", trial);
    std::vector<double> before(static_cast<size_t>(X.cols), 0), after(before);
    for (size_t p = 0; p < X.data.size(); ++p) {
        before[static_cast<size_t>(X.indices[p])] += static_cast<double>(X.data[p]);
        after[static_cast<size_t>(X.indices[p])] += static_cast<double>(whole.data[p]);
        expect(whole.data[p] >= 0 && whole.data[p] <= X.data[p], "per-gene entry shrinks", trial);
    }
    for (int64_t c = 0; c < X.cols; ++c)
        expect(after[c] == std::floor(before[c] * q), "per-gene column keeps floor(T q)", trial);
    const int bits = static_cast<int>(rng() % 4);
    const int64_t chunk = int64_t(1) << (bits + 1);
    // Row chunk [r0, r0 + chunk) as a CSR input of its own (indptr rebased into ip).
    auto chunk_at = [&](int64_t r0, std::vector<I>& ip) {
        noisescale::CompressedIn<V, I> in;
        in.n_major = std::min(chunk, X.rows - r0);
        in.n_minor = X.cols;
        ip.resize(static_cast<size_t>(in.n_major) + 1);
        for (int64_t k = 0; k <= in.n_major; ++k) ip[k] = X.indptr[r0 + k] - X.indptr[r0];
        in.indptr = ip.data();
        in.indices = X.indices.data() + X.indptr[r0];
        in.data = X.data.data() + X.indptr[r0];
        in.row_offset = r0;
        return in;
    };
    std::vector<int64_t> totals;
    std::vector<I> ip;
    for (int64_t r0 = 0; r0 < X.rows; r0 += chunk) {
        const auto t = noisescale::cpu::block_totals(chunk_at(r0, ip), bits);
        totals.insert(totals.end(), t.begin(), t.end());
    }
    const int64_t n_blocks = X.cols ? static_cast<int64_t>(totals.size()) / X.cols : 0;
    const auto takes = noisescale::cpu::block_takes(totals.data(), n_blocks, X.cols, 0, bits, q,
                                                    seed, 2);
    std::vector<V> blocked;
    for (int64_t r0 = 0; r0 < X.rows; r0 += chunk) {
        const auto in = chunk_at(r0, ip);
        const int64_t b0 = r0 >> bits, nb = noisescale::cpu::block_count(r0, in.n_major, bits);
        const auto out = noisescale::cpu::thin_per_gene_blocks(
            in, takes.data() + b0 * X.cols, nb, bits, seed, true, 1);
        blocked.insert(blocked.end(), out.data.get(), out.data.get() + out.nnz);
    }
    expect(blocked == whole.data, "per-gene blocked == whole matrix", trial);
}

// Row ids: a sorted selection of rows, keyed by their global indices, is thinned (and
// downsampled) exactly as those rows of the whole matrix.
template <class V, class I>
void check_row_ids(std::mt19937_64& rng, int64_t trial) {
    const auto X = random_csr<V, I>(rng, trial);
    const uint64_t seed = rng();
    Owned<V, I> S{0, X.cols, {0}, {}, {}};
    std::vector<int64_t> ids;
    for (int64_t r = 0; r < X.rows; ++r) {
        if (rng() % 3 == 0) continue;
        ids.push_back(r);
        S.indices.insert(S.indices.end(), X.indices.begin() + X.indptr[r],
                         X.indices.begin() + X.indptr[r + 1]);
        S.data.insert(S.data.end(), X.data.begin() + X.indptr[r], X.data.begin() + X.indptr[r + 1]);
        S.indptr.push_back(static_cast<I>(S.indices.size()));
    }
    S.rows = static_cast<int64_t>(ids.size());
    auto sv = S.view();
    sv.row_ids = ids.data();
    const auto whole = noisescale::thin_series(X.view(), {0.7, 0.2}, seed);
    const auto part = noisescale::thin_series(sv, {0.7, 0.2}, seed, false, 2);
    const int64_t target = static_cast<int64_t>(rng() % 50);
    const auto down_whole = noisescale::downsample(X.view(), target, seed);
    const auto down_part = noisescale::downsample(sv, target, seed);
    // Row k of `got` equals row ids[k] of `want`.
    auto same_rows = [&](const auto& got, const auto& want) {
        bool ok = true;
        for (int64_t k = 0; k < S.rows; ++k) {
            const int64_t r = ids[static_cast<size_t>(k)];
            ok = ok && got.indptr[k + 1] - got.indptr[k] == want.indptr[r + 1] - want.indptr[r] &&
                 std::equal(got.indices.begin() + got.indptr[k], got.indices.begin() + got.indptr[k + 1],
                            want.indices.begin() + want.indptr[r]) &&
                 std::equal(got.data.begin() + got.indptr[k], got.data.begin() + got.indptr[k + 1],
                            want.data.begin() + want.indptr[r]);
        }
        return ok;
    };
    for (size_t l = 0; l < whole.size(); ++l)
        expect(same_rows(part[l], whole[l]), "row-id thinning == rows of the whole", trial);
    expect(same_rows(down_part, down_whole), "row-id downsampling == rows of the whole", trial);
}

void check_row_id_errors() {
    const std::vector<int32_t> indptr{0, 1, 1, 2}, indices{0, 1};
    const std::vector<float> data{1.0f, 2.0f};
    noisescale::CsrView<float, int32_t> v{3, 2, indptr.data(), indices.data(), data.data()};
    const int64_t unsorted[3] = {0, 5, 5}, negative[3] = {-2, 0, 1},
                  beyond[3] = {0, 1, int64_t(1) << 48};
    v.row_ids = unsorted;
    expect_message([&] { noisescale::thin(v, 0.5, 1); },
                   "row ids must be strictly increasing: row ids[2] = 5 follows 5");
    v.row_ids = negative;
    expect_message([&] { noisescale::thin(v, 0.5, 1); },
                   "row ids[0] = -2 is out of range [0, 2^48)");
    v.row_ids = beyond;
    expect_message([&] { noisescale::downsample(v, 1, 1); },
                   "row ids[2] = 281474976710656 is out of range [0, 2^48)");
    expect_message([&] { noisescale::thin_per_gene(v, 0.5, 1); },
                   "per-gene thinning does not take row ids (its draw spans all rows of the "
                   "matrix); use row_offset");
}

int main() {
    std::mt19937_64 rng(20261124);
    check_counters(rng);
    check_argument_errors();
    check_row_id_errors();
    for (int64_t trial = 0; trial < 60; ++trial) {
        check_thinning<float, int32_t>(rng, trial);
        check_thinning<double, int64_t>(rng, trial);
        check_thinning<int32_t, int32_t>(rng, trial);
        check_thinning<int64_t, int64_t>(rng, trial);
        check_tree(rng, trial);
        check_per_gene<float, int32_t>(rng, trial);
        check_row_ids<float, int32_t>(rng, trial);
        check_row_ids<int64_t, int64_t>(rng, trial);
        check_per_gene<int64_t, int64_t>(rng, trial);
    }
    // Errors are exceptions with a message, not crashes.
    const std::vector<int32_t> indptr{0, 2}, indices{1, 0};
    const std::vector<float> data{1.0f, -2.0f};
    try {
        noisescale::thin(noisescale::CsrView<float, int32_t>{1, 2, indptr.data(), indices.data(),
                                                             data.data()}, 0.5, 1);
        expect(false, "negative count rejected", -1);
    } catch (const std::invalid_argument&) {
        expect(true, "", -1);
    }
    std::printf("%d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
