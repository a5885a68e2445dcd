// Spectral and temporal features, librosa 0.11 compatible. Spectral features read a magnitude
// spectrogram S laid out (channels, bins, frames), C-contiguous, as the STFT plans write it, and
// write one value per frame: (channels, frames). Every function runs on the default pool.
#pragma once

#include <cstddef>
#include <vector>

namespace mlu {

struct SpectrogramView {
  std::size_t channels = 0, bins = 0, frames = 0;
};

// sum_k f_k S_k / sum_k S_k (0 for a silent frame).
template <typename T>
void spectral_centroid(const T* S, SpectrogramView v, const double* freq, double* out);

// (sum_k w_k |f_k - c_t|^p)^(1/p), w = S normalised per frame (norm=true) or S itself.
template <typename T>
void spectral_bandwidth(const T* S, SpectrogramView v, const double* freq, const double* centroid,
                        double p, bool norm, double* out);

// The smallest f_k whose cumulative energy (a float-T running sum, as numpy's cumsum) reaches
// roll_percent of the frame's total.
template <typename T>
void spectral_rolloff(const T* S, SpectrogramView v, const double* freq, double roll_percent,
                      double* out);

// exp(mean log max(amin, S^power)) / mean max(amin, S^power).
template <typename T>
void spectral_flatness(const T* S, SpectrogramView v, double amin, double power, T* out);

// ||max(0, S_t - S_{t-1})||_2 per frame; the first frame is 0.
template <typename T>
void spectral_flux(const T* S, SpectrogramView v, T* out);

// One band of spectral_contrast: bins [begin, end) and the number of bins averaged at each end.
struct ContrastBand {
  std::size_t begin, end, quantile_bins;
};
// peak and valley: (channels, bands, frames) float64 means of the largest and smallest bins.
template <typename T>
void spectral_contrast(const T* S, SpectrogramView v, const std::vector<ContrastBand>& bands,
                       double* peak, double* valley);

// Framing of raw samples as librosa.util.frame after optional centring: frame t covers
// [t*hop - pad, t*hop - pad + frame_length) with pad = frame_length/2 when centred.
struct FramingView {
  std::size_t channels = 0, n = 0, frame_length = 0, hop = 0;
  bool center = true;
  std::size_t frames() const;
};

// Zero crossings per frame / frame_length with edge padding; |x| <= threshold counts as 0,
// and 0 is positive when zero_pos (librosa.feature.zero_crossing_rate).
template <typename T>
void zero_crossing_rate(const T* y, FramingView f, double threshold, bool zero_pos, double* out);

// Zero-padded frames: rms = sqrt(mean x^2) and energy = sum x^2 (either may be null).
template <typename T>
void frame_rms_energy(const T* y, FramingView f, T* rms, T* energy);

}  // namespace mlu
