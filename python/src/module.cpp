// bprop._core: the extension module. Each area binds itself in its own init_<area>.
#include <system_error>

#include "bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "bprop's C++ core: tensors, ops, autograd and optimizers";
  m.attr("__version__") = BPROP_VERSION;  // project(VERSION) in CMakeLists.txt, the one place
  // bprop::TypeError derives from std::invalid_argument (ValueError); it must become TypeError.
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const bprop::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const std::system_error& e) {
      // OSError(errno, message) becomes the matching subclass, e.g. FileNotFoundError.
      PyObject* args = Py_BuildValue("(is)", e.code().value(), e.what());
      if (args) {
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
      }
    }
  });
  // In this order: ops bind methods on Tensor, and fast_ops overrides their operator slots.
  using namespace bprop::python;
  for (auto init :
       {init_dtype, init_tensor, init_creation, init_ops, init_autograd, init_optim, init_nn,
        init_runtime, init_capture, init_train, init_io, init_fast_ops, init_call_errors})
    init(m);
}
