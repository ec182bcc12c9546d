// AVX-512 attention for head_dim 16, 32, 64 and 128: attention_simd.inc sixteen lanes wide.
// Compiled for that target by the target region below; attention.cpp calls it only on CPUs with
// AVX-512.
#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/target_region.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

EP_TARGET_REGION_BEGIN("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")

#include "kernels/cpu/exp_simd.h"
#include "kernels/cpu/simd_f32_avx512.h"

namespace ep::kernels::detail::avx512 {
namespace {

using S = F32x16;
#include "kernels/cpu/attention_simd.inc"

}  // namespace
}  // namespace ep::kernels::detail::avx512

EP_TARGET_REGION_END

namespace ep::kernels::detail {

AttentionRangeFn attention_range_avx512(int64_t head_dim) {
  return avx512::supports_head_dim(head_dim) ? &avx512::attend : nullptr;
}

}  // namespace ep::kernels::detail
