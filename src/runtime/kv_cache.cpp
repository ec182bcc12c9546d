#include "runtime/kv_cache.h"

#include <algorithm>

namespace ep {

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim)
    : n_ctx_(n_ctx), row_(n_head_kv * head_dim) {
  k_.resize(size_t(n_layer));
  v_.resize(size_t(n_layer));
  for (int64_t l = 0; l < n_layer; ++l) {
    k_[size_t(l)].resize(size_t(n_ctx * row_));
    v_[size_t(l)].resize(size_t(n_ctx * row_));
  }
}

void KvCache::write(int64_t layer, int64_t first, int64_t n, const float* k_rows,
                    const float* v_rows) {
  std::copy(k_rows, k_rows + n * row_, k(layer, first));
  std::copy(v_rows, v_rows + n * row_, v(layer, first));
}

}  // namespace ep
