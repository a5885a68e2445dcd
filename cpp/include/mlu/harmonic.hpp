// Harmonic features with librosa 0.11 parity: piptrack (tuning), the Ellis chroma filter bank,
// bank application with per-frame normalisation, HPSS median filters and soft masks, and the
// sparse per-octave filter products of the multirate constant-Q transform.
#pragma once

#include <complex>
#include <cstddef>
#include <vector>

namespace mlu {

// A (channels, bins, frames) C-contiguous spectrogram.
struct HarmonicView {
  std::size_t channels = 0, bins = 0, frames = 0;
};

struct PiptrackParams {
  double sr = 22050.0;
  std::size_t n_fft = 2048;
  double fmin = 150.0, fmax = 4000.0;  // clipped to [0, sr/2] inside, as librosa does
  double threshold = 0.1;              // used when ref is null: ref = threshold * max per frame
};

// librosa.piptrack on |S| (absolute values are taken on load): `pitches` and `mags` (same shape as
// S) are filled, zero where there is no peak. `ref` is null (threshold * frame max, rounded to T as
// numpy does) or (channels, frames) per-frame thresholds.
template <typename T>
void piptrack(const T* S, HarmonicView v, const PiptrackParams& p, const T* ref, T* pitches,
              T* mags);

// The same peaks, only those with a positive pitch, as flat lists (order unspecified):
// what estimate_tuning needs, without the two full-size arrays.
template <typename T>
void piptrack_peaks(const T* S, HarmonicView v, const PiptrackParams& p, const T* ref,
                    std::vector<T>& pitches, std::vector<T>& mags);

// librosa.filters.chroma as a row-major (n_chroma, 1 + n_fft/2) double matrix (the caller
// rounds it to the requested dtype). octwidth <= 0 means None; norm 0 means None, else the
// p-norm of each column (p may be +inf). Throws ParameterError on bad sizes.
std::vector<double> chroma_filterbank(double sr, std::size_t n_fft, std::size_t n_chroma,
                                      double tuning, double ctroct, double octwidth, double norm,
                                      bool base_c);

// out[c, r, t] = sum_k W[r, k] S[c, k, t] (W row-major (rows, bins)), then each frame divided
// by its `norm`-norm over r (0: none; +inf: max |.|; p > 0) unless that norm is below the
// smallest normal of T (librosa.util.normalize with fill=None). `threshold` >= 0: values
// below it are zeroed before normalising (chroma_cqt), < 0 for none.
template <typename T>
void apply_bank_normalize(const T* S, HarmonicView v, const T* W, std::size_t rows,
                          double threshold, double norm, T* out);

// scipy.ndimage.median_filter with mode="reflect" along the frames (axis -1) or the bins
// (axis -2) of every channel, window `size` >= 1 (rank size // 2, origin 0).
template <typename T>
void median_filter_frames(const T* S, HarmonicView v, std::size_t size, T* out);
template <typename T>
void median_filter_bins(const T* S, HarmonicView v, std::size_t size, T* out);

// librosa.util.softmask(X, X_ref * margin, power, split_zeros) for a finite power > 0, in place
// of `out` (same element count as X). X and X_ref non-negative.
template <typename T>
void softmask(const T* X, const T* X_ref, std::size_t count, double margin, double power,
              bool split_zeros, T* out);

// sum(S * softmask(X, X_ref * margin, power, split_zeros)) in double, without forming the
// mask: the energy HPSS assigns to X's side (harmonicity). Same preconditions as softmask.
template <typename T>
double softmask_weighted_sum(const T* S, const T* X, const T* X_ref, std::size_t count,
                             double margin, double power, bool split_zeros);

// One channel's sparse filter product: out (rows, frames) = B (rows, n_bins) @ D (n_bins, frames)
// with B in CSR form (indptr rows + 1, indices, values) and D complex, row-major.
template <typename T>
void sparse_complex_product(const std::size_t* indptr, const std::size_t* indices,
                            const std::complex<T>* values, std::size_t rows,
                            const std::complex<T>* D, std::size_t n_bins, std::size_t frames,
                            std::size_t channels, std::complex<T>* out);

}  // namespace mlu
