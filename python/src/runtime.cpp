// Runtime settings: threads and the instruction-set path.
#include "bindings.h"
#include "kernels/isa.h"
#include "kernels/parallel.h"

namespace bprop::python {

void init_runtime(py::module_& m) {
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Threads the kernels may use, the calling one included");
  export_name(m, "set_num_threads");
  m.def("get_num_threads", &get_num_threads,
        "Threads the kernels may use (set_num_threads), the calling one included");
  export_name(m, "get_num_threads");
  m.def(
      "_isa", [] { return kernels::isa_name(kernels::active_isa()); },
      "The instruction-set path the kernels run on: avx512, avx2 or scalar");
  m.def("_hold_pool_workers", &kernels::hold_workers_for_testing, py::arg("hold"),
        "Testing: the kernel pool's workers claim no work while held (a descheduled worker)");
}

}  // namespace bprop::python
