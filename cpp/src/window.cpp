// Window functions, written to follow scipy.signal.windows (scipy 1.17) step by step.
//
// librosa takes every window from scipy.signal.get_window, so the reference is scipy's numpy
// code: each function below evaluates the same expressions in the same order (numpy's linspace,
// arange and power fast paths included), which keeps us within an ulp or two of scipy rather
// than merely close to the textbook formula.
#include "mlu/window.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "mlu/error.hpp"

namespace mlu {
namespace {

constexpr double kPi = 3.141592653589793;  // numpy.pi

using Vec = std::vector<double>;

// numpy.linspace(start, stop, m) for m >= 2: arange(m) * step + start, last sample forced to
// `stop` (numpy's own order of operations; the textbook start + k*(stop-start)/(m-1) rounds
// differently).
Vec linspace(double start, double stop, std::size_t m) {
  Vec y(m);
  const double step = (stop - start) / static_cast<double>(m - 1);
  for (std::size_t k = 0; k < m; ++k) y[k] = static_cast<double>(k) * step + start;
  y[m - 1] = stop;
  return y;
}

// x ** e as numpy evaluates it for an array and a scalar exponent: 2.0 and 0.5 take the
// square/sqrt fast paths, everything else goes to libm's pow.
double np_power(double x, double e) {
  if (e == 2.0) return x * x;
  if (e == 0.5) return std::sqrt(x);
  if (e == 1.0) return x;
  return std::pow(x, e);
}

// Modified Bessel function of the first kind, order 0 (scipy.special.i0), to ~1 ulp.
// Below 30 the power series sum ((x/2)^2)^k / (k!)^2 has only positive terms, so it is
// accurate; above, the asymptotic expansion e^x / sqrt(2 pi x) * sum prod((2j-1)^2) / (k! (8x)^k)
// converges to machine precision before its terms start growing. Like scipy's, it overflows to
// inf once e^x does (x > ~709.78). std::cyl_bessel_i is a few ulp worse in places.
double bessel_i0(double x) {
  x = std::fabs(x);
  if (std::isnan(x)) return x;
  double sum = 1.0, term = 1.0;
  if (x <= 30.0) {
    const double q = 0.25 * x * x;
    for (int k = 1; k < 500; ++k) {
      const double dk = static_cast<double>(k);
      term *= q / (dk * dk);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    return sum;
  }
  for (int k = 1; k < 200; ++k) {
    const double dk = static_cast<double>(k);
    const double ratio = (2.0 * dk - 1.0) * (2.0 * dk - 1.0) / (8.0 * dk * x);
    if (ratio >= 1.0) break;  // the asymptotic series starts to diverge here
    term *= ratio;
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return std::exp(x) / std::sqrt(2.0 * kPi * x) * sum;
}

// scipy's windows share one skeleton: M <= 1 gives ones(M); otherwise a periodic window
// (sym=false) is the symmetric window of M + 1 samples without its last one.
struct Extent {
  std::size_t m;  // length of the symmetric window to compute
  bool truncate;  // drop its last sample afterwards
};
Extent extend(std::size_t n, bool sym) { return sym ? Extent{n, false} : Extent{n + 1, true}; }
Vec truncate(Vec w, bool needed) {
  if (needed && !w.empty()) w.pop_back();
  return w;
}

// sum_k a[k] * cos(k * linspace(-pi, pi, M)), accumulated from zeros as scipy does.
Vec general_cosine(std::size_t n, const Vec& a, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const Vec fac = linspace(-kPi, kPi, e.m);
  Vec w(e.m, 0.0);
  for (std::size_t k = 0; k < a.size(); ++k) {
    const double dk = static_cast<double>(k);
    for (std::size_t j = 0; j < e.m; ++j) w[j] += a[k] * std::cos(dk * fac[j]);
  }
  return truncate(std::move(w), e.truncate);
}

Vec general_hamming(std::size_t n, double alpha, bool sym) {
  return general_cosine(n, {alpha, 1.0 - alpha}, sym);
}

Vec boxcar(std::size_t n, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  return truncate(Vec(e.m, 1.0), e.truncate);
}

Vec triang(std::size_t n, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const std::size_t half = (e.m + 1) / 2;
  const double m = static_cast<double>(e.m);
  Vec left(half);
  for (std::size_t i = 0; i < half; ++i) {
    const double k = static_cast<double>(i + 1);
    left[i] = (e.m % 2 == 0) ? (2.0 * k - 1.0) / m : 2.0 * k / (m + 1.0);
  }
  // Even M mirrors the whole left half; odd M mirrors it without its middle sample.
  Vec w(left);
  const std::size_t mirrored = (e.m % 2 == 0) ? half : half - 1;
  for (std::size_t i = 0; i < mirrored; ++i) w.push_back(left[mirrored - 1 - i]);
  return truncate(std::move(w), e.truncate);
}

Vec parzen(std::size_t n, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const double m = static_cast<double>(e.m);
  const double start = -(m - 1.0) / 2.0;
  Vec w(e.m);
  for (std::size_t i = 0; i < e.m; ++i) {
    const double a = std::fabs(start + static_cast<double>(i));
    const double r = a / (m / 2.0);
    w[i] = (a <= (m - 1.0) / 4.0) ? 1.0 - 6.0 * np_power(r, 2.0) + 6.0 * np_power(r, 3.0)
                                  : 2.0 * np_power(1.0 - r, 3.0);
  }
  return truncate(std::move(w), e.truncate);
}

Vec bohman(std::size_t n, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const Vec t = linspace(-1.0, 1.0, e.m);
  Vec w(e.m, 0.0);  // both end samples are exactly zero
  for (std::size_t i = 1; i + 1 < e.m; ++i) {
    const double fac = std::fabs(t[i]);
    w[i] = (1.0 - fac) * std::cos(kPi * fac) + 1.0 / kPi * std::sin(kPi * fac);
  }
  return truncate(std::move(w), e.truncate);
}

Vec bartlett(std::size_t n, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const double m1 = static_cast<double>(e.m - 1);
  Vec w(e.m);
  for (std::size_t i = 0; i < e.m; ++i) {
    const double k = static_cast<double>(i);
    w[i] = (k <= m1 / 2.0) ? 2.0 * k / m1 : 2.0 - 2.0 * k / m1;
  }
  return truncate(std::move(w), e.truncate);
}

Vec tukey(std::size_t n, double alpha, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  require(!std::isnan(alpha), "tukey window: alpha must not be NaN");
  if (alpha <= 0.0) return Vec(n, 1.0);  // scipy returns ones(M) here, periodic or not
  if (alpha >= 1.0) return general_hamming(n, 0.5, sym);
  const Extent e = extend(n, sym);
  const std::size_t m = e.m;
  const double m1 = static_cast<double>(m - 1);
  const auto width = static_cast<std::size_t>(std::floor(alpha * m1 / 2.0));
  // scipy concatenates three slices of arange(M); Python slicing clamps to the array.
  const std::size_t end1 = std::min(width + 1, m);
  const std::size_t start3 = m - width - 1;
  Vec w;
  w.reserve(m + 1);
  for (std::size_t i = 0; i < end1; ++i) {
    const double k = static_cast<double>(i);
    w.push_back(0.5 * (1.0 + std::cos(kPi * (-1.0 + 2.0 * k / alpha / m1))));
  }
  for (std::size_t i = width + 1; i < start3; ++i) w.push_back(1.0);
  for (std::size_t i = start3; i < m; ++i) {
    const double k = static_cast<double>(i);
    w.push_back(0.5 * (1.0 + std::cos(kPi * (-2.0 / alpha + 1.0 + 2.0 * k / alpha / m1))));
  }
  return truncate(std::move(w), e.truncate);
}

Vec barthann(std::size_t n, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const double m1 = static_cast<double>(e.m) - 1.0;
  Vec w(e.m);
  for (std::size_t i = 0; i < e.m; ++i) {
    const double fac = std::fabs(static_cast<double>(i) / m1 - 0.5);
    w[i] = 0.62 - 0.48 * fac + 0.38 * std::cos(2.0 * kPi * fac);
  }
  return truncate(std::move(w), e.truncate);
}

Vec kaiser(std::size_t n, double beta, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const double alpha = static_cast<double>(e.m - 1) / 2.0;
  const double denom = bessel_i0(beta);
  Vec w(e.m);
  for (std::size_t i = 0; i < e.m; ++i) {
    const double r = (static_cast<double>(i) - alpha) / alpha;
    w[i] = bessel_i0(beta * std::sqrt(1.0 - np_power(r, 2.0))) / denom;
  }
  return truncate(std::move(w), e.truncate);
}

// Symmetric only; built from the cumulative sum of a symmetric Kaiser window of M/2 + 1.
Vec kaiser_bessel_derived(std::size_t n, double beta, bool sym) {
  require(sym, "Kaiser-Bessel Derived windows are only defined for symmetric shapes");
  if (n < 1) return {};
  require(n % 2 == 0, "Kaiser-Bessel Derived windows are only defined for even number of points");
  const Vec k = kaiser(n / 2 + 1, beta, true);
  Vec csum(k.size());
  double acc = 0.0;
  for (std::size_t i = 0; i < k.size(); ++i) csum[i] = acc += k[i];
  Vec w(n);
  for (std::size_t i = 0; i < n / 2; ++i) {
    w[i] = std::sqrt(csum[i] / csum.back());
    w[n - 1 - i] = w[i];
  }
  return w;
}

Vec gaussian(std::size_t n, double std_dev, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const double centre = (static_cast<double>(e.m) - 1.0) / 2.0;
  const double sig2 = 2.0 * std_dev * std_dev;
  Vec w(e.m);
  for (std::size_t i = 0; i < e.m; ++i) {
    const double k = static_cast<double>(i) - centre;
    w[i] = std::exp(-(k * k) / sig2);
  }
  return truncate(std::move(w), e.truncate);
}

Vec general_gaussian(std::size_t n, double p, double sig, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const double centre = (static_cast<double>(e.m) - 1.0) / 2.0;
  Vec w(e.m);
  for (std::size_t i = 0; i < e.m; ++i) {
    const double k = static_cast<double>(i) - centre;
    w[i] = std::exp(-0.5 * np_power(std::fabs(k / sig), 2.0 * p));
  }
  return truncate(std::move(w), e.truncate);
}

Vec cosine(std::size_t n, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const double step = kPi / static_cast<double>(e.m);
  Vec w(e.m);
  for (std::size_t i = 0; i < e.m; ++i) w[i] = std::sin(step * (static_cast<double>(i) + 0.5));
  return truncate(std::move(w), e.truncate);
}

// `center` NaN stands for scipy's center=None (the middle of the window).
Vec exponential(std::size_t n, double center, double tau, bool sym) {
  const bool has_center = !std::isnan(center);
  require(!(sym && has_center), "If sym==True, center must be None.");
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  if (!has_center) center = static_cast<double>(e.m - 1) / 2.0;
  Vec w(e.m);
  for (std::size_t i = 0; i < e.m; ++i) {
    w[i] = std::exp(-std::fabs(static_cast<double>(i) - center) / tau);
  }
  return truncate(std::move(w), e.truncate);
}

// numpy.sinc(x) = sin(pi x) / (pi x), with pi*x == 0 replaced by eps so that sinc(0) == 1.
double np_sinc(double x) {
  double y = kPi * x;
  if (y == 0.0) y = std::numeric_limits<double>::epsilon();
  return std::sin(y) / y;
}

// scipy builds the right half as sinc(2k/(M-1) - 1) and mirrors it, so the window is exactly
// symmetric.
Vec lanczos(std::size_t n, bool sym) {
  if (n <= 1) return Vec(n, 1.0);
  const Extent e = extend(n, sym);
  const std::size_t m = e.m;
  const double m1 = static_cast<double>(m - 1);
  const std::size_t first = (m % 2 == 0) ? m / 2 : (m + 1) / 2;  // start of the right half
  Vec right;
  for (std::size_t k = first; k < m; ++k) {
    right.push_back(np_sinc(2.0 * static_cast<double>(k) / m1 - 1.0));
  }
  Vec w(right.rbegin(), right.rend());
  if (m % 2 == 1) w.push_back(1.0);
  w.insert(w.end(), right.begin(), right.end());
  return truncate(std::move(w), e.truncate);
}

// How a scipy window name takes its tuple parameters.
enum class Args { none, required, optional };

struct WindowKind {
  const char* const* names;  // canonical name first, then scipy's aliases; null-terminated
  Args args;
};

// scipy.signal.windows._windows._WIN_FUNC_DATA (scipy 1.17), for the windows built here.
// chebwin, dpss and taylor are left to scipy by the Python layer.
constexpr const char* kBarthann[] = {"barthann", "brthan", "bth", nullptr};
constexpr const char* kBartlett[] = {"bartlett", "bart", "brt", nullptr};
constexpr const char* kBlackman[] = {"blackman", "black", "blk", nullptr};
constexpr const char* kBlackmanHarris[] = {"blackmanharris", "blackharr", "bkh", nullptr};
constexpr const char* kBohman[] = {"bohman", "bman", "bmn", nullptr};
constexpr const char* kBoxcar[] = {"boxcar", "box", "ones", "rect", "rectangular", nullptr};
constexpr const char* kCosine[] = {"cosine", "halfcosine", nullptr};
constexpr const char* kExponential[] = {"exponential", "poisson", nullptr};
constexpr const char* kFlattop[] = {"flattop", "flat", "flt", nullptr};
constexpr const char* kGaussian[] = {"gaussian", "gauss", "gss", nullptr};
constexpr const char* kGeneralCosine[] = {"general_cosine", "general cosine", nullptr};
constexpr const char* kGeneralGaussian[] = {
    "general_gaussian", "general gaussian", "general gauss", "general_gauss", "ggs", nullptr};
constexpr const char* kGeneralHamming[] = {"general_hamming", "general hamming", nullptr};
constexpr const char* kHamming[] = {"hamming", "hamm", "ham", nullptr};
constexpr const char* kHann[] = {"hann", "han", nullptr};
constexpr const char* kKaiser[] = {"kaiser", "ksr", nullptr};
constexpr const char* kKbd[] = {"kaiser_bessel_derived", "kaiser bessel derived", "kbd", nullptr};
constexpr const char* kLanczos[] = {"lanczos", "sinc", nullptr};
constexpr const char* kNuttall[] = {"nuttall", "nutl", "nut", nullptr};
constexpr const char* kParzen[] = {"parzen", "parz", "par", nullptr};
constexpr const char* kTriang[] = {"triang", "triangle", "tri", nullptr};
constexpr const char* kTukey[] = {"tukey", "tuk", nullptr};

constexpr WindowKind kKinds[] = {
    {kBarthann, Args::none},
    {kBartlett, Args::none},
    {kBlackman, Args::none},
    {kBlackmanHarris, Args::none},
    {kBohman, Args::none},
    {kBoxcar, Args::none},
    {kCosine, Args::none},
    {kExponential, Args::optional},
    {kFlattop, Args::none},
    {kGaussian, Args::required},
    {kGeneralCosine, Args::required},
    {kGeneralGaussian, Args::required},
    {kGeneralHamming, Args::required},
    {kHamming, Args::none},
    {kHann, Args::none},
    {kKaiser, Args::required},
    {kKbd, Args::required},
    {kLanczos, Args::none},
    {kNuttall, Args::none},
    {kParzen, Args::none},
    {kTriang, Args::none},
    {kTukey, Args::optional},
};

const WindowKind* find_kind(const std::string& name) {
  for (const WindowKind& kind : kKinds) {
    for (const char* const* alias = kind.names; *alias != nullptr; ++alias) {
      if (name == *alias) return &kind;
    }
  }
  return nullptr;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void require_count(const std::string& name, const std::vector<double>& params, std::size_t lo,
                   std::size_t hi) {
  require(params.size() >= lo && params.size() <= hi,
          "window '" + name + "' takes " +
              (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) +
              " parameter(s), got " + std::to_string(params.size()));
}

}  // namespace

std::vector<double> get_window(const std::string& name, const std::vector<double>& params,
                               std::size_t n, bool fftbins) {
  // scipy: a "_symmetric" / "_periodic" suffix overrides fftbins.
  bool sym = !fftbins;
  std::string base = name;
  if (ends_with(base, "_symmetric")) {
    sym = true;
    base.resize(base.size() - 10);
  } else if (ends_with(base, "_periodic")) {
    sym = false;
    base.resize(base.size() - 9);
  }
  const WindowKind* kind = find_kind(base);
  require(kind != nullptr, "Invalid window name '" + base + "'");
  require(!(kind->args == Args::none && !params.empty()),
          "'" + base + "' does not allow parameters");
  require(!(kind->args == Args::required && params.empty()), "'" + base + "' must have parameters");

  const std::string canonical = kind->names[0];
  if (canonical == "hann") return general_hamming(n, 0.5, sym);
  if (canonical == "hamming") return general_hamming(n, 0.54, sym);
  if (canonical == "blackman") return general_cosine(n, {0.42, 0.5, 0.08}, sym);
  if (canonical == "blackmanharris") {
    return general_cosine(n, {0.35875, 0.48829, 0.14128, 0.01168}, sym);
  }
  if (canonical == "nuttall") {
    return general_cosine(n, {0.3635819, 0.4891775, 0.1365995, 0.0106411}, sym);
  }
  if (canonical == "flattop") {
    return general_cosine(n, {0.21557895, 0.41663158, 0.277263158, 0.083578947, 0.006947368}, sym);
  }
  if (canonical == "general_cosine") return general_cosine(n, params, sym);
  if (canonical == "boxcar") return boxcar(n, sym);
  if (canonical == "triang") return triang(n, sym);
  if (canonical == "parzen") return parzen(n, sym);
  if (canonical == "bohman") return bohman(n, sym);
  if (canonical == "bartlett") return bartlett(n, sym);
  if (canonical == "barthann") return barthann(n, sym);
  if (canonical == "cosine") return cosine(n, sym);
  if (canonical == "lanczos") return lanczos(n, sym);
  if (canonical == "tukey") {
    require_count(base, params, 0, 1);
    return tukey(n, params.empty() ? 0.5 : params[0], sym);
  }
  if (canonical == "exponential") {
    require_count(base, params, 0, 2);
    const double center = params.empty() ? std::nan("") : params[0];
    const double tau = params.size() < 2 ? 1.0 : params[1];
    return exponential(n, center, tau, sym);
  }
  if (canonical == "general_hamming") {
    require_count(base, params, 1, 1);
    return general_hamming(n, params[0], sym);
  }
  if (canonical == "kaiser") {
    require_count(base, params, 1, 1);
    return kaiser(n, params[0], sym);
  }
  if (canonical == "kaiser_bessel_derived") {
    require_count(base, params, 1, 1);
    return kaiser_bessel_derived(n, params[0], sym);
  }
  if (canonical == "gaussian") {
    require_count(base, params, 1, 1);
    return gaussian(n, params[0], sym);
  }
  // general_gaussian is the only one left in the table.
  require_count(base, params, 2, 2);
  return general_gaussian(n, params[0], params[1], sym);
}

}  // namespace mlu
