// Typed errors of the core. The bindings translate them to Python exceptions:
// ParameterError -> ml_utilities.ParameterError (a ValueError).
#pragma once

#include <stdexcept>
#include <string>

namespace mlu {

// A bad value from the caller: a size, a shape, a parameter out of range.
class ParameterError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Throws ParameterError(message) unless `ok`. For user input: never assert on it.
inline void require(bool ok, const std::string& message) {
  if (!ok) throw ParameterError(message);
}

}  // namespace mlu
