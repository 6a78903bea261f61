// pybind11 module videobert._C_cuda: the CUDA kernels. Like videobert._C it takes raw device
// addresses, sizes and the CUDA stream handle (torch.cuda.current_stream().cuda_stream), never
// torch types. The CUDA runtime is linked statically, so importing this module works on machines
// without a GPU; only launching needs one.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "hkmeans/hkmeans_cuda.h"

namespace py = pybind11;

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "videobert CUDA kernels, called through videobert.ops";
  m.attr("FLOAT32") = static_cast<int>(videobert::kFloat32);
  m.attr("FLOAT16") = static_cast<int>(videobert::kFloat16);
  m.attr("BFLOAT16") = static_cast<int>(videobert::kBFloat16);
  m.def(
      "hkmeans_assign",
      [](std::uintptr_t x, int dtype, int64_t n, int64_t d, int64_t ldx, std::uintptr_t centroids,
         std::uintptr_t norms, int levels, int branching, std::uintptr_t path, std::uintptr_t stream) {
        videobert::hkmeans_assign_cuda(reinterpret_cast<const void*>(x), dtype, n, d, ldx,
                                       reinterpret_cast<const float*>(centroids),
                                       reinterpret_cast<const float*>(norms), levels, branching,
                                       reinterpret_cast<int64_t*>(path), reinterpret_cast<void*>(stream));
      },
      py::arg("x"), py::arg("dtype"), py::arg("n"), py::arg("d"), py::arg("ldx"), py::arg("centroids"),
      py::arg("norms"), py::arg("levels"), py::arg("branching"), py::arg("path"), py::arg("stream"),
      py::call_guard<py::gil_scoped_release>());
}
