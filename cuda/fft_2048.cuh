// The fused path's FFT: a 2048-point real FFT by one warp, as a 1024-point complex FFT of
// the even/odd samples split 32 x 32 (a 32-point DFT in registers per lane, a twiddle, a
// transpose through shared memory, a second 32-point DFT), then the real-input unpacking.
//
// The per-lane steps are plain C++ usable on the host too (MLU_HD): tests/gpu compiles this
// header with g++ and emulates the warp lane by lane, checking it against numpy's rfft.
#pragma once

#if defined(__CUDACC__)
#define MLU_HD __host__ __device__ __forceinline__
#else
#define MLU_HD inline
#endif

namespace mlu::cuda::fft {

constexpr int kN = 2048;  // real samples per frame
constexpr int kM = 1024;  // complex points
constexpr int kR = 32;    // kM = kR * kR
constexpr int kBins = kN / 2 + 1;
constexpr int kPitch = kR + 1;  // padded row of the transpose buffer (fewer bank conflicts)

struct Cf {
  float re, im;
};

MLU_HD Cf cadd(Cf a, Cf b) { return {a.re + b.re, a.im + b.im}; }
MLU_HD Cf csub(Cf a, Cf b) { return {a.re - b.re, a.im - b.im}; }
MLU_HD Cf cmul(Cf a, Cf b) { return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
MLU_HD Cf conj(Cf a) { return {a.re, -a.im}; }

// W_32^j = exp(-2 pi i j / 32), j = 0..15
#define MLU_W32_RE         \
  {1.0f,                   \
   0.9807852804032304f,    \
   0.9238795325112867f,    \
   0.8314696123025452f,    \
   0.7071067811865476f,    \
   0.5555702330196023f,    \
   0.38268343236508984f,   \
   0.19509032201612833f,   \
   6.123233995736766e-17f, \
   -0.1950903220161282f,   \
   -0.3826834323650897f,   \
   -0.555570233019602f,    \
   -0.7071067811865475f,   \
   -0.8314696123025453f,   \
   -0.9238795325112867f,   \
   -0.9807852804032304f}
#define MLU_W32_IM        \
  {-0.0f,                 \
   -0.19509032201612825f, \
   -0.3826834323650898f,  \
   -0.5555702330196022f,  \
   -0.7071067811865475f,  \
   -0.8314696123025452f,  \
   -0.9238795325112867f,  \
   -0.9807852804032304f,  \
   -1.0f,                 \
   -0.9807852804032304f,  \
   -0.9238795325112867f,  \
   -0.8314696123025455f,  \
   -0.7071067811865476f,  \
   -0.5555702330196022f,  \
   -0.3826834323650899f,  \
   -0.1950903220161286f}

MLU_HD Cf w32(int j) {
  constexpr float re[16] = MLU_W32_RE;
  constexpr float im[16] = MLU_W32_IM;
  return {re[j], im[j]};
}

MLU_HD int reverse5(int i) {
  return ((i & 1) << 4) | ((i & 2) << 2) | (i & 4) | ((i & 8) >> 2) | ((i & 16) >> 4);
}

// One radix-2 stage of span LEN (a compile-time constant, so every loop below has a constant
// trip count and unrolls completely).
template <int LEN>
MLU_HD void dft32_stage(Cf* v) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int i = 0; i < kR; i += LEN) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int j = 0; j < LEN / 2; ++j) {
      const Cf u = v[i + j];
      const Cf t = cmul(w32(j * (kR / LEN)), v[i + j + LEN / 2]);
      v[i + j] = cadd(u, t);
      v[i + j + LEN / 2] = csub(u, t);
    }
  }
}

// In place: v[k] = sum_j v[j] W_32^{jk} (forward DFT, natural order in and out). Fully
// unrolled on the device so every index is a constant and v stays in registers.
MLU_HD void dft32(Cf* v) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int i = 0; i < kR; ++i) {
    const int j = reverse5(i);
    if (j > i) {
      const Cf t = v[i];
      v[i] = v[j];
      v[j] = t;
    }
  }
  dft32_stage<2>(v);
  dft32_stage<4>(v);
  dft32_stage<8>(v);
  dft32_stage<16>(v);
  dft32_stage<32>(v);
}

// Stage 1 for lane b: z[m] = x[2m] + i x[2m+1] with m = 32 a + b (x = frame * window), the
// 32-point DFT over a, times W_1024^{b k1} = W_2048^{2 b k1} (tw: kN values of W_2048^j).
MLU_HD void stage1(const float* frame, const float* window, const Cf* tw, int b, Cf* v) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int a = 0; a < kR; ++a) {
    const int m = kR * a + b;
    v[a] = {frame[2 * m] * window[2 * m], frame[2 * m + 1] * window[2 * m + 1]};
  }
  dft32(v);
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int k1 = 1; k1 < kR; ++k1) v[k1] = cmul(v[k1], tw[(2 * b * k1) & (kN - 1)]);
}

// The transpose: lane b stores its 32 values as column b; lane k1 loads row k1.
MLU_HD void exchange_store(Cf* buf, int b, const Cf* v) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int k1 = 0; k1 < kR; ++k1) buf[k1 * kPitch + b] = v[k1];
}
MLU_HD void exchange_load(const Cf* buf, int k1, Cf* v) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int b = 0; b < kR; ++b) v[b] = buf[k1 * kPitch + b];
}

// After the second dft32, lane k1 holds Z[k1 + 32 k2] in v[k2]: store Z in natural order.
MLU_HD void store_z(Cf* z, int k1, const Cf* v) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int k2 = 0; k2 < kR; ++k2) z[k1 + kR * k2] = v[k2];
}

// X[k] (k = 0..1024) of the real frame from Z: X = (Z[k] + conj Z[M-k]) / 2
// - i/2 W_2048^k (Z[k] - conj Z[M-k]), with Z[M] = Z[0].
MLU_HD Cf real_bin(const Cf* z, const Cf* tw, int k) {
  const Cf zk = z[k & (kM - 1)];
  const Cf zm = conj(z[(kM - k) & (kM - 1)]);
  const Cf a = cadd(zk, zm);
  const Cf p = cmul(tw[k & (kN - 1)], csub(zk, zm));
  // a / 2 - i p / 2
  return {0.5f * (a.re + p.im), 0.5f * (a.im - p.re)};
}

}  // namespace mlu::cuda::fft
