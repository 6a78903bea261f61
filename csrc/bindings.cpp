// pybind11 module videobert._C: the CPU kernels. Arguments are raw addresses (tensor.data_ptr())
// and sizes, never torch types, so this builds without torch. Python checks shapes and dtypes
// (videobert/ops/*.py); kernels run with the GIL released.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "cpu_dispatch.h"
#include "hkmeans/hkmeans.h"
#include "video/frame_resize.h"

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
  m.def(
      "frame_resize",
      [](std::uintptr_t y, int64_t y_stride, int y_width, int y_height, std::uintptr_t u,
         std::uintptr_t v, int64_t uv_stride, int uv_width, int uv_height, int resize_h,
         int resize_w, int top, int left, int out_h, int out_w, std::uintptr_t affine,
         std::uintptr_t norm, std::uintptr_t out, int64_t out_stride) {
        const videobert::Plane luma{ptr<const uint8_t>(y), y_stride, y_width, y_height};
        const videobert::Plane cb{ptr<const uint8_t>(u), uv_stride, uv_width, uv_height};
        const videobert::Plane cr{ptr<const uint8_t>(v), uv_stride, uv_width, uv_height};
        if (norm == 0)  // uint8 levels
          videobert::frame_resize_cpu(luma, cb, cr, resize_h, resize_w, top, left, out_h, out_w,
                                      ptr<const float>(affine), ptr<uint8_t>(out), out_stride);
        else  // float32, normalised
          videobert::frame_resize_normalized_cpu(luma, cb, cr, resize_h, resize_w, top, left, out_h,
                                                 out_w, ptr<const float>(affine), ptr<const float>(norm),
                                                 ptr<float>(out), out_stride);
      },
      py::arg("y"), py::arg("y_stride"), py::arg("y_width"), py::arg("y_height"), py::arg("u"),
      py::arg("v"), py::arg("uv_stride"), py::arg("uv_width"), py::arg("uv_height"),
      py::arg("resize_h"), py::arg("resize_w"), py::arg("top"), py::arg("left"), py::arg("out_h"),
      py::arg("out_w"), py::arg("affine"), py::arg("norm"), py::arg("out"), py::arg("out_stride"),
      py::call_guard<py::gil_scoped_release>());
  m.def("cpu_isa", [] { return std::string(videobert::isa_name(videobert::selected_isa())); },
        "the ISA variant the CPU kernels run now: this CPU's best, or the one VIDEOBERT_ISA forces "
        "(ValueError when it names an unknown variant or one this CPU lacks)");
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
