// AVX2 matrix-vector kernels for Q3_K, Q4_K, Q5_K and Q6_K weights against activations quantised to
// 8 bits per 32-element block (the fast decode precision; the same QuantizedActivations as the
// Q8_0/Q4_0 kernels, from either quantiser). Compiled for AVX2 + FMA + F16C by the target region
// below; called only on CPUs that have them.
//
// A 256-element super-block covers eight activation blocks. Per activation block b (32 weights,
// scale d_x and Σ q_x from the quantiser):
//   Q4_K / Q5_K: the block is one sub-block with scale s and min m, x_w = d·s·q − dmin·m with
//                q in 0..15 (0..31), so Σ x_w·x = d_x·(d·s·Σ q·q_x − dmin·m·Σ q_x): q is the
//                unsigned operand of vpmaddubsw (pairs at most 2·31·127, no saturation), and the
//                min term is one scalar product per block.
//   Q3_K, Q6_K:  two sub-blocks of 16 with signed scales, x_w = d·s·v with v in −4..3 (Q3_K)
//                or v = q − 32 in −32..31 (Q6_K): v goes in as |v| with its sign moved onto
//                q_x (pairs at most 2·32·127); the
//                eight int32 lanes of a block are elements 0-15 (lanes 0-3) and 16-31 (4-7), so
//                one vector of the two scales (times d·d_x) scales them.
// The integer sums are exact; only the f32 scaling and summation round.
#include "core/dtype.h"
#include "core/half.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/stream_prefetch.h"
#include "kernels/cpu/target_region.h"

#include <cstdint>
#include <cstring>
#include <vector>

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

// The eight bytes of lo (first) and hi as eight floats.
inline __m256 widen_bytes(uint32_t lo, uint32_t hi) {
  const __m128i bytes = _mm_cvtsi64_si128(int64_t(uint64_t(lo) | (uint64_t(hi) << 32)));
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
}

// The eight 6-bit scales and mins of a Q4_K/Q5_K block as two vectors of eight floats. The
// 12 bytes as three little-endian u32 u0, u1, u2: sub-block j < 4 has its scale in the low six
// bits of byte j of u0 and its min in byte j of u1; sub-block j + 4 takes the low (scale) and high
// (min) nibble of byte j of u2 and, as its top two bits, the top two bits of byte j of u0 (scale)
// or u1 (min). Worked in general registers, so no byte stores are read back as a whole.
inline void scales_mins(const uint8_t* s, __m256& scale, __m256& min) {
  uint32_t u0 = 0, u1 = 0, u2 = 0;
  std::memcpy(&u0, s, 4);
  std::memcpy(&u1, s + 4, 4);
  std::memcpy(&u2, s + 8, 4);
  const uint32_t sc_lo = u0 & 0x3f3f3f3fu, mn_lo = u1 & 0x3f3f3f3fu;
  const uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
  const uint32_t mn_hi = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
  scale = widen_bytes(sc_lo, sc_hi);
  min = widen_bytes(mn_lo, mn_hi);
}

// The sums of each of eight vectors of eight int32, in one vector (lane j: Σ p[j]).
inline __m256i sum_lanes8(const __m256i* p) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
  // a: lanes 0-3 the low halves of p0..p3, lanes 4-7 their high halves; b likewise for p4..p7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                          _mm256_permute2x128_si256(a, b, 0x31));
}

// One super-block is eight activation blocks b0..b0 + 7, one per sub-block: the eight integer dot
// products are reduced to one vector (lane j: sub-block j), scaled by d·scale_j·d_x in one FMA,
// and the min terms dmin·min_j·d_x·Σ q_x of all eight are one vector too.
// dx[b] = d_x and sx[b] = −8·Σ q_x of activation block b, side by side (the same for every row).
template <bool kFifthBit, class Block>
float dot_q45k(const Block* w, int64_t n_super, const QuantizedActivations& a, const float* dxs,
               const float* sxs) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n_super; ++i) {
    const Block& blk = w[i];
    prefetch_stream(&blk, int64_t(sizeof(Block)));
    const int64_t b0 = i * 8;
    const __m256 dx = _mm256_loadu_ps(dxs + b0), sum_x = _mm256_loadu_ps(sxs + b0);
    __m256 scf, mnf;
    scales_mins(blk.scales, scf, mnf);
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kFifthBit) qh = load32(blk.qh);
    __m256i dots[8];
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
        dots[j] = dot_u8_s8(q[h], load32(&a.q[size_t((b0 + j) * 32)]));
      }
    }
    const __m256 scale = _mm256_mul_ps(_mm256_mul_ps(scf, _mm256_set1_ps(_cvtsh_ss(blk.d))), dx);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum_lanes8(dots)), scale, acc);
    // −dmin·m·d_x·Σ q_x = dmin·m·d_x·(−8·Σ q_x) / 8
    const __m256 mins = _mm256_mul_ps(_mm256_mul_ps(mnf, _mm256_set1_ps(_cvtsh_ss(blk.dmin))), dx);
    acc_min = _mm256_fmadd_ps(mins, sum_x, acc_min);
  }
  return hsum(acc) + hsum(acc_min) * 0.125f;
}

// Per half super-block (128 elements, activation blocks 4h..4h + 3, sub-blocks 8h..8h + 7): the
// four blocks' int32 vectors are reduced by two rounds of pairwise adds to one vector whose low
// four lanes are the first 16-element sub-block of each block and the high four the second, so
// one vector of the matching scales (bytes 0, 2, 4, 6, 1, 3, 5, 7 of the half's eight, times
// d·d_x) scales all eight in one FMA.
float dot_q6k(const BlockQ6_K* w, int64_t n_super, const QuantizedActivations& a,
              const float* dxs) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), three = _mm256_set1_epi8(3);
  const __m256i offset = _mm256_set1_epi8(32);
  const __m128i order = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t i = 0; i < n_super; ++i) {
    const BlockQ6_K& blk = w[i];
    prefetch_stream(&blk, int64_t(sizeof(BlockQ6_K)));
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(blk.d));
    // The sixteen scales, each half's eight in the lane order of the reduced vector below.
    const __m128i sc =
        _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)), order);
    for (int h = 0; h < 2; ++h) {
      const __m256i la = load32(blk.ql + 64 * h), lb = load32(blk.ql + 64 * h + 32);
      const __m256i qh = load32(blk.qh + 32 * h);
      const __m256i low[4] = {_mm256_and_si256(la, low4), _mm256_and_si256(lb, low4),
                              _mm256_and_si256(_mm256_srli_epi16(la, 4), low4),
                              _mm256_and_si256(_mm256_srli_epi16(lb, 4), low4)};
      const int64_t b0 = i * 8 + 4 * h;
      __m256i dots[4];
      for (int k = 0; k < 4; ++k) {
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), three);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low[k], _mm256_slli_epi16(high, 4)),
                                          offset);  // −32..31
        const __m256i xq = load32(&a.q[size_t((b0 + k) * 32)]);
        dots[k] = dot_u8_s8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
      }
      const __m256i sums = _mm256_hadd_epi32(_mm256_hadd_epi32(dots[0], dots[1]),
                                             _mm256_hadd_epi32(dots[2], dots[3]));
      const __m256 scf =
          _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(h == 0 ? sc : _mm_unpackhi_epi64(sc, sc)));
      const __m128 dx4 = _mm_loadu_ps(dxs + b0);
      const __m256 dx = _mm256_set_m128(dx4, dx4);
      __m256& acc = h == 0 ? acc0 : acc1;
      acc =
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(_mm256_mul_ps(scf, d), dx), acc);
    }
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

// The sixteen 6-bit scales of a Q3_K block less 32, as signed bytes (as core/quant_k.cpp): the
// low four bits of scale j are the low nibble of byte j (j < 8) or the high nibble of byte j − 8,
// its high two bits bits 2·(j / 4) and up of byte 8 + j % 4.
inline __m128i q3k_scales(const uint8_t* s) {
  uint32_t u0 = 0, u1 = 0, u2 = 0;
  std::memcpy(&u0, s, 4);
  std::memcpy(&u1, s + 4, 4);
  std::memcpy(&u2, s + 8, 4);
  const uint32_t k4 = 0x0f0f0f0fu, k2 = 0x03030303u;
  const uint32_t w0 = (u0 & k4) | (((u2 >> 0) & k2) << 4);         // scales 0-3
  const uint32_t w1 = (u1 & k4) | (((u2 >> 2) & k2) << 4);         // 4-7
  const uint32_t w2 = ((u0 >> 4) & k4) | (((u2 >> 4) & k2) << 4);  // 8-11
  const uint32_t w3 = ((u1 >> 4) & k4) | (((u2 >> 6) & k2) << 4);  // 12-15
  return _mm_sub_epi8(_mm_setr_epi32(int(w0), int(w1), int(w2), int(w3)), _mm_set1_epi8(32));
}

// Q3_K: the element layout of Q6_K (activation block 4h + s holds elements 128h + 32s + l, its two
// 16-element sub-blocks 8h + 2s and 8h + 2s + 1), v = two bits of qs less 4 where the hmask bit
// is clear, in −4..3; the same sign trick, reduction and scaling as dot_q6k.
float dot_q3k(const BlockQ3_K* w, int64_t n_super, const QuantizedActivations& a,
              const float* dxs) {
  const __m256i three = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
  const __m128i order = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t i = 0; i < n_super; ++i) {
    const BlockQ3_K& blk = w[i];
    prefetch_stream(&blk, int64_t(sizeof(BlockQ3_K)));
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(blk.d));
    const __m128i sc = _mm_shuffle_epi8(q3k_scales(blk.scales), order);
    const __m256i hm = load32(blk.hmask);
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = load32(blk.qs + 32 * h);
      const int64_t b0 = i * 8 + 4 * h;
      __m256i dots[4];
      for (int s = 0; s < 4; ++s) {
        const __m256i bit = _mm256_set1_epi8(char(1 << (4 * h + s)));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
        const __m256i v = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(qs, 2 * s), three),
                                          _mm256_andnot_si256(set, four));
        const __m256i xq = load32(&a.q[size_t((b0 + s) * 32)]);
        dots[s] = dot_u8_s8(_mm256_sign_epi8(v, v), _mm256_sign_epi8(xq, v));
      }
      const __m256i sums = _mm256_hadd_epi32(_mm256_hadd_epi32(dots[0], dots[1]),
                                             _mm256_hadd_epi32(dots[2], dots[3]));
      const __m256 scf =
          _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(h == 0 ? sc : _mm_unpackhi_epi64(sc, sc)));
      const __m128 dx4 = _mm_loadu_ps(dxs + b0);
      const __m256 dx = _mm256_set_m128(dx4, dx4);
      __m256& acc = h == 0 ? acc0 : acc1;
      acc =
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(_mm256_mul_ps(scf, d), dx), acc);
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
  // Each activation block's d_x and −8·Σ q_x in a row of their own (the same for every row).
  thread_local std::vector<float> sides;
  sides.resize(size_t(2 * n_super * 8));
  float* dxs = sides.data();
  float* sxs = dxs + n_super * 8;
  for (int64_t b = 0; b < n_super * 8; ++b) {
    dxs[b] = a.scale[size_t(b * 8)];
    sxs[b] = float(a.corr[size_t(b * 8)]);
  }
  for (int64_t r = r0; r < r1; ++r) {
    switch (w.type) {
      case DType::Q4_K:
        y[r] =
            k_avx2::dot_q45k<false>(static_cast<const BlockQ4_K*>(w.row(r)), n_super, a, dxs, sxs);
        break;
      case DType::Q5_K:
        y[r] =
            k_avx2::dot_q45k<true>(static_cast<const BlockQ5_K*>(w.row(r)), n_super, a, dxs, sxs);
        break;
      case DType::Q6_K:
        y[r] = k_avx2::dot_q6k(static_cast<const BlockQ6_K*>(w.row(r)), n_super, a, dxs);
        break;
      case DType::Q3_K:
        y[r] = k_avx2::dot_q3k(static_cast<const BlockQ3_K*>(w.row(r)), n_super, a, dxs);
        break;
      default:
        break;
    }
  }
}

}  // namespace ep::kernels::detail
