// The CUDA feature plan: the same parameter sets as the CPU plans (cpp/include/mlu), executed
// on device memory for a batch of signals, on the caller's stream.
//
// One execute() frames, windows and transforms every signal once (cuFFT, batched, in chunks
// of signals so the workspace stays bounded) and feeds every requested output from that pass;
// what needs a maximum over the whole batch (top_db, the tuning estimate, contrast's dB) runs
// after the last chunk. The filter banks are built on the host by the CPU code (the mel bank
// comes in dense from Python's cached bank and is compressed by mlu::make_sparse_rows; the
// chroma bank is mlu::chroma_filterbank), so both backends apply the same weights.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels.hpp"

namespace mlu::cuda {

// Bytes of workspace the library's memory pool keeps mapped between calls (2 GiB).
constexpr std::uint64_t kWorkspaceKeep = std::uint64_t{2} << 30;

// The stream-ordered memory pool every plan's workspace comes from on `device`: the library's
// own (created on first use, for the life of the process), which keeps up to kWorkspaceKeep
// bytes mapped when the stream synchronises. The device's default pool unmaps everything at each
// synchronisation, so every call paid for mapping its workspace again (about 1 ms for a batch of
// 512 x 30 s on an H200). Allocations past what is free trim the pool and retry once.
cudaMemPool_t workspace_pool(int device);

struct PlanConfig {
  int device = 0;
  // STFT
  std::size_t n_fft = 2048, hop = 512;
  std::vector<float> window;   // n_fft values (zero-padded, centred, by the caller)
  bool center = true;          // zero padding ("constant")
  bool hann_shortcut = false;  // the window is the periodic Hann of n_fft (applied as 3 taps)
  // n_fft 2048: frame, window and transform inside the frame-tile kernel (no cuFFT, no
  // spectrum in device memory); other sizes use cuFFT whatever this says
  bool fused = false;
  double sr = 22050.0;
  // mel: dense (n_mels, bins) float32 basis, applied to |X|^mel_power
  std::vector<float> mel_basis;
  std::size_t n_mels = 0;
  float mel_power = 2.0f;
  // power_to_db of the mel energies
  float amin = 1e-10f, ref_db = 0.0f, top_db = 80.0f;  // top_db < 0: none
  // MFCC: (n_mfcc, n_mels) matrix, liftering folded in
  std::vector<float> dct;
  std::size_t n_mfcc = 0;
  // deltas: width coefficients each (x[t - h + j] weights), empty: none
  std::vector<double> delta1, delta2;
  // spectral features on the magnitude
  std::vector<double> freq;  // bins values
  float roll_percent = 0.85f;
  double bandwidth_p = 2.0;
  bool bandwidth_norm = true;
  double flatness_amin = 1e-10, flatness_power = 2.0;
  std::vector<int> contrast_bands;  // n_bands x (begin, end, quantile_bins)
  bool contrast_linear = false;
  // chroma_stft: tuning NaN means estimated on the device (piptrack + pitch_tuning)
  std::size_t n_chroma = 12;
  double tuning = 0.0;
  double ctroct = 5.0, octwidth = 2.0, chroma_norm = 2.0;
  bool base_c = true;
  double pip_fmin = 150.0, pip_fmax = 4000.0;
  float pip_threshold = 0.1f;
  // onset strength
  std::size_t onset_lag = 1;
  // zero-crossing rate and RMS
  std::size_t frame_length = 2048, temporal_hop = 512;
  bool temporal_center = true;
  float zcr_threshold = 1e-10f;
  bool zero_pos = true;
  // bytes of per-chunk workspace the plan aims for (signals are processed in chunks)
  std::size_t workspace_limit = std::size_t{1} << 30;
};

// A batch of signals in device memory: channels rows of n samples (strides in elements).
struct SignalView {
  const void* data = nullptr;
  bool f64 = false;
  std::size_t channels = 0, n = 0;
  std::int64_t stride_c = 0, stride_n = 1;
  int device = 0;
};

// Device pointers of the requested outputs (null: not wanted), shapes (channels, rows, frames).
struct PlanOutputs {
  void* stft = nullptr;       // complex64, rows = bins
  float* spectrum = nullptr;  // |X|^spectrum_power, rows = bins
  float spectrum_power = 1.0f;
  float* mel = nullptr;     // rows = n_mels
  float* mel_db = nullptr;  // power_to_db(mel), rows = n_mels
  float* mfcc = nullptr;    // rows = n_mfcc
  float* mfcc_delta = nullptr;
  float* mfcc_delta2 = nullptr;
  double* centroid = nullptr;  // rows = 1
  double* bandwidth = nullptr;
  double* rolloff = nullptr;
  float* flatness = nullptr;
  float* flux = nullptr;
  double* contrast = nullptr;  // rows = n_bands
  float* chroma = nullptr;     // rows = n_chroma
  float* onset = nullptr;      // rows = 1, mean over bands
  float* onset_median = nullptr;
  double* zcr = nullptr;  // rows = 1, temporal frames
  float* rms = nullptr;
};

struct RunInfo {
  double tuning = 0.0;
  bool tuning_estimated = false, tuning_empty = false;
  std::size_t chunks = 0, chunk_channels = 0;
  std::size_t workspace_bytes = 0;  // device memory this call allocated (peak)
};

class FeaturePlan {
 public:
  explicit FeaturePlan(PlanConfig config);
  ~FeaturePlan();
  FeaturePlan(const FeaturePlan&) = delete;
  FeaturePlan& operator=(const FeaturePlan&) = delete;

  const PlanConfig& config() const noexcept { return cfg_; }
  std::size_t bins() const noexcept { return cfg_.n_fft / 2 + 1; }
  // whether execute() takes the fused path (config.fused and n_fft 2048)
  bool fused() const noexcept { return fused_; }
  std::size_t n_bands() const noexcept { return cfg_.contrast_bands.size() / 3; }
  // librosa's frame counts (ParameterError when the signal is too short).
  std::size_t frames(std::size_t n) const;
  std::size_t temporal_frames(std::size_t n) const;
  // librosa.onset.onset_strength's leading zeros and output length for `frames` STFT frames.
  std::size_t onset_pad() const;
  std::size_t onset_frames(std::size_t frames) const;
  // Device bytes execute() would allocate for this batch (whole-batch buffers + one chunk).
  std::size_t workspace_bytes(std::size_t channels, std::size_t n, const PlanOutputs& out) const;

  RunInfo execute(const SignalView& signal, const PlanOutputs& out, Stream stream);

 private:
  struct Layout;
  Layout layout(std::size_t channels, std::size_t n, const PlanOutputs& out) const;
  void* fft_plan(std::size_t batch, std::size_t idist, std::size_t* work_bytes);
  void free_tables() noexcept;

  PlanConfig cfg_;
  // persistent device tables
  float* d_window_ = nullptr;
  int* d_mel_start_ = nullptr;
  int* d_mel_offset_ = nullptr;
  float* d_mel_weights_ = nullptr;
  double* d_freq_ = nullptr;
  float* d_dct_ = nullptr;
  double* d_delta1_ = nullptr;
  double* d_delta2_ = nullptr;
  int* d_bands_ = nullptr;
  float* d_chroma_bank_ = nullptr;
  void* d_twiddles_ = nullptr;  // fused path: n_fft complex64 W_nfft^j
  bool fused_ = false;
  double chroma_bank_tuning_ = 0.0;
  bool chroma_bank_ready_ = false;
  int pip_lo_ = 0, pip_hi_ = 0;

  std::mutex lock_;  // cuFFT plans and the chroma bank are shared by concurrent calls
  std::map<std::pair<std::size_t, std::size_t>, std::pair<void*, std::size_t>> fft_plans_;
};

}  // namespace mlu::cuda
