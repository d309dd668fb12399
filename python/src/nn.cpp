// bprop.nn.functional's C++ side. The Python layer parses PyTorch's argument forms
// (ints or pairs, reduction strings) into these explicit arguments.
#include "bindings.h"
#include "new_instance.h"

namespace bprop::python {
namespace {
Tensor or_undefined(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }

Window2d window(std::pair<int64_t, int64_t> kernel, std::pair<int64_t, int64_t> stride,
                std::pair<int64_t, int64_t> padding, std::pair<int64_t, int64_t> dilation) {
  return {kernel.first,  kernel.second,  stride.first,   stride.second,
          padding.first, padding.second, dilation.first, dilation.second};
}
}  // namespace

void init_nn(py::module_& m) {
  const auto no_gil = py::call_guard<py::gil_scoped_release>();  // see bindings.h

  py::enum_<Reduction> reduction(m, "Reduction");
  reduction.value("none", Reduction::None)
      .value("mean", Reduction::Mean)
      .value("sum", Reduction::Sum);
  enum_members_only(reduction);  // Note [objects made without __init__] in new_instance.h

  m.def(
      "_conv2d",
      [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& b,
         std::pair<int64_t, int64_t> stride, std::pair<int64_t, int64_t> padding,
         std::pair<int64_t, int64_t> dilation, int64_t groups) {
        return conv2d(x, w, or_undefined(b), window({1, 1}, stride, padding, dilation), groups);
      },
      no_gil);
  m.def(
      "_max_pool2d",
      [](const Tensor& x, std::pair<int64_t, int64_t> kernel, std::pair<int64_t, int64_t> stride,
         std::pair<int64_t, int64_t> padding, std::pair<int64_t, int64_t> dilation) {
        return max_pool2d(x, window(kernel, stride, padding, dilation));
      },
      no_gil);
  m.def(
      "_avg_pool2d",
      [](const Tensor& x, std::pair<int64_t, int64_t> kernel, std::pair<int64_t, int64_t> stride,
         std::pair<int64_t, int64_t> padding) {
        return avg_pool2d(x, window(kernel, stride, padding, {1, 1}));
      },
      no_gil);
  m.def(
      "_unfold2d",
      [](const Tensor& x, std::pair<int64_t, int64_t> kernel, std::pair<int64_t, int64_t> stride,
         std::pair<int64_t, int64_t> padding, std::pair<int64_t, int64_t> dilation,
         double pad_value) {
        return unfold2d(x, window(kernel, stride, padding, dilation), pad_value);
      },
      no_gil);
  m.def(
      "_fold2d",
      [](const Tensor& cols, const Shape& output_shape, std::pair<int64_t, int64_t> kernel,
         std::pair<int64_t, int64_t> stride, std::pair<int64_t, int64_t> padding,
         std::pair<int64_t, int64_t> dilation) {
        return fold2d(cols, output_shape, window(kernel, stride, padding, dilation));
      },
      no_gil);
  m.def("_softmax", [](const Tensor& x, int64_t dim) {
    return without_gil_if_large(x, [&] { return softmax(x, dim); });
  });
  m.def("_log_softmax", [](const Tensor& x, int64_t dim) {
    return without_gil_if_large(x, [&] { return log_softmax(x, dim); });
  });
  m.def("_nll_loss",
        [](const Tensor& x, const Tensor& t, const std::optional<Tensor>& w, Reduction r,
           int64_t ignore_index) { return nll_loss(x, t, or_undefined(w), r, ignore_index); });
  m.def("_cross_entropy", [](const Tensor& x, const Tensor& t, const std::optional<Tensor>& w,
                             Reduction r, int64_t ignore_index, double label_smoothing) {
    return without_gil_if_large(
        x, [&] { return cross_entropy(x, t, or_undefined(w), r, ignore_index, label_smoothing); });
  });
  m.def("_mse_loss", &mse_loss);
  m.def("_binary_cross_entropy_with_logits", [](const Tensor& x, const Tensor& t,
                                                const std::optional<Tensor>& w, Reduction r,
                                                const std::optional<Tensor>& pos_weight) {
    return binary_cross_entropy_with_logits(x, t, or_undefined(w), r, or_undefined(pos_weight));
  });
  m.def(
      "_linear",
      [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
        return linear(x, w, or_undefined(b));
      },
      no_gil);
  m.def("_layer_norm", [](const Tensor& x, int64_t ndim, const std::optional<Tensor>& w,
                          const std::optional<Tensor>& b, double eps) {
    return without_gil_if_large(
        x, [&] { return layer_norm(x, ndim, or_undefined(w), or_undefined(b), eps); });
  });
  m.def("_rms_norm", [](const Tensor& x, int64_t ndim, const std::optional<Tensor>& w, double eps) {
    return without_gil_if_large(x, [&] { return rms_norm(x, ndim, or_undefined(w), eps); });
  });
  m.def("_scaled_dot_product_attention",
        [](const Tensor& q, const Tensor& k, const Tensor& v, bool is_causal, double scale) {
          return without_gil_if_large(
              q, [&] { return scaled_dot_product_attention(q, k, v, is_causal, scale); });
        });
  m.def("_leaky_relu", &leaky_relu);
  m.def("_gelu", &gelu);
  m.def("_softplus", &softplus);
  m.def("_dropout", &dropout);
}

}  // namespace bprop::python
