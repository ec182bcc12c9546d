// AVX2 element-wise kernels (swiglu_simd.h eight lanes wide). Compiled for that target by the
// target region below; elementwise.cpp calls them only on CPUs with AVX2 + FMA.
#include "kernels/cpu/elementwise_kernels.h"
#include "kernels/cpu/target_region.h"

#include <cstdint>

EP_TARGET_REGION_BEGIN("avx2,fma,f16c")

#include "kernels/cpu/simd_f32_avx2.h"
#include "kernels/cpu/swiglu_simd.h"

namespace ep::kernels::detail::avx2 {
namespace {

// Instantiated here, inside the region, so that it is compiled for this target.
void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  swiglu_lanes<F32x8>(gate, up, out, n);
}

}  // namespace
}  // namespace ep::kernels::detail::avx2

EP_TARGET_REGION_END

namespace ep::kernels::detail {

SwigluFn swiglu_avx2() {
  return &avx2::swiglu;
}

}  // namespace ep::kernels::detail
