// Filter banks and transform matrices, built exactly as librosa 0.11 / scipy build them.
#pragma once

#include <cstddef>
#include <vector>

namespace mlu {

// librosa.mel_frequencies / hz_to_mel / mel_to_hz (Slaney when htk=false).
double hz_to_mel(double hz, bool htk);
double mel_to_hz(double mel, bool htk);
std::vector<double> mel_frequencies(std::size_t n_mels, double fmin, double fmax, bool htk);
// librosa.fft_frequencies: k * sr / n_fft for k in [0, n_fft/2].
std::vector<double> fft_frequencies(double sr, std::size_t n_fft);

// How each mel filter is normalised, as librosa.filters.mel's `norm`.
struct MelNorm {
  enum Kind { none, slaney, lp } kind = slaney;
  double p = 0.0;  // for lp: util.normalize(norm=p) along frequency (p may be inf)
};

// librosa.filters.mel as a dense row-major (n_mels, 1 + n_fft/2) matrix, rounded to T at the
// same steps as librosa (float32 by default). Throws ParameterError on bad sizes or frequencies.
template <typename T>
std::vector<T> mel_filterbank(double sr, std::size_t n_fft, std::size_t n_mels, double fmin,
                              double fmax, bool htk, MelNorm norm);

// librosa.filters.mel's "Empty filters detected" condition on a bank from mel_filterbank: some
// filter whose lower edge is above 0 Hz has no positive weight (a NaN counts as empty, as
// numpy's max propagates it). The caller turns it into the UserWarning.
template <typename T>
bool mel_has_empty_filters(const std::vector<T>& weights, std::size_t n_mels, std::size_t n_fft,
                           double fmin, double fmax, bool htk);

// A filter bank kept sparse: row i has weights[offset[i] .. offset[i+1]) for the bins
// start[i], start[i]+1, ... (one contiguous run of non-zero weights per row).
template <typename T>
struct SparseRows {
  std::size_t n_rows = 0, n_cols = 0;
  std::vector<std::size_t> start, offset;
  std::vector<T> weights;
};
template <typename T>
SparseRows<T> make_sparse_rows(const std::vector<T>& dense, std::size_t n_rows,
                               std::size_t n_cols);

// The (n_out, n_in) row-major matrix M with M @ x == scipy.fft.dct(x, type, norm)[:n_out],
// type in {1, 2, 3}, ortho for norm="ortho" (else norm=None). Throws ParameterError.
std::vector<double> dct_matrix(int type, std::size_t n_out, std::size_t n_in, bool ortho);

}  // namespace mlu
