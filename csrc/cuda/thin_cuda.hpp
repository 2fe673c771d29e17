// CUDA drivers of the sampling kernels (same per-entry code as the CPU: kernels.hpp).
//
// Host-side declarations only, so the pybind11 module can name them without CUDA headers; it
// includes them in every build and calls them only when NOISESCALE_WITH_CUDA (thin_cuda.cu)
// defines them. Each driver returns false when it hands the job back to the CPU: invalid
// input (the CPU driver then raises the precise error) or rows with unsorted indices. Results
// are bit-identical to the CPU drivers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "noisescale/binomial.hpp"
#include "noisescale/matrix.hpp"

namespace noisescale {
namespace cuda {

// Number of usable CUDA devices (0 when there is no driver or no device; then *why, when given,
// says what the CUDA runtime reported).
int device_count(std::string* why = nullptr);
std::vector<std::string> device_names();

template <class V, class I>
bool thin_compressed(const CompressedIn<V, I>& in, const std::vector<BinomialPlan>& plans,
                     uint64_t seed, bool keep_zeros, std::vector<Compressed<V, I>>* out);

template <class V>
bool thin_dense(const V* in, int64_t n_rows, int64_t n_cols, bool c_order, int64_t row_offset,
                const std::vector<BinomialPlan>& plans, uint64_t seed, V* const* outs);

template <class V, class I>
bool downsample_csr(const CompressedIn<V, I>& in, Targets targets, uint64_t seed,
                    bool keep_zeros, Compressed<V, I>* out);

template <class V>
bool downsample_dense(const V* in, int64_t n_rows, int64_t n_cols, int64_t row_offset,
                      Targets targets, uint64_t seed, V* out);

}  // namespace cuda
}  // namespace noisescale
