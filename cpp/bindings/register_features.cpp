#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <tuple>
#include <vector>

#include "arrays.hpp"
#include "mlu/spectral.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace mlu::bindings {

namespace {

using Shape = std::vector<py::ssize_t>;

// A (channels, bins, frames) magnitude spectrogram and a (bins,) float64 frequency axis.
template <typename T>
SpectrogramView spectrogram_view(py::array& S, const T*& data) {
  require(S.ndim() == 3, "spectrogram must be (channels, bins, frames), got " + shape_str(S));
  data = checked_data<T>(S, {S.shape(0), S.shape(1), S.shape(2)}, "S", false);
  return {static_cast<std::size_t>(S.shape(0)), static_cast<std::size_t>(S.shape(1)),
          static_cast<std::size_t>(S.shape(2))};
}

const double* freq_data(py::array& freq, std::size_t bins) {
  return checked_data<double>(freq, {static_cast<py::ssize_t>(bins)}, "freq", false);
}

template <typename T>
py::array_t<double> per_frame(const SpectrogramView& v) {
  return py::array_t<double>({v.channels, v.frames});
}

template <typename T>
void bind_typed(py::module_& m) {
  m.def("spectral_centroid", [](py::array S, py::array freq) {
    const T* s;
    auto v = spectrogram_view<T>(S, s);
    const double* f = freq_data(freq, v.bins);
    auto out = per_frame<T>(v);
    double* o = out.mutable_data();
    {
      py::gil_scoped_release release;
      spectral_centroid<T>(s, v, f, o);
    }
    return out;
  });
  m.def("spectral_bandwidth", [](py::array S, py::array freq, py::array centroid, double p, bool norm) {
    const T* s;
    auto v = spectrogram_view<T>(S, s);
    const double* f = freq_data(freq, v.bins);
    const double* c = checked_data<double>(
        centroid, {static_cast<py::ssize_t>(v.channels), static_cast<py::ssize_t>(v.frames)},
        "centroid", false);
    auto out = per_frame<T>(v);
    double* o = out.mutable_data();
    {
      py::gil_scoped_release release;
      spectral_bandwidth<T>(s, v, f, c, p, norm, o);
    }
    return out;
  });
  m.def("spectral_rolloff", [](py::array S, py::array freq, double roll_percent) {
    const T* s;
    auto v = spectrogram_view<T>(S, s);
    const double* f = freq_data(freq, v.bins);
    auto out = per_frame<T>(v);
    double* o = out.mutable_data();
    {
      py::gil_scoped_release release;
      spectral_rolloff<T>(s, v, f, roll_percent, o);
    }
    return out;
  });
  m.def("spectral_flatness", [](py::array S, double amin, double power) {
    const T* s;
    auto v = spectrogram_view<T>(S, s);
    py::array_t<T> out({v.channels, v.frames});
    T* o = out.mutable_data();
    {
      py::gil_scoped_release release;
      spectral_flatness<T>(s, v, amin, power, o);
    }
    return out;
  });
  m.def("spectral_flux", [](py::array S) {
    const T* s;
    auto v = spectrogram_view<T>(S, s);
    py::array_t<T> out({v.channels, v.frames});
    T* o = out.mutable_data();
    {
      py::gil_scoped_release release;
      spectral_flux<T>(s, v, o);
    }
    return out;
  });
  m.def("spectral_contrast",
        [](py::array S, const std::vector<std::tuple<std::size_t, std::size_t, std::size_t>>& spec) {
          const T* s;
          auto v = spectrogram_view<T>(S, s);
          std::vector<ContrastBand> bands;
          for (const auto& [b, e, q] : spec) bands.push_back({b, e, q});
          py::array_t<double> peak({v.channels, bands.size(), v.frames});
          py::array_t<double> valley({v.channels, bands.size(), v.frames});
          double* p = peak.mutable_data();
          double* q = valley.mutable_data();
          {
            py::gil_scoped_release release;
            spectral_contrast<T>(s, v, bands, p, q);
          }
          return py::make_tuple(peak, valley);
        });
  m.def("zero_crossing_rate", [](py::array y, std::size_t frame_length, std::size_t hop, bool center,
                                 double threshold, bool zero_pos) {
    require(y.ndim() == 2, "signal must be (channels, n), got " + shape_str(y));
    const T* x = checked_data<T>(y, {y.shape(0), y.shape(1)}, "y", false);
    FramingView f{static_cast<std::size_t>(y.shape(0)), static_cast<std::size_t>(y.shape(1)),
                  frame_length, hop, center};
    py::array_t<double> out({f.channels, f.frames()});
    double* o = out.mutable_data();
    {
      py::gil_scoped_release release;
      zero_crossing_rate<T>(x, f, threshold, zero_pos, o);
    }
    return out;
  });
  m.def("rms_energy", [](py::array y, std::size_t frame_length, std::size_t hop, bool center) {
    require(y.ndim() == 2, "signal must be (channels, n), got " + shape_str(y));
    const T* x = checked_data<T>(y, {y.shape(0), y.shape(1)}, "y", false);
    FramingView f{static_cast<std::size_t>(y.shape(0)), static_cast<std::size_t>(y.shape(1)),
                  frame_length, hop, center};
    py::array_t<T> rms({f.channels, f.frames()}), energy({f.channels, f.frames()});
    T* r = rms.mutable_data();
    T* e = energy.mutable_data();
    {
      py::gil_scoped_release release;
      frame_rms_energy<T>(x, f, r, e);
    }
    return py::make_tuple(rms, energy);
  });
}

}  // namespace

void register_features(py::module_& m) {
  auto f32 = m.def_submodule("f32", "float32 inputs");
  auto f64 = m.def_submodule("f64", "float64 inputs");
  bind_typed<float>(f32);
  bind_typed<double>(f64);
}

}  // namespace mlu::bindings
