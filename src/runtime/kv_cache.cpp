#include "runtime/kv_cache.h"

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

}  // namespace ep
