// Internal: a 16 × 16 transpose of 32-bit elements in AVX-512 registers, for packing GEMM weight
// panels. Include only inside a region compiled for AVX-512F (see gemm_vnni.cpp); static, so each
// including file has its own copy compiled for its own target.
#pragma once

#include <cstdint>

#include <immintrin.h>

namespace ep::kernels::detail {

// Transposes 16 rows of 16 int32 (src: row i at src + i * lds bytes) in registers: out[j] holds
// element j of every row.
static inline void transpose16_epi32(const uint8_t* src, int64_t lds, __m512i* out) {
  __m512i r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(src + i * lds);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // r[4q + m] holds, in each 128-bit lane L, element 4L + m of rows 4q..4q+3.
  for (int q = 0; q < 16; q += 8) {
    for (int m = 0; m < 4; ++m) {
      t[q + m] = _mm512_shuffle_i32x4(r[q + m], r[q + 4 + m], 0x88);
      t[q + 4 + m] = _mm512_shuffle_i32x4(r[q + m], r[q + 4 + m], 0xdd);
    }
  }
  for (int m = 0; m < 8; ++m) {
    out[m] = _mm512_shuffle_i32x4(t[m], t[8 + m], 0x88);
    out[8 + m] = _mm512_shuffle_i32x4(t[m], t[8 + m], 0xdd);
  }
}

}  // namespace ep::kernels::detail
