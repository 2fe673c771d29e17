// Thin a CSR count matrix with the noisescale C++ API.
//
// Input (text): "n_rows n_cols nnz", then n_rows + 1 indptr values, nnz column indices and nnz
// counts. Output (stdout, same format): the thinned matrix, then the downsampled one.
//   thin_csr MATRIX FRACTION SEED [TARGET]
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <vector>

#include <noisescale/api.hpp>

template <class V, class I>
void print(const noisescale::CsrMatrix<V, I>& m) {
    std::cout << std::setprecision(17) << m.n_rows << ' ' << m.n_cols << ' ' << m.data.size()
              << '\n';
    for (I p : m.indptr) std::cout << p << ' ';
    std::cout << '\n';
    for (I j : m.indices) std::cout << j << ' ';
    std::cout << '\n';
    for (V v : m.data) std::cout << v << ' ';
    std::cout << '\n';
}

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: thin_csr MATRIX FRACTION SEED [TARGET]\n";
        return 2;
    }
    std::ifstream in(argv[1]);
    int64_t n_rows = 0, n_cols = 0, nnz = 0;
    if (!(in >> n_rows >> n_cols >> nnz)) {
        std::cerr << "cannot read " << argv[1] << '\n';
        return 1;
    }
    std::vector<int32_t> indptr(n_rows + 1), indices(nnz);
    std::vector<float> data(nnz);
    for (auto& v : indptr) in >> v;
    for (auto& v : indices) in >> v;
    for (auto& v : data) in >> v;
    const double fraction = std::atof(argv[2]);
    const uint64_t seed = std::strtoull(argv[3], nullptr, 10);
    const int64_t target = argc > 4 ? std::atoll(argv[4]) : 100;
    try {
        const noisescale::CsrView<float, int32_t> X{n_rows, n_cols, indptr.data(),
                                                    indices.data(), data.data()};
        print(noisescale::thin(X, fraction, seed));
        print(noisescale::downsample(X, target, seed));
    } catch (const std::exception& err) {
        std::cerr << "error: " << err.what() << '\n';
        return 1;
    }
    return 0;
}
