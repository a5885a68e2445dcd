// _core.harmonic: piptrack, chroma bank, bank application, HPSS filters and masks, CQT products.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <complex>
#include <cstdint>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "mlu/harmonic.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace mlu::bindings {

namespace {

using Shape = std::vector<py::ssize_t>;

template <typename T>
HarmonicView spec_view(py::array& S, const T*& data, const char* name = "S") {
  require(S.ndim() == 3,
          std::string(name) + " must be (channels, bins, frames), got " + shape_str(S));
  data = checked_data<T>(S, {S.shape(0), S.shape(1), S.shape(2)}, name, false);
  return {static_cast<std::size_t>(S.shape(0)), static_cast<std::size_t>(S.shape(1)),
          static_cast<std::size_t>(S.shape(2))};
}

Shape shape_of(const HarmonicView& v) {
  return {static_cast<py::ssize_t>(v.channels), static_cast<py::ssize_t>(v.bins),
          static_cast<py::ssize_t>(v.frames)};
}

template <typename T>
const T* optional_ref(py::object ref, const HarmonicView& v) {
  if (ref.is_none()) return nullptr;
  auto arr = ref.cast<py::array>();
  return checked_data<T>(arr,
                         {static_cast<py::ssize_t>(v.channels), static_cast<py::ssize_t>(v.frames)},
                         "ref", false);
}

template <typename T>
void bind_typed(py::module_& m) {
  m.def("piptrack", [](py::array S, double sr, std::size_t n_fft, double fmin, double fmax,
                       double threshold, py::object ref) {
    const T* s;
    auto v = spec_view<T>(S, s);
    const T* r = optional_ref<T>(ref, v);
    py::array_t<T> pitches(shape_of(v)), mags(shape_of(v));
    T* po = pitches.mutable_data();
    T* mo = mags.mutable_data();
    PiptrackParams p{sr, n_fft, fmin, fmax, threshold};
    {
      py::gil_scoped_release release;
      piptrack<T>(s, v, p, r, po, mo);
    }
    return py::make_tuple(pitches, mags);
  });
  m.def("piptrack_peaks", [](py::array S, double sr, std::size_t n_fft, double fmin, double fmax,
                             double threshold, py::object ref) {
    const T* s;
    auto v = spec_view<T>(S, s);
    const T* r = optional_ref<T>(ref, v);
    std::vector<T> pv, mv;
    PiptrackParams p{sr, n_fft, fmin, fmax, threshold};
    {
      py::gil_scoped_release release;
      piptrack_peaks<T>(s, v, p, r, pv, mv);
    }
    py::array_t<T> pitches(static_cast<py::ssize_t>(pv.size()));
    py::array_t<T> mags(static_cast<py::ssize_t>(mv.size()));
    std::copy(pv.begin(), pv.end(), pitches.mutable_data());
    std::copy(mv.begin(), mv.end(), mags.mutable_data());
    return py::make_tuple(pitches, mags);
  });
  m.def("apply_bank", [](py::array S, py::array W, double threshold, double norm) {
    const T* s;
    auto v = spec_view<T>(S, s);
    require(W.ndim() == 2, "W must be (rows, bins), got " + shape_str(W));
    const T* w = checked_data<T>(W, {W.shape(0), static_cast<py::ssize_t>(v.bins)}, "W", false);
    const auto rows = static_cast<std::size_t>(W.shape(0));
    py::array_t<T> out(Shape{static_cast<py::ssize_t>(v.channels), W.shape(0),
                             static_cast<py::ssize_t>(v.frames)});
    T* o = out.mutable_data();
    {
      py::gil_scoped_release release;
      apply_bank_normalize<T>(s, v, w, rows, threshold, norm, o);
    }
    return out;
  });
  m.def("median_filters", [](py::array S, std::size_t win_harm, std::size_t win_perc) {
    const T* s;
    auto v = spec_view<T>(S, s);
    require(win_harm >= 1 && win_perc >= 1, "kernel sizes must be positive");
    py::array_t<T> harm(shape_of(v)), perc(shape_of(v));
    T* h = harm.mutable_data();
    T* p = perc.mutable_data();
    {
      py::gil_scoped_release release;
      median_filter_frames<T>(s, v, win_harm, h);
      median_filter_bins<T>(s, v, win_perc, p);
    }
    return py::make_tuple(harm, perc);
  });
  m.def("softmask",
        [](py::array X, py::array X_ref, double margin, double power, bool split_zeros) {
          const T* x;
          auto v = spec_view<T>(X, x, "X");
          const T* xr = checked_data<T>(X_ref, shape_of(v), "X_ref", false);
          py::array_t<T> out(shape_of(v));
          T* o = out.mutable_data();
          {
            py::gil_scoped_release release;
            softmask<T>(x, xr, v.channels * v.bins * v.frames, margin, power, split_zeros, o);
          }
          return out;
        });
  m.def("softmask_sum", [](py::array S, py::array X, py::array X_ref, double margin, double power,
                           bool split_zeros) {
    const T* s;
    auto v = spec_view<T>(S, s, "S");
    const T* x = checked_data<T>(X, shape_of(v), "X", false);
    const T* xr = checked_data<T>(X_ref, shape_of(v), "X_ref", false);
    py::gil_scoped_release release;
    return softmask_weighted_sum<T>(s, x, xr, v.channels * v.bins * v.frames, margin, power,
                                    split_zeros);
  });
  m.def("sparse_product", [](py::array indptr, py::array indices, py::array values, py::array D) {
    require(D.ndim() == 3, "D must be (channels, bins, frames), got " + shape_str(D));
    const auto* d =
        checked_data<std::complex<T>>(D, {D.shape(0), D.shape(1), D.shape(2)}, "D", false);
    require(indptr.ndim() == 1 && indptr.shape(0) >= 1, "indptr must be 1-D and non-empty");
    const auto* ip = checked_data<std::int64_t>(indptr, {indptr.shape(0)}, "indptr", false);
    const auto rows = static_cast<std::size_t>(indptr.shape(0) - 1);
    require(indices.ndim() == 1 && values.ndim() == 1 && indices.shape(0) == values.shape(0),
            "indices and values must be 1-D of the same length");
    const auto* ix = checked_data<std::int64_t>(indices, {indices.shape(0)}, "indices", false);
    const auto* vals = checked_data<std::complex<T>>(values, {values.shape(0)}, "values", false);
    const auto nnz = static_cast<std::size_t>(indices.shape(0));
    require(ip[0] == 0 && ip[rows] >= 0 && static_cast<std::size_t>(ip[rows]) == nnz,
            "indptr does not match the number of stored values");
    std::vector<std::size_t> ptr(rows + 1), idx(nnz);
    for (std::size_t r = 0; r <= rows; ++r) {
      require(ip[r] >= 0, "indptr must be non-negative");
      ptr[r] = static_cast<std::size_t>(ip[r]);
    }
    for (std::size_t j = 0; j < nnz; ++j) {
      require(ix[j] >= 0, "indices must be non-negative");
      idx[j] = static_cast<std::size_t>(ix[j]);
    }
    const auto channels = static_cast<std::size_t>(D.shape(0));
    const auto bins = static_cast<std::size_t>(D.shape(1));
    const auto frames = static_cast<std::size_t>(D.shape(2));
    py::array_t<std::complex<T>> out(Shape{D.shape(0), static_cast<py::ssize_t>(rows), D.shape(2)});
    auto* o = out.mutable_data();
    {
      py::gil_scoped_release release;
      sparse_complex_product<T>(ptr.data(), idx.data(), vals, rows, d, bins, frames, channels, o);
    }
    return out;
  });
}

}  // namespace

void register_harmonic(py::module_& m) {
  auto f32 = m.def_submodule("f32", "float32 / complex64 kernels");
  auto f64 = m.def_submodule("f64", "float64 / complex128 kernels");
  bind_typed<float>(f32);
  bind_typed<double>(f64);
  m.def("chroma_filterbank", [](double sr, std::size_t n_fft, std::size_t n_chroma, double tuning,
                                double ctroct, double octwidth, double norm, bool base_c) {
    std::vector<double> w;
    {
      py::gil_scoped_release release;
      w = chroma_filterbank(sr, n_fft, n_chroma, tuning, ctroct, octwidth, norm, base_c);
    }
    py::array_t<double> out(
        Shape{static_cast<py::ssize_t>(n_chroma), static_cast<py::ssize_t>(n_fft / 2 + 1)});
    std::copy(w.begin(), w.end(), out.mutable_data());
    return out;
  });
}

}  // namespace mlu::bindings
