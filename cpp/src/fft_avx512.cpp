// FFT kernels compiled for the avx512 instruction set (see fft_kernels.inc).
#define MLU_ISA avx512
#define MLU_VEC_BYTES 64
#define MLU_KERNELS_F32 kernels_avx512_f32_impl
#define MLU_KERNELS_F64 kernels_avx512_f64_impl
#include "fft_kernels.inc"

namespace mlu::detail {
const Kernels<float>& kernels_avx512_f32() { return avx512::kernels_avx512_f32_impl(); }
const Kernels<double>& kernels_avx512_f64() { return avx512::kernels_avx512_f64_impl(); }
}  // namespace mlu::detail
