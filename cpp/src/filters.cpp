// Mel filter banks and DCT matrices, built the way librosa 0.11 and scipy build them.
//
// Bit-for-bit parity with librosa.filters.mel (float32 by default) comes from doing every
// floating-point step in the same order and precision as numpy does: numpy.linspace's
// arithmetic, rfftfreq's 1 / (n * (1 / sr)), the triangles in float64 rounded once into the
// output dtype, the Slaney scaling multiplied in float64 and rounded again, and
// util.normalize's pairwise sums. libm's log/exp/pow are what numpy calls for float64 here.
#include "mlu/filters.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "mlu/error.hpp"

namespace mlu {
namespace {

// librosa's Slaney constants, evaluated at run time through libm exactly as numpy does.
struct SlaneyScale {
  double f_sp = 200.0 / 3;
  double min_log_hz = 1000.0;
  double min_log_mel = (1000.0 - 0.0) / (200.0 / 3);
  double logstep = std::log(6.4) / 27.0;
};

// numpy.linspace(start, stop, num) with endpoint=True, including its num <= 1 and
// zero-step (denormal) branches.
std::vector<double> np_linspace(double start, double stop, std::size_t num) {
  std::vector<double> y(num);
  if (num == 0) return y;
  const double delta = stop - start;
  if (num == 1) {
    y[0] = 0.0 * delta + start;
    return y;
  }
  const double div = static_cast<double>(num - 1);
  const double step = delta / div;
  for (std::size_t k = 0; k < num; ++k) {
    const double kk = static_cast<double>(k);
    y[k] = (step == 0.0 ? (kk / div) * delta : kk * step) + start;
  }
  y[num - 1] = stop;
  return y;
}

// numpy.maximum / numpy.minimum: a NaN in either argument gives NaN.
double np_max(double a, double b) {
  return (std::isnan(a) || std::isnan(b)) ? a + b : (a >= b ? a : b);
}
double np_min(double a, double b) {
  return (std::isnan(a) || std::isnan(b)) ? a + b : (a <= b ? a : b);
}

// numpy's pairwise summation of a contiguous float64 run (what np.sum uses along a contiguous
// axis): blocks of 8 partial sums up to 128 elements, halving above that.
double pairwise_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (std::size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (std::size_t j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (std::size_t j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

// x ** e for a float64 array and a scalar exponent, with numpy's square/sqrt fast paths.
double np_power(double x, double e) {
  if (e == 2.0) return x * x;
  if (e == 0.5) return std::sqrt(x);
  if (e == 1.0) return x;
  return std::pow(x, e);
}

// librosa.util.normalize(S, norm=p, axis=-1) with threshold=None (tiny(T)) and fill=None, on
// a row-major (rows, cols) array of T. The lengths are float64 and S / length is computed in
// float64 then rounded to T, as numpy does for a float32 array divided by a float64 one.
template <typename T>
void normalize_rows(std::vector<T>& s, std::size_t rows, std::size_t cols, MelNorm norm) {
  for (const T v : s) require(std::isfinite(static_cast<double>(v)), "Input must be finite");
  if (norm.kind == MelNorm::none) return;
  const double p = norm.p;
  require(!std::isnan(p) && (p >= 0.0 || std::isinf(p)), "Unsupported norm: " + std::to_string(p));
  const double threshold = static_cast<double>(std::numeric_limits<T>::min());
  std::vector<double> mag(cols);
  for (std::size_t r = 0; r < rows; ++r) {
    T* row = s.data() + r * cols;
    for (std::size_t c = 0; c < cols; ++c) mag[c] = std::fabs(static_cast<double>(row[c]));
    double length = 0.0;
    if (std::isinf(p) && p > 0.0) {
      length = mag.empty() ? 0.0 : mag[0];
      for (const double m : mag) length = m > length ? m : length;
    } else if (std::isinf(p)) {
      length = mag.empty() ? 0.0 : mag[0];
      for (const double m : mag) length = m < length ? m : length;
    } else if (p == 0.0) {
      for (const double m : mag) length += m > 0.0 ? 1.0 : 0.0;
    } else {
      for (double& m : mag) m = np_power(m, p);
      length = np_power(pairwise_sum(mag.data(), cols), 1.0 / p);
    }
    if (length < threshold) length = 1.0;  // fill=None: leave tiny rows as they are
    for (std::size_t c = 0; c < cols; ++c) {
      row[c] = static_cast<T>(static_cast<double>(row[c]) / length);
    }
  }
}

// cos(pi * m / d) for integers m >= 0, d > 0: the angle is folded into [0, pi/2] in integer
// arithmetic first, so that symmetric entries are exactly equal and zeros are exact.
double cos_pi_ratio(std::uint64_t m, std::uint64_t d) {
  m %= 2 * d;
  if (m > d) m = 2 * d - m;  // cos(2pi - a) = cos(a)
  double sign = 1.0;
  if (2 * m > d) {  // cos(pi - a) = -cos(a)
    m = d - m;
    sign = -1.0;
  }
  if (2 * m == d) return 0.0;
  return sign * std::cos(3.141592653589793 * static_cast<double>(m) / static_cast<double>(d));
}

}  // namespace

double hz_to_mel(double hz, bool htk) {
  if (htk) return 2595.0 * std::log10(1.0 + hz / 700.0);
  const SlaneyScale s;
  // Linear below 1 kHz, logarithmic above.
  if (hz >= s.min_log_hz) return s.min_log_mel + std::log(hz / s.min_log_hz) / s.logstep;
  return (hz - 0.0) / s.f_sp;
}

double mel_to_hz(double mel, bool htk) {
  if (htk) return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
  const SlaneyScale s;
  if (mel >= s.min_log_mel) return s.min_log_hz * std::exp(s.logstep * (mel - s.min_log_mel));
  return 0.0 + s.f_sp * mel;
}

std::vector<double> mel_frequencies(std::size_t n_mels, double fmin, double fmax, bool htk) {
  std::vector<double> mels = np_linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels);
  for (double& m : mels) m = mel_to_hz(m, htk);
  return mels;
}

std::vector<double> fft_frequencies(double sr, std::size_t n_fft) {
  require(n_fft > 0, "n_fft must be positive");
  // numpy.fft.rfftfreq(n, d=1/sr): k * (1 / (n * d)), in that order.
  const double d = 1.0 / sr;
  const double val = 1.0 / (static_cast<double>(n_fft) * d);
  std::vector<double> f(n_fft / 2 + 1);
  for (std::size_t k = 0; k < f.size(); ++k) f[k] = static_cast<double>(k) * val;
  return f;
}

template <typename T>
std::vector<T> mel_filterbank(double sr, std::size_t n_fft, std::size_t n_mels, double fmin,
                              double fmax, bool htk, MelNorm norm) {
  require(n_fft > 0, "n_fft must be positive, got " + std::to_string(n_fft));
  require(sr > 0.0 && std::isfinite(sr), "sr must be a positive finite number");
  const std::vector<double> fftfreqs = fft_frequencies(sr, n_fft);
  const std::size_t n_freq = fftfreqs.size();
  const std::vector<double> mel_f = mel_frequencies(n_mels + 2, fmin, fmax, htk);

  std::vector<T> weights(n_mels * n_freq);
  for (std::size_t i = 0; i < n_mels; ++i) {
    const double fdiff_lo = mel_f[i + 1] - mel_f[i];
    const double fdiff_hi = mel_f[i + 2] - mel_f[i + 1];
    T* row = weights.data() + i * n_freq;
    for (std::size_t k = 0; k < n_freq; ++k) {
      // librosa: ramps = mel_f - fftfreq; lower = -ramps[i] / fdiff[i]; upper = ramps[i+2] /
      // fdiff[i+1]; weights[i] = max(0, min(lower, upper)), stored into the T array.
      const double lower = -(mel_f[i] - fftfreqs[k]) / fdiff_lo;
      const double upper = (mel_f[i + 2] - fftfreqs[k]) / fdiff_hi;
      row[k] = static_cast<T>(np_max(0.0, np_min(lower, upper)));
    }
  }

  if (norm.kind == MelNorm::slaney) {
    // weights *= enorm[:, None]: a T array times float64, computed in float64, rounded to T.
    for (std::size_t i = 0; i < n_mels; ++i) {
      const double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
      T* row = weights.data() + i * n_freq;
      for (std::size_t k = 0; k < n_freq; ++k) {
        row[k] = static_cast<T>(static_cast<double>(row[k]) * enorm);
      }
    }
  } else {
    // librosa passes norm=None through util.normalize too, which still checks finiteness.
    normalize_rows(weights, n_mels, n_freq, norm);
  }
  return weights;
}

template <typename T>
bool mel_has_empty_filters(const std::vector<T>& weights, std::size_t n_mels, std::size_t n_fft,
                           double fmin, double fmax, bool htk) {
  const std::size_t n_freq = n_fft / 2 + 1;
  require(weights.size() == n_mels * n_freq, "mel weights do not match n_mels x (1 + n_fft/2)");
  const std::vector<double> mel_f = mel_frequencies(n_mels + 2, fmin, fmax, htk);
  for (std::size_t i = 0; i < n_mels; ++i) {
    if (mel_f[i] == 0.0) continue;  // librosa only checks filters starting above 0 Hz
    bool positive = false, nan = false;
    for (std::size_t k = 0; k < n_freq; ++k) {
      const double w = static_cast<double>(weights[i * n_freq + k]);
      nan = nan || std::isnan(w);
      positive = positive || w > 0.0;
    }
    if (nan || !positive) return true;
  }
  return false;
}

template <typename T>
SparseRows<T> make_sparse_rows(const std::vector<T>& dense, std::size_t n_rows,
                               std::size_t n_cols) {
  require(dense.size() == n_rows * n_cols, "dense matrix size does not match its shape");
  SparseRows<T> out;
  out.n_rows = n_rows;
  out.n_cols = n_cols;
  out.start.assign(n_rows, 0);
  out.offset.assign(n_rows + 1, 0);
  for (std::size_t r = 0; r < n_rows; ++r) {
    const T* row = dense.data() + r * n_cols;
    std::size_t first = n_cols, last = 0;
    for (std::size_t c = 0; c < n_cols; ++c) {
      if (row[c] != T(0)) {  // NaN counts as non-zero
        if (first == n_cols) first = c;
        last = c;
      }
    }
    if (first < n_cols) {
      out.start[r] = first;
      out.weights.insert(out.weights.end(), row + first, row + last + 1);
    }
    out.offset[r + 1] = out.weights.size();
  }
  return out;
}

std::vector<double> dct_matrix(int type, std::size_t n_out, std::size_t n_in, bool ortho) {
  require(type >= 1 && type <= 3,
          "DCT type " + std::to_string(type) + " is not supported (use 1, 2 or 3)");
  require(n_in > 0, "invalid number of data points (" + std::to_string(n_in) + ") specified");
  require(type != 1 || n_in >= 2, "DCT type 1 needs at least 2 input points, got " +
                                      std::to_string(n_in) + " (scipy: zero-length FFT requested)");
  require(n_out <= n_in,
          "n_out=" + std::to_string(n_out) + " cannot exceed n_in=" + std::to_string(n_in));
  const std::uint64_t n = n_in;
  const double nd = static_cast<double>(n_in);
  std::vector<double> m(n_out * n_in);
  for (std::uint64_t k = 0; k < n_out; ++k) {
    for (std::uint64_t j = 0; j < n; ++j) {
      double v = 0.0;
      if (type == 2) {
        // X_k = 2 sum x_j cos(pi k (2j + 1) / 2N); ortho scales row 0 by 1/sqrt(4N), others by
        // 1/sqrt(2N).
        v = 2.0 * cos_pi_ratio(k * (2 * j + 1), 2 * n);
        if (ortho) v *= (k == 0) ? std::sqrt(1.0 / (4.0 * nd)) : std::sqrt(1.0 / (2.0 * nd));
      } else if (type == 3) {
        // X_k = x_0 + 2 sum_{j>0} x_j cos(pi (2k + 1) j / 2N); ortho: x_0 / sqrt(N), the rest
        // times sqrt(2/N).
        if (j == 0) {
          v = ortho ? 1.0 / std::sqrt(nd) : 1.0;
        } else {
          v = 2.0 * cos_pi_ratio((2 * k + 1) * j, 2 * n);
          if (ortho) v *= 1.0 / std::sqrt(2.0 * nd);
        }
      } else {
        // X_k = x_0 + (-1)^k x_{N-1} + 2 sum_{0<j<N-1} x_j cos(pi k j / (N-1)). scipy's ortho
        // form scales everything by 1/sqrt(2(N-1)), the end inputs by sqrt(2) and the end
        // outputs by 1/sqrt(2).
        const bool end_in = (j == 0 || j == n - 1);
        const bool end_out = (k == 0 || k == n - 1);
        v = (end_in ? 1.0 : 2.0) * cos_pi_ratio(k * j, n - 1);
        if (ortho) {
          double scale = 1.0 / std::sqrt(2.0 * (nd - 1.0));
          if (end_in) scale *= std::sqrt(2.0);
          if (end_out) scale /= std::sqrt(2.0);
          v *= scale;
        }
      }
      m[k * n_in + j] = v;
    }
  }
  return m;
}

template std::vector<float> mel_filterbank<float>(double, std::size_t, std::size_t, double, double,
                                                  bool, MelNorm);
template std::vector<double> mel_filterbank<double>(double, std::size_t, std::size_t, double,
                                                    double, bool, MelNorm);
template bool mel_has_empty_filters<float>(const std::vector<float>&, std::size_t, std::size_t,
                                           double, double, bool);
template bool mel_has_empty_filters<double>(const std::vector<double>&, std::size_t, std::size_t,
                                            double, double, bool);
template SparseRows<float> make_sparse_rows<float>(const std::vector<float>&, std::size_t,
                                                   std::size_t);
template SparseRows<double> make_sparse_rows<double>(const std::vector<double>&, std::size_t,
                                                     std::size_t);

}  // namespace mlu
