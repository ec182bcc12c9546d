// Internal: instruction-set-specific element-wise kernels behind kernels/cpu/elementwise.h.
#pragma once

#include <cstdint>

namespace ep::kernels::detail {

using SwigluFn = void (*)(const float* gate, const float* up, float* out, int64_t n);
SwigluFn swiglu_avx512();  // call only on CPUs with AVX-512 F/BW/VL/DQ
SwigluFn swiglu_avx2();    // call only on CPUs with AVX2 + FMA

}  // namespace ep::kernels::detail
