// AVX-512 attention for head_dim 16, 32, 64 and 128: the same online-softmax algorithm as the
// portable kernel in attention.cpp (blocks of 64 keys, rescaling by exp(old max - new max)), with
// vector dot products, a vectorised exp and the value accumulator held in registers. Compiled
// for that target by the pragma below; attention.cpp calls it only on CPUs with AVX-512.
#include "kernels/cpu/attention_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <immintrin.h>

#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
// GCC and clang spell "compile this region for these instruction sets" differently.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#endif

namespace ep::kernels::detail::avx512 {
namespace {

// exp(x) for x <= 0 (arguments below -87 flush to 0): x = n·ln2 + r, |r| <= ln2/2, e^r by its
// degree-7 Taylor polynomial (relative error < 2e-8 before rounding), times 2^n by vscalefps.
inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

template <int NV>
void attend_one(const AttentionArgs& a, int64_t item) {
  constexpr int64_t kBlock = 64;
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t q_stride = a.n_head * a.head_dim, kv_stride = a.n_head_kv * a.head_dim;
  const int64_t i = item / a.n_head, h = item % a.n_head, kvh = h / group;
  const float* qp = a.q + i * q_stride + h * a.head_dim;
  const int64_t pos = a.q_pos0 + i;
  const int64_t j_end = std::min(a.n_kv, pos - a.k_pos0 + 1);
  const int64_t j_begin = a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1 - a.k_pos0) : 0;
  __m512 q[NV], acc[NV];
  const __m512 scale = _mm512_set1_ps(a.scale);
  for (int v = 0; v < NV; ++v) {
    q[v] = _mm512_mul_ps(_mm512_loadu_ps(qp + 16 * v), scale);
    acc[v] = _mm512_setzero_ps();
  }
  alignas(64) float s[kBlock];
  float max = -std::numeric_limits<float>::infinity(), sum = 0.0f;
  for (int64_t j0 = j_begin; j0 < j_end; j0 += kBlock) {
    const int n = int(std::min(kBlock, j_end - j0));
    const float* kb = a.k + j0 * kv_stride + kvh * a.head_dim;
    const float* vb = a.v + j0 * kv_stride + kvh * a.head_dim;
    float block_max = max;
    for (int j = 0; j < n; ++j) {
      const float* kp = kb + j * kv_stride;
      __m512 d = _mm512_mul_ps(q[0], _mm512_loadu_ps(kp));
      for (int v = 1; v < NV; ++v) d = _mm512_fmadd_ps(q[v], _mm512_loadu_ps(kp + 16 * v), d);
      s[j] = _mm512_reduce_add_ps(d);
      block_max = std::max(block_max, s[j]);
    }
    const float correction = std::exp(max - block_max);  // 0 on the first block (max = -inf)
    sum *= correction;
    const __m512 c = _mm512_set1_ps(correction);
    for (int v = 0; v < NV; ++v) acc[v] = _mm512_mul_ps(acc[v], c);
    const __m512 bm = _mm512_set1_ps(block_max);
    __m512 psum = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
      const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1u);
      const __m512 p = _mm512_maskz_mov_ps(m, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), bm)));
      _mm512_store_ps(s + j, p);
      psum = _mm512_add_ps(psum, p);
    }
    sum += _mm512_reduce_add_ps(psum);
    for (int j = 0; j < n; ++j) {
      const __m512 p = _mm512_set1_ps(s[j]);
      const float* vp = vb + j * kv_stride;
      for (int v = 0; v < NV; ++v) acc[v] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vp + 16 * v), acc[v]);
    }
    max = block_max;
  }
  float* out = a.out + i * q_stride + h * a.head_dim;
  if (sum == 0.0f) {
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + 16 * v, _mm512_setzero_ps());
    a.lse[item] = -std::numeric_limits<float>::infinity();
  } else {
    const __m512 inv = _mm512_set1_ps(1.0f / sum);
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + 16 * v, _mm512_mul_ps(acc[v], inv));
    a.lse[item] = max + std::log(sum);
  }
}

void attend(const AttentionArgs& a, int64_t begin, int64_t end) {
  for (int64_t item = begin; item < end; ++item) {
    switch (a.head_dim) {
      case 16: attend_one<1>(a, item); break;
      case 32: attend_one<2>(a, item); break;
      case 64: attend_one<4>(a, item); break;
      default: attend_one<8>(a, item); break;  // 128 (attention_range_avx512 checks)
    }
  }
}

}  // namespace
}  // namespace ep::kernels::detail::avx512

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#pragma GCC diagnostic pop

namespace ep::kernels::detail {

AttentionRangeFn attention_range_avx512(int64_t head_dim) {
  if (head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128) return &avx512::attend;
  return nullptr;
}

}  // namespace ep::kernels::detail
