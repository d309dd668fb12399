// Optimizers implemented in C++.
#include "bindings.h"

namespace bprop::python {

void init_optim(py::module_& m) {
  py::class_<SGD>(m, "SGD", "Stochastic gradient descent: w := w - lr * dL/dw")
      .def(py::init<std::vector<Tensor>, double>(), py::arg("params"), py::arg("lr"))
      .def("step", &SGD::step)
      .def("zero_grad", &SGD::zero_grad, py::arg("set_to_none") = true)
      .def_property("lr", &SGD::lr, &SGD::set_lr)
      .def_property_readonly("params", &SGD::params);
}

}  // namespace bprop::python
