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
#include <vector>

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

template <typename T>
void forward_one(int64_t L, int64_t S, int64_t E, int64_t Ev, T scale, bool causal, const T* q,
                 int64_t qr, const T* k, int64_t kr, const T* v, int64_t vr, T* out, int64_t outr,
                 T* lse) {
  constexpr T kMinusInf = -std::numeric_limits<T>::infinity();
  std::vector<T> scores(kQueryBlock * kKeyBlock), partial(kQueryBlock * Ev), acc(kQueryBlock * Ev),
      row_max(kQueryBlock), row_sum(kQueryBlock);
  const DType dtype = sizeof(T) == 4 ? DType::Float32 : DType::Float64;
  const VectorKernels& vk = vector_kernels();
  for (int64_t i0 = 0; i0 < L; i0 += kQueryBlock) {
    const int64_t rows = std::min(kQueryBlock, L - i0);
    std::fill(row_max.begin(), row_max.end(), kMinusInf);
    std::fill(row_sum.begin(), row_sum.end(), T(0));
    std::fill(acc.begin(), acc.end(), T(0));
    const int64_t key_end = visible_keys(causal, i0 + rows - 1, S);
    for (int64_t j0 = 0; j0 < key_end; j0 += kKeyBlock) {
      const int64_t cols = std::min(kKeyBlock, key_end - j0);
      gemm(dtype, rows, cols, E, q + i0 * qr, qr, 1, k + j0 * kr, 1, kr, scores.data(), cols);
      for (int64_t r = 0; r < rows; ++r) {
        T* row = scores.data() + r * cols;
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
          block_sum = vk.exp_scaled_sum_f32(row, seen, scale, shift);
        } else {
          for (int64_t c = 0; c < seen; ++c) row[c] = row[c] * scale - shift;
          exp_in_place(row, seen);
          for (int64_t c = 0; c < seen; ++c) block_sum += row[c];
        }
        std::fill(row + seen, row + cols, T(0));
        const T correction = row_max[r] == kMinusInf ? T(0) : std::exp(row_max[r] - shift);
        row_sum[r] = row_sum[r] * correction + block_sum;
        row_max[r] = new_max;
        T* acc_row = acc.data() + r * Ev;
        for (int64_t e = 0; e < Ev; ++e) acc_row[e] *= correction;
      }
      gemm(dtype, rows, Ev, cols, scores.data(), cols, 1, v + j0 * vr, vr, 1, partial.data(), Ev);
      for (int64_t x = 0; x < rows * Ev; ++x) acc[x] += partial[x];
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
  const int64_t qr = layout.q.row, kr = layout.k.row, vr = layout.v.row, outr = layout.out.row,
                doutr = layout.dout.row, dqr = layout.dq.row, dkr = layout.dk.row,
                dvr = layout.dv.row;
  const DType dtype = sizeof(T) == 4 ? DType::Float32 : DType::Float64;
  std::vector<T> p(kQueryBlock * kKeyBlock), dp(kQueryBlock * kKeyBlock), delta(L),
      partial(std::max({kKeyBlock * Ev, kKeyBlock * E, kQueryBlock * E}));
  // delta_i = sum_e dO[i][e] O[i][e], the row's <dO, O>: the softmax backward's row term.
  for (int64_t i = 0; i < L; ++i) {
    T sum = 0;
    for (int64_t e = 0; e < Ev; ++e) sum += dout[i * doutr + e] * out[i * outr + e];
    delta[i] = sum;
  }
  for (int64_t i = 0; i < L; ++i) std::fill(dq + i * dqr, dq + i * dqr + E, T(0));
  for (int64_t j = 0; j < S; ++j) std::fill(dk + j * dkr, dk + j * dkr + E, T(0));
  for (int64_t j = 0; j < S; ++j) std::fill(dv + j * dvr, dv + j * dvr + Ev, T(0));
  // out[row r of a rows x n block at `at`, rows `stride` apart] += partial's row r
  auto add_rows = [&](T* at, int64_t stride, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t x = 0; x < n; ++x) at[r * stride + x] += partial[r * n + x];
  };
  for (int64_t j0 = 0; j0 < S; j0 += kKeyBlock) {
    const int64_t cols = std::min(kKeyBlock, S - j0);
    // With a causal mask, queries before j0 see none of these keys.
    for (int64_t i0 = causal ? j0 / kQueryBlock * kQueryBlock : 0; i0 < L; i0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, L - i0);
      // P = exp(Q K^T scale - lse), 0 where masked.
      gemm(dtype, rows, cols, E, q + i0 * qr, qr, 1, k + j0 * kr, 1, kr, p.data(), cols);
      for (int64_t r = 0; r < rows; ++r) {
        T* row = p.data() + r * cols;
        const int64_t seen = std::clamp<int64_t>(visible_keys(causal, i0 + r, S) - j0, 0, cols);
        const T row_lse = lse[i0 + r];
        if constexpr (sizeof(T) == 4) {
          vector_kernels().exp_scaled_sum_f32(row, seen, scale, row_lse);
        } else {
          for (int64_t c = 0; c < seen; ++c) row[c] = row[c] * scale - row_lse;
          exp_in_place(row, seen);
        }
        std::fill(row + seen, row + cols, T(0));
      }
      // dV_j += P^T dO_i
      gemm(dtype, cols, Ev, rows, p.data(), 1, cols, dout + i0 * doutr, doutr, 1, partial.data(),
           Ev);
      add_rows(dv + j0 * dvr, dvr, cols, Ev);
      // dP = dO_i V_j^T; dS = P (dP - delta) scale
      gemm(dtype, rows, cols, Ev, dout + i0 * doutr, doutr, 1, v + j0 * vr, 1, vr, dp.data(), cols);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t x = r * cols + c;
          dp[x] = p[x] * (dp[x] - delta[i0 + r]) * scale;
        }
      // dQ_i += dS K_j; dK_j += dS^T Q_i
      gemm(dtype, rows, E, cols, dp.data(), cols, 1, k + j0 * kr, kr, 1, partial.data(), E);
      add_rows(dq + i0 * dqr, dqr, rows, E);
      gemm(dtype, cols, E, rows, dp.data(), 1, cols, q + i0 * qr, qr, 1, partial.data(), E);
      add_rows(dk + j0 * dkr, dkr, cols, E);
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
