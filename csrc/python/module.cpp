// pybind11 bindings: the noisescale._core extension module.
//
// The functions here take numpy arrays prepared by noisescale/thinning.py, check them, release the
// GIL and call the CPU (OpenMP) or CUDA drivers. C++ exceptions become Python errors:
// std::invalid_argument -> ValueError, std::runtime_error -> RuntimeError,
// std::bad_alloc -> MemoryError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "noisescale/api.hpp"  // nested_plans, make_targets
#include "noisescale/cpu.hpp"
#include "noisescale/cpu_per_gene.hpp"
#include "noisescale/kdtree.hpp"
#include "noisescale/kernels.hpp"
#include "noisescale/matrix.hpp"
#include "noisescale/philox.hpp"
#include "noisescale/philox_batch.hpp"
#include "noisescale/threads.hpp"
#include "thin_cuda.hpp"  // declared in every build, defined with NOISESCALE_WITH_CUDA

#ifndef NOISESCALE_VERSION
#define NOISESCALE_VERSION "0.0.0"
#endif

namespace py = pybind11;
using namespace noisescale;

namespace {

template <class T>
py::array_t<T> hand_over(Buffer<T>& buf, int64_t n) {
    T* ptr = buf.release();
    py::capsule owner(ptr, [](void* p) { std::free(p); });
    return py::array_t<T>({static_cast<py::ssize_t>(n)}, {static_cast<py::ssize_t>(sizeof(T))},
                          ptr, owner);
}

template <class V, class I>
py::tuple to_python(Compressed<V, I>& c, int64_t n_major) {
    return py::make_tuple(hand_over(c.indptr, n_major + 1), hand_over(c.indices, c.nnz),
                          hand_over(c.data, c.nnz));
}

// Data pointer of a C-contiguous array (or F-contiguous where allowed, for dense input).
template <class T>
const T* ptr_of(const py::array& a, bool allow_fortran = false) {
    const bool ok = (a.flags() & py::array::c_style) ||
                    (allow_fortran && (a.flags() & py::array::f_style));
    if (!ok) throw std::invalid_argument("arrays passed to noisescale._core must be contiguous");
    return static_cast<const T*>(a.data());
}

// Devices -------------------------------------------------------------------------------------

#ifdef NOISESCALE_WITH_CUDA
constexpr bool kCudaCompiled = true;
#else
constexpr bool kCudaCompiled = false;
#endif

// Usable CUDA devices (0 without CUDA support); *why says why there are none.
int cuda_devices(std::string* why = nullptr) {
#ifdef NOISESCALE_WITH_CUDA
    return cuda::device_count(why);
#else
    if (why) *why = "built without CUDA";
    return 0;
#endif
}

std::vector<std::string> cuda_device_names() {
#ifdef NOISESCALE_WITH_CUDA
    return cuda::device_names();
#else
    return {};
#endif
}

enum class Device { cpu, cuda };

const char* device_name(Device d) { return d == Device::cuda ? "cuda" : "cpu"; }

// The device a device= argument selects: "cpu"; "cuda", or an error saying why it cannot be
// used; "auto": CUDA when a device is visible, else the CPU.
Device resolve_device(const std::string& device) {
    if (device == "cpu") return Device::cpu;
    if (device != "auto" && device != "cuda")
        throw std::invalid_argument("device must be 'auto', 'cpu' or 'cuda', got '" + device +
                                    "'");
    std::string why;
    const bool visible = cuda_devices(&why) > 0;
    if (device == "auto") return visible ? Device::cuda : Device::cpu;
    if (!kCudaCompiled)
        throw std::runtime_error("device='cuda' but noisescale was built without CUDA "
                                 "(rebuild with -DNOISESCALE_CUDA=ON)");
    if (!visible)
        throw std::runtime_error("device='cuda' but no CUDA device is visible (" + why +
                                 "); device='auto' runs on the CPU when there is none");
    return Device::cuda;
}

// Run a job on the device: the CUDA driver (on_cuda) when `device` is CUDA, else, or when the
// CUDA driver hands the job back by returning false (invalid input, which the CPU driver then
// reports precisely, or unsorted indices), the CPU driver (on_cpu); without the GIL.
// on_cuda is a generic lambda, called with a dummy argument, and only in builds with CUDA:
// its body, which names the CUDA drivers, is then never instantiated in a build without them.
template <class OnCuda, class OnCpu>
void run_on(Device device, OnCuda&& on_cuda, OnCpu&& on_cpu) {
    py::gil_scoped_release nogil;
    if constexpr (kCudaCompiled) {
        if (device == Device::cuda && on_cuda(0)) return;
    } else {
        (void)device;
        (void)on_cuda;
    }
    on_cpu();
}

// Dtype dispatch: call f(Tag<T>{}) with the C++ type of a numpy dtype.
template <class T>
struct Tag {
    using type = T;
};

// Equal dtypes, not only the same dtype object: readers such as zarr hand out equivalent
// dtype instances that are not numpy's canonical singletons.
template <class T>
bool is_type(const py::dtype& dt) {
    return py::detail::npy_api::get().PyArray_EquivTypes_(dt.ptr(), py::dtype::of<T>().ptr());
}

template <class F>
decltype(auto) with_count_type(const py::dtype& dt, F&& f) {
    if (is_type<int32_t>(dt)) return f(Tag<int32_t>{});
    if (is_type<int64_t>(dt)) return f(Tag<int64_t>{});
    if (is_type<float>(dt)) return f(Tag<float>{});
    if (is_type<double>(dt)) return f(Tag<double>{});
    throw std::invalid_argument("count dtype must be int32, int64, float32 or float64");
}

template <class F>
decltype(auto) with_index_type(const py::array& indptr, const py::array& indices, F&& f) {
    if (!py::detail::npy_api::get().PyArray_EquivTypes_(indptr.dtype().ptr(),
                                                       indices.dtype().ptr()))
        throw std::invalid_argument("indptr and indices must have the same dtype");
    if (is_type<int32_t>(indices.dtype())) return f(Tag<int32_t>{});
    if (is_type<int64_t>(indices.dtype())) return f(Tag<int64_t>{});
    throw std::invalid_argument("index arrays must be int32 or int64");
}

// A checked view of a CSR (rows major) or CSC matrix's arrays.
template <class V, class I>
CompressedIn<V, I> compressed_view(const py::array& indptr, const py::array& indices,
                                   const py::array& data, int64_t n_major, int64_t n_minor,
                                   bool rows_are_major, int64_t row_offset) {
    if (indptr.ndim() != 1 || indptr.size() != n_major + 1)
        throw std::invalid_argument("indptr has length " + std::to_string(indptr.size()) +
                                    ", expected " + std::to_string(n_major + 1));
    CompressedIn<V, I> in;
    in.n_major = n_major;
    in.n_minor = n_minor;
    in.indptr = ptr_of<I>(indptr);
    in.indices = ptr_of<I>(indices);
    in.data = ptr_of<V>(data);
    in.rows_are_major = rows_are_major;
    in.row_offset = row_offset;
    check_structure(in, indices.size(), data.size());
    return in;
}

// A 2-D dense input's shape; C order, or F order where allowed.
struct DenseShape {
    int64_t rows, cols;
    bool c_order;
};

DenseShape dense_shape(const py::array& x, bool allow_fortran) {
    if (x.ndim() != 2) throw std::invalid_argument("dense input must be 2-D");
    const bool c_order = (x.flags() & py::array::c_style) != 0;
    if (!c_order && !(allow_fortran && (x.flags() & py::array::f_style)))
        throw std::invalid_argument(allow_fortran ? "dense input must be C- or F-contiguous"
                                                  : "dense input must be C-contiguous");
    return DenseShape{x.shape(0), x.shape(1), c_order};
}

template <class T>
py::array_t<T> new_dense(const DenseShape& s) {
    const auto item = static_cast<py::ssize_t>(sizeof(T));
    std::vector<py::ssize_t> strides = s.c_order ? std::vector<py::ssize_t>{s.cols * item, item}
                                                 : std::vector<py::ssize_t>{item, s.rows * item};
    return py::array_t<T>(std::vector<py::ssize_t>{s.rows, s.cols}, strides);
}

using Int64Array = py::array_t<int64_t, py::array::c_style>;

// row_ids: optional global row of each row (CSR only, checked by check_global_rows); thinning
// with them has no CUDA kernel: "auto" runs on the CPU, "cuda" is an error.
py::list thin_compressed(const py::array& indptr, const py::array& indices, const py::array& data,
                         int64_t n_major, int64_t n_minor, bool rows_are_major,
                         int64_t row_offset, const std::vector<double>& fractions, uint64_t seed,
                         bool keep_zeros, int threads, const std::string& device,
                         const std::optional<Int64Array>& row_ids) {
    const auto plans = nested_plans(fractions);
    if (row_ids && device == "cuda")
        throw std::invalid_argument("no CUDA kernel for row-id thinning; use device='cpu' or "
                                    "'auto' (it runs on the CPU)");
    Device dev = resolve_device(device);
    if (row_ids) dev = Device::cpu;
    const int64_t n_rows = rows_are_major ? n_major : n_minor;
    if (row_ids && (row_ids->ndim() != 1 || row_ids->shape(0) != n_rows))
        throw std::invalid_argument(
            "row ids must be one per row (" + std::to_string(n_rows) + "), got shape " +
            detail::shape_text(std::vector<int64_t>(row_ids->shape(),
                                                    row_ids->shape() + row_ids->ndim())));
    return with_count_type(data.dtype(), [&](auto vt) {
        return with_index_type(indptr, indices, [&](auto it) {
            using V = typename decltype(vt)::type;
            using I = typename decltype(it)::type;
            auto in = compressed_view<V, I>(indptr, indices, data, n_major, n_minor,
                                            rows_are_major, row_offset);
            if (row_ids) in.row_ids = row_ids->data();
            std::vector<Compressed<V, I>> out;
            run_on(
                dev, [&](auto) { return cuda::thin_compressed(in, plans, seed, keep_zeros, &out); },
                [&] { out = cpu::thin_compressed(in, plans, seed, keep_zeros, threads); });
            py::list result;
            for (auto& c : out) result.append(to_python(c, n_major));
            return result;
        });
    });
}

py::list thin_dense(const py::array& x, int64_t row_offset, const std::vector<double>& fractions,
                    uint64_t seed, int threads, const std::string& device) {
    const DenseShape s = dense_shape(x, true);
    const auto plans = nested_plans(fractions);
    const Device dev = resolve_device(device);
    return with_count_type(x.dtype(), [&](auto vt) {
        using V = typename decltype(vt)::type;
        std::vector<py::array_t<V>> outs;
        std::vector<V*> ptrs;
        for (size_t l = 0; l < plans.size(); ++l) {
            outs.push_back(new_dense<V>(s));
            ptrs.push_back(outs.back().mutable_data());
        }
        const V* in = ptr_of<V>(x, true);
        run_on(
            dev,
            [&](auto) {
                return cuda::thin_dense(in, s.rows, s.cols, s.c_order, row_offset, plans, seed,
                                        ptrs.data());
            },
            [&] {
                cpu::thin_dense(in, s.rows, s.cols, s.c_order, row_offset, plans, seed,
                                ptrs.data(), threads);
            });
        py::list result;
        for (auto& o : outs) result.append(o);
        return result;
    });
}

// Per-gene thinning (CPU only; cpu_per_gene.hpp) -------------------------------------------

// Call f(in) with a checked CSR view of the arrays, for any count and index dtype.
template <class F>
decltype(auto) with_csr(const py::array& indptr, const py::array& indices, const py::array& data,
                        int64_t n_rows, int64_t n_cols, int64_t row_offset, F&& f) {
    return with_count_type(data.dtype(), [&](auto vt) {
        return with_index_type(indptr, indices, [&](auto it) {
            using V = typename decltype(vt)::type;
            using I = typename decltype(it)::type;
            return f(compressed_view<V, I>(indptr, indices, data, n_rows, n_cols, true,
                                           row_offset));
        });
    });
}

template <class T>
py::array_t<T> matrix_of(const std::vector<T>& v, int64_t rows, int64_t cols) {
    py::array_t<T> out(std::vector<py::ssize_t>{rows, cols});
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

py::tuple thin_per_gene_csr(const py::array& indptr, const py::array& indices,
                            const py::array& data, int64_t n_rows, int64_t n_cols,
                            int64_t row_offset, double fraction, uint64_t seed, bool keep_zeros,
                            int threads) {
    nested_plans({fraction});
    return with_csr(indptr, indices, data, n_rows, n_cols, row_offset, [&](const auto& in) {
        decltype(cpu::thin_per_gene(in, fraction, seed, keep_zeros, threads)) out;
        {
            py::gil_scoped_release nogil;
            out = cpu::thin_per_gene(in, fraction, seed, keep_zeros, threads);
        }
        return to_python(out, n_rows);
    });
}

Int64Array per_gene_block_totals(const py::array& indptr, const py::array& indices,
                                 const py::array& data, int64_t n_rows, int64_t n_cols,
                                 int64_t row_offset, int block_bits) {
    return with_csr(indptr, indices, data, n_rows, n_cols, row_offset, [&](const auto& in) {
        std::vector<int64_t> t;
        {
            py::gil_scoped_release nogil;
            t = cpu::block_totals(in, block_bits);
        }
        return matrix_of(t, n_cols ? static_cast<int64_t>(t.size()) / n_cols
                                   : cpu::block_count(row_offset, n_rows, block_bits),
                         n_cols);
    });
}

Int64Array per_gene_block_takes(const Int64Array& totals, int64_t first_block, int block_bits,
                                double fraction, uint64_t seed, int threads) {
    nested_plans({fraction});
    if (totals.ndim() != 2) throw std::invalid_argument("block totals must be a 2-D array");
    const int64_t n_blocks = totals.shape(0), n_cols = totals.shape(1);
    std::vector<int64_t> t;
    {
        py::gil_scoped_release nogil;
        t = cpu::block_takes(totals.data(), n_blocks, n_cols, first_block, block_bits, fraction,
                             seed, threads);
    }
    return matrix_of(t, n_blocks, n_cols);
}

py::tuple thin_per_gene_blocks(const py::array& indptr, const py::array& indices,
                               const py::array& data, int64_t n_rows, int64_t n_cols,
                               int64_t row_offset, const Int64Array& takes, int block_bits,
                               uint64_t seed, bool keep_zeros, int threads) {
    if (takes.ndim() != 2 || takes.shape(1) != n_cols)
        throw std::invalid_argument("takes must be a 2-D array with one column per gene");
    return with_csr(indptr, indices, data, n_rows, n_cols, row_offset, [&](const auto& in) {
        decltype(cpu::thin_per_gene(in, 0.0, seed, keep_zeros, threads)) out;
        {
            py::gil_scoped_release nogil;
            out = cpu::thin_per_gene_blocks(in, takes.data(), takes.shape(0), block_bits, seed,
                                            keep_zeros, threads);
        }
        return to_python(out, n_rows);
    });
}

// The targets of a numpy int64 array, checked by make_targets (a scalar or one per row).
Targets targets_from(const py::array_t<int64_t, py::array::c_style>& targets, int64_t n_rows) {
    const std::vector<int64_t> shape(targets.shape(), targets.shape() + targets.ndim());
    return make_targets(targets.data(), shape, n_rows);
}

py::tuple downsample_csr(const py::array& indptr, const py::array& indices, const py::array& data,
                         int64_t n_rows, int64_t n_cols, int64_t row_offset,
                         const py::array_t<int64_t, py::array::c_style>& target, uint64_t seed,
                         bool keep_zeros, int threads, const std::string& device) {
    const Targets targets = targets_from(target, n_rows);
    const Device dev = resolve_device(device);
    return with_count_type(data.dtype(), [&](auto vt) {
        return with_index_type(indptr, indices, [&](auto it) {
            using V = typename decltype(vt)::type;
            using I = typename decltype(it)::type;
            const auto in = compressed_view<V, I>(indptr, indices, data, n_rows, n_cols, true,
                                                  row_offset);
            Compressed<V, I> out;
            run_on(
                dev, [&](auto) { return cuda::downsample_csr(in, targets, seed, keep_zeros, &out); },
                [&] { out = cpu::downsample_csr(in, targets, seed, keep_zeros, threads); });
            return to_python(out, n_rows);
        });
    });
}

py::array downsample_dense(const py::array& x, int64_t row_offset,
                           const py::array_t<int64_t, py::array::c_style>& target, uint64_t seed,
                           int threads, const std::string& device) {
    const DenseShape s = dense_shape(x, false);
    const Targets targets = targets_from(target, s.rows);
    const Device dev = resolve_device(device);
    return with_count_type(x.dtype(), [&](auto vt) -> py::array {
        using V = typename decltype(vt)::type;
        py::array_t<V> out = new_dense<V>(s);
        V* o = out.mutable_data();
        const V* in = ptr_of<V>(x);
        run_on(
            dev,
            [&](auto) {
                return cuda::downsample_dense(in, s.rows, s.cols, row_offset, targets, seed, o);
            },
            [&] { cpu::downsample_dense(in, s.rows, s.cols, row_offset, targets, seed, o, threads); });
        return out;
    });
}

// thin_entry() (the per-entry kernel the CUDA driver runs) applied entry by entry on the CPU,
// so tests can check that the batched CPU driver gives the same bits as the GPU code path.
py::array_t<int64_t> thin_entries_reference(
    const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& counts,
    const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& rows,
    const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& cols,
    const std::vector<double>& fractions, uint64_t seed) {
    const auto plans = nested_plans(fractions);
    const int64_t n = counts.size();
    if (rows.size() != n || cols.size() != n)
        throw std::invalid_argument("counts, rows and cols must have the same length");
    const int levels = static_cast<int>(plans.size());
    py::array_t<int64_t> out(std::vector<py::ssize_t>{levels, n});
    int64_t* o = out.mutable_data();
    int64_t vals[kMaxLevels];
    for (int64_t i = 0; i < n; ++i) {
        if (counts.data()[i] < 0) throw std::invalid_argument("counts must be non-negative");
        thin_entry(counts.data()[i], plans.data(), levels, seed, rows.data()[i], cols.data()[i],
                   vals);
        for (int l = 0; l < levels; ++l) o[l * n + i] = vals[l];
    }
    return out;
}

// Max-norm neighbour searches of the KSG estimators (noisescale/kdtree.hpp). Points: (n, dim)
// C-contiguous float64, prepared by noisescale/mi.
using Points = py::array_t<double, py::array::c_style>;

void check_points(const Points& points) {
    if (points.ndim() != 2) throw std::invalid_argument("points must be a 2-D array");
}

py::array_t<double> kth_neighbor_distance(const Points& points, int64_t k, int threads) {
    check_points(points);
    const int64_t n = points.shape(0), dim = points.shape(1);
    py::array_t<double> out(n);
    double* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        const knn::ChebyshevTree tree(points.data(), n, dim);
        tree.kth_distance(k, o, threads);
    }
    return out;
}

py::array_t<int64_t> count_within(const Points& points, const Points& radii, int threads) {
    check_points(points);
    const int64_t n = points.shape(0), dim = points.shape(1);
    if (radii.ndim() != 1 || radii.shape(0) != n)
        throw std::invalid_argument("radii must have one value per point");
    py::array_t<int64_t> out(n);
    int64_t* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        const knn::ChebyshevTree tree(points.data(), n, dim);
        tree.count_within(radii.data(), o, threads);
    }
    return out;
}

py::dict build_config() {
    py::dict d;
    d["version"] = NOISESCALE_VERSION;
#ifdef _OPENMP
    d["openmp"] = true;
#else
    d["openmp"] = false;
#endif
    d["openmp_max_threads"] = resolve_threads(0);
    d["cuda_compiled"] = kCudaCompiled;
    d["cuda_devices"] = cuda_devices();
    d["cuda_device_names"] = cuda_device_names();
    d["compiler"] = __VERSION__;
    d["simd"] = batch_impl().isa;
    d["thinning_device_auto"] = device_name(resolve_device("auto"));
    return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "noisescale C++ core: counter-based exact thinning kernels (CPU/OpenMP, CUDA)";
    m.def("thin_compressed", &thin_compressed, py::arg("indptr"), py::arg("indices"),
          py::arg("data"), py::arg("n_major"), py::arg("n_minor"), py::arg("rows_are_major"),
          py::arg("row_offset"), py::arg("fractions"), py::arg("seed"), py::arg("keep_zeros"),
          py::arg("threads"), py::arg("device"), py::arg("row_ids") = py::none(),
          "Nested binomial thinning of a CSR/CSC matrix; one (indptr, indices, data) per level. "
          "row_ids (CSR only, CPU only): int64 global index of each row, strictly increasing, "
          "instead of row_offset + i.");
    m.def("thin_dense", &thin_dense, py::arg("x"), py::arg("row_offset"), py::arg("fractions"),
          py::arg("seed"), py::arg("threads"), py::arg("device"),
          "Nested binomial thinning of a dense 2-D array; one array per level.");
    m.def("downsample_csr", &downsample_csr, py::arg("indptr"), py::arg("indices"),
          py::arg("data"), py::arg("n_rows"), py::arg("n_cols"), py::arg("row_offset"),
          py::arg("target"), py::arg("seed"), py::arg("keep_zeros"), py::arg("threads"),
          py::arg("device"), "Per-row downsampling of a CSR matrix to target totals.");
    m.def("downsample_dense", &downsample_dense, py::arg("x"), py::arg("row_offset"),
          py::arg("target"), py::arg("seed"), py::arg("threads"), py::arg("device"),
          "Per-row downsampling of a C-ordered dense array to target totals.");
    m.def("thin_per_gene_csr", &thin_per_gene_csr, py::arg("indptr"), py::arg("indices"),
          py::arg("data"), py::arg("n_rows"), py::arg("n_cols"), py::arg("row_offset"),
          py::arg("fraction"), py::arg("seed"), py::arg("keep_zeros"), py::arg("threads"),
          "Per-gene thinning of a whole CSR matrix: gene j keeps floor(T_j * fraction) UMIs.");
    m.def("per_gene_block_totals", &per_gene_block_totals, py::arg("indptr"), py::arg("indices"),
          py::arg("data"), py::arg("n_rows"), py::arg("n_cols"), py::arg("row_offset"),
          py::arg("block_bits"),
          "Gene totals of a CSR chunk per aligned block of 2^block_bits rows (pass one).");
    m.def("per_gene_block_takes", &per_gene_block_takes, py::arg("totals"),
          py::arg("first_block"), py::arg("block_bits"), py::arg("fraction"), py::arg("seed"),
          py::arg("threads"), "Each block's per-gene takes from the block totals of a matrix.");
    m.def("thin_per_gene_blocks", &thin_per_gene_blocks, py::arg("indptr"), py::arg("indices"),
          py::arg("data"), py::arg("n_rows"), py::arg("n_cols"), py::arg("row_offset"),
          py::arg("takes"), py::arg("block_bits"), py::arg("seed"), py::arg("keep_zeros"),
          py::arg("threads"), "Per-gene thinning of an aligned CSR chunk given its block takes.");
    m.def("kth_neighbor_distance", &kth_neighbor_distance, py::arg("points"), py::arg("k"),
          py::arg("threads"),
          "Max-norm distance from each point to its k-th nearest other point (exact).");
    m.def("count_within", &count_within, py::arg("points"), py::arg("radii"), py::arg("threads"),
          "Number of other points strictly closer than radii[i] to point i, max-norm (exact).");
    m.def(
        "check_fractions", [](const std::vector<double>& fractions) { nested_plans(fractions); },
        py::arg("fractions"),
        "Raise ValueError unless fractions are 1 to 64 values in [0, 1], strictly decreasing "
        "(the check every thinning kernel makes; for callers that check before reading data).");
    m.def(
        "check_targets",
        [](const py::array_t<int64_t, py::array::c_style>& targets, int64_t n_rows) {
            targets_from(targets, n_rows);
        },
        py::arg("targets"), py::arg("n_rows"),
        "Raise ValueError unless targets are a scalar or one value per row, all >= 0 (the "
        "check every downsampling kernel makes).");
    m.def("build_config", &build_config, "How this extension was built and what it sees.");
    m.def(
        "resolve_device", [](const std::string& device) { return device_name(resolve_device(device)); },
        py::arg("device"),
        "The device the kernels run on for device='auto', 'cpu' or 'cuda': 'cpu' or 'cuda'. "
        "ValueError for another string; RuntimeError saying why for 'cuda' when CUDA cannot be "
        "used.");
    m.def("thin_entries_reference", &thin_entries_reference, py::arg("counts"), py::arg("rows"),
          py::arg("cols"), py::arg("fractions"), py::arg("seed"),
          "The per-entry thinning kernel (the GPU code path) run entry by entry on the CPU.");
    m.def(
        "philox4x32_10",
        [](std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
            const Philox4 r = philox4x32_10(Philox4{{ctr[0], ctr[1], ctr[2], ctr[3]}}, key[0], key[1]);
            return std::array<uint32_t, 4>{r.v[0], r.v[1], r.v[2], r.v[3]};
        },
        py::arg("counter"), py::arg("key"), "One Philox4x32-10 block (for known-answer tests).");
}
