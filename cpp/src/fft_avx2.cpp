// FFT kernels compiled for the avx2 instruction set (see fft_kernels.inc).
#define MLU_ISA avx2
#define MLU_VEC_BYTES 32
#define MLU_KERNELS_F32 kernels_avx2_f32_impl
#define MLU_KERNELS_F64 kernels_avx2_f64_impl
#include "fft_kernels.inc"

namespace mlu::detail {
const Kernels<float>& kernels_avx2_f32() { return avx2::kernels_avx2_f32_impl(); }
const Kernels<double>& kernels_avx2_f64() { return avx2::kernels_avx2_f64_impl(); }
}  // namespace mlu::detail
