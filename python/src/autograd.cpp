// Grad mode and bprop.grad.
#include <pybind11/functional.h>

#include "bindings.h"
#include "new_instance.h"

namespace bprop::python {

void init_autograd(py::module_& m) {
  m.def("is_grad_enabled", &is_grad_enabled,
        "Whether ops record the graph on this thread (no_grad turns it off)");
  export_name(m, "is_grad_enabled");
  m.def("set_grad_enabled", &set_grad_enabled, py::arg("mode"),
        "Turns graph recording on or off for this thread");
  m.def("is_anomaly_enabled", &is_anomaly_enabled,
        "Whether detect_anomaly() is on (backward then checks for NaN and names the op)");
  m.def("_set_anomaly_enabled", &set_anomaly_enabled, py::arg("mode"));
  m.def("_set_forward_trace_provider", [](py::function provider) {
    // Kept for the life of the process: a py::function destroyed after the interpreter
    // finalises (a C++ static) would crash at exit.
    PyObject* raw = provider.release().ptr();
    set_forward_trace_provider([raw]() {
      py::gil_scoped_acquire gil;
      return py::reinterpret_borrow<py::function>(raw)().cast<std::string>();
    });
  });
  // The hook is a Python function; pybind11's wrapper takes the GIL to call, copy or drop it.
  m.def("_register_post_accumulate_grad_hook", &register_post_accumulate_grad_hook, py::arg("leaf"),
        py::arg("hook"));
  m.def("_remove_post_accumulate_grad_hook", &remove_post_accumulate_grad_hook, py::arg("leaf"),
        py::arg("handle"));
  py::class_<HookHandle> hook_handle(m, "_HookHandle", "A Tensor.register_hook registration");
  new_refuses(hook_handle, "Tensor.register_hook returns them");
  hook_handle.def("remove", &HookHandle::remove, "Takes the hook off; False if it already was")
      .def_property_readonly("id", &HookHandle::id);
  m.def(
      "_register_hook",
      [](const Tensor& tensor, py::function hook) {
        // Copying the C++ hook copies this shared_ptr, not the Python object; the last owner
        // drops the object with the GIL held (or not at all once Python has shut down).
        std::shared_ptr<py::object> callable(new py::object(std::move(hook)), [](py::object* o) {
          if (!Py_IsInitialized()) return;
          py::gil_scoped_acquire gil;
          delete o;
        });
        return register_hook(tensor, [callable](const Tensor& grad) -> Tensor {
          py::gil_scoped_acquire gil;
          py::object result = (*callable)(grad);
          if (result.is_none()) return Tensor();
          if (!py::isinstance<Tensor>(result))
            throw TypeError("[register_hook] expected the hook to return a Tensor or None, got '" +
                            py::str(py::type::of(result).attr("__name__")).cast<std::string>() +
                            "'");
          return result.cast<Tensor>();
        });
      },
      py::arg("tensor"), py::arg("hook"));
  m.def(
      "_custom_function",
      [](const std::string& name, const std::vector<Tensor>& inputs,
         const std::vector<Tensor>& outputs, const std::vector<Tensor>& saved,
         py::function backward) {
        // As in _register_hook: copies share the Python object, dropped with the GIL held.
        std::shared_ptr<py::object> callable(new py::object(std::move(backward)),
                                             [](py::object* o) {
                                               if (!Py_IsInitialized()) return;
                                               py::gil_scoped_acquire gil;
                                               delete o;
                                             });
        // A Python exception leaves as py::error_already_set, which backward() re-raises with
        // its original type.
        return custom_function(
            name, inputs, outputs, saved,
            [callable](const std::vector<Tensor>& grads, const std::vector<Tensor>& saved_tensors) {
              py::gil_scoped_acquire gil;
              py::object result = (*callable)(grads, saved_tensors);
              std::vector<Tensor> input_grads;
              for (py::handle item : result)
                input_grads.push_back(item.is_none() ? Tensor() : item.cast<Tensor>());
              return input_grads;
            });
      },
      py::arg("name"), py::arg("inputs"), py::arg("outputs"), py::arg("saved"),
      py::arg("backward"));
  m.def(
      "_grad",
      [](const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
         const std::vector<std::optional<Tensor>>& grad_outputs, bool retain_graph,
         bool create_graph, bool allow_unused) {
        std::vector<Tensor> seeds;
        for (const auto& g : grad_outputs) seeds.push_back(g ? *g : Tensor());
        std::vector<std::optional<Tensor>> result;
        for (Tensor& g : grad(outputs, inputs, seeds, retain_graph, create_graph, allow_unused))
          result.push_back(g.defined() ? std::optional<Tensor>(std::move(g)) : std::nullopt);
        return result;
      },
      py::arg("outputs"), py::arg("inputs"), py::arg("grad_outputs"), py::arg("retain_graph"),
      py::arg("create_graph"), py::arg("allow_unused"),
      py::call_guard<py::gil_scoped_release>());  // backward touches no Python object
}

}  // namespace bprop::python
