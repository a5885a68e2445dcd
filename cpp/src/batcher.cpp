#include "mlu/batcher.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "mlu/error.hpp"

namespace mlu {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

template <typename E>
std::exception_ptr make_error(const std::string& message) {
  return std::make_exception_ptr(E(message));
}

}  // namespace

// ------------------------------------------------------------------------------------ Request

bool Request::finish(RequestState to) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_.store(static_cast<int>(to), std::memory_order_release);
  }
  cv_.notify_all();
  return true;
}

bool Request::complete(std::vector<float> output, std::int64_t queue_us, std::size_t batch_size) {
  if (claimed_.exchange(true, std::memory_order_acq_rel)) return false;
  output_ = std::move(output);
  queue_us_ = queue_us;
  batch_size_ = batch_size;
  return finish(RequestState::done);
}

bool Request::fail(std::exception_ptr error, RequestState state, std::int64_t queue_us,
                   std::size_t batch_size) {
  if (claimed_.exchange(true, std::memory_order_acq_rel)) return false;
  error_ = std::move(error);
  queue_us_ = queue_us;
  batch_size_ = batch_size;
  return finish(state);
}

bool Request::cancel() {
  return fail(make_error<BatchError>("request " + std::to_string(id_) +
                                     " was cancelled by its caller"),
              RequestState::cancelled);
}

RequestState Request::wait(std::int64_t timeout_us) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto pending = [this] { return state_.load(std::memory_order_acquire) == 0; };
  if (timeout_us < 0) {
    cv_.wait(lock, [&] { return !pending(); });
    return state();
  }
  if (cv_.wait_for(lock, std::chrono::microseconds(timeout_us), [&] { return !pending(); })) {
    return state();
  }
  lock.unlock();
  fail(make_error<RequestTimeout>("request " + std::to_string(id_) + " timed out after " +
                                  std::to_string(timeout_us) + " us"),
       RequestState::timed_out);
  // Either this thread timed it out, or a batcher thread is writing its result right now.
  lock.lock();
  cv_.wait(lock, [&] { return !pending(); });
  return state();
}

// ------------------------------------------------------------------------------ DynamicBatcher

DynamicBatcher::DynamicBatcher(BatcherOptions options, RunBatch run, Completion completion,
                               Hold hold)
    : options_(options),
      run_(std::move(run)),
      completion_(std::move(completion)),
      hold_(std::move(hold)) {
  require(options_.n_features > 0, "n_features must be > 0");
  require(options_.max_batch_size > 0, "max_batch_size must be > 0");
  require(options_.max_queue_delay_us >= 0,
          "max_queue_delay_us must be >= 0, got " + std::to_string(options_.max_queue_delay_us));
  require(options_.max_queue_size > 0, "max_queue_size must be > 0");
  require(options_.n_workers > 0 && options_.n_workers <= 64,
          "n_workers must be in [1, 64], got " + std::to_string(options_.n_workers));
  require(static_cast<bool>(run_), "the model callback is empty");
  workers_.reserve(options_.n_workers);
  for (std::size_t i = 0; i < options_.n_workers; ++i) {
    workers_.emplace_back([this] { worker_loop(); });
  }
}

DynamicBatcher::~DynamicBatcher() { shutdown(false); }

RequestPtr DynamicBatcher::submit(const float* row, std::size_t n, std::int64_t timeout_us,
                                  bool notify_on_finish) {
  if (n != options_.n_features) {  // the message only on failure: this is the hot path
    throw ParameterError("a row has " + std::to_string(n) +
                         " values; this batcher expects n_features=" +
                         std::to_string(options_.n_features));
  }
  std::vector<float> input(row, row + n);
  const auto now = Clock::now();
  const auto deadline =
      timeout_us > 0 ? now + std::chrono::microseconds(timeout_us) : Clock::time_point::max();
  RequestPtr req;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw BatcherClosed("the batcher is shut down: no new requests are accepted");
    if (queue_.size() >= options_.max_queue_size) {
      ++stats_.rejected;
      throw Overloaded("the batcher's queue is full (" + std::to_string(queue_.size()) +
                       " rows queued, max_queue_size=" + std::to_string(options_.max_queue_size) +
                       "): retry later");
    }
    req = std::make_shared<Request>(next_id_++, std::move(input), now, deadline, notify_on_finish);
    queue_.push_back(req);
    ++stats_.submitted;
    // Workers wait for the queue to become non-empty, or for a started batch to fill: only
    // these two transitions can end a wait. Waking a worker for every row would cost a context
    // switch per row while a batch fills.
    wake = queue_.size() == 1 || queue_.size() == options_.max_batch_size;
  }
  if (wake) cv_.notify_all();
  return req;
}

void DynamicBatcher::worker_loop() {
  const auto delay = std::chrono::microseconds(options_.max_queue_delay_us);
  std::vector<RequestPtr> batch, notify_list;
  batch.reserve(options_.max_batch_size);
  for (;;) {
    batch.clear();
    notify_list.clear();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and nothing left
      if (stopping_ && !drain_) {
        // shutdown() fails the queue itself; nothing more to run here.
        return;
      }
      // Wait for the batch to fill, at most max_queue_delay after its oldest row arrived.
      if (!stopping_ && queue_.size() < options_.max_batch_size) {
        const auto cut = queue_.front()->enqueued() + delay;
        cv_.wait_until(lock, cut, [&] {
          return stopping_ || queue_.empty() || queue_.size() >= options_.max_batch_size;
        });
        if (queue_.empty()) continue;  // another worker took them
        if (stopping_ && !drain_) return;
      }
    }
    // The batch is due: take the hold (the GIL, in the bindings) first, then cut the batch,
    // so that every row submitted while waiting for it joins this batch.
    std::shared_ptr<void> held = hold_ ? hold_() : nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ && !drain_) return;  // shutdown() failed the queue
      const auto now = Clock::now();
      while (!queue_.empty() && batch.size() < options_.max_batch_size) {
        RequestPtr r = std::move(queue_.front());
        queue_.pop_front();
        if (r->finished()) continue;  // cancelled or timed out by its caller while queued
        if (r->deadline() <= now) {
          if (r->fail(make_error<RequestTimeout>(
                          "request " + std::to_string(r->id()) +
                          " timed out after waiting " +
                          std::to_string(micros(now - r->enqueued())) + " us in the queue"),
                      RequestState::timed_out, micros(now - r->enqueued()))) {
            ++stats_.timed_out;
            if (r->notify()) notify_list.push_back(r);
          }
          continue;
        }
        batch.push_back(std::move(r));
      }
      // More rows may remain: let another worker start on them.
      if (!queue_.empty()) cv_.notify_one();
    }
    if (!batch.empty()) run_batch(batch, notify_list);
    notify(notify_list);
    held.reset();
  }
}

void DynamicBatcher::run_batch(std::vector<RequestPtr>& batch,
                               std::vector<RequestPtr>& notify_list) {
  const std::size_t rows = batch.size(), nf = options_.n_features;
  const auto start = Clock::now();
  std::vector<float> in(rows * nf);
  for (std::size_t i = 0; i < rows; ++i) {
    std::memcpy(in.data() + i * nf, batch[i]->input().data(), nf * sizeof(float));
  }
  std::vector<float> out;
  std::size_t out_rows = 0, out_cols = 0;
  std::exception_ptr error;
  try {
    run_(in.data(), rows, nf, out, out_rows, out_cols);
    if (out_rows != rows) {
      error = make_error<BatchError>("the model returned " + std::to_string(out_rows) +
                                     " rows for a batch of " + std::to_string(rows) +
                                     ": every request of the batch fails");
    } else if (out.size() != rows * out_cols) {
      error = make_error<BatchError>("the model returned " + std::to_string(out.size()) +
                                     " values, expected rows * cols = " +
                                     std::to_string(rows * out_cols));
    }
  } catch (...) {
    error = std::current_exception();
  }
  std::uint64_t ok = 0, bad = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    Request& r = *batch[i];
    const std::int64_t queued = micros(start - r.enqueued());
    bool won;
    if (error) {
      won = r.fail(error, RequestState::failed, queued, rows);
      bad += won;
    } else {
      std::vector<float> row(out.begin() + static_cast<std::ptrdiff_t>(i * out_cols),
                             out.begin() + static_cast<std::ptrdiff_t>((i + 1) * out_cols));
      won = r.complete(std::move(row), queued, rows);
      ok += won;
    }
    if (won && r.notify()) notify_list.push_back(batch[i]);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.batches;
  stats_.batched_rows += rows;
  stats_.completed += ok;
  stats_.failed += bad;
  stats_.max_batch_seen = std::max(stats_.max_batch_seen, rows);
}

void DynamicBatcher::notify(std::vector<RequestPtr>& finished) {
  if (finished.empty() || !completion_) return;
  try {
    completion_(finished);
  } catch (...) {
    // The hook must not throw (the bindings catch everything); a batcher thread cannot report it.
  }
  finished.clear();
}

void DynamicBatcher::shutdown(bool drain) {
  std::lock_guard<std::mutex> join_lock(join_mutex_);
  std::vector<RequestPtr> failed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      drain_ = drain;
      closing_.store(true, std::memory_order_release);
    }
    if (!drain_) {
      for (auto& r : queue_) {
        if (r->fail(make_error<BatcherClosed>("the batcher was shut down before request " +
                                              std::to_string(r->id()) + " ran"),
                    RequestState::failed)) {
          ++stats_.failed;
          if (r->notify()) failed.push_back(r);
        }
      }
      queue_.clear();
    }
  }
  cv_.notify_all();
  notify(failed);
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  // A drained shutdown leaves nothing behind; anything still queued (a race with the last
  // worker's exit) is failed rather than dropped.
  std::vector<RequestPtr> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& r : queue_) {
      if (r->fail(make_error<BatcherClosed>("the batcher was shut down before request " +
                                            std::to_string(r->id()) + " ran"),
                  RequestState::failed)) {
        ++stats_.failed;
        if (r->notify()) left.push_back(r);
      }
    }
    queue_.clear();
  }
  notify(left);
}

BatcherStats DynamicBatcher::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  BatcherStats s = stats_;
  s.queued = queue_.size();
  return s;
}

}  // namespace mlu
