// Optimizers implemented in C++.
#include "bindings.h"

namespace bprop::python {

void init_optim(py::module_& m) {
  py::class_<SGD>(m, "SGD", "Stochastic gradient descent: w := w - lr * dL/dw")
      .def(py::init([](std::vector<Tensor> params, double lr, double momentum, double dampening,
                       double weight_decay, bool nesterov) {
             return SGD(std::move(params),
                        SGDOptions{lr, momentum, dampening, weight_decay, nesterov});
           }),
           py::arg("params"), py::arg("lr"), py::arg("momentum") = 0.0, py::arg("dampening") = 0.0,
           py::arg("weight_decay") = 0.0, py::arg("nesterov") = false)
      .def("_momentum_buffer",
           [](const SGD& s, size_t i) -> py::object {
             const Tensor& b = s.momentum_buffer(i);
             return b.defined() ? py::cast(b) : py::none();
           })
      .def("step", &SGD::step)
      .def("zero_grad", &SGD::zero_grad, py::arg("set_to_none") = true)
      .def_property("lr", &SGD::lr, &SGD::set_lr)
      .def_property_readonly("params", &SGD::params);
}

}  // namespace bprop::python
