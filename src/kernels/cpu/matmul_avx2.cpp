// AVX2 + FMA + F16C matrix kernels (the x86-64 baseline with SIMD). Compiled for that target by
// the target region below, not by global flags; see matmul_avx512.cpp.
#include "core/dtype.h"
#include "core/half.h"
#include "core/quant.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/stream_prefetch.h"
#include "kernels/cpu/target_region.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx2,fma,f16c")

#include "kernels/cpu/transpose_avx2.h"

namespace ep::kernels::detail::avx2 {
namespace {

struct S {
  static constexpr int W = 8;
  static constexpr int MR = 6;
  using V = __m256;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V bcast(float f) { return _mm256_set1_ps(f); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static float sum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static V from_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V from_bf16(const uint16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static V from_i8(__m128i b) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
  }  // low 8 bytes
  static void q8_block(const int8_t* qs, V* v) {
    for (int i = 0; i < 4; ++i)
      v[i] = from_i8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qs + 8 * i)));
  }
  // Transposes the 8x8 block src[i * lds + j] (i, j < 8) into dst[j * ldd + i].
  static constexpr int kTransposeBlock = 8;
  static void transpose(const float* src, int64_t lds, float* dst, int64_t ldd) {
    __m256i r[8], c[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_castps_si256(_mm256_loadu_ps(src + i * lds));
    transpose8_epi32(r, c);
    for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + j * ldd, _mm256_castsi256_ps(c[j]));
  }
  static V bcast_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_set1_epi16(short(*p))); }
  static void q4_block(const uint8_t* qs, V* v) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, m), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m), eight);
    v[0] = from_i8(lo);
    v[1] = from_i8(_mm_srli_si128(lo, 8));
    v[2] = from_i8(hi);
    v[3] = from_i8(_mm_srli_si128(hi, 8));
  }
};

#include "kernels/cpu/matmul_impl.inc"

}  // namespace
}  // namespace ep::kernels::detail::avx2

EP_TARGET_REGION_END

namespace ep::kernels::detail {

const MatmulKernels& matmul_kernels_avx2() {
  static const MatmulKernels k{&avx2::matvec,           &avx2::gemm, avx2::NR, avx2::kScratchFloats,
                               &avx2::pack_activations, avx2::MR};
  return k;
}

}  // namespace ep::kernels::detail
