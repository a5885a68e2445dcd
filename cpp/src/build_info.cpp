#include "mlu/build_info.hpp"

#include "mlu/fft.hpp"
#include "mlu/thread_pool.hpp"

namespace mlu {

BuildInfo build_info() {
  BuildInfo info;
  info.compiler = MLU_COMPILER;
  info.simd = simd_name(active_simd());
  info.simd_detected = simd_name(detected_simd());
#if MLU_HAVE_X86
  info.simd_compiled = "generic,avx2,avx512";
#else
  info.simd_compiled = "generic";
#endif
  info.threads = default_threads();
#if defined(__SANITIZE_ADDRESS__)
  info.sanitized = true;
#else
  info.sanitized = false;
#endif
  return info;
}

}  // namespace mlu
