#include "mlu/harmonic.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

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

// Running median over a window of at most `Cap` values kept sorted in registers (Cap / lanes
// vectors of 32 bytes, padded with +inf): out[i] is the (size // 2)-th smallest of
// ext[i .. i + size - 1]. One step removes `old` and inserts `add` with selects alone: in a
// sorted window every position's fate follows from comparing its own value and its neighbours'
// with `old` and `add` (see below), so no step needs a position as a number, nothing depends on
// a branch the audio decides, and nothing goes through memory. A NaN entering, or an `old` not
// found (a NaN left behind), sorts the window again from scratch.
template <typename T, std::size_t Cap>
[[gnu::always_inline]] inline void sliding_median_reg(const T* ext, std::size_t n,
                                                      std::size_t size, T* out,
                                                      std::vector<T>& scratch) {
  using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  typedef T V __attribute__((vector_size(32)));
  typedef I VI __attribute__((vector_size(32)));
  constexpr std::size_t L = 32 / sizeof(T);
  constexpr std::size_t K = Cap / L;
  static_assert(K * L == Cap && K >= 1, "capacity: whole 32-byte vectors");
  const T inf = std::numeric_limits<T>::infinity();
  const V inf_v = V{} + inf, ninf_v = V{} - inf;
  VI up_mask, down_mask;
  for (std::size_t l = 0; l < L; ++l) {
    up_mask[l] = static_cast<I>(l + 1);        // (a, b) -> a[1..L) b[0]
    down_mask[l] = static_cast<I>(l + L - 1);  // (a, b) -> a[L-1] b[0..L-1)
  }
  const std::size_t rank = size / 2;
  V win[K];
  auto load_sorted = [&](const T* from) {
    scratch.assign(Cap, inf);
    std::copy(from, from + size, scratch.begin());
    std::sort(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(size));
    for (std::size_t k = 0; k < K; ++k) std::memcpy(&win[k], scratch.data() + k * L, sizeof(V));
  };
  load_sorted(ext);
  out[0] = win[rank / L][rank % L];
  for (std::size_t i = 1; i < n; ++i) {
    const T old = ext[i - 1], add = ext[i + size - 1];
    const V old_v = V{} + old, add_v = V{} + add;
    VI found = {};
    for (std::size_t k = 0; k < K; ++k) found |= (win[k] == old_v);
    bool present = false;
    for (std::size_t l = 0; l < L; ++l) present |= found[l] != 0;
    if (!present || add != add) {
      load_sorted(ext + i);
      out[i] = win[rank / L][rank % L];
      continue;
    }
    // With w sorted, up[j] = w[j+1] and down[j] = w[j-1] (+inf / -inf past the ends):
    //  add >= old: `old` leaves at the first w >= old, the values up to `add` move down one
    //    place, `add` lands after them:  w < old ? w : up <= add ? up : w <= add ? add : w;
    //  add < old: `add` lands after the values <= add, the values up to `old` move up one
    //    place:                           w <= add ? w : down <= add ? add : down < old ? down : w.
    const VI rising = VI{} + static_cast<I>(add >= old ? -1 : 0);
    V next[K];
    for (std::size_t k = 0; k < K; ++k) {
      const V w = win[k];
      const V up = __builtin_shuffle(w, k + 1 < K ? win[k + 1] : inf_v, up_mask);
      const V down = __builtin_shuffle(k > 0 ? win[k - 1] : ninf_v, w, down_mask);
      const V a = (w < old_v) ? w : (up <= add_v) ? up : (w <= add_v) ? add_v : w;
      const V b = (w <= add_v) ? w : (down <= add_v) ? add_v : (down < old_v) ? down : w;
      next[k] = rising ? a : b;
    }
    for (std::size_t k = 0; k < K; ++k) win[k] = next[k];
    out[i] = win[rank / L][rank % L];
  }
}

// The general case (windows longer than 64 values): shifts in place.
template <typename T>
bool replace_sorted_any(T* w, std::size_t size, T old, T add) {
  std::int32_t p = 0, q = 0;
  for (std::size_t j = 0; j < size; ++j) {
    p += static_cast<std::int32_t>(w[j] < old);
    q += static_cast<std::int32_t>(w[j] <= add);
  }
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
// Running median of `size` values over a row of n values (already extended by its reflected
// edges): out[i] is the (size // 2)-th smallest of ext[i .. i + size - 1]. For any window size.
template <typename T>
void sliding_median_any(const T* ext, std::size_t n, std::size_t size, T* out,
                        std::vector<T>& window) {
  const std::size_t rank = size / 2;
  window.assign(ext, ext + size);
  T* w = window.data();
  std::sort(w, w + size);
  out[0] = w[rank];
  for (std::size_t i = 1; i < n; ++i) {
    const T old = ext[i - 1], add = ext[i + size - 1];
    if (!(old == add) && !replace_sorted_any(w, size, old, add)) {
      std::copy(ext + i, ext + i + size, w);
      std::sort(w, w + size);
    }
    out[i] = w[rank];
  }
}

// The fixed-capacity running medians, compiled twice (AVX2 and the baseline) and chosen at
// load time by the CPU (GCC's target_clones), like the FFT kernels: their loops are all
// compares and selects over 16-64 values, twice as fast eight lanes at a time.
#if defined(__GNUC__) && !defined(__clang__) && MLU_HAVE_X86
#define MLU_MEDIAN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MLU_MEDIAN_CLONES
#endif

#define MLU_MEDIAN_KERNEL(T, CAP)                                                              \
  MLU_MEDIAN_CLONES void sliding_median_##T##_##CAP(const T* ext, std::size_t n, std::size_t size, \
                                                     T* out, std::vector<T>& scratch) {          \
    sliding_median_reg<T, CAP>(ext, n, size, out, scratch);                                    \
  }
MLU_MEDIAN_KERNEL(float, 16)
MLU_MEDIAN_KERNEL(float, 32)
MLU_MEDIAN_KERNEL(float, 64)
MLU_MEDIAN_KERNEL(double, 16)
MLU_MEDIAN_KERNEL(double, 32)
MLU_MEDIAN_KERNEL(double, 64)
#undef MLU_MEDIAN_KERNEL

// Running median of a row of n values, reflected at the edges: out[i] is the (size // 2)-th
// smallest of row[i - size//2 .. i - size//2 + size - 1].
template <typename T>
void sliding_median(const T* row, std::size_t n, std::size_t size, T* out, std::vector<T>& ext,
                    std::vector<T>& scratch) {
  const std::size_t before = size / 2;
  const std::size_t len = n + size - 1;
  ext.resize(len);
  // reflected edges (a modulo each, so only where needed), a plain copy in between
  auto reflected = [&](std::size_t j) {
    return row[reflect_index(static_cast<std::ptrdiff_t>(j) - static_cast<std::ptrdiff_t>(before),
                             n)];
  };
  const std::size_t inner_end = std::min(len, before + n);
  for (std::size_t j = 0; j < std::min(before, len); ++j) ext[j] = reflected(j);
  if (inner_end > before) std::copy(row, row + (inner_end - before), ext.begin() + before);
  for (std::size_t j = std::max(inner_end, before); j < len; ++j) ext[j] = reflected(j);

  constexpr bool single = std::is_same_v<T, float>;
  const T* e = ext.data();
  if (size == 1) {
    std::copy(e, e + n, out);
  } else if (size <= 16) {
    if constexpr (single) sliding_median_float_16(e, n, size, out, scratch);
    else sliding_median_double_16(e, n, size, out, scratch);
  } else if (size <= 32) {
    if constexpr (single) sliding_median_float_32(e, n, size, out, scratch);
    else sliding_median_double_32(e, n, size, out, scratch);
  } else if (size <= 64) {
    if constexpr (single) sliding_median_float_64(e, n, size, out, scratch);
    else sliding_median_double_64(e, n, size, out, scratch);
  } else {
    sliding_median_any(e, n, size, out, scratch);
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
        std::vector<T> ext, scratch;
        for (std::size_t r = r0; r < r1; ++r) {
          sliding_median(S + r * v.frames, v.frames, size, out + r * v.frames, ext, scratch);
        }
      },
      8);
}

template <typename T>
void median_filter_bins(const T* S, HarmonicView v, std::size_t size, T* out) {
  require(size >= 1, "median filter size must be positive");
  if (v.bins == 0) return;
  for_each_tile(v.channels, v.frames, kTile, [&](std::size_t c, std::size_t f0, std::size_t nf) {
    std::vector<T> cols(nf * v.bins), res(nf * v.bins), ext, scratch;
    const T* base = S + c * v.bins * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k)
      for (std::size_t i = 0; i < nf; ++i) cols[i * v.bins + k] = base[k * v.frames + i];
    for (std::size_t i = 0; i < nf; ++i)
      sliding_median(cols.data() + i * v.bins, v.bins, size, res.data() + i * v.bins, ext, scratch);
    T* o = out + c * v.bins * v.frames + f0;
    for (std::size_t k = 0; k < v.bins; ++k)
      for (std::size_t i = 0; i < nf; ++i) o[k * v.frames + i] = res[i * v.bins + k];
  });
}

namespace {

// One element of librosa.util.softmask(x, xr * m, power, split_zeros).
template <typename T>
inline T softmask_value(T x, T xr_scaled, double power, T p, T fill) {
  const T tiny = std::numeric_limits<T>::min();
  const T z = std::max(x, xr_scaled);
  if (z < tiny) return fill;
  T a = x / z, b = xr_scaled / z;
  if (power == 2.0) {
    a = a * a;
    b = b * b;
  } else if (power != 1.0) {
    a = std::pow(a, p);
    b = std::pow(b, p);
  }
  return a / (a + b);
}

}  // namespace

template <typename T>
void softmask(const T* X, const T* X_ref, std::size_t count, double margin, double power,
              bool split_zeros, T* out) {
  require(power > 0 && std::isfinite(power), "power must be strictly positive");
  const T m = static_cast<T>(margin);
  const T p = static_cast<T>(power);
  const T fill = split_zeros ? T(0.5) : T(0);
  default_pool()->parallel_for(
      count,
      [&](std::size_t i0, std::size_t i1) {
        for (std::size_t i = i0; i < i1; ++i) {
          out[i] = softmask_value(X[i], X_ref[i] * m, power, p, fill);
        }
      },
      4096);
}

template <typename T>
double softmask_weighted_sum(const T* S, const T* X, const T* X_ref, std::size_t count,
                             double margin, double power, bool split_zeros) {
  require(power > 0 && std::isfinite(power), "power must be strictly positive");
  const T m = static_cast<T>(margin);
  const T p = static_cast<T>(power);
  const T fill = split_zeros ? T(0.5) : T(0);
  // fixed chunks, summed in order: the same total whatever the thread count
  constexpr std::size_t kChunk = 1 << 15;
  const std::size_t chunks = (count + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks, 0.0);
  default_pool()->parallel_for(chunks, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t end = std::min(count, (c + 1) * kChunk);
      double acc = 0;
      for (std::size_t i = c * kChunk; i < end; ++i) {
        const T mask = softmask_value(X[i], X_ref[i] * m, power, p, fill);
        acc += static_cast<double>(S[i] * mask);
      }
      partial[c] = acc;
    }
  });
  double total = 0;
  for (double v : partial) total += v;
  return total;
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
  template double softmask_weighted_sum<T>(const T*, const T*, const T*, std::size_t, double,  \
                                           double, bool);                                        \
  template void sparse_complex_product<T>(                                                     \
      const std::size_t*, const std::size_t*, const std::complex<T>*, std::size_t,             \
      const std::complex<T>*, std::size_t, std::size_t, std::size_t, std::complex<T>*);

MLU_HARMONIC_INSTANTIATE(float)
MLU_HARMONIC_INSTANTIATE(double)

#undef MLU_HARMONIC_INSTANTIATE

}  // namespace mlu
