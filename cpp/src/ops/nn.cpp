// Neural-network functions: unfold2d / fold2d (registry ops, each the other's VJP), and what
// composes from the primitives: convolution, pooling, softmax, losses, activations, dropout.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "launch/launch.h"
#include "ops/op_node.h"

namespace bprop {
namespace {

Tensor number(double v) { return Tensor::wrapped_scalar(Scalar(v)); }

std::string window_str(const Window2d& w) {
  return "kernel (" + std::to_string(w.kernel_h) + ", " + std::to_string(w.kernel_w) +
         "), stride (" + std::to_string(w.stride_h) + ", " + std::to_string(w.stride_w) +
         "), padding (" + std::to_string(w.padding_h) + ", " + std::to_string(w.padding_w) +
         "), dilation (" + std::to_string(w.dilation_h) + ", " + std::to_string(w.dilation_w) + ")";
}

void check_window(const char* op, const Window2d& w, const Shape& input) {
  if (w.kernel_h <= 0 || w.kernel_w <= 0 || w.stride_h <= 0 || w.stride_w <= 0 || w.padding_h < 0 ||
      w.padding_w < 0 || w.dilation_h <= 0 || w.dilation_w <= 0)
    throw std::invalid_argument(std::string("[") + op + "] invalid window: " + window_str(w));
  if (w.out_h(input[2]) <= 0 || w.out_w(input[3]) <= 0)
    throw std::invalid_argument(std::string("[") + op + "] input of shape " +
                                shape_to_string(input) + " is too small for " + window_str(w));
}

// log(1 + exp(z)) as max(z, 0) + log1p(exp(-|z|)): finite for any z. The max and |z| are
// where()s on the same condition so that their one-sided slopes at 0 add up to the true
// derivative there, sigmoid(0) = 1/2 (relu and abs would each give 0 at 0).
Tensor stable_softplus(const Tensor& z) {
  Tensor positive = gt(z, number(0.0));
  Tensor relu_z = where(positive, z, number(0.0));
  Tensor abs_z = where(positive, z, neg(z));
  return add(relu_z, log1p(exp(neg(abs_z))));
}

void require_floating(const char* op, const Tensor& x) {
  if (!is_floating(x.dtype()))
    throw TypeError(std::string("[") + op + "] needs a floating point input, got " +
                    dtype_name(x.dtype()));
}

}  // namespace

// ---- unfold2d, fold2d ----

Tensor unfold2d(const Tensor& x, const Window2d& window, double pad_value) {
  if (x.ndim() != 4)
    throw std::invalid_argument("[unfold2d] expects a (N, C, H, W) input, got shape " +
                                x.shape_str());
  require_floating("unfold2d", x);
  check_window("unfold2d", window, x.shape());
  const int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  const int64_t positions = window.out_h(h) * window.out_w(w);
  Tensor out = Tensor::empty({n, c * window.kernel_h * window.kernel_w, positions}, x.dtype());
  Tensor xc = contiguous_for_kernel(x);
  if (out.numel() > 0)
    launch(kernels::unfold2d, x.dtype(), n, c, h, w, window, xc.data(), out.data(), pad_value);
  if (auto node = record(OpKind::Unfold2d, {&x})) {
    node->set_state(window);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

// Each input element gets the sum of the gradients of the columns it was copied into.
std::vector<Tensor> vjp_unfold2d(OpNode& node, const Tensor& g) {
  return {fold2d(g, node.input(0).shape, node.state<Window2d>())};
}

Tensor fold2d(const Tensor& cols, const Shape& output_shape, const Window2d& window) {
  if (output_shape.size() != 4)
    throw std::invalid_argument("[fold2d] output shape must be (N, C, H, W), got " +
                                shape_to_string(output_shape));
  require_floating("fold2d", cols);
  check_window("fold2d", window, output_shape);
  const int64_t n = output_shape[0], c = output_shape[1], h = output_shape[2], w = output_shape[3];
  Shape expected{n, c * window.kernel_h * window.kernel_w, window.out_h(h) * window.out_w(w)};
  if (cols.shape() != expected)
    throw std::invalid_argument("[fold2d] columns of shape " + cols.shape_str() + " must be " +
                                shape_to_string(expected) + " for output " +
                                shape_to_string(output_shape));
  Tensor out = Tensor::zeros(output_shape, cols.dtype());  // fold2d accumulates into it
  Tensor cc = contiguous_for_kernel(cols);
  if (cols.numel() > 0)
    launch(kernels::fold2d, cols.dtype(), n, c, h, w, window, cc.data(), out.data());
  if (auto node = record(OpKind::Fold2d, {&cols})) {
    node->set_state(window);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_fold2d(OpNode& node, const Tensor& g) {
  return {unfold2d(g, node.state<Window2d>(), 0.0)};
}

// ---- convolution and pooling ----

namespace {
// (C, H, W) inputs are treated as a batch of one.
Tensor batched(const char* op, const Tensor& x) {
  if (x.ndim() == 3) return unsqueeze(x, 0);
  if (x.ndim() == 4) return x;
  throw std::invalid_argument(std::string("[") + op +
                              "] expects a (N, C, H, W) or (C, H, W) input, got shape " +
                              x.shape_str());
}
Tensor unbatched(const Tensor& original, const Tensor& out) {
  return original.ndim() == 3 ? squeeze(out, Dims{0}) : out;
}
}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Window2d window,
              int64_t groups) {
  Tensor x = batched("conv2d", input);
  if (weight.ndim() != 4)
    throw std::invalid_argument(
        "[conv2d] weight must be (out_channels, in_channels / groups, "
        "kh, kw), got shape " +
        weight.shape_str());
  const int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  const int64_t out_channels = weight.shape()[0];
  if (groups <= 0 || c % groups != 0 || out_channels % groups != 0 ||
      weight.shape()[1] * groups != c)
    throw std::invalid_argument("[conv2d] input shape " + input.shape_str() + ", weight shape " +
                                weight.shape_str() + " and groups=" + std::to_string(groups) +
                                " don't fit: input channels must equal weight.shape[1] * groups "
                                "and both channel counts must divide by groups");
  if (x.dtype() != weight.dtype() || (bias.defined() && bias.dtype() != x.dtype()))
    throw TypeError("[conv2d] input, weight and bias must have the same dtype");
  if (bias.defined() && (bias.ndim() != 1 || bias.shape()[0] != out_channels))
    throw std::invalid_argument("[conv2d] bias must have shape (" + std::to_string(out_channels) +
                                ",), got " + bias.shape_str());
  window.kernel_h = weight.shape()[2];
  window.kernel_w = weight.shape()[3];
  check_window("conv2d", window, x.shape());
  Tensor cols = unfold2d(x, window, 0.0);  // (N, C*kh*kw, L)
  const int64_t oh = window.out_h(h), ow = window.out_w(w);
  const int64_t per_group = c / groups * window.kernel_h * window.kernel_w;
  // (G, O/G, K) @ (N, G, K, L) -> (N, G, O/G, L): one batched product per group.
  Tensor filters = reshape(weight, {groups, out_channels / groups, per_group});
  Tensor out = matmul(filters, reshape(cols, {n, groups, per_group, oh * ow}));
  out = reshape(out, {n, out_channels, oh, ow});
  if (bias.defined()) out = add(out, reshape(bias, {1, out_channels, 1, 1}));
  return unbatched(input, out);
}

Tensor max_pool2d(const Tensor& input, Window2d window) {
  Tensor x = batched("max_pool2d", input);
  check_window("max_pool2d", window, x.shape());
  if (2 * window.padding_h > window.kernel_h || 2 * window.padding_w > window.kernel_w)
    throw std::invalid_argument(
        "[max_pool2d] padding should be at most half of the kernel size, "
        "got " +
        window_str(window));
  const int64_t n = x.shape()[0], c = x.shape()[1];
  // Padding never wins a max: it reads as -inf.
  Tensor cols = unfold2d(x, window, -std::numeric_limits<double>::infinity());
  const int64_t oh = window.out_h(x.shape()[2]), ow = window.out_w(x.shape()[3]);
  Tensor windows = reshape(cols, {n, c, window.kernel_h * window.kernel_w, oh * ow});
  Tensor out = reshape(max(windows, 2, false).first, {n, c, oh, ow});
  return unbatched(input, out);
}

Tensor avg_pool2d(const Tensor& input, Window2d window) {
  Tensor x = batched("avg_pool2d", input);
  check_window("avg_pool2d", window, x.shape());
  if (2 * window.padding_h > window.kernel_h || 2 * window.padding_w > window.kernel_w)
    throw std::invalid_argument(
        "[avg_pool2d] padding should be at most half of the kernel size, "
        "got " +
        window_str(window));
  const int64_t n = x.shape()[0], c = x.shape()[1];
  Tensor cols = unfold2d(x, window, 0.0);  // zero padding counts in the mean (PyTorch's default)
  const int64_t oh = window.out_h(x.shape()[2]), ow = window.out_w(x.shape()[3]);
  Tensor windows = reshape(cols, {n, c, window.kernel_h * window.kernel_w, oh * ow});
  Tensor out = reshape(mean(windows, {2}, false), {n, c, oh, ow});
  return unbatched(input, out);
}

// ---- softmax and losses ----

// Note [Fused softmax]
// softmax and log_softmax along the last dimension (a classifier's logits, attention scores
// written out by hand) run as one kernel each way (kernels::softmax_rows): per row the maximum
// m (even infinite, as PyTorch's: a row of -inf, or with +inf, is NaN), e^(x - m) and its sum, then
// e / sum or (x - m) - log(sum); back from the output y, y (g - sum(g y)) or g - e^y sum(g), as
// PyTorch's. Composed of eight or nine ops before, they took 2-3.7x PyTorch's time at (256, 1000)
// and (12, 4, 64, 64) on an Intel Xeon (one thread). Along another dimension they stay composed of
// ops (below). Under create_graph the VJP is built of ops from the saved output, whose own
// grad_fn is this op, so second order follows.
namespace {

Tensor fused_softmax(OpKind kind, const Tensor& x) {
  const bool log = kind == OpKind::LogSoftmax;
  const int64_t cols = x.shape().back(), rows = x.numel() / cols;
  Tensor xc = contiguous_for_kernel(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  launch(kernels::softmax_rows, x.dtype(), rows, cols, log, xc.data(), y.data());
  if (auto node = record(kind, {&x})) {
    node->set_state(AlongDim{x.ndim() - 1});
    set_grad_fn(y, node);
    node->save_output(y);
  }
  return y;
}

// The plain backward from the output y (no create_graph): one kernel; undefined otherwise.
Tensor fused_softmax_backward(const Tensor& y, const Tensor& g, bool log) {
  if (is_grad_enabled() || g.dtype() != y.dtype() || g.shape() != y.shape()) return Tensor();
  Tensor gc = contiguous_for_kernel(g), dx = Tensor::empty(y.shape(), y.dtype());
  launch(kernels::softmax_rows_backward, y.dtype(), y.numel() / y.shape().back(), y.shape().back(),
         log, y.data(), gc.data(), dx.data());
  return dx;
}

// dims: the one normalised dim, or none for a 0-d input
bool along_last_dim(const Tensor& x, const Dims& dims) {
  return !dims.empty() && dims[0] == x.ndim() - 1;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor xf = is_floating(x.dtype()) ? x : to_dtype(x, default_dtype());
  Dims dims;
  if (x.ndim() > 0) dims.push_back(normalize_dim(dim, x.ndim(), "softmax"));
  if (xf.numel() == 0) return xf.clone();  // nothing to reduce (amax refuses an empty dim)
  if (along_last_dim(xf, dims)) return fused_softmax(OpKind::Softmax, xf);
  Tensor m = amax(xf.detach(), dims, /*keepdim=*/true);
  Tensor e = exp(sub(xf, m));
  return div(e, sum(e, dims, /*keepdim=*/true));
}

std::vector<Tensor> vjp_softmax(OpNode& node, const Tensor& g) {
  Tensor y = node.saved(0);
  if (Tensor dx = fused_softmax_backward(y, g, false); dx.defined()) return {dx};
  const Dims dims{node.state<AlongDim>().dim};
  return {mul(y, sub(g, sum(mul(g, y), dims, /*keepdim=*/true)))};
}

// (x - m) - log(sum(exp(x - m))) with m = max(x) held constant: subtracting m first keeps
// float32 precision for large logits (x - logsumexp(x) would lose it in the rounding of m).
Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor xf = is_floating(x.dtype()) ? x : to_dtype(x, default_dtype());
  Dims dims;
  if (x.ndim() > 0) dims.push_back(normalize_dim(dim, x.ndim(), "log_softmax"));
  if (xf.numel() == 0) return xf.clone();  // nothing to reduce (amax refuses an empty dim)
  if (along_last_dim(xf, dims)) return fused_softmax(OpKind::LogSoftmax, xf);
  Tensor m = amax(xf.detach(), dims, /*keepdim=*/true);
  Tensor shifted = sub(xf, m);
  return sub(shifted, log(sum(exp(shifted), dims, /*keepdim=*/true)));
}

std::vector<Tensor> vjp_log_softmax(OpNode& node, const Tensor& g) {
  Tensor y = node.saved(0);
  if (Tensor dx = fused_softmax_backward(y, g, true); dx.defined()) return {dx};
  const Dims dims{node.state<AlongDim>().dim};
  return {sub(g, mul(exp(y), sum(g, dims, /*keepdim=*/true)))};
}

namespace {

Tensor reduce_loss(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::None:
      return loss;
    case Reduction::Sum:
      return sum(loss);
    case Reduction::Mean:
      return mean(loss);
  }
  return loss;
}

// The class dimension of (N, C, ...) inputs is 1; of a (C,) input, 0.
int64_t class_dim(const Tensor& input) { return input.ndim() == 1 ? 0 : 1; }

struct Targets {
  Tensor valid;   // bool: target != ignore_index
  Tensor safe;    // int64: the target, 0 where ignored (so it can index)
  Tensor weight;  // per element: weight[target] (1 without weights), 0 where ignored
};

Targets check_targets(const char* op, const Tensor& input, const Tensor& target,
                      const Tensor& weight, int64_t ignore_index) {
  if (target.dtype() != DType::Int64)
    throw TypeError(std::string("[") + op + "] class targets must be int64, got " +
                    dtype_name(target.dtype()));
  if (input.ndim() < 1)
    throw std::invalid_argument(std::string("[") + op + "] input must have a class dimension");
  const int64_t cdim = class_dim(input);
  const int64_t classes = input.shape()[static_cast<size_t>(cdim)];
  Shape expected = input.shape();
  expected.erase(static_cast<size_t>(cdim));
  if (target.shape() != expected)
    throw std::invalid_argument(std::string("[") + op + "] target shape " + target.shape_str() +
                                " does not match input shape " + input.shape_str() + " (expected " +
                                shape_to_string(expected) + ")");
  if (weight.defined() && (weight.ndim() != 1 || weight.shape()[0] != classes))
    throw std::invalid_argument(std::string("[") + op + "] weight must have shape (" +
                                std::to_string(classes) + ",), got " + weight.shape_str());
  NoGradGuard no_grad;
  Targets t;
  t.valid = ne(target, Tensor::wrapped_scalar(Scalar(ignore_index)));
  t.safe = where(t.valid, target, Tensor::wrapped_scalar(Scalar(int64_t{0})));
  Tensor flat = contiguous_for_kernel(t.safe);
  auto check = [op, flat, classes] {
    const int64_t* p = flat.data_as<int64_t>();
    for (int64_t i = 0; i < flat.numel(); ++i)
      if (p[i] < 0 || p[i] >= classes)
        throw std::out_of_range(std::string("[") + op + "] target " + std::to_string(p[i]) +
                                " is out of bounds for " + std::to_string(classes) + " classes");
  };
  if (tape::Recording rec; rec)
    rec.push_host("check_targets", check);  // targets are data: check every replay
  check();
  return t;
}

// Per-element weights weight[target] (zero where ignored), as a graph on `weight`.
Tensor target_weights(const Targets& t, const Tensor& weight, DType dtype) {
  Tensor valid = to_dtype(t.valid, dtype);
  if (!weight.defined()) return valid;
  Tensor picked =
      reshape(index_select(weight, 0, reshape(t.safe, {t.safe.numel()})), t.safe.shape());
  return mul(picked, valid);
}

}  // namespace

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight,
                Reduction reduction, int64_t ignore_index) {
  require_floating("nll_loss", log_probs);
  Targets t = check_targets("nll_loss", log_probs, target, weight, ignore_index);
  const int64_t cdim = class_dim(log_probs);
  Tensor picked = squeeze(gather(log_probs, cdim, unsqueeze(t.safe, cdim)), Dims{cdim});
  Tensor w = target_weights(t, weight, log_probs.dtype());
  Tensor loss = neg(mul(picked, w));
  if (reduction == Reduction::Mean) return div(sum(loss), sum(w));  // PyTorch's weighted mean
  return reduce_loss(loss, reduction);
}

namespace {

// Note [Fused cross_entropy]
// (N, C) logits against class indices, without class weights or label smoothing (what a
// language model's loss is): one pass forward keeping each row's log-sum-exp, one pass back,
// softmax - one-hot scaled by the output gradient (kernels::cross_entropy_*). Under
// create_graph the VJP is built of ops (softmax from the input), so second order follows.
Tensor fused_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction,
                           int64_t ignore_index) {
  check_targets("cross_entropy", input, target, Tensor(), ignore_index);
  const int64_t rows = input.shape()[0], classes = input.shape()[1];
  Tensor xc = contiguous_for_kernel(input), tc = contiguous_for_kernel(target);
  Tensor out = reduction == Reduction::None ? Tensor::empty({rows}, input.dtype())
                                            : Tensor::empty({}, input.dtype());
  Tensor lse = Tensor::empty({rows}, input.dtype());
  launch(kernels::cross_entropy_forward, input.dtype(), rows, classes, static_cast<int>(reduction),
         xc.data(), tc.data(), ignore_index, out.data(), lse.data());
  if (auto node = record(OpKind::CrossEntropy, {&input})) {
    node->set_state(ClassTargets{ignore_index, reduction});
    node->save(input);
    node->save(target);
    node->save(lse);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

}  // namespace

std::vector<Tensor> vjp_cross_entropy(OpNode& node, const Tensor& g) {
  const ClassTargets& s = node.state<ClassTargets>();
  Tensor input = node.saved(0), target = node.saved(1), lse = node.saved(2);
  const int64_t rows = input.shape()[0], classes = input.shape()[1];
  if (!is_grad_enabled() && g.dtype() == input.dtype()) {
    Tensor xc = contiguous_for_kernel(input), tc = contiguous_for_kernel(target),
           gc = contiguous_for_kernel(g);
    Tensor dx = Tensor::empty(input.shape(), input.dtype());
    launch(kernels::cross_entropy_backward, input.dtype(), rows, classes,
           static_cast<int>(s.reduction), xc.data(), tc.data(), s.ignore_index, lse.data(),
           gc.data(), dx.data());
    return {dx};
  }
  Tensor one_hot = to_dtype(eq(unsqueeze(target, 1), arange(Scalar(int64_t{0}), Scalar(classes),
                                                            Scalar(int64_t{1}), DType::Int64)),
                            input.dtype());
  Tensor valid =
      to_dtype(ne(target, Tensor::wrapped_scalar(Scalar(s.ignore_index))), input.dtype());
  Tensor per_row = mul(sub(softmax(input, 1), one_hot), unsqueeze(valid, 1));
  switch (s.reduction) {
    case Reduction::None:
      return {mul(per_row, unsqueeze(g, 1))};
    case Reduction::Sum:
      return {mul(per_row, g)};
    case Reduction::Mean:
      // Every target ignored: the rows are all 0, and so is the gradient (not 0 * inf).
      return {mul(per_row, div(g, maximum(sum(valid), number(1.0))))};
  }
  return {};
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                     Reduction reduction, int64_t ignore_index, double label_smoothing) {
  require_floating("cross_entropy", input);
  if (label_smoothing < 0.0 || label_smoothing > 1.0)
    throw std::invalid_argument(
        "[cross_entropy] label_smoothing must be between 0.0 and 1.0, "
        "got " +
        std::to_string(label_smoothing));
  if (input.ndim() == 2 && target.dtype() == DType::Int64 && !weight.defined() &&
      label_smoothing == 0.0 && input.shape()[1] > 0)
    return fused_cross_entropy(input, target, reduction, ignore_index);
  const int64_t cdim = class_dim(input);
  const int64_t classes = input.ndim() > 0 ? input.shape()[static_cast<size_t>(cdim)] : 0;
  Tensor log_probs = log_softmax(input, cdim);
  if (is_floating(target.dtype())) {
    // Class probabilities: -sum(weight * p * log q) over classes, mean over the rest.
    if (target.shape() != input.shape())
      throw std::invalid_argument(
          "[cross_entropy] probability targets must have the input's "
          "shape " +
          input.shape_str() + ", got " + target.shape_str());
    Tensor p = label_smoothing > 0 ? add(mul(target, number(1.0 - label_smoothing)),
                                         number(label_smoothing / static_cast<double>(classes)))
                                   : target;
    Tensor terms = mul(log_probs, p);
    if (weight.defined()) {
      Shape shape(static_cast<size_t>(input.ndim()), 1);
      shape[static_cast<size_t>(cdim)] = classes;
      terms = mul(terms, reshape(weight, shape));
    }
    Tensor loss = neg(sum(terms, {cdim}));
    if (reduction == Reduction::Mean)
      return div(sum(loss),
                 number(static_cast<double>(input.numel() / std::max<int64_t>(classes, 1))));
    return reduce_loss(loss, reduction);
  }
  Tensor nll = nll_loss(log_probs, target, weight, reduction, ignore_index);
  if (label_smoothing == 0.0) return nll;
  // PyTorch's label smoothing: (1 - e) nll + e / C * (the loss against a uniform target).
  Targets t = check_targets("cross_entropy", input, target, weight, ignore_index);
  Tensor terms = log_probs;
  if (weight.defined()) {
    Shape shape(static_cast<size_t>(input.ndim()), 1);
    shape[static_cast<size_t>(cdim)] = classes;
    terms = mul(terms, reshape(weight, shape));
  }
  Tensor smooth = mul(neg(sum(terms, {cdim})), to_dtype(t.valid, input.dtype()));
  Tensor smooth_loss;
  if (reduction == Reduction::Mean)
    smooth_loss = div(sum(smooth), sum(target_weights(t, weight, input.dtype())));
  else
    smooth_loss = reduce_loss(smooth, reduction);
  return add(mul(nll, number(1.0 - label_smoothing)),
             mul(smooth_loss, number(label_smoothing / static_cast<double>(classes))));
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  Tensor d = sub(input, target);
  return reduce_loss(mul(d, d), reduction);
}

// (1 - y) x + softplus(-x), i.e. max(x, 0) - x y + log(1 + exp(-|x|)): finite for any logit.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight, Reduction reduction,
                                        const Tensor& pos_weight) {
  require_floating("binary_cross_entropy_with_logits", input);
  if (target.shape() != input.shape())
    throw std::invalid_argument("[binary_cross_entropy_with_logits] target shape " +
                                target.shape_str() + " must match input shape " +
                                input.shape_str());
  Tensor softplus_neg = stable_softplus(neg(input));
  Tensor loss;
  if (pos_weight.defined()) {
    Tensor log_weight = add(mul(sub(pos_weight, number(1.0)), target), number(1.0));
    loss = add(mul(sub(number(1.0), target), input), mul(log_weight, softplus_neg));
  } else {
    loss = add(mul(sub(number(1.0), target), input), softplus_neg);
  }
  if (weight.defined()) loss = mul(loss, weight);
  return reduce_loss(loss, reduction);
}

// ---- layers and activations ----

Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  Tensor out = matmul(input, transpose(weight, 0, weight.ndim() > 1 ? 1 : 0));
  return bias.defined() ? add(out, bias) : out;
}

// ---- scaled_dot_product_attention ----

namespace {

// The query rows' visible keys under is_causal: j <= i (PyTorch's top-left aligned tril).
Tensor causal_mask(int64_t L, int64_t S) {
  Tensor rows =
      reshape(arange(Scalar(int64_t{0}), Scalar(L), Scalar(int64_t{1}), DType::Int64), {L, 1});
  return ge(rows, arange(Scalar(int64_t{0}), Scalar(S), Scalar(int64_t{1}), DType::Int64));
}

int64_t batch_count(const Tensor& t) {
  int64_t count = 1;
  for (int64_t i = 0; i + 2 < t.ndim(); ++i) count *= t.shape()[i];
  return count;
}

// How many problems of an attention tensor (..., R, C) share an outer index: its dimension -3
// (the heads), or 1.
int64_t attention_heads(const Tensor& t) { return t.ndim() >= 3 ? t.shape()[t.ndim() - 3] : 1; }

// Where the kernel finds t's problems (kernels::AttentionLayout), when t's rows have contiguous
// values and its dimensions before the heads collapse into one stride; nothing otherwise.
std::optional<kernels::AttentionStrides> attention_strides(const Tensor& t) {
  const int64_t nd = t.ndim();
  const Shape& shape = t.shape();
  const Shape& strides = t.strides();
  if (shape[nd - 1] > 1 && strides[nd - 1] != 1) return std::nullopt;
  kernels::AttentionStrides at{0, 0, shape[nd - 2] > 1 ? strides[nd - 2] : 0};
  if (nd >= 3 && shape[nd - 3] > 1) at.inner = strides[nd - 3];
  bool found = false;  // the innermost outer dimension of size > 1 sets the stride
  for (int64_t d = nd - 4; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (!found) {
      at.outer = strides[d];
      found = true;
      continue;
    }
    int64_t below = d + 1;  // the next outer dimension of size > 1
    while (shape[below] == 1) ++below;
    if (strides[d] != strides[below] * shape[below]) return std::nullopt;
  }
  return at;
}

// t itself when the kernel can read it in place, else a contiguous copy; and its layout.
std::pair<Tensor, kernels::AttentionStrides> attention_operand(const Tensor& t) {
  if (auto at = attention_strides(t)) return {t, *at};
  Tensor c = contiguous_for_kernel(t);
  return {c, *attention_strides(c)};
}

// A new tensor of `shape` (..., H, R, C) for an attention output or gradient: for a 4-d one
// whose model tensor `like` interleaves its heads within rows (a (B, H, T, D) view of a
// (B, T, H, D) buffer, as the heads split off a projection are), the same layout, so that the
// transpose and view back to (B, T, H D) are free, as in PyTorch's CPU kernel; else contiguous.
Tensor attention_result(const Shape& shape, DType dtype, const Tensor& like) {
  if (shape.size() != 4 || like.is_contiguous()) return Tensor::empty(shape, dtype);
  const auto at = attention_strides(like);
  if (!at || at->inner >= at->row) return Tensor::empty(shape, dtype);
  Tensor memory = Tensor::empty({shape[0], shape[2], shape[1], shape[3]}, dtype);
  const int64_t H = shape[1], C = shape[3];
  return Tensor::view_of(memory.storage(), shape, {shape[2] * H * C, C, H * C, 1}, 0, dtype);
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    bool is_causal, double scale) {
  const char* op = "scaled_dot_product_attention";
  require_floating(op, q);
  if (q.ndim() < 2 || k.ndim() != q.ndim() || v.ndim() != q.ndim() ||
      q.shape()[q.ndim() - 1] != k.shape()[k.ndim() - 1] ||
      k.shape()[k.ndim() - 2] != v.shape()[v.ndim() - 2] ||
      !std::equal(q.shape().begin(), q.shape().end() - 2, k.shape().begin()) ||
      !std::equal(q.shape().begin(), q.shape().end() - 2, v.shape().begin()))
    throw std::runtime_error(std::string("[") + op + "] shapes query " + q.shape_str() + ", key " +
                             k.shape_str() + ", value " + v.shape_str() +
                             " do not fit (..., L, E), (..., S, E), (..., S, Ev)");
  if (k.dtype() != q.dtype() || v.dtype() != q.dtype())
    throw TypeError(std::string("[") + op + "] query, key and value must have one dtype, got " +
                    dtype_name(q.dtype()) + ", " + dtype_name(k.dtype()) + ", " +
                    dtype_name(v.dtype()));
  const int64_t L = q.shape()[q.ndim() - 2], E = q.shape()[q.ndim() - 1];
  const int64_t S = k.shape()[k.ndim() - 2], Ev = v.shape()[v.ndim() - 1];
  const int64_t batch = batch_count(q);
  Shape out_shape = q.shape();
  out_shape.back() = Ev;
  Shape lse_shape(q.shape().begin(), q.shape().end() - 1);
  const auto [qc, q_at] = attention_operand(q);
  const auto [kc, k_at] = attention_operand(k);
  const auto [vc, v_at] = attention_operand(v);
  Tensor out = attention_result(out_shape, q.dtype(), q);
  Tensor lse = Tensor::empty(lse_shape, q.dtype());
  kernels::AttentionLayout layout{};
  layout.heads = attention_heads(q);
  layout.q = q_at;
  layout.k = k_at;
  layout.v = v_at;
  layout.out = *attention_strides(out);
  // Also when Ev = 0 (an empty output): the backward needs each row's log-sum-exp.
  if (batch * L > 0)
    launch(kernels::attention_forward, q.dtype(), batch, L, S, E, Ev, scale, is_causal, layout,
           qc.data(), kc.data(), vc.data(), out.data(), lse.data());
  if (auto node = record(OpKind::ScaledDotProductAttention, {&q, &k, &v})) {
    node->set_state(AttentionState{scale, is_causal});
    node->save(q);
    node->save(k);
    node->save(v);
    node->save(lse);
    set_grad_fn(out, node);
    node->save_output(out);
  }
  return out;
}

// Note [Attention backward]
// With P = softmax(Q K^T scale) (masked), O = P V: dV = P^T dO, dS = P (dO V^T - rowsum(dO O))
// scale, dQ = dS K, dK = dS^T Q. A plain backward recomputes P tile by tile from the saved
// log-sum-exp (kernels::attention_backward); under create_graph the same formulas are built of
// ops, P recomputed from q and k, so that second derivatives follow.
std::vector<Tensor> vjp_scaled_dot_product_attention(OpNode& node, const Tensor& g) {
  const AttentionState& s = node.state<AttentionState>();
  Tensor q = node.saved(0), k = node.saved(1), v = node.saved(2), lse = node.saved(3),
         out = node.saved(4);
  const int64_t L = q.shape()[q.ndim() - 2], E = q.shape()[q.ndim() - 1];
  const int64_t S = k.shape()[k.ndim() - 2], Ev = v.shape()[v.ndim() - 1];
  if (!is_grad_enabled() && g.dtype() == q.dtype() && g.shape() == out.shape()) {
    const auto [qc, q_at] = attention_operand(q);
    const auto [kc, k_at] = attention_operand(k);
    const auto [vc, v_at] = attention_operand(v);
    const auto [outc, out_at] = attention_operand(out);
    const auto [gc, g_at] = attention_operand(g);
    Tensor dq = attention_result(q.shape(), q.dtype(), q),
           dk = attention_result(k.shape(), k.dtype(), k),
           dv = attention_result(v.shape(), v.dtype(), v);
    kernels::AttentionLayout layout{attention_heads(q),
                                    q_at,
                                    k_at,
                                    v_at,
                                    out_at,
                                    g_at,
                                    *attention_strides(dq),
                                    *attention_strides(dk),
                                    *attention_strides(dv)};
    if (q.numel() + k.numel() + v.numel() > 0)
      launch(kernels::attention_backward, q.dtype(), batch_count(q), L, S, E, Ev, s.scale, s.causal,
             layout, qc.data(), kc.data(), vc.data(), outc.data(), lse.data(), gc.data(), dq.data(),
             dk.data(), dv.data());
    return {dq, dk, dv};
  }
  Tensor scores = mul(matmul(q, transpose(k, -2, -1)), number(s.scale));
  if (s.causal)
    scores = where(causal_mask(L, S), scores, number(-std::numeric_limits<double>::infinity()));
  Tensor p = softmax(scores, -1);
  Tensor dp = matmul(g, transpose(v, -2, -1));
  Tensor ds = mul(mul(p, sub(dp, sum(mul(dp, p), {-1}, true))), number(s.scale));
  return {matmul(ds, k), matmul(transpose(ds, -2, -1), q), matmul(transpose(p, -2, -1), g)};
}

// ---- layer_norm, rms_norm ----

namespace {

// The shape a normalisation's weight and bias have: x's last `ndim` dimensions.
Shape normalized_shape(const Tensor& x, int64_t ndim) {
  return Shape(x.shape().end() - ndim, x.shape().end());
}

void check_norm_parameter(const char* op, const char* what, const Tensor& p, const Tensor& x,
                          int64_t ndim) {
  if (!p.defined()) return;
  if (p.shape() != normalized_shape(x, ndim))
    throw std::runtime_error(std::string("[") + op + "] " + what + " of shape " + p.shape_str() +
                             " does not match the normalized shape " +
                             shape_to_string(normalized_shape(x, ndim)) + " of an input of shape " +
                             x.shape_str());
  if (!is_floating(p.dtype()))
    throw TypeError(std::string("[") + op + "] " + what + " must be floating point, got " +
                    dtype_name(p.dtype()));
}

Tensor normalize(OpKind kind, const Tensor& x, int64_t ndim, const Tensor& weight,
                 const Tensor& bias, double eps) {
  const bool rms = kind == OpKind::RmsNorm;
  const char* op = rms ? "rms_norm" : "layer_norm";
  require_floating(op, x);
  if (ndim < 1 || ndim > x.ndim())
    throw std::runtime_error(std::string("[") + op + "] cannot normalize the last " +
                             std::to_string(ndim) + " dimensions of an input of shape " +
                             x.shape_str());
  check_norm_parameter(op, "weight", weight, x, ndim);
  check_norm_parameter(op, "bias", bias, x, ndim);
  const Shape inner = normalized_shape(x, ndim);
  int64_t d = 1;
  for (int64_t size : inner) d *= size;
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  const DType dtype = x.dtype();
  Tensor xc = contiguous_for_kernel(x);
  Tensor wc = weight.defined() ? contiguous_for_kernel(cast_for_kernel(weight, dtype)) : Tensor();
  Tensor bc = bias.defined() ? contiguous_for_kernel(cast_for_kernel(bias, dtype)) : Tensor();
  Tensor y = Tensor::empty(x.shape(), dtype);
  Tensor mean = Tensor::empty({rows}, dtype);
  Tensor rstd = Tensor::empty({rows}, dtype);
  if (rows > 0)
    launch(kernels::norm_rows, dtype, rows, d, rms, eps, xc.data(),
           wc.defined() ? wc.data() : nullptr, bc.defined() ? bc.data() : nullptr, y.data(),
           mean.data(), rstd.data());
  std::vector<const Tensor*> inputs = {&x};
  if (weight.defined()) inputs.push_back(&weight);
  if (bias.defined()) inputs.push_back(&bias);
  if (auto node = record(kind, inputs.data(), inputs.size())) {
    node->set_state(Normalization{ndim, eps, weight.defined(), bias.defined()});
    node->save(x);
    if (weight.defined()) node->save(weight);
    node->save(mean);
    node->save(rstd);
    set_grad_fn(y, std::move(node));
  }
  return y;
}

// Note [Normalisation backward]
// With xhat = (x - mean) rstd and dxhat = g w: dx = rstd (dxhat - mean(dxhat) - xhat
// mean(dxhat xhat)) (rms: mean 0 and no mean(dxhat) term), dw = sum of g xhat and db = sum of
// g over the leading dimensions. A plain backward runs that in the norm kernels from the saved
// statistics; under create_graph it is built of ops from x itself, so that the statistics'
// own dependence on x is differentiated too.
std::vector<Tensor> vjp_normalize(OpNode& node, const Tensor& g, bool rms) {
  const Normalization& s = node.state<Normalization>();
  size_t next = 0;
  Tensor x = node.saved(next++);
  Tensor weight = s.has_weight ? node.saved(next++) : Tensor();
  const size_t weight_slot = 1, bias_slot = s.has_weight ? 2 : 1;
  const bool want_x = node.needs_input_grad(0);
  const bool want_w = s.has_weight && node.needs_input_grad(weight_slot);
  const bool want_b = s.has_bias && node.needs_input_grad(bias_slot);
  const Shape inner = normalized_shape(x, s.ndim);
  std::vector<Tensor> grads(1 + s.has_weight + s.has_bias);
  if (!is_grad_enabled() && g.dtype() == x.dtype() && g.shape() == x.shape()) {
    Tensor mean = node.saved(next++), rstd = node.saved(next++);
    const int64_t rows = mean.numel();
    int64_t d = 1;
    for (int64_t size : inner) d *= size;
    const DType dtype = x.dtype();
    Tensor xc = contiguous_for_kernel(x), gc = contiguous_for_kernel(g);
    Tensor wc = weight.defined() ? contiguous_for_kernel(cast_for_kernel(weight, dtype)) : Tensor();
    if (want_x) grads[0] = Tensor::empty(x.shape(), dtype);
    if (want_w) grads[weight_slot] = Tensor::empty(inner, dtype);
    if (want_b) grads[bias_slot] = Tensor::empty(inner, dtype);
    auto data_of = [](const Tensor& t) { return t.defined() ? t.data() : nullptr; };
    if (want_x || want_w || want_b)
      launch(kernels::norm_backward, dtype, rows, d, rms, xc.data(), data_of(wc), mean.data(),
             rstd.data(), gc.data(), want_x ? grads[0].data() : nullptr,
             want_w ? grads[weight_slot].data() : nullptr,
             want_b ? grads[bias_slot].data() : nullptr);
    return grads;
  }
  Dims dims;
  for (int64_t i = x.ndim() - s.ndim; i < x.ndim(); ++i) dims.push_back(i);
  Tensor centered = rms ? x : sub(x, mean(x, dims, true));
  Tensor rstd =
      div(number(1.0), sqrt(add(mean(mul(centered, centered), dims, true), number(s.eps))));
  Tensor xhat = mul(centered, rstd);
  Tensor dxhat = weight.defined() ? mul(g, weight) : g;
  if (want_x) {
    Tensor inner_term = mul(xhat, mean(mul(dxhat, xhat), dims, true));
    Tensor centered_dxhat = rms ? dxhat : sub(dxhat, mean(dxhat, dims, true));
    grads[0] = mul(sub(centered_dxhat, inner_term), rstd);
  }
  if (want_w) grads[weight_slot] = sum_to(mul(g, xhat), inner);
  if (want_b) grads[bias_slot] = sum_to(g, inner);
  return grads;
}

}  // namespace

Tensor layer_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight,
                  const Tensor& bias, double eps) {
  return normalize(OpKind::LayerNorm, x, normalized_ndim, weight, bias, eps);
}
std::vector<Tensor> vjp_layer_norm(OpNode& node, const Tensor& g) {
  return vjp_normalize(node, g, false);
}

Tensor rms_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight, double eps) {
  return normalize(OpKind::RmsNorm, x, normalized_ndim, weight, Tensor(), eps);
}
std::vector<Tensor> vjp_rms_norm(OpNode& node, const Tensor& g) {
  return vjp_normalize(node, g, true);
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return where(gt(x, number(0.0)), x, mul(x, number(negative_slope)));
}

// One pass forward (kernels::gelu), which also keeps the slope gelu'(x) when there will be a
// backward (Note [gelu's saved slope] in vector_kernels.inc); the backward is g times it. Under
// create_graph the VJP is built of ops: d gelu = Phi(x) + x phi(x), or for the tanh form
// (1 + t) / 2 + x (1 - t^2) u' / 2 with t = tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3).
Tensor gelu(const Tensor& x, bool tanh_approximation) {
  require_floating("gelu", x);
  Tensor xc = contiguous_for_kernel(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  std::shared_ptr<OpNode> node = record(OpKind::Gelu, {&x});
  Tensor slope = node ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
  if (x.numel() > 0)
    launch(kernels::gelu, x.dtype(), x.numel(), tanh_approximation, xc.data(), y.data(),
           node ? slope.data() : nullptr);
  if (node) {
    node->set_state(GeluForm{tanh_approximation});
    node->save(x);
    node->save(slope);
    set_grad_fn(y, std::move(node));
  }
  return y;
}

std::vector<Tensor> vjp_gelu(OpNode& node, const Tensor& g) {
  const bool tanh_form = node.state<GeluForm>().tanh;
  Tensor x = node.saved(0);
  if (!is_grad_enabled() && g.dtype() == x.dtype() && g.shape() == x.shape())
    return {mul(g, node.saved(1))};
  if (!tanh_form) {
    Tensor cdf = mul(add(erf(mul(x, number(0.7071067811865476))), number(1.0)), number(0.5));
    Tensor density = mul(exp(mul(mul(x, x), number(-0.5))), number(0.3989422804014327));
    return {mul(g, add(cdf, mul(x, density)))};
  }
  Tensor x2 = mul(x, x);
  Tensor t = tanh(mul(add(x, mul(mul(x2, x), number(0.044715))), number(0.7978845608028654)));
  Tensor du = mul(add(mul(x2, number(3.0 * 0.044715)), number(1.0)), number(0.7978845608028654));
  Tensor slope = add(mul(add(t, number(1.0)), number(0.5)),
                     mul(mul(mul(x, number(0.5)), sub(number(1.0), mul(t, t))), du));
  return {mul(g, slope)};
}

// log(1 + exp(beta x)) / beta, linear above the threshold; neither branch overflows, so no
// NaN reaches the gradient.
Tensor softplus(const Tensor& x, double beta, double threshold) {
  Tensor bx = mul(x, number(beta));
  Tensor smooth = div(stable_softplus(bx), number(beta));
  return where(gt(bx, number(threshold)), x, smooth);
}

Tensor dropout(const Tensor& x, double p, bool training) {
  if (p < 0.0 || p > 1.0)
    throw std::invalid_argument("[dropout] probability has to be between 0 and 1, but got " +
                                std::to_string(p));
  if (!training || p == 0.0) return x;
  if (p == 1.0) return mul(x, number(0.0));
  Tensor keep =
      ge(rand(x.shape(), is_floating(x.dtype()) ? x.dtype() : default_dtype()), number(p));
  return mul(x, where(keep, number(1.0 / (1.0 - p)), number(0.0)));
}

}  // namespace bprop
