#include "mlu/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mlu/error.hpp"

namespace mlu {

namespace {
// Set while a thread runs a chunk: nested parallel_for calls then run inline instead of
// waiting on workers that may all be busy with the outer loop.
thread_local bool t_inside_pool = false;

// One parallel_for call: chunks are claimed with an atomic counter by whoever is free.
struct Job {
  const std::function<void(std::size_t, std::size_t)>* fn;
  std::size_t n, chunk, n_chunks;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::mutex mutex;
  std::condition_variable finished;
  std::exception_ptr error;

  // Runs chunks until none are left; returns after the last one this thread claimed.
  void work() {
    for (;;) {
      const std::size_t c = next.fetch_add(1);
      if (c >= n_chunks) return;
      const std::size_t begin = c * chunk;
      const std::size_t end = std::min(n, begin + chunk);
      const bool outer = t_inside_pool;
      t_inside_pool = true;
      try {
        (*fn)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
      }
      t_inside_pool = outer;
      if (done.fetch_add(1) + 1 == n_chunks) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_all();
      }
    }
  }
};
}  // namespace

struct ThreadPool::Impl {
  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Job>> queue;
  bool stopping = false;

  void loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping && queue.empty()) return;
        job = queue.front();
        // Leave the job queued while it still has unclaimed chunks so other workers join in.
        if (job->next.load() >= job->n_chunks) {
          queue.pop_front();
          continue;
        }
      }
      job->work();
      std::lock_guard<std::mutex> lock(mutex);
      if (!queue.empty() && queue.front() == job) queue.pop_front();
    }
  }
};

ThreadPool::ThreadPool(std::size_t n_threads) : impl_(new Impl) {
  require(n_threads >= 1, "thread pool size must be at least 1, got " + std::to_string(n_threads));
  for (std::size_t i = 1; i < n_threads; ++i) impl_->workers.emplace_back([this] { impl_->loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  for (auto& t : impl_->workers) t.join();
  delete impl_;
}

std::size_t ThreadPool::size() const noexcept { return impl_->workers.size() + 1; }

void ThreadPool::parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                              std::size_t min_chunk) {
  if (n == 0) return;
  min_chunk = std::max<std::size_t>(min_chunk, 1);
  const std::size_t threads = size();
  if (threads == 1 || t_inside_pool || n <= min_chunk) {
    fn(0, n);
    return;
  }
  // A few chunks per thread balance uneven work without much claiming overhead.
  std::size_t chunk = std::max(min_chunk, (n + 4 * threads - 1) / (4 * threads));
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  job->chunk = chunk;
  job->n_chunks = (n + chunk - 1) / chunk;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->queue.push_back(job);
  }
  impl_->wake.notify_all();
  job->work();
  {
    std::unique_lock<std::mutex> lock(job->mutex);
    job->finished.wait(lock, [&] { return job->done.load() == job->n_chunks; });
  }
  {
    // Drop the finished job from the queue if no worker has done so yet.
    std::lock_guard<std::mutex> lock(impl_->mutex);
    for (auto it = impl_->queue.begin(); it != impl_->queue.end(); ++it) {
      if (*it == job) {
        impl_->queue.erase(it);
        break;
      }
    }
  }
  if (job->error) std::rethrow_exception(job->error);
}

namespace {
std::mutex g_pool_mutex;
std::shared_ptr<ThreadPool> g_pool;
std::size_t g_threads = 0;

std::size_t hardware_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}
}  // namespace

std::shared_ptr<ThreadPool> default_pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) {
    if (g_threads == 0) g_threads = hardware_threads();
    g_pool = std::make_shared<ThreadPool>(g_threads);
  }
  return g_pool;
}

void set_default_threads(std::size_t n_threads) {
  require(n_threads >= 1, "number of threads must be at least 1, got " + std::to_string(n_threads));
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_threads == n_threads && g_pool) return;
  g_threads = n_threads;
  // The old pool is kept alive by whoever still uses it and freed after; new calls get the new one.
  g_pool.reset();
}

std::size_t default_threads() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  return g_threads == 0 ? hardware_threads() : g_threads;
}

}  // namespace mlu
