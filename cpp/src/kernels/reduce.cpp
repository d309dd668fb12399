#include <cstring>
#include <type_traits>

#include "bprop/small_vector.h"
#include "kernels/kernels.h"

namespace bprop::kernels {
namespace {

// A group of dimensions walked together, with the input's and output's strides (elements).
struct Odometer {
  SmallVector<int64_t, 8> sizes, in_strides, out_strides;
};

template <typename In, typename Acc, typename Out>
void sum_typed(const Odometer& kept, const Odometer& reduced, const Operand& out,
               const Operand& in) {
  const In* in_base = static_cast<const In*>(in.data);
  Out* out_base = static_cast<Out*>(out.data);
  const size_t nk = kept.sizes.size();
  const size_t nr = reduced.sizes.size();
  SmallVector<int64_t, 8> kc(nk, 0);
  int64_t in_off = 0, out_off = 0;
  while (true) {
    Acc acc = 0;
    if (nr == 0) {
      acc = static_cast<Acc>(in_base[in_off]);
    } else {
      // The innermost reduced dimension runs as a plain loop; the others as an odometer.
      const int64_t inner_n = reduced.sizes[nr - 1];
      const int64_t inner_s = reduced.in_strides[nr - 1];
      SmallVector<int64_t, 8> rc(nr, 0);
      int64_t r_off = in_off;
      while (true) {
        const In* p = in_base + r_off;
        if (inner_s == 1) {
          for (int64_t i = 0; i < inner_n; ++i) acc += static_cast<Acc>(p[i]);
        } else {
          for (int64_t i = 0; i < inner_n; ++i) acc += static_cast<Acc>(p[i * inner_s]);
        }
        int d = static_cast<int>(nr) - 2;
        for (; d >= 0; --d) {
          if (++rc[d] < reduced.sizes[d]) {
            r_off += reduced.in_strides[d];
            break;
          }
          r_off -= reduced.in_strides[d] * (reduced.sizes[d] - 1);
          rc[d] = 0;
        }
        if (d < 0) break;
      }
    }
    out_base[out_off] = static_cast<Out>(acc);
    int d = static_cast<int>(nk) - 1;
    for (; d >= 0; --d) {
      if (++kc[d] < kept.sizes[d]) {
        in_off += kept.in_strides[d];
        out_off += kept.out_strides[d];
        break;
      }
      in_off -= kept.in_strides[d] * (kept.sizes[d] - 1);
      out_off -= kept.out_strides[d] * (kept.sizes[d] - 1);
      kc[d] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace

void sum(int ndim, const int64_t* shape, const Operand& out, const Operand& in) {
  Odometer kept, reduced;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 0) {
      // An empty reduction: the sum is 0 wherever out has elements.
      fill(ndim, shape, out, 0.0);
      return;
    }
  }
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    Odometer& target = out.strides[d] == 0 ? reduced : kept;
    target.sizes.push_back(shape[d]);
    target.in_strides.push_back(in.strides[d]);
    target.out_strides.push_back(out.strides[d]);
  }
  switch (in.dtype) {
    case DType::Float32:
      return sum_typed<float, double, float>(kept, reduced, out, in);
    case DType::Float64:
      return sum_typed<double, double, double>(kept, reduced, out, in);
    case DType::Int64:
      return sum_typed<int64_t, int64_t, int64_t>(kept, reduced, out, in);
    case DType::Bool:
      return sum_typed<bool, int64_t, int64_t>(kept, reduced, out, in);
  }
}

}  // namespace bprop::kernels
