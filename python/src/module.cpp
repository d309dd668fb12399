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
  bprop::python::init_dtype(m);
  bprop::python::init_tensor(m);
  bprop::python::init_creation(m);
  bprop::python::init_ops(m);
  bprop::python::init_autograd(m);
  bprop::python::init_optim(m);
  bprop::python::init_nn(m);
  bprop::python::init_runtime(m);
  bprop::python::init_capture(m);
  bprop::python::init_train(m);
  bprop::python::init_io(m);
  bprop::python::init_fast_ops(m);
}
