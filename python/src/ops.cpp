// Ops as bprop.* functions and as Tensor methods/operators. Python numbers take the Scalar
// overloads, so they never change a tensor's dtype.
#include "bindings.h"

namespace bprop::python {
namespace {
Tensor wrap(Scalar s) { return Tensor::wrapped_scalar(s); }
}  // namespace

void init_ops(py::module_& m) {
  auto tensor = py::reinterpret_borrow<py::class_<Tensor>>(m.attr("Tensor"));

  // Binary arithmetic: tensor op tensor, tensor op number, number op tensor.
#define BPROP_BIND_BINARY(py_name, fn)                                                      \
  m.def(#fn, [](const Tensor& a, const Tensor& b) { return fn(a, b); });                    \
  m.def(#fn, [](const Tensor& a, Scalar b) { return fn(a, wrap(b)); });                     \
  m.def(#fn, [](Scalar a, const Tensor& b) { return fn(wrap(a), b); });                     \
  tensor.def(#fn, [](const Tensor& a, const Tensor& b) { return fn(a, b); });               \
  tensor.def(#fn, [](const Tensor& a, Scalar b) { return fn(a, wrap(b)); });                \
  tensor.def("__" py_name "__", [](const Tensor& a, const Tensor& b) { return fn(a, b); }); \
  tensor.def("__" py_name "__", [](const Tensor& a, Scalar b) { return fn(a, wrap(b)); });  \
  tensor.def("__r" py_name "__", [](const Tensor& a, Scalar b) { return fn(wrap(b), a); });

  BPROP_BIND_BINARY("add", add)
  BPROP_BIND_BINARY("sub", sub)
  BPROP_BIND_BINARY("mul", mul)
  BPROP_BIND_BINARY("truediv", div)
#undef BPROP_BIND_BINARY

  // pow keeps a Python-number exponent in double precision for its VJP.
  m.def("pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); });
  m.def("pow", [](const Tensor& a, Scalar b) { return pow(a, b); });
  m.def("pow", [](Scalar a, const Tensor& b) { return pow(wrap(a), b); });
  tensor.def("pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); });
  tensor.def("pow", [](const Tensor& a, Scalar b) { return pow(a, b); });
  tensor.def("__pow__", [](const Tensor& a, const Tensor& b) { return pow(a, b); });
  tensor.def("__pow__", [](const Tensor& a, Scalar b) { return pow(a, b); });
  tensor.def("__rpow__", [](const Tensor& a, Scalar b) { return pow(wrap(b), a); });
  tensor.def("__neg__", [](const Tensor& x) { return neg(x); });
  tensor.def("__matmul__", &matmul);
  tensor.def("matmul", &matmul);
  m.def("matmul", &matmul);

  // Comparisons: bool results, not differentiable.
#define BPROP_BIND_COMPARE(py_name, fn)                                                     \
  m.def(#fn, [](const Tensor& a, const Tensor& b) { return fn(a, b); });                    \
  m.def(#fn, [](const Tensor& a, Scalar b) { return fn(a, wrap(b)); });                     \
  tensor.def(#fn, [](const Tensor& a, const Tensor& b) { return fn(a, b); });               \
  tensor.def(#fn, [](const Tensor& a, Scalar b) { return fn(a, wrap(b)); });                \
  tensor.def("__" py_name "__", [](const Tensor& a, const Tensor& b) { return fn(a, b); }); \
  tensor.def("__" py_name "__", [](const Tensor& a, Scalar b) { return fn(a, wrap(b)); });

  BPROP_BIND_COMPARE("eq", eq)
  BPROP_BIND_COMPARE("ne", ne)
  BPROP_BIND_COMPARE("lt", lt)
  BPROP_BIND_COMPARE("le", le)
  BPROP_BIND_COMPARE("gt", gt)
  BPROP_BIND_COMPARE("ge", ge)
#undef BPROP_BIND_COMPARE

  // Unary functions.
#define BPROP_BIND_UNARY(fn)                                           \
  m.def(#fn, [](const Tensor& x) { return fn(x); }, py::arg("input")); \
  tensor.def(#fn, [](const Tensor& x) { return fn(x); });

  BPROP_BIND_UNARY(neg)
  BPROP_BIND_UNARY(exp)
  BPROP_BIND_UNARY(log)
  BPROP_BIND_UNARY(tanh)
  BPROP_BIND_UNARY(sigmoid)
  BPROP_BIND_UNARY(relu)
#undef BPROP_BIND_UNARY

  m.def("where", [](const Tensor& c, const Tensor& a, const Tensor& b) { return where(c, a, b); });
  m.def("where", [](const Tensor& c, const Tensor& a, Scalar b) { return where(c, a, wrap(b)); });
  m.def("where", [](const Tensor& c, Scalar a, const Tensor& b) { return where(c, wrap(a), b); });
  m.def("where", [](const Tensor& c, Scalar a, Scalar b) { return where(c, wrap(a), wrap(b)); });
  m.def("result_type", &result_type);

  // Reductions and shapes: the Python layer normalises dim/axis/keepdims and *shape varargs.
  m.def("_sum", &sum, py::arg("input"), py::arg("dims"), py::arg("keepdim"));
  m.def("_mean", &mean, py::arg("input"), py::arg("dims"), py::arg("keepdim"));
  m.def("_reshape", &reshape, py::arg("input"), py::arg("shape"));
  m.def("_permute", &permute, py::arg("input"), py::arg("dims"));
  m.def("_expand", &expand, py::arg("input"), py::arg("shape"));
  m.def("transpose", &transpose, py::arg("input"), py::arg("dim0"), py::arg("dim1"));
  tensor.def("transpose", &transpose, py::arg("dim0"), py::arg("dim1"));
  m.def("_to_dtype", &to_dtype, py::arg("input"), py::arg("dtype"));

  m.def(
      "op_names",
      [] {
        py::list out;
        for (const OpInfo& info : op_names())
          out.append(py::make_tuple(info.name, info.differentiable));
        return out;
      },
      "Every op in the C++ registry as (name, differentiable)");
}

}  // namespace bprop::python
