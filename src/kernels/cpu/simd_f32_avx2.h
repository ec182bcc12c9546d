// Internal: 8-lane f32 vector operations (F32x8) for the kernels written once over a lane count
// (attention_simd.inc, swiglu_simd.h, exp_simd.h). Include only inside a region compiled for
// AVX2 + FMA; internal linkage, so each including file compiles its own copy for its target.
#pragma once

#include <cstdint>

#include <immintrin.h>

namespace ep::kernels::detail {
namespace {

struct F32x8 {
  static constexpr int W = 8;
  // Accumulator registers a kernel may hold in one loop (of 16), leaving room for its operands.
  static constexpr int kAccRegs = 8;
  using V = __m256;

  static __m256i first(int n) {  // lanes [0, n) all ones, n >= 1
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float f) { return _mm256_set1_ps(f); }
  static V load(const float* p) { return _mm256_load_ps(p); }  // 32-byte aligned
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_store_ps(p, v); }  // 32-byte aligned
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V loadu_first(const float* p, int n) { return _mm256_maskload_ps(p, first(n)); }
  static void storeu_first(float* p, V v, int n) { _mm256_maskstore_ps(p, first(n), v); }
  static V keep_first(V v, int n) { return _mm256_and_ps(v, _mm256_castsi256_ps(first(n))); }
  static V max_first(V acc, V v, int n) {
    return _mm256_blendv_ps(acc, _mm256_max_ps(acc, v), _mm256_castsi256_ps(first(n)));
  }

  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }    // a·b + c
  static V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }  // c − a·b
  static V round(V v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // v · 2^n for integral n in [-126, 127]: 2^n built in the exponent field.
  static V scale_pow2(V v, V n) {
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(v, _mm256_castsi256_ps(e));
  }

  static float reduce_add(V v) { return sum_tree(v); }
  static float reduce_max(V v) {
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_max_ss(q, _mm_movehdup_ps(q)));
  }
  // Sum of the lanes in a fixed tree: lanes l and l + 4, then l + 2, l + 1.
  static float sum_tree(V v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
  }
};

}  // namespace
}  // namespace ep::kernels::detail
