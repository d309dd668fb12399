// Scaled dot-product attention in tiles (FlashAttention's algorithm on the CPU): the scores of
// one block of queries against one block of keys at a time, an online softmax (a running row
// maximum m and sum l, the partial output rescaled when m grows), so that no more than a tile
// of the L x S score matrix ever exists; the row's log-sum-exp is kept for the backward, which
// recomputes each tile's probabilities from it (FlashAttention-2's backward).
//
// Each (batch, head) runs on one thread, in a fixed order of tiles: the same bits for any
// thread count. The tile products go through gemm (nested inside the pool, it runs inline).
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/vector_kernels.h"

namespace bprop::kernels {
namespace {

constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 64;

// e^x for n contiguous values, in place.
template <typename T>
void exp_in_place(T* x, int64_t n) {
  if constexpr (sizeof(T) == 4) {
    if (vector_kernels().unary_f32(VecUnary::Exp, x, x, n)) return;
  }
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

// Keys a causal query row may see: j <= i (the top-left aligned lower triangle, PyTorch's).
inline int64_t visible_keys(bool causal, int64_t query, int64_t keys) {
  return causal ? std::min(keys, query + 1) : keys;
}

// The tile products' options under a causal mask: query rows i0.. against key columns j0..
// see keys j <= i, a triangle of diagonal i0 - j0 (kernels.h's GemmOptions), so that the GEMMs
// skip what the mask zeroes. accumulate: add to C (no partial product to add afterwards).
inline GemmOptions tile_options(bool causal, GemmOptions::Triangle triangle, int64_t diagonal,
                                bool accumulate = false) {
  GemmOptions options;
  options.triangle = causal ? triangle : GemmOptions::Triangle::None;
  options.diagonal = diagonal;
  options.accumulate = accumulate;
  return options;
}

// sum_e x[e] y[e] in eight running sums combined in a fixed order: the same bits whether the
// compiler vectorises it or not, and eight times fewer dependent additions than one sum.
template <typename T>
T dot(const T* x, const T* y, int64_t n) {
  T lanes[8] = {};
  int64_t e = 0;
  for (; e + 8 <= n; e += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += x[e + l] * y[e + l];
  for (; e < n; ++e) lanes[e % 8] += x[e] * y[e];
  return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) +
         ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
}

template <typename T>
void forward_one(int64_t L, int64_t S, int64_t E, int64_t Ev, T scale, bool causal, const T* q,
                 int64_t qr, const T* k, int64_t kr, const T* v, int64_t vr, T* out, int64_t outr,
                 T* lse) {
  using Triangle = GemmOptions::Triangle;
  constexpr T kMinusInf = -std::numeric_limits<T>::infinity();
  // Written before they are read (unwritten scores lie outside the mask and are never read).
  std::unique_ptr<T[]> scores(new T[kQueryBlock * kKeyBlock]), acc(new T[kQueryBlock * Ev]),
      row_max(new T[kQueryBlock]), row_sum(new T[kQueryBlock]);
  const DType dtype = sizeof(T) == 4 ? DType::Float32 : DType::Float64;
  const VectorKernels& vk = vector_kernels();
  for (int64_t i0 = 0; i0 < L; i0 += kQueryBlock) {
    const int64_t rows = std::min(kQueryBlock, L - i0);
    std::fill(row_max.get(), row_max.get() + rows, kMinusInf);
    std::fill(row_sum.get(), row_sum.get() + rows, T(0));
    std::fill(acc.get(), acc.get() + rows * Ev, T(0));
    const int64_t key_end = visible_keys(causal, i0 + rows - 1, S);
    for (int64_t j0 = 0; j0 < key_end; j0 += kKeyBlock) {
      const int64_t cols = std::min(kKeyBlock, key_end - j0);
      gemm_with_options(dtype, rows, cols, E, q + i0 * qr, qr, 1, k + j0 * kr, 1, kr, scores.get(),
                        cols, tile_options(causal, Triangle::CLower, i0 - j0));
      for (int64_t r = 0; r < rows; ++r) {
        T* row = scores.get() + r * cols;
        const int64_t seen = std::clamp<int64_t>(visible_keys(causal, i0 + r, S) - j0, 0, cols);
        T new_max = row_max[r];
        T block_sum = 0;
        if constexpr (sizeof(T) == 4) {
          new_max = std::max(new_max, vk.scaled_max_f32(row, seen, scale));
        } else {
          for (int64_t c = 0; c < seen; ++c) new_max = std::max(new_max, row[c] * scale);
        }
        // A row that sees nothing in this block keeps its state (its p are all 0).
        const T shift = new_max == kMinusInf ? T(0) : new_max;
        if constexpr (sizeof(T) == 4) {
          block_sum = vk.exp_scaled_sum_f32(row, row, seen, scale, shift);
        } else {
          for (int64_t c = 0; c < seen; ++c) row[c] = row[c] * scale - shift;
          exp_in_place(row, seen);
          for (int64_t c = 0; c < seen; ++c) block_sum += row[c];
        }
        std::fill(row + seen, row + cols, T(0));
        // Until the row has seen a key, its sum and output are 0: nothing to rescale.
        if (row_max[r] != kMinusInf) {
          const T correction = std::exp(row_max[r] - shift);
          row_sum[r] *= correction;
          T* acc_row = acc.get() + r * Ev;
          for (int64_t e = 0; e < Ev; ++e) acc_row[e] *= correction;
        }
        row_sum[r] += block_sum;
        row_max[r] = new_max;
      }
      // acc += P V: P is 0 past each row's last visible key
      gemm_with_options(dtype, rows, Ev, cols, scores.get(), cols, 1, v + j0 * vr, vr, 1, acc.get(),
                        Ev, tile_options(causal, Triangle::ALower, i0 - j0, true));
    }
    for (int64_t r = 0; r < rows; ++r) {
      // A row that sees no key at all (S = 0) gives zeros, as PyTorch's kernels do.
      const T inverse = row_sum[r] > T(0) ? T(1) / row_sum[r] : T(0);
      T* out_row = out + (i0 + r) * outr;
      for (int64_t e = 0; e < Ev; ++e) out_row[e] = acc[r * Ev + e] * inverse;
      lse[i0 + r] = row_sum[r] > T(0) ? row_max[r] + std::log(row_sum[r]) : kMinusInf;
    }
  }
}

template <typename T>
void backward_one(int64_t L, int64_t S, int64_t E, int64_t Ev, T scale, bool causal,
                  const AttentionLayout& layout, const T* q, const T* k, const T* v, const T* out,
                  const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  using Triangle = GemmOptions::Triangle;
  const int64_t qr = layout.q.row, kr = layout.k.row, vr = layout.v.row, outr = layout.out.row,
                doutr = layout.dout.row, dqr = layout.dq.row, dkr = layout.dk.row,
                dvr = layout.dv.row;
  const DType dtype = sizeof(T) == 4 ? DType::Float32 : DType::Float64;
  // Written before they are read (unwritten tile elements lie outside the mask, never read).
  std::unique_ptr<T[]> p(new T[kQueryBlock * kKeyBlock]), ds(new T[kQueryBlock * kKeyBlock]),
      delta(new T[L]);
  // delta_i = sum_e dO[i][e] O[i][e], the row's <dO, O>: the softmax backward's row term.
  for (int64_t i = 0; i < L; ++i) delta[i] = dot(dout + i * doutr, out + i * outr, Ev);
  // dQ, dK and dV are written by their first tile product and added to by the others; rows no
  // product reaches (none at all when S = 0; causal keys past every query) are zeroed here.
  auto zero_rows = [](T* at, int64_t stride, int64_t begin, int64_t end, int64_t n) {
    for (int64_t row = begin; row < end; ++row)
      std::fill(at + row * stride, at + row * stride + n, T(0));
  };
  if (S == 0) zero_rows(dq, dqr, 0, L, E);
  for (int64_t j0 = 0; j0 < S; j0 += kKeyBlock) {
    const int64_t cols = std::min(kKeyBlock, S - j0);
    // With a causal mask, queries before j0 see none of these keys.
    const int64_t first_i0 = causal ? j0 / kQueryBlock * kQueryBlock : 0;
    if (first_i0 >= L) {
      zero_rows(dk, dkr, j0, j0 + cols, E);
      zero_rows(dv, dvr, j0, j0 + cols, Ev);
    }
    for (int64_t i0 = first_i0; i0 < L; i0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, L - i0);
      // Query rows see keys j <= i (diagonal i0 - j0); the transposed products' rows are keys,
      // summed over the queries that see them (diagonal j0 - i0).
      const GemmOptions wanted = tile_options(causal, Triangle::CLower, i0 - j0),
                        over_keys = tile_options(causal, Triangle::ALower, i0 - j0, j0 > 0),
                        over_queries =
                            tile_options(causal, Triangle::AUpper, j0 - i0, i0 > first_i0);
      // P = exp(Q K^T scale - lse), 0 where masked.
      gemm_with_options(dtype, rows, cols, E, q + i0 * qr, qr, 1, k + j0 * kr, 1, kr, p.get(), cols,
                        wanted);
      for (int64_t r = 0; r < rows; ++r) {
        T* row = p.get() + r * cols;
        const int64_t seen = std::clamp<int64_t>(visible_keys(causal, i0 + r, S) - j0, 0, cols);
        const T row_lse = lse[i0 + r];
        if constexpr (sizeof(T) == 4) {
          vector_kernels().exp_scaled_sum_f32(row, row, seen, scale, row_lse);
        } else {
          for (int64_t c = 0; c < seen; ++c) row[c] = row[c] * scale - row_lse;
          exp_in_place(row, seen);
        }
        std::fill(row + seen, row + cols, T(0));
      }
      // dV_j += P^T dO_i
      gemm_with_options(dtype, cols, Ev, rows, p.get(), 1, cols, dout + i0 * doutr, doutr, 1,
                        dv + j0 * dvr, dvr, over_queries);
      // dP = dO_i V_j^T; dS = P (dP - delta) scale, 0 where masked
      gemm_with_options(dtype, rows, cols, Ev, dout + i0 * doutr, doutr, 1, v + j0 * vr, 1, vr,
                        ds.get(), cols, wanted);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t seen = std::clamp<int64_t>(visible_keys(causal, i0 + r, S) - j0, 0, cols);
        const T row_delta = delta[i0 + r];
        const T* p_row = p.get() + r * cols;
        T* ds_row = ds.get() + r * cols;
        for (int64_t c = 0; c < seen; ++c) ds_row[c] = p_row[c] * (ds_row[c] - row_delta) * scale;
        std::fill(ds_row + seen, ds_row + cols, T(0));
      }
      // dQ_i += dS K_j; dK_j += dS^T Q_i
      gemm_with_options(dtype, rows, E, cols, ds.get(), cols, 1, k + j0 * kr, kr, 1, dq + i0 * dqr,
                        dqr, over_keys);
      gemm_with_options(dtype, cols, E, rows, ds.get(), 1, cols, q + i0 * qr, qr, 1, dk + j0 * dkr,
                        dkr, over_queries);
    }
  }
}

// Where problem b's rows of a tensor start (Note in kernels.h's AttentionLayout).
template <typename T>
T* problem(T* base, const AttentionStrides& at, int64_t heads, int64_t b) {
  return base + (b / heads) * at.outer + (b % heads) * at.inner;
}

template <typename T>
void attention_forward_typed(int64_t batch, int64_t L, int64_t S, int64_t E, int64_t Ev,
                             double scale, bool causal, const AttentionLayout& layout, const T* q,
                             const T* k, const T* v, T* out, T* lse) {
  const int64_t heads = std::max<int64_t>(layout.heads, 1);
  parallel_for(batch, 1, [&](int64_t first, int64_t last) {
    for (int64_t b = first; b < last; ++b)
      forward_one<T>(L, S, E, Ev, static_cast<T>(scale), causal, problem(q, layout.q, heads, b),
                     layout.q.row, problem(k, layout.k, heads, b), layout.k.row,
                     problem(v, layout.v, heads, b), layout.v.row,
                     problem(out, layout.out, heads, b), layout.out.row, lse + b * L);
  });
}

template <typename T>
void attention_backward_typed(int64_t batch, int64_t L, int64_t S, int64_t E, int64_t Ev,
                              double scale, bool causal, const AttentionLayout& layout, const T* q,
                              const T* k, const T* v, const T* out, const T* lse, const T* dout,
                              T* dq, T* dk, T* dv) {
  const int64_t heads = std::max<int64_t>(layout.heads, 1);
  parallel_for(batch, 1, [&](int64_t first, int64_t last) {
    for (int64_t b = first; b < last; ++b)
      backward_one<T>(L, S, E, Ev, static_cast<T>(scale), causal, layout,
                      problem(q, layout.q, heads, b), problem(k, layout.k, heads, b),
                      problem(v, layout.v, heads, b), problem(out, layout.out, heads, b),
                      lse + b * L, problem(dout, layout.dout, heads, b),
                      problem(dq, layout.dq, heads, b), problem(dk, layout.dk, heads, b),
                      problem(dv, layout.dv, heads, b));
  });
}

}  // namespace

void attention_forward(DType dtype, int64_t batch, int64_t L, int64_t S, int64_t E, int64_t Ev,
                       double scale, bool causal, const AttentionLayout& layout, const void* q,
                       const void* k, const void* v, void* out, void* lse) {
  if (dtype == DType::Float32)
    attention_forward_typed(batch, L, S, E, Ev, scale, causal, layout, static_cast<const float*>(q),
                            static_cast<const float*>(k), static_cast<const float*>(v),
                            static_cast<float*>(out), static_cast<float*>(lse));
  else
    attention_forward_typed(batch, L, S, E, Ev, scale, causal, layout,
                            static_cast<const double*>(q), static_cast<const double*>(k),
                            static_cast<const double*>(v), static_cast<double*>(out),
                            static_cast<double*>(lse));
}

void attention_backward(DType dtype, int64_t batch, int64_t L, int64_t S, int64_t E, int64_t Ev,
                        double scale, bool causal, const AttentionLayout& layout, const void* q,
                        const void* k, const void* v, const void* out, const void* lse,
                        const void* dout, void* dq, void* dk, void* dv) {
  if (dtype == DType::Float32)
    attention_backward_typed(
        batch, L, S, E, Ev, scale, causal, layout, static_cast<const float*>(q),
        static_cast<const float*>(k), static_cast<const float*>(v), static_cast<const float*>(out),
        static_cast<const float*>(lse), static_cast<const float*>(dout), static_cast<float*>(dq),
        static_cast<float*>(dk), static_cast<float*>(dv));
  else
    attention_backward_typed(batch, L, S, E, Ev, scale, causal, layout,
                             static_cast<const double*>(q), static_cast<const double*>(k),
                             static_cast<const double*>(v), static_cast<const double*>(out),
                             static_cast<const double*>(lse), static_cast<const double*>(dout),
                             static_cast<double*>(dq), static_cast<double*>(dk),
                             static_cast<double*>(dv));
}

}  // namespace bprop::kernels
