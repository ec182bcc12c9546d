#include "kernels/cpu/attention.h"

#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ep::kernels {

void attention(const AttentionArgs& a, ThreadPool& pool) {
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t q_stride = a.n_head * a.head_dim;
  const int64_t kv_stride = a.n_head_kv * a.head_dim;
  constexpr int64_t kBlock = 64;  // keys scored per step of the online softmax

  if (active_isa() == Isa::Avx512) {
    if (const auto fn = detail::attention_range_avx512(a.head_dim)) {
      // Several queries (prefill): transpose the keys once so that scores come out 16 keys per
      // vector; costs one pass over K, shared by n_q · group queries.
      std::vector<float> kt;
      if (a.window == 0 && a.n_q >= 4) {
        const int64_t n_kb = (a.n_kv + 15) / 16, hd = a.head_dim;
        kt.resize(size_t(a.n_head_kv * n_kb * 16 * hd));
        pool.parallel_for(a.n_head_kv * n_kb, 8, [&](int64_t begin, int64_t end) {
          for (int64_t u = begin; u < end; ++u) {
            const int64_t h = u / n_kb, b = u % n_kb;
            float* dst = &kt[size_t(u * 16 * hd)];
            for (int64_t j = 0; j < 16; ++j) {
              const int64_t key = b * 16 + j;
              const float* src = a.k + key * kv_stride + h * hd;
              for (int64_t d = 0; d < hd; ++d) dst[d * 16 + j] = key < a.n_kv ? src[d] : 0.0f;
            }
          }
        });
      }
      const float* ktp = kt.empty() ? nullptr : kt.data();
      pool.parallel_for(a.n_q * a.n_head_kv, 1,
                        [&](int64_t begin, int64_t end) { fn(a, ktp, begin, end); });
      return;
    }
  }
  pool.parallel_for(a.n_q * a.n_head, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(size_t(a.head_dim));
    float scores[kBlock];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t i = item / a.n_head;
      const int64_t h = item % a.n_head;
      const int64_t kvh = h / group;
      const float* q = a.q + i * q_stride + h * a.head_dim;
      const int64_t pos = a.q_pos0 + i;
      // Visible keys: k_pos0 + j <= pos, and within the window if one is set.
      int64_t j_end = std::min(a.n_kv, pos - a.k_pos0 + 1);
      int64_t j_begin = a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1 - a.k_pos0) : 0;
      float max = -std::numeric_limits<float>::infinity();
      float sum = 0.0f;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j0 = j_begin; j0 < j_end; j0 += kBlock) {
        const int64_t n = std::min(kBlock, j_end - j0);
        float block_max = max;
        for (int64_t j = 0; j < n; ++j) {
          scores[j] =
              dot_f32(q, a.k + (j0 + j) * kv_stride + kvh * a.head_dim, a.head_dim) * a.scale;
          block_max = std::max(block_max, scores[j]);
        }
        // Rescale what was accumulated under the old maximum.
        const float correction = std::exp(max - block_max);
        sum *= correction;
        for (auto& x : acc) x *= correction;
        for (int64_t j = 0; j < n; ++j) {
          const float p = std::exp(scores[j] - block_max);
          sum += p;
          const float* v = a.v + (j0 + j) * kv_stride + kvh * a.head_dim;
          for (int64_t d = 0; d < a.head_dim; ++d) acc[size_t(d)] += p * v[d];
        }
        max = block_max;
      }
      float* out = a.out + i * q_stride + h * a.head_dim;
      if (sum == 0.0f) {
        std::fill(out, out + a.head_dim, 0.0f);
        a.lse[item] = -std::numeric_limits<float>::infinity();
      } else {
        const float inv = 1.0f / sum;
        for (int64_t d = 0; d < a.head_dim; ++d) out[d] = acc[size_t(d)] * inv;
        a.lse[item] = max + std::log(sum);
      }
    }
  });
}

void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b,
                     int64_t n_rows, int64_t head_dim) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float la = lse_a[r], lb = lse_b[r];
    if (std::isinf(lb) && lb < 0) continue;  // b saw no keys
    float* oa = out_a + r * head_dim;
    const float* ob = out_b + r * head_dim;
    if (std::isinf(la) && la < 0) {
      std::copy(ob, ob + head_dim, oa);
      lse_a[r] = lb;
      continue;
    }
    const float wa = 1.0f / (1.0f + std::exp(lb - la));
    const float wb = 1.0f - wa;
    for (int64_t d = 0; d < head_dim; ++d) oa[d] = wa * oa[d] + wb * ob[d];
    const float m = std::max(la, lb);
    lse_a[r] = m + std::log(std::exp(la - m) + std::exp(lb - m));
  }
}

}  // namespace ep::kernels
