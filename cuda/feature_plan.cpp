// The CUDA feature plan's host side: tables, layout, chunking, cuFFT, and the order of passes.
#include "feature_plan.hpp"

#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "mlu/error.hpp"
#include "mlu/filters.hpp"
#include "mlu/harmonic.hpp"

namespace mlu::cuda {

namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();
  const std::string message = std::string(what) + ": " + cudaGetErrorString(status);
  if (status == cudaErrorMemoryAllocation) throw DeviceMemoryError(message);
  throw DeviceError(message);
}

const char* cufft_name(cufftResult r) {
  switch (r) {
    case CUFFT_INVALID_PLAN:
      return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED:
      return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_VALUE:
      return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR:
      return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED:
      return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED:
      return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE:
      return "CUFFT_INVALID_SIZE";
    default:
      return "cuFFT error";
  }
}

void check_fft(cufftResult status, const char* what) {
  if (status == CUFFT_SUCCESS) return;
  const std::string message = std::string(what) + ": " + cufft_name(status) + " (" +
                              std::to_string(static_cast<int>(status)) + ")";
  if (status == CUFFT_ALLOC_FAILED) throw DeviceMemoryError(message);
  throw DeviceError(message);
}

// Makes `device` current for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check_cuda(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() {
    int now = previous_;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) (void)cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

template <typename T>
T* upload(const std::vector<T>& host) {
  if (host.empty()) return nullptr;
  void* ptr = nullptr;
  check_cuda(cudaMalloc(&ptr, host.size() * sizeof(T)), "cudaMalloc (plan tables)");
  const cudaError_t status =
      cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  if (status != cudaSuccess) {
    (void)cudaFree(ptr);
    check_cuda(status, "cudaMemcpy (plan tables)");
  }
  return static_cast<T*>(ptr);
}

template <typename T>
void release(T*& ptr) {
  if (ptr != nullptr) (void)cudaFree(ptr);
  ptr = nullptr;
}

constexpr std::size_t kAlign = 256;
std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// One stream-ordered allocation for a call, carved into aligned pieces, freed on the stream
// when the call ends (normally or by an exception).
class Arena {
 public:
  Arena(std::size_t bytes, cudaStream_t stream, std::size_t channels, std::size_t n, int device)
      : stream_(stream) {
    if (bytes == 0) return;
    cudaMemPool_t pool = workspace_pool(device);
    cudaError_t status = cudaMallocFromPoolAsync(&base_, bytes, pool, stream);
    if (status == cudaErrorMemoryAllocation) {
      // memory this pool kept from earlier calls may be what is missing: give it back, retry
      (void)cudaGetLastError();
      (void)cudaStreamSynchronize(stream);
      (void)cudaMemPoolTrimTo(pool, 0);
      status = cudaMallocFromPoolAsync(&base_, bytes, pool, stream);
    }
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      std::size_t free_bytes = 0, total = 0;
      (void)cudaMemGetInfo(&free_bytes, &total);
      throw DeviceMemoryError(
          "the CUDA feature plan needs " + std::to_string(bytes >> 20) +
          " MiB of device workspace for a batch of " + std::to_string(channels) + " signal(s) x " +
          std::to_string(n) + " samples, but only " + std::to_string(free_bytes >> 20) +
          " MiB are free on device " + std::to_string(device) + " (of " +
          std::to_string(total >> 20) + " MiB): split the batch into smaller ones");
    }
    check_cuda(status, "cudaMallocAsync");
  }
  ~Arena() {
    if (base_ != nullptr) (void)cudaFreeAsync(base_, stream_);
  }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  template <typename T>
  T* take(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    T* p = reinterpret_cast<T*>(static_cast<char*>(base_) + used_);
    used_ += aligned(bytes);
    return p;
  }

 private:
  cudaStream_t stream_;
  void* base_ = nullptr;
  std::size_t used_ = 0;
};

struct Needs {
  bool mel, mfcc, contrast, estimate, chroma_pass1, spectral, stft_pass, temporal;
};

Needs needs_of(const PlanConfig& cfg, const PlanOutputs& o) {
  Needs n{};
  n.mfcc = o.mfcc || o.mfcc_delta || o.mfcc_delta2;
  n.mel = o.mel || o.mel_db || n.mfcc || o.onset || o.onset_median;
  n.contrast = o.contrast != nullptr;
  n.estimate = o.chroma != nullptr && std::isnan(cfg.tuning);
  n.chroma_pass1 = o.chroma != nullptr && !n.estimate;
  n.spectral = o.centroid || o.bandwidth || o.rolloff || o.flatness || o.flux;
  n.stft_pass = o.stft || o.spectrum || n.mel || n.spectral || n.contrast || o.chroma;
  n.temporal = o.zcr || o.rms;
  return n;
}

}  // namespace

cudaMemPool_t workspace_pool(int device) {
  static std::mutex lock;
  static std::map<int, cudaMemPool_t> pools;
  std::lock_guard<std::mutex> hold(lock);
  const auto found = pools.find(device);
  if (found != pools.end()) return found->second;
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.handleTypes = cudaMemHandleTypeNone;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  cudaMemPool_t pool = nullptr;
  check_cuda(cudaMemPoolCreate(&pool, &props), "cudaMemPoolCreate");
  std::uint64_t keep = kWorkspaceKeep;
  check_cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep),
             "cudaMemPoolSetAttribute");
  pools.emplace(device, pool);
  return pool;
}

struct FeaturePlan::Layout {
  Needs needs{};
  std::size_t frames = 0, t_frames = 0, row = 0, offset = 0, spec_rows = 0;
  std::size_t chunk = 0, n_chunks = 0;
  std::size_t signal_floats = 0, frame_floats = 0, spec_complex = 0;
  std::size_t mel_floats = 0, mfcc_floats = 0, contrast_doubles = 0;
  unsigned long long peak_capacity = 0;
  std::size_t bank_floats = 0;
  std::size_t bytes_without_fft = 0;
};

FeaturePlan::FeaturePlan(PlanConfig config) : cfg_(std::move(config)) {
  const std::size_t bins = this->bins();
  require(cfg_.n_fft >= 2, "the CUDA backend needs n_fft >= 2, got " + std::to_string(cfg_.n_fft));
  require(cfg_.hop >= 1, "hop_length must be a positive integer");
  require(cfg_.window.size() == cfg_.n_fft, "window has " + std::to_string(cfg_.window.size()) +
                                                " values for n_fft=" + std::to_string(cfg_.n_fft));
  require(!cfg_.hann_shortcut || cfg_.n_fft % 2 == 0, "the Hann shortcut needs an even n_fft");
  require(cfg_.n_mels == 0 || cfg_.mel_basis.size() == cfg_.n_mels * bins,
          "mel basis size does not match (n_mels, 1 + n_fft // 2)");
  require(cfg_.n_mfcc == 0 || cfg_.dct.size() == cfg_.n_mfcc * cfg_.n_mels,
          "DCT matrix size does not match (n_mfcc, n_mels)");
  require(cfg_.freq.empty() || cfg_.freq.size() == bins, "freq must have 1 + n_fft // 2 values");
  require(cfg_.contrast_bands.size() % 3 == 0, "contrast bands come in (begin, end, q) triples");
  for (std::size_t b = 0; b < cfg_.contrast_bands.size(); b += 3) {
    const int begin = cfg_.contrast_bands[b], end = cfg_.contrast_bands[b + 1],
              q = cfg_.contrast_bands[b + 2];
    require(begin >= 0 && end > begin && static_cast<std::size_t>(end) <= bins && q >= 1 &&
                q <= end - begin,
            "invalid contrast band");
  }
  require(cfg_.frame_length >= 1 && cfg_.temporal_hop >= 1,
          "frame_length and hop_length must be positive integers");
  require(cfg_.onset_lag >= 1, "lag must be a positive integer");
  require(cfg_.n_chroma >= 1, "n_chroma must be a positive integer");
  for (const auto* d : {&cfg_.delta1, &cfg_.delta2}) {
    require(d->empty() || (d->size() % 2 == 1 && d->size() >= 3), "delta width must be odd, >= 3");
  }

  // piptrack's bins: fmin <= k * sr / n_fft < fmax (np.fft.rfftfreq's arithmetic)
  const double fmin = std::max(cfg_.pip_fmin, 0.0), fmax = std::min(cfg_.pip_fmax, cfg_.sr / 2.0);
  const double val = 1.0 / (static_cast<double>(cfg_.n_fft) * (1.0 / cfg_.sr));
  pip_lo_ = pip_hi_ = 0;
  bool any = false;
  for (std::size_t k = 0; k < bins; ++k) {
    const double f = static_cast<double>(k) * val;
    if (fmin <= f && f < fmax) {
      if (!any) pip_lo_ = static_cast<int>(k);
      any = true;
      pip_hi_ = static_cast<int>(k) + 1;
    }
  }

  fused_ = cfg_.fused && cfg_.n_fft == kFusedFft;
  DeviceGuard guard(cfg_.device);
  try {
    d_window_ = upload(cfg_.window);
    if (fused_) {
      std::vector<float> tw(2 * cfg_.n_fft);
      for (std::size_t j = 0; j < cfg_.n_fft; ++j) {
        const double angle = -2.0 * 3.14159265358979323846 * static_cast<double>(j) /
                             static_cast<double>(cfg_.n_fft);
        tw[2 * j] = static_cast<float>(std::cos(angle));
        tw[2 * j + 1] = static_cast<float>(std::sin(angle));
      }
      d_twiddles_ = upload(tw);
    }
    if (cfg_.n_mels > 0) {
      const SparseRows<float> sparse = make_sparse_rows(cfg_.mel_basis, cfg_.n_mels, bins);
      std::vector<int> start(sparse.start.begin(), sparse.start.end());
      std::vector<int> offset(sparse.offset.begin(), sparse.offset.end());
      std::vector<float> weights = sparse.weights;
      if (weights.empty()) weights.push_back(0.0f);
      d_mel_start_ = upload(start);
      d_mel_offset_ = upload(offset);
      d_mel_weights_ = upload(weights);
    }
    if (cfg_.freq.empty()) {
      cfg_.freq.resize(bins);
      for (std::size_t k = 0; k < bins; ++k)
        cfg_.freq[k] = static_cast<double>(k) * cfg_.sr / static_cast<double>(cfg_.n_fft);
    }
    d_freq_ = upload(cfg_.freq);
    d_dct_ = upload(cfg_.dct);
    d_delta1_ = upload(cfg_.delta1);
    d_delta2_ = upload(cfg_.delta2);
    d_bands_ = upload(cfg_.contrast_bands);
    if (!std::isnan(cfg_.tuning)) {
      const std::vector<double> bank =
          chroma_filterbank(cfg_.sr, cfg_.n_fft, cfg_.n_chroma, cfg_.tuning, cfg_.ctroct,
                            cfg_.octwidth, cfg_.chroma_norm, cfg_.base_c);
      d_chroma_bank_ = upload(std::vector<float>(bank.begin(), bank.end()));
      chroma_bank_tuning_ = cfg_.tuning;
      chroma_bank_ready_ = true;
    }
  } catch (...) {
    free_tables();
    throw;
  }
}

FeaturePlan::~FeaturePlan() { free_tables(); }

void FeaturePlan::free_tables() noexcept {
  int previous = 0;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != cfg_.device &&
                        cudaSetDevice(cfg_.device) == cudaSuccess;
  release(d_window_);
  release(d_mel_start_);
  release(d_mel_offset_);
  release(d_mel_weights_);
  release(d_freq_);
  release(d_dct_);
  release(d_delta1_);
  release(d_delta2_);
  release(d_bands_);
  release(d_chroma_bank_);
  if (d_twiddles_ != nullptr) (void)cudaFree(d_twiddles_);
  d_twiddles_ = nullptr;
  for (auto& entry : fft_plans_)
    (void)cufftDestroy(
        static_cast<cufftHandle>(reinterpret_cast<std::uintptr_t>(entry.second.first)));
  fft_plans_.clear();
  if (switched) (void)cudaSetDevice(previous);
}

std::size_t FeaturePlan::frames(std::size_t n) const {
  const std::size_t padded = cfg_.center ? n + 2 * (cfg_.n_fft / 2) : n;
  require(
      padded >= cfg_.n_fft,
      "n_fft=" + std::to_string(cfg_.n_fft) +
          " is too large for uncentered analysis of input signal of length=" + std::to_string(n));
  return 1 + (padded - cfg_.n_fft) / cfg_.hop;
}

std::size_t FeaturePlan::onset_pad() const {
  return cfg_.onset_lag + (cfg_.center ? cfg_.n_fft / (2 * cfg_.hop) : 0);
}

std::size_t FeaturePlan::onset_frames(std::size_t frames) const {
  const std::size_t full = onset_pad() + (frames > cfg_.onset_lag ? frames - cfg_.onset_lag : 0);
  return cfg_.center ? std::min(full, frames) : full;
}

std::size_t FeaturePlan::temporal_frames(std::size_t n) const {
  const std::size_t padded = cfg_.temporal_center ? n + 2 * (cfg_.frame_length / 2) : n;
  require(padded >= cfg_.frame_length,
          "Input is too short (n=" + std::to_string(padded) +
              ") for frame_length=" + std::to_string(cfg_.frame_length));
  return 1 + (padded - cfg_.frame_length) / cfg_.temporal_hop;
}

FeaturePlan::Layout FeaturePlan::layout(std::size_t channels, std::size_t n,
                                        const PlanOutputs& out) const {
  Layout L;
  L.needs = needs_of(cfg_, out);
  const Needs& nd = L.needs;
  const std::size_t bins = this->bins(), hop = cfg_.hop, n_fft = cfg_.n_fft;
  require(channels >= 1, "the batch has no signals");
  require(n >= 1, "the CUDA backend needs non-empty signals");
  if (nd.mel) require(cfg_.n_mels > 0, "a mel output was requested from a plan without a mel bank");
  if (nd.mfcc) require(cfg_.n_mfcc > 0, "an MFCC output was requested from a plan without a DCT");
  if (out.mfcc_delta) require(!cfg_.delta1.empty(), "delta output requested without coefficients");
  if (out.mfcc_delta2)
    require(!cfg_.delta2.empty(), "delta2 output requested without coefficients");
  if (nd.contrast) require(n_bands() > 0, "contrast requested from a plan without bands");
  L.frames = nd.stft_pass ? frames(n) : 0;
  L.t_frames = nd.temporal ? temporal_frames(n) : 0;
  if (out.mfcc_delta || out.mfcc_delta2) {
    const std::size_t w = std::max(cfg_.delta1.size(), cfg_.delta2.size());
    require(w <= L.frames, "when applying a delta filter, width=" + std::to_string(w) +
                               " cannot exceed the number of frames " + std::to_string(L.frames));
  }
  L.offset = cfg_.center ? n_fft / 2 : 0;
  std::size_t need = n + 2 * L.offset;
  if (nd.stft_pass) need = std::max(need, (L.frames - 1) * hop + n_fft);
  L.row = (need + hop - 1) / hop * hop;
  L.spec_rows = cfg_.hann_shortcut ? L.row / hop : L.frames;

  // The fused path reads the signal where it is: rows are prepared only for ZCR and RMS.
  const bool cufft_pass = nd.stft_pass && !fused_;
  const bool rows = cufft_pass || nd.temporal;
  std::size_t per_channel = rows ? L.row * sizeof(float) : 0;
  if (cufft_pass) {
    per_channel += L.spec_rows * bins * 2 * sizeof(float);
    if (!cfg_.hann_shortcut) per_channel += L.frames * n_fft * sizeof(float);
  }
  per_channel = std::max<std::size_t>(per_channel, 1);
  std::size_t chunk = std::max<std::size_t>(1, cfg_.workspace_limit / per_channel);
  chunk = std::min({chunk, channels, std::size_t{65535}});
  const std::size_t int_max = static_cast<std::size_t>(std::numeric_limits<int>::max());
  if (cufft_pass) chunk = std::max<std::size_t>(1, std::min(chunk, int_max / L.spec_rows));
  L.chunk = chunk;
  L.n_chunks = (channels + chunk - 1) / chunk;
  L.signal_floats = rows ? chunk * L.row + n_fft : 0;
  if (cufft_pass) {
    L.spec_complex = chunk * L.spec_rows * bins;
    if (!cfg_.hann_shortcut) L.frame_floats = chunk * L.frames * n_fft;
  }
  if (nd.mel && out.mel == nullptr) L.mel_floats = channels * cfg_.n_mels * L.frames;
  if (nd.mfcc && out.mfcc == nullptr) L.mfcc_floats = channels * cfg_.n_mfcc * L.frames;
  if (nd.contrast) L.contrast_doubles = 2 * channels * n_bands() * L.frames;
  if (nd.estimate) {
    const std::size_t span = pip_hi_ > pip_lo_ ? static_cast<std::size_t>(pip_hi_ - pip_lo_) : 0;
    L.peak_capacity = static_cast<unsigned long long>(channels * L.frames * (span / 2 + 1));
    L.bank_floats = cfg_.n_chroma * bins;
  }
  std::size_t bytes =
      aligned(L.signal_floats * sizeof(float)) + aligned(L.frame_floats * sizeof(float)) +
      aligned(L.spec_complex * 2 * sizeof(float)) + aligned(L.mel_floats * sizeof(float)) +
      aligned(L.mfcc_floats * sizeof(float)) + aligned(L.contrast_doubles * sizeof(double)) +
      aligned(static_cast<std::size_t>(L.peak_capacity) * 2 * sizeof(float)) +
      aligned(L.bank_floats * sizeof(float));
  // small counters: mel max, contrast maxima, peak count, tuning state and histogram
  bytes += aligned(sizeof(unsigned int)) + aligned(2 * sizeof(unsigned long long)) +
           aligned(sizeof(unsigned long long)) + aligned(tuning_scratch_bytes()) +
           aligned(100 * sizeof(unsigned int));
  L.bytes_without_fft = bytes;
  return L;
}

std::size_t FeaturePlan::workspace_bytes(std::size_t channels, std::size_t n,
                                         const PlanOutputs& out) const {
  return layout(channels, n, out).bytes_without_fft;
}

void* FeaturePlan::fft_plan(std::size_t batch, std::size_t idist, std::size_t* work_bytes) {
  const auto key = std::make_pair(batch, idist);
  auto found = fft_plans_.find(key);
  if (found != fft_plans_.end()) {
    *work_bytes = found->second.second;
    return found->second.first;
  }
  if (fft_plans_.size() >= 32) {
    // Plans may be in use by queued work: wait for it before dropping them.
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    for (auto& entry : fft_plans_) {
      (void)cufftDestroy(
          static_cast<cufftHandle>(reinterpret_cast<std::uintptr_t>(entry.second.first)));
    }
    fft_plans_.clear();
  }
  cufftHandle handle = 0;
  check_fft(cufftCreate(&handle), "cufftCreate");
  std::size_t bytes = 0;
  int n[1] = {static_cast<int>(cfg_.n_fft)};
  int inembed[1] = {static_cast<int>(cfg_.n_fft)};
  int onembed[1] = {static_cast<int>(bins())};
  cufftResult status = cufftSetAutoAllocation(handle, 0);
  if (status == CUFFT_SUCCESS) {
    status =
        cufftMakePlanMany(handle, 1, n, inembed, 1, static_cast<int>(idist), onembed, 1,
                          static_cast<int>(bins()), CUFFT_R2C, static_cast<int>(batch), &bytes);
  }
  if (status != CUFFT_SUCCESS) {
    (void)cufftDestroy(handle);
    check_fft(status, "cufftMakePlanMany");
  }
  void* opaque = reinterpret_cast<void*>(static_cast<std::uintptr_t>(handle));
  fft_plans_[key] = {opaque, bytes};
  *work_bytes = bytes;
  return opaque;
}

RunInfo FeaturePlan::execute(const SignalView& sig, const PlanOutputs& out, Stream stream) {
  require(sig.device == cfg_.device, "the signal is on device " + std::to_string(sig.device) +
                                         ", the plan on device " + std::to_string(cfg_.device));
  require(sig.data != nullptr, "the signal's device pointer is null");
  require(sig.stride_c >= 0 && sig.stride_n >= 1, "negative or zero strides are not supported");
  const Layout L = layout(sig.channels, sig.n, out);
  const Needs& nd = L.needs;
  RunInfo info;
  info.chunks = L.n_chunks;
  info.chunk_channels = L.chunk;
  if (!nd.stft_pass && !nd.temporal) return info;

  DeviceGuard guard(cfg_.device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const std::size_t bins = this->bins(), C = sig.channels, F = L.frames;

  // Everything but cuFFT's work area first: a batch that cannot fit fails here, before any
  // plan or kernel, with the sizes in the message.
  Arena arena(L.bytes_without_fft, s, C, sig.n, cfg_.device);
  float* signal = arena.take<float>(L.signal_floats * sizeof(float));
  float* framed = arena.take<float>(L.frame_floats * sizeof(float));
  float2* spec = arena.take<float2>(L.spec_complex * sizeof(float2));
  float* mel = out.mel != nullptr ? out.mel : arena.take<float>(L.mel_floats * sizeof(float));
  float* mfcc = out.mfcc != nullptr ? out.mfcc : arena.take<float>(L.mfcc_floats * sizeof(float));
  double* contrast = arena.take<double>(L.contrast_doubles * sizeof(double));
  float* peaks = arena.take<float>(static_cast<std::size_t>(L.peak_capacity) * 2 * sizeof(float));
  float* bank = arena.take<float>(L.bank_floats * sizeof(float));
  auto* mel_max = arena.take<unsigned int>(sizeof(unsigned int));
  auto* contrast_max = arena.take<unsigned long long>(2 * sizeof(unsigned long long));
  auto* peak_count = arena.take<unsigned long long>(sizeof(unsigned long long));
  void* tuning_state = arena.take<char>(tuning_scratch_bytes());
  auto* counts = arena.take<unsigned int>(100 * sizeof(unsigned int));

  // cuFFT plans for the full chunk and the last, shorter one, and their work area.
  struct FftUse {
    cufftHandle handle = 0;
    std::size_t work = 0;
  };
  FftUse full, last;
  std::size_t fft_work = 0;
  const std::size_t last_chunk = C - (L.n_chunks - 1) * L.chunk;
  const std::size_t idist = cfg_.hann_shortcut ? cfg_.hop : cfg_.n_fft;
  if (nd.stft_pass && !fused_) {
    std::lock_guard<std::mutex> hold(lock_);
    full.handle = static_cast<cufftHandle>(
        reinterpret_cast<std::uintptr_t>(fft_plan(L.chunk * L.spec_rows, idist, &full.work)));
    last.handle = static_cast<cufftHandle>(
        reinterpret_cast<std::uintptr_t>(fft_plan(last_chunk * L.spec_rows, idist, &last.work)));
    fft_work = std::max(full.work, last.work);
  }
  Arena fft_arena(aligned(fft_work), s, C, sig.n, cfg_.device);
  void* fft_area = fft_arena.take<char>(fft_work);
  info.workspace_bytes = L.bytes_without_fft + aligned(fft_work);

  check_cuda(cudaMemsetAsync(mel_max, 0, sizeof(unsigned int), s), "cudaMemsetAsync");
  check_cuda(cudaMemsetAsync(contrast_max, 0, 2 * sizeof(unsigned long long), s),
             "cudaMemsetAsync");
  check_cuda(cudaMemsetAsync(peak_count, 0, sizeof(unsigned long long), s), "cudaMemsetAsync");

  const std::size_t nb = n_bands();
  auto chunk_base = [&](std::size_t c0) {
    const std::int64_t skip =
        static_cast<std::int64_t>(c0) * sig.stride_c * static_cast<std::int64_t>(sig.f64 ? 8 : 4);
    return static_cast<const void*>(static_cast<const char*>(sig.data) + skip);
  };
  // cuFFT path: rows prepared, transformed; fused path: rows prepared only for `temporal`.
  auto stft_chunk = [&](std::size_t c0, std::size_t cc, bool temporal) {
    if (fused_ && !temporal) return;
    prepare_signal(chunk_base(c0), sig.f64, cc, sig.n, sig.stride_c, sig.stride_n, signal, L.row,
                   L.offset, stream);
    if (!nd.stft_pass || fused_) return;
    const float* fft_in = signal;
    if (!cfg_.hann_shortcut) {
      frame_windowed(signal, cc, L.row, F, cfg_.n_fft, cfg_.hop, d_window_, framed, stream);
      fft_in = framed;
    }
    const FftUse& use = cc == L.chunk ? full : last;
    std::lock_guard<std::mutex> hold(lock_);
    check_fft(cufftSetStream(use.handle, s), "cufftSetStream");
    if (use.work > 0) check_fft(cufftSetWorkArea(use.handle, fft_area), "cufftSetWorkArea");
    check_fft(
        cufftExecR2C(use.handle, const_cast<float*>(fft_in), reinterpret_cast<cufftComplex*>(spec)),
        "cufftExecR2C");
  };
  auto base_args = [&](std::size_t c0, std::size_t cc) {
    FrameFeatureArgs a;
    a.spec = fused_ ? nullptr : spec;
    if (fused_) {
      a.signal = chunk_base(c0);
      a.signal_f64 = sig.f64;
      a.stride_c = sig.stride_c;
      a.stride_n = sig.stride_n;
      a.n = sig.n;
      a.pad = cfg_.center ? cfg_.n_fft / 2 : 0;
      a.hop = cfg_.hop;
      a.window = d_window_;
      a.twiddles = d_twiddles_;
    }
    a.channels = cc;
    a.bins = bins;
    a.frames = F;
    a.spec_rows = L.spec_rows;
    a.n_fft = cfg_.n_fft;
    a.hann_shortcut = cfg_.hann_shortcut;
    a.freq = d_freq_;
    a.sr = cfg_.sr;
    return a;
  };

  // Pass 1: every chunk's STFT and everything computed from it.
  for (std::size_t k = 0; k < L.n_chunks; ++k) {
    const std::size_t c0 = k * L.chunk, cc = std::min(L.chunk, C - c0);
    stft_chunk(c0, cc, nd.temporal);
    if (nd.temporal) {
      temporal_features(signal, cc, L.row, L.offset, sig.n, cfg_.frame_length, cfg_.temporal_hop,
                        cfg_.temporal_center, L.t_frames, cfg_.zcr_threshold, cfg_.zero_pos,
                        out.zcr ? out.zcr + c0 * L.t_frames : nullptr,
                        out.rms ? out.rms + c0 * L.t_frames : nullptr, stream);
    }
    if (!nd.stft_pass) continue;
    FrameFeatureArgs a = base_args(c0, cc);
    if (out.stft) a.stft = static_cast<float2*>(out.stft) + c0 * bins * F;
    if (out.spectrum) {
      a.spectrum = out.spectrum + c0 * bins * F;
      a.spectrum_power = out.spectrum_power;
    }
    if (nd.mel) {
      a.mel = mel + c0 * cfg_.n_mels * F;
      a.mel_start = d_mel_start_;
      a.mel_offset = d_mel_offset_;
      a.mel_weights = d_mel_weights_;
      a.n_mels = cfg_.n_mels;
      a.mel_power = cfg_.mel_power;
      a.mel_max_bits = mel_max;
    }
    if (out.centroid) a.centroid = out.centroid + c0 * F;
    if (out.bandwidth) a.bandwidth = out.bandwidth + c0 * F;
    a.bandwidth_p = cfg_.bandwidth_p;
    a.bandwidth_norm = cfg_.bandwidth_norm;
    if (out.rolloff) a.rolloff = out.rolloff + c0 * F;
    a.roll_percent = cfg_.roll_percent;
    if (out.flatness) a.flatness = out.flatness + c0 * F;
    a.flatness_amin = cfg_.flatness_amin;
    a.flatness_power = cfg_.flatness_power;
    if (out.flux) a.flux = out.flux + c0 * F;
    if (nd.contrast) {
      a.contrast_peak = contrast + c0 * nb * F;
      a.contrast_valley = contrast + C * nb * F + c0 * nb * F;
      a.contrast_bands = d_bands_;
      a.n_bands = nb;
      a.contrast_max_bits = contrast_max;
    }
    if (nd.chroma_pass1) {
      a.chroma_bank = d_chroma_bank_;
      a.n_chroma = cfg_.n_chroma;
      a.chroma = out.chroma + c0 * cfg_.n_chroma * F;
    }
    if (nd.estimate) {
      a.peaks = peaks;
      a.peak_count = peak_count;
      a.peak_capacity = L.peak_capacity;
      a.pip_lo = pip_lo_;
      a.pip_hi = pip_hi_;
      a.pip_threshold = cfg_.pip_threshold;
    }
    frame_features(a, stream);
  }

  // Tuning from every peak of the batch (one estimate, as librosa's for a multichannel input),
  // then the chroma bank for it and a second STFT pass for the chroma.
  if (nd.estimate) {
    tuning_histogram(peaks, peak_count, L.peak_capacity, static_cast<int>(cfg_.n_chroma),
                     tuning_state, counts, stream);
    unsigned int host_counts[100] = {};
    unsigned long long host_peaks = 0;
    check_cuda(cudaMemcpyAsync(host_counts, counts, sizeof host_counts, cudaMemcpyDeviceToHost, s),
               "cudaMemcpyAsync");
    check_cuda(
        cudaMemcpyAsync(&host_peaks, peak_count, sizeof host_peaks, cudaMemcpyDeviceToHost, s),
        "cudaMemcpyAsync");
    check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize (tuning)");
    if (host_peaks > L.peak_capacity) {
      throw DeviceError("internal error: piptrack found more peaks than its bound");
    }
    double tuning = 0.0;
    if (host_peaks == 0) {
      info.tuning_empty = true;
    } else {
      std::size_t best = 0;
      for (std::size_t i = 1; i < 100; ++i) {
        if (host_counts[i] > host_counts[best]) best = i;
      }
      tuning = static_cast<double>(best) * 0.01 + -0.5;
    }
    info.tuning = tuning;
    info.tuning_estimated = true;
    const std::vector<double> wts =
        chroma_filterbank(cfg_.sr, cfg_.n_fft, cfg_.n_chroma, tuning, cfg_.ctroct, cfg_.octwidth,
                          cfg_.chroma_norm, cfg_.base_c);
    const std::vector<float> host_bank(wts.begin(), wts.end());
    check_cuda(cudaMemcpyAsync(bank, host_bank.data(), host_bank.size() * sizeof(float),
                               cudaMemcpyHostToDevice, s),
               "cudaMemcpyAsync (chroma bank)");
    // the pageable copy is staged before cudaMemcpyAsync returns, but keep host_bank alive
    // until the stream has it regardless
    check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize (chroma bank)");
    for (std::size_t k = 0; k < L.n_chunks; ++k) {
      const std::size_t c0 = k * L.chunk, cc = std::min(L.chunk, C - c0);
      stft_chunk(c0, cc, false);
      FrameFeatureArgs a = base_args(c0, cc);
      a.chroma_bank = bank;
      a.n_chroma = cfg_.n_chroma;
      a.chroma = out.chroma + c0 * cfg_.n_chroma * F;
      frame_features(a, stream);
    }
  } else if (out.chroma != nullptr) {
    info.tuning = chroma_bank_tuning_;
  }

  // After the last chunk: what needs the whole batch's maximum.
  const float top_db = cfg_.top_db;
  if (nd.mfcc) {
    mfcc_from_mel(mel, C, cfg_.n_mels, F, mel_max, cfg_.amin, cfg_.ref_db, top_db, d_dct_,
                  cfg_.n_mfcc, mfcc, stream);
    if (out.mfcc_delta) {
      savgol_rows(mfcc, out.mfcc_delta, C * cfg_.n_mfcc, F, d_delta1_, cfg_.delta1.size(), stream);
    }
    if (out.mfcc_delta2) {
      savgol_rows(mfcc, out.mfcc_delta2, C * cfg_.n_mfcc, F, d_delta2_, cfg_.delta2.size(), stream);
    }
  }
  if (out.mel_db) {
    mel_to_db(mel, C * cfg_.n_mels * F, mel_max, cfg_.amin, cfg_.ref_db, top_db, out.mel_db,
              stream);
  }
  const std::size_t pad = onset_pad();
  const std::size_t onset_frames = this->onset_frames(F);
  if (out.onset) {
    onset_from_mel(mel, C, cfg_.n_mels, F, mel_max, cfg_.amin, cfg_.ref_db, top_db, cfg_.onset_lag,
                   pad, false, out.onset, onset_frames, stream);
  }
  if (out.onset_median) {
    onset_from_mel(mel, C, cfg_.n_mels, F, mel_max, cfg_.amin, cfg_.ref_db, top_db, cfg_.onset_lag,
                   pad, true, out.onset_median, onset_frames, stream);
  }
  if (nd.contrast) {
    contrast_finalize(contrast, contrast + C * nb * F, C * nb * F, contrast_max,
                      cfg_.contrast_linear, out.contrast, stream);
  }
  return info;
}

}  // namespace mlu::cuda
