// Deterministic elementary functions for the samplers.
//
// The C library's log/exp differ in their last bits between glibc, other libms and CUDA, and
// an acceptance test in a rejection sampler can flip on one ulp. These versions use only
// IEEE-754 basic operations (+ - * / and floor), which are correctly rounded everywhere, so
// host and device produce the same bits as long as FMA contraction is off
// (-ffp-contract=off, nvcc --fmad=false; the build sets both). Accuracy is a few ulp.
#pragma once
#include <cstdint>
#include <cmath>
#include <cstring>

#include "hd.hpp"

namespace noisescale {
namespace dm {

NS_HD uint64_t to_bits(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
NS_HD double from_bits(uint64_t u) {
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 0x3fe62e42fee00000
constexpr double kLn2Lo = 1.90821492927058770002e-10;  // 0x3dea39ef35793c76
NS_HD double inf() { return from_bits(0x7FF0000000000000ull); }

// Natural logarithm; log(0) = -inf, log(x<0) = NaN.
NS_HD double log(double x) {
    if (!(x > 0.0)) return x == 0.0 ? -inf() : from_bits(0x7FF8000000000000ull);  // NaN
    if (x == inf()) return x;
    int e = 0;
    if (x < 2.2250738585072014e-308) {  // subnormal: scale into the normal range
        x *= 18014398509481984.0;        // 2^54
        e = -54;
    }
    const uint64_t bits = to_bits(x);
    e += static_cast<int>((bits >> 52) & 0x7FF) - 1023;
    double m = from_bits((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);  // [1, 2)
    if (m > 1.4142135623730951) {
        m *= 0.5;
        ++e;
    }
    const double f = m - 1.0;  // [-0.293, 0.415]
    const double s = f / (2.0 + f);
    const double z = s * s;    // <= 0.0295
    // log(1+f) = 2 atanh(s) = 2 s (1 + z/3 + z^2/5 + ...), truncated where z^12 < 1e-18.
    double p = 1.0 / 25.0;
    p = p * z + 1.0 / 23.0;
    p = p * z + 1.0 / 21.0;
    p = p * z + 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    const double r = 2.0 * s * z * p;  // log(1+f) - 2s
    const double de = static_cast<double>(e);
    return de * kLn2Hi + (2.0 * s + (r + de * kLn2Lo));
}

// log(1 + x) for x > -1, accurate also for tiny |x|.
NS_HD double log1p(double x) {
    const double u = 1.0 + x;
    if (u == 1.0) return x;
    // Correct for the rounding of 1 + x (Goldberg's trick).
    return log(u) * (x / (u - 1.0));
}

// Exponential; overflows to inf above 709.78, underflows to 0 below -745.13.
NS_HD double exp(double x) {
    if (x != x) return x;
    if (x > 709.782712893384) return inf();
    if (x < -745.1332191019412) return 0.0;
    const double kd = floor(x * 1.4426950408889634 + 0.5);
    const double r = (x - kd * kLn2Hi) - kd * kLn2Lo;  // |r| <= 0.347
    // Taylor series to degree 15 (error < 1e-19 on the interval).
    double p = 1.0 / 1307674368000.0;
    p = p * r + 1.0 / 87178291200.0;
    p = p * r + 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int k = static_cast<int>(kd);
    // Scale by 2^k in at most two exact steps (k may be below the normal exponent range).
    if (k < -1000) {
        p *= from_bits(static_cast<uint64_t>(1023 - 1000) << 52);
        k += 1000;
    }
    if (k > 1000) {
        p *= from_bits(static_cast<uint64_t>(1023 + 1000) << 52);
        k -= 1000;
    }
    return p * from_bits(static_cast<uint64_t>(1023 + k) << 52);
}

// Stirling-series correction fc(k) = log(k!) - [(k+1/2) log(k+1) - (k+1) + log(2 pi)/2]
// (Hörmann 1993); tabulated for k < 16, five series terms beyond (error < 1e-16).
NS_HD double stirling_tail(double k) {
    if (k < 16.0) {
        constexpr double table[16] = {
            0.08106146679532726,  0.0413406959554093,   0.02767792568499834,
            0.020790672103765093, 0.016644691189821193, 0.013876128823070748,
            0.01189670994589177,  0.010411265261972096, 0.009255462182712733,
            0.00833056343336287,  0.007573675487951841, 0.00694284010720953,
            0.006408994188004207, 0.0059513701127588475, 0.005554733551962801,
            0.0052076559196096404};
        return table[static_cast<int>(k)];
    }
    const double n = k + 1.0, n2 = n * n;
    return (1.0 / 12.0 -
            (1.0 / 360.0 - (1.0 / 1260.0 - (1.0 / 1680.0 - (1.0 / 1188.0) / n2) / n2) / n2) / n2) /
           n;
}

constexpr double kHalfLog2Pi = 0.9189385332046728;

// log(k!) for integer-valued k >= 0.
NS_HD double log_factorial(double k) {
    return (k + 0.5) * log(k + 1.0) - (k + 1.0) + kHalfLog2Pi + stirling_tail(k);
}

}  // namespace dm
}  // namespace noisescale
