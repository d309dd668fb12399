// Checkpoint files: safetensors read and write (bprop/io.h); bprop/serialization.py wraps them.
#include "bindings.h"

namespace bprop::python {

void init_io(py::module_& m) {
  m.def("_save_safetensors", &save_safetensors, py::arg("path"), py::arg("tensors"),
        py::arg("metadata"), py::call_guard<py::gil_scoped_release>());
  m.def(
      "_load_safetensors",
      [](const std::string& path) {
        SafetensorsFile file = load_safetensors(path);
        return py::make_tuple(file.tensors, file.metadata);
      },
      py::arg("path"));
  m.def(
      "_parse_safetensors",
      [](const py::bytes& data) {
        SafetensorsFile file = parse_safetensors(std::string(data), "<bytes>");
        return py::make_tuple(file.tensors, file.metadata);
      },
      py::arg("data"));
}

}  // namespace bprop::python
