// Runtime settings: threads and the instruction-set path.
#include <pybind11/typing.h>

#include "bindings.h"
#include "kernels/cpu_info.h"
#include "kernels/isa.h"
#include "kernels/kernels.h"
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
  m.def(
      "_config",
      []() -> py::typing::Dict<py::str, py::object> {
        const kernels::CpuInfo& cpu = kernels::cpu_info();
        py::dict config;
        config["cpu"] = cpu.model;
        config["l1d_bytes"] = cpu.l1d_bytes;
        config["l2_bytes"] = cpu.l2_bytes;
        config["l3_bytes"] = cpu.l3_bytes;
        config["l3_sharing"] = cpu.l3_sharing;
        config["isa"] = kernels::isa_name(kernels::active_isa());
        config["threads"] = get_num_threads();
        for (DType dtype : {DType::Float32, DType::Float64}) {
          const kernels::GemmBlocking b = kernels::gemm_blocking(dtype);
          py::dict gemm;
          gemm["mr"] = b.mr;
          gemm["nr"] = b.nr;
          gemm["kc"] = b.kc;
          gemm["mc"] = b.mc;
          gemm["nc"] = b.nc;
          gemm["kernel"] = b.kernel;
          gemm["chosen_by"] = b.chosen_by;
          gemm["candidates"] = kernels::gemm_kernel_names(dtype);
          gemm["speeds"] = b.speeds;
          config[py::str(std::string("gemm_") + dtype_name(dtype))] = gemm;
        }
        return config;
      },
      "What the kernels run with on this machine (bprop.show_config prints it)");
  m.def("_fma_peak_gflops", &kernels::measure_fma_peak_gflops, py::arg("seconds") = 0.05,
        "This core's float32 FMA peak in GFLOP/s, measured by a register-only loop",
        py::call_guard<py::gil_scoped_release>());
  m.def("_micro_kernel_gflops", &kernels::measure_micro_kernel_gflops, py::arg("seconds") = 0.05,
        "The float32 GEMM micro-kernel's GFLOP/s alone (B's panel in L1, packed A from L2)",
        py::call_guard<py::gil_scoped_release>());
  m.def("_gemm_kernels", &kernels::gemm_kernel_names, py::arg("dtype"),
        "The GEMM's candidate micro-kernels for float32 or float64 on this machine");
  m.def("_gemm_kernel_for", &kernels::gemm_kernel_for, py::arg("dtype"), py::arg("m"), py::arg("n"),
        "Testing: the candidate micro-kernel an m x n product runs");
  m.def("_set_gemm_kernel", &kernels::set_gemm_kernel, py::arg("dtype"), py::arg("name"),
        "Testing and benchmarks: run the named candidate micro-kernel ('' for the chosen one)");
  m.def("_hold_pool_workers", &kernels::hold_workers_for_testing, py::arg("hold"),
        "Testing: the kernel pool's workers claim no work while held (a descheduled worker)");
}

}  // namespace bprop::python
