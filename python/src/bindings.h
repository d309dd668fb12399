// Shared conversions for the bindings: Python numbers <-> bprop::Scalar, sequences of ints
// <-> bprop::Shape. Conversion only; no logic lives in the bindings.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bprop/bprop.h"

namespace py = pybind11;

namespace pybind11::detail {

// bool, int, float, and numpy scalars; never a Tensor or an array (those pick other overloads).
template <>
struct type_caster<bprop::Scalar> {
 public:
  PYBIND11_TYPE_CASTER(bprop::Scalar, const_name("Number"));

  bool load(handle src, bool) {
    if (PyBool_Check(src.ptr())) {
      value = bprop::Scalar(src.ptr() == Py_True);
      return true;
    }
    if (PyLong_Check(src.ptr())) {
      int overflow = 0;
      long long v = PyLong_AsLongLongAndOverflow(src.ptr(), &overflow);
      if (overflow) return false;
      value = bprop::Scalar(static_cast<int64_t>(v));
      return true;
    }
    if (PyFloat_Check(src.ptr())) {
      value = bprop::Scalar(PyFloat_AsDouble(src.ptr()));
      return true;
    }
    static PyObject* numpy_generic = [] {
      return py::object(py::module_::import("numpy").attr("generic")).release().ptr();
    }();
    if (PyObject_IsInstance(src.ptr(), numpy_generic) == 1) {
      object item = reinterpret_borrow<object>(src).attr("item")();
      if (PyBool_Check(item.ptr()) || PyLong_Check(item.ptr()) || PyFloat_Check(item.ptr()))
        return load(item, true);
    }
    return false;
  }

  static handle cast(const bprop::Scalar& scalar, return_value_policy, handle) {
    switch (scalar.kind()) {
      case bprop::Scalar::Kind::Bool:
        return py::bool_(scalar.to_int() != 0).release();
      case bprop::Scalar::Kind::Int:
        return PyLong_FromLongLong(scalar.to_int());
      case bprop::Scalar::Kind::Float:
        return PyFloat_FromDouble(scalar.to_double());
    }
    return none().release();
  }
};

// A tuple or list of ints (shapes, dims); cast back as a tuple.
template <>
struct type_caster<bprop::Shape> {
 public:
  PYBIND11_TYPE_CASTER(bprop::Shape, const_name("tuple[int, ...]"));

  bool load(handle src, bool) {
    if (!PyTuple_Check(src.ptr()) && !PyList_Check(src.ptr())) return false;
    value.clear();
    for (handle item : reinterpret_borrow<sequence>(src)) {
      if (PyBool_Check(item.ptr())) return false;
      PyObject* index = PyNumber_Index(item.ptr());
      if (!index) {
        PyErr_Clear();
        return false;
      }
      long long v = PyLong_AsLongLong(index);
      Py_DECREF(index);
      if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
      }
      value.push_back(static_cast<int64_t>(v));
    }
    return true;
  }

  static handle cast(const bprop::Shape& shape, return_value_policy, handle) {
    tuple out(shape.size());
    for (size_t i = 0; i < shape.size(); ++i)
      PyTuple_SET_ITEM(out.ptr(), static_cast<ssize_t>(i), PyLong_FromLongLong(shape[i]));
    return out.release();
  }
};

}  // namespace pybind11::detail

namespace bprop::python {

// Heavy work runs without the GIL, so that other Python threads run meanwhile: matmul, conv,
// pooling, backward (py::call_guard<py::gil_scoped_release>). The C++ they call touches no
// Python object (the few callbacks into Python take the GIL themselves). Ops whose cost
// grows with their input's size release it only for large inputs: releasing and retaking the
// GIL costs about 0.1 us, more than a small op does.
constexpr int64_t kGilFreeElements = int64_t{1} << 15;
template <typename Op>
Tensor without_gil_if_large(const Tensor& x, Op&& op) {
  if (x.numel() < kGilFreeElements) return op();
  py::gil_scoped_release release;
  return op();
}

// Marks a name of bprop._core public: __all__ lists it, and `import bprop` re-exports it
// (`from ._core import *`), so a binding makes its API public where it defines it.
inline void export_name(py::module_& m, const char* name) {
  if (!py::hasattr(m, "__all__")) m.attr("__all__") = py::list();
  auto names = m.attr("__all__").cast<py::list>();
  if (!names.contains(name)) names.append(name);
}

// One definition, two forms: the function bprop.<name>(input, ...) and the method
// Tensor.<name>(...), bound from the same C++ callable with the same keywords and docstring
// (fn's first parameter is the tensor); the function is exported. `extra`: the py::arg()s after
// input, call guards.
template <typename Fn, typename... Extra>
void def_function_and_method(py::module_& m, const char* name, Fn&& fn, const char* doc,
                             const Extra&... extra) {
  m.def(name, fn, py::arg("input"), extra..., doc);
  export_name(m, name);
  py::reinterpret_borrow<py::class_<Tensor>>(m.attr("Tensor")).def(name, fn, extra..., doc);
}

void init_dtype(py::module_& m);
void init_tensor(py::module_& m);
void init_creation(py::module_& m);
void init_ops(py::module_& m);
void init_autograd(py::module_& m);
void init_optim(py::module_& m);
void init_nn(py::module_& m);
void init_runtime(py::module_& m);
void init_capture(py::module_& m);
void init_train(py::module_& m);
void init_io(py::module_& m);
void init_fast_ops(py::module_& m);     // after init_ops: it overrides operator slots
void init_call_errors(py::module_& m);  // last: it switches every function's dispatcher

}  // namespace bprop::python
