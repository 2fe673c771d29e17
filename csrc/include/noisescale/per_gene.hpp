// Per-gene thinning (the variant of Gowri, Yin & Klein 2025): gene (column) j keeps exactly
// take_j = floor(T_j * q) of its T_j UMIs, a uniform sample without replacement across the
// cells (a multivariate hypergeometric draw over the column).
//
// Determinism contract. The draw is made down a fixed binary tree over global row indices:
// the node at level L with prefix p covers the rows whose index >> (L + 1) is p, and splits
// them by bit L. A node whose two halves both hold UMIs of column j sends
// Hypergeometric(total, left total, take) of its take to the left half, drawn from
// EntryRng(seed, p, j, kStreamPerGene + L); other nodes need no randomness. So the result
// depends only on (seed, q, the column's counts by global row), not on threads, chunking or
// the order columns are visited, and a chunk of rows can be thinned alone once the takes of
// its aligned row blocks are known: the same tree, cut at level B, first splits the column's
// take between blocks of 2^B rows (from per-block totals) and then within each block.
#pragma once
#include <cstdint>

#include "hd.hpp"
#include "hypergeometric.hpp"
#include "philox.hpp"

namespace noisescale {

// The UMIs a gene keeps: floor(total * q) in double arithmetic (as numpy computes it).
NS_HD int64_t per_gene_take(int64_t total, double q) {
    return static_cast<int64_t>(floor(static_cast<double>(total) * q));
}

// Highest set bit of x > 0.
NS_HD int highest_bit(uint64_t x) {
    int b = 0;
    while (x >>= 1) ++b;
    return b;
}

// Split `take` UMIs of one column among its entries a..b-1 (b > a): key[i] is entry i's
// global row (strictly increasing), csum[i + 1] - csum[i] its count, and take <= csum[b] -
// csum[a]. emit(i, x) receives the UMIs entry i keeps. Keys may also be the first rows of
// aligned row blocks, with csum the blocks' totals: the splits above the blocks are the same.
template <class Emit>
NS_HD void split_take(const int64_t* key, const int64_t* csum, int64_t a, int64_t b,
                      int64_t take, uint64_t seed, int64_t col, Emit emit) {
    // Pending right halves; the tree has at most 48 levels (rows < 2^48), one pending per level.
    int64_t stack_a[64], stack_b[64], stack_take[64];
    int depth = 0;
    for (;;) {
        const int64_t total = csum[b] - csum[a];
        if (b - a == 1) {
            emit(a, take);
        } else if (take == 0 || take == total) {
            for (int64_t i = a; i < b; ++i) emit(i, take == 0 ? 0 : csum[i + 1] - csum[i]);
        } else {
            const int level = highest_bit(static_cast<uint64_t>(key[a] ^ key[b - 1]));
            const int64_t prefix = key[a] >> (level + 1);
            const int64_t right_start = ((key[a] >> level) | 1) << level;
            int64_t lo = a + 1, hi = b - 1;  // first entry with key >= right_start, in (a, b)
            while (lo < hi) {
                const int64_t mid = lo + (hi - lo) / 2;
                if (key[mid] < right_start) lo = mid + 1; else hi = mid;
            }
            const int64_t left = csum[lo] - csum[a];
            int64_t x;
            if (left == 0 || left == total) {
                x = left == 0 ? 0 : take;
            } else {
                EntryRng rng(seed, prefix, col, kStreamPerGene + static_cast<uint32_t>(level));
                x = hypergeometric(total, left, take, rng);
            }
            stack_a[depth] = lo;
            stack_b[depth] = b;
            stack_take[depth] = take - x;
            ++depth;
            b = lo;
            take = x;
            continue;
        }
        if (depth == 0) return;
        --depth;
        a = stack_a[depth];
        b = stack_b[depth];
        take = stack_take[depth];
    }
}

}  // namespace noisescale
