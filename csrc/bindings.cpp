// pybind11 module videobert._C: the CPU kernels. Arguments are raw addresses (tensor.data_ptr())
// and sizes, never torch types, so this builds without torch. Python checks shapes and dtypes
// (videobert/ops/*.py); kernels run with the GIL released.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "hkmeans/hkmeans.h"

namespace py = pybind11;

template <typename T>
static T* ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "videobert CPU kernels (C++/OpenMP), called through videobert.ops";
  m.def(
      "hkmeans_assign",
      [](std::uintptr_t x, int64_t n, int64_t d, int64_t ldx, std::uintptr_t centroids,
         std::uintptr_t norms, int levels, int branching, std::uintptr_t path, int num_threads) {
        videobert::hkmeans_assign_cpu(ptr<const float>(x), n, d, ldx, ptr<const float>(centroids),
                                      ptr<const float>(norms), levels, branching, ptr<int64_t>(path),
                                      num_threads);
      },
      py::arg("x"), py::arg("n"), py::arg("d"), py::arg("ldx"), py::arg("centroids"),
      py::arg("norms"), py::arg("levels"), py::arg("branching"), py::arg("path"),
      py::arg("num_threads"), py::call_guard<py::gil_scoped_release>());
  m.def(
      "centroid_update",
      [](std::uintptr_t x, int64_t n, int64_t d, int64_t ldx, std::uintptr_t labels, int64_t k,
         std::uintptr_t sums, std::uintptr_t counts, int num_threads) {
        videobert::centroid_update_cpu(ptr<const float>(x), n, d, ldx, ptr<const int64_t>(labels), k,
                                       ptr<double>(sums), ptr<int64_t>(counts), num_threads);
      },
      py::arg("x"), py::arg("n"), py::arg("d"), py::arg("ldx"), py::arg("labels"), py::arg("k"),
      py::arg("sums"), py::arg("counts"), py::arg("num_threads"),
      py::call_guard<py::gil_scoped_release>());
  m.def("hkmeans_cpu_isa", &videobert::hkmeans_cpu_isa,
        "the SIMD variant of the assignment kernel chosen for this CPU at load time");
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
