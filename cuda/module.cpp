// The _cuda extension: imported lazily by ml_utilities when a device array arrives. This file
// only creates the module and calls the register functions (cuda/register_*.cpp).
#include <pybind11/pybind11.h>

#include "register.hpp"

PYBIND11_MODULE(_cuda, m, pybind11::mod_gil_not_used()) {
  m.doc() = "ml_utilities CUDA backend (private): feature plans on device memory";
  mlu::cuda::bindings::register_device(m);
  mlu::cuda::bindings::register_plan(m);
}
