#include "mlu/fft.hpp"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fft_impl.hpp"
#include "mlu/error.hpp"

namespace mlu {

namespace {

SimdLevel detect() noexcept {
#if MLU_HAVE_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) {
    return SimdLevel::avx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::avx2;
#endif
  return SimdLevel::generic;
}

std::atomic<int> g_simd_override{-1};

bool is_pow2(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }

template <typename T>
const detail::Kernels<T>& kernels_for(SimdLevel level);

template <>
const detail::Kernels<float>& kernels_for<float>(SimdLevel level) {
#if MLU_HAVE_X86
  if (level == SimdLevel::avx512) return detail::kernels_avx512_f32();
  if (level == SimdLevel::avx2) return detail::kernels_avx2_f32();
#endif
  (void)level;
  return detail::kernels_generic_f32();
}

template <>
const detail::Kernels<double>& kernels_for<double>(SimdLevel level) {
#if MLU_HAVE_X86
  if (level == SimdLevel::avx512) return detail::kernels_avx512_f64();
  if (level == SimdLevel::avx2) return detail::kernels_avx2_f64();
#endif
  (void)level;
  return detail::kernels_generic_f64();
}

constexpr double kPi = 3.14159265358979323846264338327950288;

// Stockham twiddles for a complex transform of size m, in the order stockham() reads them.
template <typename T>
std::vector<T> stockham_twiddles(std::size_t m) {
  std::vector<T> tw;
  for (std::size_t len = m; len >= 4; len /= 4) {
    for (std::size_t p = 0; p < len / 4; ++p) {
      for (std::size_t r = 1; r <= 3; ++r) {
        // Reduce the angle's integer part first so large sizes keep full precision.
        const std::size_t k = (p * r) % len;
        const double a = -2.0 * kPi * static_cast<double>(k) / static_cast<double>(len);
        tw.push_back(static_cast<T>(std::cos(a)));
        tw.push_back(static_cast<T>(std::sin(a)));
      }
    }
  }
  return tw;
}

}  // namespace

SimdLevel detected_simd() noexcept {
  static const SimdLevel level = detect();
  return level;
}

SimdLevel active_simd() noexcept {
  const int forced = g_simd_override.load();
  return forced < 0 ? detected_simd() : static_cast<SimdLevel>(forced);
}

void set_simd_level(SimdLevel level) {
  require(static_cast<int>(level) <= static_cast<int>(detected_simd()),
          std::string("SIMD level '") + simd_name(level) + "' is not supported by this processor (best: " +
              simd_name(detected_simd()) + ")");
  g_simd_override.store(static_cast<int>(level));
}

const char* simd_name(SimdLevel level) noexcept {
  switch (level) {
    case SimdLevel::avx512:
      return "avx512";
    case SimdLevel::avx2:
      return "avx2";
    default:
      return "generic";
  }
}

template <typename T>
struct RealFft<T>::Impl {
  SimdLevel simd;
  const detail::Kernels<T>* kernels;
  detail::RealTables<T> tables;
  std::vector<T> twiddles, post, chirp, kernel;
};

template <typename T>
RealFft<T>::RealFft(std::size_t n) : impl_(new Impl) {
  require(n >= 1, "FFT size must be positive, got n=" + std::to_string(n));
  require(n <= (std::size_t{1} << 30), "FFT size n=" + std::to_string(n) + " is too large");
  Impl& im = *impl_;
  im.simd = active_simd();
  im.kernels = &kernels_for<T>(im.simd);
  auto& t = im.tables;
  t.n = n;
  t.pow2 = is_pow2(n);
  if (t.pow2) {
    const std::size_t m = n >= 2 ? n / 2 : 1;
    im.twiddles = stockham_twiddles<T>(m);
    im.post.resize(2 * m);
    for (std::size_t k = 0; k < m; ++k) {
      const double a = -2.0 * kPi * static_cast<double>(k) / static_cast<double>(n);
      im.post[2 * k] = static_cast<T>(std::cos(a));
      im.post[2 * k + 1] = static_cast<T>(std::sin(a));
    }
    t.cplx.m = m;
  } else {
    std::size_t M = 1;
    while (M < 2 * n - 1) M *= 2;
    im.twiddles = stockham_twiddles<T>(M);
    t.cplx.m = M;
    // chirp_j = exp(-i pi j^2 / n); j^2 is reduced mod 2n exactly in integers.
    std::vector<double> cr(n), ci(n);
    im.chirp.resize(2 * n);
    for (std::size_t j = 0; j < n; ++j) {
      const std::uint64_t jj = (static_cast<std::uint64_t>(j) * j) % (2 * static_cast<std::uint64_t>(n));
      const double a = -kPi * static_cast<double>(jj) / static_cast<double>(n);
      cr[j] = std::cos(a);
      ci[j] = std::sin(a);
      im.chirp[2 * j] = static_cast<T>(cr[j]);
      im.chirp[2 * j + 1] = static_cast<T>(ci[j]);
    }
    // The kernel b_j = conj(chirp_j), wrapped: b[M - j] = b[j]. Its DFT is computed once in
    // double precision (a direct O(M log M) radix-2 transform) and scaled by 1/M.
    std::vector<double> br(M, 0.0), bi(M, 0.0);
    for (std::size_t j = 0; j < n; ++j) {
      br[j] = cr[j];
      bi[j] = -ci[j];
      if (j > 0) {
        br[M - j] = cr[j];
        bi[M - j] = -ci[j];
      }
    }
    // Iterative radix-2 DIT with bit reversal, in double.
    for (std::size_t i = 1, j = 0; i < M; ++i) {
      std::size_t bit = M >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) {
        std::swap(br[i], br[j]);
        std::swap(bi[i], bi[j]);
      }
    }
    for (std::size_t len = 2; len <= M; len <<= 1) {
      for (std::size_t i = 0; i < M; i += len) {
        for (std::size_t k = 0; k < len / 2; ++k) {
          const double a = -2.0 * kPi * static_cast<double>(k) / static_cast<double>(len);
          const double wr = std::cos(a), wi = std::sin(a);
          const std::size_t u = i + k, v = i + k + len / 2;
          const double xr = br[v] * wr - bi[v] * wi, xi = br[v] * wi + bi[v] * wr;
          br[v] = br[u] - xr;
          bi[v] = bi[u] - xi;
          br[u] += xr;
          bi[u] += xi;
        }
      }
    }
    im.kernel.resize(2 * M);
    for (std::size_t k = 0; k < M; ++k) {
      im.kernel[2 * k] = static_cast<T>(br[k] / static_cast<double>(M));
      im.kernel[2 * k + 1] = static_cast<T>(bi[k] / static_cast<double>(M));
    }
    t.chirp = im.chirp.data();
    t.kernel = im.kernel.data();
  }
  t.cplx.twiddles = im.twiddles.data();
  t.post = im.post.data();
}

template <typename T>
RealFft<T>::~RealFft() = default;

template <typename T>
std::size_t RealFft<T>::size() const noexcept {
  return impl_->tables.n;
}

template <typename T>
std::size_t RealFft<T>::lanes() const noexcept {
  return impl_->kernels->lanes;
}

template <typename T>
std::size_t RealFft<T>::scratch_size() const noexcept {
  return impl_->kernels->scratch_size(impl_->tables);
}

template <typename T>
SimdLevel RealFft<T>::simd() const noexcept {
  return impl_->simd;
}

template <typename T>
void RealFft<T>::forward(const T* in, T* out_re, T* out_im, T* scratch) const {
  impl_->kernels->forward(impl_->tables, in, out_re, out_im, scratch);
}

template <typename T>
void RealFft<T>::gather(const T* const* frames, const T* window, T* in) const {
  impl_->kernels->gather(frames, window, impl_->tables.n, in);
}

template class RealFft<float>;
template class RealFft<double>;

}  // namespace mlu
