// librosa.feature.delta: a Savitzky-Golay derivative along the last axis, as
// scipy.signal.savgol_filter(x, width, polyorder=order, deriv=order, mode="interp").
#pragma once

#include <cstddef>

namespace mlu {

// x and y: n_rows rows of `length` contiguous values each (y may not alias x).
// width odd, >= 3, <= length; order >= 1 and < width. Throws ParameterError otherwise.
template <typename T>
void savgol_delta(const T* x, T* y, std::size_t n_rows, std::size_t length, std::size_t width,
                  int order);

}  // namespace mlu
