// Internal: an 8 × 8 transpose of 32-bit elements in AVX2 registers, for packing GEMM weight
// panels. Include only inside a region compiled for AVX2 (see gemm_int8_avx2.cpp); static, so
// each including file has its own copy compiled for its own target.
#pragma once

#include <immintrin.h>

namespace ep::kernels::detail {

// Rows r[0..8) (8 int32 each) to columns c[0..8): c[j] lane i = r[i] lane j.
static inline void transpose8_epi32(const __m256i r[8], __m256i c[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    c[j] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20);
    c[j + 4] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
  }
}

}  // namespace ep::kernels::detail
