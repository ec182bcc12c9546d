// Internal: 16-lane f32 vector operations (F32x16) for the kernels written once over a lane count
// (attention_simd.inc, swiglu_simd.h, exp_simd.h). Include only inside a region compiled for
// AVX-512 F/DQ; internal linkage, so each including file compiles its own copy for its target.
#pragma once

#include <cstdint>

#include <immintrin.h>

namespace ep::kernels::detail {
namespace {

struct F32x16 {
  static constexpr int W = 16;
  // Accumulator registers a kernel may hold in one loop (of 32), leaving room for its operands.
  static constexpr int kAccRegs = 16;
  using V = __m512;

  static __mmask16 first(int n) {  // lanes [0, n), n >= 1
    return n >= W ? __mmask16(0xffff) : __mmask16((1u << n) - 1u);
  }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float f) { return _mm512_set1_ps(f); }
  static V load(const float* p) { return _mm512_load_ps(p); }  // 64-byte aligned
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_store_ps(p, v); }  // 64-byte aligned
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V loadu_first(const float* p, int n) { return _mm512_maskz_loadu_ps(first(n), p); }
  static void storeu_first(float* p, V v, int n) { _mm512_mask_storeu_ps(p, first(n), v); }
  static V keep_first(V v, int n) { return _mm512_maskz_mov_ps(first(n), v); }
  static V max_first(V acc, V v, int n) { return _mm512_mask_max_ps(acc, first(n), acc, v); }

  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }    // a·b + c
  static V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c − a·b
  static V round(V v) {
    return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // v · 2^n for integral n in [-126, 127].
  static V scale_pow2(V v, V n) { return _mm512_scalef_ps(v, n); }

  static float reduce_add(V v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(V v) { return _mm512_reduce_max_ps(v); }
  // Sum of the lanes in a fixed tree: lanes l and l + 8, then l + 4, l + 2, l + 1.
  static float sum_tree(V v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
  }
};

}  // namespace
}  // namespace ep::kernels::detail
