// Captured steps: record a step's kernel launches once, replay them from C++ (bprop/capture.h).
#include "bindings.h"
#include "new_instance.h"

namespace bprop::python {

void init_capture(py::module_& m) {
  py::class_<Capture> capture(m, "_Capture", "A recorded step and its replay (bprop/capture.h)");
  capture.def(py::init<>())
      .def("record",
           [](Capture& capture, const py::function& step) { capture.record([&] { step(); }); })
      .def("replay", &Capture::replay, py::call_guard<py::gil_scoped_release>())
      .def("grads_as_recorded", &Capture::grads_as_recorded)
      .def_property_readonly("launches", &Capture::launches)
      .def_property_readonly("buffer_bytes", &Capture::buffer_bytes)
      .def("describe", &Capture::describe)
      .def(
          "profile",
          [](const Capture& capture, int replays) {
            std::vector<std::tuple<std::string, size_t, double>> rows;
            for (const auto& row : capture.profile(replays))
              rows.emplace_back(row.name, row.count, row.seconds);
            return rows;
          },
          py::arg("replays"), py::call_guard<py::gil_scoped_release>())
      .def(
          "profile_launches",
          [](const Capture& capture, int replays) {
            std::vector<std::tuple<std::string, double>> rows;
            for (const auto& row : capture.profile_launches(replays))
              rows.emplace_back(row.line, row.seconds);
            return rows;
          },
          py::arg("replays"), py::call_guard<py::gil_scoped_release>());
  new_constructs(capture);  // after py::init: see Note [objects made without __init__]
  m.def("_assign", &assign_, py::arg("dst"), py::arg("src"),
        "dst's values := src's, outside autograd (same shape)");
}

}  // namespace bprop::python
