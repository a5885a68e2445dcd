#include "mlu/spectral.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "mlu/error.hpp"
#include "mlu/thread_pool.hpp"

namespace mlu {

namespace {

// Features reduce over bins for every frame: work on tiles of frames so each row segment is
// contiguous and the per-frame accumulators stay in L1.
constexpr std::size_t kTile = 128;

void for_each_tile(std::size_t channels, std::size_t frames,
                   const std::function<void(std::size_t, std::size_t, std::size_t)>& fn) {
  const std::size_t tiles = (frames + kTile - 1) / kTile;
  default_pool()->parallel_for(channels * tiles, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t c = b / tiles, f0 = (b % tiles) * kTile;
      fn(c, f0, std::min(kTile, frames - f0));
    }
  });
}

}  // namespace

template <typename T>
void spectral_centroid(const T* S, SpectrogramView v, const double* freq, double* out) {
  for_each_tile(v.channels, v.frames, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    double num[kTile] = {}, den[kTile] = {};
    const T* base = S + c * v.bins * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k) {
      const T* row = base + k * v.frames;
      const double fk = freq[k];
      for (std::size_t i = 0; i < nf; ++i) {
        num[i] += fk * row[i];
        den[i] += row[i];
      }
    }
    double* o = out + c * v.frames + f0;
    for (std::size_t i = 0; i < nf; ++i) o[i] = den[i] > 0 ? num[i] / den[i] : 0.0;
  });
}

template <typename T>
void spectral_bandwidth(const T* S, SpectrogramView v, const double* freq, const double* centroid,
                        double p, bool norm, double* out) {
  require(p > 0, "p=" + std::to_string(p) + " must be positive");
  for_each_tile(v.channels, v.frames, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    double acc[kTile] = {}, den[kTile] = {};
    const T* base = S + c * v.bins * v.frames + f0;
    const double* cen = centroid + c * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k) {
      const T* row = base + k * v.frames;
      const double fk = freq[k];
      for (std::size_t i = 0; i < nf; ++i) {
        const double d = std::fabs(fk - cen[i]);
        acc[i] += row[i] * (p == 2.0 ? d * d : std::pow(d, p));
        den[i] += row[i];
      }
    }
    double* o = out + c * v.frames + f0;
    for (std::size_t i = 0; i < nf; ++i) {
      // librosa's normalize leaves an all-zero frame at zero.
      const double s = norm ? (den[i] > 0 ? acc[i] / den[i] : 0.0) : acc[i];
      o[i] = p == 2.0 ? std::sqrt(s) : std::pow(s, 1.0 / p);
    }
  });
}

template <typename T>
void spectral_rolloff(const T* S, SpectrogramView v, const double* freq, double roll_percent,
                      double* out) {
  require(roll_percent > 0 && roll_percent < 1, "roll_percent must lie in the range (0, 1)");
  for_each_tile(v.channels, v.frames, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    T total[kTile] = {}, threshold[kTile], run[kTile] = {};
    bool found[kTile] = {};
    const T* base = S + c * v.bins * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k) {
      const T* row = base + k * v.frames;
      for (std::size_t i = 0; i < nf; ++i) total[i] += row[i];
    }
    const T rp = static_cast<T>(roll_percent);
    for (std::size_t i = 0; i < nf; ++i) threshold[i] = rp * total[i];
    double* o = out + c * v.frames + f0;
    // Frames whose running sum never reaches the threshold (silence) give the lowest frequency.
    for (std::size_t i = 0; i < nf; ++i) o[i] = v.bins > 0 ? freq[0] : 0.0;
    std::size_t remaining = nf;
    for (std::size_t k = 0; k < v.bins && remaining > 0; ++k) {
      const T* row = base + k * v.frames;
      for (std::size_t i = 0; i < nf; ++i) {
        run[i] += row[i];
        if (!found[i] && !(run[i] < threshold[i])) {
          found[i] = true;
          o[i] = freq[k];
          --remaining;
        }
      }
    }
  });
}

template <typename T>
void spectral_flatness(const T* S, SpectrogramView v, double amin, double power, T* out) {
  require(amin > 0, "amin must be strictly positive");
  for_each_tile(v.channels, v.frames, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    double logs[kTile] = {}, sums[kTile] = {};
    const T* base = S + c * v.bins * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k) {
      const T* row = base + k * v.frames;
      for (std::size_t i = 0; i < nf; ++i) {
        const double x = row[i];
        const double s = std::max(amin, power == 2.0 ? x * x : std::pow(x, power));
        logs[i] += std::log(s);
        sums[i] += s;
      }
    }
    T* o = out + c * v.frames + f0;
    const double nb = static_cast<double>(v.bins);
    for (std::size_t i = 0; i < nf; ++i) {
      o[i] = static_cast<T>(std::exp(logs[i] / nb) / (sums[i] / nb));
    }
  });
}

template <typename T>
void spectral_flux(const T* S, SpectrogramView v, T* out) {
  for_each_tile(v.channels, v.frames, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    double acc[kTile] = {};
    const T* base = S + c * v.bins * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k) {
      const T* row = base + k * v.frames;
      for (std::size_t i = 0; i < nf; ++i) {
        if (f0 + i == 0) continue;
        const double d = static_cast<double>(row[i]) - static_cast<double>(row[i - 1]);
        if (d > 0) acc[i] += d * d;
      }
    }
    T* o = out + c * v.frames + f0;
    for (std::size_t i = 0; i < nf; ++i) o[i] = static_cast<T>(std::sqrt(acc[i]));
  });
}

template <typename T>
void spectral_contrast(const T* S, SpectrogramView v, const std::vector<ContrastBand>& bands,
                       double* peak, double* valley) {
  for (const auto& b : bands) {
    require(b.begin < b.end && b.end <= v.bins, "contrast band outside the spectrum");
    require(b.quantile_bins >= 1 && b.quantile_bins <= b.end - b.begin,
            "contrast band quantile outside the band");
  }
  const std::size_t nb = bands.size();
  default_pool()->parallel_for(v.channels * v.frames, [&](std::size_t j0, std::size_t j1) {
    std::vector<T> buf(v.bins);
    for (std::size_t j = j0; j < j1; ++j) {
      const std::size_t c = j / v.frames, t = j % v.frames;
      const T* col = S + c * v.bins * v.frames + t;
      for (std::size_t bi = 0; bi < nb; ++bi) {
        const ContrastBand& b = bands[bi];
        const std::size_t len = b.end - b.begin, q = b.quantile_bins;
        for (std::size_t k = 0; k < len; ++k) buf[k] = col[(b.begin + k) * v.frames];
        // The q smallest and the q largest values, each averaged (np.sort then mean).
        std::sort(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(len));
        double lo = 0, hi = 0;
        for (std::size_t k = 0; k < q; ++k) {
          lo += buf[k];
          hi += buf[len - q + k];
        }
        valley[(c * nb + bi) * v.frames + t] = lo / static_cast<double>(q);
        peak[(c * nb + bi) * v.frames + t] = hi / static_cast<double>(q);
      }
    }
  });
}

std::size_t FramingView::frames() const {
  const std::size_t padded = center ? n + 2 * (frame_length / 2) : n;
  require(frame_length >= 1, "frame_length must be positive");
  require(hop >= 1, "Invalid hop_length: " + std::to_string(hop));
  require(padded >= frame_length, "Input is too short (n=" + std::to_string(padded) +
                                      ") for frame_length=" + std::to_string(frame_length));
  return 1 + (padded - frame_length) / hop;
}

template <typename T>
void zero_crossing_rate(const T* y, FramingView f, double threshold, bool zero_pos, double* out) {
  const std::size_t frames = f.frames();
  require(f.n >= 1 || !f.center, "cannot edge-pad an empty signal");
  const std::int64_t pad = f.center ? static_cast<std::int64_t>(f.frame_length / 2) : 0;
  const std::int64_t last = static_cast<std::int64_t>(f.n) - 1;
  const T thr = static_cast<T>(threshold);
  default_pool()->parallel_for(f.channels * frames, [&](std::size_t j0, std::size_t j1) {
    for (std::size_t j = j0; j < j1; ++j) {
      const std::size_t c = j / frames, t = j % frames;
      const T* x = y + c * f.n;
      const std::int64_t start = static_cast<std::int64_t>(t * f.hop) - pad;
      // Sign of sample s after edge padding and thresholding.
      auto sign = [&](std::int64_t s) {
        const T v = x[std::clamp<std::int64_t>(s, 0, last)];
        return std::signbit(std::fabs(v) <= thr ? T(0) : v);
      };
      std::size_t count = 0;
      if (zero_pos) {
        bool prev = sign(start);
        for (std::size_t i = 1; i < f.frame_length; ++i) {
          const bool cur = sign(start + static_cast<std::int64_t>(i));
          count += cur != prev;
          prev = cur;
        }
      } else {
        // np.sign semantics: -1, 0, +1 and a crossing wherever consecutive signs differ.
        auto sgn = [&](std::int64_t s) {
          const T v = x[std::clamp<std::int64_t>(s, 0, last)];
          const T z = std::fabs(v) <= thr ? T(0) : v;
          return z > 0 ? 1 : (z < 0 ? -1 : 0);
        };
        int prev = sgn(start);
        for (std::size_t i = 1; i < f.frame_length; ++i) {
          const int cur = sgn(start + static_cast<std::int64_t>(i));
          count += cur != prev;
          prev = cur;
        }
      }
      out[c * frames + t] = static_cast<double>(count) / static_cast<double>(f.frame_length);
    }
  });
}

template <typename T>
void frame_rms_energy(const T* y, FramingView f, T* rms, T* energy) {
  const std::size_t frames = f.frames();
  const std::int64_t pad = f.center ? static_cast<std::int64_t>(f.frame_length / 2) : 0;
  const std::int64_t n = static_cast<std::int64_t>(f.n);
  default_pool()->parallel_for(f.channels * frames, [&](std::size_t j0, std::size_t j1) {
    for (std::size_t j = j0; j < j1; ++j) {
      const std::size_t c = j / frames, t = j % frames;
      const T* x = y + c * f.n;
      const std::int64_t start = static_cast<std::int64_t>(t * f.hop) - pad;
      const std::int64_t lo = std::max<std::int64_t>(start, 0);
      const std::int64_t hi = std::min<std::int64_t>(start + static_cast<std::int64_t>(f.frame_length), n);
      double sum = 0;
      for (std::int64_t s = lo; s < hi; ++s) {
        const double v = x[s];
        sum += v * v;
      }
      if (rms) rms[c * frames + t] = static_cast<T>(std::sqrt(static_cast<T>(sum / static_cast<double>(f.frame_length))));
      if (energy) energy[c * frames + t] = static_cast<T>(sum);
    }
  });
}

#define MLU_SPECTRAL_INSTANTIATE(T)                                                            \
  template void spectral_centroid<T>(const T*, SpectrogramView, const double*, double*);      \
  template void spectral_bandwidth<T>(const T*, SpectrogramView, const double*, const double*, \
                                      double, bool, double*);                                 \
  template void spectral_rolloff<T>(const T*, SpectrogramView, const double*, double, double*); \
  template void spectral_flatness<T>(const T*, SpectrogramView, double, double, T*);          \
  template void spectral_flux<T>(const T*, SpectrogramView, T*);                              \
  template void spectral_contrast<T>(const T*, SpectrogramView, const std::vector<ContrastBand>&, \
                                     double*, double*);                                       \
  template void zero_crossing_rate<T>(const T*, FramingView, double, bool, double*);          \
  template void frame_rms_energy<T>(const T*, FramingView, T*, T*);

MLU_SPECTRAL_INSTANTIATE(float)
MLU_SPECTRAL_INSTANTIATE(double)

}  // namespace mlu
