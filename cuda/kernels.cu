// Device queries and the smallest kernels of the backend.
#include <cuda_runtime.h>

#include "common.cuh"
#include "kernels.hpp"

namespace mlu::cuda {

namespace {

__global__ void power_spectrum_kernel(const float2* in, float* out, std::size_t count) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const float2 z = in[i];
    out[i] = z.x * z.x + z.y * z.y;
  }
}

}  // namespace

int device_count() {
  int n = 0;
  check(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  return n;
}

void power_spectrum_c64(const void* in, float* out, std::size_t count, std::uintptr_t stream) {
  if (count == 0) return;
  const unsigned threads = 256;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  power_spectrum_kernel<<<grid_for(count, threads, 65535), threads, 0, s>>>(
      static_cast<const float2*>(in), out, count);
  check_launch("power_spectrum_kernel");
}

}  // namespace mlu::cuda
