#include "mlu/stft_plan.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "mlu/error.hpp"
#include "mlu/thread_pool.hpp"

namespace mlu {

template <typename T>
StftPlan<T>::StftPlan(std::size_t n_fft, std::size_t hop, const std::vector<double>& window)
    : n_fft_(n_fft), hop_(hop) {
  require(n_fft >= 1, "n_fft=" + std::to_string(n_fft) + " must be a positive integer");
  require(hop >= 1, "hop_length=" + std::to_string(hop) + " must be a positive integer");
  require(window.size() == n_fft, "window has " + std::to_string(window.size()) +
                                      " values, expected n_fft=" + std::to_string(n_fft));
  window_.assign(window.begin(), window.end());
  fft_ = std::make_unique<RealFft<T>>(n_fft);
}

template <typename T>
std::size_t StftPlan<T>::n_frames(std::size_t n, bool center) const {
  const std::size_t padded = center ? n + 2 * pad() : n;
  require(padded >= n_fft_, "n_fft=" + std::to_string(n_fft_) +
                                " is too large for uncentered analysis of input signal of length=" +
                                std::to_string(n));
  return 1 + (padded - n_fft_) / hop_;
}

namespace {

// Thread-local work buffers for one block of lanes frames.
template <typename T>
struct Workspace {
  std::vector<T> in, re, im, scratch, frames, zeros, power;
  std::vector<const T*> lanes;
  Workspace(std::size_t n_fft, std::size_t bins, std::size_t n_lanes, std::size_t scratch_size)
      : in(n_fft * n_lanes), re(bins * n_lanes), im(bins * n_lanes), scratch(scratch_size),
        frames(n_fft * n_lanes), zeros(n_fft), power(bins * n_lanes), lanes(n_lanes) {}
};

// |X|^p from real and imaginary parts, with the exact cheap forms for p = 1 and p = 2.
template <typename T>
void magnitude_power(const T* re, const T* im, T* out, std::size_t count, double p) {
  if (p == 2.0) {
    for (std::size_t i = 0; i < count; ++i) out[i] = re[i] * re[i] + im[i] * im[i];
  } else if (p == 1.0) {
    for (std::size_t i = 0; i < count; ++i) out[i] = std::sqrt(re[i] * re[i] + im[i] * im[i]);
  } else {
    const T tp = static_cast<T>(p);
    for (std::size_t i = 0; i < count; ++i) {
      out[i] = std::pow(std::sqrt(re[i] * re[i] + im[i] * im[i]), tp);
    }
  }
}

// Sparse mel rows over lane-interleaved power: acc[l] = sum_k w_k P[(start + k) * L + l].
template <typename T, std::size_t L>
void apply_mel_rows(const SparseRows<T>& bank, const T* power, T* out, std::size_t frames,
                    std::size_t valid) {
  for (std::size_t r = 0; r < bank.n_rows; ++r) {
    T acc[L] = {};
    const std::size_t begin = bank.offset[r], end = bank.offset[r + 1];
    const T* p = power + bank.start[r] * L;
    for (std::size_t i = begin; i < end; ++i, p += L) {
      const T w = bank.weights[i];
      for (std::size_t l = 0; l < L; ++l) acc[l] += w * p[l];
    }
    T* o = out + r * frames;
    for (std::size_t l = 0; l < valid; ++l) o[l] = acc[l];
  }
}

template <typename T>
void apply_mel(const SparseRows<T>& bank, const T* power, T* out, std::size_t frames,
               std::size_t lanes, std::size_t valid) {
  switch (lanes) {
    case 2:
      return apply_mel_rows<T, 2>(bank, power, out, frames, valid);
    case 4:
      return apply_mel_rows<T, 4>(bank, power, out, frames, valid);
    case 8:
      return apply_mel_rows<T, 8>(bank, power, out, frames, valid);
    case 16:
      return apply_mel_rows<T, 16>(bank, power, out, frames, valid);
    default:
      throw ParameterError("unsupported lane count " + std::to_string(lanes));
  }
}

}  // namespace

template <typename T>
void StftPlan<T>::execute(const Signal& sig, const Outputs& out) const {
  require(sig.y != nullptr || sig.n == 0, "signal data is missing");
  require(sig.channels >= 1, "signal has no channels");
  if (out.mel != nullptr) {
    require(out.mel_bank != nullptr, "mel output requested without a mel filter bank");
    require(out.mel_bank->n_cols == n_bins(),
            "mel filter bank has " + std::to_string(out.mel_bank->n_cols) +
                " frequency bins, the STFT has " + std::to_string(n_bins()));
  }
  const std::size_t frames = n_frames(sig.n, sig.center);
  const std::size_t bins = n_bins();
  const std::size_t L = fft_->lanes();
  const std::size_t blocks_per_channel = (frames + L - 1) / L;
  const std::size_t total = sig.channels * blocks_per_channel;
  const std::size_t n = sig.n, nfft = n_fft_, pad = sig.center ? this->pad() : 0;
  const bool need_power = out.spectrum != nullptr || out.mel != nullptr;
  const bool shared_power = out.spectrum != nullptr && out.mel != nullptr &&
                            out.spectrum_power == out.mel_power;

  auto pool = default_pool();
  pool->parallel_for(total, [&](std::size_t b0, std::size_t b1) {
    Workspace<T> ws(nfft, bins, L, fft_->scratch_size());
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t c = b / blocks_per_channel;
      const std::size_t t0 = (b % blocks_per_channel) * L;
      const std::size_t valid = std::min(L, frames - t0);
      const T* y = sig.y + c * n;
      // Point each lane at its frame (assembled from the padding where it reaches past an
      // end; zeros for lanes past the last frame), then window and interleave them at once.
      for (std::size_t l = 0; l < L; ++l) {
        if (l >= valid) {
          ws.lanes[l] = ws.zeros.data();
          continue;
        }
        const std::int64_t start =
            static_cast<std::int64_t>((t0 + l) * hop_) - static_cast<std::int64_t>(pad);
        if (start >= 0 && static_cast<std::size_t>(start) + nfft <= n) {
          ws.lanes[l] = y + start;
          continue;
        }
        T* frame = ws.frames.data() + l * nfft;
        for (std::size_t j = 0; j < nfft; ++j) {
          const std::int64_t s = start + static_cast<std::int64_t>(j);
          T v;
          if (s < 0) {
            v = sig.head ? sig.head[c * pad + static_cast<std::size_t>(static_cast<std::int64_t>(pad) + s)]
                         : T(0);
          } else if (static_cast<std::size_t>(s) >= n) {
            v = sig.tail ? sig.tail[c * pad + (static_cast<std::size_t>(s) - n)] : T(0);
          } else {
            v = y[s];
          }
          frame[j] = v;
        }
        ws.lanes[l] = frame;
      }
      fft_->gather(ws.lanes.data(), window_.data(), ws.in.data());
      fft_->forward(ws.in.data(), ws.re.data(), ws.im.data(), ws.scratch.data());

      if (out.stft != nullptr) {
        std::complex<T>* o = out.stft + c * bins * frames + t0;
        for (std::size_t k = 0; k < bins; ++k) {
          for (std::size_t l = 0; l < valid; ++l) {
            o[k * frames + l] = std::complex<T>(ws.re[k * L + l], ws.im[k * L + l]);
          }
        }
      }
      if (!need_power) continue;
      if (out.spectrum != nullptr) {
        magnitude_power(ws.re.data(), ws.im.data(), ws.power.data(), bins * L, out.spectrum_power);
        T* o = out.spectrum + c * bins * frames + t0;
        for (std::size_t k = 0; k < bins; ++k) {
          for (std::size_t l = 0; l < valid; ++l) o[k * frames + l] = ws.power[k * L + l];
        }
      }
      if (out.mel != nullptr) {
        if (!shared_power) {
          magnitude_power(ws.re.data(), ws.im.data(), ws.power.data(), bins * L, out.mel_power);
        }
        apply_mel(*out.mel_bank, ws.power.data(), out.mel + c * out.mel_bank->n_rows * frames + t0,
                  frames, L, valid);
      }
    }
  });
}

namespace {

#if defined(__GNUC__) && !defined(__clang__) && MLU_HAVE_X86
#define MLU_DB_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MLU_DB_CLONES
#endif

// 10 * log10(max(amin, x)) - ref for n float32 values, in place, eight at a time; returns the
// largest result. x = m * 2^e with m in [sqrt(1/2), sqrt(2)), and ln m = 2 atanh(s) with
// s = (m - 1) / (m + 1), |s| <= 0.172: the odd series to s^9 leaves a relative error under 1e-9,
// far below float32's rounding, so this matches a correctly rounded log10 to about one ulp.
// +inf stays +inf (a NaN never gets here: max(amin, NaN) is amin, as before).
MLU_DB_CLONES float db_block_f32(float* x, std::size_t n, float amin, float ref) {
  typedef float V __attribute__((vector_size(32)));
  typedef std::int32_t VI __attribute__((vector_size(32)));
  constexpr std::size_t L = 8;
  const float ln2_hi = 0.693145751953125f;          // ln 2 to 16 bits, exact times any e
  const float ln2_lo = 1.42860682030941723212e-6f;  // the rest
  const float db_per_ln = 4.342944819032518f;       // 10 / ln 10
  const float big = std::numeric_limits<float>::max();
  V best = V{} - std::numeric_limits<float>::infinity();
  std::size_t i = 0;
  for (; i + L <= n; i += L) {
    V v;
    std::memcpy(&v, x + i, sizeof v);
    v = v > amin ? v : V{} + amin;
    VI bits;
    std::memcpy(&bits, &v, sizeof bits);
    VI e = ((bits >> 23) & 0xff) - 127;
    VI mbits = (bits & 0x007fffff) | 0x3f800000;
    V m;
    std::memcpy(&m, &mbits, sizeof m);
    const auto high = m > 1.41421356f;
    m = high ? m * 0.5f : m;
    e = high ? e + 1 : e;
    const V s = (m - 1.0f) / (m + 1.0f);
    const V s2 = s * s;
    const V series = s * (2.0f + s2 * (0.6666666667f + s2 * (0.4f + s2 * (0.2857142857f +
                                                                          s2 * 0.2222222222f))));
    V ef;
    for (std::size_t l = 0; l < L; ++l) ef[l] = static_cast<float>(e[l]);
    const V ln = ef * ln2_hi + (series + ef * ln2_lo);
    V db = ln * db_per_ln - ref;
    db = v > big ? V{} + std::numeric_limits<float>::infinity() : db;
    std::memcpy(x + i, &db, sizeof db);
    best = db > best ? db : best;
  }
  float m = -std::numeric_limits<float>::infinity();
  for (std::size_t l = 0; l < L; ++l) m = std::max(m, best[l]);
  for (; i < n; ++i) {
    const float v = 10.0f * std::log10(std::max(amin, x[i])) - ref;
    x[i] = v;
    m = std::max(m, v);
  }
  return m;
}

template <typename T>
T db_block(T* x, std::size_t n, T amin, T ref) {
  if constexpr (std::is_same_v<T, float>) {
    return db_block_f32(x, n, amin, ref);
  } else {
    T m = -std::numeric_limits<T>::infinity();
    for (std::size_t i = 0; i < n; ++i) {
      const T v = T(10) * std::log10(std::max(amin, x[i])) - ref;
      x[i] = v;
      m = std::max(m, v);
    }
    return m;
  }
}

// out[i, f] = lift[i] * sum_j m[i, j] * in[j, f] for a tile of nf <= 256 frames, four output
// rows at a time so each input value loaded feeds four multiply-adds.
template <typename T>
[[gnu::always_inline]] inline void dct_tile_body(const T* src, std::size_t stride, T* dst,
                                                 std::size_t n_in, std::size_t n_out,
                                                 std::size_t nf, const T* m, const T* lift) {
  T acc[4][256];
  std::size_t i = 0;
  for (; i < n_out; i += 4) {
    const std::size_t rows = std::min<std::size_t>(4, n_out - i);
    for (std::size_t r = 0; r < 4; ++r) std::fill(acc[r], acc[r] + nf, T(0));
    const T* w0 = m + i * n_in;
    const T* w1 = m + std::min(i + 1, n_out - 1) * n_in;
    const T* w2 = m + std::min(i + 2, n_out - 1) * n_in;
    const T* w3 = m + std::min(i + 3, n_out - 1) * n_in;
    for (std::size_t j = 0; j < n_in; ++j) {
      const T a0 = w0[j], a1 = w1[j], a2 = w2[j], a3 = w3[j];
      const T* sr = src + j * stride;
      for (std::size_t f = 0; f < nf; ++f) {
        const T v = sr[f];
        acc[0][f] += a0 * v;
        acc[1][f] += a1 * v;
        acc[2][f] += a2 * v;
        acc[3][f] += a3 * v;
      }
    }
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t f = 0; f < nf; ++f) dst[(i + r) * stride + f] = acc[r][f] * lift[i + r];
    }
  }
}

MLU_DB_CLONES void dct_tile(const float* src, std::size_t stride, float* dst, std::size_t n_in,
                            std::size_t n_out, std::size_t nf, const float* m, const float* lift) {
  dct_tile_body(src, stride, dst, n_in, n_out, nf, m, lift);
}
MLU_DB_CLONES void dct_tile(const double* src, std::size_t stride, double* dst, std::size_t n_in,
                            std::size_t n_out, std::size_t nf, const double* m,
                            const double* lift) {
  dct_tile_body(src, stride, dst, n_in, n_out, nf, m, lift);
}

}  // namespace

template <typename T>
void power_to_db_inplace(T* x, std::size_t count, double amin, double ref_db, double top_db) {
  require(amin > 0, "amin must be strictly positive");
  auto pool = default_pool();
  const std::size_t chunk = 1 << 14;
  const std::size_t n_chunks = (count + chunk - 1) / chunk;
  std::vector<double> maxima(n_chunks, -std::numeric_limits<double>::infinity());
  const T tamin = static_cast<T>(amin);
  const T tref = static_cast<T>(ref_db);
  pool->parallel_for(n_chunks, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t end = std::min(count, (c + 1) * chunk);
      maxima[c] = static_cast<double>(db_block(x + c * chunk, end - c * chunk, tamin, tref));
    }
  });
  if (top_db < 0 || count == 0) return;
  const double mx = *std::max_element(maxima.begin(), maxima.end());
  const T floor = static_cast<T>(static_cast<T>(mx) - static_cast<T>(top_db));
  pool->parallel_for(n_chunks, [&](std::size_t c0, std::size_t c1) {
    const std::size_t end = std::min(count, c1 * chunk);
    for (std::size_t i = c0 * chunk; i < end; ++i) x[i] = std::max(x[i], floor);
  });
}

template <typename T>
void apply_dct(const T* in, T* out, std::size_t channels, std::size_t n_in, std::size_t frames,
               const std::vector<double>& matrix, std::size_t n_out, double lifter) {
  require(matrix.size() == n_out * n_in, "DCT matrix shape does not match its input");
  std::vector<T> m(matrix.begin(), matrix.end());
  std::vector<T> lift(n_out, T(1));
  if (lifter > 0) {
    const double pi = 3.14159265358979323846;
    for (std::size_t i = 0; i < n_out; ++i) {
      const T li = static_cast<T>(std::sin(pi * static_cast<double>(i + 1) / lifter));
      lift[i] = static_cast<T>(1 + static_cast<T>(lifter / 2) * li);
    }
  }
  // Work in column tiles so a tile of every input row stays in cache while the outputs sum.
  const std::size_t tile = 256;
  const std::size_t tiles_per_channel = (frames + tile - 1) / tile;
  auto pool = default_pool();
  pool->parallel_for(channels * tiles_per_channel, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t c = b / tiles_per_channel;
      const std::size_t f0 = (b % tiles_per_channel) * tile;
      const std::size_t nf = std::min(tile, frames - f0);
      dct_tile(in + c * n_in * frames + f0, frames, out + c * n_out * frames + f0, n_in, n_out,
               nf, m.data(), lift.data());
    }
  });
}

template class StftPlan<float>;
template class StftPlan<double>;
template void power_to_db_inplace<float>(float*, std::size_t, double, double, double);
template void power_to_db_inplace<double>(double*, std::size_t, double, double, double);
template void apply_dct<float>(const float*, float*, std::size_t, std::size_t, std::size_t,
                               const std::vector<double>&, std::size_t, double);
template void apply_dct<double>(const double*, double*, std::size_t, std::size_t, std::size_t,
                                const std::vector<double>&, std::size_t, double);

}  // namespace mlu
