// CUDA kernels of the backend, callable from host C++ without CUDA headers.
//
// Every launcher runs asynchronously on `stream` (a cudaStream_t passed as void*; null is the
// legacy default stream), checks its launch, and throws DeviceError (or DeviceMemoryError)
// with the CUDA message. Pointers are device pointers unless a comment says otherwise; every
// array is C-contiguous. Arithmetic follows the CPU plans (cpp/src) formula by formula, in
// float32 where they use float32 and in double where they use double.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace mlu::cuda {

// A CUDA call failed (launch, runtime, cuFFT): becomes ml_utilities.gpu.DeviceError.
class DeviceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The device ran out of memory: becomes ml_utilities.gpu.DeviceMemoryError (a MemoryError).
class DeviceMemoryError : public DeviceError {
 public:
  using DeviceError::DeviceError;
};

using Stream = void*;

// Number of visible CUDA devices; throws DeviceError with the CUDA message on failure
// (no driver, no device).
int device_count();

// out[i] = re[i]^2 + im[i]^2 for interleaved complex64 input.
void power_spectrum_c64(const void* in, float* out, std::size_t count, std::uintptr_t stream);

// ------------------------------------------------------------------ framing (kernels_stft.cu)

// rows of `row` floats: out[c * row + offset + i] = y[c, i] (converted to float32) for i < n,
// zeros elsewhere. y has `channels` rows, strides in elements (any sign is not supported: both
// must be >= 0), float32 or float64.
void prepare_signal(const void* y, bool f64, std::size_t channels, std::size_t n,
                    std::int64_t stride_c, std::int64_t stride_n, float* out, std::size_t row,
                    std::size_t offset, Stream stream);

// frames[(c * frames + t) * n_fft + j] = buf[c * row + t * hop + j] * window[j].
void frame_windowed(const float* buf, std::size_t channels, std::size_t row, std::size_t frames,
                    std::size_t n_fft, std::size_t hop, const float* window, float* out,
                    Stream stream);

// What one pass of the frame-tile kernel reads and writes. Output pointers are null when the
// output is not wanted and point at the chunk's first channel otherwise: (channels, rows,
// frames) each.
struct FrameFeatureArgs {
  const void* spec = nullptr;  // complex64, row (c * spec_rows + t) has `bins` values
  std::size_t channels = 0, bins = 0, frames = 0, spec_rows = 0, n_fft = 0;
  bool hann_shortcut = false;  // apply the periodic Hann window as 3 taps on the spectrum

  void* stft = nullptr;  // complex64
  float* spectrum = nullptr;
  float spectrum_power = 1.0f;

  float* mel = nullptr;
  const int* mel_start = nullptr;   // first bin of each row
  const int* mel_offset = nullptr;  // n_mels + 1 offsets into mel_weights
  const float* mel_weights = nullptr;
  std::size_t n_mels = 0;
  float mel_power = 2.0f;
  unsigned int* mel_max_bits = nullptr;  // atomic max of the mel energies (float bits)

  const double* freq = nullptr;  // bins frequencies
  double* centroid = nullptr;
  double* bandwidth = nullptr;
  double bandwidth_p = 2.0;
  bool bandwidth_norm = true;
  double* rolloff = nullptr;
  float roll_percent = 0.85f;
  float* flatness = nullptr;
  double flatness_amin = 1e-10, flatness_power = 2.0;
  float* flux = nullptr;

  double* contrast_peak = nullptr;  // (channels, n_bands, frames)
  double* contrast_valley = nullptr;
  const int* contrast_bands = nullptr;  // n_bands x (begin, end, quantile_bins)
  std::size_t n_bands = 0;
  unsigned long long* contrast_max_bits = nullptr;  // [2]: atomic max of peak, valley

  const float* chroma_bank = nullptr;  // (n_chroma, bins)
  std::size_t n_chroma = 0;
  float* chroma = nullptr;

  // The fused path (spec == nullptr, n_fft 2048): the frames are read straight from the
  // signal (rows of n samples, strides in elements, zero padding of `pad` before), windowed
  // and transformed by one warp each in shared memory; nothing is written between.
  const void* signal = nullptr;
  bool signal_f64 = false;
  std::int64_t stride_c = 0, stride_n = 1;
  std::size_t n = 0, pad = 0, hop = 0;
  const float* window = nullptr;   // n_fft values
  const void* twiddles = nullptr;  // n_fft complex64: W_nfft^j

  // piptrack peaks on the power spectrum (estimate_tuning): (pitch, mag) pairs appended.
  float* peaks = nullptr;  // 2 * peak_capacity floats
  unsigned long long* peak_count = nullptr;
  unsigned long long peak_capacity = 0;
  int pip_lo = 0, pip_hi = 0;  // bins [lo, hi) searched
  float pip_threshold = 0.1f;
  double sr = 22050.0;
};

// The frame-tile kernel after cuFFT (args.spec set) or fused with its own FFT (args.spec null,
// n_fft 2048); throws ParameterError when the device lacks the shared memory it needs.
void frame_features(const FrameFeatureArgs& args, Stream stream);

// n_fft values the fused path supports.
constexpr std::size_t kFusedFft = 2048;

// ------------------------------------------------------------------ after the STFT
// (kernels_post.cu)

// dB of the mel energies as librosa.power_to_db (amin, ref_db, top_db < 0 for none, the
// maximum over everything from *max_bits), then M (n_out, n_mels) applied per frame.
void mfcc_from_mel(const float* mel, std::size_t channels, std::size_t n_mels, std::size_t frames,
                   const unsigned int* max_bits, float amin, float ref_db, float top_db,
                   const float* dct, std::size_t n_out, float* out, Stream stream);

// librosa.power_to_db of the mel energies into `out` (same shape).
void mel_to_db(const float* mel, std::size_t count, const unsigned int* max_bits, float amin,
               float ref_db, float top_db, float* out, Stream stream);

// Onset strength from the dB'd mel energies (computed on the fly): out[c, i] = 0 for i < pad,
// else aggregate_b max(0, db[b, t + lag] - db[b, t]) with t = i - pad (mean or median).
void onset_from_mel(const float* mel, std::size_t channels, std::size_t n_mels, std::size_t frames,
                    const unsigned int* max_bits, float amin, float ref_db, float top_db,
                    std::size_t lag, std::size_t pad, bool median, float* out,
                    std::size_t out_frames, Stream stream);

// Savitzky-Golay derivative along each row: y[t] = sum_j w[j] x[clamp(t) + j - h], with t
// clamped to [h, len - 1 - h] (scipy's "interp" edges for polyorder == deriv).
void savgol_rows(const float* x, float* y, std::size_t rows, std::size_t len, const double* w,
                 std::size_t width, Stream stream);

// spectral_contrast's dB step: out = power_to_db(peak) - power_to_db(valley) (top_db 80 over
// each whole array, from max_bits[0] and max_bits[1]) or peak - valley when linear.
void contrast_finalize(const double* peak, const double* valley, std::size_t count,
                       const unsigned long long* max_bits, bool linear, double* out, Stream stream);

// Zero-crossing rate (edge padding, as librosa) and RMS (zero padding) per frame of the
// float32 rows prepared for the STFT (sample i of channel c at buf[c * row + offset + i]).
void temporal_features(const float* buf, std::size_t channels, std::size_t row, std::size_t offset,
                       std::size_t n, std::size_t frame_length, std::size_t hop, bool center,
                       std::size_t frames, float zcr_threshold, bool zero_pos, double* zcr,
                       float* rms, Stream stream);

// estimate_tuning after piptrack: the median of the peak magnitudes (np.median), then the
// histogram of pitch residuals (np.histogram over 100 bins of [-0.5, 0.5]) of the peaks at
// least that high. counts: 100 unsigned ints (zeroed here). scratch: tuning_scratch_bytes().
std::size_t tuning_scratch_bytes();
void tuning_histogram(const float* peaks, const unsigned long long* peak_count,
                      unsigned long long capacity, int bins_per_octave, void* scratch,
                      unsigned int* counts, Stream stream);

// chroma after the bank (raw), normalised per frame by its largest magnitude (norm=inf) in
// place; done inside frame_features when chroma is requested.

}  // namespace mlu::cuda
