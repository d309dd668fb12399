// Elementwise ops: broadcasting, type promotion, and each op's forward beside its VJP.
#include <stdexcept>
#include <string>

#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "launch/launch.h"
#include "ops/op_node.h"

namespace bprop {

// ---- broadcasting and promotion ----

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n, 1);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw std::invalid_argument(std::string("[") + op + "] shapes " + shape_to_string(a) +
                                  " and " + shape_to_string(b) + " cannot be broadcast: size " +
                                  std::to_string(da) + " != " + std::to_string(db) +
                                  " at dimension " + std::to_string(i));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// PyTorch's rule: tensors with dimensions decide the dtype, unless a 0-d tensor or a Python
// number has a higher category (bool < int < float); Python floats count as the default dtype.
struct ResultType {
  int dim = -1, zero_dim = -1, wrapped = -1;  // -1: no operand of that group yet

  void add(const Tensor& t) {
    int& slot = t.is_wrapped_scalar() ? wrapped : t.ndim() == 0 ? zero_dim : dim;
    DType dtype = t.dtype();
    if (t.is_wrapped_scalar() && is_floating(dtype)) dtype = default_dtype();
    slot = slot < 0 ? static_cast<int>(dtype) : std::max(slot, static_cast<int>(dtype));
  }
  static int combine(int higher, int lower) {
    if (higher < 0) return lower;
    if (lower < 0) return higher;
    DType h = static_cast<DType>(higher), l = static_cast<DType>(lower);
    if (dtype_category(h) == DTypeCategory::Float) return higher;
    if (h == DType::Bool || dtype_category(l) == DTypeCategory::Float)
      return std::max(higher, lower);
    return higher;
  }
  DType result() const { return static_cast<DType>(combine(combine(dim, zero_dim), wrapped)); }
};

Tensor binary_forward(const char* op, kernels::BinaryOp kernel_op, const Tensor& a, const Tensor& b,
                      DType dtype) {
  // The common case first: same shape, same dtype, contiguous; nothing to broadcast or cast.
  if (a.shape() == b.shape() && a.dtype() == dtype && b.dtype() == dtype && a.is_contiguous() &&
      b.is_contiguous()) {
    Tensor out = Tensor::empty(a.shape(), dtype);
    launch(kernels::binary, kernel_op, static_cast<int>(a.ndim()), a.shape().data(), operand(out),
           operand(a, out.strides()), operand(b, out.strides()));
    return out;
  }
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor ac = cast_for_kernel(a, dtype), bc = cast_for_kernel(b, dtype);
  Tensor out = Tensor::empty(shape, dtype);
  Shape sa = broadcast_strides(ac, shape), sb = broadcast_strides(bc, shape);
  launch(kernels::binary, kernel_op, static_cast<int>(shape.size()), shape.data(), operand(out),
         operand(ac, sa), operand(bc, sb));
  return out;
}

Tensor unary_forward(kernels::UnaryOp kernel_op, const Tensor& x, DType dtype) {
  Tensor xc = cast_for_kernel(x, dtype);
  Tensor out = Tensor::empty(x.shape(), dtype);
  launch(kernels::unary, kernel_op, static_cast<int>(x.ndim()), x.shape().data(), operand(out),
         operand(xc));
  return out;
}

// Floating ops (exp, log, ...) compute integer inputs in the default dtype, as PyTorch does.
DType floating_dtype(const Tensor& x) {
  return is_floating(x.dtype()) ? x.dtype() : default_dtype();
}

Tensor scalar(double value) { return Tensor::wrapped_scalar(Scalar(value)); }

[[noreturn]] void bool_not_supported(const char* op, const char* hint) {
  throw TypeError(std::string("[") + op + "] is not supported for bool tensors" + hint);
}

}  // namespace

DType result_type(const Tensor& a, const Tensor& b) {
  ResultType rt;
  rt.add(a);
  rt.add(b);
  return rt.result();
}

// ---- add, sub ----

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("add", kernels::BinaryOp::Add, a, b, result_type(a, b));
  if (auto node = record(OpKind::Add, {&a, &b})) set_grad_fn(out, std::move(node));
  return out;
}

std::vector<Tensor> vjp_add(OpNode& node, const Tensor& g) {
  return {node.needs_input_grad(0) ? sum_to(g, node.input(0).shape) : Tensor(),
          node.needs_input_grad(1) ? sum_to(g, node.input(1).shape) : Tensor()};
}

Tensor sub(const Tensor& a, const Tensor& b) {
  DType dtype = result_type(a, b);
  if (dtype == DType::Bool)
    bool_not_supported("sub", "; use logical operations instead of subtracting bools");
  Tensor out = binary_forward("sub", kernels::BinaryOp::Sub, a, b, dtype);
  if (auto node = record(OpKind::Sub, {&a, &b})) set_grad_fn(out, std::move(node));
  return out;
}

std::vector<Tensor> vjp_sub(OpNode& node, const Tensor& g) {
  return {node.needs_input_grad(0) ? sum_to(g, node.input(0).shape) : Tensor(),
          node.needs_input_grad(1) ? sum_to(neg(g), node.input(1).shape) : Tensor()};
}

// ---- mul, div ----

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("mul", kernels::BinaryOp::Mul, a, b, result_type(a, b));
  if (auto node = record(OpKind::Mul, {&a, &b})) {
    node->save(a);
    node->save(b);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_mul(OpNode& node, const Tensor& g) {
  Tensor a = node.saved(0), b = node.saved(1);
  return {node.needs_input_grad(0) ? sum_to(mul(g, b), node.input(0).shape) : Tensor(),
          node.needs_input_grad(1) ? sum_to(mul(g, a), node.input(1).shape) : Tensor()};
}

Tensor div(const Tensor& a, const Tensor& b) {
  DType dtype = result_type(a, b);
  if (!is_floating(dtype)) dtype = default_dtype();  // true division
  Tensor out = binary_forward("div", kernels::BinaryOp::Div, a, b, dtype);
  if (auto node = record(OpKind::Div, {&a, &b})) {
    node->save(a);
    node->save(b);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_div(OpNode& node, const Tensor& g) {
  Tensor a = node.saved(0), b = node.saved(1);
  Tensor ga, gb;
  if (node.needs_input_grad(0)) ga = sum_to(div(g, b), node.input(0).shape);
  if (node.needs_input_grad(1)) gb = sum_to(div(neg(mul(g, a)), mul(b, b)), node.input(1).shape);
  return {ga, gb};
}

// ---- neg ----

Tensor neg(const Tensor& x) {
  if (x.dtype() == DType::Bool) bool_not_supported("neg", "; use logical_not instead");
  Tensor out = unary_forward(kernels::UnaryOp::Neg, x, x.dtype());
  if (auto node = record(OpKind::Neg, {&x})) set_grad_fn(out, std::move(node));
  return out;
}

std::vector<Tensor> vjp_neg(OpNode& node, const Tensor& g) { return {neg(g)}; }

// ---- pow ----

namespace {
void check_integer_exponent(const char* op, const Tensor& exponent) {
  Tensor values = cast_for_kernel(exponent, DType::Int64).contiguous();
  const int64_t* p = values.data_as<int64_t>();
  for (int64_t i = 0; i < values.numel(); ++i)
    if (p[i] < 0)
      throw std::invalid_argument(std::string("[") + op +
                                  "] integers to negative integer powers are not allowed (got "
                                  "exponent " +
                                  std::to_string(p[i]) + ")");
}
}  // namespace

// base ** exponent with a Python-number exponent, kept in double for the VJP.
Tensor pow(const Tensor& base, Scalar exponent) {
  Tensor e = Tensor::wrapped_scalar(exponent);
  DType dtype = result_type(base, e);
  if (dtype == DType::Bool) dtype = DType::Int64;
  if (!is_floating(dtype)) check_integer_exponent("pow", e);
  Tensor out = binary_forward("pow", kernels::BinaryOp::Pow, base, e, dtype);
  if (auto node = record(OpKind::PowScalar, {&base})) {
    node->set_state(Exponent{exponent.to_double()});
    node->save(base);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

// d/dx x^e = e x^(e-1); 0 where e == 0, so that 0^0 has gradient 0 rather than 0 * inf.
std::vector<Tensor> vjp_pow_scalar(OpNode& node, const Tensor& g) {
  const double e = node.state<Exponent>().value;
  if (e == 0.0) return {zeros_like(g)};
  Tensor x = node.saved(0);
  return {mul(g, mul(pow(x, Scalar(e - 1.0)), Scalar(e)))};
}

Tensor pow(const Tensor& base, const Tensor& exponent) {
  DType dtype = result_type(base, exponent);
  if (dtype == DType::Bool) dtype = DType::Int64;
  if (!is_floating(dtype)) check_integer_exponent("pow", exponent);
  Tensor out = binary_forward("pow", kernels::BinaryOp::Pow, base, exponent, dtype);
  if (auto node = record(OpKind::Pow, {&base, &exponent})) {
    node->save(base);
    node->save(exponent);
    set_grad_fn(out, node);
    node->save_output(out);
  }
  return out;
}

// d/da a^b = b a^(b-1) (0 where b == 0); d/db a^b = a^b log(a) (0 where a == 0 and b >= 0).
std::vector<Tensor> vjp_pow(OpNode& node, const Tensor& g) {
  Tensor a = node.saved(0), b = node.saved(1), out = node.saved(2);
  Tensor ga, gb;
  if (node.needs_input_grad(0)) {
    Tensor d = mul(b, pow(a, sub(b, scalar(1.0))));
    ga = sum_to(mul(g, where(eq(b, scalar(0.0)), scalar(0.0), d)), node.input(0).shape);
  }
  if (node.needs_input_grad(1)) {
    Tensor mask = mul(eq(a, scalar(0.0)), ge(b, scalar(0.0)));  // bool and
    Tensor d = where(mask, scalar(0.0), mul(out, log(a)));
    gb = sum_to(mul(g, d), node.input(1).shape);
  }
  return {ga, gb};
}

Tensor add(const Tensor& a, Scalar b) { return add(a, Tensor::wrapped_scalar(b)); }
Tensor sub(const Tensor& a, Scalar b) { return sub(a, Tensor::wrapped_scalar(b)); }
Tensor mul(const Tensor& a, Scalar b) { return mul(a, Tensor::wrapped_scalar(b)); }
Tensor div(const Tensor& a, Scalar b) { return div(a, Tensor::wrapped_scalar(b)); }

// ---- unary functions ----

namespace {
enum class Save { Input, Output };

// The common shape of a unary op: compute, then record a node that keeps x or the output.
Tensor unary_op(OpKind kind, kernels::UnaryOp kernel_op, const Tensor& x, DType dtype, Save save) {
  Tensor out = unary_forward(kernel_op, x, dtype);
  if (auto node = record(kind, {&x})) {
    set_grad_fn(out, node);
    if (save == Save::Input)
      node->save(x);
    else
      node->save_output(out);
  }
  return out;
}
}  // namespace

Tensor exp(const Tensor& x) {
  return unary_op(OpKind::Exp, kernels::UnaryOp::Exp, x, floating_dtype(x), Save::Output);
}
std::vector<Tensor> vjp_exp(OpNode& node, const Tensor& g) { return {mul(g, node.saved(0))}; }

Tensor expm1(const Tensor& x) {
  return unary_op(OpKind::Expm1, kernels::UnaryOp::Expm1, x, floating_dtype(x), Save::Output);
}
// d expm1 = exp(x) = expm1(x) + 1, from the saved output.
std::vector<Tensor> vjp_expm1(OpNode& node, const Tensor& g) {
  return {mul(g, add(node.saved(0), scalar(1.0)))};
}

Tensor log(const Tensor& x) {
  return unary_op(OpKind::Log, kernels::UnaryOp::Log, x, floating_dtype(x), Save::Input);
}
std::vector<Tensor> vjp_log(OpNode& node, const Tensor& g) { return {div(g, node.saved(0))}; }

Tensor log1p(const Tensor& x) {
  return unary_op(OpKind::Log1p, kernels::UnaryOp::Log1p, x, floating_dtype(x), Save::Input);
}
std::vector<Tensor> vjp_log1p(OpNode& node, const Tensor& g) {
  return {div(g, add(node.saved(0), scalar(1.0)))};
}

Tensor tanh(const Tensor& x) {
  return unary_op(OpKind::Tanh, kernels::UnaryOp::Tanh, x, floating_dtype(x), Save::Output);
}
namespace {
// Plain backward (no create_graph) of a float op whose gradient and output agree in shape
// and dtype can run a fused kernel: Note [Fused backward] in autograd.h.
bool can_fuse(const Tensor& g, const Tensor& y) {
  return !is_grad_enabled() && g.shape() == y.shape() && g.dtype() == y.dtype() &&
         is_floating(g.dtype());
}

template <typename Kernel>
Tensor fused(Kernel kernel, const Tensor& g, const Tensor& y) {
  Tensor out = Tensor::empty(g.shape(), g.dtype());
  launch(kernel, static_cast<int>(g.ndim()), g.shape().data(), operand(out), operand(g),
         operand(y));
  return out;
}
}  // namespace

// d tanh = 1 - tanh^2, from the saved output (0, not NaN, where tanh saturates).
std::vector<Tensor> vjp_tanh(OpNode& node, const Tensor& g) {
  Tensor y = node.saved(0);
  if (can_fuse(g, y)) return {fused(kernels::tanh_backward, g, y)};
  return {mul(g, sub(scalar(1.0), mul(y, y)))};
}

Tensor sigmoid(const Tensor& x) {
  return unary_op(OpKind::Sigmoid, kernels::UnaryOp::Sigmoid, x, floating_dtype(x), Save::Output);
}
// d sigmoid = s (1 - s), from the saved output.
std::vector<Tensor> vjp_sigmoid(OpNode& node, const Tensor& g) {
  Tensor y = node.saved(0);
  if (can_fuse(g, y)) return {fused(kernels::sigmoid_backward, g, y)};
  return {mul(g, mul(y, sub(scalar(1.0), y)))};
}

Tensor relu(const Tensor& x) {
  if (x.dtype() == DType::Bool) bool_not_supported("relu", "");
  return unary_op(OpKind::Relu, kernels::UnaryOp::Relu, x, x.dtype(), Save::Output);
}
// Gradient 1 where the output is positive, else 0 (0 at x == 0, as PyTorch). The zero branch
// is written as y * 0 (y is 0 there) so that, as in PyTorch, the gradient stays a function of
// y: under create_graph it requires grad, and its own derivative is 0.
std::vector<Tensor> vjp_relu(OpNode& node, const Tensor& g) {
  Tensor y = node.saved(0);
  return {where(le(y, scalar(0.0)), mul(y, scalar(0.0)), g)};
}

Tensor abs(const Tensor& x) {
  if (x.dtype() == DType::Bool) bool_not_supported("abs", "");
  return unary_op(OpKind::Abs, kernels::UnaryOp::Abs, x, x.dtype(), Save::Input);
}
// g * sign(x): gradient 0 at x == 0, as PyTorch.
std::vector<Tensor> vjp_abs(OpNode& node, const Tensor& g) { return {mul(g, sign(node.saved(0)))}; }

Tensor sign(const Tensor& x) {
  if (x.dtype() == DType::Bool) return x.clone();
  Tensor out = unary_forward(kernels::UnaryOp::Sign, x, x.dtype());
  if (auto node = record(OpKind::Sign, {&x})) set_grad_fn(out, std::move(node));
  return out;
}
// Piecewise constant: the gradient is 0 (a node all the same, so that abs's gradient, which
// uses sign, is differentiable again, as in PyTorch).
std::vector<Tensor> vjp_sign(OpNode& node, const Tensor& g) { return {zeros_like(g)}; }

Tensor sqrt(const Tensor& x) {
  return unary_op(OpKind::Sqrt, kernels::UnaryOp::Sqrt, x, floating_dtype(x), Save::Output);
}
std::vector<Tensor> vjp_sqrt(OpNode& node, const Tensor& g) {
  return {div(g, mul(node.saved(0), scalar(2.0)))};
}

Tensor sin(const Tensor& x) {
  return unary_op(OpKind::Sin, kernels::UnaryOp::Sin, x, floating_dtype(x), Save::Input);
}
std::vector<Tensor> vjp_sin(OpNode& node, const Tensor& g) { return {mul(g, cos(node.saved(0)))}; }

Tensor cos(const Tensor& x) {
  return unary_op(OpKind::Cos, kernels::UnaryOp::Cos, x, floating_dtype(x), Save::Input);
}
std::vector<Tensor> vjp_cos(OpNode& node, const Tensor& g) {
  return {mul(g, neg(sin(node.saved(0))))};
}

Tensor erf(const Tensor& x) {
  return unary_op(OpKind::Erf, kernels::UnaryOp::Erf, x, floating_dtype(x), Save::Input);
}
// d erf = 2 / sqrt(pi) exp(-x^2)
std::vector<Tensor> vjp_erf(OpNode& node, const Tensor& g) {
  Tensor x = node.saved(0);
  return {mul(g, mul(exp(neg(mul(x, x))), scalar(1.1283791670955126)))};
}

// ---- maximum, minimum, clamp ----

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("maximum", kernels::BinaryOp::Maximum, a, b, result_type(a, b));
  if (auto node = record(OpKind::Maximum, {&a, &b})) {
    node->save(a);
    node->save(b);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("minimum", kernels::BinaryOp::Minimum, a, b, result_type(a, b));
  if (auto node = record(OpKind::Minimum, {&a, &b})) {
    node->save(a);
    node->save(b);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

namespace {
// PyTorch's rule for maximum/minimum: the gradient goes to the selected input, split in half
// where the two are equal (and to a NaN input, which is the one selected).
std::vector<Tensor> select_vjp(OpNode& node, const Tensor& g, bool is_max) {
  Tensor a = node.saved(0), b = node.saved(1);
  Tensor half = mul(g, scalar(0.5));
  Tensor ties = eq(a, b);
  Tensor ga, gb;
  if (node.needs_input_grad(0)) {
    Tensor loses = is_max ? lt(a, b) : gt(a, b);
    ga = sum_to(where(loses, scalar(0.0), where(ties, half, g)), node.input(0).shape);
  }
  if (node.needs_input_grad(1)) {
    Tensor loses = is_max ? lt(b, a) : gt(b, a);
    gb = sum_to(where(loses, scalar(0.0), where(ties, half, g)), node.input(1).shape);
  }
  return {ga, gb};
}
}  // namespace

std::vector<Tensor> vjp_maximum(OpNode& node, const Tensor& g) { return select_vjp(node, g, true); }
std::vector<Tensor> vjp_minimum(OpNode& node, const Tensor& g) {
  return select_vjp(node, g, false);
}

// clamp composes where(): the gradient reaches x where min <= x <= max (bounds included, as
// in PyTorch), and a tensor bound where it was selected. NaN in x stays NaN.
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max) {
  if (!min.defined() && !max.defined())
    throw std::invalid_argument("[clamp] at least one of 'min' or 'max' must not be None");
  if (x.dtype() == DType::Bool) bool_not_supported("clamp", "");
  Tensor out = x;
  if (min.defined()) out = where(lt(out, min), min, out);
  if (max.defined()) out = where(gt(out, max), max, out);
  return out;
}

Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) {
  return clamp(x, min ? Tensor::wrapped_scalar(*min) : Tensor(),
               max ? Tensor::wrapped_scalar(*max) : Tensor());
}

// ---- where ----

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  if (condition.dtype() != DType::Bool)
    throw TypeError(std::string("[where] condition must be a bool tensor, got ") +
                    dtype_name(condition.dtype()));
  Shape shape =
      broadcast_shapes(broadcast_shapes(condition.shape(), a.shape(), "where"), b.shape(), "where");
  DType dtype = result_type(a, b);
  Tensor ac = cast_for_kernel(a, dtype), bc = cast_for_kernel(b, dtype);
  Tensor out = Tensor::empty(shape, dtype);
  Shape sc = broadcast_strides(condition, shape), sa = broadcast_strides(ac, shape),
        sb = broadcast_strides(bc, shape);
  launch(kernels::where, static_cast<int>(shape.size()), shape.data(), operand(out),
         operand(condition, sc), operand(ac, sa), operand(bc, sb));
  if (auto node = record(OpKind::Where, {&condition, &a, &b})) {
    node->save(condition);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_where(OpNode& node, const Tensor& g) {
  Tensor condition = node.saved(0);
  Tensor ga, gb;
  if (node.needs_input_grad(1)) ga = sum_to(where(condition, g, scalar(0.0)), node.input(1).shape);
  if (node.needs_input_grad(2)) gb = sum_to(where(condition, scalar(0.0), g), node.input(2).shape);
  return {Tensor(), ga, gb};
}

// ---- comparisons (not differentiable) ----

namespace {
Tensor compare(const char* op, kernels::CompareOp kernel_op, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  DType dtype = result_type(a, b);
  Tensor ac = cast_for_kernel(a, dtype), bc = cast_for_kernel(b, dtype);
  Tensor out = Tensor::empty(shape, DType::Bool);
  Shape sa = broadcast_strides(ac, shape), sb = broadcast_strides(bc, shape);
  launch(kernels::compare, kernel_op, static_cast<int>(shape.size()), shape.data(), operand(out),
         operand(ac, sa), operand(bc, sb));
  return out;
}
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare("eq", kernels::CompareOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare("ne", kernels::CompareOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare("lt", kernels::CompareOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare("le", kernels::CompareOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare("gt", kernels::CompareOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare("ge", kernels::CompareOp::Ge, a, b); }

// ---- dtype conversion ----

// Always a fresh contiguous copy (clone() is to_dtype with the same dtype).
Tensor to_dtype(const Tensor& x, DType dtype) {
  Tensor out = Tensor::empty(x.shape(), dtype);
  launch(kernels::copy, static_cast<int>(x.ndim()), x.shape().data(), operand(out), operand(x));
  if (is_floating(dtype))
    if (auto node = record(OpKind::ToCopy, {&x})) set_grad_fn(out, std::move(node));
  return out;
}

// OpNode::apply converts the gradient back to the input's dtype.
std::vector<Tensor> vjp_to_dtype(OpNode& node, const Tensor& g) { return {g}; }

// ---- in place, outside autograd ----

void assign_(const Tensor& dst, const Tensor& src) {
  if (dst.shape() != src.shape())
    throw std::invalid_argument("[assign_] shapes " + dst.shape_str() + " and " + src.shape_str() +
                                " differ");
  copy_values(dst, src);
  dst.storage()->bump_version();
}

void add_scaled_(const Tensor& x, const Tensor& y, double alpha) {
  if (!is_floating(x.dtype()))
    throw TypeError(std::string("[add_] in-place update needs a floating point tensor, got ") +
                    dtype_name(x.dtype()));
  Shape shape = broadcast_shapes(x.shape(), y.shape(), "add_");
  if (shape != x.shape())
    throw std::invalid_argument("[add_] shape " + y.shape_str() +
                                " cannot be broadcast to the in-place target's shape " +
                                x.shape_str());
  Tensor yc = cast_for_kernel(y, x.dtype());
  Shape sy = broadcast_strides(yc, shape);
  launch(kernels::add_scaled, static_cast<int>(shape.size()), shape.data(), operand(x),
         operand(yc, sy), alpha);
  x.storage()->bump_version();
}

}  // namespace bprop
