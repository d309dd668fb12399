#include "kernels/isa.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace bprop::kernels {
namespace {

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return true;
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("fma");
  }
  return false;
}

Isa detect() {
  __builtin_cpu_init();
  if (const char* forced = std::getenv("BPROP_ISA")) {
    Isa isa;
    if (std::strcmp(forced, "avx512") == 0)
      isa = Isa::Avx512;
    else if (std::strcmp(forced, "avx2") == 0)
      isa = Isa::Avx2;
    else if (std::strcmp(forced, "scalar") == 0)
      isa = Isa::Scalar;
    else
      throw std::invalid_argument(std::string("BPROP_ISA=") + forced +
                                  " is not one of avx512, avx2, scalar");
    if (!cpu_has(isa))
      throw std::runtime_error(std::string("BPROP_ISA=") + forced + ": this CPU lacks it");
    return isa;
  }
  if (cpu_has(Isa::Avx512)) return Isa::Avx512;
  if (cpu_has(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

}  // namespace

Isa active_isa() {
  static const Isa isa = detect();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "?";
}

}  // namespace bprop::kernels
