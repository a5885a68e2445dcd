// STFT plans: one framing and one FFT per frame feed every output a caller asks for
// (complex STFT, |X|^p spectrum, mel energies), written straight into caller-owned arrays.
#pragma once

#include <complex>
#include <cstddef>
#include <memory>
#include <vector>

#include "mlu/fft.hpp"
#include "mlu/filters.hpp"

namespace mlu {

template <typename T>
class StftPlan {
 public:
  // `window` has n_fft values (a shorter window is zero-padded, centred, by the caller).
  StftPlan(std::size_t n_fft, std::size_t hop, const std::vector<double>& window);

  std::size_t n_fft() const noexcept { return n_fft_; }
  std::size_t hop() const noexcept { return hop_; }
  std::size_t n_bins() const noexcept { return n_fft_ / 2 + 1; }
  std::size_t pad() const noexcept { return n_fft_ / 2; }
  // librosa's frame count for a signal of n samples.
  std::size_t n_frames(std::size_t n, bool center) const;

  // Rows of `n` samples, one per channel. With `center`, frame t starts at t*hop - n_fft/2:
  // samples before 0 come from `head` (channels x pad, the last value next to y[0]) and those
  // past the end from `tail` (channels x pad); a null head or tail means zeros.
  struct Signal {
    const T* y = nullptr;
    std::size_t channels = 0, n = 0;
    bool center = true;
    const T* head = nullptr;
    const T* tail = nullptr;
  };

  // Every non-null output is (channels, rows, frames), C-contiguous.
  struct Outputs {
    std::complex<T>* stft = nullptr;  // rows = n_bins
    T* spectrum = nullptr;            // |X|^spectrum_power, rows = n_bins
    double spectrum_power = 2.0;
    T* mel = nullptr;  // mel_bank applied to |X|^mel_power, rows = mel_bank->n_rows
    const SparseRows<T>* mel_bank = nullptr;
    double mel_power = 2.0;
  };

  // Runs on the default thread pool; throws ParameterError on inconsistent arguments.
  void execute(const Signal& signal, const Outputs& out) const;

 private:
  std::size_t n_fft_, hop_;
  std::vector<T> window_;
  std::unique_ptr<RealFft<T>> fft_;
};

// In place: x = 10 log10(max(amin, x)) - ref_db, then, if top_db >= 0, floored at
// max(x) - top_db with the maximum over all `count` values (librosa's power_to_db).
template <typename T>
void power_to_db_inplace(T* x, std::size_t count, double amin, double ref_db, double top_db);

// out[c, i, t] = sum_j M[i, j] in[c, j, t] for M (n_out, n_in) row-major, then, when lifter > 0,
// times 1 + lifter/2 sin(pi (i + 1) / lifter) (librosa's MFCC liftering).
template <typename T>
void apply_dct(const T* in, T* out, std::size_t channels, std::size_t n_in, std::size_t frames,
               const std::vector<double>& matrix, std::size_t n_out, double lifter);

extern template class StftPlan<float>;
extern template class StftPlan<double>;

}  // namespace mlu
