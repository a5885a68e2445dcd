// Helpers shared by the .cu files: status checks, launch checks, warp reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "kernels.hpp"

namespace mlu::cuda {

// Throws DeviceMemoryError for an allocation failure and DeviceError for anything else.
inline void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  // Clear a sticky-free error so the next call does not report it again.
  (void)cudaGetLastError();
  std::string message = std::string(what) + ": " + cudaGetErrorString(status);
  if (status == cudaErrorMemoryAllocation) throw DeviceMemoryError(message);
  throw DeviceError(message);
}

inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

inline cudaStream_t as_stream(Stream s) { return static_cast<cudaStream_t>(s); }

inline unsigned int grid_for(std::size_t work, unsigned int threads, std::size_t cap = 1u << 20) {
  std::size_t blocks = (work + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > cap) blocks = cap;
  return static_cast<unsigned int>(blocks);
}

constexpr unsigned int kFullMask = 0xffffffffu;

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(kFullMask, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// Non-negative floats and doubles order like their bit patterns: atomicMax on the bits.
__device__ __forceinline__ void atomic_max_nonneg(unsigned int* bits, float v) {
  if (v > 0.0f) atomicMax(bits, __float_as_uint(v));
}
__device__ __forceinline__ void atomic_max_nonneg(unsigned long long* bits, double v) {
  if (v > 0.0) atomicMax(bits, static_cast<unsigned long long>(__double_as_longlong(v)));
}

// librosa.power_to_db of one value given the maximum of the un-floored results.
__device__ __forceinline__ float power_db(float x, float amin, float ref_db, float floor_db) {
  const float d = 10.0f * log10f(fmaxf(amin, x)) - ref_db;
  return fmaxf(d, floor_db);
}

// The floor max - top_db from the largest energy (bits), or -inf without top_db.
__device__ __forceinline__ float db_floor(const unsigned int* max_bits, float amin, float ref_db,
                                          float top_db) {
  if (top_db < 0.0f) return -INFINITY;
  const float mx = 10.0f * log10f(fmaxf(amin, __uint_as_float(*max_bits))) - ref_db;
  return mx - top_db;
}

}  // namespace mlu::cuda
