// The sliding window of 2-d convolution and pooling.
#pragma once

#include <cstdint>

namespace bprop {

struct Window2d {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t padding_h = 0, padding_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;

  // Output size along each axis for an input of size h (or w); < 1 when the window doesn't fit.
  int64_t out_h(int64_t h) const {
    return floor_div(h + 2 * padding_h - dilation_h * (kernel_h - 1) - 1, stride_h) + 1;
  }
  int64_t out_w(int64_t w) const {
    return floor_div(w + 2 * padding_w - dilation_w * (kernel_w - 1) - 1, stride_w) + 1;
  }

 private:
  // NOTE: C++ division truncates toward zero; a window larger than the input needs the floor.
  static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
};

}  // namespace bprop
