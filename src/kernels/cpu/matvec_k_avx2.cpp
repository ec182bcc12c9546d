// AVX2 matrix-vector kernels for Q4_K, Q5_K and Q6_K weights against activations quantised to 8
// bits per 32-element block (the fast decode precision; the same QuantizedActivations as the
// Q8_0/Q4_0 kernels, from either quantiser). Compiled for AVX2 + FMA + F16C by the target region
// below; called only on CPUs that have them.
//
// A 256-element super-block covers eight activation blocks. Per activation block b (32 weights,
// scale d_x and Σ q_x from the quantiser):
//   Q4_K / Q5_K: the block is one sub-block with scale s and min m, x_w = d·s·q − dmin·m with
//                q in 0..15 (0..31), so Σ x_w·x = d_x·(d·s·Σ q·q_x − dmin·m·Σ q_x): q is the
//                unsigned operand of vpmaddubsw (pairs at most 2·31·127, no saturation), and the
//                min term is one scalar product per block.
//   Q6_K:        two sub-blocks of 16 with signed scales, x_w = d·s·(q − 32): q − 32 in −32..31
//                goes in as |q − 32| with its sign moved onto q_x (pairs at most 2·32·127); the
//                eight int32 lanes of a block are elements 0-15 (lanes 0-3) and 16-31 (4-7), so
//                one vector of the two scales (times d·d_x) scales them.
// The integer sums are exact; only the f32 scaling and summation round.
#include "core/dtype.h"
#include "core/half.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/stream_prefetch.h"
#include "kernels/cpu/target_region.h"

#include <cstdint>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx2,fma,f16c")

namespace ep::kernels::detail::k_avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Eight int32 partial sums of Σ u·s over 32 bytes (u unsigned, s signed, pairs not saturating).
inline __m256i dot_u8_s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

inline __m256i load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

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

// Σ q_x of activation block b (the quantisers store −8·Σ q_x in lane 0 of its eight).
inline int32_t act_sum(const QuantizedActivations& a, int64_t b) {
  return a.corr[size_t(b * 8)] / -8;
}

template <bool kFifthBit, class Block>
float dot_q45k(const Block* w, int64_t n_super, const QuantizedActivations& a) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n_super; ++i) {
    const Block& blk = w[i];
    prefetch_stream(&w[i + 1], int64_t(sizeof(Block)));
    const float d = _cvtsh_ss(blk.d), dmin = _cvtsh_ss(blk.dmin);
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kFifthBit) qh = load32(blk.qh);
    for (int g = 0; g < 4; ++g) {
      const __m256i qs = load32(blk.qs + 32 * g);
      __m256i q[2] = {_mm256_and_si256(qs, low4), _mm256_and_si256(_mm256_srli_epi16(qs, 4), low4)};
      for (int h = 0; h < 2; ++h) {
        const int j = 2 * g + h;
        if constexpr (kFifthBit) {
          const __m256i bit = _mm256_set1_epi8(char(1 << j));
          const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
          q[h] = _mm256_or_si256(q[h], _mm256_and_si256(set, _mm256_set1_epi8(16)));
        }
        const int64_t b = i * 8 + j;
        int sc = 0, m = 0;
        scale_min(blk.scales, j, sc, m);
        const float dx = a.scale[size_t(b * 8)];
        const __m256i dot = dot_u8_s8(q[h], load32(&a.q[size_t(b * 32)]));
        __m256& acc = h == 0 ? acc0 : acc1;
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(d * float(sc) * dx), acc);
        mins += dmin * float(m) * dx * float(act_sum(a, b));
      }
    }
  }
  return hsum(_mm256_add_ps(acc0, acc1)) - mins;
}

float dot_q6k(const BlockQ6_K* w, int64_t n_super, const QuantizedActivations& a) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), three = _mm256_set1_epi8(3);
  const __m256i offset = _mm256_set1_epi8(32);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t i = 0; i < n_super; ++i) {
    const BlockQ6_K& blk = w[i];
    prefetch_stream(&w[i + 1], int64_t(sizeof(BlockQ6_K)));
    const float d = _cvtsh_ss(blk.d);
    for (int h = 0; h < 2; ++h) {
      const __m256i la = load32(blk.ql + 64 * h), lb = load32(blk.ql + 64 * h + 32);
      const __m256i qh = load32(blk.qh + 32 * h);
      const __m256i low[4] = {_mm256_and_si256(la, low4), _mm256_and_si256(lb, low4),
                              _mm256_and_si256(_mm256_srli_epi16(la, 4), low4),
                              _mm256_and_si256(_mm256_srli_epi16(lb, 4), low4)};
      for (int k = 0; k < 4; ++k) {
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), three);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low[k], _mm256_slli_epi16(high, 4)),
                                          offset);  // −32..31
        const int64_t b = i * 8 + 4 * h + k;
        const __m256i xq = load32(&a.q[size_t(b * 32)]);
        const __m256i dot = dot_u8_s8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
        const float dd = d * a.scale[size_t(b * 8)];
        const float s0 = dd * float(blk.scales[8 * h + 2 * k]);
        const float s1 = dd * float(blk.scales[8 * h + 2 * k + 1]);
        const __m256 scale = _mm256_setr_ps(s0, s0, s0, s0, s1, s1, s1, s1);
        __m256& acc = (k & 1) ? acc1 : acc0;
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
      }
    }
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

}  // namespace
}  // namespace ep::kernels::detail::k_avx2

EP_TARGET_REGION_END

namespace ep::kernels::detail {

void matvec_k_int8_avx2(const MatrixView& w, const QuantizedActivations& a, float* y, int64_t r0,
                        int64_t r1) {
  const int64_t n_super = w.cols / kSuperBlock;
  for (int64_t r = r0; r < r1; ++r) {
    switch (w.type) {
      case DType::Q4_K:
        y[r] = k_avx2::dot_q45k<false>(static_cast<const BlockQ4_K*>(w.row(r)), n_super, a);
        break;
      case DType::Q5_K:
        y[r] = k_avx2::dot_q45k<true>(static_cast<const BlockQ5_K*>(w.row(r)), n_super, a);
        break;
      case DType::Q6_K:
        y[r] = k_avx2::dot_q6k(static_cast<const BlockQ6_K*>(w.row(r)), n_super, a);
        break;
      default:
        break;
    }
  }
}

}  // namespace ep::kernels::detail
