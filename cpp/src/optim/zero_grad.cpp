// bprop::zero_grad (bprop/optim.h): the optimizers' zero_grad, for any list of parameters.
#include <vector>

#include "bprop/ops.h"
#include "bprop/optim.h"

namespace bprop {

void zero_grad(const std::vector<Tensor>& params, bool set_to_none) {
  for (const Tensor& p : params) {
    if (set_to_none) {
      Tensor(p).set_grad(Tensor());  // (a capture records it)
      continue;
    }
    Tensor g = p.grad();
    if (g.defined()) zero_(g);
  }
}

}  // namespace bprop
