// Host emulation of the fused kernel's warp FFT (cuda/fft_2048.cuh), lane by lane, for
// tests/gpu/test_gpu_host.py: reads a frame and a window (2048 floats each) from stdin and
// prints the 1025 bins "re im" per line, exactly as the device code computes them.
#include <cmath>
#include <cstdio>
#include <vector>

#include "fft_2048.cuh"

using mlu::cuda::fft::Cf;
namespace f = mlu::cuda::fft;

int main() {
  std::vector<float> frame(f::kN), window(f::kN);
  for (auto& x : frame)
    if (std::scanf("%f", &x) != 1) return 2;
  for (auto& x : window)
    if (std::scanf("%f", &x) != 1) return 2;
  // the twiddle table the plan uploads: W_2048^j rounded from double
  std::vector<Cf> tw(f::kN);
  for (int j = 0; j < f::kN; ++j) {
    const double angle = -2.0 * 3.14159265358979323846 * j / f::kN;
    tw[j] = {static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle))};
  }
  std::vector<Cf> buf(f::kR * f::kPitch);
  Cf v[f::kR];
  for (int lane = 0; lane < f::kR; ++lane) {
    f::stage1(frame.data(), window.data(), tw.data(), lane, v);
    f::exchange_store(buf.data(), lane, v);
  }
  std::vector<Cf> rows(f::kR * f::kR);
  for (int lane = 0; lane < f::kR; ++lane) {
    f::exchange_load(buf.data(), lane, v);
    f::dft32(v);
    for (int k2 = 0; k2 < f::kR; ++k2) rows[lane * f::kR + k2] = v[k2];
  }
  // store_z writes into the same buffer as the exchange on the device (after a __syncwarp)
  for (int lane = 0; lane < f::kR; ++lane) f::store_z(buf.data(), lane, &rows[lane * f::kR]);
  for (int k = 0; k < f::kBins; ++k) {
    const Cf x = f::real_bin(buf.data(), tw.data(), k);
    std::printf("%.9g %.9g\n", x.re, x.im);
  }
  return 0;
}
