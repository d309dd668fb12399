// The dtype enum (bprop.float32, ...) and the default dtype.
#include "bindings.h"
#include "new_instance.h"

namespace bprop::python {

void init_dtype(py::module_& m) {
  py::enum_<DType> dtype(m, "dtype", "Element type of a tensor");
  dtype.value("bool", DType::Bool)
      .value("int64", DType::Int64)
      .value("float32", DType::Float32)
      .value("float64", DType::Float64)
      .def("__repr__", [](DType d) { return std::string("bprop.") + dtype_name(d); })
      .def("__str__", [](DType d) { return std::string("bprop.") + dtype_name(d); })
      .def_property_readonly("is_floating_point", [](DType d) { return is_floating(d); })
      .def_property_readonly("itemsize", [](DType d) { return itemsize(d); });
  enum_members_only(dtype);  // Note [objects made without __init__] in new_instance.h
  export_name(m, "dtype");
  m.def("get_default_dtype", &default_dtype,
        "The dtype Python floats and the factories take (float32 unless set_default_dtype)");
  export_name(m, "get_default_dtype");
  m.def("set_default_dtype", &set_default_dtype, py::arg("dtype"),
        "Sets the dtype Python floats and the factories take (float32 or float64)");
  export_name(m, "set_default_dtype");
}

}  // namespace bprop::python
