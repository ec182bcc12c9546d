// AVX-512 VNNI matrix-vector kernels for Q8_0 and Q4_0 weights against activations quantised to
// 8 bits per 32-element block (the "fast" precision, as llama.cpp computes these types).
// Compiled for that target by the pragma below, not by global flags; matmul.cpp calls these
// only when the CPU has AVX-512 F/BW/VL/DQ and VNNI.
//
// Activations: per block b, d_b = max|x| / 127 and q = round(x / d_b) in [-127, 127]. Two blocks
// are processed per 512-bit register: 64 weights against 64 activation bytes in one vpdpbusd,
// then the 16 int32 lanes (8 per block) are converted and scaled by d_w · d_x per block.
//   Q4_0: the nibbles (0..15) are the unsigned operand; Σ(q_w - 8)·q_x = Σ q_w·q_x - 8·Σ q_x, so
//         the accumulator starts from -8·Σ q_x (precomputed per activation block).
//   Q8_0: |w| is the unsigned operand and the activations take w's sign.
#include "core/dtype.h"
#include "kernels/cpu/matmul_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <immintrin.h>

#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
// GCC and clang spell "compile this region for these instruction sets" differently.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")
#endif

namespace ep::kernels::detail::vnni {
namespace {

void quantize(const float* x, int64_t n, QuantizedActivations& out) {
  const int64_t nb = n / 32;
  out.n_blocks = nb;
  out.q.resize(size_t(nb * 32) + 64);
  out.scale.resize(size_t(nb * 8) + 16);
  out.corr.resize(size_t(nb * 8) + 16);
  for (int64_t b = 0; b < nb; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + b * 32), x1 = _mm512_loadu_ps(x + b * 32 + 16);
    const __m512 amax = _mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1));
    const float m = _mm512_reduce_max_ps(amax);
    const float d = m / 127.0f;
    const float id = d != 0.0f ? 127.0f / m : 0.0f;
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, _mm512_set1_ps(id)));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, _mm512_set1_ps(id)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&out.q[size_t(b * 32)]), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&out.q[size_t(b * 32 + 16)]), _mm512_cvtepi32_epi8(q1));
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    _mm256_storeu_ps(&out.scale[size_t(b * 8)], _mm256_set1_ps(d));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&out.corr[size_t(b * 8)]),
                        _mm256_setr_epi32(-8 * sum, 0, 0, 0, 0, 0, 0, 0));
  }
  // Nibble-ordered groups of four blocks for Q4_0.
  const int64_t ng = nb / 4;
  out.q4.resize(size_t(ng * 128));
  out.scale4.resize(size_t(ng * 16));
  out.corr4.resize(size_t(ng * 16));
  for (int64_t g = 0; g < ng; ++g) {
    for (int k = 0; k < 4; ++k) {
      const int64_t b = g * 4 + k;
      std::copy_n(&out.q[size_t(b * 32)], 16, &out.q4[size_t(g * 128 + k * 16)]);
      std::copy_n(&out.q[size_t(b * 32 + 16)], 16, &out.q4[size_t(g * 128 + 64 + k * 16)]);
      for (int l = 0; l < 4; ++l) {
        out.scale4[size_t(g * 16 + k * 4 + l)] = out.scale[size_t(b * 8)];
        out.corr4[size_t(g * 16 + k * 4 + l)] = l == 0 ? out.corr[size_t(b * 8)] : 0;
      }
    }
  }
}

// Weights are memory-mapped 4 KiB file pages, where the hardware prefetchers stop; prefetch the
// lines a fixed distance ahead (rows are contiguous; past the end is harmless).
inline void prefetch_ahead(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p) + 2048;
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
}

// Per-lane weight scales of blocks a (lanes 0-7) and b (lanes 8-15).
inline __m512 pair_scale(uint16_t da, uint16_t db) {
  const __m256i h = _mm256_mask_set1_epi16(_mm256_set1_epi16(short(da)), 0xff00, short(db));
  return _mm512_cvtph_ps(h);
}

inline int32_t dot_block_q4(const BlockQ4_0& w, const int8_t* xq) {
  int32_t s = 0;
  for (int j = 0; j < 16; ++j) {
    s += (int(w.qs[j] & 15) - 8) * xq[j] + (int(w.qs[j] >> 4) - 8) * xq[j + 16];
  }
  return s;
}

inline int32_t dot_block_q8(const BlockQ8_0& w, const int8_t* xq) {
  int32_t s = 0;
  for (int j = 0; j < 32; ++j) s += int(w.qs[j]) * xq[j];
  return s;
}

// Four blocks per step: their 64 nibble bytes in one register, low nibbles (elements 0-15 of each
// block) and high nibbles (16-31) against the nibble-ordered activations, two vpdpbusd.
float dot_q4(const BlockQ4_0* w, const QuantizedActivations& a) {
  const int64_t nb = a.n_blocks;
  const int8_t* xq = a.q.data();
  const float* xs = a.scale.data();
  const int8_t* xq4 = a.q4.data();
  const float* xs4 = a.scale4.data();
  const int32_t* xc4 = a.corr4.data();
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i scale_idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                             27, 27, 27, 27, 18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  auto quad = [&](int64_t g, __m512& acc) {
    const BlockQ4_0* q = w + g * 4;
    __m512i z = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q[0].qs)));
    z = _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q[1].qs)), 1);
    z = _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q[2].qs)), 2);
    z = _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q[3].qs)), 3);
    const __m512i lo = _mm512_and_si512(z, low4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), low4);
    __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(xc4 + g * 16), lo, _mm512_loadu_si512(xq4 + g * 128));
    dot = _mm512_dpbusd_epi32(dot, hi, _mm512_loadu_si512(xq4 + g * 128 + 64));
    // The four f16 scales sit at bytes 0, 18, 36, 54 of the group (16-bit words 0, 9, 18, 27):
    // one load and one word permute put each in its four lanes.
    const __m512i raw = _mm512_loadu_si512(q);
    const __m256i h = _mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_idx, raw));
    const __m512 scale = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_loadu_ps(xs4 + g * 16));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc);
  };
  int64_t g = 0;
  const int64_t ng = nb / 4;
  for (; g + 2 <= ng; g += 2) {
    prefetch_ahead(w + g * 4, 8 * int64_t(sizeof(*w)));
    quad(g, acc0);
    quad(g + 1, acc1);
  }
  for (; g < ng; ++g) quad(g, acc0);
  int64_t b = ng * 4;
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; b < nb; ++b) sum += float(dot_block_q4(w[b], xq + b * 32)) * _cvtsh_ss(w[b].d) * xs[b * 8];
  return sum;
}

float dot_q8(const BlockQ8_0* w, const QuantizedActivations& a) {
  const int64_t nb = a.n_blocks;
  const int8_t* xq = a.q.data();
  const float* xs = a.scale.data();
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  auto pair = [&](int64_t b, __m512& acc) {
    const __m256i wa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i wb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b + 1].qs));
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(wa), wb, 1);
    const __m512i x = _mm512_loadu_si512(xq + b * 32);
    const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(z), _mm512_setzero_si512(), x);
    const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(z), sx);
    const __m512 scale = _mm512_mul_ps(pair_scale(w[b].d, w[b + 1].d), _mm512_loadu_ps(xs + b * 8));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc);
  };
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    prefetch_ahead(w + b, 4 * int64_t(sizeof(*w)));
    pair(b, acc0);
    pair(b + 2, acc1);
  }
  for (; b + 2 <= nb; b += 2) pair(b, acc0);
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; b < nb; ++b) sum += float(dot_block_q8(w[b], xq + b * 32)) * _cvtsh_ss(w[b].d) * xs[b * 8];
  return sum;
}

void matvec_q(const MatrixView& w, const QuantizedActivations& a, float* y, int64_t r0, int64_t r1) {
  if (w.type == DType::Q4_0) {
    for (int64_t r = r0; r < r1; ++r) y[r] = dot_q4(static_cast<const BlockQ4_0*>(w.row(r)), a);
  } else {
    for (int64_t r = r0; r < r1; ++r) y[r] = dot_q8(static_cast<const BlockQ8_0*>(w.row(r)), a);
  }
}

}  // namespace
}  // namespace ep::kernels::detail::vnni

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#pragma GCC diagnostic pop

namespace ep::kernels::detail {

const QuantizedKernels& quantized_kernels_vnni() {
  static const QuantizedKernels k{&vnni::quantize, &vnni::matvec_q};
  return k;
}

}  // namespace ep::kernels::detail
