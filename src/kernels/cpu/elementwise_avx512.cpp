// AVX-512 SwiGLU: silu(g) · u with a vectorised exp (the scalar loop spends its time in expf,
// ~4% of a prefill). Compiled for that target by the target region below; elementwise.cpp calls it
// only on CPUs with AVX-512 F/BW/VL/DQ.
#include "kernels/cpu/elementwise_kernels.h"
#include "kernels/cpu/target_region.h"

#include <cmath>
#include <cstdint>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")

#include "kernels/cpu/exp_avx512.h"

namespace ep::kernels::detail::avx512 {
namespace {

// exp(x), x clamped to [-87, 88].
inline __m512 exp_clamped(__m512 x) {
  return exp_in_range(
      _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f)));
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  const __m512 one = _mm512_set1_ps(1.0f);
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    const __m512 e = exp_clamped(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(silu, _mm512_loadu_ps(up + i)));
  }
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp_clamped(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

}  // namespace
}  // namespace ep::kernels::detail::avx512

EP_TARGET_REGION_END

namespace ep::kernels::detail {

SwigluFn swiglu_avx512() {
  return &avx512::swiglu;
}

}  // namespace ep::kernels::detail
