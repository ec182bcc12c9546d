// AVX-512 attention for head_dim 16, 32, 64 and 128: the same online-softmax algorithm as the
// portable kernel in attention.cpp (blocks of 64 keys, rescaling by exp(old max - new max)), with
// vector dot products, a vectorised exp and the value accumulator held in registers. Compiled
// for that target by the target region below; attention.cpp calls it only on CPUs with AVX-512.
#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/target_region.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")

#include "kernels/cpu/exp_avx512.h"

namespace ep::kernels::detail::avx512 {
namespace {

// exp(x) for x <= 0 (arguments below -87 flush to 0).
inline __m512 exp_nonpositive(__m512 x) {
  return exp_in_range(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)));
}

// Sum of the 16 lanes in a fixed tree (lanes l and l + 8, then l and l + 4, l + 2, l + 1), the
// same order as the transposed kernel's sums below so that both give bit-identical scores.
inline float sum_tree(__m512 v) {
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

// For HB heads of a group: acc_h = acc_h · corr_h + Σ_j p_h[j] · V[j] over n keys (V rows
// kv_stride apart; p_h = p + h · 64; acc_h = accm + h · 16·NV). Each V row is loaded once for
// the HB heads, and the HB · NV accumulators are independent FMA chains.
template <int NV, int HB>
inline void pv_heads(const float* p, int n, const float* vb, int64_t kv_stride, const float* corr,
                     float* accm) {
  __m512 acc[HB][NV];
  for (int h = 0; h < HB; ++h) {
    const __m512 c = _mm512_set1_ps(corr[h]);
    for (int v = 0; v < NV; ++v)
      acc[h][v] = _mm512_mul_ps(_mm512_load_ps(accm + (h * NV + v) * 16), c);
  }
  for (int j = 0; j < n; ++j) {
    const float* vp = vb + j * kv_stride;
    __m512 vr[NV];
    for (int v = 0; v < NV; ++v) vr[v] = _mm512_loadu_ps(vp + 16 * v);
    for (int h = 0; h < HB; ++h) {
      const __m512 ph = _mm512_set1_ps(p[h * 64 + j]);
      for (int v = 0; v < NV; ++v) acc[h][v] = _mm512_fmadd_ps(ph, vr[v], acc[h][v]);
    }
  }
  for (int h = 0; h < HB; ++h) {
    for (int v = 0; v < NV; ++v) _mm512_store_ps(accm + (h * NV + v) * 16, acc[h][v]);
  }
}

template <int NV>
inline void scores_rows(const float* qs, const float* kb, int64_t kv_stride, int n, float* s) {
  for (int j = 0; j < n; ++j) {
    const float* kp = kb + j * kv_stride;
    // fma onto zero (= the rounded product): a plain multiply could be contracted into a
    // following add by the compiler, differently in the two score functions.
    __m512 d = _mm512_fmadd_ps(_mm512_load_ps(qs), _mm512_loadu_ps(kp), _mm512_setzero_ps());
    for (int v = 1; v < NV; ++v)
      d = _mm512_fmadd_ps(_mm512_load_ps(qs + 16 * v), _mm512_loadu_ps(kp + 16 * v), d);
    s[j] = sum_tree(d);
  }
}

// The same 16 scores bit for bit from transposed keys (ktb[d * 16 + j]): the scores come out as
// one vector (lane = key); lane l of sum_tree's input becomes vector p[l] here.
template <int NV>
inline void scores_kt(const float* qs, const float* ktb, float* s) {
  __m512 p[16];
  for (int l = 0; l < 16; ++l) {
    p[l] =
        _mm512_fmadd_ps(_mm512_set1_ps(qs[l]), _mm512_loadu_ps(ktb + l * 16), _mm512_setzero_ps());
  }
  for (int v = 1; v < NV; ++v) {
    for (int l = 0; l < 16; ++l) {
      p[l] = _mm512_fmadd_ps(_mm512_set1_ps(qs[16 * v + l]),
                             _mm512_loadu_ps(ktb + (16 * v + l) * 16), p[l]);
    }
  }
  for (int l = 0; l < 8; ++l) p[l] = _mm512_add_ps(p[l], p[l + 8]);
  for (int l = 0; l < 4; ++l) p[l] = _mm512_add_ps(p[l], p[l + 4]);
  for (int l = 0; l < 2; ++l) p[l] = _mm512_add_ps(p[l], p[l + 2]);
  _mm512_store_ps(s, _mm512_add_ps(p[0], p[1]));
}

// One query token against one KV head, for all the query heads that share it (grouped-query
// attention): each block of 64 keys (and values) is used by every head of the group while it is
// in L1, instead of streaming the whole K and V once per head, and P·V loads each value row once
// for several heads. Per head the arithmetic is the
// plain online softmax (blocks of 64 keys from j_begin); with kt (transposed keys, window 0)
// the scores come from scores_kt, bit-identical to scores_rows, so a query gives the same result
// whether computed in a batch (kt) or alone.
template <int NV>
void attend_group(const AttentionArgs& a, const float* kt, int64_t item) {
  constexpr int64_t kBlock = 64;
  constexpr int HD = 16 * NV;
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t q_stride = a.n_head * a.head_dim, kv_stride = a.n_head_kv * a.head_dim;
  const int64_t i = item / a.n_head_kv, kvh = item % a.n_head_kv;
  const int64_t pos = a.q_pos0 + i;
  const int64_t j_end = std::min(a.n_kv, pos - a.k_pos0 + 1);
  const int64_t j_begin = a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1 - a.k_pos0) : 0;
  const int64_t n_kb = (a.n_kv + 15) / 16;
  const float* kh = kt ? kt + kvh * n_kb * 16 * HD : nullptr;
  // Per head of the group: scaled query, accumulator, running max, sum and this block's
  // correction, and this block's probabilities.
  constexpr int64_t kHb = NV >= 8 ? 2 : 4;  // heads per P·V pass: HB · NV <= 16 accumulators
  thread_local std::vector<float> state;
  state.resize(size_t(group * (2 * HD + kBlock + 3) + 16));
  float* qs =
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(state.data()) + 63) & ~uintptr_t(63));
  float* accm = qs + group * HD;      // [group][HD]
  float* ps = accm + group * HD;      // [group][64]
  float* maxs = ps + group * kBlock;  // [group]
  float* sums = maxs + group;
  float* corr = sums + group;
  const __m512 scale = _mm512_set1_ps(a.scale);
  for (int64_t g = 0; g < group; ++g) {
    const float* qp = a.q + i * q_stride + (kvh * group + g) * a.head_dim;
    for (int v = 0; v < NV; ++v) {
      _mm512_store_ps(qs + g * HD + 16 * v, _mm512_mul_ps(_mm512_loadu_ps(qp + 16 * v), scale));
      _mm512_store_ps(accm + g * HD + 16 * v, _mm512_setzero_ps());
    }
    maxs[g] = -std::numeric_limits<float>::infinity();
    sums[g] = 0.0f;
  }
  for (int64_t j0 = j_begin; j0 < j_end; j0 += kBlock) {
    const int n = int(std::min(kBlock, j_end - j0));
    const float* kb = a.k + j0 * kv_stride + kvh * a.head_dim;
    const float* vb = a.v + j0 * kv_stride + kvh * a.head_dim;
    for (int64_t g = 0; g < group; ++g) {
      const float* q = qs + g * HD;
      float* s = ps + g * kBlock;
      float block_max = maxs[g];
      if (kh) {  // j0 is a multiple of 64 here (window 0)
        __m512 bmv = _mm512_set1_ps(block_max);
        for (int j = 0; j < n; j += 16) {
          const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1u);
          scores_kt<NV>(q, kh + (j0 + j) / 16 * 16 * HD, s + j);
          bmv = _mm512_mask_max_ps(bmv, m, bmv, _mm512_load_ps(s + j));
        }
        block_max = _mm512_reduce_max_ps(bmv);
      } else {
        scores_rows<NV>(q, kb, kv_stride, n, s);
        for (int j = 0; j < n; ++j) block_max = std::max(block_max, s[j]);
      }
      corr[g] = std::exp(maxs[g] - block_max);  // 0 on the first block (max = -inf)
      const __m512 bm = _mm512_set1_ps(block_max);
      __m512 psum = _mm512_setzero_ps();
      for (int j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1u);
        const __m512 p = _mm512_maskz_mov_ps(
            m, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), bm)));
        _mm512_store_ps(s + j, p);
        psum = _mm512_add_ps(psum, p);
      }
      sums[g] = sums[g] * corr[g] + _mm512_reduce_add_ps(psum);
      maxs[g] = block_max;
    }
    int64_t g = 0;
    for (; g + kHb <= group; g += kHb) {
      pv_heads<NV, int(kHb)>(ps + g * kBlock, n, vb, kv_stride, corr + g, accm + g * HD);
    }
    for (; g < group; ++g)
      pv_heads<NV, 1>(ps + g * kBlock, n, vb, kv_stride, corr + g, accm + g * HD);
  }
  for (int64_t g = 0; g < group; ++g) {
    const int64_t h = kvh * group + g;
    float* out = a.out + i * q_stride + h * a.head_dim;
    const float* acc = accm + g * HD;
    if (sums[g] == 0.0f) {
      for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + 16 * v, _mm512_setzero_ps());
      a.lse[i * a.n_head + h] = -std::numeric_limits<float>::infinity();
    } else {
      const __m512 inv = _mm512_set1_ps(1.0f / sums[g]);
      for (int v = 0; v < NV; ++v) {
        _mm512_storeu_ps(out + 16 * v, _mm512_mul_ps(_mm512_load_ps(acc + 16 * v), inv));
      }
      a.lse[i * a.n_head + h] = maxs[g] + std::log(sums[g]);
    }
  }
}

// Items [begin, end) are (query token, KV head) pairs: item = i * n_head_kv + kv head.
void attend(const AttentionArgs& a, const float* kt, int64_t begin, int64_t end) {
  for (int64_t item = begin; item < end; ++item) {
    switch (a.head_dim) {
      case 16:
        attend_group<1>(a, kt, item);
        break;
      case 32:
        attend_group<2>(a, kt, item);
        break;
      case 64:
        attend_group<4>(a, kt, item);
        break;
      default:
        attend_group<8>(a, kt, item);
        break;  // 128 (attention_range_avx512 checks)
    }
  }
}

}  // namespace
}  // namespace ep::kernels::detail::avx512

EP_TARGET_REGION_END

namespace ep::kernels::detail {

AttentionRangeFn attention_range_avx512(int64_t head_dim) {
  if (head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128) return &avx512::attend;
  return nullptr;
}

}  // namespace ep::kernels::detail
