// Whole rows picked and scattered by index (index_select and index_add along dim 0 of
// contiguous tensors: an embedding's lookup and its gradient): a row copy instead of a strided
// walk per element. Indices come as `const void*`: launch() records a `const int64_t*` argument
// as a shape array.
#include <algorithm>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/parallel.h"

namespace bprop::kernels {

void gather_rows(int64_t count, int64_t row_bytes, const void* src, const void* index, void* out) {
  const int64_t* idx = static_cast<const int64_t*>(index);
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(out);
  parallel_for(count, std::max<int64_t>(1, 65536 / std::max<int64_t>(row_bytes, 1)),
               [&](int64_t first, int64_t last) {
                 for (int64_t i = first; i < last; ++i)
                   std::memcpy(to + i * row_bytes, from + idx[i] * row_bytes,
                               static_cast<size_t>(row_bytes));
               });
}

namespace {
template <typename T>
void scatter_add_rows_typed(int64_t count, int64_t row_len, const T* src, const int64_t* idx,
                            T* out) {
  // Columns split over threads; each column adds its rows in index order: the same sums, in
  // the same order, for any thread count.
  constexpr int64_t kChunk = 256;
  parallel_for((row_len + kChunk - 1) / kChunk, std::max<int64_t>(1, 16384 / (count + 1)),
               [&](int64_t first, int64_t last) {
                 for (int64_t chunk = first; chunk < last; ++chunk) {
                   const int64_t c0 = chunk * kChunk, c1 = std::min(row_len, c0 + kChunk);
                   for (int64_t i = 0; i < count; ++i) {
                     const T* __restrict from = src + i * row_len;
                     T* __restrict to = out + idx[i] * row_len;
                     for (int64_t c = c0; c < c1; ++c) to[c] += from[c];
                   }
                 }
               });
}
}  // namespace

void scatter_add_rows(DType dtype, int64_t count, int64_t row_len, const void* src,
                      const void* index, void* out) {
  const int64_t* idx = static_cast<const int64_t*>(index);
  if (dtype == DType::Float32)
    scatter_add_rows_typed(count, row_len, static_cast<const float*>(src), idx,
                           static_cast<float*>(out));
  else
    scatter_add_rows_typed(count, row_len, static_cast<const double*>(src), idx,
                           static_cast<double*>(out));
}

}  // namespace bprop::kernels
