// CPU drivers, part 3: where the blocks of a compressed output are written and how they are
// joined into exact-size arrays. Host only.
#pragma once
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "matrix.hpp"
#include "threads.hpp"

namespace noisescale {
namespace cpu {

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
        if (in_place(l) || n == 0) return;  // (memcpy from a null pointer is undefined even for 0)
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

}  // namespace cpu
}  // namespace noisescale
