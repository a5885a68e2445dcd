// CUDA kernels of the backend, callable from host C++ without CUDA headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mlu::cuda {

// Number of visible CUDA devices; throws std::runtime_error with the CUDA message on failure
// (no driver, no device).
int device_count();

// out[i] = re[i]^2 + im[i]^2 for interleaved complex64 input, on `stream` (0: the legacy default
// stream). Pointers are device pointers; throws std::runtime_error on any CUDA error.
void power_spectrum_c64(const void* in, float* out, std::size_t count, std::uintptr_t stream);

}  // namespace mlu::cuda
