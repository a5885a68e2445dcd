// Register functions of the _cuda module, one per area.
#pragma once

#include <pybind11/pybind11.h>

namespace mlu::cuda::bindings {

// device_count, versions, memory queries, the exception translators.
void register_device(pybind11::module_& m);
// FeaturePlan.
void register_plan(pybind11::module_& m);

}  // namespace mlu::cuda::bindings
