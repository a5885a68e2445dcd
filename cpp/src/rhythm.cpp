// Rhythm features: onset strength, peak picking, the autocorrelation tempogram and the
// dynamic-programming beat tracker, each following librosa 0.11's arithmetic (types and order)
// so that the results match it bit for bit where librosa's own code is deterministic.
#include "mlu/rhythm.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "mlu/error.hpp"
#include "mlu/fft.hpp"
#include "mlu/thread_pool.hpp"

namespace mlu {

namespace {

// np.maximum(0, d): NaN propagates.
template <typename T>
inline T half_wave(T d) {
  return (d > T(0) || std::isnan(d)) ? d : T(0);
}

// np.median of n half-wave rectified values (zeros or positive, or NaN): zeros take the lowest
// ranks, so only the positive values need a selection.
template <typename T>
T rectified_median(const T* x, std::size_t n, std::vector<T>& positive) {
  positive.clear();
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return x[i];
    if (x[i] > T(0)) positive.push_back(x[i]);
  }
  const std::size_t zeros = n - positive.size();
  auto at_rank = [&](std::size_t rank) -> T {
    if (rank < zeros) return T(0);
    const auto k = static_cast<std::ptrdiff_t>(rank - zeros);
    std::nth_element(positive.begin(), positive.begin() + k, positive.end());
    return positive[static_cast<std::size_t>(k)];
  };
  const std::size_t half = n / 2;
  const T hi = at_rank(half);
  if (n % 2 == 1) return hi;
  T lo;
  if (half - 1 < zeros) {
    lo = T(0);
  } else {
    // After selecting rank `half`, the ones below it sit before it: their maximum is rank half-1.
    const auto k = static_cast<std::ptrdiff_t>(half - zeros);
    lo = *std::max_element(positive.begin(), positive.begin() + k);
  }
  const T sum = static_cast<T>(lo + hi);
  return static_cast<T>(static_cast<double>(sum) / 2.0);
}

// numba's np.mean of a float slice: a sequential sum in the array's type, divided in double,
// rounded back to the array's type.
template <typename T>
inline T numba_mean(const T* x, std::size_t begin, std::size_t end) {
  T c = T(0);
  for (std::size_t i = begin; i < end; ++i) c = static_cast<T>(c + x[i]);
  return static_cast<T>(static_cast<double>(c) / static_cast<double>(end - begin));
}

// numpy's round (half to even) for the integral-or-half values the tracker rounds.
inline double round_half_even(double x) { return std::nearbyint(x); }

}  // namespace

// ------------------------------------------------------------------------ onset strength

template <typename T>
void onset_flux(const T* S, const T* ref, std::size_t channels, std::size_t bands,
                std::size_t frames, std::size_t lag, OnsetAggregate aggregate, std::size_t pad,
                T* out, std::size_t out_frames) {
  require(lag >= 1, "lag must be a positive integer");
  require(bands >= 1, "onset strength needs at least one frequency band");
  const std::size_t diffs = frames > lag ? frames - lag : 0;
  require(out_frames <= pad + diffs, "onset strength output is longer than the envelope");
  const std::size_t n_out = out_frames > pad ? out_frames - pad : 0;  // differences written
  for (std::size_t c = 0; c < channels; ++c)
    std::fill(out + c * out_frames, out + c * out_frames + std::min(pad, out_frames), T(0));
  if (n_out == 0) return;
  // Work items: (channel, block of frames). Every frame is computed independently.
  constexpr std::size_t block = 256;
  const std::size_t blocks = (n_out + block - 1) / block;
  auto pool = default_pool();
  pool->parallel_for(channels * blocks, [&](std::size_t j0, std::size_t j1) {
    std::vector<T> tile;  // (frames of the block, bands): one column per frame, for medians
    std::vector<T> positive(bands);
    for (std::size_t job = j0; job < j1; ++job) {
      const std::size_t c = job / blocks;
      const std::size_t t0 = (job % blocks) * block;
      const std::size_t nt = std::min(block, n_out - t0);
      const T* s = S + c * bands * frames + lag + t0;
      const T* r = ref + c * bands * frames + t0;
      T* d = out + c * out_frames + pad + t0;
      if (aggregate == OnsetAggregate::mean) {
        // Bands summed in order (numpy's reduction over the outer axis), frames in SIMD.
        for (std::size_t t = 0; t < nt; ++t) d[t] = half_wave<T>(s[t] - r[t]);
        for (std::size_t b = 1; b < bands; ++b) {
          const T* sb = s + b * frames;
          const T* rb = r + b * frames;
          for (std::size_t t = 0; t < nt; ++t) d[t] = d[t] + half_wave<T>(sb[t] - rb[t]);
        }
        const double count = static_cast<double>(bands);
        for (std::size_t t = 0; t < nt; ++t)
          d[t] = static_cast<T>(static_cast<double>(d[t]) / count);
        continue;
      }
      tile.resize(nt * bands);
      for (std::size_t b = 0; b < bands; ++b) {
        const T* sb = s + b * frames;
        const T* rb = r + b * frames;
        for (std::size_t t = 0; t < nt; ++t) tile[t * bands + b] = half_wave<T>(sb[t] - rb[t]);
      }
      for (std::size_t t = 0; t < nt; ++t) d[t] = rectified_median(tile.data() + t * bands, bands, positive);
    }
  });
}

template <typename T>
void max_filter_bands(const T* S, std::size_t channels, std::size_t bands, std::size_t frames,
                      std::size_t size, T* out) {
  require(size >= 1, "max_size must be a positive integer");
  // scipy's window for output i: inputs i - size/2 ... i - size/2 + size - 1, indices outside
  // [0, bands) reflected about the edges (d c b a | a b c d | d c b a).
  const auto nb = static_cast<std::ptrdiff_t>(bands);
  auto reflect = [nb](std::ptrdiff_t j) {
    const std::ptrdiff_t period = 2 * nb;
    j %= period;
    if (j < 0) j += period;
    return j < nb ? j : period - 1 - j;
  };
  const auto half = static_cast<std::ptrdiff_t>(size / 2);
  for (std::size_t c = 0; c < channels; ++c) {
    const T* s = S + c * bands * frames;
    T* o = out + c * bands * frames;
    for (std::ptrdiff_t b = 0; b < nb; ++b) {
      T* ob = o + static_cast<std::size_t>(b) * frames;
      const T* first = s + static_cast<std::size_t>(reflect(b - half)) * frames;
      std::copy(first, first + frames, ob);
      for (std::ptrdiff_t k = 1; k < static_cast<std::ptrdiff_t>(size); ++k) {
        const T* row = s + static_cast<std::size_t>(reflect(b - half + k)) * frames;
        for (std::size_t t = 0; t < frames; ++t) {
          // maximum_filter1d propagates NaN like np.maximum.
          const T v = row[t];
          if (v > ob[t] || std::isnan(v)) ob[t] = v;
        }
      }
    }
  }
}

template <typename T>
void detrend_rows(const T* x, std::size_t rows, std::size_t n, double* out) {
  // scipy's direct form II transposed with b = [1, -1], a = [1, -0.99].
  const double b0 = 1.0, b1 = -1.0, a1 = -0.99;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    double* yr = out + r * n;
    double z = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
      const double xn = static_cast<double>(xr[k]);
      const double yn = z + b0 * xn;
      const double bx = xn * b1;
      const double ay = yn * a1;
      z = bx - ay;
      yr[k] = yn;
    }
  }
}

// ---------------------------------------------------------------------------- peak picking

template <typename T>
void peak_pick(const T* x, std::size_t rows, std::size_t n, std::uint32_t pre_max,
               std::uint32_t post_max, std::uint32_t pre_avg, std::uint32_t post_avg, float delta,
               std::uint32_t wait, std::uint8_t* peaks) {
  require(post_max >= 1, "post_max must be positive");
  require(post_avg >= 1, "post_avg must be positive");
  // librosa's kernel adds the float32 delta to a mean of the array's type.
  const T d = static_cast<T>(delta);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    std::uint8_t* pr = peaks + r * n;
    std::fill(pr, pr + n, std::uint8_t{0});
    if (n == 0) continue;
    const std::size_t first_max_end = std::min<std::size_t>(post_max, n);
    const T first_max = *std::max_element(xr, xr + first_max_end);
    bool peak0 = xr[0] >= first_max;
    peak0 = peak0 && (xr[0] >= static_cast<T>(numba_mean(xr, 0, std::min<std::size_t>(post_avg, n)) + d));
    pr[0] = peak0 ? 1 : 0;
    std::size_t i = peak0 ? static_cast<std::size_t>(wait) + 1 : 1;
    while (i < n) {
      const std::size_t lo = i > pre_max ? i - pre_max : 0;
      const std::size_t hi = std::min<std::size_t>(i + post_max, n);
      const T maxn = *std::max_element(xr + lo, xr + hi);
      if (!(xr[i] == maxn)) {
        ++i;
        continue;
      }
      const std::size_t alo = i > pre_avg ? i - pre_avg : 0;
      const std::size_t ahi = std::min<std::size_t>(i + post_avg, n);
      const T avg = numba_mean(xr, alo, ahi);
      if (!(xr[i] >= static_cast<T>(avg + d))) {
        ++i;
        continue;
      }
      pr[i] = 1;
      i += static_cast<std::size_t>(wait) + 1;
    }
  }
}

// ---------------------------------------------------------------------- tempogram

template <typename T>
void autocorrelation_tempogram(const T* padded, std::size_t channels, std::size_t padded_len,
                               std::size_t n_frames, const double* window, std::size_t win,
                               bool normalize, double* out) {
  require(win >= 1, "win_length must be a positive integer");
  require(n_frames == 0 || n_frames + win - 1 <= padded_len,
          "onset envelope is too short for the tempogram frames");
  if (n_frames == 0 || channels == 0) return;
  std::size_t n_pad = 1;
  while (n_pad < 2 * win - 1) n_pad *= 2;
  const RealFft<double> fft(n_pad);
  const std::size_t lanes = fft.lanes();
  const std::size_t bins = fft.n_bins();
  const std::size_t blocks_per_channel = (n_frames + lanes - 1) / lanes;
  const double tiny = std::numeric_limits<double>::min();
  auto pool = default_pool();
  pool->parallel_for(
      channels * blocks_per_channel,
      [&](std::size_t b0, std::size_t b1) {
        std::vector<double> frame(n_pad * lanes), re(bins * lanes), im(bins * lanes);
        std::vector<double> scratch(fft.scratch_size());
        std::vector<double> norm(lanes);
        for (std::size_t blk = b0; blk < b1; ++blk) {
          const std::size_t c = blk / blocks_per_channel;
          const std::size_t t0 = (blk % blocks_per_channel) * lanes;
          const std::size_t used = std::min(lanes, n_frames - t0);
          const T* e = padded + c * padded_len + t0;
          // Windowed frames, one per lane, zero-padded to n_pad.
          std::fill(frame.begin(), frame.end(), 0.0);
          for (std::size_t k = 0; k < win; ++k) {
            double* row = frame.data() + k * lanes;
            for (std::size_t l = 0; l < used; ++l) row[l] = static_cast<double>(e[k + l]) * window[k];
          }
          fft.forward(frame.data(), re.data(), im.data(), scratch.data());
          // |X|^2 is real and even: its forward transform is n_pad times the inverse one.
          for (std::size_t j = 0; j < bins; ++j) {
            double* row = frame.data() + j * lanes;
            const double* rr = re.data() + j * lanes;
            const double* ii = im.data() + j * lanes;
            for (std::size_t l = 0; l < lanes; ++l) row[l] = rr[l] * rr[l] + ii[l] * ii[l];
          }
          for (std::size_t j = bins; j < n_pad; ++j)
            std::copy_n(frame.data() + (n_pad - j) * lanes, lanes, frame.data() + j * lanes);
          fft.forward(frame.data(), re.data(), im.data(), scratch.data());
          const double scale = 1.0 / static_cast<double>(n_pad);
          std::fill(norm.begin(), norm.end(), 0.0);
          for (std::size_t lag = 0; lag < win; ++lag) {
            double* row = re.data() + lag * lanes;
            for (std::size_t l = 0; l < lanes; ++l) {
              row[l] *= scale;
              norm[l] = std::max(norm[l], std::abs(row[l]));
            }
          }
          for (std::size_t l = 0; l < lanes; ++l)
            if (norm[l] < tiny || !normalize) norm[l] = 1.0;
          double* o = out + c * win * n_frames + t0;
          for (std::size_t lag = 0; lag < win; ++lag) {
            const double* row = re.data() + lag * lanes;
            double* ol = o + lag * n_frames;
            for (std::size_t l = 0; l < used; ++l) ol[l] = row[l] / norm[l];
          }
        }
      },
      4);
}

template <typename T>
void autocorrelation_tempogram_mean(const T* padded, std::size_t channels, std::size_t padded_len,
                                    std::size_t n_frames, const double* window, std::size_t win,
                                    double* out) {
  require(win >= 1, "win_length must be a positive integer");
  require(n_frames == 0 || n_frames + win - 1 <= padded_len,
          "onset envelope is too short for the tempogram frames");
  if (channels == 0) return;
  if (n_frames == 0) {
    std::fill(out, out + channels * win, std::numeric_limits<double>::quiet_NaN());
    return;
  }
  std::size_t n_pad = 1;
  while (n_pad < 2 * win - 1) n_pad *= 2;
  const RealFft<double> fft(n_pad);
  const std::size_t lanes = fft.lanes();
  const std::size_t bins = fft.n_bins();
  const std::size_t blocks = (n_frames + lanes - 1) / lanes;
  // A fixed split of each channel's blocks, so the summation order never depends on threads.
  const std::size_t chunks = std::min<std::size_t>(blocks, 16);
  const std::size_t per_chunk = (blocks + chunks - 1) / chunks;
  std::vector<double> partial(channels * chunks * bins, 0.0);
  const double tiny = std::numeric_limits<double>::min();
  auto pool = default_pool();
  pool->parallel_for(channels * chunks, [&](std::size_t j0, std::size_t j1) {
    std::vector<double> frame(n_pad * lanes), re(bins * lanes), im(bins * lanes);
    std::vector<double> scratch(fft.scratch_size()), acc(bins * lanes), energy(lanes);
    for (std::size_t job = j0; job < j1; ++job) {
      const std::size_t c = job / chunks;
      const std::size_t b_begin = (job % chunks) * per_chunk;
      const std::size_t b_end = std::min(blocks, b_begin + per_chunk);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (std::size_t blk = b_begin; blk < b_end; ++blk) {
        const std::size_t t0 = blk * lanes;
        const std::size_t used = std::min(lanes, n_frames - t0);
        const T* e = padded + c * padded_len + t0;
        std::fill(frame.begin(), frame.end(), 0.0);
        std::fill(energy.begin(), energy.end(), 0.0);
        for (std::size_t k = 0; k < win; ++k) {
          double* row = frame.data() + k * lanes;
          for (std::size_t l = 0; l < used; ++l) {
            row[l] = static_cast<double>(e[k + l]) * window[k];
            energy[l] += row[l] * row[l];
          }
        }
        fft.forward(frame.data(), re.data(), im.data(), scratch.data());
        for (std::size_t l = 0; l < lanes; ++l) energy[l] = energy[l] < tiny ? 1.0 : energy[l];
        for (std::size_t j = 0; j < bins; ++j) {
          const double* rr = re.data() + j * lanes;
          const double* ii = im.data() + j * lanes;
          double* a = acc.data() + j * lanes;
          for (std::size_t l = 0; l < used; ++l) a[l] += (rr[l] * rr[l] + ii[l] * ii[l]) / energy[l];
        }
      }
      double* dst = partial.data() + job * bins;
      for (std::size_t j = 0; j < bins; ++j) {
        double sum = 0.0;
        for (std::size_t l = 0; l < lanes; ++l) sum += acc[j * lanes + l];
        dst[j] = sum;
      }
    }
  });
  // Per channel: the chunks summed in order, then one transform back (real and even, so the
  // forward transform gives n_pad times the inverse).
  std::vector<double> frame(n_pad * lanes, 0.0), re(bins * lanes), im(bins * lanes);
  std::vector<double> scratch(fft.scratch_size());
  for (std::size_t c = 0; c < channels; ++c) {
    std::fill(frame.begin(), frame.end(), 0.0);
    for (std::size_t j = 0; j < bins; ++j) {
      double sum = 0.0;
      for (std::size_t q = 0; q < chunks; ++q) sum += partial[(c * chunks + q) * bins + j];
      frame[j * lanes] = sum;
    }
    for (std::size_t j = bins; j < n_pad; ++j) frame[j * lanes] = frame[(n_pad - j) * lanes];
    fft.forward(frame.data(), re.data(), im.data(), scratch.data());
    const double scale = static_cast<double>(n_pad) * static_cast<double>(n_frames);
    for (std::size_t lag = 0; lag < win; ++lag) out[c * win + lag] = re[lag * lanes] / scale;
  }
}

// ---------------------------------------------------------------------------- beat tracking

namespace {

// librosa.beat.__beat_local_score: a same-mode convolution with a Gaussian of +-fpb frames.
// In the float32 kernel the accumulator is the float32 output element, so every step rounds.
template <typename T>
void beat_local_score(const T* onsets, std::size_t n, const T* fpb, std::size_t n_fpb,
                      T* localscore) {
  const auto N = static_cast<std::ptrdiff_t>(n);
  std::vector<double> window;
  double cached_fpb = std::numeric_limits<double>::quiet_NaN();
  for (std::ptrdiff_t i = 0; i < N; ++i) {
    const double f = static_cast<double>(fpb[n_fpb == 1 ? 0 : static_cast<std::size_t>(i)]);
    if (!(f == cached_fpb)) {
      // np.arange(-f, f + 1) * 32.0 / f, squared, times -0.5, exponentiated.
      const auto K = static_cast<std::size_t>(2.0 * f + 1.0);
      window.resize(K);
      for (std::size_t k = 0; k < K; ++k) {
        const double a = -f + static_cast<double>(k);
        const double u = a * 32.0 / f;
        window[k] = std::exp(-0.5 * (u * u));
      }
      cached_fpb = f;
    }
    const auto K = static_cast<std::ptrdiff_t>(window.size());
    const std::ptrdiff_t half = K / 2;
    T acc = T(0);
    const std::ptrdiff_t k0 = std::max<std::ptrdiff_t>(0, i + half - N + 1);
    const std::ptrdiff_t k1 = std::min<std::ptrdiff_t>(i + half, K);
    for (std::ptrdiff_t k = k0; k < k1; ++k)
      acc = static_cast<T>(static_cast<double>(acc) +
                           window[static_cast<std::size_t>(k)] *
                               static_cast<double>(onsets[i + half - k]));
    localscore[i] = acc;
  }
}

// librosa.beat.__beat_track_dp. tightness is a float32 there; log(fpb) is taken in T and
// log(i - loc) in double; scores are double, stored back into T.
template <typename T>
void beat_track_dp(const T* localscore, std::size_t n, const T* fpb, std::size_t n_fpb,
                   float tightness, std::int64_t* backlink, T* cumscore) {
  T max_score = localscore[0];
  for (std::size_t i = 1; i < n; ++i) max_score = std::max(max_score, localscore[i]);
  const double score_thresh = 0.01 * static_cast<double>(max_score);
  const double tight = static_cast<double>(tightness);
  bool first_beat = true;
  // Static tempo: the transition penalty depends on i - loc only.
  std::vector<double> penalty;
  double cached_fpb = std::numeric_limits<double>::quiet_NaN();
  for (std::size_t i = 0; i < n; ++i) {
    const T f = fpb[n_fpb == 1 ? 0 : i];
    const auto fd = static_cast<double>(f);
    const auto start = static_cast<std::ptrdiff_t>(i) -
                       static_cast<std::ptrdiff_t>(round_half_even(fd / 2.0));
    const auto stop = static_cast<std::ptrdiff_t>(i) - static_cast<std::ptrdiff_t>(2.0 * fd) - 1;
    if (!(fd == cached_fpb)) {
      const auto max_d = static_cast<std::size_t>(2.0 * fd) + 1;
      penalty.assign(max_d + 1, 0.0);
      const double log_f = static_cast<double>(std::log(f));
      for (std::size_t dd = 1; dd <= max_d; ++dd) {
        const double r = std::log(static_cast<double>(dd)) - log_f;
        penalty[dd] = tight * (r * r);
      }
      cached_fpb = fd;
    }
    double best = -std::numeric_limits<double>::infinity();
    std::ptrdiff_t best_loc = -1;
    for (std::ptrdiff_t loc = start; loc > stop; --loc) {
      if (loc < 0) break;
      const auto dd = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(i) - loc);
      // loc > stop keeps dd <= 2 fpb, inside the table.
      const double pen = penalty[dd];
      const double score = static_cast<double>(cumscore[loc]) - pen;
      if (score > best) {
        best = score;
        best_loc = loc;
      }
    }
    const T score_i = localscore[i];
    cumscore[i] = best_loc >= 0 ? static_cast<T>(static_cast<double>(score_i) + best) : score_i;
    if (first_beat && static_cast<double>(score_i) < score_thresh) {
      backlink[i] = -1;
    } else {
      backlink[i] = best_loc;
      first_beat = false;
    }
  }
}

// librosa.beat.__last_beat: the last local maximum of cumscore reaching half the median of
// all local maxima (numpy's masked median in T).
template <typename T>
std::size_t last_beat(const T* cumscore, std::size_t n) {
  std::vector<std::uint8_t> is_max(n, 0);
  // numba's stencil leaves the first element out; librosa sets the last by hand.
  for (std::size_t i = 1; i + 1 < n; ++i)
    is_max[i] = (cumscore[i] > cumscore[i - 1]) && (cumscore[i] >= cumscore[i + 1]);
  if (n >= 2) is_max[n - 1] = cumscore[n - 1] > cumscore[n - 2];
  std::vector<T> values;
  for (std::size_t i = 0; i < n; ++i)
    if (is_max[i]) values.push_back(cumscore[i]);
  T threshold = T(0);
  if (!values.empty()) {
    std::sort(values.begin(), values.end());
    const std::size_t count = values.size();
    const std::size_t idx = count / 2;
    T med;
    if (count % 2 == 1) {
      med = values[idx];
    } else {
      const T sum = static_cast<T>(values[idx - 1] + values[idx]);
      med = static_cast<T>(static_cast<double>(sum) / 2.0);
    }
    threshold = static_cast<T>(0.5 * static_cast<double>(med));
  }
  for (std::size_t k = n; k-- > 0;)
    if (is_max[k] && cumscore[k] >= threshold) return k;
  return n - 1;
}

// librosa.beat.__trim_beats: clear beats from both ends while the local score stays at or
// below half the RMS of the beats' smoothed local score (0 without trim).
template <typename T>
void trim_beats(const T* localscore, std::size_t n, bool trim, std::uint8_t* beats) {
  double threshold = 0.0;
  if (trim) {
    std::vector<double> at_beats;
    for (std::size_t i = 0; i < n; ++i)
      if (beats[i]) at_beats.push_back(static_cast<double>(localscore[i]));
    // np.convolve(localscore[beats], hanning(5)) sliced to len(localscore): "same"-like.
    const double w[5] = {0.0, 0.5, 1.0, 0.5, 0.0};
    const std::size_t m = at_beats.size();
    double sumsq = 0.0;
    std::size_t count = 0;
    if (m > 0) {
      const std::size_t full = m + 4;
      const std::size_t end = std::min(full, n + 2);
      for (std::size_t j = 2; j < end; ++j) {
        double acc = 0.0;
        for (std::size_t k = 0; k < 5; ++k) {
          if (j < k || j - k >= m) continue;
          acc = acc + at_beats[j - k] * w[k];
        }
        sumsq = sumsq + acc * acc;
        ++count;
      }
    }
    const double mean = count > 0 ? sumsq / static_cast<double>(count)
                                  : std::numeric_limits<double>::quiet_NaN();
    threshold = 0.5 * std::pow(mean, 0.5);
  }
  std::size_t k = 0;
  while (k < n && static_cast<double>(localscore[k]) <= threshold) beats[k++] = 0;
  k = n;
  while (k > 0 && static_cast<double>(localscore[k - 1]) <= threshold) beats[--k] = 0;
}

}  // namespace

template <typename T>
void beat_track_row(const T* onsets, std::size_t n, const T* frames_per_beat, std::size_t n_fpb,
                    float tightness, bool trim, std::uint8_t* beats) {
  require(n_fpb == 1 || n_fpb == n, "frames_per_beat must have 1 or n values");
  std::fill(beats, beats + n, std::uint8_t{0});
  if (n == 0) return;
  for (std::size_t i = 0; i < n_fpb; ++i)
    // Below 2 frames per beat a frame would be its own predecessor (librosa never returns).
    require(frames_per_beat[i] >= T(2) && std::isfinite(frames_per_beat[i]),
            "the tempo is too fast for this frame rate: fewer than 2 frames per beat");
  std::vector<T> localscore(n), cumscore(n);
  std::vector<std::int64_t> backlink(n);
  beat_local_score(onsets, n, frames_per_beat, n_fpb, localscore.data());
  beat_track_dp(localscore.data(), n, frames_per_beat, n_fpb, tightness, backlink.data(),
                cumscore.data());
  auto k = static_cast<std::int64_t>(last_beat(cumscore.data(), n));
  while (k >= 0) {
    beats[k] = 1;
    const std::int64_t prev = backlink[static_cast<std::size_t>(k)];
    if (prev >= k) break;  // cannot happen with >= 2 frames per beat; never loop
    k = prev;
  }
  trim_beats(localscore.data(), n, trim, beats);
}

#define MLU_RHYTHM_INSTANTIATE(T)                                                             \
  template void onset_flux<T>(const T*, const T*, std::size_t, std::size_t, std::size_t,      \
                              std::size_t, OnsetAggregate, std::size_t, T*, std::size_t);     \
  template void max_filter_bands<T>(const T*, std::size_t, std::size_t, std::size_t,          \
                                    std::size_t, T*);                                         \
  template void detrend_rows<T>(const T*, std::size_t, std::size_t, double*);                 \
  template void peak_pick<T>(const T*, std::size_t, std::size_t, std::uint32_t,               \
                             std::uint32_t, std::uint32_t, std::uint32_t, float,              \
                             std::uint32_t, std::uint8_t*);                                   \
  template void autocorrelation_tempogram<T>(const T*, std::size_t, std::size_t, std::size_t, \
                                             const double*, std::size_t, bool, double*);      \
  template void autocorrelation_tempogram_mean<T>(const T*, std::size_t, std::size_t,          \
                                                  std::size_t, const double*, std::size_t,    \
                                                  double*);                                   \
  template void beat_track_row<T>(const T*, std::size_t, const T*, std::size_t, float, bool,  \
                                  std::uint8_t*);

MLU_RHYTHM_INSTANTIATE(float)
MLU_RHYTHM_INSTANTIATE(double)

#undef MLU_RHYTHM_INSTANTIATE

}  // namespace mlu
