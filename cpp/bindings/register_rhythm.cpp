#include <pybind11/pybind11.h>

#include "register.hpp"

namespace mlu::bindings {

void register_rhythm(pybind11::module_& m) { (void)m; }

}  // namespace mlu::bindings
