// Window functions as scipy.signal.get_window computes them (float64).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace mlu {

// `name` is a scipy window name ("hann", "hamming", "blackman", "kaiser", ...); `params` holds
// the extra values of a tuple spec such as ("kaiser", 8.6) or ("tukey", 0.5). fftbins=true gives
// the periodic window (what librosa uses), false the symmetric one. Unknown names or a wrong
// number of parameters throw ParameterError naming them.
std::vector<double> get_window(const std::string& name, const std::vector<double>& params,
                               std::size_t n, bool fftbins = true);

}  // namespace mlu
