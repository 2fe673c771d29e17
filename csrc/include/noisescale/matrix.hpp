// Host-side matrix types shared by the CPU and CUDA drivers: compressed inputs, owned outputs,
// per-row targets.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <stdexcept>
#include <string>

#include "philox.hpp"  // kMaxRows, kMaxCols

namespace noisescale {

// Output buffers owned by C++ until handed over (malloc/free so they can be shrunk in place).

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};
template <class T>
using Buffer = std::unique_ptr<T[], FreeDeleter>;

// Uninitialised storage for n values. Large buffers are 2 MiB aligned and marked for
// transparent huge pages, which halves the page-fault cost of first touch (as numpy does).
template <class T>
Buffer<T> allocate(int64_t n) {
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T);
    void* p = nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr size_t kHuge = size_t(1) << 21;
    if (bytes >= 2 * kHuge) {
        if (posix_memalign(&p, kHuge, bytes) != 0) p = nullptr;
        if (p != nullptr) madvise(p, bytes, MADV_HUGEPAGE);
    }
#endif
    if (p == nullptr) p = std::malloc(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return Buffer<T>(static_cast<T*>(p));
}

template <class T>
void shrink(Buffer<T>& b, int64_t n) {
    void* p = std::realloc(b.get(), static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T));
    if (p != nullptr) {
        b.release();
        b.reset(static_cast<T*>(p));
    }
}

// One compressed (CSR or CSC) matrix produced by a driver.
template <class V, class I>
struct Compressed {
    Buffer<I> indptr;
    Buffer<I> indices;
    Buffer<V> data;
    int64_t nnz = 0;
};

// A compressed input: n_major lines (rows for CSR, columns for CSC) of n_minor entries.
template <class V, class I>
struct CompressedIn {
    int64_t n_major = 0, n_minor = 0;
    const I* indptr = nullptr;
    const I* indices = nullptr;
    const V* data = nullptr;
    bool rows_are_major = true;  // CSR
    int64_t row_offset = 0;      // global index of local row 0
    // CSR only, optional: global index of each local row (strictly increasing, checked by
    // check_global_rows); overrides row_offset. For thinning a selection of a matrix's rows.
    const int64_t* row_ids = nullptr;

    int64_t nnz() const { return n_major == 0 ? 0 : static_cast<int64_t>(indptr[n_major]); }
    int64_t global_row(int64_t r) const { return row_ids ? row_ids[r] : row_offset + r; }
    int64_t row(int64_t major, int64_t minor) const {
        return global_row(rows_are_major ? major : minor);
    }
    int64_t col(int64_t major, int64_t minor) const { return rows_are_major ? minor : major; }
};

// Per-row targets: either one value for all rows or one per row.
struct Targets {
    const int64_t* per_row = nullptr;
    int64_t all = 0;
    int64_t operator[](int64_t r) const { return per_row ? per_row[r] : all; }
};

template <class V, class I>
void check_structure(const CompressedIn<V, I>& in, int64_t len_indices, int64_t len_data) {
    if (len_indices != len_data)
        throw std::invalid_argument("indices and data have different lengths (" +
                                    std::to_string(len_indices) + " vs " +
                                    std::to_string(len_data) + ")");
    if (in.n_major == 0) return;
    if (in.indptr[0] != 0) throw std::invalid_argument("indptr[0] must be 0");
    for (int64_t m = 0; m < in.n_major; ++m)
        if (in.indptr[m + 1] < in.indptr[m])
            throw std::invalid_argument("indptr must be non-decreasing (at position " +
                                        std::to_string(m + 1) + ")");
    if (static_cast<int64_t>(in.indptr[in.n_major]) != len_data)
        throw std::invalid_argument("indptr[-1] = " + std::to_string(in.indptr[in.n_major]) +
                                    " does not match the number of stored entries " +
                                    std::to_string(len_data));
}

inline void check_global_shape(int64_t row_offset, int64_t n_rows, int64_t n_cols) {
    if (row_offset < 0) throw std::invalid_argument("row_offset must be >= 0");
    if (row_offset + n_rows > kMaxRows)
        throw std::invalid_argument("row indices beyond 2^48 are not supported");
    if (n_cols > kMaxCols) throw std::invalid_argument("more than 2^32 columns are not supported");
}

// check_global_shape() for a compressed input; with row_ids (CSR only), that they are strictly
// increasing global rows in [0, 2^48) instead of the row_offset check.
template <class V, class I>
void check_global_rows(const CompressedIn<V, I>& in) {
    const int64_t n_rows = in.rows_are_major ? in.n_major : in.n_minor;
    const int64_t n_cols = in.rows_are_major ? in.n_minor : in.n_major;
    if (in.row_ids == nullptr) return check_global_shape(in.row_offset, n_rows, n_cols);
    if (!in.rows_are_major)
        throw std::invalid_argument("row ids are supported for CSR (rows-major) input only");
    check_global_shape(0, 0, n_cols);
    for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t id = in.row_ids[r];
        const bool range = id < 0 || id >= kMaxRows;
        if (!range && (r == 0 || id > in.row_ids[r - 1])) continue;
        const std::string at = "row ids[" + std::to_string(r) + "] = " + std::to_string(id);
        throw std::invalid_argument(range ? at + " is out of range [0, 2^48)"
                                          : "row ids must be strictly increasing: " + at +
                                                " follows " + std::to_string(in.row_ids[r - 1]));
    }
}

}  // namespace noisescale
