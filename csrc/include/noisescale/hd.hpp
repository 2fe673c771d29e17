// Portability macros shared by host (C++17) and device (CUDA) code.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define NS_HD __host__ __device__ __forceinline__
#else
#define NS_HD inline
#endif

namespace noisescale {

// High 64 bits of the 128-bit product a * b (and the low bits via *lo).
NS_HD uint64_t mulhilo64(uint64_t a, uint64_t b, uint64_t* lo) {
#if defined(__CUDA_ARCH__)
    *lo = a * b;
    return __umul64hi(a, b);
#else
    const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
    *lo = static_cast<uint64_t>(p);
    return static_cast<uint64_t>(p >> 64);
#endif
}

}  // namespace noisescale
