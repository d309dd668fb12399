// Runtime CPU dispatch: one build runs on any x86-64 and picks, at first use, the widest
// instruction set the CPU has among AVX-512 (F+VL), AVX2+FMA and the portable baseline
// (SSE2). BPROP_ISA=avx512|avx2|scalar forces a path (one the CPU lacks is an error), so
// each path can be tested on one machine.
#pragma once

namespace bprop::kernels {

enum class Isa { Scalar, Avx2, Avx512 };

Isa active_isa();
const char* isa_name(Isa isa);

}  // namespace bprop::kernels
