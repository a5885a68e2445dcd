// FeaturePlan for Python: a plan is built from a dict of host tables (numpy arrays computed by
// ml_utilities.gpu._spec with the CPU code) and executed on device pointers that Python
// checked and allocated (ml_utilities.gpu._arrays).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "feature_plan.hpp"
#include "mlu/error.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace mlu::cuda::bindings {

namespace {

template <typename T>
std::vector<T> vector_of(const py::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return {};
  auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(d[key]);
  require(static_cast<bool>(a), std::string(key) + " must be an array");
  return std::vector<T>(a.data(), a.data() + a.size());
}

template <typename T>
void read(const py::dict& d, const char* key, T& value) {
  if (d.contains(key) && !d[key].is_none()) value = d[key].cast<T>();
}

PlanConfig config_from(const py::dict& d) {
  PlanConfig c;
  read(d, "device", c.device);
  read(d, "n_fft", c.n_fft);
  read(d, "hop_length", c.hop);
  c.window = vector_of<float>(d, "window");
  read(d, "center", c.center);
  read(d, "hann_shortcut", c.hann_shortcut);
  read(d, "fused", c.fused);
  read(d, "sr", c.sr);
  c.mel_basis = vector_of<float>(d, "mel_basis");
  read(d, "n_mels", c.n_mels);
  read(d, "mel_power", c.mel_power);
  read(d, "amin", c.amin);
  read(d, "ref_db", c.ref_db);
  read(d, "top_db", c.top_db);
  c.dct = vector_of<float>(d, "dct");
  read(d, "n_mfcc", c.n_mfcc);
  c.delta1 = vector_of<double>(d, "delta1");
  c.delta2 = vector_of<double>(d, "delta2");
  c.freq = vector_of<double>(d, "freq");
  read(d, "roll_percent", c.roll_percent);
  read(d, "bandwidth_p", c.bandwidth_p);
  read(d, "bandwidth_norm", c.bandwidth_norm);
  read(d, "flatness_amin", c.flatness_amin);
  read(d, "flatness_power", c.flatness_power);
  c.contrast_bands = vector_of<int>(d, "contrast_bands");
  read(d, "contrast_linear", c.contrast_linear);
  read(d, "n_chroma", c.n_chroma);
  c.tuning = std::nan("");
  read(d, "tuning", c.tuning);
  read(d, "ctroct", c.ctroct);
  read(d, "octwidth", c.octwidth);
  read(d, "chroma_norm", c.chroma_norm);
  read(d, "base_c", c.base_c);
  read(d, "pip_fmin", c.pip_fmin);
  read(d, "pip_fmax", c.pip_fmax);
  read(d, "pip_threshold", c.pip_threshold);
  read(d, "onset_lag", c.onset_lag);
  read(d, "frame_length", c.frame_length);
  read(d, "temporal_hop", c.temporal_hop);
  read(d, "temporal_center", c.temporal_center);
  read(d, "zcr_threshold", c.zcr_threshold);
  read(d, "zero_pos", c.zero_pos);
  read(d, "workspace_limit", c.workspace_limit);
  return c;
}

template <typename T>
T* pointer(const py::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return nullptr;
  const auto p = d[key].cast<std::uintptr_t>();
  require(p != 0, std::string("output '") + key + "' has a null device pointer");
  return reinterpret_cast<T*>(p);
}

PlanOutputs outputs_from(const py::dict& d) {
  static const char* known[] = {
      "stft",        "spectrum", "spectrum_power", "mel",     "mel_db",   "mfcc", "mfcc_delta",
      "mfcc_delta2", "centroid", "bandwidth",      "rolloff", "flatness", "flux", "contrast",
      "chroma",      "onset",    "onset_median",   "zcr",     "rms"};
  for (auto item : d) {
    const auto key = item.first.cast<std::string>();
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    require(ok, "unknown CUDA plan output '" + key + "'");
  }
  PlanOutputs o;
  o.stft = pointer<void>(d, "stft");
  o.spectrum = pointer<float>(d, "spectrum");
  read(d, "spectrum_power", o.spectrum_power);
  o.mel = pointer<float>(d, "mel");
  o.mel_db = pointer<float>(d, "mel_db");
  o.mfcc = pointer<float>(d, "mfcc");
  o.mfcc_delta = pointer<float>(d, "mfcc_delta");
  o.mfcc_delta2 = pointer<float>(d, "mfcc_delta2");
  o.centroid = pointer<double>(d, "centroid");
  o.bandwidth = pointer<double>(d, "bandwidth");
  o.rolloff = pointer<double>(d, "rolloff");
  o.flatness = pointer<float>(d, "flatness");
  o.flux = pointer<float>(d, "flux");
  o.contrast = pointer<double>(d, "contrast");
  o.chroma = pointer<float>(d, "chroma");
  o.onset = pointer<float>(d, "onset");
  o.onset_median = pointer<float>(d, "onset_median");
  o.zcr = pointer<double>(d, "zcr");
  o.rms = pointer<float>(d, "rms");
  return o;
}

SignalView signal_from(const py::dict& d) {
  SignalView s;
  s.data = reinterpret_cast<const void*>(d["ptr"].cast<std::uintptr_t>());
  s.f64 = d["f64"].cast<bool>();
  s.channels = d["channels"].cast<std::size_t>();
  s.n = d["n"].cast<std::size_t>();
  s.stride_c = d["stride_c"].cast<std::int64_t>();
  s.stride_n = d["stride_n"].cast<std::int64_t>();
  s.device = d["device"].cast<int>();
  return s;
}

}  // namespace

void register_plan(py::module_& m) {
  py::class_<FeaturePlan, std::shared_ptr<FeaturePlan>>(m, "FeaturePlan")
      .def(py::init([](const py::dict& config) {
             PlanConfig c = config_from(config);
             py::gil_scoped_release release;
             return std::make_shared<FeaturePlan>(std::move(c));
           }),
           py::arg("config"),
           "Build the plan's device tables on config['device'] from host arrays.")
      .def_property_readonly("bins", &FeaturePlan::bins)
      .def_property_readonly("n_bands", &FeaturePlan::n_bands)
      .def_property_readonly("fused", &FeaturePlan::fused,
                             "Whether calls take the fused path (no cuFFT, n_fft 2048).")
      .def_property_readonly("device", [](const FeaturePlan& p) { return p.config().device; })
      .def("frames", &FeaturePlan::frames, py::arg("n"))
      .def("temporal_frames", &FeaturePlan::temporal_frames, py::arg("n"))
      .def("onset_frames", &FeaturePlan::onset_frames, py::arg("frames"))
      .def(
          "workspace_bytes",
          [](const FeaturePlan& p, std::size_t channels, std::size_t n, const py::dict& outputs) {
            return p.workspace_bytes(channels, n, outputs_from(outputs));
          },
          py::arg("channels"), py::arg("n"), py::arg("outputs"),
          "Device bytes one execute() allocates besides the outputs (cuFFT's work area aside).")
      .def(
          "execute",
          [](FeaturePlan& p, const py::dict& signal, const py::dict& outputs,
             std::uintptr_t stream) {
            const SignalView s = signal_from(signal);
            const PlanOutputs o = outputs_from(outputs);
            RunInfo info;
            {
              py::gil_scoped_release release;
              info = p.execute(s, o, reinterpret_cast<Stream>(stream));
            }
            py::dict d;
            d["tuning"] = info.tuning;
            d["tuning_estimated"] = info.tuning_estimated;
            d["tuning_empty"] = info.tuning_empty;
            d["chunks"] = info.chunks;
            d["chunk_channels"] = info.chunk_channels;
            d["workspace_bytes"] = info.workspace_bytes;
            return d;
          },
          py::arg("signal"), py::arg("outputs"), py::arg("stream") = 0,
          "Run the plan on a batch (device pointers) on `stream`; returns what it decided.");
}

}  // namespace mlu::cuda::bindings
