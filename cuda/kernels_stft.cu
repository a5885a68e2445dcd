// Framing before cuFFT and the frame-tile kernel after it.
//
// The frame-tile kernel is where the STFT's intermediates stay on chip: a block takes kTile
// consecutive frames of one channel, turns their spectra into power values in shared memory
// once, and computes from there every per-frame output the pass asks for (complex STFT,
// |X|^p, sparse mel, centroid, bandwidth, rolloff, flatness, flux, contrast, chroma, piptrack
// peaks). Only those outputs reach device memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <string>

#include "common.cuh"
#include "fft_2048.cuh"
#include "kernels.hpp"
#include "mlu/error.hpp"

namespace mlu::cuda {

namespace {

constexpr int kTile = 8;  // frames per block: one warp each for the per-frame reductions
constexpr int kThreads = kTile * 32;
constexpr int kMaxChroma = 64;

template <typename In>
__global__ void prepare_kernel(const In* y, std::size_t channels, std::size_t n,
                               std::int64_t stride_c, std::int64_t stride_n, float* out,
                               std::size_t row, std::size_t offset) {
  // blockIdx.y walks the channels, x the positions of a row: no division per element
  for (std::size_t c = blockIdx.y; c < channels; c += gridDim.y) {
    const In* src = y + static_cast<std::int64_t>(c) * stride_c;
    float* dst = out + c * row;
    for (std::size_t j = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; j < row;
         j += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
      float v = 0.0f;
      if (j >= offset && j - offset < n) {
        v = static_cast<float>(src[static_cast<std::int64_t>(j - offset) * stride_n]);
      }
      dst[j] = v;
    }
  }
}

__global__ void frame_windowed_kernel(const float* buf, std::size_t channels, std::size_t row,
                                      std::size_t frames, std::size_t n_fft, std::size_t hop,
                                      const float* window, float* out) {
  const std::size_t total = channels * frames * n_fft;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t j = i % n_fft, ct = i / n_fft;
    const std::size_t c = ct / frames, t = ct % frames;
    out[i] = buf[c * row + t * hop + j] * window[j];
  }
}

// X[k] of one frame, windowed by the periodic Hann taps when asked:
// Xw[k] = 0.5 X[k] - 0.25 (X[k-1] + X[k+1]), X[-1] = conj X[1], X[bins] = conj X[bins-2].
__device__ __forceinline__ float2 spectrum_at(const float2* X, int k, int bins, bool hann) {
  const float2 x = X[k];
  if (!hann) return x;
  float2 a, b;
  if (k == 0) {
    a = X[1];
    a.y = -a.y;
  } else {
    a = X[k - 1];
  }
  if (k == bins - 1) {
    b = X[bins - 2];
    b.y = -b.y;
  } else {
    b = X[k + 1];
  }
  return make_float2(0.5f * x.x - 0.25f * (a.x + b.x), 0.5f * x.y - 0.25f * (a.y + b.y));
}

// re^2 + im^2 rounded after each step (no fused multiply-add), as the CPU plans compute it.
__device__ __forceinline__ float power_of(float2 z) {
  return __fadd_rn(__fmul_rn(z.x, z.x), __fmul_rn(z.y, z.y));
}

__device__ __forceinline__ float pow_of_power(float pw, float p) {
  if (p == 2.0f) return pw;
  const float m = sqrtf(pw);
  if (p == 1.0f) return m;
  return powf(m, p);
}

// (v, i) pairs ordered by value, then index: the warp's smallest (or largest value, smallest
// index) pair.
__device__ __forceinline__ void warp_argmin(float& v, int& i) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(kFullMask, v, o);
    const int j = __shfl_xor_sync(kFullMask, i, o);
    if (w < v || (w == v && j < i)) {
      v = w;
      i = j;
    }
  }
}
__device__ __forceinline__ void warp_argmax(float& v, int& i) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(kFullMask, v, o);
    const int j = __shfl_xor_sync(kFullMask, i, o);
    if (w > v || (w == v && j < i)) {
      v = w;
      i = j;
    }
  }
}

// Means of the q smallest and q largest magnitudes of bins [begin, end) of one frame (the
// whole warp), by q successive extractions in (value, index) order: ties count once each,
// exactly as a sort would keep them.
__device__ void band_extremes(const float* mag, int begin, int end, int q, int lane, double& valley,
                              double& peak) {
  double lo = 0.0, hi = 0.0;
  float prev_v = -INFINITY;
  int prev_i = -1;
  for (int r = 0; r < q; ++r) {
    float best = INFINITY;
    int at = INT_MAX;
    for (int k = begin + lane; k < end; k += 32) {
      const float v = mag[k];
      const bool after = v > prev_v || (v == prev_v && k > prev_i);
      if (after && (v < best || (v == best && k < at))) {
        best = v;
        at = k;
      }
    }
    warp_argmin(best, at);
    lo += static_cast<double>(best);
    prev_v = best;
    prev_i = at;
  }
  prev_v = INFINITY;
  prev_i = -1;
  for (int r = 0; r < q; ++r) {
    float best = -INFINITY;
    int at = INT_MAX;
    for (int k = begin + lane; k < end; k += 32) {
      const float v = mag[k];
      const bool after = v < prev_v || (v == prev_v && k > prev_i);
      if (after && (v > best || (v == best && k < at))) {
        best = v;
        at = k;
      }
    }
    warp_argmax(best, at);
    hi += static_cast<double>(best);
    prev_v = best;
    prev_i = at;
  }
  valley = lo / q;
  peak = hi / q;
}

// The same means for q <= kQ, in one pass over the band: each lane keeps its kQ smallest and
// kQ largest magnitudes sorted in registers (compare-exchange down a fixed-length list), then q
// rounds take the warp's smallest (largest) list head and pop it from its lane. The q values are
// summed in the same order as band_extremes (ascending, resp. descending), so the results are the
// same; ties do not matter to a sum of values.
template <int kQ>
__device__ void band_extremes_sorted(const float* mag, int begin, int end, int q, int lane,
                                     double& valley, double& peak) {
  float lo[kQ], hi[kQ];
#pragma unroll
  for (int i = 0; i < kQ; ++i) {
    lo[i] = INFINITY;
    hi[i] = -INFINITY;
  }
  for (int k = begin + lane; k < end; k += 32) {
    float v = mag[k], w = v;
#pragma unroll
    for (int i = 0; i < kQ; ++i) {
      const float small = fminf(lo[i], v);
      v = fmaxf(lo[i], v);
      lo[i] = small;
      const float large = fmaxf(hi[i], w);
      w = fminf(hi[i], w);
      hi[i] = large;
    }
  }
  double low_sum = 0.0, high_sum = 0.0;
  for (int r = 0; r < q; ++r) {
    float best = lo[0];
    int who = lane;
    warp_argmin(best, who);
    low_sum += static_cast<double>(best);
    if (lane == who) {
#pragma unroll
      for (int i = 0; i + 1 < kQ; ++i) lo[i] = lo[i + 1];
      lo[kQ - 1] = INFINITY;
    }
    float top = hi[0];
    who = lane;
    warp_argmax(top, who);
    high_sum += static_cast<double>(top);
    if (lane == who) {
#pragma unroll
      for (int i = 0; i + 1 < kQ; ++i) hi[i] = hi[i + 1];
      hi[kQ - 1] = -INFINITY;
    }
  }
  valley = low_sum / q;
  peak = high_sum / q;
}

// numba's typing of librosa's parabolic interpolation stencil (see cpp/src/harmonic.cpp).
__device__ __forceinline__ float parabolic_shift(float xm, float x0, float xp) {
  const float sum = __fadd_rn(xp, xm);
  const float diff = __fsub_rn(xp, xm);
  const double a = __dsub_rn(static_cast<double>(sum), __dmul_rn(2.0, static_cast<double>(x0)));
  const double b = static_cast<double>(diff) / 2.0;
  if (fabs(b) >= fabs(a)) return 0.0f;
  return static_cast<float>(-b / a);
}

// Every output of a tile from its power spectra in shared memory: pw row 0 is frame t0 - 1
// (for the flux), rows 1..kTile the block's own frames. Called by every thread of both kernels
// after a __syncthreads; the caller has written the complex STFT already. The outputs of the
// power come first; then, if any output needs magnitudes, pw is turned into magnitudes in place
// (one sqrtf per bin instead of one per bin and feature).
template <bool kContrast>
__device__ void tile_outputs(const FrameFeatureArgs& a, float* pw, std::size_t c, std::size_t t0) {
  __shared__ float chroma_raw[kTile][kMaxChroma];
  const int bins = static_cast<int>(a.bins);
  const std::size_t frames = a.frames;
  const int tid = threadIdx.x;

  // Outputs laid out (bins, frames): frames fastest across threads for coalesced writes.
  if (a.spectrum != nullptr) {
    for (int idx = tid; idx < kTile * bins; idx += kThreads) {
      const int f = idx % kTile, k = idx / kTile;
      const std::size_t t = t0 + static_cast<std::size_t>(f);
      if (t >= frames) continue;
      const std::size_t at = (c * a.bins + static_cast<std::size_t>(k)) * frames + t;
      a.spectrum[at] = pow_of_power(pw[(f + 1) * bins + k], a.spectrum_power);
    }
  }

  if (a.mel != nullptr) {
    float local_max = 0.0f;
    const int rows = static_cast<int>(a.n_mels);
    for (int idx = tid; idx < kTile * rows; idx += kThreads) {
      const int f = idx % kTile, m = idx / kTile;
      const std::size_t t = t0 + static_cast<std::size_t>(f);
      if (t >= frames) continue;
      const float* p = pw + (f + 1) * bins + a.mel_start[m];
      const int begin = a.mel_offset[m], end = a.mel_offset[m + 1];
      float acc = 0.0f;
      for (int j = begin; j < end; ++j) {
        acc += a.mel_weights[j] * pow_of_power(p[j - begin], a.mel_power);
      }
      a.mel[(c * a.n_mels + static_cast<std::size_t>(m)) * frames + t] = acc;
      local_max = fmaxf(local_max, acc);
    }
    if (a.mel_max_bits != nullptr) {
      // one atomic per block, not per warp: every block updates the same word
      __shared__ float warp_peak[kThreads / 32];
      local_max = warp_max(local_max);
      if ((tid & 31) == 0) warp_peak[tid / 32] = local_max;
      __syncthreads();
      if (tid < 32) {
        float v = tid < kThreads / 32 ? warp_peak[tid] : 0.0f;
        v = warp_max(v);
        if (tid == 0) atomic_max_nonneg(a.mel_max_bits, v);
      }
    }
  }

  // Per-frame reductions: warp w takes frame t0 + w (live: that frame exists).
  const int warp = tid / 32, lane = tid % 32;
  const std::size_t t = t0 + static_cast<std::size_t>(warp);
  const bool live = t < frames;
  const float* cur = pw + (warp + 1) * bins;
  const std::size_t out_at = c * frames + t;

  if (live && a.chroma != nullptr) {
    const int rows = static_cast<int>(a.n_chroma);
    for (int r0 = 0; r0 < rows; r0 += 4) {
      // four rows at a time, unrolled: a run-time index would put acc in local memory
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      const int nr = min(4, rows - r0);
      const float* bank = a.chroma_bank + static_cast<std::size_t>(r0) * bins;
      for (int k = lane; k < bins; k += 32) {
        const float p = cur[k];
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          if (r < nr) acc[r] += bank[r * bins + k] * p;
        }
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float s = warp_sum(acc[r]);
        if (r < nr && lane == 0) chroma_raw[warp][r0 + r] = s;
      }
    }
    __syncwarp();
    double length = 0.0;
    for (int r = 0; r < rows; ++r)
      length = fmax(length, fabs(static_cast<double>(chroma_raw[warp][r])));
    if (length < static_cast<double>(FLT_MIN)) length = 1.0;
    for (int r = lane; r < rows; r += 32) {
      a.chroma[(c * a.n_chroma + static_cast<std::size_t>(r)) * frames + t] =
          static_cast<float>(static_cast<double>(chroma_raw[warp][r]) / length);
    }
  }

  if (live && a.peaks != nullptr && a.pip_lo < a.pip_hi) {
    float mx = 0.0f;
    for (int k = lane; k < bins; k += 32) mx = fmaxf(mx, fabsf(cur[k]));
    mx = warp_max(mx);
    const float r = __fmul_rn(a.pip_threshold, mx);
    const double sr_over = a.sr, nfft = static_cast<double>(a.n_fft);
    for (int k = a.pip_lo + lane; k < a.pip_hi; k += 32) {
      const float x0 = cur[k];
      const float m0 = x0 > r ? x0 : 0.0f;
      bool peak;
      if (k == 0) {
        peak = false;
      } else {
        const float xm = cur[k - 1];
        const float mm = xm > r ? xm : 0.0f;
        if (k + 1 == bins) {
          peak = m0 > mm;
        } else {
          const float xp = cur[k + 1];
          const float mp = xp > r ? xp : 0.0f;
          peak = m0 > mm && m0 >= mp;
        }
      }
      if (!peak) continue;
      const float xm = cur[k - 1];
      float shift = 0.0f, avg;
      if (k + 1 == bins) {
        avg = __fsub_rn(x0, xm);
      } else {
        const float xp = cur[k + 1];
        shift = parabolic_shift(xm, x0, xp);
        avg = __fdiv_rn(__fsub_rn(xp, xm), 2.0f);
      }
      const float dskew = __fmul_rn(__fmul_rn(0.5f, avg), shift);
      const float pitch = static_cast<float>(
          __dmul_rn(static_cast<double>(k) + static_cast<double>(shift), sr_over) / nfft);
      const float mag = __fadd_rn(x0, dskew);
      if (!(pitch > 0.0f)) continue;
      const unsigned long long slot = atomicAdd(a.peak_count, 1ull);
      if (slot < a.peak_capacity) {
        a.peaks[2 * slot] = pitch;
        a.peaks[2 * slot + 1] = mag;
      }
    }
  }

  const bool magnitudes = a.centroid != nullptr || a.bandwidth != nullptr || a.rolloff != nullptr ||
                          a.flatness != nullptr || a.flux != nullptr || a.contrast_peak != nullptr;
  if (!magnitudes) return;  // the same for the whole block
  __syncthreads();          // every reader of the power is done
  for (int idx = tid + (a.flux != nullptr ? 0 : bins); idx < (kTile + 1) * bins; idx += kThreads) {
    pw[idx] = sqrtf(pw[idx]);
  }
  __syncthreads();
  if (!live) return;
  const float* mag = cur;

  if (a.centroid != nullptr || a.bandwidth != nullptr) {
    double num = 0.0, den = 0.0;
    for (int k = lane; k < bins; k += 32) {
      const double m = mag[k];
      num += a.freq[k] * m;
      den += m;
    }
    num = warp_sum(num);
    den = warp_sum(den);
    const double cen = den > 0 ? num / den : 0.0;
    if (a.centroid != nullptr && lane == 0) a.centroid[out_at] = cen;
    if (a.bandwidth != nullptr) {
      const double p = a.bandwidth_p;
      double acc = 0.0;
      for (int k = lane; k < bins; k += 32) {
        const double m = mag[k];
        const double d = fabs(a.freq[k] - cen);
        acc += m * (p == 2.0 ? d * d : pow(d, p));
      }
      acc = warp_sum(acc);
      if (lane == 0) {
        const double s = a.bandwidth_norm ? (den > 0 ? acc / den : 0.0) : acc;
        a.bandwidth[out_at] = p == 2.0 ? sqrt(s) : pow(s, 1.0 / p);
      }
    }
  }

  if (a.rolloff != nullptr) {
    // Each lane sums a contiguous run of bins in float (as numpy's cumsum), the runs are
    // scanned across the warp, and the first lane whose run reaches the threshold finds the
    // bin in it.
    const int per = (bins + 31) / 32;
    const int k0 = lane * per, k1 = min(bins, k0 + per);
    float run = 0.0f;
    for (int k = k0; k < k1; ++k) run += mag[k];
    float incl = run;
    for (int o = 1; o < 32; o <<= 1) {
      const float v = __shfl_up_sync(kFullMask, incl, o);
      if (lane >= o) incl += v;
    }
    const float total = __shfl_sync(kFullMask, incl, 31);
    const float threshold = a.roll_percent * total;
    float acc = incl - run;
    int found = -1;
    for (int k = k0; k < k1; ++k) {
      acc += mag[k];
      if (!(acc < threshold)) {
        found = k;
        break;
      }
    }
    const unsigned ballot = __ballot_sync(kFullMask, found >= 0);
    if (ballot == 0) {
      if (lane == 0) a.rolloff[out_at] = a.freq[0];
    } else if (lane == __ffs(ballot) - 1) {
      a.rolloff[out_at] = a.freq[found];
    }
  }

  if (a.flatness != nullptr) {
    double logs = 0.0, sums = 0.0;
    const double amin = a.flatness_amin, power = a.flatness_power;
    for (int k = lane; k < bins; k += 32) {
      const double x = mag[k];
      const double s = fmax(amin, power == 2.0 ? x * x : pow(x, power));
      logs += log(s);
      sums += s;
    }
    logs = warp_sum(logs);
    sums = warp_sum(sums);
    if (lane == 0) {
      const double nb = static_cast<double>(bins);
      a.flatness[out_at] = static_cast<float>(exp(logs / nb) / (sums / nb));
    }
  }

  if (a.flux != nullptr) {
    double acc = 0.0;
    if (t > 0) {
      const float* prev = mag - bins;
      for (int k = lane; k < bins; k += 32) {
        const double d = static_cast<double>(mag[k]) - static_cast<double>(prev[k]);
        const double up = d > 0 ? d : 0.0;
        acc += up * up;
      }
      acc = warp_sum(acc);
    }
    if (lane == 0) a.flux[out_at] = static_cast<float>(sqrt(acc));
  }

  // instantiated apart: the register lists of the band selection would lower every other
  // output's occupancy
  if (kContrast && a.contrast_peak != nullptr) {
    for (std::size_t b = 0; b < a.n_bands; ++b) {
      const int* band = a.contrast_bands + 3 * b;
      double valley, peak;
      const int q = band[2];
      if (q <= 2) {
        band_extremes_sorted<2>(mag, band[0], band[1], q, lane, valley, peak);
      } else if (q <= 4) {
        band_extremes_sorted<4>(mag, band[0], band[1], q, lane, valley, peak);
      } else if (q <= 8) {
        band_extremes_sorted<8>(mag, band[0], band[1], q, lane, valley, peak);
      } else if (q <= 16) {
        band_extremes_sorted<16>(mag, band[0], band[1], q, lane, valley, peak);
      } else {
        band_extremes(mag, band[0], band[1], q, lane, valley, peak);
      }
      if (lane == 0) {
        const std::size_t at = (c * a.n_bands + b) * frames + t;
        a.contrast_peak[at] = peak;
        a.contrast_valley[at] = valley;
        if (a.contrast_max_bits != nullptr) {
          atomic_max_nonneg(a.contrast_max_bits, peak);
          atomic_max_nonneg(a.contrast_max_bits + 1, valley);
        }
      }
    }
  }
}

template <bool kContrast>
__global__ void __launch_bounds__(kThreads) frame_features_kernel(const FrameFeatureArgs a) {
  extern __shared__ float smem[];
  const int bins = static_cast<int>(a.bins);
  const std::size_t frames = a.frames;
  const std::size_t c = blockIdx.y;
  const std::size_t t0 = static_cast<std::size_t>(blockIdx.x) * kTile;
  const int tid = threadIdx.x;
  const float2* spec = static_cast<const float2*>(a.spec);
  float* pw = smem;

  // row 0 (the frame before the tile) is read only for the flux
  for (int f = a.flux != nullptr ? 0 : 1; f <= kTile; ++f) {
    const long long t = static_cast<long long>(t0) - 1 + f;
    float* row = pw + f * bins;
    if (t < 0 || static_cast<std::size_t>(t) >= frames) {
      for (int k = tid; k < bins; k += kThreads) row[k] = 0.0f;
      continue;
    }
    const float2* X = spec + (c * a.spec_rows + static_cast<std::size_t>(t)) * a.bins;
    for (int k = tid; k < bins; k += kThreads) {
      row[k] = power_of(spectrum_at(X, k, bins, a.hann_shortcut));
    }
  }
  if (a.stft != nullptr) {
    for (int idx = tid; idx < kTile * bins; idx += kThreads) {
      const int f = idx % kTile, k = idx / kTile;
      const std::size_t t = t0 + static_cast<std::size_t>(f);
      if (t >= frames) continue;
      const float2* X = spec + (c * a.spec_rows + t) * a.bins;
      static_cast<float2*>(a.stft)[(c * a.bins + static_cast<std::size_t>(k)) * frames + t] =
          spectrum_at(X, k, bins, a.hann_shortcut);
    }
  }
  __syncthreads();
  tile_outputs<kContrast>(a, pw, c, t0);
}

// The fused path: the block reads the samples of its frames (and the one before) once, each
// warp windows and transforms a frame in registers and shared memory (fft_2048.cuh) and
// leaves its power spectrum in pw; the spectrum never reaches device memory.
template <bool kContrast>
__global__ void __launch_bounds__(kThreads) fused_features_kernel(const FrameFeatureArgs a) {
  namespace fft = mlu::cuda::fft;
  extern __shared__ float smem[];
  const int bins = fft::kBins;
  const std::size_t frames = a.frames;
  const std::size_t c = blockIdx.y;
  const std::size_t t0 = static_cast<std::size_t>(blockIdx.x) * kTile;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const std::size_t hop = a.hop;
  float* pw = smem;                                   // (kTile + 1) * bins
  float* seg = pw + (((kTile + 1) * bins + 1) & ~1);  // kTile * hop + n_fft samples
  const std::size_t seg_len = kTile * hop + fft::kN;
  fft::Cf* buffers = reinterpret_cast<fft::Cf*>(seg + ((seg_len + 1) & ~std::size_t{1}));
  fft::Cf* buf = buffers + warp * (fft::kR * fft::kPitch);
  const fft::Cf* tw = static_cast<const fft::Cf*>(a.twiddles);

  // samples of frames t0 - 1 .. t0 + kTile - 1 (zero outside the signal: centring pads zeros)
  const long long first = static_cast<long long>(t0) * static_cast<long long>(hop) -
                          static_cast<long long>(hop) - static_cast<long long>(a.pad);
  const long long n = static_cast<long long>(a.n);
  for (std::size_t q = static_cast<std::size_t>(tid); q < seg_len; q += kThreads) {
    const long long p = first + static_cast<long long>(q);
    float v = 0.0f;
    if (p >= 0 && p < n) {
      const long long at = static_cast<long long>(c) * a.stride_c + p * a.stride_n;
      v = a.signal_f64 ? static_cast<float>(static_cast<const double*>(a.signal)[at])
                       : static_cast<const float*>(a.signal)[at];
    }
    seg[q] = v;
  }
  __syncthreads();

  const bool previous = a.flux != nullptr && t0 > 0;
  for (int f = warp + (previous ? 0 : 1); f <= kTile; f += kTile) {
    const long long t = static_cast<long long>(t0) - 1 + f;
    if (t < 0 || static_cast<std::size_t>(t) >= frames) continue;
    fft::Cf v[fft::kR];
    fft::stage1(seg + static_cast<std::size_t>(f) * hop, a.window, tw, lane, v);
    fft::exchange_store(buf, lane, v);
    __syncwarp();
    fft::exchange_load(buf, lane, v);
    fft::dft32(v);
    __syncwarp();
    fft::store_z(buf, lane, v);
    __syncwarp();
    for (int k = lane; k < bins; k += 32) {
      const fft::Cf x = fft::real_bin(buf, tw, k);
      pw[f * bins + k] = power_of(make_float2(x.re, x.im));
      if (a.stft != nullptr && f >= 1) {
        static_cast<float2*>(a.stft)[(c * a.bins + static_cast<std::size_t>(k)) * frames +
                                     static_cast<std::size_t>(t)] = make_float2(x.re, x.im);
      }
    }
    __syncwarp();
  }
  __syncthreads();
  tile_outputs<kContrast>(a, pw, c, t0);
}

}  // namespace

void prepare_signal(const void* y, bool f64, std::size_t channels, std::size_t n,
                    std::int64_t stride_c, std::int64_t stride_n, float* out, std::size_t row,
                    std::size_t offset, Stream stream) {
  if (channels == 0 || row == 0) return;
  const unsigned threads = 256;
  const unsigned along = grid_for(row, threads, 1u << 10);
  const dim3 blocks(along, static_cast<unsigned>(std::min<std::size_t>(channels, 65535)));
  if (f64) {
    prepare_kernel<<<blocks, threads, 0, as_stream(stream)>>>(
        static_cast<const double*>(y), channels, n, stride_c, stride_n, out, row, offset);
  } else {
    prepare_kernel<<<blocks, threads, 0, as_stream(stream)>>>(
        static_cast<const float*>(y), channels, n, stride_c, stride_n, out, row, offset);
  }
  check_launch("prepare_kernel");
}

void frame_windowed(const float* buf, std::size_t channels, std::size_t row, std::size_t frames,
                    std::size_t n_fft, std::size_t hop, const float* window, float* out,
                    Stream stream) {
  const std::size_t total = channels * frames * n_fft;
  if (total == 0) return;
  const unsigned threads = 256;
  frame_windowed_kernel<<<grid_for(total, threads, 1u << 16), threads, 0, as_stream(stream)>>>(
      buf, channels, row, frames, n_fft, hop, window, out);
  check_launch("frame_windowed_kernel");
}

void frame_features(const FrameFeatureArgs& args, Stream stream) {
  if (args.channels == 0 || args.frames == 0) return;
  require(args.n_chroma <= static_cast<std::size_t>(kMaxChroma),
          "the CUDA backend supports at most " + std::to_string(kMaxChroma) + " chroma bins");
  require(args.channels <= 65535, "at most 65535 channels per CUDA pass");
  const bool fused = args.spec == nullptr;
  std::size_t smem = static_cast<std::size_t>(kTile + 1) * args.bins * sizeof(float);
  if (fused) {
    namespace fft = mlu::cuda::fft;
    require(args.n_fft == static_cast<std::size_t>(fft::kN) && args.bins == fft::kBins,
            "the fused CUDA path needs n_fft=2048");
    require(args.signal != nullptr && args.window != nullptr && args.twiddles != nullptr &&
                args.hop >= 1,
            "the fused CUDA path is missing its signal, window or twiddles");
    const std::size_t seg_len = kTile * args.hop + fft::kN;
    smem += sizeof(float) +  // seg starts on an even float
            ((seg_len + 1) & ~std::size_t{1}) * sizeof(float) +
            static_cast<std::size_t>(kTile) * fft::kR * fft::kPitch * sizeof(fft::Cf);
  }
  int device = 0, limit = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
        "cudaDeviceGetAttribute");
  const std::size_t static_smem = sizeof(float) * kTile * kMaxChroma;
  require(smem + static_smem <= static_cast<std::size_t>(limit),
          "n_fft=" + std::to_string(args.n_fft) + " needs " + std::to_string(smem) +
              " bytes of shared memory per block; this device allows " + std::to_string(limit));
  const bool contrast = args.contrast_peak != nullptr;
  auto* kernel = fused ? (contrast ? fused_features_kernel<true> : fused_features_kernel<false>)
                       : (contrast ? frame_features_kernel<true> : frame_features_kernel<false>);
  if (smem > 48 * 1024) {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem)),
          "cudaFuncSetAttribute");
  }
  const dim3 grid(static_cast<unsigned>((args.frames + kTile - 1) / kTile),
                  static_cast<unsigned>(args.channels));
  kernel<<<grid, kThreads, smem, as_stream(stream)>>>(args);
  check_launch(fused ? "fused_features_kernel" : "frame_features_kernel");
}

}  // namespace mlu::cuda
