#include <pybind11/pybind11.h>

#include "mlu/build_info.hpp"
#include "mlu/error.hpp"
#include "mlu/fft.hpp"
#include "mlu/thread_pool.hpp"
#include "register.hpp"

namespace py = pybind11;

#ifndef MLU_CUDA_STATUS
#define MLU_CUDA_STATUS "unknown (built outside CMakeLists.txt)"
#endif

namespace mlu::bindings {

void register_info(py::module_& m) {
  // C++ ParameterError -> ml_utilities.ParameterError (a ValueError), imported when first thrown.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const mlu::ParameterError& e) {
      py::object cls = py::module_::import("ml_utilities.exceptions").attr("ParameterError");
      PyErr_SetString(cls.ptr(), e.what());
    }
  });

  m.def("build_info", [] {
    BuildInfo info = build_info();
    py::dict d;
    d["compiler"] = info.compiler;
    d["simd"] = info.simd;
    d["simd_detected"] = info.simd_detected;
    d["simd_compiled"] = info.simd_compiled;
    d["threads"] = info.threads;
    d["sanitized"] = info.sanitized;
    // "built", or why the _cuda module was not built ("MLU_CUDA=OFF", what was not found)
    d["cuda_build"] = MLU_CUDA_STATUS;
    return d;
  });
  m.def("set_threads", &set_default_threads, py::arg("n_threads"),
        "Resize the default thread pool (1 runs everything on the calling thread).");
  m.def("threads", &default_threads);
  m.def(
      "set_simd_level",
      [](const std::string& name) {
        for (auto level : {SimdLevel::generic, SimdLevel::avx2, SimdLevel::avx512}) {
          if (name == simd_name(level)) return set_simd_level(level);
        }
        throw ParameterError("unknown SIMD level '" + name + "'");
      },
      py::arg("level"), "Lower the SIMD level new plans use ('generic', 'avx2', 'avx512').");
}

}  // namespace mlu::bindings
