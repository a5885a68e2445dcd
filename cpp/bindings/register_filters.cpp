// _core.filters: windows, mel filter banks, DCT matrices and the Savitzky-Golay delta.
// Arguments are converted and checked here; the algorithms live in cpp/src.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "mlu/delta.hpp"
#include "mlu/error.hpp"
#include "mlu/filters.hpp"
#include "mlu/window.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace mlu::bindings {

namespace {

// A new C-contiguous numpy array holding `values` with `shape`.
template <typename T>
py::array to_numpy(const std::vector<T>& values, std::vector<py::ssize_t> shape) {
  py::array_t<T> out(shape);
  std::copy(values.begin(), values.end(), out.mutable_data());
  return std::move(out);
}

std::size_t checked_size(py::ssize_t v, const char* name) {
  require(v >= 0, std::string(name) + " must be non-negative, got " + std::to_string(v));
  return static_cast<std::size_t>(v);
}

template <typename T>
py::tuple mel_impl(double sr, std::size_t n_fft, std::size_t n_mels, double fmin, double fmax,
                   bool htk, MelNorm norm) {
  std::vector<T> w;
  bool empty = false;
  {
    py::gil_scoped_release release;
    w = mel_filterbank<T>(sr, n_fft, n_mels, fmin, fmax, htk, norm);
    empty = mel_has_empty_filters<T>(w, n_mels, n_fft, fmin, fmax, htk);
  }
  const auto rows = static_cast<py::ssize_t>(n_mels);
  const auto cols = static_cast<py::ssize_t>(n_fft / 2 + 1);
  return py::make_tuple(to_numpy(w, {rows, cols}), empty);
}

template <typename T>
void delta_impl(py::array& x, py::array& out, std::size_t width, int order) {
  require(x.ndim() == 2, "delta expects a 2-D (rows, length) array, got shape " + shape_str(x));
  const std::vector<py::ssize_t> shape{x.shape(0), x.shape(1)};
  const T* in = checked_data<T>(x, shape, "x", false);
  T* o = checked_data<T>(out, shape, "out", true);
  const auto rows = static_cast<std::size_t>(shape[0]);
  const auto length = static_cast<std::size_t>(shape[1]);
  py::gil_scoped_release release;
  savgol_delta<T>(in, o, rows, length, width, order);
}

}  // namespace

void register_filters(py::module_& m) {
  m.def(
      "get_window",
      [](const std::string& name, const std::vector<double>& params, py::ssize_t n, bool fftbins) {
        const std::size_t size = checked_size(n, "n");
        std::vector<double> w;
        {
          py::gil_scoped_release release;
          w = get_window(name, params, size, fftbins);
        }
        return to_numpy(w, {static_cast<py::ssize_t>(w.size())});
      },
      py::arg("name"), py::arg("params"), py::arg("n"), py::arg("fftbins") = true,
      "scipy.signal.get_window((name, *params), n, fftbins) as a float64 array. For "
      "'exponential', a NaN center stands for center=None.");

  m.def(
      "mel",
      [](double sr, py::ssize_t n_fft, py::ssize_t n_mels, double fmin, double fmax, bool htk,
         const std::string& norm_kind, double p, const std::string& dtype) {
        MelNorm norm;
        if (norm_kind == "none") {
          norm.kind = MelNorm::none;
        } else if (norm_kind == "slaney") {
          norm.kind = MelNorm::slaney;
        } else if (norm_kind == "lp") {
          norm.kind = MelNorm::lp;
          norm.p = p;
        } else {
          throw ParameterError("norm_kind must be 'none', 'slaney' or 'lp', got '" + norm_kind +
                               "'");
        }
        const std::size_t nf = checked_size(n_fft, "n_fft");
        const std::size_t nm = checked_size(n_mels, "n_mels");
        if (dtype == "float32") return mel_impl<float>(sr, nf, nm, fmin, fmax, htk, norm);
        if (dtype == "float64") return mel_impl<double>(sr, nf, nm, fmin, fmax, htk, norm);
        throw ParameterError("mel dtype must be 'float32' or 'float64', got '" + dtype + "'");
      },
      py::arg("sr"), py::arg("n_fft"), py::arg("n_mels"), py::arg("fmin"), py::arg("fmax"),
      py::arg("htk"), py::arg("norm_kind"), py::arg("p"), py::arg("dtype"),
      "librosa.filters.mel as ((n_mels, 1 + n_fft//2) array, empty_filters flag). norm_kind: "
      "'none', 'slaney' or 'lp' (with p, which may be +-inf or 0).");

  m.def(
      "dct_matrix",
      [](int type, py::ssize_t n_out, py::ssize_t n_in, bool ortho) {
        const std::size_t no = checked_size(n_out, "n_out");
        const std::size_t ni = checked_size(n_in, "n_in");
        std::vector<double> mat;
        {
          py::gil_scoped_release release;
          mat = dct_matrix(type, no, ni, ortho);
        }
        return to_numpy(mat, {n_out, n_in});
      },
      py::arg("type"), py::arg("n_out"), py::arg("n_in"), py::arg("ortho"),
      "(n_out, n_in) float64 M with M @ x == scipy.fft.dct(x, type, norm)[:n_out].");

  m.def(
      "delta",
      [](py::object x_obj, py::object out_obj, py::ssize_t width, int order) {
        require(py::isinstance<py::array>(x_obj) && py::isinstance<py::array>(out_obj),
                "delta expects numpy arrays for x and out");
        auto x = py::reinterpret_borrow<py::array>(x_obj);
        auto out = py::reinterpret_borrow<py::array>(out_obj);
        require(width >= 0, "width must be an odd integer >= 3");
        const auto w = static_cast<std::size_t>(width);
        if (py::dtype::of<float>().is(x.dtype())) {
          delta_impl<float>(x, out, w, order);
        } else if (py::dtype::of<double>().is(x.dtype())) {
          delta_impl<double>(x, out, w, order);
        } else {
          throw ParameterError("delta expects float32 or float64 data, got " +
                               std::string(py::str(x.dtype())));
        }
      },
      py::arg("x"), py::arg("out"), py::arg("width"), py::arg("order"),
      "Savitzky-Golay derivative (librosa.feature.delta, mode='interp') of each row of a "
      "C-contiguous (rows, length) float32/float64 array, written into `out` (same shape and "
      "dtype, not overlapping x). Nothing is copied; the GIL is released.");
}

}  // namespace mlu::bindings
