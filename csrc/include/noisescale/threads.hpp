// Thread counts of the OpenMP loops (and the OpenMP header, where the build has OpenMP). Host
// only; without OpenMP every loop runs on one thread.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

namespace noisescale {

// The thread count for a `threads` argument: itself when > 0, else OpenMP's default
// (omp_get_max_threads(), i.e. OMP_NUM_THREADS or all cores); 1 without OpenMP.
inline int resolve_threads(int threads) {
#ifdef _OPENMP
    return threads > 0 ? threads : omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

}  // namespace noisescale
