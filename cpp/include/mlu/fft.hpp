// Real-input FFT, batched across frames: one SIMD lane per frame.
//
// A block holds lanes() frames interleaved sample by sample: sample j of lane l is at
// in[j * lanes() + l]. Every butterfly then works on whole vectors of frames, so the same code
// is vectorised for any transform size. Power-of-two sizes use a radix-4 Stockham transform on
// the half-length complex sequence; every other size goes through Bluestein's algorithm.
// Twiddles are computed once, in double precision, when the plan is built.
#pragma once

#include <cstddef>
#include <memory>

namespace mlu {

enum class SimdLevel { generic = 0, avx2 = 1, avx512 = 2 };

// The best instruction set this processor supports among those compiled in.
SimdLevel detected_simd() noexcept;
// The level new plans use: detected_simd() unless lowered with set_simd_level (tests, benchmarks).
SimdLevel active_simd() noexcept;
void set_simd_level(SimdLevel level);  // throws ParameterError above detected_simd()
const char* simd_name(SimdLevel level) noexcept;

template <typename T>
class RealFft {
 public:
  explicit RealFft(std::size_t n);  // n >= 1
  ~RealFft();
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;

  std::size_t size() const noexcept;
  std::size_t n_bins() const noexcept { return size() / 2 + 1; }
  // Frames per block, fixed by the SIMD level at construction.
  std::size_t lanes() const noexcept;
  // Elements of T the caller provides as scratch to forward().
  std::size_t scratch_size() const noexcept;
  SimdLevel simd() const noexcept;

  // in: size() * lanes() samples; out_re, out_im: n_bins() * lanes() values, bin-major.
  // Reentrant: plans are shared between threads, scratch is per thread.
  void forward(const T* in, T* out_re, T* out_im, T* scratch) const;

  // Builds a block for forward(): in[j * lanes() + l] = window[j] * frames[l][j], j < size().
  // `frames` holds lanes() pointers to size() samples each (repeat one for unused lanes).
  void gather(const T* const* frames, const T* window, T* in) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

extern template class RealFft<float>;
extern template class RealFft<double>;

}  // namespace mlu
