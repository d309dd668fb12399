#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "bprop/small_vector.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/vector_kernels.h"
#include "kernels/wrapping.h"

namespace bprop::kernels {
namespace {

// A group of dimensions walked together, with the input's and output's strides (elements).
struct Odometer {
  SmallVector<int64_t, 8> sizes, in_strides, out_strides;
};

template <ReduceOp Op, typename Acc>
struct Combine;
template <typename Acc>
struct Combine<ReduceOp::Sum, Acc> {
  static Acc init() { return Acc(0); }
  static Acc apply(Acc acc, Acc v) { return wrapping_add(acc, v); }
};
template <typename Acc>
struct Combine<ReduceOp::Prod, Acc> {
  static Acc init() { return Acc(1); }
  static Acc apply(Acc acc, Acc v) { return wrapping_mul(acc, v); }
};
// NaN wins: once acc is NaN it stays NaN (NaN compares false both ways).
template <typename Acc>
struct Combine<ReduceOp::Max, Acc> {
  static Acc apply(Acc acc, Acc v) {
    return acc != acc || v != v ? (acc != acc ? acc : v) : (v > acc ? v : acc);
  }
};
template <typename Acc>
struct Combine<ReduceOp::Min, Acc> {
  static Acc apply(Acc acc, Acc v) {
    return acc != acc || v != v ? (acc != acc ? acc : v) : (v < acc ? v : acc);
  }
};

template <ReduceOp Op, typename In, typename Acc, typename Out>
void reduce_typed(const Odometer& kept, const Odometer& reduced, const Operand& out,
                  const Operand& in) {
  constexpr bool kHasInit = Op == ReduceOp::Sum || Op == ReduceOp::Prod;
  const In* in_base = static_cast<const In*>(in.data);
  Out* out_base = static_cast<Out*>(out.data);
  const size_t nk = kept.sizes.size();
  const size_t nr = reduced.sizes.size();
  SmallVector<int64_t, 8> kc(nk, 0);
  int64_t in_off = 0, out_off = 0;
  while (true) {
    Acc acc;
    if constexpr (kHasInit) {
      acc = Combine<Op, Acc>::init();
    } else {
      acc = static_cast<Acc>(in_base[in_off]);  // max/min start from the first element
    }
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
        bool done = false;
        if constexpr (Op == ReduceOp::Sum && std::is_floating_point_v<In>) {
          if (inner_s == 1) {  // the vectorised sum (see vector_kernels.h)
            if constexpr (std::is_same_v<In, float>)
              acc += static_cast<Acc>(vector_kernels().sum_f32(p, inner_n));
            else
              acc += static_cast<Acc>(vector_kernels().sum_f64(p, inner_n));
            done = true;
          }
        }
        if (!done) {
          for (int64_t i = 0; i < inner_n; ++i)
            acc = Combine<Op, Acc>::apply(acc, static_cast<Acc>(p[i * inner_s]));
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

// Sums down columns: the reduced dimension lies outside a contiguous kept one (a bias's
// gradient, x.sum(0)). Whole rows are added into a row of double accumulators, so each output
// is summed in the same order and precision as reduce_typed (the same bits), but row by row,
// vectorised, instead of one strided column at a time; split over columns.
template <typename T>
void column_sums(int64_t rows, int64_t row_stride, int64_t cols, int64_t out_stride, const T* in,
                 T* out) {
  constexpr int64_t kChunk = 512;  // accumulators kept in L1
  parallel_for(cols, kChunk, [&](int64_t first, int64_t last) {
    double acc[kChunk];
    for (int64_t c0 = first; c0 < last; c0 += kChunk) {
      const int64_t width = std::min(kChunk, last - c0);
      std::fill(acc, acc + width, 0.0);
      for (int64_t i = 0; i < rows; ++i) {
        const T* row = in + i * row_stride + c0;
        for (int64_t j = 0; j < width; ++j) acc[j] += static_cast<double>(row[j]);
      }
      for (int64_t j = 0; j < width; ++j) out[(c0 + j) * out_stride] = static_cast<T>(acc[j]);
    }
  });
}

template <ReduceOp Op>
void reduce_dispatch(const Odometer& kept, const Odometer& reduced, const Operand& out,
                     const Operand& in) {
  constexpr bool kAccumulates = Op == ReduceOp::Sum || Op == ReduceOp::Prod;
  switch (in.dtype) {
    case DType::Float32:
      if constexpr (kAccumulates)
        return reduce_typed<Op, float, double, float>(kept, reduced, out, in);
      else
        return reduce_typed<Op, float, float, float>(kept, reduced, out, in);
    case DType::Float64:
      return reduce_typed<Op, double, double, double>(kept, reduced, out, in);
    case DType::Int64:
      return reduce_typed<Op, int64_t, int64_t, int64_t>(kept, reduced, out, in);
    case DType::Bool:
      if constexpr (kAccumulates)
        return reduce_typed<Op, bool, int64_t, int64_t>(kept, reduced, out, in);
      else
        return reduce_typed<Op, bool, bool, bool>(kept, reduced, out, in);
  }
}

}  // namespace

void reduce(ReduceOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& in) {
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 0) {
      // An empty reduction: the identity wherever out has elements (out's own shape is 1
      // along the reduced dims, where its stride is 0).
      SmallVector<int64_t, 8> out_shape(shape, shape + ndim);
      for (int k = 0; k < ndim; ++k)
        if (out.strides[k] == 0) out_shape[k] = 1;
      fill(ndim, out_shape.data(), out, op == ReduceOp::Prod ? 1.0 : 0.0);
      return;
    }
  }
  Odometer kept, reduced;
  const Odometer* previous = nullptr;  // where the last dim of more than one element went
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    Odometer& target = out.strides[d] == 0 ? reduced : kept;
    // Adjacent reduced dims that are contiguous in the input merge into one.
    if (&target == &reduced && !reduced.sizes.empty() && d > 0 && out.strides[d - 1] == 0 &&
        reduced.in_strides.back() == in.strides[d] * shape[d]) {
      reduced.sizes.back() *= shape[d];
      reduced.in_strides.back() = in.strides[d];
      previous = &target;
      continue;
    }
    // So do adjacent kept dims contiguous in both (a positional embedding's gradient, summed
    // over the batch: (B, T, C) -> (T, C), one kept run for column_sums).
    if (&target == &kept && previous == &kept &&
        kept.in_strides.back() == in.strides[d] * shape[d] &&
        kept.out_strides.back() == out.strides[d] * shape[d]) {
      kept.sizes.back() *= shape[d];
      kept.in_strides.back() = in.strides[d];
      kept.out_strides.back() = out.strides[d];
      continue;
    }
    target.sizes.push_back(shape[d]);
    target.in_strides.push_back(in.strides[d]);
    target.out_strides.push_back(out.strides[d]);
    previous = &target;
  }
  // A large sum of contiguous floats: fixed blocks summed on the threads, then added in
  // order, so the result doesn't depend on the thread count.
  if (op == ReduceOp::Sum && kept.sizes.empty() && reduced.sizes.size() == 1 &&
      reduced.in_strides[0] == 1 && reduced.sizes[0] >= (1 << 20) &&
      (in.dtype == DType::Float32 || in.dtype == DType::Float64)) {
    constexpr int64_t kBlock = 1 << 18;
    const int64_t n = reduced.sizes[0], blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> partial(static_cast<size_t>(blocks));
    parallel_for(blocks, 1, [&](int64_t first, int64_t last) {
      for (int64_t b = first; b < last; ++b) {
        const int64_t start = b * kBlock, count = std::min(kBlock, n - start);
        partial[static_cast<size_t>(b)] =
            in.dtype == DType::Float32
                ? vector_kernels().sum_f32(static_cast<const float*>(in.data) + start, count)
                : vector_kernels().sum_f64(static_cast<const double*>(in.data) + start, count);
      }
    });
    double total = 0.0;
    for (double v : partial) total += v;
    if (out.dtype == DType::Float32)
      *static_cast<float*>(out.data) = static_cast<float>(total);
    else
      *static_cast<double*>(out.data) = total;
    return;
  }
  if (op == ReduceOp::Sum && kept.sizes.size() == 1 && kept.in_strides[0] == 1 &&
      reduced.sizes.size() == 1 && out.dtype == in.dtype &&
      (in.dtype == DType::Float32 || in.dtype == DType::Float64)) {
    if (in.dtype == DType::Float32)
      column_sums(reduced.sizes[0], reduced.in_strides[0], kept.sizes[0], kept.out_strides[0],
                  static_cast<const float*>(in.data), static_cast<float*>(out.data));
    else
      column_sums(reduced.sizes[0], reduced.in_strides[0], kept.sizes[0], kept.out_strides[0],
                  static_cast<const double*>(in.data), static_cast<double*>(out.data));
    return;
  }
  switch (op) {
    case ReduceOp::Sum:
      return reduce_dispatch<ReduceOp::Sum>(kept, reduced, out, in);
    case ReduceOp::Prod:
      return reduce_dispatch<ReduceOp::Prod>(kept, reduced, out, in);
    case ReduceOp::Max:
      return reduce_dispatch<ReduceOp::Max>(kept, reduced, out, in);
    case ReduceOp::Min:
      return reduce_dispatch<ReduceOp::Min>(kept, reduced, out, in);
  }
}

namespace {

// Visits every position of `shape` except along `dim`, with element offsets of each operand.
template <int N, typename F>
void for_each_line(int ndim, const int64_t* shape, int dim, const int64_t* const (&strides)[N],
                   F f) {
  SmallVector<int64_t, 8> counter(static_cast<size_t>(ndim), 0);
  int64_t offsets[N] = {};
  for (int d = 0; d < ndim; ++d)
    if (shape[d] == 0) return;
  while (true) {
    f(offsets);
    int d = ndim - 1;
    for (; d >= 0; --d) {
      if (d == dim) continue;
      if (++counter[d] < shape[d]) {
        for (int o = 0; o < N; ++o) offsets[o] += strides[o][d];
        break;
      }
      for (int o = 0; o < N; ++o) offsets[o] -= strides[o][d] * (shape[d] - 1);
      counter[d] = 0;
    }
    if (d < 0) return;
  }
}

template <typename T>
void arg_reduce_typed(bool is_max, int ndim, const int64_t* shape, int dim, const Operand& values,
                      const Operand& indices, const Operand& in) {
  const int64_t* strides[3] = {in.strides, values.strides, indices.strides};
  const T* in_base = static_cast<const T*>(in.data);
  T* values_base = static_cast<T*>(values.data);
  int64_t* indices_base = static_cast<int64_t*>(indices.data);
  const int64_t n = shape[dim], step = in.strides[dim];
  for_each_line<3>(ndim, shape, dim, strides, [&](const int64_t* off) {
    const T* p = in_base + off[0];
    T best = p[0];
    int64_t best_i = 0;
    for (int64_t i = 1; i < n && best == best; ++i) {
      const T v = p[i * step];
      if (v != v || (is_max ? v > best : v < best)) {
        best = v;
        best_i = i;
      }
    }
    values_base[off[1]] = best;
    indices_base[off[2]] = best_i;
  });
}

// Ascending: NaN sorts after every number; descending: before (PyTorch's rule).
template <typename T>
void argsort_typed(bool descending, int ndim, const int64_t* shape, int dim, const Operand& indices,
                   const Operand& in) {
  const int64_t* strides[2] = {in.strides, indices.strides};
  const T* in_base = static_cast<const T*>(in.data);
  int64_t* indices_base = static_cast<int64_t*>(indices.data);
  const int64_t n = shape[dim], step = in.strides[dim], out_step = indices.strides[dim];
  std::vector<int64_t> order(static_cast<size_t>(n));
  for_each_line<2>(ndim, shape, dim, strides, [&](const int64_t* off) {
    const T* p = in_base + off[0];
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    auto less = [&](int64_t a, int64_t b) {
      const T x = p[a * step], y = p[b * step];
      if (descending) return (x != x && y == y) || x > y;
      return (x == x && y != y) || x < y;
    };
    std::stable_sort(order.begin(), order.end(), less);
    for (int64_t i = 0; i < n; ++i)
      indices_base[off[1] + i * out_step] = order[static_cast<size_t>(i)];
  });
}

template <typename T>
void gather_typed(int ndim, const int64_t* shape, int dim, const Operand& out, const Operand& in,
                  const Operand& index) {
  const int64_t* strides[3] = {out.strides, in.strides, index.strides};
  T* out_base = static_cast<T*>(out.data);
  const T* in_base = static_cast<const T*>(in.data);
  const int64_t* index_base = static_cast<const int64_t*>(index.data);
  const int64_t n = shape[dim];
  for_each_line<3>(ndim, shape, dim, strides, [&](const int64_t* off) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = index_base[off[2] + i * index.strides[dim]];
      out_base[off[0] + i * out.strides[dim]] = in_base[off[1] + j * in.strides[dim]];
    }
  });
}

template <typename T>
void scatter_add_typed(int ndim, const int64_t* shape, int dim, const Operand& out,
                       const Operand& src, const Operand& index) {
  const int64_t* strides[3] = {out.strides, src.strides, index.strides};
  T* out_base = static_cast<T*>(out.data);
  const T* src_base = static_cast<const T*>(src.data);
  const int64_t* index_base = static_cast<const int64_t*>(index.data);
  const int64_t n = shape[dim];
  for_each_line<3>(ndim, shape, dim, strides, [&](const int64_t* off) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = index_base[off[2] + i * index.strides[dim]];
      T& target = out_base[off[0] + j * out.strides[dim]];
      target = wrapping_add(target, src_base[off[1] + i * src.strides[dim]]);
    }
  });
}

}  // namespace

void arg_reduce(bool is_max, int ndim, const int64_t* shape, int dim, const Operand& values,
                const Operand& indices, const Operand& in) {
  visit_element_type(in.dtype, [&](auto tag) {
    arg_reduce_typed<decltype(tag)>(is_max, ndim, shape, dim, values, indices, in);
  });
}

void argsort(bool descending, int ndim, const int64_t* shape, int dim, const Operand& indices,
             const Operand& in) {
  visit_element_type(in.dtype, [&](auto tag) {
    argsort_typed<decltype(tag)>(descending, ndim, shape, dim, indices, in);
  });
}

void gather(int ndim, const int64_t* out_shape, int dim, const Operand& out, const Operand& in,
            const Operand& index) {
  visit_element_type(out.dtype, [&](auto tag) {
    gather_typed<decltype(tag)>(ndim, out_shape, dim, out, in, index);
  });
}

void scatter_add(int ndim, const int64_t* src_shape, int dim, const Operand& out,
                 const Operand& src, const Operand& index) {
  visit_element_type(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      const int64_t* strides[3] = {out.strides, src.strides, index.strides};
      bool* out_base = static_cast<bool*>(out.data);
      const bool* src_base = static_cast<const bool*>(src.data);
      const int64_t* index_base = static_cast<const int64_t*>(index.data);
      for_each_line<3>(ndim, src_shape, dim, strides, [&](const int64_t* off) {
        for (int64_t i = 0; i < src_shape[dim]; ++i) {
          const int64_t j = index_base[off[2] + i * index.strides[dim]];
          bool& target = out_base[off[0] + j * out.strides[dim]];
          target = target || src_base[off[1] + i * src.strides[dim]];
        }
      });
    } else {
      scatter_add_typed<T>(ndim, src_shape, dim, out, src, index);
    }
  });
}

}  // namespace bprop::kernels
