// AVX2 expansion of the block types that have no vector loader in the matrix kernels (Q4_1, Q5_0,
// Q5_1 and the K-quants) to f32 for the matrix kernels' f32 paths (the
// exact precision, and prefill in the fast one), bit-identical to the reference dequantiser in
// core/quant_k.cpp: the same f32 operations in the same order, each rounded (the region enables
// no FMA, so the compiler cannot fuse a multiply and a subtraction). Called only on CPUs with
// AVX2 and F16C.
#include "core/dtype.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/target_region.h"

#include <cstdint>
#include <cstring>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx2,f16c")

namespace ep::kernels::detail::dequant_avx2 {
namespace {

// Scale and min of sub-block j of a Q4_K/Q5_K block (as core/quant_k.cpp).
inline void scale_min(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// out[0..32) = dl · v − ml for the 32 unsigned bytes of v.
inline void scale_32_u8(__m256i v, float dl, float ml, float* out) {
  const __m256 d = _mm256_set1_ps(dl), m = _mm256_set1_ps(ml);
  const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int k = 0; k < 4; ++k) {
    const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
    _mm256_storeu_ps(out + 8 * k, _mm256_sub_ps(_mm256_mul_ps(d, f), m));
  }
}

template <bool kFifthBit, class Block>
void expand_q45k(const Block* b, float* y, int64_t nb) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int64_t i = 0; i < nb; ++i, ++b) {
    const float d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin);
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kFifthBit) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh));
    for (int g = 0; g < 4; ++g) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * g));
      __m256i q[2] = {_mm256_and_si256(qs, low4), _mm256_and_si256(_mm256_srli_epi16(qs, 4), low4)};
      for (int h = 0; h < 2; ++h) {
        const int j = 2 * g + h;
        if constexpr (kFifthBit) {
          const __m256i bit = _mm256_set1_epi8(char(1 << j));
          const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
          q[h] = _mm256_or_si256(q[h], _mm256_and_si256(set, _mm256_set1_epi8(16)));
        }
        int sc = 0, m = 0;
        scale_min(b->scales, j, sc, m);
        scale_32_u8(q[h], d * float(sc), dmin * float(m), y + 32 * j);
      }
    }
    y += kSuperBlock;
  }
}

void expand_q6k(const BlockQ6_K* b, float* y, int64_t nb) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), three = _mm256_set1_epi8(3);
  const __m256i offset = _mm256_set1_epi8(32);
  for (int64_t i = 0; i < nb; ++i, ++b) {
    const float d = _cvtsh_ss(b->d);
    for (int h = 0; h < 2; ++h) {
      const __m256i la = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * h));
      const __m256i lb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * h + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh + 32 * h));
      const __m256i low[4] = {_mm256_and_si256(la, low4), _mm256_and_si256(lb, low4),
                              _mm256_and_si256(_mm256_srli_epi16(la, 4), low4),
                              _mm256_and_si256(_mm256_srli_epi16(lb, 4), low4)};
      for (int k = 0; k < 4; ++k) {
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), three);
        const __m256i q =
            _mm256_sub_epi8(_mm256_or_si256(low[k], _mm256_slli_epi16(high, 4)), offset);
        float* o = y + 128 * h + 32 * k;
        const __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
        for (int s = 0; s < 2; ++s) {  // elements 0-15 and 16-31: scales 8h + 2k and + 1
          const __m256 ds = _mm256_set1_ps(d * float(b->scales[8 * h + 2 * k + s]));
          const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(halves[s]));
          const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(halves[s], 8)));
          _mm256_storeu_ps(o + 16 * s, _mm256_mul_ps(ds, f0));
          _mm256_storeu_ps(o + 16 * s + 8, _mm256_mul_ps(ds, f1));
        }
      }
    }
    y += kSuperBlock;
  }
}

// out[0..16) = dl · v for the 16 signed bytes of v.
inline void scale_16_s8(__m128i v, float dl, float* out) {
  const __m256 d = _mm256_set1_ps(dl);
  _mm256_storeu_ps(out, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))));
  _mm256_storeu_ps(
      out + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)))));
}

// The six-bit scale j of a Q3_K block, less 32 (as core/quant_k.cpp).
inline int q3_k_scale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q3_K: 2-bit planes (bits 2s..2s + 1 of byte l of half h: element 128h + 32s + l), less 4 where
// bit 4h + s of hmask[l] is clear, times the signed 6-bit scale of sub-block 8h + 2s + l / 16.
// (Q2_K, of the same plan, is left to the reference dequantiser: GCC 12 at -O3 miscompiled the
// same loop with an unsigned min term, and the exact-precision test caught it.)
void expand_q3k(const BlockQ3_K* b, float* y, int64_t nb) {
  const __m256i three = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
  for (int64_t i = 0; i < nb; ++i, ++b, y += kSuperBlock) {
    const float d = _cvtsh_ss(b->d);
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->hmask));
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * h));
      for (int s = 0; s < 4; ++s) {
        __m256i v = _mm256_and_si256(_mm256_srl_epi16(qs, _mm_cvtsi32_si128(2 * s)), three);
        const __m256i bit = _mm256_set1_epi8(char(1 << (4 * h + s)));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
        v = _mm256_sub_epi8(v, _mm256_andnot_si256(set, four));  // −4 where the bit is clear
        float* o = y + 128 * h + 32 * s;
        const int j = 8 * h + 2 * s;
        scale_16_s8(_mm256_castsi256_si128(v), d * float(q3_k_scale(b->scales, j)), o);
        scale_16_s8(_mm256_extracti128_si256(v, 1), d * float(q3_k_scale(b->scales, j + 1)),
                    o + 16);
      }
    }
  }
}

// The 32 quants of a Q4_1/Q5_0/Q5_1 block in element order (elements 0-15 the low nibbles of
// qs, 16-31 the high ones), with bit j of qh as element j's fifth bit where qh is given.
inline __m256i legacy_quants(const uint8_t* qs, const uint8_t* qh) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i low4 = _mm_set1_epi8(0x0f);
  __m256i q =
      _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low4), _mm_and_si128(packed, low4));
  if (qh != nullptr) {
    uint32_t bits = 0;
    std::memcpy(&bits, qh, 4);
    // Byte j of the vector gets byte j / 8 of qh, tested against bit j % 8.
    const __m256i spread =
        _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)),
                            _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                             2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i mask = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
    q = _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(16)));
  }
  return q;
}

// Q4_1 / Q5_1: float(q)·d + m; Q5_0: float(q − 16)·d (as core/quant_legacy.cpp).
template <DType T, class Block>
void expand_legacy(const Block* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, ++b, y += kQuantBlock) {
    const uint8_t* qh = nullptr;
    if constexpr (T != DType::Q4_1) qh = b->qh;
    __m256i q = legacy_quants(b->qs, qh);
    if constexpr (T == DType::Q5_0) q = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(b->d));
    __m256 m = _mm256_setzero_ps();
    if constexpr (T != DType::Q5_0) m = _mm256_set1_ps(_cvtsh_ss(b->m));
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k) {
      const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[k]));  // q < 32: sign-safe
      __m256 v = _mm256_mul_ps(f, d);
      if constexpr (T != DType::Q5_0) v = _mm256_add_ps(v, m);
      _mm256_storeu_ps(y + 8 * k, v);
    }
  }
}

}  // namespace
}  // namespace ep::kernels::detail::dequant_avx2

EP_TARGET_REGION_END

namespace ep::kernels::detail {

bool expand_blocks_avx2(DType type, const void* src, float* dst, int64_t n) {
  const int64_t nb = n / kSuperBlock;
  switch (type) {
    case DType::Q4_K:
      dequant_avx2::expand_q45k<false>(static_cast<const BlockQ4_K*>(src), dst, nb);
      return true;
    case DType::Q5_K:
      dequant_avx2::expand_q45k<true>(static_cast<const BlockQ5_K*>(src), dst, nb);
      return true;
    case DType::Q6_K:
      dequant_avx2::expand_q6k(static_cast<const BlockQ6_K*>(src), dst, nb);
      return true;
    case DType::Q3_K:
      dequant_avx2::expand_q3k(static_cast<const BlockQ3_K*>(src), dst, nb);
      return true;
    case DType::Q4_1:
      dequant_avx2::expand_legacy<DType::Q4_1>(static_cast<const BlockQ4_1*>(src), dst,
                                               n / kQuantBlock);
      return true;
    case DType::Q5_0:
      dequant_avx2::expand_legacy<DType::Q5_0>(static_cast<const BlockQ5_0*>(src), dst,
                                               n / kQuantBlock);
      return true;
    case DType::Q5_1:
      dequant_avx2::expand_legacy<DType::Q5_1>(static_cast<const BlockQ5_1*>(src), dst,
                                               n / kQuantBlock);
      return true;
    default:
      return false;
  }
}

}  // namespace ep::kernels::detail
