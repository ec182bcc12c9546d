#include "kernels/cpu/attention.h"

#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/cpu_features.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ep::kernels {
namespace {

#include "kernels/cpu/attention_portable.inc"

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  const int64_t kv_stride = a.n_head_kv * a.head_dim;
  const Isa isa = active_isa();
  const detail::AttentionRangeFn fn = isa == Isa::Avx512
                                          ? detail::attention_range_avx512(a.head_dim)
                                      : isa == Isa::Avx2 ? detail::attention_range_avx2(a.head_dim)
                                                         : nullptr;
  if (fn) {
    // Several queries (prefill): transpose the keys once so that scores come out one key per
    // lane; costs one pass over K, shared by n_q · group queries.
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
  // The portable kernel (head sizes without a vectorised kernel, and the scalar level), one item
  // per query token and head.
  const auto range =
      isa == Isa::Scalar ? &portable_attention_range : &detail::portable_attention_range_avx2;
  pool.parallel_for(a.n_q * a.n_head, 4, [&](int64_t begin, int64_t end) { range(a, begin, end); });
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
