// Rhythm features, librosa 0.11 exact: spectral-flux onset strength, peak picking, the
// autocorrelation tempogram, and Ellis' dynamic-programming beat tracker.
//
// Every function works on C-contiguous rows (one per channel) and writes into caller-owned
// outputs. Where librosa's reference is numba code with float32 accumulators, the arithmetic
// here follows the same types and order so that the results are the same bits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mlu {

// How onset_flux combines the rectified differences of every band of a frame.
enum class OnsetAggregate { mean, median };

// Onset strength of librosa.onset.onset_strength_multi (one channel spanning every band):
// out[c, pad + t] = aggregate_b max(0, S[c, b, t + lag] - ref[c, b, t]), zeros before `pad`.
// S, ref: (channels, bands, frames); ref may be S itself. out: (channels, out_frames) with
// out_frames <= pad + frames - lag (values past that are not written: the caller trims).
// The mean sums bands in order in T and divides in double, as numpy's mean over axis -2.
template <typename T>
void onset_flux(const T* S, const T* ref, std::size_t channels, std::size_t bands,
                std::size_t frames, std::size_t lag, OnsetAggregate aggregate, std::size_t pad,
                T* out, std::size_t out_frames);

// scipy.ndimage.maximum_filter1d(S, size, axis=-2) with mode "reflect": S and out are
// (channels, bands, frames); out must not alias S.
template <typename T>
void max_filter_bands(const T* S, std::size_t channels, std::size_t bands, std::size_t frames,
                      std::size_t size, T* out);

// scipy.signal.lfilter([1, -1], [1, -0.99], x) along each row, in double (DC removal).
template <typename T>
void detrend_rows(const T* x, std::size_t rows, std::size_t n, double* out);

// librosa.util.peak_pick on each row of x (rows, n): peaks is (rows, n), 1 where a peak is.
// Integer parameters as librosa's (already ceiled, non-negative; post_max, post_avg > 0);
// delta is a float32 in librosa's kernel.
template <typename T>
void peak_pick(const T* x, std::size_t rows, std::size_t n, std::uint32_t pre_max,
               std::uint32_t post_max, std::uint32_t pre_avg, std::uint32_t post_avg, float delta,
               std::uint32_t wait, std::uint8_t* peaks);

// librosa.feature.tempogram (mode "autocorrelation", norm=inf) from an onset envelope that the
// caller already padded (linear ramp, as librosa) when centring: frame t covers
// padded[t : t + win] weighted by `window` (win values). out: (channels, win, n_frames) float64,
// with `normalize`, each frame's autocorrelation divided by its largest magnitude (left alone
// below tiny). Autocorrelations use a batched real FFT of the next power of two >= 2 win - 1.
template <typename T>
void autocorrelation_tempogram(const T* padded, std::size_t channels, std::size_t padded_len,
                               std::size_t n_frames, const double* window, std::size_t win,
                               bool normalize, double* out);

// The time average of that tempogram (norm=inf), without storing it: out (channels, win) is
// mean_t ac_t / max|ac_t|. By linearity the per-frame power spectra, each divided by its frame's
// energy (the lag-0 autocorrelation, its largest value), are summed and transformed back once.
// Frames are summed in a fixed order whatever the thread count, so results are reproducible.
template <typename T>
void autocorrelation_tempogram_mean(const T* padded, std::size_t channels, std::size_t padded_len,
                                    std::size_t n_frames, const double* window, std::size_t win,
                                    double* out);

// The beat tracker's core for one row: the Gaussian local score of the (already normalised)
// onset envelope, the dynamic programme, the last beat, the backtracking and the trimming of
// librosa.beat.__beat_tracker. frames_per_beat has 1 value (static tempo) or n (time-varying).
// beats: n bytes, 1 on a beat.
template <typename T>
void beat_track_row(const T* onsets, std::size_t n, const T* frames_per_beat, std::size_t n_fpb,
                    float tightness, bool trim, std::uint8_t* beats);

}  // namespace mlu
