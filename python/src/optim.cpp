// Optimizers implemented in C++ (the Python classes in bprop/optim wrap them).
#include "bindings.h"
#include "new_instance.h"

namespace bprop::python {

void init_optim(py::module_& m) {
  m.def("_zero_grad", &zero_grad, py::arg("params"), py::arg("set_to_none"));
  py::class_<Adam, std::shared_ptr<Adam>> adam(m, "Adam",
                                               "Adam and AdamW with PyTorch's update math");
  adam.def(py::init([](std::vector<Tensor> params, double lr, double beta1, double beta2,
                       double eps, double weight_decay, bool decoupled) {
             return std::make_shared<Adam>(
                 std::move(params), AdamOptions{lr, beta1, beta2, eps, weight_decay, decoupled});
           }),
           py::arg("params"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
           py::arg("weight_decay"), py::arg("decoupled_weight_decay"))
      .def("step", &Adam::step)
      .def("zero_grad", &Adam::zero_grad, py::arg("set_to_none") = true)
      .def_property("lr", &Adam::lr, &Adam::set_lr)
      .def_property_readonly("params", &Adam::params, py::return_value_policy::copy)
      .def("_state_entry",
           [](const Adam& a, size_t i) -> py::object {
             if (!a.exp_avg(i).defined()) return py::none();
             return py::make_tuple(a.step_count(i), a.exp_avg(i), a.exp_avg_sq(i));
           })
      .def("_set_state", &Adam::set_state)
      .def("_reset_state", &Adam::reset_state)
      .def(
          "_set_options",
          [](Adam& a, double lr, double beta1, double beta2, double eps, double weight_decay) {
            AdamOptions o = a.options();
            o.lr = lr;
            o.beta1 = beta1;
            o.beta2 = beta2;
            o.eps = eps;
            o.weight_decay = weight_decay;
            a.set_options(o);
          },
          py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
          py::arg("weight_decay"));
  new_constructs(adam);  // after py::init: see Note [objects made without __init__]

  py::class_<SGD, std::shared_ptr<SGD>> sgd(m, "SGD",
                                            "Stochastic gradient descent: w := w - lr * dL/dw");
  sgd.def(py::init([](std::vector<Tensor> params, double lr, double momentum, double dampening,
                      double weight_decay, bool nesterov) {
            return std::make_shared<SGD>(
                std::move(params), SGDOptions{lr, momentum, dampening, weight_decay, nesterov});
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
      .def("_reset_state", &SGD::reset_state)
      .def(
          "_set_options",
          [](SGD& s, double lr, double momentum, double dampening, double weight_decay,
             bool nesterov) {
            s.set_options(SGDOptions{lr, momentum, dampening, weight_decay, nesterov});
          },
          py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
          py::arg("nesterov"))
      .def("_set_momentum_buffer",
           [](SGD& s, size_t i, const Tensor& b) { s.set_momentum_buffer(i, b); })
      .def_property_readonly("params", &SGD::params, py::return_value_policy::copy);
  new_constructs(sgd);
}

}  // namespace bprop::python
