// AVX2 matrix-vector kernels for Q8_0 and Q4_0 weights against activations quantised to 8 bits
// per 32-element block (the "fast" precision on CPUs without AVX-512 VNNI: most laptop and desktop
// x86 cores). The activations are quantised exactly as for the VNNI kernels (d = max|x| / 127,
// q = round(x · 127 / max|x|)), so both compute the same integer dot products; only the f32 sums
// differ in order. Compiled for AVX2 + FMA + F16C by the target region below, not by global flags.
//
// AVX2 has no u8 x s8 dot product into int32; vpmaddubsw multiplies unsigned by signed bytes into
// saturating int16 pairs, and vpmaddwd with ones widens the pairs to int32:
//   Q8_0: |q_w| is the unsigned operand (-128, which a file may hold, becomes 128) and q_x with
//         the sign of q_w the signed one (q_x is never -128), so a pair sums to at most
//         2 · 128 · 127 = 32512 and never saturates.
//   Q4_0: the nibbles (0..15) are the unsigned operand; Σ (q_w - 8)·q_x = Σ q_w·q_x - 8·Σ q_x,
//         with -8·Σ q_x precomputed per activation block (QuantizedActivations::corr).
// Q8_0: per block the eight int32 lanes are converted and scaled by d_w · d_x in one FMA. Q4_0:
// two blocks share the unpacking, the widening and the FMA (dot_q4_pair).
#include "core/dtype.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/stream_prefetch.h"
#include "kernels/cpu/target_region.h"

#include <cstdint>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx2,fma,f16c")

#include "kernels/cpu/quantize_avx2.h"

namespace ep::kernels::detail::int8_avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Fills q, scale (d repeated 8 times), corr (-8·Σq in lane 0 of 8) and the nibble-ordered groups
// of `out`: what the kernels below read. Rounding as the VNNI quantiser (nearest even), so q is
// the same on both paths.
void quantize(const float* x, int64_t n, QuantizedActivations& out) {
  const int64_t nb = n / 32;
  out.n_blocks = nb;
  out.q.resize(size_t(nb * 32) + 64);
  out.scale.resize(size_t(nb * 8) + 16);
  out.corr.resize(size_t(nb * 8) + 16);
  for (int64_t b = 0; b < nb; ++b) {
    __m256i q[4];
    const float d = quantize_block_avx2(x + b * 32, q);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&out.q[size_t(b * 32)]), pack_block_avx2(q));
    _mm256_storeu_ps(&out.scale[size_t(b * 8)], _mm256_set1_ps(d));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&out.corr[size_t(b * 8)]),
                        _mm256_setr_epi32(-8 * block_sum_avx2(q), 0, 0, 0, 0, 0, 0, 0));
  }
  order_q4_groups(out);
}

// acc + dot · d_w · d_x for one block (dot: its eight int32 partial sums, xs: d_x in eight lanes).
inline __m256 add_block(__m256i dot, uint16_t dw, const float* xs, __m256 acc) {
  const __m256 scale =
      _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(short(dw))), _mm256_loadu_ps(xs));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
}

// The eight int32 partial sums of Σ q_w·q_x over one Q8_0 block.
inline __m256i dot_q8(const BlockQ8_0& w, const int8_t* xq) {
  const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.qs));
  const __m256i qx = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq));
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(qw), _mm256_sign_epi8(qx, qw));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// The eight int32 partial sums of Σ (q_w - 8)·q_x over one Q4_0 block; corr holds -8·Σ q_x.
inline __m256i dot_q4(const BlockQ4_0& w, const int8_t* xq, const int32_t* corr) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.qs));
  const __m128i low4 = _mm_set1_epi8(0x0f);
  // Elements 0-15 are the low nibbles, 16-31 the high ones.
  const __m256i nib =
      _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low4), _mm_and_si128(packed, low4));
  const __m256i qx = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq));
  const __m256i pairs = _mm256_maddubs_epi16(nib, qx);
  return _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr)));
}

// Two Q4_0 blocks against their nibble-ordered activations (x: the pair's 16 low-nibble elements
// each, then, 64 bytes on, their high-nibble ones; xs: d_x in lanes 0-3 for the first block, 4-7
// for the second; xc: -8·Σ q_x in lane 0 for the first, lane 4 for the second, zeros elsewhere):
// both blocks' 16 bytes in one register, so one shift, two masks, two vpmaddubsw (their int16 pairs
// add without overflow: 4 · 15 · 127 < 2^15), one vpmaddwd, one conversion and one FMA cover 64
// weights.
inline __m256 dot_q4_pair(const BlockQ4_0* w, const int8_t* x, const float* xs, const int32_t* xc,
                          __m256 acc) {
  const __m256i packed = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[0].qs))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[1].qs)), 1);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_and_si256(packed, low4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
  const __m256i pairs = _mm256_add_epi16(
      _mm256_maddubs_epi16(lo, _mm256_load_si256(reinterpret_cast<const __m256i*>(x))),
      _mm256_maddubs_epi16(hi, _mm256_load_si256(reinterpret_cast<const __m256i*>(x + 64))));
  const __m256i dot = _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)),
                                       _mm256_load_si256(reinterpret_cast<const __m256i*>(xc)));
  // d_w of the first block (bytes 0-1 of the pair) in words 0-3, of the second (bytes 18-19,
  // the upper lane's word 1) in words 4-7: one byte shuffle per lane, one qword permute.
  const __m256i head = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  const __m256i spread =
      _mm256_shuffle_epi8(head, _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                                                 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3));
  const __m128i dw = _mm256_castsi256_si128(_mm256_permute4x64_epi64(spread, 0x08));
  const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(dw), _mm256_load_ps(xs));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
}

// A Q4_0 row: groups of four blocks as two pairs, then the remaining blocks one by one.
float dot_row_q4(const BlockQ4_0* w, const QuantizedActivations& a) {
  const int64_t nb = a.n_blocks, ng = nb / 4;
  const int8_t* x4 = a.q4.data();
  const float* xs4 = a.scale4.data();
  const int32_t* xc4 = a.corr4.data();
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    prefetch_stream(w + g * 4, 4 * int64_t(sizeof(BlockQ4_0)));
    acc0 = dot_q4_pair(w + g * 4, x4 + g * 128, xs4 + g * 16, xc4 + g * 16, acc0);
    acc1 = dot_q4_pair(w + g * 4 + 2, x4 + g * 128 + 32, xs4 + g * 16 + 8, xc4 + g * 16 + 8, acc1);
  }
  const int8_t* xq = a.q.data();
  const float* xs = a.scale.data();
  const int32_t* xc = a.corr.data();
  for (int64_t b = ng * 4; b < nb; ++b) {
    acc0 = add_block(dot_q4(w[b], xq + b * 32, xc + b * 8), w[b].d, xs + b * 8, acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

// A Q8_0 row, two blocks per step in two chains.
float dot_row_q8(const BlockQ8_0* w, const QuantizedActivations& a) {
  const int64_t nb = a.n_blocks;
  const int8_t* xq = a.q.data();
  const float* xs = a.scale.data();
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    prefetch_stream(w + b, 2 * int64_t(sizeof(BlockQ8_0)));
    acc0 = add_block(dot_q8(w[b], xq + b * 32), w[b].d, xs + b * 8, acc0);
    acc1 = add_block(dot_q8(w[b + 1], xq + b * 32 + 32), w[b + 1].d, xs + b * 8 + 8, acc1);
  }
  if (b < nb) acc0 = add_block(dot_q8(w[b], xq + b * 32), w[b].d, xs + b * 8, acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

void matvec_q(const MatrixView& w, const QuantizedActivations& a, float* y, int64_t r0,
              int64_t r1) {
  if (has_int8_k_kernel(w.type)) {
    matvec_k_int8_avx2(w, a, y, r0, r1);
  } else if (w.type == DType::Q4_0) {
    for (int64_t r = r0; r < r1; ++r) y[r] = dot_row_q4(static_cast<const BlockQ4_0*>(w.row(r)), a);
  } else {
    for (int64_t r = r0; r < r1; ++r) y[r] = dot_row_q8(static_cast<const BlockQ8_0*>(w.row(r)), a);
  }
}

}  // namespace
}  // namespace ep::kernels::detail::int8_avx2

EP_TARGET_REGION_END

namespace ep::kernels::detail {

const QuantizedKernels& quantized_kernels_avx2() {
  static const QuantizedKernels k{&int8_avx2::quantize, &int8_avx2::matvec_q};
  return k;
}

}  // namespace ep::kernels::detail
