// The arithmetic operators' number slots (nb_add, nb_multiply, ...) set directly on the Tensor
// type, so `x + y` calls C++ without pybind11's dispatcher (its per-call argument records and
// overload loop cost more than the op itself on tiny tensors). Conversion only: each slot
// unpacks its operands, calls the op, and packs the result; the methods bound in ops.cpp stay
// for explicit calls such as x.__add__(y).
#include <new>

#include "bindings.h"

namespace bprop::python {
namespace {

const py::detail::type_info* tensor_type() {
  static const py::detail::type_info* info = py::detail::get_type_info(typeid(Tensor));
  return info;
}

// The C++ tensor inside a Tensor object, or null for anything else.
const Tensor* as_tensor(PyObject* object) {
  if (!PyObject_TypeCheck(object, tensor_type()->type)) return nullptr;
  auto* instance = reinterpret_cast<py::detail::instance*>(object);
  if (instance->simple_layout)  // one C++ base (Tensor, or a Python subclass of it)
    return static_cast<const Tensor*>(instance->simple_value_holder[0]);
  py::detail::type_caster_generic caster(tensor_type());
  return caster.load(object, false) ? static_cast<const Tensor*>(caster.value) : nullptr;
}

// A Tensor operand (borrowed), or a Python number wrapped as PyTorch wraps it (held in
// `wrapped`); null for other types.
const Tensor* operand(PyObject* object, Tensor* wrapped) {
  if (const Tensor* t = as_tensor(object)) return t;
  py::detail::make_caster<Scalar> number;
  if (!number.load(object, true)) return nullptr;
  *wrapped = Tensor::wrapped_scalar(py::detail::cast_op<Scalar>(number));
  return wrapped;
}

// C++ exceptions become the Python exceptions the rest of the bindings raise.
PyObject* raise_current() {
  try {
    throw;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const bprop::TypeError& e) {
    PyErr_SetString(PyExc_TypeError, e.what());
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::out_of_range& e) {
    PyErr_SetString(PyExc_IndexError, e.what());
  } catch (const std::bad_alloc& e) {
    PyErr_SetString(PyExc_MemoryError, e.what());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

template <Tensor (*Op)(const Tensor&, const Tensor&)>
PyObject* binary_slot(PyObject* a, PyObject* b) {
  try {
    Tensor wrapped_a, wrapped_b;
    const Tensor* lhs = operand(a, &wrapped_a);
    const Tensor* rhs = lhs ? operand(b, &wrapped_b) : nullptr;
    if (!rhs) Py_RETURN_NOTIMPLEMENTED;
    return py::cast(Op(*lhs, *rhs)).release().ptr();
  } catch (...) {
    return raise_current();
  }
}

PyObject* negative_slot(PyObject* x) {
  try {
    const Tensor* t = as_tensor(x);
    if (!t) Py_RETURN_NOTIMPLEMENTED;
    return py::cast(neg(*t)).release().ptr();
  } catch (...) {
    return raise_current();
  }
}

}  // namespace

void init_fast_ops(py::module_& m) {
  auto* type = reinterpret_cast<PyTypeObject*>(m.attr("Tensor").ptr());
  type->tp_as_number->nb_add =
      &binary_slot<static_cast<Tensor (*)(const Tensor&, const Tensor&)>(&add)>;
  type->tp_as_number->nb_subtract =
      &binary_slot<static_cast<Tensor (*)(const Tensor&, const Tensor&)>(&sub)>;
  type->tp_as_number->nb_multiply =
      &binary_slot<static_cast<Tensor (*)(const Tensor&, const Tensor&)>(&mul)>;
  type->tp_as_number->nb_true_divide =
      &binary_slot<static_cast<Tensor (*)(const Tensor&, const Tensor&)>(&div)>;
  type->tp_as_number->nb_negative = &negative_slot;
  PyType_Modified(type);
}

}  // namespace bprop::python
