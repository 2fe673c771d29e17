// CPU (OpenMP) drivers of the sampling kernels over CSR/CSC/dense matrices.
//
// Host only. Inputs are validated while they are read (counts must be non-negative integers
// held exactly by the dtype; indices in range; no duplicate entries) and the first problem is
// thrown as std::invalid_argument after the parallel region. Inputs are never written to.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "binomial.hpp"
#include "cpu_group.hpp"
#include "cpu_input.hpp"
#include "cpu_output.hpp"
#include "kernels.hpp"
#include "matrix.hpp"
#include "philox.hpp"
#include "philox_batch.hpp"
#include "threads.hpp"

namespace noisescale {
namespace cpu {

// Thin a compressed matrix through `levels` nested levels. Explicit zeros in the output are
// dropped unless keep_zeros. Returns one compressed matrix per level, same dtypes, same
// minor order as the input.
template <class V, class I>
std::vector<Compressed<V, I>> thin_compressed(const CompressedIn<V, I>& in,
                                              const std::vector<BinomialPlan>& plans,
                                              uint64_t seed, bool keep_zeros, int threads) {
    check_levels(static_cast<int64_t>(plans.size()));
    const int levels = static_cast<int>(plans.size());
    check_global_rows(in);
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
                grp.major = in.rows_are_major ? in.global_row(m) : m;
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
                                               in.rows_are_major ? in.global_row(m) : -1,
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
                                       in.rows_are_major ? in.global_row(m) : -1,
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
    check_levels(static_cast<int64_t>(plans.size()));
    const int levels = static_cast<int>(plans.size());
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
    const Philox4 w = counter_words(row, 0, kStreamDownsample, 0);  // words 1, 2: the row's
    for (int i = 0; i < kBatch; ++i) {
        c1[i] = w.v[1];
        c2[i] = w.v[2];
    }
    PhiloxLanes blk;
    for (int64_t g = 0; g < len; g += kBatch) {
        const int n = static_cast<int>(std::min<int64_t>(kBatch, len - g));
        for (int i = 0; i < n; ++i)
            c0[i] = counter_words(row, static_cast<int64_t>(cols[g + i]), kStreamDownsample, 0).v[0];
        impl.philox(seed, c0, c1, c2, &blk);
        for (int i = 0; i < n; ++i) out[g + i] = blk.lane(i);
    }
}

// Downsample a CSR matrix; zeros produced are dropped unless keep_zeros.
template <class V, class I>
Compressed<V, I> downsample_csr(const CompressedIn<V, I>& in, Targets targets, uint64_t seed,
                                bool keep_zeros, int threads) {
    check_global_rows(in);
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
        // keep_zeros keeps every entry: write in place (as BlockOutput was told), else in scratch.
        I* oidx = chunks.in_place(0) ? chunks.full_indices(0, b) : sidx.reserve(block_nnz);
        V* odata = chunks.in_place(0) ? chunks.full_data(0, b) : sdata.reserve(block_nnz);
        int64_t pos = 0;
        bool bad = false;
        for (int64_t m = m0; m < m1; ++m) {
            const int64_t e0 = static_cast<int64_t>(in.indptr[m]);
            const int64_t len = static_cast<int64_t>(in.indptr[m + 1]) - e0;
            const int64_t row = in.global_row(m);
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
                total += counts[static_cast<size_t>(k)];  // each <= 2^53: checked before overflow
                if (total > kMaxCount) {
                    problem.record(Problem::row_total, e, row, -1, 0.0);
                    bad = true;
                    break;
                }
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
            // Visit entries in column order: storage order, or a sorted permutation.
            if (!sorted) {
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
            }
            const int64_t* ord = order.data();
            const auto at = [&](int64_t k) { return sorted ? k : ord[k]; };
            downsample_row(
                len, total, targets[m], [&](int64_t k) { return cnt[at(k)]; },
                [&](int64_t k) {
                    return EntryRng(seed, row, static_cast<int64_t>(idx[at(k)]), kStreamDownsample,
                                    blk[at(k)]);
                },
                [&](int64_t k, int64_t x) { out[at(k)] = x; });
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
            if (total > kMaxCount) {
                problem.record(Problem::row_total, r * n_cols + k, row_offset + r, -1, 0.0);
                bad = true;
                break;
            }
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
