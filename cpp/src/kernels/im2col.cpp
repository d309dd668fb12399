// im2col and col2im: 2-d convolution and pooling become a matrix product and a reduction.
#include <cstring>
#include <stdexcept>

#include "kernels/kernels.h"

namespace bprop::kernels {
namespace {

// Calls f(column offset, input offset or -1 for padding) for every element of the columns.
template <typename F>
void walk(int64_t n, int64_t c, int64_t h, int64_t w, const Window2d& win, F f) {
  const int64_t oh = win.out_h(h), ow = win.out_w(w);
  int64_t col = 0;  // columns are laid out (n, c, ki, kj, y, x), the loop order below
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t ki = 0; ki < win.kernel_h; ++ki)
        for (int64_t kj = 0; kj < win.kernel_w; ++kj) {
          const int64_t plane = (b * c + ch) * h * w;
          for (int64_t y = 0; y < oh; ++y) {
            const int64_t iy = y * win.stride_h - win.padding_h + ki * win.dilation_h;
            for (int64_t x = 0; x < ow; ++x, ++col) {
              const int64_t ix = x * win.stride_w - win.padding_w + kj * win.dilation_w;
              const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
              f(col, inside ? plane + iy * w + ix : -1);
            }
          }
        }
}

template <typename T>
void unfold_typed(int64_t n, int64_t c, int64_t h, int64_t w, const Window2d& win, const T* in,
                  T* out, T pad) {
  walk(n, c, h, w, win, [&](int64_t col, int64_t src) { out[col] = src >= 0 ? in[src] : pad; });
}

template <typename T>
void fold_typed(int64_t n, int64_t c, int64_t h, int64_t w, const Window2d& win, const T* in,
                T* out) {
  walk(n, c, h, w, win, [&](int64_t col, int64_t dst) {
    if (dst >= 0) out[dst] += in[col];
  });
}

}  // namespace

void unfold2d(DType dtype, int64_t n, int64_t c, int64_t h, int64_t w, const Window2d& window,
              const void* in, void* out, double pad_value) {
  switch (dtype) {
    case DType::Float32:
      return unfold_typed(n, c, h, w, window, static_cast<const float*>(in),
                          static_cast<float*>(out), static_cast<float>(pad_value));
    case DType::Float64:
      return unfold_typed(n, c, h, w, window, static_cast<const double*>(in),
                          static_cast<double*>(out), pad_value);
    default:
      throw std::logic_error("kernel unfold2d needs a floating point dtype");
  }
}

void fold2d(DType dtype, int64_t n, int64_t c, int64_t h, int64_t w, const Window2d& window,
            const void* in, void* out) {
  switch (dtype) {
    case DType::Float32:
      return fold_typed(n, c, h, w, window, static_cast<const float*>(in),
                        static_cast<float*>(out));
    case DType::Float64:
      return fold_typed(n, c, h, w, window, static_cast<const double*>(in),
                        static_cast<double*>(out));
    default:
      throw std::logic_error("kernel fold2d needs a floating point dtype");
  }
}

}  // namespace bprop::kernels
