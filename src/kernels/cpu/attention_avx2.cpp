// The portable attention kernel compiled for AVX2 + FMA (CPUs without AVX-512, where no
// hand-written kernel exists): the same source as the baseline build, vectorised eight lanes wide.
// Compiled for that target by the target region below, not by global flags.
#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/target_region.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

EP_TARGET_REGION_BEGIN("avx2,fma,f16c")

namespace ep::kernels::detail::attention_avx2 {
namespace {

#include "kernels/cpu/attention_portable.inc"

}  // namespace
}  // namespace ep::kernels::detail::attention_avx2

EP_TARGET_REGION_END

namespace ep::kernels::detail {

void attention_range_avx2(const AttentionArgs& a, int64_t begin, int64_t end) {
  attention_avx2::portable_attention_range(a, begin, end);
}

}  // namespace ep::kernels::detail
