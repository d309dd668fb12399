// Runtime settings: threads and the instruction-set path.
#include "bindings.h"
#include "kernels/isa.h"

namespace bprop::python {

void init_runtime(py::module_& m) {
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Threads the kernels may use, the calling one included");
  m.def("get_num_threads", &get_num_threads);
  py::class_<Capture>(m, "_Capture", "A recorded step and its replay (bprop/capture.h)")
      .def(py::init<>())
      .def("record",
           [](Capture& capture, const py::function& step) { capture.record([&] { step(); }); })
      .def("replay", &Capture::replay, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("launches", &Capture::launches);
  m.def(
      "_run_epoch",
      [](const Capture& capture, const Tensor& input_buffer, const Tensor& target_buffer,
         const Tensor& inputs, const Tensor& targets, const Tensor& order, int64_t batch_size,
         const Tensor& loss, const std::optional<Tensor>& output,
         const std::optional<py::function>& on_batch) {
        std::function<bool(int64_t, double)> callback;
        if (on_batch)
          callback = [&](int64_t done, double running) {
            py::gil_scoped_acquire gil;  // Ctrl-C and progress bars need Python, briefly
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            return (*on_batch)(done, running).cast<bool>();
          };
        EpochResult r;
        {
          py::gil_scoped_release release;
          r = run_epoch(capture, input_buffer, target_buffer, inputs, targets, order, batch_size,
                        loss, output ? *output : Tensor(), callback);
        }
        return py::make_tuple(r.mean_loss, r.correct, r.rows, r.stopped);
      },
      py::arg("capture"), py::arg("input_buffer"), py::arg("target_buffer"), py::arg("inputs"),
      py::arg("targets"), py::arg("order"), py::arg("batch_size"), py::arg("loss"),
      py::arg("output"), py::arg("on_batch"));
  m.def("_assign", &assign_, py::arg("dst"), py::arg("src"),
        "dst's values := src's, outside autograd (same shape)");
  m.def(
      "_isa", [] { return kernels::isa_name(kernels::active_isa()); },
      "The instruction-set path the kernels run on: avx512, avx2 or scalar");
}

}  // namespace bprop::python
