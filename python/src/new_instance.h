// What cls.__new__(cls) gives for each bound class: see Note [objects made without __init__].
#pragma once

#include <string>
#include <utility>

#include "bindings.h"

namespace bprop::python {

// Note [objects made without __init__]
// pybind11 allocates an instance in __new__ and constructs its C++ value in __init__; until then
// the value pointer is null, and a bound member function called on the instance runs with
// this == nullptr (a segfault). Pickle, copy.copy and subclassing libraries call cls.__new__(cls)
// alone, so every bound class gives __new__ one of three meanings, each installed as the
// class's own __new__ (objects that C++ hands to Python never go through __new__, so bound
// calls cost the same):
//  - new_makes_value: __new__ gives a valid object at once (Tensor: an empty tensor, as
//    PyTorch's Tensor.__new__), and __init__ is a plain method that assigns the value (pybind11
//    skips a constructor on an instance that already holds one).
//  - new_constructs: __new__ runs the class's constructor with __new__'s arguments (the private
//    classes that bprop's Python wrappers create); without them it raises TypeError. The
//    __init__ that follows is then skipped by pybind11.
//  - new_refuses: objects only bprop makes (graph nodes, hook handles) cannot be created from
//    Python, as PyTorch's grad_fn classes.
//  - enum_members_only: an enum (dtype, Reduction) has its members and nothing else, as a Python
//    Enum: cls(name or value) is the member itself, anything else raises, and pickle and copy
//    go through that (pybind11's own pickling calls cls.__new__(cls) alone, which left an
//    instance holding no member, and its cls(int) took any int).

template <typename Class>
std::string class_name(const Class& cls) {
  return py::str(cls.attr("__name__")).template cast<std::string>();
}

// make_value() is the C++ value a bare __new__ leaves in the instance.
template <typename Class, typename MakeValue>
void new_makes_value(Class& cls, MakeValue make_value) {
  using Value = typename Class::type;
  cls.attr("__new__") = py::staticmethod(py::cpp_function(
      [make_value](const py::handle& type, const py::args&, const py::kwargs&) {
        auto self = py::reinterpret_steal<py::object>(
            py::detail::make_new_instance(reinterpret_cast<PyTypeObject*>(type.ptr())));
        auto* inst = reinterpret_cast<py::detail::instance*>(self.ptr());
        auto v_h = inst->get_value_and_holder(py::detail::get_type_info(typeid(Value)));
        v_h.value_ptr() = new Value(make_value());
        v_h.type->init_instance(inst, nullptr);  // the holder owns the value; registered
        return self;
      },
      py::name("__new__")));
}

template <typename Class>
void new_constructs(Class& cls) {
  const std::string name = class_name(cls);
  py::object constructor = cls.attr("__init__");
  cls.attr("__new__") = py::staticmethod(py::cpp_function(
      [name, constructor](const py::handle& type, const py::args& args, const py::kwargs& kwargs) {
        auto self = py::reinterpret_steal<py::object>(
            py::detail::make_new_instance(reinterpret_cast<PyTypeObject*>(type.ptr())));
        try {
          constructor(self, *args, **kwargs);
        } catch (py::error_already_set& e) {
          if (!e.matches(PyExc_TypeError)) throw;
          throw py::type_error("[" + name + "] " + name +
                               ".__new__ builds the object, so it takes __init__'s arguments (an "
                               "object without them would be unusable): " +
                               e.what());
        }
        return self;
      },
      py::name("__new__")));
}

template <typename Class>
void new_refuses(Class& cls, const std::string& why) {
  const std::string name = class_name(cls);
  const std::string message = "[" + name + "] cannot create '" + name + "' instances: " + why;
  cls.attr("__new__") = py::staticmethod(py::cpp_function(
      [message](const py::args&, const py::kwargs&) -> py::object {
        throw py::type_error(message);
      },
      py::name("__new__")));
}

template <typename Enum>
void enum_members_only(py::enum_<Enum>& cls) {
  const std::string name = class_name(cls);
  py::object members = cls.attr("__members__");  // name -> member
  cls.attr("__new__") = py::staticmethod(py::cpp_function(
      [name, members](const py::handle&, const py::args& args,
                      const py::kwargs& kwargs) -> py::object {
        if (args.size() == 1 && kwargs.empty()) {
          py::handle key = args[0];
          if (py::isinstance<py::str>(key) && members.contains(key)) return members[key];
          if (PyLong_CheckExact(key.ptr()))
            for (auto item : py::reinterpret_borrow<py::dict>(members))
              if (py::int_(py::reinterpret_borrow<py::object>(item.second)).equal(key))
                return py::reinterpret_borrow<py::object>(item.second);
        }
        std::string known;
        for (auto item : py::reinterpret_borrow<py::dict>(members))
          known += (known.empty() ? "" : ", ") + py::str(item.first).cast<std::string>() + " (" +
                   py::str(py::int_(py::reinterpret_borrow<py::object>(item.second)))
                       .cast<std::string>() +
                   ")";
        throw py::value_error("[" + name + "] " + name + "() takes one member's name or value: " +
                              known + "; got " + py::repr(args).cast<std::string>());
      },
      py::name("__new__")));
  // __new__ returned an existing member: nothing is left to initialise.
  py::delattr(cls, "__init__");  // pybind11's cls(int) took any int
  cls.def("__init__", [](const py::handle&, const py::args&, const py::kwargs&) {});
  cls.def("__reduce__", [](const py::handle& self) -> py::tuple {
    py::object type = py::type::of(self), name = self.attr("name");
    return py::make_tuple(type, py::make_tuple(name));
  });
}

}  // namespace bprop::python
