// _core.rhythm: onset strength, peak picking, the autocorrelation tempogram and the beat
// tracker. Arrays are checked here and the GIL released around the compute in cpp/src.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "mlu/error.hpp"
#include "mlu/rhythm.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace mlu::bindings {

namespace {

using Shape = std::vector<py::ssize_t>;

std::size_t to_size(py::ssize_t v) { return static_cast<std::size_t>(v); }

bool is_f32(const py::array& a) { return py::dtype::of<float>().is(a.dtype()); }

template <typename T>
void onset_flux_impl(py::array S, py::object ref, std::size_t lag, bool median, std::size_t pad,
                     py::array out) {
  require(S.ndim() == 3, "S must be (channels, bands, frames), got shape " + shape_str(S));
  const Shape shape{S.shape(0), S.shape(1), S.shape(2)};
  const T* s = checked_data<T>(S, shape, "S", false);
  const T* r = s;
  py::array ref_a;
  if (!ref.is_none()) {
    ref_a = ref.cast<py::array>();
    r = checked_data<T>(ref_a, shape, "ref", false);
  }
  require(out.ndim() == 2, "onset output must be (channels, frames), got " + shape_str(out));
  T* o = checked_data<T>(out, {S.shape(0), out.shape(1)}, "onset output", true);
  const auto agg = median ? OnsetAggregate::median : OnsetAggregate::mean;
  py::gil_scoped_release release;
  onset_flux<T>(s, r, to_size(shape[0]), to_size(shape[1]), to_size(shape[2]), lag, agg, pad, o,
                to_size(out.shape(1)));
}

template <typename T>
void max_filter_impl(py::array S, std::size_t size, py::array out) {
  require(S.ndim() == 3, "S must be (channels, bands, frames), got shape " + shape_str(S));
  const Shape shape{S.shape(0), S.shape(1), S.shape(2)};
  const T* s = checked_data<T>(S, shape, "S", false);
  T* o = checked_data<T>(out, shape, "max filter output", true);
  require(static_cast<const void*>(s) != static_cast<const void*>(o),
          "max filter output must not alias its input");
  py::gil_scoped_release release;
  max_filter_bands<T>(s, to_size(shape[0]), to_size(shape[1]), to_size(shape[2]), size, o);
}

template <typename T>
void detrend_impl(py::array x, py::array out) {
  require(x.ndim() == 2, "onset envelope must be (channels, frames), got " + shape_str(x));
  const Shape shape{x.shape(0), x.shape(1)};
  const T* xs = checked_data<T>(x, shape, "onset envelope", false);
  double* o = checked_data<double>(out, shape, "detrend output", true);
  py::gil_scoped_release release;
  detrend_rows<T>(xs, to_size(shape[0]), to_size(shape[1]), o);
}

template <typename T>
void peak_pick_impl(py::array x, std::uint32_t pre_max, std::uint32_t post_max,
                    std::uint32_t pre_avg, std::uint32_t post_avg, float delta,
                    std::uint32_t wait, py::array peaks) {
  require(x.ndim() == 2, "x must be (rows, n), got shape " + shape_str(x));
  const Shape shape{x.shape(0), x.shape(1)};
  const T* xs = checked_data<T>(x, shape, "x", false);
  std::uint8_t* p = checked_data<std::uint8_t>(peaks, shape, "peaks", true);
  py::gil_scoped_release release;
  peak_pick<T>(xs, to_size(shape[0]), to_size(shape[1]), pre_max, post_max, pre_avg, post_avg,
               delta, wait, p);
}

template <typename T>
void tempogram_impl(py::array padded, std::size_t n_frames, py::array window, bool normalize,
                    py::array out) {
  require(padded.ndim() == 2, "padded envelope must be (channels, n), got " + shape_str(padded));
  require(window.ndim() == 1, "window must be 1-D, got " + shape_str(window));
  const T* e = checked_data<T>(padded, {padded.shape(0), padded.shape(1)}, "onset envelope", false);
  const double* w = checked_data<double>(window, {window.shape(0)}, "window", false);
  double* o = checked_data<double>(
      out, {padded.shape(0), window.shape(0), static_cast<py::ssize_t>(n_frames)},
      "tempogram output", true);
  py::gil_scoped_release release;
  autocorrelation_tempogram<T>(e, to_size(padded.shape(0)), to_size(padded.shape(1)), n_frames, w,
                               to_size(window.shape(0)), normalize, o);
}

template <typename T>
void tempogram_mean_impl(py::array padded, std::size_t n_frames, py::array window, py::array out) {
  require(padded.ndim() == 2, "padded envelope must be (channels, n), got " + shape_str(padded));
  require(window.ndim() == 1, "window must be 1-D, got " + shape_str(window));
  const T* e = checked_data<T>(padded, {padded.shape(0), padded.shape(1)}, "onset envelope", false);
  const double* w = checked_data<double>(window, {window.shape(0)}, "window", false);
  double* o = checked_data<double>(out, {padded.shape(0), window.shape(0)}, "tempogram output", true);
  py::gil_scoped_release release;
  autocorrelation_tempogram_mean<T>(e, to_size(padded.shape(0)), to_size(padded.shape(1)),
                                    n_frames, w, to_size(window.shape(0)), o);
}

template <typename T>
void beat_track_impl(py::array onsets, py::array fpb, float tightness, bool trim,
                     py::array beats) {
  require(onsets.ndim() == 2, "onsets must be (channels, frames), got " + shape_str(onsets));
  require(fpb.ndim() == 2, "frames_per_beat must be (channels, k), got " + shape_str(fpb));
  const Shape shape{onsets.shape(0), onsets.shape(1)};
  const T* x = checked_data<T>(onsets, shape, "onsets", false);
  const T* f = checked_data<T>(fpb, {onsets.shape(0), fpb.shape(1)}, "frames_per_beat", false);
  std::uint8_t* b = checked_data<std::uint8_t>(beats, shape, "beats", true);
  const std::size_t rows = to_size(shape[0]), n = to_size(shape[1]), k = to_size(fpb.shape(1));
  py::gil_scoped_release release;
  for (std::size_t r = 0; r < rows; ++r)
    beat_track_row<T>(x + r * n, n, f + r * k, k, tightness, trim, b + r * n);
}

}  // namespace

void register_rhythm(py::module_& m) {
  m.def(
      "onset_flux",
      [](py::array S, py::object ref, std::size_t lag, bool median, std::size_t pad,
         py::array out) {
        if (is_f32(S)) return onset_flux_impl<float>(S, ref, lag, median, pad, out);
        return onset_flux_impl<double>(S, ref, lag, median, pad, out);
      },
      py::arg("S"), py::arg("ref"), py::arg("lag"), py::arg("median"), py::arg("pad"),
      py::arg("out"),
      "Rectified lag difference of S against ref (None: S), mean or median over bands, "
      "written after `pad` zeros into out (channels, frames).");
  m.def(
      "max_filter_bands",
      [](py::array S, std::size_t size, py::array out) {
        if (is_f32(S)) return max_filter_impl<float>(S, size, out);
        return max_filter_impl<double>(S, size, out);
      },
      py::arg("S"), py::arg("size"), py::arg("out"),
      "scipy.ndimage.maximum_filter1d(S, size, axis=-2) (reflect mode) into out.");
  m.def(
      "detrend",
      [](py::array x, py::array out) {
        if (is_f32(x)) return detrend_impl<float>(x, out);
        return detrend_impl<double>(x, out);
      },
      py::arg("x"), py::arg("out"), "lfilter([1, -1], [1, -0.99]) of each row, into float64 out.");
  m.def(
      "peak_pick",
      [](py::array x, std::uint32_t pre_max, std::uint32_t post_max, std::uint32_t pre_avg,
         std::uint32_t post_avg, float delta, std::uint32_t wait, py::array peaks) {
        if (is_f32(x))
          return peak_pick_impl<float>(x, pre_max, post_max, pre_avg, post_avg, delta, wait, peaks);
        return peak_pick_impl<double>(x, pre_max, post_max, pre_avg, post_avg, delta, wait, peaks);
      },
      py::arg("x"), py::arg("pre_max"), py::arg("post_max"), py::arg("pre_avg"),
      py::arg("post_avg"), py::arg("delta"), py::arg("wait"), py::arg("peaks"),
      "librosa.util.peak_pick on each row of x; peaks (uint8, same shape) set to 1 at peaks.");
  m.def(
      "tempogram",
      [](py::array padded, std::size_t n_frames, py::array window, bool normalize, py::array out) {
        if (is_f32(padded)) return tempogram_impl<float>(padded, n_frames, window, normalize, out);
        return tempogram_impl<double>(padded, n_frames, window, normalize, out);
      },
      py::arg("padded"), py::arg("n_frames"), py::arg("window"), py::arg("normalize"),
      py::arg("out"),
      "Autocorrelation tempogram of padded envelopes into out (channels, win, n); with "
      "normalize, each frame scaled by its largest magnitude (norm=inf).");
  m.def(
      "tempogram_mean",
      [](py::array padded, std::size_t n_frames, py::array window, py::array out) {
        if (is_f32(padded)) return tempogram_mean_impl<float>(padded, n_frames, window, out);
        return tempogram_mean_impl<double>(padded, n_frames, window, out);
      },
      py::arg("padded"), py::arg("n_frames"), py::arg("window"), py::arg("out"),
      "Time average of the normalised autocorrelation tempogram into out (channels, win).");
  m.def(
      "beat_track",
      [](py::array onsets, py::array fpb, float tightness, bool trim, py::array beats) {
        if (is_f32(onsets)) return beat_track_impl<float>(onsets, fpb, tightness, trim, beats);
        return beat_track_impl<double>(onsets, fpb, tightness, trim, beats);
      },
      py::arg("onsets"), py::arg("frames_per_beat"), py::arg("tightness"), py::arg("trim"),
      py::arg("beats"),
      "Ellis' dynamic-programming beat tracker on normalised onset envelopes (channels, n).");
}

}  // namespace mlu::bindings
