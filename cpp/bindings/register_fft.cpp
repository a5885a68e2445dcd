#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <complex>
#include <vector>

#include "arrays.hpp"
#include "mlu/fft.hpp"
#include "mlu/thread_pool.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace mlu::bindings {

namespace {

// rfft of each row of a (rows, n) array: the FFT engine on its own, for tests and benchmarks.
template <typename T>
py::array rfft_rows(py::array x) {
  require(x.ndim() == 2, "rfft_rows expects a 2-D array, got shape " + shape_str(x));
  const std::size_t rows = static_cast<std::size_t>(x.shape(0));
  const std::size_t n = static_cast<std::size_t>(x.shape(1));
  const T* in = checked_data<T>(x, {x.shape(0), x.shape(1)}, "x", false);
  const RealFft<T> fft(n);
  const std::size_t bins = fft.n_bins(), L = fft.lanes();
  py::array_t<std::complex<T>> out({rows, bins});
  std::complex<T>* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    const std::size_t blocks = (rows + L - 1) / L;
    default_pool()->parallel_for(blocks, [&](std::size_t b0, std::size_t b1) {
      std::vector<T> buf(n * L), re(bins * L), im(bins * L), scratch(fft.scratch_size());
      for (std::size_t b = b0; b < b1; ++b) {
        const std::size_t r0 = b * L, valid = std::min(L, rows - r0);
        std::fill(buf.begin(), buf.end(), T(0));
        for (std::size_t l = 0; l < valid; ++l) {
          for (std::size_t j = 0; j < n; ++j) buf[j * L + l] = in[(r0 + l) * n + j];
        }
        fft.forward(buf.data(), re.data(), im.data(), scratch.data());
        for (std::size_t l = 0; l < valid; ++l) {
          for (std::size_t k = 0; k < bins; ++k) {
            o[(r0 + l) * bins + k] = std::complex<T>(re[k * L + l], im[k * L + l]);
          }
        }
      }
    });
  }
  return std::move(out);
}

}  // namespace

void register_fft(py::module_& m) {
  m.def(
      "rfft_rows",
      [](py::array x) -> py::array {
        if (py::dtype::of<float>().is(x.dtype())) return rfft_rows<float>(x);
        return rfft_rows<double>(x);
      },
      py::arg("x"),
      "Real FFT of each row of a C-contiguous (rows, n) float32/float64 array -> (rows, n//2+1).");
  m.def(
      "lanes",
      [](const std::string& dtype, std::size_t n) {
        if (dtype == "float32") return RealFft<float>(n).lanes();
        return RealFft<double>(n).lanes();
      },
      py::arg("dtype"), py::arg("n") = 2, "Frames per SIMD block for this dtype at the active level.");
}

}  // namespace mlu::bindings
