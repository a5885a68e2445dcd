// Checked access to numpy arrays passed from Python: dtype, C-contiguity, shape and
// writability are verified before a raw pointer is handed to the core. Nothing is copied.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "mlu/error.hpp"

namespace mlu::bindings {

inline std::string shape_str(const pybind11::array& a) {
  std::string s = "(";
  for (pybind11::ssize_t i = 0; i < a.ndim(); ++i) {
    s += std::to_string(a.shape(i));
    if (i + 1 < a.ndim() || a.ndim() == 1) s += ",";
    if (i + 1 < a.ndim()) s += " ";
  }
  return s + ")";
}

inline std::string shape_str(const std::vector<pybind11::ssize_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += std::to_string(shape[i]);
    if (i + 1 < shape.size() || shape.size() == 1) s += ",";
    if (i + 1 < shape.size()) s += " ";
  }
  return s + ")";
}

// Verifies `a` is a C-contiguous array of T with exactly `shape` and returns its data.
template <typename T>
T* checked_data(pybind11::array& a, const std::vector<pybind11::ssize_t>& shape, const char* name,
                bool writable) {
  require(pybind11::dtype::of<T>().is(a.dtype()),
          std::string(name) + " has dtype " + std::string(pybind11::str(a.dtype())) + ", expected " +
              std::string(pybind11::str(pybind11::dtype::of<T>())));
  require((a.flags() & pybind11::array::c_style) != 0,
          std::string(name) + " must be C-contiguous");
  bool same = a.ndim() == static_cast<pybind11::ssize_t>(shape.size());
  for (std::size_t i = 0; same && i < shape.size(); ++i) same = a.shape(static_cast<pybind11::ssize_t>(i)) == shape[i];
  require(same, std::string(name) + " has shape " + shape_str(a) + ", expected " + shape_str(shape));
  if (writable) {
    require(a.writeable(), std::string(name) + " is read-only");
    return static_cast<T*>(a.mutable_data());
  }
  return static_cast<T*>(const_cast<void*>(a.data()));
}

}  // namespace mlu::bindings
