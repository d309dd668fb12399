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
  m.def("_assign", &assign_, py::arg("dst"), py::arg("src"),
        "dst's values := src's, outside autograd (same shape)");
  m.def(
      "_isa", [] { return kernels::isa_name(kernels::active_isa()); },
      "The instruction-set path the kernels run on: avx512, avx2 or scalar");
}

}  // namespace bprop::python
