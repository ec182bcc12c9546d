// Runtime CPU-feature dispatch for the CPU kernels. The binary targets baseline x86-64; kernels
// for wider instruction sets are compiled per function and chosen here at run time.
#pragma once

#include <string_view>

namespace ep::kernels {

// Instruction-set levels with kernels, in increasing order.
//   Scalar: portable C++ (any CPU; also the reference the SIMD paths are tested against).
//   Avx2:   AVX2 + FMA + F16C.
//   Avx512: AVX-512 F/BW/VL/DQ on top of Avx2 (VNNI and BF16 are reported separately).
enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false;
};

const CpuFeatures& cpu_features();  // detected once
Isa detected_isa();                 // best level this CPU supports
// The level kernels use: detected_isa(), lowered by the environment variable
// EP_ISA=scalar|avx2|avx512 (never raised above what the CPU supports).
Isa active_isa();
// The level a request for `want` gets on this CPU: min(want, detected_isa()).
Isa clamp_isa(Isa want);
std::string_view cpu_isa_name(Isa isa);  // "scalar", "avx2", "avx512"

}  // namespace ep::kernels
