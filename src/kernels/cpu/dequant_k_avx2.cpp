// AVX2 expansion of Q4_K, Q5_K and Q6_K blocks to f32 for the matrix kernels' f32 paths (the
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
    default:
      return false;
  }
}

}  // namespace ep::kernels::detail
