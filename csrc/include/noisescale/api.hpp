// The C++ API of noisescale: what a program can use without Python.
//
//   #include <noisescale/api.hpp>
//   noisescale::CsrView<float, int32_t> X{n_rows, n_cols, indptr, indices, data};
//   auto low = noisescale::thin(X, 0.1, /*seed=*/42);          // CsrMatrix<float, int32_t>
//   auto series = noisescale::thin_series(X, {0.5, 0.2, 0.1}, 42);
//   auto even = noisescale::downsample(X, /*target=*/1000, 42);
//   auto gene = noisescale::thin_per_gene(X, 0.1, 42);        // floor(T_j * 0.1) per gene
//
// Results are bit-identical to the Python functions noisescale.thin / thin_series /
// downsample_to (thin(..., method="per_gene") for thin_per_gene) with the same seed (same Philox counters, same samplers), for any thread
// count. Counts: int32, int64, float32 or float64 holding whole numbers; indices int32 or
// int64. Errors (malformed arrays, negative or fractional counts, bad fractions or targets) are
// thrown as std::invalid_argument with a message naming the problem; allocation failure as
// std::bad_alloc. The KSG neighbour kernels are in noisescale/kdtree.hpp (knn::ChebyshevTree).
//
// nested_plans() and make_targets() are the only checks of fractions and targets: the Python
// module passes its arguments to them unchanged, so both APIs give the same messages.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "noisescale/binomial.hpp"
#include "noisescale/cpu.hpp"
#include "noisescale/cpu_per_gene.hpp"
#include "noisescale/kdtree.hpp"
#include "noisescale/kernels.hpp"
#include "noisescale/matrix.hpp"

namespace noisescale {

// A read-only CSR matrix given as raw arrays (indptr: n_rows + 1 entries).
template <class V, class I>
struct CsrView {
    int64_t n_rows = 0, n_cols = 0;
    const I* indptr = nullptr;
    const I* indices = nullptr;
    const V* data = nullptr;
    int64_t row_offset = 0;  // global index of row 0, for chunked callers
    // Optional, n_rows values: global index of each row; overrides row_offset. Strictly
    // increasing, in [0, 2^48); for thinning a selection of a larger matrix's rows with the
    // bits of the whole matrix (thin, thin_series, downsample; not thin_per_gene).
    const int64_t* row_ids = nullptr;
};

// A CSR matrix that owns its arrays.
template <class V, class I>
struct CsrMatrix {
    int64_t n_rows = 0, n_cols = 0;
    std::vector<I> indptr, indices;
    std::vector<V> data;
};

namespace detail {

// A number as Python's repr() writes it (the shortest text that reads back as x; "nan", "inf"),
// so that messages quote values the way the caller wrote them.
inline std::string number_text(double x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    char buf[32];
    for (int digits = 1; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (std::strtod(buf, nullptr) == x) break;
    }
    std::string s = buf;
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
}

// A shape as Python writes a tuple: (), (3,), (2, 1).
inline std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace detail

// Per-level binomial plans of nested fractions q0 > q1 > ...: level 0 keeps each UMI with
// probability q0, level l keeps each UMI of level l-1 with q_l / q_{l-1}. Checks, in this order,
// that every fraction is in [0, 1] (NaN is not), that there are 1 to kMaxLevels of them and
// that they strictly decrease.
inline std::vector<BinomialPlan> nested_plans(const std::vector<double>& fractions) {
    const int64_t n = static_cast<int64_t>(fractions.size());
    for (int64_t l = 0; l < n; ++l) {
        const double q = fractions[static_cast<size_t>(l)];
        if (!(q >= 0.0 && q <= 1.0))
            throw std::invalid_argument(
                "fraction must be in [0, 1], got " + detail::number_text(q) +
                (n > 1 ? " (fractions[" + std::to_string(l) + "])" : std::string()));
    }
    if (n == 0) throw std::invalid_argument("fractions must not be empty");
    if (n > kMaxLevels)
        throw std::invalid_argument("at most " + std::to_string(kMaxLevels) +
                                    " fractions are supported, got " + std::to_string(n));
    std::vector<BinomialPlan> plans(static_cast<size_t>(n));
    for (int64_t l = 0; l < n; ++l) {
        const double q = fractions[static_cast<size_t>(l)];
        if (l == 0) {
            make_binomial_plan(q, &plans[0]);
            continue;
        }
        const double prev = fractions[static_cast<size_t>(l - 1)];
        if (!(q < prev))
            throw std::invalid_argument("fractions must be strictly decreasing, got " +
                                        detail::number_text(prev) + " then " +
                                        detail::number_text(q));
        make_binomial_plan(q / prev, &plans[static_cast<size_t>(l)]);
    }
    return plans;
}

// Downsampling targets from `values`, an array of shape `shape`: a scalar (shape ()) is the
// target of every row, a vector of n_rows values (shape (n_rows,)) one target per row; any
// other shape is an error (so a 1-element vector only fits a 1-row matrix). Every target must
// be >= 0. The returned Targets points into `values` for per-row targets.
inline Targets make_targets(const int64_t* values, const std::vector<int64_t>& shape,
                            int64_t n_rows) {
    Targets t;
    if (shape.empty()) {
        t.all = *values;
        if (t.all < 0)
            throw std::invalid_argument("target_umis must be >= 0, got " + std::to_string(t.all));
        return t;
    }
    if (shape.size() != 1 || shape[0] != n_rows)
        throw std::invalid_argument("target_umis must be a scalar or one value per cell (" +
                                    std::to_string(n_rows) + "), got shape " +
                                    detail::shape_text(shape));
    for (int64_t r = 0; r < n_rows; ++r)
        if (values[r] < 0)
            throw std::invalid_argument("target_umis must be >= 0 (row " + std::to_string(r) +
                                        " has " + std::to_string(values[r]) + ")");
    t.per_row = values;
    return t;
}

namespace detail {

template <class V, class I>
CompressedIn<V, I> checked(const CsrView<V, I>& X) {
    if (X.n_rows < 0 || X.n_cols < 0) throw std::invalid_argument("negative matrix shape");
    if (X.indptr == nullptr) throw std::invalid_argument("indptr is a null pointer");
    const int64_t stored = X.n_rows == 0 ? 0 : static_cast<int64_t>(X.indptr[X.n_rows]);
    if (stored > 0 && (X.indices == nullptr || X.data == nullptr))
        throw std::invalid_argument("indices or data is a null pointer");
    CompressedIn<V, I> in;
    in.n_major = X.n_rows;
    in.n_minor = X.n_cols;
    in.indptr = X.indptr;
    in.indices = X.indices;
    in.data = X.data;
    in.row_offset = X.row_offset;
    in.row_ids = X.row_ids;
    check_structure(in, stored, stored);
    return in;
}

template <class V, class I>
CsrMatrix<V, I> owned(Compressed<V, I>& c, int64_t n_rows, int64_t n_cols) {
    CsrMatrix<V, I> out;
    out.n_rows = n_rows;
    out.n_cols = n_cols;
    out.indptr.assign(c.indptr.get(), c.indptr.get() + n_rows + 1);
    out.indices.assign(c.indices.get(), c.indices.get() + c.nnz);
    out.data.assign(c.data.get(), c.data.get() + c.nnz);
    return out;
}

}  // namespace detail

// Nested binomial thinning: one matrix per fraction, each a sub-sample of the previous one.
// Entries thinned to zero are dropped unless keep_zeros. threads = 0: OpenMP's default.
template <class V, class I>
std::vector<CsrMatrix<V, I>> thin_series(const CsrView<V, I>& X,
                                         const std::vector<double>& fractions, uint64_t seed,
                                         bool keep_zeros = false, int threads = 0) {
    const auto plans = nested_plans(fractions);
    auto levels = cpu::thin_compressed(detail::checked(X), plans, seed, keep_zeros, threads);
    std::vector<CsrMatrix<V, I>> out;
    out.reserve(levels.size());
    for (auto& level : levels) out.push_back(detail::owned(level, X.n_rows, X.n_cols));
    return out;
}

// Binomial thinning: every UMI kept independently with probability `fraction`.
template <class V, class I>
CsrMatrix<V, I> thin(const CsrView<V, I>& X, double fraction, uint64_t seed,
                     bool keep_zeros = false, int threads = 0) {
    return std::move(thin_series(X, {fraction}, seed, keep_zeros, threads).front());
}

// Per-cell downsampling: each row keeps a uniformly random subset of exactly
// targets[row] of its UMIs (rows with fewer are unchanged). per_row: n_rows targets, or
// nullptr to use `target` for every row.
template <class V, class I>
CsrMatrix<V, I> downsample(const CsrView<V, I>& X, int64_t target, uint64_t seed,
                           const int64_t* per_row = nullptr, bool keep_zeros = false,
                           int threads = 0) {
    const Targets targets = per_row ? make_targets(per_row, {X.n_rows}, X.n_rows)
                                    : make_targets(&target, {}, X.n_rows);
    auto out = cpu::downsample_csr(detail::checked(X), targets, seed, keep_zeros, threads);
    return detail::owned(out, X.n_rows, X.n_cols);
}

// Per-gene thinning (the variant of Gowri, Yin & Klein 2025): gene j keeps exactly
// floor(T_j * fraction) of its T_j UMIs, a uniform sample without replacement across the cells.
// Bit-identical for any thread count; X.row_offset sets the rows' global indices. Matrices
// too large for memory: cpu::block_totals, cpu::block_takes and cpu::thin_per_gene_blocks
// thin aligned row chunks in two passes with the same bits (see cpu_per_gene.hpp).
template <class V, class I>
CsrMatrix<V, I> thin_per_gene(const CsrView<V, I>& X, double fraction, uint64_t seed,
                              bool keep_zeros = false, int threads = 0) {
    nested_plans({fraction});  // checks the fraction
    if (X.row_ids != nullptr)
        throw std::invalid_argument("per-gene thinning does not take row ids (its draw spans "
                                    "all rows of the matrix); use row_offset");
    auto out = cpu::thin_per_gene(detail::checked(X), fraction, seed, keep_zeros, threads);
    return detail::owned(out, X.n_rows, X.n_cols);
}

}  // namespace noisescale
