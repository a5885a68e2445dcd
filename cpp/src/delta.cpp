// librosa.feature.delta as scipy.signal.savgol_filter(x, width, polyorder=order, deriv=order,
// mode="interp") computes it, row by row.
//
// scipy convolves with the Savitzky-Golay coefficients (scipy.ndimage.convolve1d, in double,
// "constant" mode) and then overwrites the first and last width//2 samples with the
// derivative of a polynomial least-squares fit to the first and last `width` samples.
//
// Two facts make this cheap here:
// * With polyorder == deriv == p, the p-th derivative of the degree-p fit is p! times its
//   leading coefficient: a constant. So the interior coefficients are c(t) = p! P_p(t) /
//   sum P_p^2 with P_p the monic polynomial of degree p orthogonal on t = -h..h (the leading
//   coefficient of a least-squares fit is its projection on P_p), computed by the three-term
//   recurrence in long double: exact to the last bit of double, where scipy's lstsq is within
//   a few ulp of it.
// * For the same reason every edge value equals the interior formula evaluated at the first
//   (last) full window, i.e. y[0..h-1] = y[h] and y[n-h..n-1] = y[n-1-h]: the edge-fit matrix
//   has every row equal to the interior coefficients.
//
// The interior sum follows ndimage's symmetric/antisymmetric path (the coefficients are exactly
// (anti)symmetric): y[i] = x[i] c(0) + sum_{j=h..1} (x[i-j] -/+ x[i+j]) c(-j), accumulated in
// double in that order, so float64 results agree with scipy's to a few ulp.
#include "mlu/delta.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mlu/error.hpp"
#include "mlu/thread_pool.hpp"

namespace mlu {
namespace {

// c(-j) for j = 0..h (the coefficient of x[i-j]); c(+j) = (-1)^order c(-j).
std::vector<double> savgol_half_coefficients(std::size_t width, int order) {
  const std::size_t h = width / 2;
  const std::size_t n_pts = width;
  using LD = long double;
  std::vector<LD> t(n_pts), prev(n_pts, 1.0L), cur(n_pts);
  for (std::size_t i = 0; i < n_pts; ++i) {
    t[i] = static_cast<LD>(i) - static_cast<LD>(h);
    cur[i] = t[i];  // P_1(t) = t: the grid is symmetric, so every alpha_k of the recurrence is 0
  }
  auto norm2 = [&](const std::vector<LD>& p) {
    LD s = 0.0L;
    for (const LD v : p) s += v * v;
    return s;
  };
  LD prev_norm = static_cast<LD>(n_pts);  // ||P_0||^2
  for (int k = 1; k < order; ++k) {
    // P_{k+1} = t P_k - beta_k P_{k-1}, beta_k = ||P_k||^2 / ||P_{k-1}||^2
    const LD cur_norm = norm2(cur);
    const LD beta = cur_norm / prev_norm;
    for (std::size_t i = 0; i < n_pts; ++i) {
      const LD next = t[i] * cur[i] - beta * prev[i];
      prev[i] = cur[i];
      cur[i] = next;
    }
    prev_norm = cur_norm;
  }
  LD factorial = 1.0L;
  for (int k = 2; k <= order; ++k) factorial *= static_cast<LD>(k);
  const LD scale = factorial / norm2(cur);
  std::vector<double> half(h + 1);
  for (std::size_t j = 0; j <= h; ++j) half[j] = static_cast<double>(cur[h - j] * scale);
  return half;
}

// One row: interior by the (anti)symmetric sum, edges copied from the first/last full window.
// The work is done in blocks so that the double accumulators stay in L1 while the loop over
// the block (contiguous, branch-free) vectorises.
template <typename T>
void delta_row(const T* x, T* y, std::size_t n, std::size_t h, const std::vector<double>& c,
               bool odd) {
  constexpr std::size_t kBlock = 512;
  double acc[kBlock];
  const std::size_t end = n - h;  // interior is [h, end)
  for (std::size_t b = h; b < end; b += kBlock) {
    const std::size_t len = std::min(kBlock, end - b);
    const T* xb = x + b;
    for (std::size_t i = 0; i < len; ++i) acc[i] = static_cast<double>(xb[i]) * c[0];
    for (std::size_t j = h; j >= 1; --j) {
      const double cj = c[j];
      const T* lo = xb - j;
      const T* hi = xb + j;
      if (odd) {
        for (std::size_t i = 0; i < len; ++i) {
          acc[i] += (static_cast<double>(lo[i]) - static_cast<double>(hi[i])) * cj;
        }
      } else {
        for (std::size_t i = 0; i < len; ++i) {
          acc[i] += (static_cast<double>(lo[i]) + static_cast<double>(hi[i])) * cj;
        }
      }
    }
    for (std::size_t i = 0; i < len; ++i) y[b + i] = static_cast<T>(acc[i]);
  }
  std::fill(y, y + h, y[h]);
  std::fill(y + end, y + n, y[end - 1]);
}

}  // namespace

template <typename T>
void savgol_delta(const T* x, T* y, std::size_t n_rows, std::size_t length, std::size_t width,
                  int order) {
  require(width >= 3 && width % 2 == 1, "width must be an odd integer >= 3");
  require(order > 0, "order must be a positive integer");
  require(width <= length, "when mode='interp', width=" + std::to_string(width) +
                               " cannot exceed data.shape[axis]=" + std::to_string(length));
  require(static_cast<std::size_t>(order) < width, "polyorder must be less than window_length.");
  if (n_rows == 0) return;
  require(x != nullptr && y != nullptr, "savgol_delta: null data pointer");
  // Compare addresses as integers: relational operators on pointers into different arrays
  // are unspecified.
  const auto xa = reinterpret_cast<std::uintptr_t>(x);
  const auto ya = reinterpret_cast<std::uintptr_t>(y);
  const std::uintptr_t bytes = n_rows * length * sizeof(T);
  require(xa + bytes <= ya || ya + bytes <= xa, "savgol_delta: output must not overlap the input");

  const std::vector<double> c = savgol_half_coefficients(width, order);
  const std::size_t h = width / 2;
  const bool odd = order % 2 == 1;
  // Rows are independent: spread them over the pool, in chunks of at least ~64k samples so
  // that small inputs stay on the calling thread.
  const std::size_t min_rows = std::max<std::size_t>(1, (std::size_t{1} << 16) / length);
  default_pool()->parallel_for(
      n_rows,
      [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
          delta_row(x + r * length, y + r * length, length, h, c, odd);
        }
      },
      min_rows);
}

template void savgol_delta<float>(const float*, float*, std::size_t, std::size_t, std::size_t, int);
template void savgol_delta<double>(const double*, double*, std::size_t, std::size_t, std::size_t,
                                   int);

}  // namespace mlu
