// Kernels that run after every chunk's STFT pass: decibels with top_db, the DCT, deltas, onset
// strength, spectral contrast's dB step, the temporal features and the tuning histogram.
#include <cuda_runtime.h>

#include <cfloat>
#include <climits>
#include <cmath>
#include <string>

#include "common.cuh"
#include "kernels.hpp"
#include "mlu/error.hpp"

namespace mlu::cuda {

namespace {

constexpr int kFramesPerBlock = 32;
constexpr std::size_t kStaticSmemLimit = 48 * 1024;

// ---------------------------------------------------------------- dB, DCT

__global__ void mfcc_kernel(const float* mel, std::size_t n_mels, std::size_t frames,
                            const unsigned int* max_bits, float amin, float ref_db, float top_db,
                            const float* dct, std::size_t n_out, float* out) {
  extern __shared__ float db[];  // [n_mels][kFramesPerBlock]
  const std::size_t c = blockIdx.y;
  const std::size_t t0 = static_cast<std::size_t>(blockIdx.x) * kFramesPerBlock;
  const float floor_db = db_floor(max_bits, amin, ref_db, top_db);
  const int rows = static_cast<int>(n_mels);
  for (int idx = threadIdx.x; idx < rows * kFramesPerBlock; idx += blockDim.x) {
    const int m = idx / kFramesPerBlock, f = idx % kFramesPerBlock;
    const std::size_t t = t0 + static_cast<std::size_t>(f);
    float v = 0.0f;
    if (t < frames)
      v = power_db(mel[(c * n_mels + static_cast<std::size_t>(m)) * frames + t], amin, ref_db,
                   floor_db);
    db[idx] = v;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < static_cast<int>(n_out) * kFramesPerBlock; idx += blockDim.x) {
    const int o = idx / kFramesPerBlock, f = idx % kFramesPerBlock;
    const std::size_t t = t0 + static_cast<std::size_t>(f);
    if (t >= frames) continue;
    const float* row = dct + static_cast<std::size_t>(o) * n_mels;
    float acc = 0.0f;
    for (int m = 0; m < rows; ++m) acc += row[m] * db[m * kFramesPerBlock + f];
    out[(c * n_out + static_cast<std::size_t>(o)) * frames + t] = acc;
  }
}

__global__ void mel_db_kernel(const float* mel, std::size_t count, const unsigned int* max_bits,
                              float amin, float ref_db, float top_db, float* out) {
  const float floor_db = db_floor(max_bits, amin, ref_db, top_db);
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    out[i] = power_db(mel[i], amin, ref_db, floor_db);
  }
}

// ---------------------------------------------------------------- onset strength

__global__ void onset_mean_kernel(const float* mel, std::size_t channels, std::size_t n_mels,
                                  std::size_t frames, const unsigned int* max_bits, float amin,
                                  float ref_db, float top_db, std::size_t lag, std::size_t pad,
                                  float* out, std::size_t out_frames) {
  const float floor_db = db_floor(max_bits, amin, ref_db, top_db);
  const std::size_t total = channels * out_frames;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t c = i / out_frames, j = i % out_frames;
    float value = 0.0f;
    if (j >= pad && j - pad + lag < frames) {
      const std::size_t t = j - pad;
      const float* base = mel + c * n_mels * frames;
      float sum = 0.0f;
      for (std::size_t b = 0; b < n_mels; ++b) {
        const float now = power_db(base[b * frames + t + lag], amin, ref_db, floor_db);
        const float before = power_db(base[b * frames + t], amin, ref_db, floor_db);
        const float d = now - before;
        sum += d > 0.0f ? d : 0.0f;
      }
      value = static_cast<float>(static_cast<double>(sum) / static_cast<double>(n_mels));
    }
    out[i] = value;
  }
}

// Median over the bands: one warp per output frame sorts its values (bitonic, padded with +inf
// to a power of two) in shared memory.
__global__ void onset_median_kernel(const float* mel, std::size_t channels, std::size_t n_mels,
                                    std::size_t frames, const unsigned int* max_bits, float amin,
                                    float ref_db, float top_db, std::size_t lag, std::size_t pad,
                                    float* out, std::size_t out_frames, int width) {
  extern __shared__ float sorted[];  // [warps][width]
  const float floor_db = db_floor(max_bits, amin, ref_db, top_db);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * (blockDim.x / 32) + warp;
  if (i >= channels * out_frames) return;
  const std::size_t c = i / out_frames, j = i % out_frames;
  if (!(j >= pad && j - pad + lag < frames)) {
    if (lane == 0) out[i] = 0.0f;
    return;
  }
  const std::size_t t = j - pad;
  const float* base = mel + c * n_mels * frames;
  float* s = sorted + warp * width;
  for (int b = lane; b < width; b += 32) {
    float v = INFINITY;
    if (static_cast<std::size_t>(b) < n_mels) {
      const float now = power_db(base[b * frames + t + lag], amin, ref_db, floor_db);
      const float before = power_db(base[b * frames + t], amin, ref_db, floor_db);
      const float d = now - before;
      v = d > 0.0f ? d : 0.0f;
    }
    s[b] = v;
  }
  __syncwarp();
  for (int k = 2; k <= width; k <<= 1) {
    for (int jj = k >> 1; jj > 0; jj >>= 1) {
      for (int x = lane; x < width; x += 32) {
        const int y = x ^ jj;
        if (y > x) {
          const bool up = (x & k) == 0;
          const float a = s[x], b = s[y];
          if ((a > b) == up) {
            s[x] = b;
            s[y] = a;
          }
        }
      }
      __syncwarp();
    }
  }
  if (lane == 0) {
    const std::size_t n = n_mels;
    out[i] = n % 2 == 1 ? s[n / 2] : __fdiv_rn(__fadd_rn(s[n / 2 - 1], s[n / 2]), 2.0f);
  }
}

// ---------------------------------------------------------------- deltas, contrast

__global__ void savgol_kernel(const float* x, float* y, std::size_t rows, std::size_t len,
                              const double* w, std::size_t width) {
  const std::size_t h = width / 2;
  const std::size_t total = rows * len;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t r = i / len;
    std::size_t t = i % len;
    if (t < h) t = h;
    if (t > len - 1 - h) t = len - 1 - h;
    const float* row = x + r * len + (t - h);
    double acc = 0.0;
    for (std::size_t j = 0; j < width; ++j) acc += w[j] * static_cast<double>(row[j]);
    y[i] = static_cast<float>(acc);
  }
}

__device__ __forceinline__ double power_db_double(double x, double floor_db) {
  const double d = 10.0 * log10(fmax(1e-10, x));
  return fmax(d, floor_db);
}

__global__ void contrast_kernel(const double* peak, const double* valley, std::size_t count,
                                const unsigned long long* max_bits, bool linear, double* out) {
  const double top_db = 80.0;
  const double peak_floor =
      10.0 * log10(fmax(1e-10, __longlong_as_double(static_cast<long long>(max_bits[0])))) - top_db;
  const double valley_floor =
      10.0 * log10(fmax(1e-10, __longlong_as_double(static_cast<long long>(max_bits[1])))) - top_db;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    out[i] = linear
                 ? peak[i] - valley[i]
                 : power_db_double(peak[i], peak_floor) - power_db_double(valley[i], valley_floor);
  }
}

// ---------------------------------------------------------------- zero crossings, RMS

__device__ __forceinline__ int sign_code(float v, float thr, bool zero_pos) {
  const float z = fabsf(v) <= thr ? 0.0f : v;
  if (zero_pos) return signbit(z) ? 1 : 0;
  return (z > 0.0f) - (z < 0.0f);
}

// A block takes `tile` frames of one channel (one warp each): the samples they cover are read
// once into shared memory (clamped to the ends: edge padding for the crossings; the RMS leaves
// positions outside the signal out, which is zero padding).
__global__ void temporal_kernel(const float* buf, std::size_t row, std::size_t offset,
                                std::size_t n, std::size_t frame_length, std::size_t hop,
                                std::size_t pad, std::size_t frames, int tile, float thr,
                                bool zero_pos, double* zcr, float* rms) {
  extern __shared__ float seg[];
  const std::size_t c = blockIdx.y;
  const std::size_t t0 = static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(tile);
  const std::size_t first = t0 * hop;  // padded position of seg[0]
  const std::size_t len = static_cast<std::size_t>(tile - 1) * hop + frame_length;
  const float* x = buf + c * row + offset;
  const long long last = static_cast<long long>(n) - 1;
  for (std::size_t q = threadIdx.x; q < len; q += blockDim.x) {
    long long p = static_cast<long long>(first + q) - static_cast<long long>(pad);
    p = p < 0 ? 0 : (p > last ? last : p);
    seg[q] = x[p];
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::size_t t = t0 + static_cast<std::size_t>(warp);
  if (warp >= tile || t >= frames) return;
  const std::size_t local = static_cast<std::size_t>(warp) * hop;
  if (zcr != nullptr) {
    unsigned int changes = 0;
    for (std::size_t q = local + 1 + static_cast<std::size_t>(lane); q < local + frame_length;
         q += 32) {
      changes += sign_code(seg[q], thr, zero_pos) != sign_code(seg[q - 1], thr, zero_pos);
    }
    changes = warp_sum(changes);
    if (lane == 0) {
      zcr[c * frames + t] = static_cast<double>(changes) / static_cast<double>(frame_length);
    }
  }
  if (rms != nullptr) {
    double acc = 0.0;
    for (std::size_t q = static_cast<std::size_t>(lane); q < frame_length; q += 32) {
      const long long p = static_cast<long long>(first + local + q) - static_cast<long long>(pad);
      if (p >= 0 && p <= last) {
        const double v = seg[local + q];
        acc += v * v;
      }
    }
    acc = warp_sum(acc);
    if (lane == 0) {
      rms[c * frames + t] = sqrtf(static_cast<float>(acc / static_cast<double>(frame_length)));
    }
  }
}

// ---------------------------------------------------------------- tuning

struct SelectState {
  unsigned long long n;
  unsigned long long k[2];
  unsigned int prefix[2];
  unsigned int mask;
  float threshold;
  unsigned int hist[2][256];
};

__device__ __forceinline__ unsigned int order_key(float v) {
  const unsigned int u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float from_key(unsigned int k) {
  const unsigned int u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  return __uint_as_float(u);
}

__global__ void select_init_kernel(SelectState* s, const unsigned long long* count,
                                   unsigned long long capacity, unsigned int* counts) {
  const unsigned long long n = *count < capacity ? *count : capacity;
  if (threadIdx.x == 0) {
    s->n = n;
    s->k[0] = n > 0 ? (n - 1) / 2 : 0;
    s->k[1] = n / 2;
    s->prefix[0] = s->prefix[1] = 0;
    s->mask = 0;
    s->threshold = 0.0f;
  }
  for (int i = threadIdx.x; i < 512; i += blockDim.x) (&s->hist[0][0])[i] = 0;
  for (int i = threadIdx.x; i < 100; i += blockDim.x) counts[i] = 0;
}

__global__ void select_hist_kernel(const float* peaks, SelectState* s, int shift) {
  __shared__ unsigned int h[2][256];
  for (int i = threadIdx.x; i < 512; i += blockDim.x) (&h[0][0])[i] = 0;
  __syncthreads();
  const unsigned long long n = s->n;
  const unsigned int mask = s->mask, p0 = s->prefix[0], p1 = s->prefix[1];
  for (unsigned long long i =
           blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
       i < n; i += static_cast<unsigned long long>(gridDim.x) * blockDim.x) {
    const unsigned int u = order_key(peaks[2 * i + 1]);
    const unsigned int bucket = (u >> shift) & 255u;
    if ((u & mask) == p0) atomicAdd(&h[0][bucket], 1u);
    if ((u & mask) == p1) atomicAdd(&h[1][bucket], 1u);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < 512; i += blockDim.x) {
    const unsigned int v = (&h[0][0])[i];
    if (v) atomicAdd(&(&s->hist[0][0])[i], v);
  }
}

__global__ void select_step_kernel(SelectState* s, int shift, bool last) {
  if (threadIdx.x < 2) {
    const int w = threadIdx.x;
    unsigned long long k = s->k[w];
    unsigned int bucket = 0;
    for (; bucket < 255; ++bucket) {
      const unsigned long long h = s->hist[w][bucket];
      if (k < h) break;
      k -= h;
    }
    s->k[w] = k;
    s->prefix[w] |= bucket << shift;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    s->mask |= 255u << shift;
    if (last && s->n > 0) {
      const float lo = from_key(s->prefix[0]), hi = from_key(s->prefix[1]);
      s->threshold = (s->n % 2 == 1) ? hi : __fdiv_rn(__fadd_rn(lo, hi), 2.0f);
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < 512; i += blockDim.x) (&s->hist[0][0])[i] = 0;
}

// np.histogram(residual, np.linspace(-0.5, 0.5, 101)): bin i holds edge_i <= r < edge_{i+1}
// (the last bin also r == 0.5), edges i * 0.01 - 0.5 in double; the residual is computed in
// float32 as librosa.pitch_tuning does on float32 pitches.
__device__ __forceinline__ double tuning_edge(int i) {
  return static_cast<double>(i) * 0.01 + -0.5;
}

__global__ void tuning_kernel(const float* peaks, const SelectState* s, int bins_per_octave,
                              unsigned int* counts) {
  __shared__ unsigned int h[100];
  for (int i = threadIdx.x; i < 100; i += blockDim.x) h[i] = 0;
  __syncthreads();
  const unsigned long long n = s->n;
  const float threshold = s->threshold;
  for (unsigned long long i =
           blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
       i < n; i += static_cast<unsigned long long>(gridDim.x) * blockDim.x) {
    const float pitch = peaks[2 * i], mag = peaks[2 * i + 1];
    if (!(mag >= threshold) || !(pitch > 0.0f)) continue;
    const float octs = log2f(__fdiv_rn(pitch, 27.5f));
    float r = fmodf(__fmul_rn(static_cast<float>(bins_per_octave), octs), 1.0f);
    if (r != 0.0f && r < 0.0f) r = __fadd_rn(r, 1.0f);
    if (r >= 0.5f) r = __fsub_rn(r, 1.0f);
    const double x = r;
    if (!(x >= -0.5) || !(x <= 0.5)) continue;
    int b = static_cast<int>(floor((x + 0.5) * 100.0));
    b = b < 0 ? 0 : (b > 99 ? 99 : b);
    while (b > 0 && x < tuning_edge(b)) --b;
    while (b < 99 && x >= tuning_edge(b + 1)) ++b;
    atomicAdd(&h[b], 1u);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < 100; i += blockDim.x) {
    if (h[i]) atomicAdd(&counts[i], h[i]);
  }
}

}  // namespace

void mfcc_from_mel(const float* mel, std::size_t channels, std::size_t n_mels, std::size_t frames,
                   const unsigned int* max_bits, float amin, float ref_db, float top_db,
                   const float* dct, std::size_t n_out, float* out, Stream stream) {
  if (channels == 0 || frames == 0 || n_out == 0) return;
  const std::size_t smem = n_mels * kFramesPerBlock * sizeof(float);
  require(smem <= kStaticSmemLimit, "the CUDA MFCC supports at most " +
                                        std::to_string(kStaticSmemLimit / (kFramesPerBlock * 4)) +
                                        " mel bands");
  require(channels <= 65535, "at most 65535 channels per CUDA pass");
  const dim3 grid(static_cast<unsigned>((frames + kFramesPerBlock - 1) / kFramesPerBlock),
                  static_cast<unsigned>(channels));
  mfcc_kernel<<<grid, 256, smem, as_stream(stream)>>>(mel, n_mels, frames, max_bits, amin, ref_db,
                                                      top_db, dct, n_out, out);
  check_launch("mfcc_kernel");
}

void mel_to_db(const float* mel, std::size_t count, const unsigned int* max_bits, float amin,
               float ref_db, float top_db, float* out, Stream stream) {
  if (count == 0) return;
  mel_db_kernel<<<grid_for(count, 256, 1u << 16), 256, 0, as_stream(stream)>>>(
      mel, count, max_bits, amin, ref_db, top_db, out);
  check_launch("mel_db_kernel");
}

void onset_from_mel(const float* mel, std::size_t channels, std::size_t n_mels, std::size_t frames,
                    const unsigned int* max_bits, float amin, float ref_db, float top_db,
                    std::size_t lag, std::size_t pad, bool median, float* out,
                    std::size_t out_frames, Stream stream) {
  const std::size_t total = channels * out_frames;
  if (total == 0) return;
  require(n_mels >= 1, "onset strength needs at least one band");
  if (!median) {
    onset_mean_kernel<<<grid_for(total, 256, 1u << 16), 256, 0, as_stream(stream)>>>(
        mel, channels, n_mels, frames, max_bits, amin, ref_db, top_db, lag, pad, out, out_frames);
    check_launch("onset_mean_kernel");
    return;
  }
  int width = 32;
  while (static_cast<std::size_t>(width) < n_mels) width <<= 1;
  const int warps = 8;
  const std::size_t smem =
      static_cast<std::size_t>(warps) * static_cast<std::size_t>(width) * sizeof(float);
  require(smem <= kStaticSmemLimit, "the CUDA median onset strength supports at most 1536 bands");
  const unsigned blocks = static_cast<unsigned>((total + warps - 1) / warps);
  onset_median_kernel<<<blocks, warps * 32, smem, as_stream(stream)>>>(
      mel, channels, n_mels, frames, max_bits, amin, ref_db, top_db, lag, pad, out, out_frames,
      width);
  check_launch("onset_median_kernel");
}

void savgol_rows(const float* x, float* y, std::size_t rows, std::size_t len, const double* w,
                 std::size_t width, Stream stream) {
  const std::size_t total = rows * len;
  if (total == 0) return;
  require(width % 2 == 1 && width >= 3 && width <= len,
          "delta width=" + std::to_string(width) + " must be odd, >= 3 and <= the frame count " +
              std::to_string(len));
  savgol_kernel<<<grid_for(total, 256, 1u << 16), 256, 0, as_stream(stream)>>>(x, y, rows, len, w,
                                                                               width);
  check_launch("savgol_kernel");
}

void contrast_finalize(const double* peak, const double* valley, std::size_t count,
                       const unsigned long long* max_bits, bool linear, double* out,
                       Stream stream) {
  if (count == 0) return;
  contrast_kernel<<<grid_for(count, 256, 1u << 16), 256, 0, as_stream(stream)>>>(
      peak, valley, count, max_bits, linear, out);
  check_launch("contrast_kernel");
}

void temporal_features(const float* buf, std::size_t channels, std::size_t row, std::size_t offset,
                       std::size_t n, std::size_t frame_length, std::size_t hop, bool center,
                       std::size_t frames, float zcr_threshold, bool zero_pos, double* zcr,
                       float* rms, Stream stream) {
  if (channels == 0 || frames == 0 || (zcr == nullptr && rms == nullptr)) return;
  require(n >= 1, "the CUDA temporal features need a non-empty signal");
  require(channels <= 65535, "at most 65535 channels per CUDA pass");
  const std::size_t cap = kStaticSmemLimit / sizeof(float);
  require(frame_length <= cap,
          "the CUDA temporal features support frame_length <= " + std::to_string(cap));
  std::size_t tile = 1 + (cap - frame_length) / hop;
  if (tile > 8) tile = 8;
  const std::size_t smem = ((tile - 1) * hop + frame_length) * sizeof(float);
  const dim3 grid(static_cast<unsigned>((frames + tile - 1) / tile),
                  static_cast<unsigned>(channels));
  temporal_kernel<<<grid, static_cast<unsigned>(32 * tile), smem, as_stream(stream)>>>(
      buf, row, offset, n, frame_length, hop, center ? frame_length / 2 : 0, frames,
      static_cast<int>(tile), zcr_threshold, zero_pos, zcr, rms);
  check_launch("temporal_kernel");
}

std::size_t tuning_scratch_bytes() { return sizeof(SelectState); }

void tuning_histogram(const float* peaks, const unsigned long long* peak_count,
                      unsigned long long capacity, int bins_per_octave, void* scratch,
                      unsigned int* counts, Stream stream) {
  auto* state = static_cast<SelectState*>(scratch);
  const cudaStream_t s = as_stream(stream);
  select_init_kernel<<<1, 256, 0, s>>>(state, peak_count, capacity, counts);
  check_launch("select_init_kernel");
  const unsigned blocks = grid_for(capacity, 256, 1024);
  for (int shift = 24; shift >= 0; shift -= 8) {
    select_hist_kernel<<<blocks, 256, 0, s>>>(peaks, state, shift);
    check_launch("select_hist_kernel");
    select_step_kernel<<<1, 256, 0, s>>>(state, shift, shift == 0);
    check_launch("select_step_kernel");
  }
  tuning_kernel<<<blocks, 256, 0, s>>>(peaks, state, bins_per_octave, counts);
  check_launch("tuning_kernel");
}

}  // namespace mlu::cuda
