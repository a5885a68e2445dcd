// What this build of the core is: compiler, instruction sets, threads.
#pragma once

#include <string>

namespace mlu {

struct BuildInfo {
  std::string compiler;
  std::string simd;           // level in use
  std::string simd_detected;  // best level this processor supports
  std::string simd_compiled;  // levels compiled into this binary, comma separated
  std::size_t threads;        // size of the default pool
  bool sanitized;
};

BuildInfo build_info();

}  // namespace mlu
