#include "kernels/vector_kernels.h"

#include "kernels/isa.h"

namespace bprop::kernels {

const VectorKernels& vector_kernels() {
  static const VectorKernels kernels = [] {
    switch (active_isa()) {
      case Isa::Avx512:
        return vector_kernels_avx512();
      case Isa::Avx2:
        return vector_kernels_avx2();
      case Isa::Scalar:
        break;
    }
    return vector_kernels_scalar();
  }();
  return kernels;
}

}  // namespace bprop::kernels
