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
Tensor operand(py::handle value, const char* op, const char* name = "other") {
  // Tensor's pybind11 type record, looked up once (py::isinstance looks it up every call).
  static const py::detail::type_info* tensor_type = py::detail::get_type_info(typeid(Tensor));
  if (PyObject_TypeCheck(value.ptr(), tensor_type->type)) {
    py::detail::type_caster_generic caster(tensor_type);
    if (caster.load(value, false)) return *static_cast<const Tensor*>(caster.value);
  }
  py::detail::make_caster<Scalar> number;
  if (number.load(value, true)) return wrap(py::detail::cast_op<Scalar>(number));
  // PyTorch's wording (as bprop._arguments words every argument error).
  throw py::type_error(std::string(op) + "(): argument '" + name +
                       "' must be Tensor or a number, not " +
                       py::type::of(value).attr("__name__").cast<std::string>());
}
// Reductions over dims release the GIL on large inputs.
template <Tensor (*Reduce)(const Tensor&, const Dims&, bool)>
Tensor reduce_without_gil(const Tensor& x, const Dims& dims, bool keepdim) {
  return without_gil_if_large(x, [&] { return Reduce(x, dims, keepdim); });
}
}  // namespace

void init_ops(py::module_& m) {
  auto tensor = py::reinterpret_borrow<py::class_<Tensor>>(m.attr("Tensor"));

  // Binary arithmetic: the function and method (tensor or number operands), and the operators
  // derived from the same C++ op.
#define BPROP_BIND_BINARY(py_name, fn, doc)                                                     \
  def_function_and_method(                                                                      \
      m, #fn,                                                                                   \
      [](py::handle a, py::handle b) { return fn(operand(a, #fn, "input"), operand(b, #fn)); }, \
      doc, py::arg("other"));                                                                   \
  tensor.def("__" py_name "__",                                                                 \
             [](const Tensor& a, py::handle b) { return fn(a, operand(b, #fn)); });             \
  tensor.def("__r" py_name "__",                                                                \
             [](const Tensor& a, py::handle b) { return fn(operand(b, #fn), a); });

  BPROP_BIND_BINARY("add", add, "input + other, broadcast, with PyTorch's type promotion")
  BPROP_BIND_BINARY("sub", sub, "input - other, broadcast, with PyTorch's type promotion")
  BPROP_BIND_BINARY("mul", mul, "input * other, broadcast, with PyTorch's type promotion")
  BPROP_BIND_BINARY("truediv", div, "input / other, broadcast; true division (ints give floats)")
#undef BPROP_BIND_BINARY

  // pow keeps a Python-number exponent in double precision for its VJP.
  def_function_and_method(
      m, "pow", [](const Tensor& a, Scalar b) { return pow(a, b); },
      "input ** exponent, elementwise and broadcast (either side may be a number)",
      py::arg("exponent"));
  def_function_and_method(
      m, "pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, "",
      py::arg("exponent"));
  m.def(
      "pow", [](Scalar a, const Tensor& b) { return pow(wrap(a), b); }, py::arg("input"),
      py::arg("exponent"));
  tensor.def("__pow__", [](const Tensor& a, Scalar b) { return pow(a, b); });
  tensor.def("__pow__", [](const Tensor& a, const Tensor& b) { return pow(a, b); });
  tensor.def("__rpow__", [](const Tensor& a, Scalar b) { return pow(wrap(b), a); });
  tensor.def("__neg__", [](const Tensor& x) { return neg(x); });
  // Matrix products release the GIL: other Python threads run while the kernel does.
  const auto no_gil = py::call_guard<py::gil_scoped_release>();
  def_function_and_method(
      m, "matmul", &matmul,
      "The matrix product of every rank (numpy's matmul rules), as input @ other", py::arg("other"),
      no_gil);
  tensor.def("__matmul__", &matmul, no_gil);
  def_function_and_method(m, "mm", &mm, "The product of two matrices (n, k) @ (k, m)",
                          py::arg("mat2"), no_gil);
  def_function_and_method(m, "bmm", &bmm,
                          "Batched matrix products (b, n, k) @ (b, k, m), no broadcasting",
                          py::arg("mat2"), no_gil);

  // Comparisons: bool results, not differentiable.
#define BPROP_BIND_COMPARE(py_name, fn, symbol)                                              \
  def_function_and_method(                                                                   \
      m, #fn, [](const Tensor& a, py::handle b) { return fn(a, operand(b, #fn)); },          \
      "input " symbol " other, elementwise and broadcast: a bool tensor", py::arg("other")); \
  tensor.def("__" py_name "__",                                                              \
             [](const Tensor& a, py::handle b) { return fn(a, operand(b, #fn)); });

  BPROP_BIND_COMPARE("eq", eq, "==")
  BPROP_BIND_COMPARE("ne", ne, "!=")
  BPROP_BIND_COMPARE("lt", lt, "<")
  BPROP_BIND_COMPARE("le", le, "<=")
  BPROP_BIND_COMPARE("gt", gt, ">")
  BPROP_BIND_COMPARE("ge", ge, ">=")
#undef BPROP_BIND_COMPARE

  // Unary functions: one row each in BPROP_UNARY_OPS (bprop/ops.h).
#define BPROP_BIND_UNARY(kind, name, grad_fn_name, doc) \
  def_function_and_method(m, #name, [](const Tensor& x) { return name(x); }, doc);
  BPROP_UNARY_OPS(BPROP_BIND_UNARY)
#undef BPROP_BIND_UNARY

  def_function_and_method(m, "maximum", &maximum,
                          "The larger of input and other, elementwise (NaN propagates)",
                          py::arg("other"));
  def_function_and_method(m, "minimum", &minimum,
                          "The smaller of input and other, elementwise (NaN propagates)",
                          py::arg("other"));
  def_function_and_method(m, "transpose", &transpose, "A view with dims dim0 and dim1 swapped",
                          py::arg("dim0"), py::arg("dim1"));
  def_function_and_method(m, "nonzero", &nonzero,
                          "The indices of the nonzero elements, as an (n, ndim) int64 tensor");
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

  const char* where_doc = "input where condition is true, else other (either may be a number)";
  m.def(
      "where", [](const Tensor& c, const Tensor& a, const Tensor& b) { return where(c, a, b); },
      py::arg("condition"), py::arg("input"), py::arg("other"), where_doc);
  m.def(
      "where", [](const Tensor& c, const Tensor& a, Scalar b) { return where(c, a, wrap(b)); },
      py::arg("condition"), py::arg("input"), py::arg("other"));
  m.def(
      "where", [](const Tensor& c, Scalar a, const Tensor& b) { return where(c, wrap(a), b); },
      py::arg("condition"), py::arg("input"), py::arg("other"));
  m.def(
      "where", [](const Tensor& c, Scalar a, Scalar b) { return where(c, wrap(a), wrap(b)); },
      py::arg("condition"), py::arg("input"), py::arg("other"));
  export_name(m, "where");
  m.def("result_type", &result_type, py::arg("tensor1"), py::arg("tensor2"),
        "The dtype an elementwise op of the two tensors computes in (PyTorch's promotion)");
  export_name(m, "result_type");

  // Reductions and shapes: the Python layer normalises dim/axis/keepdims and *shape varargs.
  m.def("_sum", &reduce_without_gil<&sum>, py::arg("input"), py::arg("dims"), py::arg("keepdim"));
  m.def("_mean", &reduce_without_gil<&mean>, py::arg("input"), py::arg("dims"), py::arg("keepdim"));
  m.def("_reshape", &reshape, py::arg("input"), py::arg("shape"));
  m.def("_permute", &permute, py::arg("input"), py::arg("dims"));
  m.def("_expand", &expand, py::arg("input"), py::arg("shape"));
  m.def("_to_dtype", &to_dtype, py::arg("input"), py::arg("dtype"));
  m.def("_max_all", py::overload_cast<const Tensor&>(&max));
  m.def("_min_all", py::overload_cast<const Tensor&>(&min));
  m.def("_max_dim", py::overload_cast<const Tensor&, int64_t, bool>(&max));
  m.def("_min_dim", py::overload_cast<const Tensor&, int64_t, bool>(&min));
  m.def("_std", &stddev);
  m.def("_logsumexp", &reduce_without_gil<&logsumexp>, py::arg("input"), py::arg("dims"),
        py::arg("keepdim"));
  // The other primitives under their C++ names (in-place ones take numbers wrapped as 0-d
  // tensors). Private: bprop/_tensor.py defines the public forms.
#define BPROP_BIND_PRIMITIVE(fn) m.def("_" #fn, &fn)
  // clang-format off
  BPROP_BIND_PRIMITIVE(prod); BPROP_BIND_PRIMITIVE(amax); BPROP_BIND_PRIMITIVE(amin);
  BPROP_BIND_PRIMITIVE(argmax); BPROP_BIND_PRIMITIVE(argmin); BPROP_BIND_PRIMITIVE(var);
  BPROP_BIND_PRIMITIVE(argsort);
  BPROP_BIND_PRIMITIVE(view); BPROP_BIND_PRIMITIVE(flatten); BPROP_BIND_PRIMITIVE(squeeze);
  BPROP_BIND_PRIMITIVE(unsqueeze); BPROP_BIND_PRIMITIVE(cat); BPROP_BIND_PRIMITIVE(stack);
  BPROP_BIND_PRIMITIVE(add_); BPROP_BIND_PRIMITIVE(sub_); BPROP_BIND_PRIMITIVE(mul_);
  BPROP_BIND_PRIMITIVE(div_); BPROP_BIND_PRIMITIVE(fill_); BPROP_BIND_PRIMITIVE(zero_);
  BPROP_BIND_PRIMITIVE(copy_);
  // clang-format on
#undef BPROP_BIND_PRIMITIVE
  def_function_and_method(m, "gather", &gather,
                          "out[i][j] = input[index[i][j]][j] for dim 0 (and so on for other dims)",
                          py::arg("dim"), py::arg("index"));
  def_function_and_method(m, "scatter_add", &scatter_add,
                          "A copy of input with src added at index along dim (gather's adjoint)",
                          py::arg("dim"), py::arg("index"), py::arg("src"));
  def_function_and_method(m, "index_select", &index_select,
                          "The entries of input at the int64 indices along dim", py::arg("dim"),
                          py::arg("index"));
  def_function_and_method(m, "index_add", &index_add,
                          "A copy of input with source's slices added at index along dim",
                          py::arg("dim"), py::arg("index"), py::arg("source"));

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
