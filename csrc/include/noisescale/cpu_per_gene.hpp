// CPU (OpenMP) drivers of per-gene thinning (per_gene.hpp) over CSR matrices. Host only.
//
// A whole matrix is thinned in one call (thin_per_gene). A matrix too large for memory is
// thinned in two passes over row chunks aligned to blocks of 2^B rows: block_totals() of every
// chunk, block_takes() once for the whole matrix, then thin_per_gene_blocks() of every chunk
// with its blocks' takes; the result equals the one-call result bit for bit.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_input.hpp"
#include "matrix.hpp"
#include "per_gene.hpp"
#include "threads.hpp"

namespace noisescale {
namespace cpu {

// Largest block size exponent: one block then spans every supported row index.
constexpr int kWholeMatrixBlockBits = 48;

inline void check_block_bits(int block_bits) {
    if (block_bits < 0 || block_bits > kWholeMatrixBlockBits)
        throw std::invalid_argument("block_bits must be in [0, 48], got " +
                                    std::to_string(block_bits));
}

// The entries of a CSR matrix grouped by column, rows increasing within a column, with their
// counts checked and their storage positions.
struct ByColumn {
    int64_t n_cols = 0;
    std::vector<int64_t> start;  // column j: entries start[j] .. start[j + 1] - 1
    std::vector<int64_t> key;    // global row
    std::vector<int64_t> count;
    std::vector<int64_t> pos;    // storage position in the input
};

template <class V, class I>
ByColumn group_by_column(const CompressedIn<V, I>& in) {
    if (!in.rows_are_major) throw std::invalid_argument("per-gene thinning takes CSR input");
    check_global_shape(in.row_offset, in.n_major, in.n_minor);
    const int64_t nnz = in.nnz();
    ByColumn g;
    g.n_cols = in.n_minor;
    g.start.assign(static_cast<size_t>(in.n_minor) + 1, 0);
    FirstProblem problem;
    for (int64_t e = 0; e < nnz; ++e) {
        const int64_t c = static_cast<int64_t>(in.indices[e]);
        if (c < 0 || c >= in.n_minor) {
            int64_t m = static_cast<int64_t>(
                std::upper_bound(in.indptr, in.indptr + in.n_major + 1, static_cast<I>(e)) -
                in.indptr) - 1;
            problem.record(Problem::index_range, e, in.row_offset + m, -1, static_cast<double>(c));
            problem.raise_if_any(in.n_minor);
        }
        ++g.start[static_cast<size_t>(c) + 1];
    }
    for (int64_t j = 0; j < in.n_minor; ++j) g.start[j + 1] += g.start[j];
    g.key.resize(static_cast<size_t>(nnz));
    g.count.resize(static_cast<size_t>(nnz));
    g.pos.resize(static_cast<size_t>(nnz));
    std::vector<int64_t> fill(g.start.begin(), g.start.end() - 1);
    for (int64_t m = 0; m < in.n_major; ++m) {
        const int64_t row = in.row_offset + m;
        for (int64_t e = in.indptr[m]; e < static_cast<int64_t>(in.indptr[m + 1]); ++e) {
            const int64_t c = static_cast<int64_t>(in.indices[e]);
            int64_t v;
            const Problem p = read_count(in.data[e], &v);
            if (p != Problem::none) problem.record(p, e, row, c, static_cast<double>(in.data[e]));
            const int64_t k = fill[static_cast<size_t>(c)]++;
            if (k > g.start[c] && g.key[static_cast<size_t>(k - 1)] == row)
                problem.record(Problem::duplicate, e, row, c, 0.0);
            g.key[static_cast<size_t>(k)] = row;
            g.count[static_cast<size_t>(k)] = v;
            g.pos[static_cast<size_t>(k)] = e;
        }
        if (problem.what != Problem::none) break;  // the first row with a problem is enough
    }
    problem.raise_if_any(in.n_minor);
    return g;
}

inline int64_t block_count(int64_t row_offset, int64_t n_rows, int block_bits) {
    if (n_rows == 0) return 0;
    return ((row_offset + n_rows - 1) >> block_bits) - (row_offset >> block_bits) + 1;
}

// Column totals per aligned block of 2^block_bits rows: (n_blocks x n_cols), row-major, block 0
// holding row_offset.
inline std::vector<int64_t> column_block_totals(const ByColumn& g, int64_t row_offset,
                                                int64_t n_blocks, int block_bits) {
    std::vector<int64_t> totals(static_cast<size_t>(n_blocks * g.n_cols), 0);
    const int64_t first = row_offset >> block_bits;
    for (int64_t j = 0; j < g.n_cols; ++j)
        for (int64_t k = g.start[j]; k < g.start[j + 1]; ++k) {
            const int64_t b = (g.key[k] >> block_bits) - first;
            int64_t& t = totals[static_cast<size_t>(b * g.n_cols + j)];
            if (g.count[k] > kMaxCount - t)
                throw std::invalid_argument("gene " + std::to_string(j) + "'s total count " +
                                            "exceeds 2^53, too many UMIs to thin exactly");
            t += g.count[k];
        }
    return totals;
}

// Split each column's take among its entries, block by block (takes: n_blocks x n_cols, block
// 0 holding row_offset); returns each entry's kept count by storage position.
inline std::vector<int64_t> split_columns(const ByColumn& g, int64_t row_offset,
                                          const std::vector<int64_t>& takes, int block_bits,
                                          uint64_t seed, int threads) {
    std::vector<int64_t> kept(g.key.size(), 0);
    const int64_t first = row_offset >> block_bits;
    const int64_t n_blocks = g.n_cols ? static_cast<int64_t>(takes.size()) / g.n_cols : 0;
    FirstProblem problem;
#pragma omp parallel num_threads(resolve_threads(threads))
    {
        std::vector<int64_t> csum;
#pragma omp for schedule(dynamic, 16)
        for (int64_t j = 0; j < g.n_cols; ++j) {
            const int64_t s0 = g.start[j], s1 = g.start[j + 1];
            csum.assign(static_cast<size_t>(s1 - s0) + 1, 0);
            for (int64_t k = s0; k < s1; ++k) csum[k - s0 + 1] = csum[k - s0] + g.count[k];
            const int64_t* key = g.key.data() + s0;
            int64_t taken = 0, a = 0;
            while (a < s1 - s0) {  // one run of entries per block
                const int64_t b = (key[a] >> block_bits) - first;
                int64_t e = a + 1;
                while (e < s1 - s0 && (key[e] >> block_bits) - first == b) ++e;
                const int64_t take = takes[static_cast<size_t>(b * g.n_cols + j)];
                if (take < 0 || take > csum[e] - csum[a]) {
                    problem.record(Problem::row_total, s0 + a, -1, j, 0.0);
                    break;
                }
                taken += take;
                split_take(key, csum.data(), a, e, take, seed, j,
                           [&](int64_t i, int64_t x) { kept[g.pos[s0 + i]] = x; });
                a = e;
            }
            int64_t asked = 0;
            for (int64_t b = 0; b < n_blocks; ++b) asked += takes[static_cast<size_t>(b * g.n_cols + j)];
            if (asked != taken) problem.record(Problem::row_total, s0, -1, j, 0.0);
        }
    }
    if (problem.what != Problem::none)
        throw std::invalid_argument("the block takes of gene " + std::to_string(problem.col) +
                                    " do not match its counts (use the takes block_takes() "
                                    "computed from this matrix's block totals)");
    return kept;
}

// A CSR matrix with the input's structure and the kept counts; zeros dropped unless
// keep_zeros.
template <class V, class I>
Compressed<V, I> assemble(const CompressedIn<V, I>& in, const std::vector<int64_t>& kept,
                          bool keep_zeros) {
    Compressed<V, I> out;
    out.indptr = allocate<I>(in.n_major + 1);
    int64_t n = 0;
    for (size_t e = 0; e < kept.size(); ++e) n += keep_zeros || kept[e] != 0;
    out.indices = allocate<I>(n);
    out.data = allocate<V>(n);
    out.indptr[0] = 0;
    int64_t w = 0;
    for (int64_t m = 0; m < in.n_major; ++m) {
        for (int64_t e = in.indptr[m]; e < static_cast<int64_t>(in.indptr[m + 1]); ++e) {
            if (!keep_zeros && kept[static_cast<size_t>(e)] == 0) continue;
            out.indices[w] = in.indices[e];
            out.data[w] = static_cast<V>(kept[static_cast<size_t>(e)]);
            ++w;
        }
        out.indptr[m + 1] = static_cast<I>(w);
    }
    out.nnz = n;
    return out;
}

// Per-column totals of a CSR chunk by aligned block of 2^block_bits rows (n_blocks x n_cols,
// block 0 holding row_offset). Checks the counts: pass one of a chunked per-gene thinning.
template <class V, class I>
std::vector<int64_t> block_totals(const CompressedIn<V, I>& in, int block_bits) {
    check_block_bits(block_bits);
    const ByColumn g = group_by_column(in);
    return column_block_totals(g, in.row_offset,
                               block_count(in.row_offset, in.n_major, block_bits), block_bits);
}

// The takes of every block (n_blocks x n_cols) from the totals of all blocks of a matrix
// (block b holding rows (first_block + b) << block_bits onwards): gene j keeps
// per_gene_take(sum of its totals, q), split between blocks down the row tree.
inline std::vector<int64_t> block_takes(const int64_t* totals, int64_t n_blocks, int64_t n_cols,
                                        int64_t first_block, int block_bits, double q,
                                        uint64_t seed, int threads) {
    check_block_bits(block_bits);
    if (n_blocks < 0 || n_cols < 0 || first_block < 0)
        throw std::invalid_argument("block totals must have a non-negative shape");
    if ((first_block + n_blocks) > (kMaxRows >> block_bits) + 1)
        throw std::invalid_argument("row indices beyond 2^48 are not supported");
    std::vector<int64_t> takes(static_cast<size_t>(n_blocks * n_cols), 0);
    bool bad = false;
#pragma omp parallel num_threads(resolve_threads(threads))
    {
        std::vector<int64_t> key, csum, block;
#pragma omp for schedule(dynamic, 64)
        for (int64_t j = 0; j < n_cols; ++j) {
            key.clear();
            block.clear();
            csum.assign(1, 0);
            for (int64_t b = 0; b < n_blocks; ++b) {
                const int64_t t = totals[b * n_cols + j];
                if (t < 0 || t > kMaxCount - csum.back()) {
#pragma omp atomic write
                    bad = true;
                    break;
                }
                if (t == 0) continue;
                key.push_back((first_block + b) << block_bits);
                block.push_back(b);
                csum.push_back(csum.back() + t);
            }
            if (key.empty()) continue;
            split_take(key.data(), csum.data(), 0, static_cast<int64_t>(key.size()),
                       per_gene_take(csum.back(), q), seed, j, [&](int64_t i, int64_t x) {
                           takes[static_cast<size_t>(block[i] * n_cols + j)] = x;
                       });
        }
    }
    if (bad)
        throw std::invalid_argument("block totals must be >= 0 and sum to at most 2^53 per gene");
    return takes;
}

// Thin a CSR chunk whose blocks' takes are known (takes: n_blocks x n_cols from block_takes(),
// block 0 holding row_offset, which must be a multiple of 2^block_bits).
template <class V, class I>
Compressed<V, I> thin_per_gene_blocks(const CompressedIn<V, I>& in, const int64_t* takes,
                                      int64_t n_take_blocks, int block_bits, uint64_t seed,
                                      bool keep_zeros, int threads) {
    check_block_bits(block_bits);
    if (in.row_offset & ((int64_t(1) << block_bits) - 1))
        throw std::invalid_argument("row_offset " + std::to_string(in.row_offset) +
                                    " is not a multiple of the block size 2^" +
                                    std::to_string(block_bits));
    const int64_t n_blocks = block_count(in.row_offset, in.n_major, block_bits);
    if (n_take_blocks != n_blocks)
        throw std::invalid_argument("takes has " + std::to_string(n_take_blocks) +
                                    " blocks, the chunk spans " + std::to_string(n_blocks));
    const ByColumn g = group_by_column(in);
    std::vector<int64_t> t(takes, takes + n_blocks * in.n_minor);
    return assemble(in, split_columns(g, in.row_offset, t, block_bits, seed, threads),
                    keep_zeros);
}

// Per-gene thinning of a whole matrix: gene j keeps per_gene_take(T_j, q) of its T_j UMIs.
// row_offset only sets the rows' global indices (the keys of the row tree).
template <class V, class I>
Compressed<V, I> thin_per_gene(const CompressedIn<V, I>& in, double q, uint64_t seed,
                               bool keep_zeros, int threads) {
    const ByColumn g = group_by_column(in);
    const int B = kWholeMatrixBlockBits;
    const int64_t n_blocks = block_count(in.row_offset, in.n_major, B);
    const auto totals = column_block_totals(g, in.row_offset, n_blocks, B);
    const auto takes = block_takes(totals.data(), n_blocks, in.n_minor, in.row_offset >> B, B, q,
                                   seed, threads);
    return assemble(in, split_columns(g, in.row_offset, takes, B, seed, threads), keep_zeros);
}

}  // namespace cpu
}  // namespace noisescale
