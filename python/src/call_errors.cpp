// pybind11's "incompatible function arguments" TypeError lists every overload in C++ terms and
// names no argument. Every function of the module is switched to a dispatcher that calls
// pybind11's and, only when a call fails that way, asks bprop._arguments for PyTorch's wording:
// the public function the user called and the argument that does not fit. Calls that succeed
// pay one extra C call.
#include <cstring>

#include "bindings.h"

namespace bprop::python {
namespace {

struct PybindFunction : py::cpp_function {
  using py::cpp_function::dispatcher;  // protected in pybind11
};

PyCFunction as_method(PyObject* (*function)(PyObject*, PyObject* const*, size_t, PyObject*)) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(function));
}

// Replaces the pending "incompatible function arguments" TypeError by the explained one; any
// other error, or a failure to explain, leaves the pending error as it is.
void explain_pending_error(PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  PyObject* text = value ? PyObject_Str(value) : nullptr;
  const char* utf8 = text ? PyUnicode_AsUTF8(text) : nullptr;
  if (!utf8 || !std::strstr(utf8, "incompatible function arguments")) {
    PyErr_Clear();  // from PyObject_Str, if it failed
    Py_XDECREF(text);
    PyErr_Restore(type, value, traceback);
    return;
  }
  py::object original = py::reinterpret_steal<py::object>(text);
  try {
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    py::tuple positional(nargs);
    for (Py_ssize_t i = 0; i < nargs; ++i)
      positional[i] = py::reinterpret_borrow<py::object>(args[i]);
    py::dict keywords;
    const Py_ssize_t nkeywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkeywords; ++i)
      keywords[PyTuple_GET_ITEM(kwnames, i)] = py::reinterpret_borrow<py::object>(args[nargs + i]);
    py::object explain = py::module_::import("bprop._arguments").attr("explain_incompatible_call");
    py::str message = explain(original, positional, keywords);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    PyErr_SetObject(PyExc_TypeError, message.ptr());
  } catch (py::error_already_set&) {  // keep pybind11's message rather than none
    PyErr_Restore(type, value, traceback);
  }
}

PyObject* explaining_dispatcher(PyObject* self, PyObject* const* args, size_t nargsf,
                                PyObject* kwnames) {
  PyObject* result = PybindFunction::dispatcher(self, args, nargsf, kwnames);
  if (result == nullptr && PyErr_ExceptionMatches(PyExc_TypeError))
    explain_pending_error(args, nargsf, kwnames);
  return result;
}

void switch_dispatcher(PyObject* object) {
  if (object == nullptr || !PyCFunction_Check(object)) return;
  PyMethodDef* def = reinterpret_cast<PyCFunctionObject*>(object)->m_ml;
  if (def->ml_meth == as_method(PybindFunction::dispatcher))
    def->ml_meth = as_method(explaining_dispatcher);
}

void switch_attribute(py::handle owner, const char* name) {
  if (PyObject* attribute = PyObject_GetAttrString(owner.ptr(), name)) {
    switch_dispatcher(attribute);
    Py_DECREF(attribute);
  } else {
    PyErr_Clear();
  }
}

void switch_class(py::handle type) {
  PyObject* dict = reinterpret_cast<PyTypeObject*>(type.ptr())->tp_dict;
  PyObject *key = nullptr, *value = nullptr;
  Py_ssize_t position = 0;
  while (PyDict_Next(dict, &position, &key, &value)) {
    if (PyInstanceMethod_Check(value)) {
      switch_dispatcher(PyInstanceMethod_GET_FUNCTION(value));
    } else if (PyObject_TypeCheck(value, &PyProperty_Type)) {
      for (const char* accessor : {"fget", "fset", "fdel"}) switch_attribute(value, accessor);
    } else if (PyObject_TypeCheck(value, &PyStaticMethod_Type) ||
               PyObject_TypeCheck(value, &PyClassMethodDescr_Type)) {
      switch_attribute(value, "__func__");
    } else {
      switch_dispatcher(value);
    }
  }
}

}  // namespace

void init_call_errors(py::module_& m) {
  for (auto item : m.attr("__dict__").cast<py::dict>()) {
    py::handle value = item.second;
    if (PyType_Check(value.ptr()))
      switch_class(value);
    else
      switch_dispatcher(value.ptr());
  }
}

}  // namespace bprop::python
