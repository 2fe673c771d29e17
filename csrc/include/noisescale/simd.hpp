// Which SIMD instruction set the CPU kernels use: one runtime choice shared by all of them.
#pragma once

#include <cstdlib>
#include <string>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define NOISESCALE_X86_SIMD 1
#include <immintrin.h>
#endif

namespace noisescale {

enum class Isa { scalar, avx2, avx512 };

// The widest instruction set this CPU runs. The environment variable NOISESCALE_SIMD=scalar|avx2
// caps the choice (read once), e.g. to check that every path gives the same results.
inline Isa best_isa() {
#ifdef NOISESCALE_X86_SIMD
    static const Isa isa = [] {
        __builtin_cpu_init();
        const char* cap = std::getenv("NOISESCALE_SIMD");
        const std::string limit = cap ? cap : "";
        if (limit != "scalar" && limit != "avx2" && __builtin_cpu_supports("avx512f"))
            return Isa::avx512;
        if (limit != "scalar" && __builtin_cpu_supports("avx2")) return Isa::avx2;
        return Isa::scalar;
    }();
    return isa;
#else
    return Isa::scalar;
#endif
}

}  // namespace noisescale
