#include "mlu/harmonic.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>

#include "mlu/error.hpp"
#include "mlu/thread_pool.hpp"

namespace mlu {

namespace {

// Frames handled together: a tile of columns is gathered once so that every per-frame pass
// over the bins reads contiguous memory.
constexpr std::size_t kTile = 16;

void check_view(const HarmonicView& v, const char* what) {
  require(v.bins >= 1, std::string(what) + ": the spectrogram has no frequency bins");
}

// numba's typing of librosa's _pi_stencil: x[1] + x[-1] and x[1] - x[-1] in T, the rest in
// double, the shift stored back as T.
template <typename T>
T parabolic_shift(T xm, T x0, T xp) {
  const T sum = xp + xm;
  const T diff = xp - xm;
  const double a = static_cast<double>(sum) - 2.0 * static_cast<double>(x0);
  const double b = static_cast<double>(diff) / 2.0;
  if (std::fabs(b) >= std::fabs(a)) return T(0);
  return static_cast<T>(-b / a);
}

struct FreqRange {
  std::size_t lo = 0, hi = 0;  // bins k with fmin <= f_k < fmax
};

FreqRange piptrack_range(const PiptrackParams& p, std::size_t bins) {
  require(p.sr > 0, "sr=" + std::to_string(p.sr) + " must be positive");
  require(p.n_fft >= 1, "n_fft must be positive");
  const double fmin = std::max(p.fmin, 0.0);
  const double fmax = std::min(p.fmax, p.sr / 2.0);
  // np.fft.rfftfreq(n_fft, d=1/sr): k * (1 / (n_fft * (1 / sr)))
  const double val = 1.0 / (static_cast<double>(p.n_fft) * (1.0 / p.sr));
  FreqRange r{bins, bins};
  for (std::size_t k = 0; k < bins; ++k) {
    const double f = static_cast<double>(k) * val;
    if (fmin <= f && f < fmax) {
      if (r.lo == bins) r.lo = k;
      r.hi = k + 1;
    }
  }
  if (r.lo == bins) r.lo = r.hi = 0;
  return r;
}

// Calls emit(channel, k, t, pitch, mag) for every piptrack peak.
template <typename T, typename Emit>
void piptrack_scan(const T* S, HarmonicView v, const PiptrackParams& p, const T* ref, std::size_t c,
                   std::size_t f0, std::size_t nf, const FreqRange& range, std::vector<T>& col,
                   std::vector<T>& masked, Emit&& emit) {
  const std::size_t bins = v.bins, frames = v.frames;
  if (range.lo >= range.hi) return;
  const T* base = S + c * bins * frames;
  // Only bins [g0, g1) are read around the search range; the frame maxima need every bin and
  // are taken row by row (contiguous) instead.
  const std::size_t g0 = range.lo > 0 ? range.lo - 1 : 0;
  const std::size_t g1 = std::min(range.hi + 1, bins);
  const std::size_t G = g1 - g0;
  col.resize(nf * G + nf);
  T* mx = col.data() + nf * G;
  if (ref == nullptr) {
    for (std::size_t i = 0; i < nf; ++i) mx[i] = std::abs(base[f0 + i]);
    for (std::size_t k = 1; k < bins; ++k) {
      const T* row = base + k * frames + f0;
      for (std::size_t i = 0; i < nf; ++i) mx[i] = std::max(mx[i], std::abs(row[i]));
    }
  }
  for (std::size_t k = g0; k < g1; ++k) {
    const T* row = base + k * frames + f0;
    for (std::size_t i = 0; i < nf; ++i) col[i * G + (k - g0)] = std::abs(row[i]);
  }
  masked.resize(G);
  const double sr_over = p.sr;
  const double n_fft = static_cast<double>(p.n_fft);
  for (std::size_t i = 0; i < nf; ++i) {
    const T* xs = col.data() + i * G;  // xs[k - g0] is |S[k]|
    const std::size_t t = f0 + i;
    const T r =
        ref != nullptr ? ref[c * frames + t] : static_cast<T>(static_cast<T>(p.threshold) * mx[i]);
    for (std::size_t j = 0; j < G; ++j) masked[j] = xs[j] > r ? xs[j] : T(0);
    for (std::size_t k = range.lo; k < range.hi; ++k) {
      const std::size_t j = k - g0;
      bool peak;
      if (k == 0) {
        peak = false;
      } else if (k + 1 == bins) {
        peak = masked[j] > masked[j - 1];
      } else {
        peak = masked[j] > masked[j - 1] && masked[j] >= masked[j + 1];
      }
      if (!peak) continue;
      T shift = T(0), avg;
      if (k + 1 == bins) {
        avg = xs[j] - xs[j - 1];
      } else {
        shift = parabolic_shift(xs[j - 1], xs[j], xs[j + 1]);
        avg = (xs[j + 1] - xs[j - 1]) / T(2);
      }
      const T dskew = (T(0.5) * avg) * shift;
      const T pitch =
          static_cast<T>((static_cast<double>(k) + static_cast<double>(shift)) * sr_over / n_fft);
      const T mag = xs[j] + dskew;
      emit(c, k, t, pitch, mag);
    }
  }
}

template <typename Fn>
void for_each_tile(std::size_t channels, std::size_t frames, std::size_t tile, Fn&& fn) {
  const std::size_t tiles = (frames + tile - 1) / tile;
  default_pool()->parallel_for(channels * tiles, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t c = b / tiles, f0 = (b % tiles) * tile;
      fn(c, f0, std::min(tile, frames - f0));
    }
  });
}

}  // namespace

template <typename T>
void piptrack(const T* S, HarmonicView v, const PiptrackParams& p, const T* ref, T* pitches,
              T* mags) {
  check_view(v, "piptrack");
  const FreqRange range = piptrack_range(p, v.bins);
  const std::size_t total = v.channels * v.bins * v.frames;
  std::fill(pitches, pitches + total, T(0));
  std::fill(mags, mags + total, T(0));
  for_each_tile(v.channels, v.frames, kTile, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    std::vector<T> col, masked;
    piptrack_scan<T>(S, v, p, ref, c, f0, nf, range, col, masked,
                     [&](std::size_t ch, std::size_t k, std::size_t t, T pitch, T mag) {
                       const std::size_t at = (ch * v.bins + k) * v.frames + t;
                       pitches[at] = pitch;
                       mags[at] = mag;
                     });
  });
}

template <typename T>
void piptrack_peaks(const T* S, HarmonicView v, const PiptrackParams& p, const T* ref,
                    std::vector<T>& pitches, std::vector<T>& mags) {
  check_view(v, "piptrack");
  const FreqRange range = piptrack_range(p, v.bins);
  pitches.clear();
  mags.clear();
  std::mutex lock;
  for_each_tile(
      v.channels, v.frames, 8 * kTile, [&](std::size_t c, std::size_t f0, std::size_t nf) {
        std::vector<T> col, masked, lp, lm;
        for (std::size_t s = 0; s < nf; s += kTile) {
          piptrack_scan<T>(S, v, p, ref, c, f0 + s, std::min(kTile, nf - s), range, col, masked,
                           [&](std::size_t, std::size_t, std::size_t, T pitch, T mag) {
                             if (pitch > T(0)) {
                               lp.push_back(pitch);
                               lm.push_back(mag);
                             }
                           });
        }
        std::lock_guard<std::mutex> guard(lock);
        pitches.insert(pitches.end(), lp.begin(), lp.end());
        mags.insert(mags.end(), lm.begin(), lm.end());
      });
}

std::vector<double> chroma_filterbank(double sr, std::size_t n_fft, std::size_t n_chroma,
                                      double tuning, double ctroct, double octwidth, double norm,
                                      bool base_c) {
  require(sr > 0, "sr=" + std::to_string(sr) + " must be positive");
  require(n_fft >= 2, "n_fft=" + std::to_string(n_fft) + " is too small for a chroma filter bank");
  require(n_chroma >= 1, "n_chroma must be a positive integer");
  require(std::isfinite(tuning), "tuning must be finite");
  require(norm >= 0, "Unsupported norm");
  const double nc = static_cast<double>(n_chroma);
  // frqbins over all n_fft columns: column 0 is made up 1.5 octaves below column 1.
  const double a440 = 440.0 * std::pow(2.0, tuning / nc);
  const double step = sr / static_cast<double>(n_fft);
  std::vector<double> frq(n_fft);
  for (std::size_t k = 1; k < n_fft; ++k) {
    frq[k] = nc * std::log2(static_cast<double>(k) * step / (a440 / 16.0));
  }
  frq[0] = frq[1] - 1.5 * nc;
  const std::size_t cols = n_fft / 2 + 1;
  const double half = std::nearbyint(nc / 2.0);
  std::vector<double> w(n_chroma * cols);
  for (std::size_t k = 0; k < cols; ++k) {
    const double width = k + 1 < n_fft ? std::max(frq[k + 1] - frq[k], 1.0) : 1.0;
    for (std::size_t ch = 0; ch < n_chroma; ++ch) {
      const double x = frq[k] - static_cast<double>(ch) + half + 10.0 * nc;
      double r = std::fmod(x, nc);
      if (r != 0.0 && (r < 0) != (nc < 0)) r += nc;
      const double d = r - half;
      const double z = 2.0 * d / width;
      w[ch * cols + k] = std::exp(-0.5 * (z * z));
    }
    if (norm > 0) {
      double length = 0.0;
      if (std::isinf(norm)) {
        for (std::size_t ch = 0; ch < n_chroma; ++ch)
          length = std::max(length, std::fabs(w[ch * cols + k]));
      } else {
        for (std::size_t ch = 0; ch < n_chroma; ++ch)
          length += std::pow(std::fabs(w[ch * cols + k]), norm);
        length = std::pow(length, 1.0 / norm);
      }
      if (length < std::numeric_limits<double>::min()) length = 1.0;
      for (std::size_t ch = 0; ch < n_chroma; ++ch) w[ch * cols + k] /= length;
    }
    if (octwidth > 0) {
      const double e = (frq[k] / nc - ctroct) / octwidth;
      const double g = std::exp(-0.5 * (e * e));
      for (std::size_t ch = 0; ch < n_chroma; ++ch) w[ch * cols + k] *= g;
    }
  }
  if (base_c) {
    const std::size_t shift = (3 * (n_chroma / 12)) % n_chroma;
    std::vector<double> rolled(w.size());
    for (std::size_t ch = 0; ch < n_chroma; ++ch) {
      const std::size_t src = (ch + shift) % n_chroma;
      std::copy(w.begin() + static_cast<std::ptrdiff_t>(src * cols),
                w.begin() + static_cast<std::ptrdiff_t>((src + 1) * cols),
                rolled.begin() + static_cast<std::ptrdiff_t>(ch * cols));
    }
    w.swap(rolled);
  }
  return w;
}

template <typename T>
void apply_bank_normalize(const T* S, HarmonicView v, const T* W, std::size_t rows,
                          double threshold, double norm, T* out) {
  require(rows >= 1, "the filter bank has no rows");
  constexpr std::size_t tile = 256;
  for_each_tile(v.channels, v.frames, tile, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    // float32 accumulation for float32 input, as librosa's einsum (BLAS sgemm) does.
    std::vector<T> vals(rows * nf, T(0));
    const T* base = S + c * v.bins * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k) {
      const T* row = base + k * v.frames;
      for (std::size_t r = 0; r < rows; ++r) {
        const T w = W[r * v.bins + k];
        if (w == T(0)) continue;
        T* a = vals.data() + r * nf;
        for (std::size_t i = 0; i < nf; ++i) a[i] += w * row[i];
      }
    }
    if (threshold >= 0) {
      for (auto& x : vals)
        if (static_cast<double>(x) < threshold) x = T(0);
    }
    T* o = out + c * rows * v.frames + f0;
    for (std::size_t i = 0; i < nf; ++i) {
      double length = 1.0;
      if (norm > 0) {
        length = 0.0;
        if (std::isinf(norm)) {
          for (std::size_t r = 0; r < rows; ++r)
            length = std::max(length, std::fabs(static_cast<double>(vals[r * nf + i])));
        } else {
          for (std::size_t r = 0; r < rows; ++r)
            length += std::pow(std::fabs(static_cast<double>(vals[r * nf + i])), norm);
          length = std::pow(length, 1.0 / norm);
        }
        if (length < static_cast<double>(std::numeric_limits<T>::min())) length = 1.0;
      }
      for (std::size_t r = 0; r < rows; ++r)
        o[r * v.frames + i] = static_cast<T>(static_cast<double>(vals[r * nf + i]) / length);
    }
  });
}

namespace {

// scipy.ndimage "reflect" (half-sample symmetric) index into [0, n).
std::size_t reflect_index(std::ptrdiff_t j, std::size_t n) {
  const auto period = static_cast<std::ptrdiff_t>(2 * n);
  j %= period;
  if (j < 0) j += period;
  if (j >= static_cast<std::ptrdiff_t>(n)) j = period - 1 - j;
  return static_cast<std::size_t>(j);
}

// One step of a running median: `w` holds the window's `size` values sorted, followed by +inf
// up to `cap` (a compile-time bound, so the counting loops vectorise fully); `old` leaves and
// `add` enters. Returns false if `old` is not in the window (a NaN): the caller rebuilds.
template <typename T, std::size_t Cap>
bool replace_sorted(T* w, std::size_t size, T old, T add) {
  std::int32_t p = 0, q = 0;
  const std::size_t cap = Cap == 0 ? size : Cap;
  for (std::size_t j = 0; j < cap; ++j) {
    p += static_cast<std::int32_t>(w[j] < old);
    q += static_cast<std::int32_t>(w[j] <= add);
  }
  q = std::min(q, static_cast<std::int32_t>(size));  // the +inf padding is not in the window
  if (p >= static_cast<std::int32_t>(size) || !(w[p] == old)) return false;
  if (q > p) {
    for (std::int32_t j = p; j < q - 1; ++j) w[j] = w[j + 1];
    w[q - 1] = add;
  } else {
    for (std::int32_t j = p; j > q; --j) w[j] = w[j - 1];
    w[q] = add;
  }
  return true;
}

// Running median of `size` values over a row of n values with reflected edges: out[i] is the
// (size // 2)-th smallest of row[i - size//2 .. i - size//2 + size - 1].
template <typename T, std::size_t Cap>
void sliding_median_cap(const T* ext, std::size_t n, std::size_t size, T* out,
                        std::vector<T>& window) {
  const std::size_t rank = size / 2;
  window.assign(std::max(Cap, size) + 1, std::numeric_limits<T>::infinity());
  std::copy(ext, ext + size, window.begin());
  std::sort(window.begin(), window.begin() + static_cast<std::ptrdiff_t>(size));
  T* w = window.data();
  out[0] = w[rank];
  for (std::size_t i = 1; i < n; ++i) {
    const T old = ext[i - 1], add = ext[i + size - 1];
    if (!(old == add) && !replace_sorted<T, Cap>(w, size, old, add)) {
      std::copy(ext + i, ext + i + size, w);
      std::sort(w, w + size);
    }
    out[i] = w[rank];
  }
}

template <typename T>
void sliding_median(const T* row, std::size_t n, std::size_t size, T* out, std::vector<T>& ext,
                    std::vector<T>& window) {
  const std::size_t before = size / 2;
  ext.resize(n + size - 1);
  for (std::size_t j = 0; j < ext.size(); ++j) {
    ext[j] =
        row[reflect_index(static_cast<std::ptrdiff_t>(j) - static_cast<std::ptrdiff_t>(before), n)];
  }
  if (size == 1) {
    std::copy(ext.begin(), ext.begin() + static_cast<std::ptrdiff_t>(n), out);
  } else if (size <= 32) {
    sliding_median_cap<T, 32>(ext.data(), n, size, out, window);
  } else if (size <= 64) {
    sliding_median_cap<T, 64>(ext.data(), n, size, out, window);
  } else {
    sliding_median_cap<T, 0>(ext.data(), n, size, out, window);
  }
}

}  // namespace

template <typename T>
void median_filter_frames(const T* S, HarmonicView v, std::size_t size, T* out) {
  require(size >= 1, "median filter size must be positive");
  if (v.frames == 0) return;
  const std::size_t rows = v.channels * v.bins;
  default_pool()->parallel_for(
      rows,
      [&](std::size_t r0, std::size_t r1) {
        std::vector<T> ext, window;
        for (std::size_t r = r0; r < r1; ++r) {
          sliding_median(S + r * v.frames, v.frames, size, out + r * v.frames, ext, window);
        }
      },
      8);
}

template <typename T>
void median_filter_bins(const T* S, HarmonicView v, std::size_t size, T* out) {
  require(size >= 1, "median filter size must be positive");
  if (v.bins == 0) return;
  for_each_tile(v.channels, v.frames, kTile, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    std::vector<T> cols(nf * v.bins), res(nf * v.bins), ext, window;
    const T* base = S + c * v.bins * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k)
      for (std::size_t i = 0; i < nf; ++i) cols[i * v.bins + k] = base[k * v.frames + i];
    for (std::size_t i = 0; i < nf; ++i)
      sliding_median(cols.data() + i * v.bins, v.bins, size, res.data() + i * v.bins, ext, window);
    T* o = out + c * v.bins * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k)
      for (std::size_t i = 0; i < nf; ++i) o[k * v.frames + i] = res[i * v.bins + k];
  });
}

template <typename T>
void softmask(const T* X, const T* X_ref, std::size_t count, double margin, double power,
              bool split_zeros, T* out) {
  require(power > 0 && std::isfinite(power), "power must be strictly positive");
  const T m = static_cast<T>(margin);
  const T p = static_cast<T>(power);
  const T tiny = std::numeric_limits<T>::min();
  const T fill = split_zeros ? T(0.5) : T(0);
  default_pool()->parallel_for(
      count,
      [&](std::size_t i0, std::size_t i1) {
        for (std::size_t i = i0; i < i1; ++i) {
          const T x = X[i], xr = X_ref[i] * m;
          const T z = std::max(x, xr);
          if (z < tiny) {
            out[i] = fill;
            continue;
          }
          T a = x / z, b = xr / z;
          if (power == 2.0) {
            a = a * a;
            b = b * b;
          } else if (power != 1.0) {
            a = std::pow(a, p);
            b = std::pow(b, p);
          }
          out[i] = a / (a + b);
        }
      },
      4096);
}

template <typename T>
void sparse_complex_product(const std::size_t* indptr, const std::size_t* indices,
                            const std::complex<T>* values, std::size_t rows,
                            const std::complex<T>* D, std::size_t n_bins, std::size_t frames,
                            std::size_t channels, std::complex<T>* out) {
  for (std::size_t r = 0; r < rows; ++r) {
    require(indptr[r] <= indptr[r + 1], "sparse basis: indptr must be non-decreasing");
  }
  for (std::size_t j = 0; j < indptr[rows]; ++j) {
    require(indices[j] < n_bins, "sparse basis: column index out of range");
  }
  default_pool()->parallel_for(channels * rows, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t c = b / rows, r = b % rows;
      T* o = reinterpret_cast<T*>(out + (c * rows + r) * frames);
      std::fill(o, o + 2 * frames, T(0));
      for (std::size_t j = indptr[r]; j < indptr[r + 1]; ++j) {
        const T vr = values[j].real(), vi = values[j].imag();
        const T* d = reinterpret_cast<const T*>(D + (c * n_bins + indices[j]) * frames);
        for (std::size_t t = 0; t < frames; ++t) {
          const T dr = d[2 * t], di = d[2 * t + 1];
          o[2 * t] += vr * dr - vi * di;
          o[2 * t + 1] += vr * di + vi * dr;
        }
      }
    }
  });
}

#define MLU_HARMONIC_INSTANTIATE(T)                                                            \
  template void piptrack<T>(const T*, HarmonicView, const PiptrackParams&, const T*, T*, T*);  \
  template void piptrack_peaks<T>(const T*, HarmonicView, const PiptrackParams&, const T*,     \
                                  std::vector<T>&, std::vector<T>&);                           \
  template void apply_bank_normalize<T>(const T*, HarmonicView, const T*, std::size_t, double, \
                                        double, T*);                                           \
  template void median_filter_frames<T>(const T*, HarmonicView, std::size_t, T*);              \
  template void median_filter_bins<T>(const T*, HarmonicView, std::size_t, T*);                \
  template void softmask<T>(const T*, const T*, std::size_t, double, double, bool, T*);        \
  template void sparse_complex_product<T>(                                                     \
      const std::size_t*, const std::size_t*, const std::complex<T>*, std::size_t,             \
      const std::complex<T>*, std::size_t, std::size_t, std::size_t, std::complex<T>*);

MLU_HARMONIC_INSTANTIATE(float)
MLU_HARMONIC_INSTANTIATE(double)

#undef MLU_HARMONIC_INSTANTIATE

}  // namespace mlu
