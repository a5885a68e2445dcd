// A small fixed-size thread pool for data-parallel loops over frames, channels and batches.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace mlu {

class ThreadPool {
 public:
  // `n_threads` counts the calling thread: a pool of 1 runs everything inline.
  explicit ThreadPool(std::size_t n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  std::size_t size() const noexcept;

  // Calls fn(begin, end) over disjoint chunks covering [0, n), on the workers and the calling
  // thread, and returns when all are done. Chunks hold at least `min_chunk` items. The first
  // exception thrown by a chunk is rethrown here after every chunk has finished. Safe to call
  // from several threads at once; a call made from inside a chunk runs inline.
  void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                    std::size_t min_chunk = 1);

 private:
  struct Impl;
  Impl* impl_;
};

// The process-wide pool used by the compute functions. Its size comes from
// set_default_threads (ML_UTILITIES_MAX_WORKERS on the Python side) or all hardware threads.
// Callers hold the pointer for the length of a call, so a resize never pulls a pool from under
// a running computation.
std::shared_ptr<ThreadPool> default_pool();
void set_default_threads(std::size_t n_threads);
std::size_t default_threads();

}  // namespace mlu
