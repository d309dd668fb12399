// Ops as bprop.* functions and as Tensor methods/operators. Python numbers take the Scalar
// overloads, so they never change a tensor's dtype.
#include "bindings.h"

namespace bprop::python {
namespace {
Tensor wrap(Scalar s) { return Tensor::wrapped_scalar(s); }

// The other operand of a binary op: a Tensor, or a Python number (wrapped as PyTorch wraps
// it). One overload taking a handle rather than a Tensor overload and a Scalar overload: a
// failed Tensor conversion is slow in pybind11 (it probes the argument for a foreign-module
// conduit, raising and clearing an AttributeError), which cost `x * 2.0` 650 ns.
Tensor operand(py::handle value, const char* op) {
  // Tensor's pybind11 type record, looked up once (py::isinstance looks it up every call).
  static const py::detail::type_info* tensor_type = py::detail::get_type_info(typeid(Tensor));
  if (PyObject_TypeCheck(value.ptr(), tensor_type->type)) {
    py::detail::type_caster_generic caster(tensor_type);
    if (caster.load(value, false)) return *static_cast<const Tensor*>(caster.value);
  }
  py::detail::make_caster<Scalar> number;
  if (number.load(value, true)) return wrap(py::detail::cast_op<Scalar>(number));
  throw py::type_error(std::string("[") + op + "] expected a Tensor or a number, got " +
                       py::str(py::type::of(value)).cast<std::string>());
}
}  // namespace

void init_ops(py::module_& m) {
  auto tensor = py::reinterpret_borrow<py::class_<Tensor>>(m.attr("Tensor"));

  // Binary arithmetic: tensor op tensor, tensor op number, number op tensor.
#define BPROP_BIND_BINARY(py_name, fn)                                                         \
  m.def(#fn, [](py::handle a, py::handle b) { return fn(operand(a, #fn), operand(b, #fn)); }); \
  tensor.def(#fn, [](const Tensor& a, py::handle b) { return fn(a, operand(b, #fn)); });       \
  tensor.def("__" py_name "__",                                                                \
             [](const Tensor& a, py::handle b) { return fn(a, operand(b, #fn)); });            \
  tensor.def("__r" py_name "__",                                                               \
             [](const Tensor& a, py::handle b) { return fn(operand(b, #fn), a); });

  BPROP_BIND_BINARY("add", add)
  BPROP_BIND_BINARY("sub", sub)
  BPROP_BIND_BINARY("mul", mul)
  BPROP_BIND_BINARY("truediv", div)
#undef BPROP_BIND_BINARY

  // pow keeps a Python-number exponent in double precision for its VJP.
  m.def("pow", [](const Tensor& a, Scalar b) { return pow(a, b); });
  m.def("pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); });
  m.def("pow", [](Scalar a, const Tensor& b) { return pow(wrap(a), b); });
  tensor.def("pow", [](const Tensor& a, Scalar b) { return pow(a, b); });
  tensor.def("pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); });
  tensor.def("__pow__", [](const Tensor& a, Scalar b) { return pow(a, b); });
  tensor.def("__pow__", [](const Tensor& a, const Tensor& b) { return pow(a, b); });
  tensor.def("__rpow__", [](const Tensor& a, Scalar b) { return pow(wrap(b), a); });
  tensor.def("__neg__", [](const Tensor& x) { return neg(x); });
  // Matrix products release the GIL: other Python threads run while the kernel does.
  const auto no_gil = py::call_guard<py::gil_scoped_release>();
  tensor.def("__matmul__", &matmul, no_gil);
  tensor.def("matmul", &matmul, no_gil);
  m.def("matmul", &matmul, no_gil);

  // Comparisons: bool results, not differentiable.
#define BPROP_BIND_COMPARE(py_name, fn)                                                  \
  m.def(#fn, [](const Tensor& a, py::handle b) { return fn(a, operand(b, #fn)); });      \
  tensor.def(#fn, [](const Tensor& a, py::handle b) { return fn(a, operand(b, #fn)); }); \
  tensor.def("__" py_name "__",                                                          \
             [](const Tensor& a, py::handle b) { return fn(a, operand(b, #fn)); });

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
  BPROP_BIND_UNARY(abs)
  BPROP_BIND_UNARY(sign)
  BPROP_BIND_UNARY(sqrt)
  BPROP_BIND_UNARY(sin)
  BPROP_BIND_UNARY(cos)
  BPROP_BIND_UNARY(log1p)
  BPROP_BIND_UNARY(erf)
#undef BPROP_BIND_UNARY

  m.def("maximum", &maximum);
  m.def("minimum", &minimum);
  tensor.def("maximum", &maximum);
  tensor.def("minimum", &minimum);
  // clamp: bounds are tensors or numbers (the Python layer wraps numbers); None is absent.
  m.def("_clamp",
        [](const Tensor& x, const std::optional<Tensor>& lo, const std::optional<Tensor>& hi) {
          return clamp(x, lo ? *lo : Tensor(), hi ? *hi : Tensor());
        });
  m.def("_clamp_",
        [](const Tensor& x, const std::optional<Tensor>& lo, const std::optional<Tensor>& hi) {
          return clamp_(x, lo ? *lo : Tensor(), hi ? *hi : Tensor());
        });
  m.def("_wrap_scalar", &wrap, "A 0-d tensor for a Python number, typed as PyTorch types them");

  m.def("where", [](const Tensor& c, const Tensor& a, const Tensor& b) { return where(c, a, b); });
  m.def("where", [](const Tensor& c, const Tensor& a, Scalar b) { return where(c, a, wrap(b)); });
  m.def("where", [](const Tensor& c, Scalar a, const Tensor& b) { return where(c, wrap(a), b); });
  m.def("where", [](const Tensor& c, Scalar a, Scalar b) { return where(c, wrap(a), wrap(b)); });
  m.def("result_type", &result_type);

  // Reductions and shapes: the Python layer normalises dim/axis/keepdims and *shape varargs.
  m.def(
      "_sum",
      [](const Tensor& x, const Dims& dims, bool keepdim) {
        return without_gil_if_large(x, [&] { return sum(x, dims, keepdim); });
      },
      py::arg("input"), py::arg("dims"), py::arg("keepdim"));
  m.def(
      "_mean",
      [](const Tensor& x, const Dims& dims, bool keepdim) {
        return without_gil_if_large(x, [&] { return mean(x, dims, keepdim); });
      },
      py::arg("input"), py::arg("dims"), py::arg("keepdim"));
  m.def("_reshape", &reshape, py::arg("input"), py::arg("shape"));
  m.def("_permute", &permute, py::arg("input"), py::arg("dims"));
  m.def("_expand", &expand, py::arg("input"), py::arg("shape"));
  m.def("transpose", &transpose, py::arg("input"), py::arg("dim0"), py::arg("dim1"));
  tensor.def("transpose", &transpose, py::arg("dim0"), py::arg("dim1"));
  m.def("_to_dtype", &to_dtype, py::arg("input"), py::arg("dtype"));
  m.def("_prod", &prod);
  m.def("_amax", &amax);
  m.def("_amin", &amin);
  m.def("_max_all", py::overload_cast<const Tensor&>(&max));
  m.def("_min_all", py::overload_cast<const Tensor&>(&min));
  m.def("_max_dim", py::overload_cast<const Tensor&, int64_t, bool>(&max));
  m.def("_min_dim", py::overload_cast<const Tensor&, int64_t, bool>(&min));
  m.def("_argmax", &argmax);
  m.def("_argmin", &argmin);
  m.def("_var", &var);
  m.def("_std", &stddev);
  m.def("_logsumexp", [](const Tensor& x, const Dims& dims, bool keepdim) {
    return without_gil_if_large(x, [&] { return logsumexp(x, dims, keepdim); });
  });
  m.def("_view", &view);
  m.def("_flatten", &flatten);
  m.def("_squeeze", &squeeze);
  m.def("_unsqueeze", &unsqueeze);
  m.def("_cat", &cat);
  m.def("_stack", &stack);
  m.def("_gather", &gather);
  m.def("_scatter_add", &scatter_add);
  m.def("_index_select", &index_select);
  m.def("_index_add", &index_add);
  m.def("nonzero", &nonzero, py::arg("input"));
  m.def("_mm", &mm, no_gil);
  m.def("_bmm", &bmm, no_gil);

  // In place; numbers arrive wrapped as 0-d tensors.
  m.def("_add_", &add_);
  m.def("_sub_", &sub_);
  m.def("_mul_", &mul_);
  m.def("_div_", &div_);
  m.def("_fill_", &fill_);
  m.def("_zero_", &zero_);
  m.def("_copy_", &copy_);

  // x[...]: the Python layer turns lists and arrays into tensors; this converts the rest.
  m.def("_index", [](const Tensor& x, const py::tuple& key) {
    std::vector<IndexItem> items;
    for (py::handle part : key) {
      IndexItem item;
      if (part.is_none()) {
        item.kind = IndexItem::Kind::None;
      } else if (part.ptr() == Py_Ellipsis) {
        item.kind = IndexItem::Kind::Ellipsis;
      } else if (PySlice_Check(part.ptr())) {
        auto optional_int = [](py::object value) -> std::optional<int64_t> {
          if (value.is_none()) return std::nullopt;
          return value.cast<int64_t>();
        };
        item.kind = IndexItem::Kind::Slice;
        item.start = optional_int(part.attr("start"));
        item.stop = optional_int(part.attr("stop"));
        std::optional<int64_t> step = optional_int(part.attr("step"));
        item.step = step ? *step : 1;
      } else if (py::isinstance<Tensor>(part)) {
        item.kind = IndexItem::Kind::Tensor;
        item.tensor = part.cast<Tensor>();
      } else if (PyLong_Check(part.ptr()) && !PyBool_Check(part.ptr())) {
        item.kind = IndexItem::Kind::Int;
        item.index = part.cast<int64_t>();
      } else {
        throw py::type_error(
            "[index] only integers, slices, None, Ellipsis, bools, integer or "
            "bool tensors, lists and arrays are valid indices, got " +
            py::repr(part).cast<std::string>());
      }
      items.push_back(std::move(item));
    }
    return index(x, items);
  });

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
