// AVX2 attention: attention_simd.inc eight lanes wide for head_dim 16, 32, 64 and 128, and the
// portable kernel (attention_portable.inc, vectorised by the compiler) for other head sizes.
// Compiled for AVX2 + FMA by the target region below, not by global flags; attention.cpp calls
// these only on CPUs with AVX2 + FMA + F16C.
#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/target_region.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

EP_TARGET_REGION_BEGIN("avx2,fma,f16c")

#include "kernels/cpu/exp_simd.h"
#include "kernels/cpu/simd_f32_avx2.h"

namespace ep::kernels::detail::avx2 {
namespace {

using S = F32x8;
#include "kernels/cpu/attention_simd.inc"

}  // namespace
}  // namespace ep::kernels::detail::avx2

namespace ep::kernels::detail::attention_avx2 {
namespace {

#include "kernels/cpu/attention_portable.inc"

}  // namespace
}  // namespace ep::kernels::detail::attention_avx2

EP_TARGET_REGION_END

namespace ep::kernels::detail {

AttentionRangeFn attention_range_avx2(int64_t head_dim) {
  return avx2::supports_head_dim(head_dim) ? &avx2::attend : nullptr;
}

void portable_attention_range_avx2(const AttentionArgs& a, int64_t begin, int64_t end) {
  attention_avx2::portable_attention_range(a, begin, end);
}

}  // namespace ep::kernels::detail
