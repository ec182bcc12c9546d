// 8-bit quantisation of one 32-float activation block with AVX-512, shared by the VNNI decode and
// prefill kernels. Include inside an EP_TARGET_REGION that enables AVX-512 F (the function takes
// its target). Rounding as every 8-bit path: d = max|x| / 127, q = round(x ·
// quantize_inverse_scale(max|x|)) to nearest even, clamped to [-127, 127] (never -128, even for a
// non-finite x).
#pragma once

#include "kernels/cpu/matmul_kernels.h"

#include <immintrin.h>

namespace ep::kernels::detail {

// q of the block at x as two vectors of 16 int32 (elements 0-15 in q0, 16-31 in q1); returns d.
inline float quantize_block_avx512(const float* x, __m512i& q0, __m512i& q1) {
  const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
  const float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
  const __m512 id = _mm512_set1_ps(quantize_inverse_scale(m));
  const __m512i lim = _mm512_set1_epi32(127), neg = _mm512_set1_epi32(-127);
  q0 = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x0, id)), lim), neg);
  q1 = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x1, id)), lim), neg);
  return m / 127.0f;
}

}  // namespace ep::kernels::detail
