// The CUDA backend's kernels. This file proves the build and load wiring; the full feature
// plans (fused frame -> FFT -> mel -> dB) are the CUDA backend's own work.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels.hpp"

namespace mlu::cuda {

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

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
  const int threads = 256;
  const std::size_t wanted = (count + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(wanted < 65535 ? wanted : 65535);
  auto s = reinterpret_cast<cudaStream_t>(stream);
  power_spectrum_kernel<<<blocks, threads, 0, s>>>(static_cast<const float2*>(in), out, count);
  check(cudaGetLastError(), "power_spectrum_kernel launch");
}

}  // namespace mlu::cuda
