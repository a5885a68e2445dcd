// Internal to the FFT: plan tables shared by every instruction-set variant of the kernels.
//
// The kernel translation units are compiled with different -m flags, so they must not
// instantiate any inline library code (std::vector and friends) that the linker could merge
// across them: the tables here are plain pointers into storage owned by fft.cpp.
#pragma once

#include <cstddef>

namespace mlu::detail {

// Twiddles of a power-of-two complex Stockham transform of size m: radix-4 stages, then one
// radix-2 stage when log2(m) is odd. For the radix-4 stage of length `len`, p < len/4 holds
// w^p, w^2p, w^3p (w = exp(-2 pi i / len)) as 6 values re, im, re, im, re, im.
template <typename T>
struct ComplexTables {
  std::size_t m = 1;
  const T* twiddles = nullptr;
};

template <typename T>
struct RealTables {
  std::size_t n = 1;
  bool pow2 = true;
  ComplexTables<T> cplx;  // size n/2 (pow2), or the Bluestein convolution size
  // pow2: exp(-2 pi i k / n) for k < n/2, interleaved re, im.
  const T* post = nullptr;
  // Bluestein: chirp exp(-i pi j^2 / n) for j < n (re, im interleaved) and the transform of the
  // conjugate chirp zero-extended to cplx.m, pre-scaled by 1/cplx.m (re, im interleaved).
  const T* chirp = nullptr;
  const T* kernel = nullptr;
};

template <typename T>
struct Kernels {
  std::size_t lanes;
  // Scratch in T elements the forward pass needs for these tables.
  std::size_t (*scratch_size)(const RealTables<T>& t);
  void (*forward)(const RealTables<T>& t, const T* in, T* out_re, T* out_im, T* scratch);
  // out[j * lanes + l] = window[j] * frames[l][j] for j < n, l < lanes.
  void (*gather)(const T* const* frames, const T* window, std::size_t n, T* out);
};

const Kernels<float>& kernels_generic_f32();
const Kernels<double>& kernels_generic_f64();
#if MLU_HAVE_X86
const Kernels<float>& kernels_avx2_f32();
const Kernels<double>& kernels_avx2_f64();
const Kernels<float>& kernels_avx512_f32();
const Kernels<double>& kernels_avx512_f64();
#endif

}  // namespace mlu::detail
