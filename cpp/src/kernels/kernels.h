// Dense kernels: loops over raw buffers described by shape and strides. No graph, no Tensor.
//
// Elementwise kernels take operands that all share one iteration shape; a broadcast input
// has stride 0 in the dimensions it is repeated along. Strides are in elements and may be
// negative. The callers (ops/) have already promoted inputs to the kernel's dtype.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bprop/dtype.h"
#include "bprop/window.h"

namespace bprop::kernels {

struct Operand {
  void* data;  // address of element 0
  DType dtype;
  const int64_t* strides;  // in elements, one per iteration dimension
};

// The unary kernels, one row each: X(kind, floating_only, the value for an element x of type
// T). A floating_only kernel has no integer version. A row may also have a SIMD version
// (vector_unary in elementwise.cpp); the scalar expression is the reference it must match.
// clang-format off
#define BPROP_UNARY_KERNELS(X)                                       \
  X(Neg,     false, wrapping_neg(x))                                 \
  X(Relu,    false, x < T(0) ? T(0) : x) /* relu(NaN) stays NaN */   \
  X(Sign,    false, x > T(0) ? T(1) : x < T(0) ? T(-1) : x)          \
  X(Abs,     false, x < T(0) ? wrapping_neg(x) : x)                  \
  X(Exp,     true,  std::exp(x))                                     \
  X(Expm1,   true,  std::expm1(x))                                   \
  X(Log,     true,  std::log(x))                                     \
  X(Log1p,   true,  std::log1p(x))                                   \
  X(Tanh,    true,  std::tanh(x))                                    \
  X(Sigmoid, true,  stable_sigmoid(x))                               \
  X(Sqrt,    true,  std::sqrt(x))                                    \
  X(Sin,     true,  std::sin(x))                                     \
  X(Cos,     true,  std::cos(x))                                     \
  X(Erf,     true,  std::erf(x))
// clang-format on
enum class UnaryOp {
#define BPROP_UNARY_KERNEL_ENUM(kind, floating_only, value) kind,
  BPROP_UNARY_KERNELS(BPROP_UNARY_KERNEL_ENUM)
#undef BPROP_UNARY_KERNEL_ENUM
};
// Maximum and Minimum propagate NaN, as PyTorch's maximum/minimum do.
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum };
enum class ReduceOp { Sum, Prod, Max, Min };
enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge };

// out = op(in); out and in have the same dtype.
void unary(UnaryOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& in);
// out = a op b; all three have the same dtype.
void binary(BinaryOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& a,
            const Operand& b);
// out (bool) = a op b; a and b have the same dtype.
void compare(CompareOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& a,
             const Operand& b);
// out = cond ? a : b; cond is bool, the others share a dtype.
void where(int ndim, const int64_t* shape, const Operand& out, const Operand& cond,
           const Operand& a, const Operand& b);
// out = in, converting between any two dtypes.
void copy(int ndim, const int64_t* shape, const Operand& out, const Operand& in);
// Fused backward of tanh and sigmoid from the saved output y, in one pass and in the same
// rounding order as the composed VJPs: g * (1 - y * y) and g * (y * (1 - y)).
void tanh_backward(int ndim, const int64_t* shape, const Operand& out, const Operand& g,
                   const Operand& y);
void sigmoid_backward(int ndim, const int64_t* shape, const Operand& out, const Operand& g,
                      const Operand& y);
// out = value for every element.
void fill(int ndim, const int64_t* shape, const Operand& out, double value);
// A chain of unary and binary steps over one float iteration space of rows x cols values, in one
// pass: each step runs `unary` or `binary` on a block of whole rows at a time, its result kept
// in a block-sized temporary when a later step of the chain is its only reader, so the values
// between the steps never go to memory (Note [Fused elementwise chains] in elementwise.cpp).
// Each value's arithmetic is that of the steps run one by one.
struct ChainOperand {
  enum Layout : int { Full, Row, Scalar };  // rows x cols contiguous; one row repeated; one value
  void* data;
  Layout layout;
};
struct ChainStep {
  enum : int64_t { Unary = 0, Binary = 1 };
  // Per step, kFields values: Unary or Binary, the UnaryOp or BinaryOp, then the
  // registers of its output and inputs (b unused for a unary step): register r >= 0 is
  // operand r, r < 0 the temporary -1 - r.
  static constexpr int kFields = 5;
};
void elementwise_chain(DType dtype, int64_t rows, int64_t cols, const int64_t* steps,
                       int64_t step_count, const ChainOperand* operands, int64_t operand_count);
// nbytes zero bytes at out (a tensor made zeroed).
void zero_bytes(int64_t nbytes, void* out);
// One element's value, `size` (1 to 8) bytes of `bits` in memory order, at out.
void store_scalar(int64_t size, uint64_t bits, void* out);
// out += alpha * in, in place; same dtype (floating point).
void add_scaled(int ndim, const int64_t* shape, const Operand& out, const Operand& in,
                double alpha);
// out = the reduction of in over the dimensions where out's stride is 0 (out is pre-broadcast
// to the iteration shape). Sum and Prod accumulate floats in double and integers and bools in
// int64 (out is int64 then); Max and Min keep the dtype and propagate NaN. An empty Max/Min
// is the caller's error to report.
void reduce(ReduceOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& in);
// Along `dim` of in: the max (or min) value and the index of its first occurrence, written to
// values and indices (int64), which have in's shape with stride 0 along dim. NaN counts as the
// extreme (PyTorch's rule). in.shape[dim] must be > 0.
void arg_reduce(bool is_max, int ndim, const int64_t* shape, int dim, const Operand& values,
                const Operand& indices, const Operand& in);
// Along `dim` of in: the positions (int64) that order each line, ascending or descending; equal
// values keep their order (a stable sort), NaN counts as larger than every number (PyTorch's
// rule). indices has in's shape.
void argsort(bool descending, int ndim, const int64_t* shape, int dim, const Operand& indices,
             const Operand& in);
// out[.., i, ..] = in[.., index[.., i, ..], ..] along dim; out and index share out_shape,
// in has in_dim_size along dim. Indices were checked by the caller.
void gather(int ndim, const int64_t* out_shape, int dim, const Operand& out, const Operand& in,
            const Operand& index);
// out[.., index[.., i, ..], ..] += src[.., i, ..] along dim; src and index share src_shape.
void scatter_add(int ndim, const int64_t* src_shape, int dim, const Operand& out,
                 const Operand& src, const Operand& index);
// batch products C[i] = A[i] @ B[i] (C contiguous (batch, m, n)); batch strides in elements.
void gemm_batched(DType dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a,
                  int64_t batch_stride_a, int64_t rsa, int64_t csa, const void* b,
                  int64_t batch_stride_b, int64_t rsb, int64_t csb, void* c);
// im2col for 2-d convolution and pooling: in is (N, C, H, W) contiguous, out is
// (N, C * kh * kw, OH * OW) contiguous; padding reads as pad_value.
void unfold2d(DType dtype, int64_t n, int64_t c, int64_t h, int64_t w, const Window2d& window,
              const void* in, void* out, double pad_value);
// col2im, the adjoint of unfold2d: out (N, C, H, W) contiguous and zeroed, accumulates.
void fold2d(DType dtype, int64_t n, int64_t c, int64_t h, int64_t w, const Window2d& window,
            const void* in, void* out);
// layer_norm (rms: rms_norm) over the last d values of `rows` contiguous rows of float x:
// y = (x - mean) * rstd [* weight] [+ bias], weight and bias (d values) may be null; each
// row's mean (0 for rms) and rstd = 1 / sqrt(var + eps) are stored for the backward.
void norm_rows(DType dtype, int64_t rows, int64_t d, bool rms, double eps, const void* x,
               const void* weight, const void* bias, void* y, void* mean, void* rstd);
// norm_rows' backward from the output gradient g (rows x d, contiguous) and the saved
// statistics, in one pass: dx, the weight's gradient (sum over rows of g * (x - mean) * rstd) and
// the bias's (sum over rows of g); any of the three may be null. The sums go in fixed blocks of
// rows, the same bits whatever the thread count.
void norm_backward(DType dtype, int64_t rows, int64_t d, bool rms, const void* x,
                   const void* weight, const void* mean, const void* rstd, const void* g, void* dx,
                   void* dweight, void* dbias);
// Where the (batch, head) problems of an attention tensor lie: problem b = o * heads + h starts
// o * outer + h * inner elements from the tensor's data, its rows `row` elements apart, each
// row's values contiguous. So a (B, H, T, D) view of a (B, T, H, D) buffer (heads split off a
// projection by view + transpose) is read in place: outer = T H D, inner = D, row = H D.
struct AttentionStrides {
  int64_t outer, inner, row;
};
struct AttentionLayout {
  int64_t heads;
  AttentionStrides q, k, v, out;
  AttentionStrides dout, dq, dk, dv;  // the backward's; unused by the forward
};
// softmax(Q K^T scale [causal mask]) V for `batch` independent (L x E, S x E, S x Ev) float
// problems laid out as `layout` says; out is batch x L x Ev, lse (batch x L, contiguous) each
// row's log-sum-exp of its scaled scores, for the backward. causal: query i sees keys j <= i.
// Tiled (attention.cpp).
void attention_forward(DType dtype, int64_t batch, int64_t L, int64_t S, int64_t E, int64_t Ev,
                       double scale, bool causal, const AttentionLayout& layout, const void* q,
                       const void* k, const void* v, void* out, void* lse);
// dq, dk, dv from dout and the forward's out and lse, recomputing the probabilities by tile.
void attention_backward(DType dtype, int64_t batch, int64_t L, int64_t S, int64_t E, int64_t Ev,
                        double scale, bool causal, const AttentionLayout& layout, const void* q,
                        const void* k, const void* v, const void* out, const void* lse,
                        const void* dout, void* dq, void* dk, void* dv);
// cross_entropy of `rows` x `classes` contiguous float logits against int64 class indices
// (ignore_index rows count for nothing): reduction 0 (none) writes each row's loss to out, 1
// (mean over the counted rows) or 2 (sum) one value; lse gets each row's log-sum-exp.
void cross_entropy_forward(DType dtype, int64_t rows, int64_t classes, int reduction, const void* x,
                           const void* target, int64_t ignore_index, void* out, void* lse);
// dx = (softmax(x) - one_hot(target)) * g (g per row for reduction 0, else one value, divided
// by the counted rows for the mean); ignored rows get 0.
void cross_entropy_backward(DType dtype, int64_t rows, int64_t classes, int reduction,
                            const void* x, const void* target, int64_t ignore_index,
                            const void* lse, const void* g, void* dx);
// softmax (log: log_softmax) of each of `rows` contiguous rows of `cols` float values, and its
// backward from the output y and the output's gradient g (Note [Fused softmax] in ops/nn.cpp).
// Rows split over the kernel threads; each row's arithmetic is the same for any split.
void softmax_rows(DType dtype, int64_t rows, int64_t cols, bool log, const void* x, void* y);
void softmax_rows_backward(DType dtype, int64_t rows, int64_t cols, bool log, const void* y,
                           const void* g, void* dx);
// out's row i = src's row index[i], rows of row_bytes bytes, contiguous; index: int64.
void gather_rows(int64_t count, int64_t row_bytes, const void* src, const void* index, void* out);
// out's row index[i] += src's row i for i in order, rows of row_len float values, contiguous.
void scatter_add_rows(DType dtype, int64_t count, int64_t row_len, const void* src,
                      const void* index, void* out);
// gelu over n contiguous float values (tanh_form: PyTorch's approximate='tanh'); `slope`, when
// not null, gets gelu'(x), so that the backward is dx = slope * g (Note [gelu's saved slope]).
void gelu(DType dtype, int64_t n, bool tanh_form, const void* x, void* y, void* slope);
// Optimizer updates over many parameters in one call (Note [Multi-tensor optimizer step] in
// optimizer_step.cpp): one pass over every tensor's contiguous values, split over the kernel
// threads by element, so each value's arithmetic, and so its bits, is the same for any split.
// Adam (AdamW when decoupled), in PyTorch's order of operations, per value:
//   g += weight_decay w (decoupled: w *= 1 - lr weight_decay instead);
//   m += (1 - beta1) (g - m);  v = v beta2 + (1 - beta2) g g;
//   w += -(lr / (1 - beta1^step)) m / (sqrt(v) / sqrt(1 - beta2^step) + eps).
struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
};
struct AdamTensor {
  void* w;
  const void* g;
  void* m;
  void* v;
  int64_t n;
  int64_t step;  // this tensor's step count, this step included (its bias corrections)
};
void adam_step(DType dtype, const AdamHyper& hyper, const AdamTensor* tensors, int64_t count);
// SGD: d = g + weight_decay w; with momentum, buffer = d at a tensor's first step, else
// momentum buffer + (1 - dampening) d, and d = buffer (nesterov: d + momentum buffer); w -= lr d.
struct SGDHyper {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};
struct SGDTensor {
  void* w;
  const void* g;
  void* buffer;  // null without momentum
  int64_t n;
  bool first_step;
};
void sgd_step(DType dtype, const SGDHyper& hyper, const SGDTensor* tensors, int64_t count);
// C[M, N] = A[M, K] @ B[K, N]. A and B have any element strides (row stride, column stride),
// so transposed operands need no copy; C is row-major with leading dimension ldc. Threaded;
// each element of C is summed in the same order whatever the thread count.
void gemm(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa, int64_t csa,
          const void* b, int64_t rsb, int64_t csb, void* c, int64_t ldc);
// What a product may skip, and whether it adds to C: attention's tiles under a causal mask,
// whose operands are triangular (numpy's tril/triu, diagonal d) and whose products are summed.
//   ALower: A = tril(A, d), so row i sums over p <= i + d only;
//   AUpper: A = triu(A, d), so row i sums over p >= i + d only;
//   CLower: only tril(C, d) is wanted; C's other elements may be left as they were.
// Skipped terms are exact zeros, so each wanted element is the full product's (the sums keep
// their order; only a -0 may become +0). A non-finite B value meeting one of A's zeros made a
// NaN in the full product; skipped, it doesn't, but a tile skips only where all its rows may,
// so whether such a NaN appears depends on the micro-kernel's tile height (the instruction set).
// accumulate: C += A B, C plus each k block's sum in turn (a small product, m n k <= 4096,
// adds term by term), instead of C = A B.
struct GemmOptions {
  enum class Triangle { None, ALower, AUpper, CLower } triangle = Triangle::None;
  int64_t diagonal = 0;
  bool accumulate = false;
};
void gemm_with_options(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa,
                       int64_t csa, const void* b, int64_t rsb, int64_t csb, void* c, int64_t ldc,
                       const GemmOptions& options);
// C = A B, then elementwise_chain's steps over C's m x n values: C is operands[output] (Full,
// contiguous), which the steps read as the product and the last one writes. The chain runs on
// blocks of C's rows as the product finishes them, while they are in cache; each value's bits
// are those of gemm then elementwise_chain (Note [GEMM epilogues] in gemm.cpp). The steps'
// rows are C's rows, n values each (a Row operand has n values).
void gemm_chain(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa,
                int64_t csa, const void* b, int64_t rsb, int64_t csb, int64_t output,
                const int64_t* steps, int64_t step_count, const ChainOperand* operands,
                int64_t operand_count);
// The GEMM's micro-kernel tile (mr x nr) and cache blocking (kc, mc, nc) for a float dtype on
// this machine (Note [GEMM blocking] in gemm.cpp), as gemm uses them.
struct GemmBlocking {
  int mr = 0, nr = 0;
  int64_t kc = 0, mc = 0, nc = 0;
  std::string kernel;     // the micro-kernel's name, "avx512-12x32"
  std::string chosen_by;  // why that one: raced at first use, cached, BPROP_TUNE=0, ...
  // The race's speed of each candidate (gemm_kernel_names' order) per computed element,
  // relative to the first; each product runs the one fastest for its m and n (Note
  // [Edge-aware choice] in gemm.cpp). Empty where no race ran: `kernel` runs every product.
  std::vector<double> speeds;
};
GemmBlocking gemm_blocking(DType dtype);
// The candidate micro-kernels of the active instruction set for float32 or float64, by name
// (Note [GEMM micro-kernel choice] in gemm.cpp); the first is the default.
std::vector<std::string> gemm_kernel_names(DType dtype);
// The candidate an m x n product of dtype with a row-major A runs (Note [Edge-aware choice]
// in gemm.cpp).
std::string gemm_kernel_for(DType dtype, int64_t m, int64_t n);
// Makes gemm run the named candidate from now on, in this process (tests and benchmarks; all
// candidates give the same bits); an empty name returns to the chosen one. Throws
// std::invalid_argument for a name gemm_kernel_names does not list.
void set_gemm_kernel(DType dtype, const std::string& name);
// This core's float32 FMA peak in GFLOP/s (2 per FMA), measured by a register-only loop on the
// active instruction set for about `seconds`: the roofline bench_kernels.py reports against.
double measure_fma_peak_gflops(double seconds);
// The float32 micro-kernel's rate alone, in GFLOP/s, about `seconds`: the active candidate on one
// panel of B (kept in L1) and a block of packed A (from L2), as a product's inner loops run it,
// without packing, edges or C's traffic to memory: the ceiling a whole product can approach.
double measure_micro_kernel_gflops(double seconds);

}  // namespace bprop::kernels
