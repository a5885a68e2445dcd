// Dynamic batcher: rows submitted from many threads queue here, are cut into batches by size or
// by a maximum queue delay, run through a model once per batch on a worker thread, and the rows
// of the model's output are scattered back to each request. No Python in this header: the model
// and the completion hook are std::functions that the bindings fill.
//
// Guarantees:
//  - submit() never blocks on the model: past `max_queue_size` queued rows it throws Overloaded
//    at once; after shutdown() it throws BatcherClosed.
//  - every request ends in exactly one final state (done, failed, timed out, cancelled); a
//    request is never dropped silently, shutdown included.
//  - a model error fails every request of its batch with that error; a model that returns the
//    wrong number of rows fails the batch with BatchError.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mlu {

// The queue already holds max_queue_size rows: the caller should back off (HTTP 503).
class Overloaded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The request did not complete before its deadline.
class RequestTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The batcher was shut down before the request could run (or before it was submitted).
class BatcherClosed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The batch ran but its output cannot be scattered (wrong row count), or the request was
// cancelled by its caller.
class BatchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BatcherOptions {
  std::size_t n_features = 0;         // values per input row (> 0)
  std::size_t max_batch_size = 64;    // rows per model call (> 0)
  std::int64_t max_queue_delay_us = 1000;  // longest wait for a batch to fill, from its first row
  std::size_t max_queue_size = 4096;  // queued (not yet running) rows before Overloaded
  std::size_t n_workers = 1;          // threads that run batches (> 0)
};

enum class RequestState : int { pending = 0, done = 1, failed = 2, timed_out = 3, cancelled = 4 };

// One submitted row. Shared between the caller (a ticket) and the batcher.
class Request {
 public:
  Request(std::uint64_t id, std::vector<float> input, std::chrono::steady_clock::time_point now,
          std::chrono::steady_clock::time_point deadline, bool notify)
      : id_(id), input_(std::move(input)), enqueued_(now), deadline_(deadline), notify_(notify) {}

  std::uint64_t id() const { return id_; }
  RequestState state() const { return static_cast<RequestState>(state_.load(std::memory_order_acquire)); }
  bool finished() const { return state() != RequestState::pending; }
  // Whether the completion hook is told about this request when it finishes.
  bool notify() const { return notify_; }

  // Blocks until the request finishes or `timeout_us` passes (< 0: no limit). On timeout the
  // request is marked timed out (if it has not finished meanwhile). Returns the final state.
  RequestState wait(std::int64_t timeout_us);

  // Marks a pending request cancelled; returns false if it had already finished.
  bool cancel();

  // Valid once state() == done: the output row (out_cols values).
  const std::vector<float>& output() const { return output_; }
  // Valid once state() is failed / timed_out / cancelled: the error to raise.
  std::exception_ptr error() const { return error_; }
  // Time spent queued before its batch started, in microseconds (-1 before it ran).
  std::int64_t queue_time_us() const { return queue_us_; }
  // Rows in the batch this request ran in (0 before it ran).
  std::size_t batch_size() const { return batch_size_; }
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }
  std::chrono::steady_clock::time_point enqueued() const { return enqueued_; }
  const std::vector<float>& input() const { return input_; }

  // Batcher side: move to a final state exactly once. Each returns false if it lost the race.
  bool complete(std::vector<float> output, std::int64_t queue_us, std::size_t batch_size);
  bool fail(std::exception_ptr error, RequestState state, std::int64_t queue_us = -1,
            std::size_t batch_size = 0);

 private:
  bool finish(RequestState to);

  const std::uint64_t id_;
  const std::vector<float> input_;
  const std::chrono::steady_clock::time_point enqueued_, deadline_;
  const bool notify_;
  std::atomic<int> state_{0};
  std::atomic<bool> claimed_{false};  // the one thread that writes the result
  std::vector<float> output_;
  std::exception_ptr error_;
  std::int64_t queue_us_ = -1;
  std::size_t batch_size_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
};

using RequestPtr = std::shared_ptr<Request>;

struct BatcherStats {
  std::uint64_t submitted = 0, completed = 0, failed = 0, timed_out = 0, cancelled = 0;
  std::uint64_t rejected = 0, batches = 0, batched_rows = 0;
  std::size_t queued = 0, max_batch_seen = 0;
};

class DynamicBatcher {
 public:
  // Runs the model on `rows` x `n_features` row-major floats; fills `out` (rows * out_cols
  // values, row-major) and sets `out_cols`. May throw: the batch then fails with that exception.
  // `out_rows` receives the number of rows the model actually returned.
  using RunBatch = std::function<void(const float* in, std::size_t rows, std::size_t n_features,
                                      std::vector<float>& out, std::size_t& out_rows,
                                      std::size_t& out_cols)>;
  // Told, once per batch (and on shutdown / expiry), about the finished requests submitted with
  // notify = true, from a batcher thread.
  using Completion = std::function<void(const std::vector<RequestPtr>& finished)>;
  // Called by a worker once a batch is due (full, or its delay passed), before the batch is
  // cut; what it returns is held until the batch's requests are notified. The bindings take
  // the GIL here: rows submitted while the worker waits for it still join the batch, and the
  // model call and the completions share one acquisition instead of waiting for two.
  using Hold = std::function<std::shared_ptr<void>()>;

  DynamicBatcher(BatcherOptions options, RunBatch run, Completion completion = nullptr,
                 Hold hold = nullptr);
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues one row of n_features values. timeout_us <= 0: no deadline. Throws ParameterError
  // (wrong length), Overloaded (queue full) or BatcherClosed (after shutdown).
  RequestPtr submit(const float* row, std::size_t n, std::int64_t timeout_us, bool notify);

  // Stops accepting rows. drain = true runs every queued row first; drain = false fails queued
  // rows with BatcherClosed. Waits for the running batches, then joins the workers. Idempotent.
  void shutdown(bool drain);

  bool closed() const { return closing_.load(std::memory_order_acquire); }
  BatcherStats stats() const;
  const BatcherOptions& options() const { return options_; }

 private:
  void worker_loop();
  void run_batch(std::vector<RequestPtr>& batch, std::vector<RequestPtr>& notify_list);
  void notify(std::vector<RequestPtr>& finished);

  const BatcherOptions options_;
  RunBatch run_;
  Completion completion_;
  Hold hold_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<RequestPtr> queue_;
  bool stopping_ = false, drain_ = true;
  std::atomic<bool> closing_{false};
  std::mutex join_mutex_;
  std::vector<std::thread> workers_;
  std::uint64_t next_id_ = 1;
  BatcherStats stats_;
};

}  // namespace mlu
