// AVX-512 VNNI matrix-vector kernels for Q8_0 and Q4_0 weights against activations quantised to
// 8 bits per 32-element block (the "fast" precision, as llama.cpp computes these types).
// Compiled for that target by the target region below, not by global flags; matmul.cpp calls these
// only when the CPU has AVX-512 F/BW/VL/DQ and VNNI.
//
// Activations: per block b, d_b = max|x| / 127 and q = round(x / d_b) in [-127, 127]. Four blocks
// are processed per step: 128 weights against 128 activation bytes in two vpdpbusd, the int32
// lanes reduced to four per block, converted and scaled by d_w · d_x per block in one FMA.
//   Q4_0: the nibbles (0..15) are the unsigned operand; Σ(q_w - 8)·q_x = Σ q_w·q_x - 8·Σ q_x, so
//         the accumulator starts from -8·Σ q_x (precomputed per activation block).
//   Q8_0: w + 128 (the sign bit flipped) is the unsigned operand, and the accumulator starts
//         from -128·Σ q_x.
#include "core/dtype.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/stream_prefetch.h"
#include "kernels/cpu/target_region.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")

#include "kernels/cpu/quantize_avx512.h"

namespace ep::kernels::detail::vnni {
namespace {

void quantize(const float* x, int64_t n, QuantizedActivations& out) {
  const int64_t nb = n / 32;
  out.n_blocks = nb;
  out.q.resize(size_t(nb * 32) + 64);
  out.scale.resize(size_t(nb * 8) + 16);
  out.corr.resize(size_t(nb * 8) + 16);
  out.corr8.resize(size_t(nb * 8) + 16);
  for (int64_t b = 0; b < nb; ++b) {
    __m512i q0, q1;
    const float d = quantize_block_avx512(x + b * 32, q0, q1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&out.q[size_t(b * 32)]), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&out.q[size_t(b * 32 + 16)]),
                     _mm512_cvtepi32_epi8(q1));
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    _mm256_storeu_ps(&out.scale[size_t(b * 8)], _mm256_set1_ps(d));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&out.corr[size_t(b * 8)]),
                        _mm256_setr_epi32(-8 * sum, 0, 0, 0, 0, 0, 0, 0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&out.corr8[size_t(b * 8)]),
                        _mm256_setr_epi32(-128 * sum, 0, 0, 0, 0, 0, 0, 0));
  }
  order_q4_groups(out);
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
  const __m512i scale_idx =
      _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
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
    __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(xc4 + g * 16), lo,
                                      _mm512_loadu_si512(xq4 + g * 128));
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
    prefetch_stream(w + g * 4, 8 * int64_t(sizeof(*w)));
    quad(g, acc0);
    quad(g + 1, acc1);
  }
  for (; g < ng; ++g) quad(g, acc0);
  int64_t b = ng * 4;
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; b < nb; ++b) sum += float(dot_block_q4(w[b], xq + b * 32)) * _cvtsh_ss(w[b].d) * xs[b * 8];
  return sum;
}

// 32 bytes at p0 in the low half, 32 at p1 in the high half.
inline __m512i load_halves(const char* p0, const char* p1) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0))),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1)), 1);
}

// Four blocks (136 bytes) per step. Weights are made unsigned by flipping the sign bit
// (w + 128, one xor), and the accumulator starts from -128·Σ q_x of each activation block, so
// Σ (w + 128)·q_x - 128·Σ q_x = Σ w·q_x. The two dot products (8 lanes per block) are folded to
// 4 lanes per block by adding their even and odd lanes, so that one conversion and one FMA cover
// four blocks; the four f16 scales (16-bit words 0, 17, 34, 51 of the group) come from two loads
// and one two-register word permute. bench/decode_stream.cpp (one core, L2): 1.46-1.48 G blocks/s
// against 1.38-1.44 for two blocks per step with |w| and sign-transferred activations.
float dot_q8(const BlockQ8_0* w, const QuantizedActivations& a) {
  const int64_t nb = a.n_blocks;
  const int8_t* xq = a.q.data();
  const float* xs = a.scale.data();
  const int32_t* xc = a.corr8.data();
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  // Words 0, 17, 34, 51 of the group (the four f16 scales), each in four lanes.
  const __m512i scale_idx =
      _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                       51, 51, 51, 51, 34, 34, 34, 34, 17, 17, 17, 17, 0, 0, 0, 0);
  // Even and odd int32 lanes of (d01, d23): their sum holds each block's sum in four lanes.
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const float* xs4 = a.scale4.data();
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  auto quad = [&](int64_t bb, __m512& acc) {
    const char* p = reinterpret_cast<const char*>(w + bb);
    const __m512i w01 = _mm512_xor_si512(load_halves(p + 2, p + 36), flip);
    const __m512i w23 = _mm512_xor_si512(load_halves(p + 70, p + 104), flip);
    const __m512i d01 =
        _mm512_dpbusd_epi32(_mm512_loadu_si512(xc + bb * 8), w01, _mm512_loadu_si512(xq + bb * 32));
    const __m512i d23 = _mm512_dpbusd_epi32(_mm512_loadu_si512(xc + bb * 8 + 16), w23,
                                            _mm512_loadu_si512(xq + bb * 32 + 64));
    const __m512i d = _mm512_add_epi32(_mm512_permutex2var_epi32(d01, even, d23),
                                       _mm512_permutex2var_epi32(d01, odd, d23));
    const __m512i h =
        _mm512_permutex2var_epi16(_mm512_loadu_si512(p), scale_idx, _mm512_loadu_si512(p + 64));
    const __m512 s =
        _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), _mm512_loadu_ps(xs4 + bb * 4));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), s, acc);
  };
  for (; b + 8 <= nb; b += 8) {
    prefetch_stream(w + b, 8 * int64_t(sizeof(*w)));
    quad(b, acc0);
    quad(b + 4, acc1);
  }
  for (; b + 4 <= nb; b += 4) quad(b, acc0);
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; b < nb; ++b) sum += float(dot_block_q8(w[b], xq + b * 32)) * _cvtsh_ss(w[b].d) * xs[b * 8];
  return sum;
}

void matvec_q(const MatrixView& w, const QuantizedActivations& a, float* y, int64_t r0,
              int64_t r1) {
  if (has_int8_k_kernel(w.type)) {
    matvec_k_int8_avx2(w, a, y, r0, r1);
  } else if (w.type == DType::Q4_0) {
    for (int64_t r = r0; r < r1; ++r) y[r] = dot_q4(static_cast<const BlockQ4_0*>(w.row(r)), a);
  } else {
    for (int64_t r = r0; r < r1; ++r) y[r] = dot_q8(static_cast<const BlockQ8_0*>(w.row(r)), a);
  }
}

}  // namespace
}  // namespace ep::kernels::detail::vnni

EP_TARGET_REGION_END

namespace ep::kernels::detail {

const QuantizedKernels& quantized_kernels_vnni() {
  static const QuantizedKernels k{&vnni::quantize, &vnni::matvec_q};
  return k;
}

}  // namespace ep::kernels::detail
