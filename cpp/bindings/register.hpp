// One register function per area; module.cpp calls them all.
#pragma once

#include <pybind11/pybind11.h>

namespace mlu::bindings {

void register_info(pybind11::module_& m);      // build_info, threads, SIMD level, errors
void register_fft(pybind11::module_& m);       // _core.fft
void register_spectrum(pybind11::module_& m);  // _core.spectrum: STFT plans and executors
void register_filters(pybind11::module_& m);   // _core.filters: windows, mel, DCT, delta
void register_features(pybind11::module_& m);  // _core.features: spectral and temporal features
void register_rhythm(pybind11::module_& m);    // _core.rhythm: onsets, tempo, beats
void register_harmonic(pybind11::module_& m);  // _core.harmonic: tuning, chroma, CQT, HPSS
void register_batcher(pybind11::module_& m);   // _core.serving: the dynamic batcher

}  // namespace mlu::bindings
