// _core.serving: the dynamic batcher's Python face. Rows are converted to float32 with the GIL,
// then wait in the C++ queue without it; the model callable runs on a batcher thread that takes
// the GIL only for the call; completion callbacks (for asyncio futures) run once per batch under
// one GIL acquisition. Rows submitted with a token (submit_token) are answered together: once per
// batch, the batcher's on_batch callable gets the batch's tokens and its output rows as one array.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "arrays.hpp"
#include "mlu/batcher.hpp"
#include "mlu/error.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace mlu::bindings {

namespace {

// seconds (None: no limit) -> microseconds (-1: no limit)
std::int64_t to_us(const py::object& seconds, const char* name) {
  if (seconds.is_none()) return -1;
  const double s = seconds.cast<double>();
  if (!(std::isfinite(s) && s >= 0.0)) {  // repr only on failure: this runs per request
    throw ParameterError(std::string(name) + "=" + std::string(py::repr(seconds)) +
                         ": expected seconds >= 0");
  }
  const double us = s * 1e6;
  return us >= 9.2e18 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(us);
}

const char* state_name(RequestState s) {
  switch (s) {
    case RequestState::pending:
      return "pending";
    case RequestState::done:
      return "done";
    case RequestState::failed:
      return "failed";
    case RequestState::timed_out:
      return "timed_out";
    case RequestState::cancelled:
      return "cancelled";
  }
  return "unknown";
}

// An exception raised by the model callable, kept as the Python exception object so that every
// request of the failed batch re-raises it (a pybind11 error_already_set can be restored once
// only). The object is released with the GIL held.
class PythonError : public std::runtime_error {
 public:
  PythonError(const std::string& what, py::object value)
      : std::runtime_error(what), value_(new py::object(std::move(value)), [](py::object* p) {
          py::gil_scoped_acquire gil;
          delete p;
        }) {}
  // Sets the Python error indicator to this exception (GIL held).
  void restore() const { PyErr_SetObject(PyExceptionInstance_Class(value_->ptr()), value_->ptr()); }
  // The exception object (GIL held).
  const py::object& value() const { return *value_; }

 private:
  std::shared_ptr<py::object> value_;
};

// Completion callbacks by request id. Touched only with the GIL held (and a mutex, for
// free-threaded Python). Shared by the batcher and its tickets.
class Callbacks {
 public:
  void add(std::uint64_t id, py::object fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    fns_.emplace(id, std::move(fn));
  }
  py::object take(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = fns_.find(id);
    if (it == fns_.end()) return py::none();
    py::object fn = std::move(it->second);
    fns_.erase(it);
    return fn;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, py::object> fns_;
};

// The exception a failed request raises, as a Python exception object (GIL held).
py::object exception_object(const std::exception_ptr& error) {
  auto make = [](const char* module, const char* name, const char* what) {
    return py::module_::import(module).attr(name)(what);
  };
  const char* errors = "ml_utilities.serving.errors";
  try {
    std::rethrow_exception(error);
  } catch (const PythonError& e) {
    return e.value();
  } catch (const Overloaded& e) {
    return make(errors, "Overloaded", e.what());
  } catch (const RequestTimeout& e) {
    return make(errors, "RequestTimeoutError", e.what());
  } catch (const BatcherClosed& e) {
    return make(errors, "BatcherClosedError", e.what());
  } catch (const BatchError& e) {
    return make(errors, "BatchError", e.what());
  } catch (const ParameterError& e) {
    return make("ml_utilities.exceptions", "ParameterError", e.what());
  } catch (const std::exception& e) {
    return make(errors, "ServingError", e.what());
  } catch (...) {
    return make(errors, "ServingError", "unknown C++ error in the batcher");
  }
}

// Requests submitted with a token, by id, until they are answered or cancelled. Touched with the
// GIL held (and a mutex, for free-threaded Python).
class Tokens {
 public:
  void add(const RequestPtr& req, py::object token) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.emplace(req->id(), Entry{req, std::move(token)});
  }
  // Removes the request's entry; its token, or None if there was none.
  py::object take(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return py::none();
    py::object token = std::move(it->second.token);
    entries_.erase(it);
    return token;
  }
  RequestPtr find(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : it->second.req;
  }

 private:
  struct Entry {
    RequestPtr req;
    py::object token;
  };
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, Entry> entries_;
};

// Hands finished token requests to on_batch(tokens, out, queue_us, failed) in one call (GIL
// held): `tokens` the answered requests' tokens, `out` their output rows (float32, rows x cols),
// `queue_us` their queue times (int64), `failed` (token, exception) pairs.
void deliver(Tokens& tokens, const py::object& on_batch, const std::vector<RequestPtr>& finished) {
  py::list done, failed;
  std::vector<const Request*> rows;
  std::size_t cols = 0;
  for (const auto& r : finished) {
    py::object token = tokens.take(r->id());
    if (token.is_none()) continue;
    if (r->state() == RequestState::done) {
      if (rows.empty()) cols = r->output().size();
      if (r->output().size() == cols) {
        done.append(std::move(token));
        rows.push_back(r.get());
        continue;
      }
      failed.append(py::make_tuple(
          token,
          exception_object(std::make_exception_ptr(BatchError(
              "request " + std::to_string(r->id()) + " got " + std::to_string(r->output().size()) +
              " output values, its batch " + std::to_string(cols))))));
      continue;
    }
    failed.append(py::make_tuple(token, exception_object(r->error())));
  }
  if (rows.empty() && failed.empty()) return;
  py::array_t<float> out({static_cast<py::ssize_t>(rows.size()), static_cast<py::ssize_t>(cols)});
  py::array_t<std::int64_t> queue_us(static_cast<py::ssize_t>(rows.size()));
  float* o = out.mutable_data();
  std::int64_t* q = queue_us.mutable_data();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(o + i * cols, rows[i]->output().data(), cols * sizeof(float));
    q[i] = rows[i]->queue_time_us();
  }
  try {
    on_batch(done, out, queue_us, failed);
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("ml_utilities batcher on_batch callback");
  }
}

// A row given as a list or tuple of numbers (the JSON-decoded form) or as an array, converted to
// float32 and checked finite. Anything else raises ParameterError naming the bad value.
void row_values(const py::handle& row, std::size_t n_features, std::vector<float>& values) {
  values.resize(n_features);
  if (PyList_Check(row.ptr()) || PyTuple_Check(row.ptr())) {
    const bool list = PyList_Check(row.ptr());
    const Py_ssize_t n = list ? PyList_GET_SIZE(row.ptr()) : PyTuple_GET_SIZE(row.ptr());
    if (static_cast<std::size_t>(n) != n_features) {
      throw ParameterError(
          "a row has " + std::to_string(n) +
          " values; this batcher expects n_features=" + std::to_string(n_features));
    }
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* item = list ? PyList_GET_ITEM(row.ptr(), i) : PyTuple_GET_ITEM(row.ptr(), i);
      double v;
      if (PyFloat_CheckExact(item)) {
        v = PyFloat_AS_DOUBLE(item);
      } else if (PyLong_CheckExact(item)) {
        v = PyLong_AsDouble(item);
        if (v == -1.0 && PyErr_Occurred()) {
          PyErr_Clear();
          throw ParameterError("row value " + std::to_string(i) + " is " +
                               std::string(py::repr(item)) + ": too large for float32");
        }
      } else {
        throw ParameterError("row value " + std::to_string(i) + " is " +
                             std::string(py::repr(item)) + ": expected a number");
      }
      const float f = static_cast<float>(v);
      if (!std::isfinite(f)) {  // the message only when needed: repr costs a microsecond
        throw ParameterError("row value " + std::to_string(i) + " is " +
                             std::string(py::repr(item)) + ": expected a finite number");
      }
      values[static_cast<std::size_t>(i)] = f;
    }
    return;
  }
  auto arr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(row);
  require(static_cast<bool>(arr), "row must be a numeric array or a list of numbers");
  if (arr.ndim() != 1) {
    throw ParameterError("row must be 1-D (n_features,), got shape " + shape_str(arr));
  }
  if (static_cast<std::size_t>(arr.size()) != n_features) {
    throw ParameterError("a row has " + std::to_string(arr.size()) +
                         " values; this batcher expects n_features=" + std::to_string(n_features));
  }
  const float* d = arr.data();
  for (std::size_t i = 0; i < n_features; ++i) {
    if (!std::isfinite(d[i])) {
      throw ParameterError("row value " + std::to_string(i) + " is " + std::to_string(d[i]) +
                           ": expected a finite number");
    }
    values[i] = d[i];
  }
}

class Ticket {
 public:
  Ticket(RequestPtr req, std::shared_ptr<Callbacks> callbacks)
      : req_(std::move(req)), callbacks_(std::move(callbacks)) {}

  // Calls the request's completion callback if nobody has yet (GIL held).
  void fire() {
    py::object fn = callbacks_->take(req_->id());
    if (!fn.is_none()) fn(py::cast(Ticket(req_, callbacks_)));
  }

  py::array result(const py::object& timeout) {
    if (!req_->finished()) {
      std::int64_t us = to_us(timeout, "timeout");
      if (timeout.is_none() && req_->deadline() != std::chrono::steady_clock::time_point::max()) {
        // wait until the request's own deadline
        const auto left = req_->deadline() - std::chrono::steady_clock::now();
        us = std::max<std::int64_t>(
            0, std::chrono::duration_cast<std::chrono::microseconds>(left).count());
      }
      {
        py::gil_scoped_release release;
        req_->wait(us);
      }
      fire();
    }
    if (req_->state() == RequestState::done) {
      const auto& out = req_->output();
      py::array_t<float> arr(static_cast<py::ssize_t>(out.size()));
      std::memcpy(arr.mutable_data(), out.data(), out.size() * sizeof(float));
      return std::move(arr);
    }
    try {
      std::rethrow_exception(req_->error());
    } catch (const PythonError& e) {
      e.restore();
      throw py::error_already_set();
    }
  }

  bool cancel() {
    const bool ok = req_->cancel();
    if (ok) fire();
    return ok;
  }

  RequestPtr req_;
  std::shared_ptr<Callbacks> callbacks_;
};

class PyBatcher {
 public:
  PyBatcher(py::object model, std::size_t n_features, std::size_t max_batch_size,
            double max_queue_delay_us, std::size_t max_queue_size, std::size_t n_workers,
            py::object on_batch)
      : model_(std::move(model)),
        on_batch_(std::move(on_batch)),
        callbacks_(std::make_shared<Callbacks>()),
        tokens_(std::make_shared<Tokens>()) {
    require(on_batch_.is_none() || PyCallable_Check(on_batch_.ptr()) != 0,
            "on_batch must be callable or None, got " + std::string(py::repr(on_batch_)));
    require(PyCallable_Check(model_.ptr()) != 0,
            "model must be callable (a 2-D float32 batch -> a 2-D array of rows), got " +
                std::string(py::repr(model_)));
    require(std::isfinite(max_queue_delay_us) && max_queue_delay_us >= 0,
            "max_queue_delay_us must be >= 0, got " + std::to_string(max_queue_delay_us));
    BatcherOptions opt;
    opt.n_features = n_features;
    opt.max_batch_size = max_batch_size;
    opt.max_queue_delay_us = static_cast<std::int64_t>(max_queue_delay_us);
    opt.max_queue_size = max_queue_size;
    opt.n_workers = n_workers;
    py::object* model_ptr = &model_;
    auto run = [model_ptr](const float* in, std::size_t rows, std::size_t nf,
                           std::vector<float>& out, std::size_t& out_rows, std::size_t& out_cols) {
      py::gil_scoped_acquire gil;
      py::array_t<float> x({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(nf)});
      std::memcpy(x.mutable_data(), in, rows * nf * sizeof(float));
      py::object res;
      try {
        res = (*model_ptr)(x);
      } catch (py::error_already_set& e) {
        throw PythonError(e.what(), e.value());
      }
      auto arr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(res);
      if (!arr) {
        throw BatchError("the model returned " + std::string(py::str(py::type::of(res))) +
                         ", expected an array of shape (rows, cols) or (rows,)");
      }
      if (arr.ndim() == 1) {
        out_rows = static_cast<std::size_t>(arr.shape(0));
        out_cols = 1;
      } else if (arr.ndim() == 2) {
        out_rows = static_cast<std::size_t>(arr.shape(0));
        out_cols = static_cast<std::size_t>(arr.shape(1));
      } else {
        throw BatchError("the model returned an array of shape " + shape_str(arr) +
                         ", expected (rows, cols) or (rows,)");
      }
      out.assign(arr.data(), arr.data() + arr.size());
    };
    std::shared_ptr<Callbacks> callbacks = callbacks_;
    std::shared_ptr<Tokens> tokens = tokens_;
    py::object* on_batch_ptr = &on_batch_;
    auto completion = [callbacks, tokens, on_batch_ptr](const std::vector<RequestPtr>& finished) {
      py::gil_scoped_acquire gil;
      if (!on_batch_ptr->is_none()) deliver(*tokens, *on_batch_ptr, finished);
      for (const auto& r : finished) {
        py::object fn = callbacks->take(r->id());
        if (fn.is_none()) continue;
        try {
          fn(py::cast(Ticket(r, callbacks)));
        } catch (py::error_already_set& e) {
          e.discard_as_unraisable("ml_utilities batcher completion callback");
        }
      }
    };
    // A due batch waits for the GIL before it is cut (see DynamicBatcher::Hold).
    auto hold = []() -> std::shared_ptr<void> {
      return std::make_shared<py::gil_scoped_acquire>();
    };
    batcher_ = std::make_unique<DynamicBatcher>(opt, std::move(run), std::move(completion),
                                                std::move(hold));
  }

  ~PyBatcher() {
    if (batcher_) {
      py::gil_scoped_release release;
      batcher_->shutdown(false);
    }
  }

  Ticket submit(const py::array& row, const py::object& timeout, const py::object& callback) {
    auto arr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(row);
    require(static_cast<bool>(arr), "row must be a numeric array");
    if (arr.ndim() != 1) {
      throw ParameterError("row must be 1-D (n_features,), got shape " + shape_str(arr));
    }
    const std::int64_t us = to_us(timeout, "timeout");
    const bool notify = !callback.is_none();
    if (notify) {
      require(PyCallable_Check(callback.ptr()) != 0, "callback must be callable or None");
    }
    RequestPtr req = batcher_->submit(arr.data(), static_cast<std::size_t>(arr.size()), us, notify);
    Ticket ticket(std::move(req), callbacks_);
    if (notify) {
      callbacks_->add(ticket.req_->id(), callback);
      // The request may have finished before its callback was added (the hook then found
      // nothing): call it here. take() makes the call happen exactly once either way.
      if (ticket.req_->finished()) ticket.fire();
    }
    return ticket;
  }

  // Queues one row whose answer goes to on_batch with `token`; returns the request id.
  std::uint64_t submit_token(const py::handle& row, py::object token, const py::object& timeout) {
    require(!on_batch_.is_none(), "submit_token needs a batcher created with on_batch");
    row_values(row, batcher_->options().n_features, scratch_);
    const std::int64_t us = to_us(timeout, "timeout");
    RequestPtr req = batcher_->submit(scratch_.data(), scratch_.size(), us, true);
    tokens_->add(req, std::move(token));
    // With the GIL held from submit to add, the batch cannot have finished unseen (its completion
    // takes the GIL); without a GIL (free-threaded Python) it can: answer it here.
    if (req->finished()) deliver(*tokens_, on_batch_, {req});
    return req->id();
  }

  // Cancels a request of submit_token that has not started; True if it was cancelled (its
  // token is then never handed to on_batch).
  bool cancel_token(std::uint64_t id) {
    RequestPtr req = tokens_->find(id);
    if (!req || !req->cancel()) return false;
    tokens_->take(id);
    return true;
  }

  void close(bool drain) {
    py::gil_scoped_release release;
    batcher_->shutdown(drain);
  }

  py::dict stats() const {
    BatcherStats s = batcher_->stats();
    py::dict d;
    d["submitted"] = s.submitted;
    d["completed"] = s.completed;
    d["failed"] = s.failed;
    d["timed_out"] = s.timed_out;
    d["rejected"] = s.rejected;
    d["batches"] = s.batches;
    d["batched_rows"] = s.batched_rows;
    d["queued"] = s.queued;
    d["max_batch_seen"] = s.max_batch_seen;
    return d;
  }

  const BatcherOptions& options() const { return batcher_->options(); }
  bool closed() const { return batcher_->closed(); }

 private:
  py::object model_;
  py::object on_batch_;
  std::shared_ptr<Callbacks> callbacks_;
  std::shared_ptr<Tokens> tokens_;
  std::vector<float> scratch_;  // submit_token's row (the GIL serialises its callers)
  std::unique_ptr<DynamicBatcher> batcher_;
};

}  // namespace

void register_batcher(py::module_& m) {
  // C++ batcher errors -> ml_utilities.serving.errors, imported when first raised.
  py::register_exception_translator([](std::exception_ptr p) {
    auto raise = [](const char* name, const std::exception& e) {
      py::object cls = py::module_::import("ml_utilities.serving.errors").attr(name);
      PyErr_SetString(cls.ptr(), e.what());
    };
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Overloaded& e) {
      raise("Overloaded", e);
    } catch (const RequestTimeout& e) {
      raise("RequestTimeoutError", e);
    } catch (const BatcherClosed& e) {
      raise("BatcherClosedError", e);
    } catch (const BatchError& e) {
      raise("BatchError", e);
    }
  });

  py::class_<Ticket>(m, "Ticket", "One submitted row: wait for its output row, or cancel it.")
      .def("result", &Ticket::result, py::arg("timeout") = py::none(),
           "Wait for the output row (1-D float32) and return it, or raise the request's error. "
           "timeout in seconds; None waits until the deadline given at submit (or forever).")
      .def("cancel", &Ticket::cancel, "Cancel a pending request; False if it already finished.")
      .def("done", [](const Ticket& t) { return t.req_->finished(); })
      .def_property_readonly("state", [](const Ticket& t) { return state_name(t.req_->state()); })
      .def_property_readonly("id", [](const Ticket& t) { return t.req_->id(); })
      .def_property_readonly(
          "queue_time_us", [](const Ticket& t) { return t.req_->queue_time_us(); },
          "Microseconds queued before its batch ran (-1 before it ran).")
      .def_property_readonly(
          "batch_size", [](const Ticket& t) { return t.req_->batch_size(); },
          "Rows of the batch it ran in (0 before it ran).");

  py::class_<PyBatcher>(m, "DynamicBatcher",
                        "Gathers rows from many threads into batches for one model callable.")
      .def(py::init<py::object, std::size_t, std::size_t, double, std::size_t, std::size_t,
                    py::object>(),
           py::arg("model"), py::arg("n_features"), py::arg("max_batch_size") = 64,
           py::arg("max_queue_delay_us") = 1000.0, py::arg("max_queue_size") = 4096,
           py::arg("n_workers") = 1, py::arg("on_batch") = py::none())
      .def("submit", &PyBatcher::submit, py::arg("row"), py::arg("timeout") = py::none(),
           py::arg("callback") = py::none(),
           "Queue one row; returns a Ticket. callback(ticket) runs on a batcher thread when the "
           "request finishes, whatever the outcome. Raises Overloaded when the queue is full.")
      .def(
          "predict",
          [](PyBatcher& b, const py::array& row, const py::object& timeout) {
            Ticket t = b.submit(row, timeout, py::none());
            return t.result(py::none());
          },
          py::arg("row"), py::arg("timeout") = py::none(), "submit(row, timeout).result()")
      .def("submit_token", &PyBatcher::submit_token, py::arg("row"), py::arg("token"),
           py::arg("timeout") = py::none(),
           "Queue one row (a list or tuple of numbers, or a 1-D array; finite) whose answer "
           "goes to on_batch(tokens, out, queue_us, failed) with `token`, once per batch; "
           "returns the request id. Raises ParameterError for a bad row, Overloaded when the "
           "queue is full.")
      .def("cancel_token", &PyBatcher::cancel_token, py::arg("id"),
           "Cancel a submit_token request that has not started; False if it already has.")
      .def("close", &PyBatcher::close, py::arg("drain") = true,
           "Stop accepting rows; run (drain=True) or fail (drain=False) the queued ones; join.")
      .def("stats", &PyBatcher::stats)
      .def_property_readonly("closed", &PyBatcher::closed)
      .def_property_readonly("n_features",
                             [](const PyBatcher& b) { return b.options().n_features; })
      .def_property_readonly("max_batch_size",
                             [](const PyBatcher& b) { return b.options().max_batch_size; })
      .def_property_readonly("max_queue_delay_us",
                             [](const PyBatcher& b) { return b.options().max_queue_delay_us; })
      .def_property_readonly("max_queue_size",
                             [](const PyBatcher& b) { return b.options().max_queue_size; })
      .def_property_readonly("n_workers", [](const PyBatcher& b) { return b.options().n_workers; });
}

}  // namespace mlu::bindings
