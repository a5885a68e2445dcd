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
}
