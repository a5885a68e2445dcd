// Device queries and the C++ -> Python exception mapping of the _cuda module.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "feature_plan.hpp"
#include "kernels.hpp"
#include "mlu/error.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace mlu::cuda::bindings {

namespace {

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();
  throw DeviceError(std::string(what) + ": " + cudaGetErrorString(status));
}

// Raises module.name(message), or `fallback` when that class cannot be imported.
void raise_as(const char* module, const char* name, PyObject* fallback, const char* message) {
  try {
    py::object cls = py::module_::import(module).attr(name);
    PyErr_SetString(cls.ptr(), message);
  } catch (py::error_already_set&) {
    PyErr_SetString(fallback, message);
  }
}

}  // namespace

void register_device(py::module_& m) {
  py::register_local_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const DeviceMemoryError& e) {
      raise_as("ml_utilities.gpu.errors", "DeviceMemoryError", PyExc_MemoryError, e.what());
    } catch (const DeviceError& e) {
      raise_as("ml_utilities.gpu.errors", "DeviceError", PyExc_RuntimeError, e.what());
    } catch (const mlu::ParameterError& e) {
      raise_as("ml_utilities.exceptions", "ParameterError", PyExc_ValueError, e.what());
    }
  });

  m.def("device_count", &device_count,
        "Visible CUDA devices; DeviceError (a RuntimeError) when no driver or device is usable.");
  m.def(
      "versions",
      []() {
        int runtime = 0, driver = 0;
        check(cudaRuntimeGetVersion(&runtime), "cudaRuntimeGetVersion");
        check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
        py::dict d;
        d["runtime"] = runtime;
        d["driver"] = driver;
        return d;
      },
      "CUDA runtime this module was built with and the installed driver's version (ints).");
  m.def(
      "device_name",
      [](int device) {
        cudaDeviceProp prop{};
        check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
        return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
               std::to_string(prop.minor) + ")";
      },
      py::arg("device"));
  m.def(
      "memory_info",
      [](int device) {
        int previous = 0;
        check(cudaGetDevice(&previous), "cudaGetDevice");
        check(cudaSetDevice(device), "cudaSetDevice");
        std::size_t free_bytes = 0, total = 0;
        const cudaError_t status = cudaMemGetInfo(&free_bytes, &total);
        (void)cudaSetDevice(previous);
        check(status, "cudaMemGetInfo");
        return std::make_pair(free_bytes, total);
      },
      py::arg("device"), "(free, total) bytes of device memory.");
  m.def(
      "pointer_device",
      [](std::uintptr_t ptr) {
        cudaPointerAttributes attr{};
        check(cudaPointerGetAttributes(&attr, reinterpret_cast<const void*>(ptr)),
              "cudaPointerGetAttributes");
        if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
          throw mlu::ParameterError("the array's data is not in CUDA device memory");
        }
        return attr.device;
      },
      py::arg("ptr"), "The device holding a device pointer (ParameterError for host memory).");
  m.def(
      "workspace_high_water",
      [](int device, bool reset) {
        cudaMemPool_t pool = workspace_pool(device);
        std::uint64_t high = 0;
        check(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high),
              "cudaMemPoolGetAttribute");
        if (reset) {
          std::uint64_t zero = 0;
          check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero),
                "cudaMemPoolSetAttribute");
        }
        return high;
      },
      py::arg("device"), py::arg("reset") = false,
      "Peak bytes the plans' stream-ordered workspace held on `device` (reset: start over).");
  m.def(
      "power_spectrum_c64",
      [](std::uintptr_t in, std::uintptr_t out, std::size_t count, std::uintptr_t stream) {
        if (count > 0 && (in == 0 || out == 0)) throw mlu::ParameterError("null device pointer");
        py::gil_scoped_release release;
        power_spectrum_c64(reinterpret_cast<const void*>(in), reinterpret_cast<float*>(out), count,
                           stream);
      },
      py::arg("in_ptr"), py::arg("out_ptr"), py::arg("count"), py::arg("stream") = 0,
      "out = |in|^2 for `count` complex64 values at device pointers, on `stream`.");
}

}  // namespace mlu::cuda::bindings
