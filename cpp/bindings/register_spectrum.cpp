#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <complex>
#include <memory>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "mlu/filters.hpp"
#include "mlu/stft_plan.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace mlu::bindings {

namespace {

using Shape = std::vector<py::ssize_t>;

template <typename T>
py::ssize_t ss(T v) {
  return static_cast<py::ssize_t>(v);
}

// A mel (or any) filter bank kept as sparse rows for the plans.
template <typename T>
std::shared_ptr<SparseRows<T>> make_bank(py::array dense) {
  require(dense.ndim() == 2, "filter bank must be 2-D, got shape " + shape_str(dense));
  const T* d = checked_data<T>(dense, {dense.shape(0), dense.shape(1)}, "filter bank", false);
  const std::size_t rows = static_cast<std::size_t>(dense.shape(0));
  const std::size_t cols = static_cast<std::size_t>(dense.shape(1));
  std::vector<T> values(d, d + rows * cols);
  return std::make_shared<SparseRows<T>>(make_sparse_rows<T>(values, rows, cols));
}

template <typename T>
void bind_plan(py::module_& m, const char* plan_name, const char* bank_name) {
  using Plan = StftPlan<T>;
  using Bank = SparseRows<T>;
  py::class_<Bank, std::shared_ptr<Bank>>(m, bank_name)
      .def(py::init(&make_bank<T>), py::arg("dense"))
      .def_property_readonly("shape", [](const Bank& b) { return py::make_tuple(b.n_rows, b.n_cols); })
      .def_property_readonly("nnz", [](const Bank& b) { return b.weights.size(); });

  py::class_<Plan, std::shared_ptr<Plan>>(m, plan_name)
      .def(py::init([](std::size_t n_fft, std::size_t hop, const std::vector<double>& window) {
             return std::make_shared<Plan>(n_fft, hop, window);
           }),
           py::arg("n_fft"), py::arg("hop_length"), py::arg("window"))
      .def_property_readonly("n_fft", &Plan::n_fft)
      .def_property_readonly("hop_length", &Plan::hop)
      .def_property_readonly("n_bins", &Plan::n_bins)
      .def("n_frames", &Plan::n_frames, py::arg("n"), py::arg("center"))
      .def(
          "execute",
          [](const Plan& plan, py::array y, bool center, py::object head, py::object tail,
             py::object stft, py::object spectrum, double spectrum_power, py::object mel,
             std::shared_ptr<Bank> bank, double mel_power) {
            require(y.ndim() == 2, "signal must be (channels, n), got shape " + shape_str(y));
            typename Plan::Signal sig;
            sig.channels = static_cast<std::size_t>(y.shape(0));
            sig.n = static_cast<std::size_t>(y.shape(1));
            sig.center = center;
            sig.y = checked_data<T>(y, {y.shape(0), y.shape(1)}, "y", false);
            const std::size_t frames = plan.n_frames(sig.n, center);
            const Shape pad_shape{ss(sig.channels), ss(plan.pad())};
            py::array head_a, tail_a;
            if (!head.is_none()) {
              head_a = head.cast<py::array>();
              sig.head = checked_data<T>(head_a, pad_shape, "head padding", false);
            }
            if (!tail.is_none()) {
              tail_a = tail.cast<py::array>();
              sig.tail = checked_data<T>(tail_a, pad_shape, "tail padding", false);
            }
            typename Plan::Outputs out;
            const Shape spec_shape{ss(sig.channels), ss(plan.n_bins()), ss(frames)};
            py::array stft_a, spec_a, mel_a;
            if (!stft.is_none()) {
              stft_a = stft.cast<py::array>();
              out.stft = checked_data<std::complex<T>>(stft_a, spec_shape, "stft output", true);
            }
            if (!spectrum.is_none()) {
              spec_a = spectrum.cast<py::array>();
              out.spectrum = checked_data<T>(spec_a, spec_shape, "spectrum output", true);
              out.spectrum_power = spectrum_power;
            }
            if (!mel.is_none()) {
              require(bank != nullptr, "mel output requested without a filter bank");
              mel_a = mel.cast<py::array>();
              out.mel = checked_data<T>(mel_a, {ss(sig.channels), ss(bank->n_rows), ss(frames)},
                                        "mel output", true);
              out.mel_bank = bank.get();
              out.mel_power = mel_power;
            }
            py::gil_scoped_release release;
            plan.execute(sig, out);
          },
          py::arg("y"), py::arg("center"), py::arg("head") = py::none(),
          py::arg("tail") = py::none(), py::arg("stft") = py::none(),
          py::arg("spectrum") = py::none(), py::arg("spectrum_power") = 2.0,
          py::arg("mel") = py::none(), py::arg("mel_bank") = nullptr, py::arg("mel_power") = 2.0,
          "Run the plan on (channels, n) samples, filling each output given (None: skipped).");
}

template <typename T>
void power_to_db(py::array x, double amin, double ref_db, double top_db) {
  Shape shape(x.shape(), x.shape() + x.ndim());
  T* d = checked_data<T>(x, shape, "S", true);
  const std::size_t count = static_cast<std::size_t>(x.size());
  py::gil_scoped_release release;
  power_to_db_inplace<T>(d, count, amin, ref_db, top_db);
}

template <typename T>
void dct_apply(py::array in, py::array out, const std::vector<double>& matrix, std::size_t n_out,
               double lifter) {
  require(in.ndim() == 3, "DCT input must be (channels, n, frames), got " + shape_str(in));
  const T* src = checked_data<T>(in, {in.shape(0), in.shape(1), in.shape(2)}, "DCT input", false);
  T* dst = checked_data<T>(out, {in.shape(0), ss(n_out), in.shape(2)}, "DCT output", true);
  const auto c = static_cast<std::size_t>(in.shape(0));
  const auto n_in = static_cast<std::size_t>(in.shape(1));
  const auto frames = static_cast<std::size_t>(in.shape(2));
  py::gil_scoped_release release;
  apply_dct<T>(src, dst, c, n_in, frames, matrix, n_out, lifter);
}

}  // namespace

void register_spectrum(py::module_& m) {
  bind_plan<float>(m, "StftPlanF32", "FilterBankF32");
  bind_plan<double>(m, "StftPlanF64", "FilterBankF64");
  m.def(
      "power_to_db_inplace",
      [](py::array x, double amin, double ref_db, double top_db) {
        if (py::dtype::of<float>().is(x.dtype())) return power_to_db<float>(x, amin, ref_db, top_db);
        return power_to_db<double>(x, amin, ref_db, top_db);
      },
      py::arg("S"), py::arg("amin"), py::arg("ref_db"), py::arg("top_db"),
      "In place: 10 log10(max(amin, S)) - ref_db, floored at max - top_db when top_db >= 0.");
  m.def(
      "apply_dct",
      [](py::array in, py::array out, const std::vector<double>& matrix, std::size_t n_out,
         double lifter) {
        if (py::dtype::of<float>().is(in.dtype())) return dct_apply<float>(in, out, matrix, n_out, lifter);
        return dct_apply<double>(in, out, matrix, n_out, lifter);
      },
      py::arg("x"), py::arg("out"), py::arg("matrix"), py::arg("n_out"), py::arg("lifter") = 0.0,
      "out[c, i, t] = sum_j matrix[i, j] x[c, j, t], with optional MFCC liftering.");
}

}  // namespace mlu::bindings
