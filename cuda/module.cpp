// The _cuda extension: imported lazily by ml_utilities when a device array arrives.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>

#include "kernels.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m, py::mod_gil_not_used()) {
  m.doc() = "ml_utilities CUDA backend (private)";
  m.def("device_count", &mlu::cuda::device_count,
        "Visible CUDA devices; RuntimeError when no driver or device is usable.");
  m.def(
      "power_spectrum_c64",
      [](std::uintptr_t in, std::uintptr_t out, std::size_t count, std::uintptr_t stream) {
        if (count > 0 && (in == 0 || out == 0)) throw std::invalid_argument("null device pointer");
        py::gil_scoped_release release;
        mlu::cuda::power_spectrum_c64(reinterpret_cast<const void*>(in),
                                      reinterpret_cast<float*>(out), count, stream);
      },
      py::arg("in_ptr"), py::arg("out_ptr"), py::arg("count"), py::arg("stream") = 0,
      "out = |in|^2 for `count` complex64 values at device pointers, on `stream`.");
}
