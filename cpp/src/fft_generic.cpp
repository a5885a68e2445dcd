// FFT kernels compiled for the generic instruction set (see fft_kernels.inc).
#define MLU_ISA generic
#define MLU_VEC_BYTES 16
#define MLU_KERNELS_F32 kernels_generic_f32_impl
#define MLU_KERNELS_F64 kernels_generic_f64_impl
#include "fft_kernels.inc"

namespace mlu::detail {
const Kernels<float>& kernels_generic_f32() { return generic::kernels_generic_f32_impl(); }
const Kernels<double>& kernels_generic_f64() { return generic::kernels_generic_f64_impl(); }
}  // namespace mlu::detail
