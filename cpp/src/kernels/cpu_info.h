// What the kernels know of the machine they run on, read once: the CPU's name and the sizes of
// its data caches, from sysfs as lscpu reads them (CPUID's brand string where /proc/cpuinfo has
// no name). The GEMM derives its blocking from the caches; bp.show_config() prints both.
#pragma once

#include <cstdint>
#include <string>

namespace bprop::kernels {

struct CpuInfo {
  std::string model;      // lscpu's "Model name", or "unknown"
  int64_t l1d_bytes = 0;  // one core's L1 data cache; 0 when unknown
  int64_t l2_bytes = 0;   // one core's L2
  int64_t l3_bytes = 0;   // the L3 the first core shares
  int l3_sharing = 0;     // logical CPUs sharing that L3; 0 when unknown
};

const CpuInfo& cpu_info();

}  // namespace bprop::kernels
