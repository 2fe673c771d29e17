// CUDA drivers: one thread per stored entry (thinning) or per row (downsampling), calling the
// __host__ __device__ kernels of kernels.hpp; compaction by a per-line count, an exclusive
// scan and a scatter. Built with --fmad=false so floating point matches the CPU bit for bit.
#include <cuda_runtime.h>
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/scan.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "noisescale/kernels.hpp"
#include "noisescale/matrix.hpp"
#include "noisescale/philox.hpp"
#include "thin_cuda.hpp"

namespace noisescale {
namespace cuda {
namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                                 cudaGetErrorString(e));
}

// Owning device allocation.
template <class T>
class DeviceArray {
public:
    explicit DeviceArray(int64_t n) : n_(n) {
        check(cudaMalloc(&p_, static_cast<size_t>(n > 0 ? n : 1) * sizeof(T)), "cudaMalloc");
    }
    DeviceArray(const T* host, int64_t n) : DeviceArray(n) {
        if (n > 0)
            check(cudaMemcpy(p_, host, static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice),
                  "upload");
    }
    ~DeviceArray() { cudaFree(p_); }
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;

    T* get() const { return p_; }
    void download(T* host, int64_t n) const {
        if (n > 0)
            check(cudaMemcpy(host, p_, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost),
                  "download");
    }

private:
    T* p_ = nullptr;
    int64_t n_;
};

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

// Largest m with indptr[m] <= e: the line holding entry e.
template <class I>
__device__ int64_t line_of(const I* indptr, int64_t n_major, int64_t e) {
    int64_t lo = 0, hi = n_major;  // indptr[lo] <= e < indptr[hi]
    while (hi - lo > 1) {
        const int64_t mid = (lo + hi) / 2;
        if (static_cast<int64_t>(indptr[mid]) <= e)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

template <class V, class I>
__global__ void thin_entries(const I* indptr, const I* indices, const V* data, int64_t n_major,
                             int64_t n_minor, bool rows_major, int64_t row_offset,
                             const BinomialPlan* plans, int levels, uint64_t seed, int64_t nnz,
                             int64_t* vals, int* fallback) {
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < nnz;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t m = line_of(indptr, n_major, e);
        const int64_t minor = static_cast<int64_t>(indices[e]);
        int64_t c;
        if (minor < 0 || minor >= n_minor || !count_ok(data[e], &c)) {
            atomicExch(fallback, 1);
            continue;
        }
        const int64_t row = row_offset + (rows_major ? m : minor);
        const int64_t col = rows_major ? minor : m;
        int64_t out[kMaxLevels];
        thin_entry(c, plans, levels, seed, row, col, out);
        for (int l = 0; l < levels; ++l) vals[l * nnz + e] = out[l];
    }
}

// Per line: flag unsorted minors, count the entries each level keeps.
template <class I>
__global__ void count_kept(const I* indptr, const I* indices, int64_t n_major, int levels,
                           int64_t nnz, const int64_t* vals, bool keep_zeros, int64_t* kept,
                           int* fallback) {
    for (int64_t m = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; m < n_major;
         m += int64_t(gridDim.x) * blockDim.x) {
        const int64_t e0 = indptr[m], e1 = indptr[m + 1];
        for (int64_t e = e0 + 1; e < e1; ++e)
            if (indices[e] <= indices[e - 1]) atomicExch(fallback, 1);
        for (int l = 0; l < levels; ++l) {
            int64_t k = 0;
            for (int64_t e = e0; e < e1; ++e) k += (keep_zeros || vals[l * nnz + e] != 0) ? 1 : 0;
            kept[l * (n_major + 1) + m] = k;
        }
    }
}

template <class V, class I>
__global__ void scatter_kept(const I* indptr, const I* indices, int64_t n_major, int level,
                             int64_t nnz, const int64_t* vals, bool keep_zeros,
                             const int64_t* offsets, I* out_indices, V* out_data) {
    for (int64_t m = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; m < n_major;
         m += int64_t(gridDim.x) * blockDim.x) {
        int64_t p = offsets[m];
        for (int64_t e = indptr[m]; e < indptr[m + 1]; ++e) {
            const int64_t v = vals[level * nnz + e];
            if (keep_zeros || v != 0) {
                out_indices[p] = indices[e];
                out_data[p] = static_cast<V>(v);
                ++p;
            }
        }
    }
}

// Compact per-entry values (levels x nnz on the device) into host CSR/CSC outputs.
template <class V, class I>
bool compact(const CompressedIn<V, I>& in, const DeviceArray<I>& d_indptr,
             const DeviceArray<I>& d_indices, const DeviceArray<int64_t>& vals, int levels,
             bool keep_zeros, DeviceArray<int>& fallback, std::vector<Compressed<V, I>>* out) {
    const int64_t n_major = in.n_major, nnz = in.nnz();
    DeviceArray<int64_t> kept(levels * (n_major + 1));
    check(cudaMemset(kept.get(), 0, sizeof(int64_t) * levels * (n_major + 1)), "memset");
    if (n_major > 0)
        count_kept<<<grid_for(n_major), kThreads>>>(d_indptr.get(), d_indices.get(), n_major,
                                                     levels, nnz, vals.get(), keep_zeros,
                                                     kept.get(), fallback.get());
    check(cudaGetLastError(), "count_kept");
    int flag = 0;
    fallback.download(&flag, 1);
    if (flag) return false;
    out->clear();
    out->resize(static_cast<size_t>(levels));
    std::vector<int64_t> offsets(static_cast<size_t>(n_major + 1));
    for (int l = 0; l < levels; ++l) {
        int64_t* k = kept.get() + l * (n_major + 1);
        thrust::exclusive_scan(thrust::device, thrust::device_pointer_cast(k),
                               thrust::device_pointer_cast(k + n_major + 1),
                               thrust::device_pointer_cast(k));
        check(cudaMemcpy(offsets.data(), k, sizeof(int64_t) * (n_major + 1), cudaMemcpyDeviceToHost),
              "download offsets");
        Compressed<V, I>& o = (*out)[static_cast<size_t>(l)];
        o.nnz = offsets[static_cast<size_t>(n_major)];
        o.indptr = allocate<I>(n_major + 1);
        for (int64_t m = 0; m <= n_major; ++m) o.indptr[m] = static_cast<I>(offsets[static_cast<size_t>(m)]);
        DeviceArray<I> d_out_idx(o.nnz);
        DeviceArray<V> d_out_data(o.nnz);
        if (n_major > 0)
            scatter_kept<V, I><<<grid_for(n_major), kThreads>>>(
                d_indptr.get(), d_indices.get(), n_major, l, nnz, vals.get(), keep_zeros, k,
                d_out_idx.get(), d_out_data.get());
        check(cudaGetLastError(), "scatter_kept");
        o.indices = allocate<I>(o.nnz);
        o.data = allocate<V>(o.nnz);
        d_out_idx.download(o.indices.get(), o.nnz);
        d_out_data.download(o.data.get(), o.nnz);
    }
    return true;
}

template <class V>
__global__ void thin_dense_entries(const V* in, int64_t n_rows, int64_t n_cols, bool c_order,
                                   int64_t row_offset, const BinomialPlan* plans, int levels,
                                   uint64_t seed, V* outs, int* fallback) {
    const int64_t size = n_rows * n_cols;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < size;
         i += int64_t(gridDim.x) * blockDim.x) {
        int64_t c;
        if (!count_ok(in[i], &c)) {
            atomicExch(fallback, 1);
            continue;
        }
        const int64_t r = c_order ? i / n_cols : i % n_rows;
        const int64_t col = c_order ? i % n_cols : i / n_rows;
        int64_t out[kMaxLevels];
        thin_entry(c, plans, levels, seed, row_offset + r, col, out);
        for (int l = 0; l < levels; ++l) outs[l * size + i] = static_cast<V>(out[l]);
    }
}

// Downsample one line of `len` stored counts (data[k], column col(k), k < len) on the device;
// false if a count or column is invalid or the total exceeds 2^53 (the CPU then raises).
template <class V, class ColAt, class Emit>
__device__ bool downsample_line(const V* data, int64_t len, ColAt col, int64_t n_cols,
                                int64_t target, uint64_t seed, int64_t row, Emit emit) {
    int64_t total = 0, c;
    for (int64_t k = 0; k < len; ++k) {
        const bool ok = count_ok(data[k], &c) && col(k) >= 0 && col(k) < n_cols &&
                        (k == 0 || col(k) > col(k - 1));
        total += c;
        if (!ok || total > kMaxCount) return false;
    }
    downsample_row(
        len, total, target,
        [&](int64_t k) {
            int64_t v;
            count_ok(data[k], &v);
            return v;
        },
        [&](int64_t k) { return EntryRng(seed, row, col(k), kStreamDownsample); }, emit);
    return true;
}

template <class V, class I>
__global__ void downsample_rows(const I* indptr, const I* indices, const V* data, int64_t n_rows,
                                int64_t n_cols, int64_t row_offset, const int64_t* per_row,
                                int64_t target_all, uint64_t seed, int64_t* vals, int* fallback) {
    for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < n_rows;
         r += int64_t(gridDim.x) * blockDim.x) {
        const int64_t e0 = indptr[r], e1 = indptr[r + 1];
        const bool ok = downsample_line(
            data + e0, e1 - e0, [&](int64_t k) { return static_cast<int64_t>(indices[e0 + k]); },
            n_cols, per_row ? per_row[r] : target_all, seed, row_offset + r,
            [&](int64_t k, int64_t x) { vals[e0 + k] = x; });
        if (!ok) atomicExch(fallback, 1);
    }
}

template <class V>
__global__ void downsample_dense_rows(const V* in, int64_t n_rows, int64_t n_cols,
                                      int64_t row_offset, const int64_t* per_row,
                                      int64_t target_all, uint64_t seed, V* out, int* fallback) {
    for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < n_rows;
         r += int64_t(gridDim.x) * blockDim.x) {
        const bool ok = downsample_line(
            in + r * n_cols, n_cols, [](int64_t k) { return k; }, n_cols,
            per_row ? per_row[r] : target_all, seed, row_offset + r,
            [&](int64_t k, int64_t x) { out[r * n_cols + k] = static_cast<V>(x); });
        if (!ok) atomicExch(fallback, 1);
    }
}

}  // namespace

int device_count(std::string* why) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver/device" error
        if (why) *why = std::string("CUDA: ") + cudaGetErrorString(e);
        return 0;
    }
    if (n == 0 && why) *why = "CUDA reports 0 devices";
    return n;
}

std::vector<std::string> device_names() {
    std::vector<std::string> names;
    for (int d = 0; d < device_count(); ++d) {
        cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, d) == cudaSuccess) names.emplace_back(prop.name);
    }
    return names;
}

template <class V, class I>
bool thin_compressed(const CompressedIn<V, I>& in, const std::vector<BinomialPlan>& plans,
                     uint64_t seed, bool keep_zeros, std::vector<Compressed<V, I>>* out) {
    check_global_shape(in.row_offset, in.rows_are_major ? in.n_major : in.n_minor,
                       in.rows_are_major ? in.n_minor : in.n_major);
    const int levels = static_cast<int>(plans.size());
    const int64_t nnz = in.nnz();
    DeviceArray<I> d_indptr(in.indptr, in.n_major + 1), d_indices(in.indices, nnz);
    DeviceArray<V> d_data(in.data, nnz);
    DeviceArray<BinomialPlan> d_plans(plans.data(), levels);
    DeviceArray<int64_t> vals(levels * nnz);
    DeviceArray<int> fallback(1);
    check(cudaMemset(fallback.get(), 0, sizeof(int)), "memset");
    if (nnz > 0)
        thin_entries<V, I><<<grid_for(nnz), kThreads>>>(
            d_indptr.get(), d_indices.get(), d_data.get(), in.n_major, in.n_minor,
            in.rows_are_major, in.row_offset, d_plans.get(), levels, seed, nnz, vals.get(),
            fallback.get());
    check(cudaGetLastError(), "thin_entries");
    return compact(in, d_indptr, d_indices, vals, levels, keep_zeros, fallback, out);
}

template <class V>
bool thin_dense(const V* in, int64_t n_rows, int64_t n_cols, bool c_order, int64_t row_offset,
                const std::vector<BinomialPlan>& plans, uint64_t seed, V* const* outs) {
    check_global_shape(row_offset, n_rows, n_cols);
    const int levels = static_cast<int>(plans.size());
    const int64_t size = n_rows * n_cols;
    DeviceArray<V> d_in(in, size), d_out(levels * size);
    DeviceArray<BinomialPlan> d_plans(plans.data(), levels);
    DeviceArray<int> fallback(1);
    check(cudaMemset(fallback.get(), 0, sizeof(int)), "memset");
    if (size > 0)
        thin_dense_entries<V><<<grid_for(size), kThreads>>>(d_in.get(), n_rows, n_cols, c_order,
                                                             row_offset, d_plans.get(), levels,
                                                             seed, d_out.get(), fallback.get());
    check(cudaGetLastError(), "thin_dense_entries");
    int flag = 0;
    fallback.download(&flag, 1);
    if (flag) return false;
    for (int l = 0; l < levels; ++l)
        check(cudaMemcpy(outs[l], d_out.get() + l * size, sizeof(V) * size, cudaMemcpyDeviceToHost),
              "download");
    return true;
}

template <class V, class I>
bool downsample_csr(const CompressedIn<V, I>& in, Targets targets, uint64_t seed,
                    bool keep_zeros, Compressed<V, I>* out) {
    check_global_shape(in.row_offset, in.n_major, in.n_minor);
    const int64_t nnz = in.nnz(), n_rows = in.n_major;
    DeviceArray<I> d_indptr(in.indptr, n_rows + 1), d_indices(in.indices, nnz);
    DeviceArray<V> d_data(in.data, nnz);
    DeviceArray<int64_t> d_targets(targets.per_row, targets.per_row ? n_rows : 0);
    DeviceArray<int64_t> vals(nnz);
    DeviceArray<int> fallback(1);
    check(cudaMemset(fallback.get(), 0, sizeof(int)), "memset");
    if (n_rows > 0)
        downsample_rows<V, I><<<grid_for(n_rows), kThreads>>>(
            d_indptr.get(), d_indices.get(), d_data.get(), n_rows, in.n_minor, in.row_offset,
            targets.per_row ? d_targets.get() : nullptr, targets.all, seed, vals.get(),
            fallback.get());
    check(cudaGetLastError(), "downsample_rows");
    int flag = 0;
    fallback.download(&flag, 1);
    if (flag) return false;
    std::vector<Compressed<V, I>> outs;
    if (!compact(in, d_indptr, d_indices, vals, 1, keep_zeros, fallback, &outs)) return false;
    *out = std::move(outs[0]);
    return true;
}

template <class V>
bool downsample_dense(const V* in, int64_t n_rows, int64_t n_cols, int64_t row_offset,
                      Targets targets, uint64_t seed, V* out) {
    check_global_shape(row_offset, n_rows, n_cols);
    const int64_t size = n_rows * n_cols;
    DeviceArray<V> d_in(in, size), d_out(size);
    DeviceArray<int64_t> d_targets(targets.per_row, targets.per_row ? n_rows : 0);
    DeviceArray<int> fallback(1);
    check(cudaMemset(fallback.get(), 0, sizeof(int)), "memset");
    if (n_rows > 0)
        downsample_dense_rows<V><<<grid_for(n_rows), kThreads>>>(
            d_in.get(), n_rows, n_cols, row_offset, targets.per_row ? d_targets.get() : nullptr,
            targets.all, seed, d_out.get(), fallback.get());
    check(cudaGetLastError(), "downsample_dense_rows");
    int flag = 0;
    fallback.download(&flag, 1);
    if (flag) return false;
    d_out.download(out, size);
    return true;
}

// Explicit instantiations for the dtypes the Python module dispatches on.
#define NS_INSTANTIATE_V(V)                                                                     \
    template bool thin_dense<V>(const V*, int64_t, int64_t, bool, int64_t,                     \
                                const std::vector<BinomialPlan>&, uint64_t, V* const*);        \
    template bool downsample_dense<V>(const V*, int64_t, int64_t, int64_t, Targets, uint64_t,   \
                                      V*);
#define NS_INSTANTIATE_VI(V, I)                                                                 \
    template bool thin_compressed<V, I>(const CompressedIn<V, I>&,                             \
                                        const std::vector<BinomialPlan>&, uint64_t, bool,      \
                                        std::vector<Compressed<V, I>>*);                       \
    template bool downsample_csr<V, I>(const CompressedIn<V, I>&, Targets, uint64_t, bool,     \
                                       Compressed<V, I>*);
NS_INSTANTIATE_V(int32_t)
NS_INSTANTIATE_V(int64_t)
NS_INSTANTIATE_V(float)
NS_INSTANTIATE_V(double)
NS_INSTANTIATE_VI(int32_t, int32_t)
NS_INSTANTIATE_VI(int32_t, int64_t)
NS_INSTANTIATE_VI(int64_t, int32_t)
NS_INSTANTIATE_VI(int64_t, int64_t)
NS_INSTANTIATE_VI(float, int32_t)
NS_INSTANTIATE_VI(float, int64_t)
NS_INSTANTIATE_VI(double, int32_t)
NS_INSTANTIATE_VI(double, int64_t)

}  // namespace cuda
}  // namespace noisescale
