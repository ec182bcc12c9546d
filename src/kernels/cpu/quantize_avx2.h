// 8-bit quantisation of one 32-float activation block with AVX2, shared by the AVX2 decode and
// prefill kernels. Include inside an EP_TARGET_REGION that enables AVX2 (the functions take its
// target). Rounding as every 8-bit path: d = max|x| / 127, q = round(x · quantize_inverse_scale(
// max|x|)) to nearest even, clamped to [-127, 127] (never -128, even for a non-finite x).
#pragma once

#include "kernels/cpu/matmul_kernels.h"

#include <cstdint>

#include <immintrin.h>

namespace ep::kernels::detail {

// q of the block at x as four vectors of 8 int32 (elements 8i..8i + 7 in q[i]); returns d.
inline float quantize_block_avx2(const float* x, __m256i q[4]) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float m = _mm_cvtss_f32(m4);
  const __m256 id = _mm256_set1_ps(quantize_inverse_scale(m));
  for (int i = 0; i < 4; ++i) {
    q[i] = _mm256_max_epi32(
        _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v[i], id)), _mm256_set1_epi32(127)),
        _mm256_set1_epi32(-127));
  }
  return m / 127.0f;
}

// The 32 values of q as signed bytes in element order.
inline __m256i pack_block_avx2(const __m256i q[4]) {
  // packs_epi32 then packs_epi16 leave 4-byte groups of the four vectors interleaved by lane
  // (q0[0:4], q1[0:4], q2[0:4], q3[0:4], q0[4:8], ...); one dword permute restores the order.
  const __m256i bytes =
      _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Σ q over the block.
inline int32_t block_sum_avx2(const __m256i q[4]) {
  const __m256i v = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

}  // namespace ep::kernels::detail
