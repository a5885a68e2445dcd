#include "mlu/spectral.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

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
  // The geometric mean as a running product rather than a sum of logarithms: one multiply per
  // value (vectorised across the tile's frames) and one log per frame. The product is brought
  // back to [1, 2) every two rows, its binary exponent counted apart, so it can neither
  // overflow nor underflow (two float32 values squared stay within double's range).
  for_each_tile(v.channels, v.frames, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    double prod[kTile], sums[kTile] = {};
    std::int64_t expo[kTile] = {};
    std::fill(prod, prod + kTile, 1.0);
    const T* base = S + c * v.bins * v.frames + f0;
    auto renormalise = [&] {
      for (std::size_t i = 0; i < nf; ++i) {
        std::uint64_t bits;
        std::memcpy(&bits, &prod[i], sizeof bits);
        expo[i] += static_cast<std::int64_t>((bits >> 52) & 0x7ff) - 1023;
        bits = (bits & ~(std::uint64_t{0x7ff} << 52)) | (std::uint64_t{1023} << 52);
        std::memcpy(&prod[i], &bits, sizeof bits);
      }
    };
    for (std::size_t k = 0; k < v.bins; ++k) {
      const T* row = base + k * v.frames;
      if (power == 2.0) {
        for (std::size_t i = 0; i < nf; ++i) {
          const double x = row[i];
          const double s = std::max(amin, x * x);
          prod[i] *= s;
          sums[i] += s;
        }
      } else {
        for (std::size_t i = 0; i < nf; ++i) {
          const double s = std::max(amin, std::pow(static_cast<double>(row[i]), power));
          prod[i] *= s;
          sums[i] += s;
        }
      }
      if (k % 2 == 1 || power > 2.0 || power < -2.0) renormalise();
    }
    renormalise();
    T* o = out + c * v.frames + f0;
    const double nb = static_cast<double>(v.bins);
    constexpr double kLn2 = 0.693147180559945309417232121458176568;
    for (std::size_t i = 0; i < nf; ++i) {
      const double log_sum = std::log(prod[i]) + static_cast<double>(expo[i]) * kLn2;
      o[i] = static_cast<T>(std::exp(log_sum / nb) / (sums[i] / nb));
    }
  });
}

template <typename T>
void spectral_flux(const T* S, SpectrogramView v, T* out) {
  for_each_tile(v.channels, v.frames, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    double acc[kTile] = {};
    const T* base = S + c * v.bins * v.frames + f0;
    const std::size_t first = f0 == 0 ? 1 : 0;  // frame 0 has no predecessor: flux 0
    for (std::size_t k = 0; k < v.bins; ++k) {
      const T* row = base + k * v.frames;
      for (std::size_t i = first; i < nf; ++i) {  // branch-free, so it vectorises
        const double d = static_cast<double>(row[i]) - static_cast<double>(row[i - 1]);
        const double up = d > 0 ? d : 0.0;
        acc[i] += up * up;
      }
    }
    T* o = out + c * v.frames + f0;
    for (std::size_t i = 0; i < nf; ++i) o[i] = static_cast<T>(std::sqrt(acc[i]));
  });
}

namespace {

// The q smallest and the q largest values of one contrast band, for the 32 bytes' worth of
// consecutive frames starting at `col` (one frame per lane; rows `stride` apart), by pushing
// each bin's values through two sorted lists of q vectors (a min/max exchange per entry).
// For q <= kContrastLanesQ; returns the sums (in double, ascending) per lane.
constexpr std::size_t kContrastLanesQ = 16;

template <typename T>
[[gnu::always_inline]] inline void contrast_lanes_body(const T* col, std::size_t stride,
                                                       std::size_t begin, std::size_t end,
                                                       std::size_t q, double* lo_sum,
                                                       double* hi_sum) {
  typedef T V __attribute__((vector_size(32)));
  constexpr std::size_t L = 32 / sizeof(T);
  const T inf = std::numeric_limits<T>::infinity();
  V lo[kContrastLanesQ], hi[kContrastLanesQ];
  for (std::size_t j = 0; j < q; ++j) {
    lo[j] = V{} + inf;
    hi[j] = V{} - inf;
  }
  for (std::size_t k = begin; k < end; ++k) {
    V v;
    std::memcpy(&v, col + k * stride, sizeof v);
    V w = v;
    for (std::size_t j = 0; j < q; ++j) {  // lo ascending: lo[0] the smallest
      const V m = v < lo[j] ? v : lo[j];
      v = v < lo[j] ? lo[j] : v;
      lo[j] = m;
    }
    for (std::size_t j = 0; j < q; ++j) {  // hi descending: hi[0] the largest
      const V m = w > hi[j] ? w : hi[j];
      w = w > hi[j] ? hi[j] : w;
      hi[j] = m;
    }
  }
  for (std::size_t l = 0; l < L; ++l) {
    double a = 0, b = 0;
    for (std::size_t j = 0; j < q; ++j) {
      a += lo[j][l];
      b += hi[q - 1 - j][l];
    }
    lo_sum[l] = a;
    hi_sum[l] = b;
  }
}

#if defined(__GNUC__) && !defined(__clang__) && MLU_HAVE_X86
#define MLU_SPECTRAL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MLU_SPECTRAL_CLONES
#endif

MLU_SPECTRAL_CLONES void contrast_lanes(const float* col, std::size_t stride, std::size_t begin,
                                        std::size_t end, std::size_t q, double* lo_sum,
                                        double* hi_sum) {
  contrast_lanes_body<float>(col, stride, begin, end, q, lo_sum, hi_sum);
}
MLU_SPECTRAL_CLONES void contrast_lanes(const double* col, std::size_t stride, std::size_t begin,
                                        std::size_t end, std::size_t q, double* lo_sum,
                                        double* hi_sum) {
  contrast_lanes_body<double>(col, stride, begin, end, q, lo_sum, hi_sum);
}

// The same for one frame, any q: copy the band, select (np.sort then mean, without the sort).
template <typename T>
void contrast_column(const T* col, std::size_t stride, std::size_t begin, std::size_t end,
                     std::size_t q, std::vector<T>& buf, double& lo, double& hi) {
  const std::size_t len = end - begin;
  for (std::size_t k = 0; k < len; ++k) buf[k] = col[(begin + k) * stride];
  auto first = buf.begin(), last = buf.begin() + static_cast<std::ptrdiff_t>(len);
  if (2 * q <= len) {
    // [0, q) the q smallest; then, within the rest, [len - q, len) the q largest
    std::nth_element(first, first + static_cast<std::ptrdiff_t>(q - 1), last);
    std::nth_element(first + static_cast<std::ptrdiff_t>(q), last - static_cast<std::ptrdiff_t>(q),
                     last);
  } else {
    std::sort(first, last);  // the two sets overlap
  }
  lo = hi = 0;
  for (std::size_t k = 0; k < q; ++k) {
    lo += buf[k];
    hi += buf[len - q + k];
  }
}

}  // namespace

template <typename T>
void spectral_contrast(const T* S, SpectrogramView v, const std::vector<ContrastBand>& bands,
                       double* peak, double* valley) {
  for (const auto& b : bands) {
    require(b.begin < b.end && b.end <= v.bins, "contrast band outside the spectrum");
    require(b.quantile_bins >= 1 && b.quantile_bins <= b.end - b.begin,
            "contrast band quantile outside the band");
  }
  const std::size_t nb = bands.size();
  constexpr std::size_t L = 32 / sizeof(T);
  for_each_tile(v.channels, v.frames, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    std::vector<T> buf(v.bins);
    const T* base = S + c * v.bins * v.frames;
    for (std::size_t bi = 0; bi < nb; ++bi) {
      const ContrastBand& b = bands[bi];
      const std::size_t q = b.quantile_bins;
      double* vo = valley + (c * nb + bi) * v.frames;
      double* po = peak + (c * nb + bi) * v.frames;
      std::size_t i = 0;
      if (q <= kContrastLanesQ) {
        // L frames at a time: row segments are contiguous, one frame per lane
        double lo[L], hi[L];
        for (; i + L <= nf; i += L) {
          contrast_lanes(base + f0 + i, v.frames, b.begin, b.end, q, lo, hi);
          for (std::size_t l = 0; l < L; ++l) {
            vo[f0 + i + l] = lo[l] / static_cast<double>(q);
            po[f0 + i + l] = hi[l] / static_cast<double>(q);
          }
        }
      }
      for (; i < nf; ++i) {
        double lo, hi;
        contrast_column(base + f0 + i, v.frames, b.begin, b.end, q, buf, lo, hi);
        vo[f0 + i] = lo / static_cast<double>(q);
        po[f0 + i] = hi / static_cast<double>(q);
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
  // Frame t counts the sign changes between consecutive samples of padded positions
  // [t * hop, t * hop + frame_length). Every change is found once over the padded signal and
  // counted through integer prefix sums (exact), so a frame costs two reads, not frame_length.
  const std::int64_t len =
      static_cast<std::int64_t>((frames - 1) * f.hop + f.frame_length);  // padded span used
  default_pool()->parallel_for(f.channels, [&](std::size_t c0, std::size_t c1) {
    std::vector<std::int8_t> sign(static_cast<std::size_t>(len));
    std::vector<std::uint32_t> prefix(static_cast<std::size_t>(len));
    for (std::size_t c = c0; c < c1; ++c) {
      const T* x = y + c * f.n;
      for (std::int64_t j = 0; j < len; ++j) {
        // edge padding: the first / last sample repeated
        const T v = x[std::clamp<std::int64_t>(j - pad, 0, last)];
        const T z = std::fabs(v) <= thr ? T(0) : v;
        sign[static_cast<std::size_t>(j)] =
            zero_pos ? static_cast<std::int8_t>(std::signbit(z))
                     : static_cast<std::int8_t>((z > 0) - (z < 0));
      }
      // prefix[j] = number of changes between positions (i - 1, i) for 1 <= i <= j
      std::uint32_t run = 0;
      prefix[0] = 0;
      for (std::int64_t j = 1; j < len; ++j) {
        run += sign[static_cast<std::size_t>(j)] != sign[static_cast<std::size_t>(j - 1)];
        prefix[static_cast<std::size_t>(j)] = run;
      }
      for (std::size_t t = 0; t < frames; ++t) {
        const std::size_t start = t * f.hop, end = start + f.frame_length - 1;
        const std::uint32_t count = prefix[end] - prefix[start];
        out[c * frames + t] = static_cast<double>(count) / static_cast<double>(f.frame_length);
      }
    }
  });
}

namespace {

// Sum of squares of x[lo, hi) in double, four independent accumulators (so the adds pipeline).
template <typename T>
double sum_squares(const T* x, std::int64_t lo, std::int64_t hi) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  std::int64_t s = lo;
  for (; s + 4 <= hi; s += 4) {
    const double v0 = x[s], v1 = x[s + 1], v2 = x[s + 2], v3 = x[s + 3];
    a0 += v0 * v0;
    a1 += v1 * v1;
    a2 += v2 * v2;
    a3 += v3 * v3;
  }
  for (; s < hi; ++s) a0 += static_cast<double>(x[s]) * x[s];
  return (a0 + a1) + (a2 + a3);
}

}  // namespace

template <typename T>
void frame_rms_energy(const T* y, FramingView f, T* rms, T* energy) {
  const std::size_t frames = f.frames();
  const std::int64_t pad = f.center ? static_cast<std::int64_t>(f.frame_length / 2) : 0;
  const std::int64_t n = static_cast<std::int64_t>(f.n);
  auto store = [&](std::size_t at, double sum) {
    if (rms) {
      rms[at] = static_cast<T>(std::sqrt(static_cast<T>(sum / static_cast<double>(f.frame_length))));
    }
    if (energy) energy[at] = static_cast<T>(sum);
  };
  // Sum of squares of channel c over padded positions [first, first + length) (zeros outside).
  auto padded_sum = [&](std::size_t c, std::size_t first, std::size_t length) {
    const std::int64_t start = static_cast<std::int64_t>(first) - pad;
    const std::int64_t lo = std::max<std::int64_t>(start, 0);
    const std::int64_t hi = std::min<std::int64_t>(start + static_cast<std::int64_t>(length), n);
    return lo < hi ? sum_squares(y + c * f.n, lo, hi) : 0.0;
  };
  if (f.frame_length % f.hop == 0) {
    // Frames are whole runs of hop-long blocks: square and sum every sample once per block,
    // then add m = frame_length / hop block sums per frame (no running difference, so no
    // cancellation after loud passages).
    const std::size_t m = f.frame_length / f.hop;
    const std::size_t blocks = frames + m - 1;
    std::vector<double> sums(f.channels * blocks);
    default_pool()->parallel_for(f.channels * blocks, [&](std::size_t j0, std::size_t j1) {
      for (std::size_t j = j0; j < j1; ++j) {
        sums[j] = padded_sum(j / blocks, (j % blocks) * f.hop, f.hop);
      }
    });
    default_pool()->parallel_for(f.channels * frames, [&](std::size_t j0, std::size_t j1) {
      for (std::size_t j = j0; j < j1; ++j) {
        const std::size_t c = j / frames, t = j % frames;
        const double* run = sums.data() + c * blocks + t;
        double sum = 0;
        for (std::size_t k = 0; k < m; ++k) sum += run[k];
        store(j, sum);
      }
    });
    return;
  }
  default_pool()->parallel_for(f.channels * frames, [&](std::size_t j0, std::size_t j1) {
    for (std::size_t j = j0; j < j1; ++j) {
      store(j, padded_sum(j / frames, (j % frames) * f.hop, f.frame_length));
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
