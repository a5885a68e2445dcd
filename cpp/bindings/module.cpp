// The _core extension: creates the submodules and fills each from its register file.
#include <pybind11/pybind11.h>

#include "register.hpp"

PYBIND11_MODULE(_core, m, pybind11::mod_gil_not_used()) {
  m.doc() = "ml_utilities compiled core (private: use ml_utilities.audio)";
  mlu::bindings::register_info(m);
  auto fft = m.def_submodule("fft", "Batched real FFT plans");
  mlu::bindings::register_fft(fft);
  auto spectrum = m.def_submodule("spectrum", "STFT plans: spectra, mel, MFCC");
  mlu::bindings::register_spectrum(spectrum);
  auto filters = m.def_submodule("filters", "Windows, filter banks, DCT, deltas");
  mlu::bindings::register_filters(filters);
  auto features = m.def_submodule("features", "Spectral and temporal features");
  mlu::bindings::register_features(features);
  auto rhythm = m.def_submodule("rhythm", "Onset strength, peak picking, tempo, beat tracking");
  mlu::bindings::register_rhythm(rhythm);
  auto harmonic = m.def_submodule("harmonic", "Tuning, chroma, CQT, HPSS");
  mlu::bindings::register_harmonic(harmonic);
  auto serving = m.def_submodule("serving", "Dynamic batcher of the prediction service");
  mlu::bindings::register_batcher(serving);
}
