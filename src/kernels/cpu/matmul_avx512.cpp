// AVX-512 (F/BW/VL/DQ + FMA + F16C) matrix kernels. Compiled for that target by the target region
// below (not by global flags), so the binary still runs on any x86-64; matmul.cpp calls these only
// when the CPU has the features. Standard headers come before the region so that no inline library
// function is compiled for AVX-512.
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

// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsic headers (the
// _mm512_undefined_* placeholders of cvtph/cvtepi conversions): a false positive (GCC bug 105593).
EP_TARGET_REGION_BEGIN("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")

#include "kernels/cpu/transpose_avx512.h"

namespace ep::kernels::detail::avx512 {
namespace {

struct S {
  static constexpr int W = 16;
  static constexpr int MR = 12;
  using V = __m512;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V bcast(float f) { return _mm512_set1_ps(f); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static float sum(V v) { return _mm512_reduce_add_ps(v); }
  static V from_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static V from_bf16(const uint16_t* p) {
    const __m512i w =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static V from_i8(__m128i b) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)); }
  static void q8_block(const int8_t* qs, V* v) {
    v[0] = from_i8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    v[1] = from_i8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16)));
  }
  // Q4_0 without integer-to-float conversion: vpermps looks the values q - 8 up in a 16-entry
  // table, using only the low 4 bits of each index lane (the low nibble as loaded, the high
  // nibble after a shift).
  static void q4_block(const uint8_t* qs, V* v) {
    const __m512 table = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    v[0] = _mm512_permutexvar_ps(idx, table);
    v[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(idx, 4), table);
  }
  static V bcast_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_set1_epi16(short(*p))); }
  // Transposes the 16x16 block src[i * lds + j] (i, j < 16) into dst[j * ldd + i].
  static constexpr int kTransposeBlock = 16;
  static void transpose(const float* src, int64_t lds, float* dst, int64_t ldd) {
    __m512i c[16];
    transpose16_epi32(reinterpret_cast<const uint8_t*>(src), lds * int64_t(sizeof(float)), c);
    for (int j = 0; j < 16; ++j) _mm512_storeu_si512(dst + j * ldd, c[j]);
  }
};

#include "kernels/cpu/matmul_impl.inc"

}  // namespace
}  // namespace ep::kernels::detail::avx512

EP_TARGET_REGION_END

namespace ep::kernels::detail {

const MatmulKernels& matmul_kernels_avx512() {
  static const MatmulKernels k{
      &avx512::matvec,           &avx512::gemm, avx512::NR, avx512::kScratchFloats,
      &avx512::pack_activations, avx512::MR};
  return k;
}

}  // namespace ep::kernels::detail
