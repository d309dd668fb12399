// The training loop (bprop/trainer.h): bprop::Trainer, driven by bprop.Trainer.
#include <pybind11/functional.h>

#include "bindings.h"
#include "new_instance.h"

namespace bprop::python {

namespace {

// on_batch for the C++ loop: checks for Ctrl-C after each batch, then calls `on_batch`.
BatchCallback batch_callback(const std::optional<py::function>& on_batch) {
  return [on_batch](int64_t done, double running) {
    py::gil_scoped_acquire gil;  // Ctrl-C and progress bars need Python, briefly
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    return on_batch ? (*on_batch)(done, running).cast<bool>() : true;
  };
}

}  // namespace

void init_train(py::module_& m) {
  // The callables are Python's: pybind11 takes the GIL for each call (and for their release),
  // so the loop itself runs without it.
  py::class_<Trainer> trainer(m, "_Trainer",
                              "The training loop of bprop.Trainer (bprop/trainer.h)");
  trainer
      .def(
          py::init<Trainer::Model, Trainer::LossFn, std::function<void()>, std::function<void()>>(),
          py::arg("model"), py::arg("loss_fn"), py::arg("zero_grad"), py::arg("step"))
      .def(
          "run_epoch",
          [](Trainer& trainer, const Tensor& inputs, const Tensor& targets, const Tensor& order,
             int64_t batch_size, bool count_correct, const std::optional<py::function>& on_batch) {
            const BatchCallback callback = batch_callback(on_batch);
            EpochResult r;
            {
              py::gil_scoped_release release;
              r = trainer.run_epoch(inputs, targets, order, batch_size, count_correct, callback);
            }
            return py::make_tuple(r.mean_loss, r.correct, r.rows, r.stopped);
          },
          py::arg("inputs"), py::arg("targets"), py::arg("order"), py::arg("batch_size"),
          py::arg("count_correct"), py::arg("on_batch") = py::none(),
          "One epoch (Trainer::run_epoch): (mean loss, rows right, rows, stopped)")
      .def("set_gradient_sync", &Trainer::set_gradient_sync, py::arg("before_step"),
           py::arg("sync"));
  new_constructs(trainer);  // after py::init: see Note [objects made without __init__]
}

}  // namespace bprop::python
