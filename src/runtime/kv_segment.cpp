#include "runtime/kv_segment.h"

#include "core/error.h"

#include <algorithm>

namespace ep {

KvSegment::KvSegment(int64_t n_layers, int64_t n_tokens, int64_t n_head_kv, int64_t head_dim)
    : n_layers_(n_layers), n_tokens_(n_tokens), row_(n_head_kv * head_dim), layers_(n_layers) {
  k_.resize(size_t(n_layers));
  v_.resize(size_t(n_layers));
  for (int64_t l = 0; l < n_layers; ++l) {
    k_[size_t(l)].resize(size_t(n_tokens * row_));
    v_[size_t(l)].resize(size_t(n_tokens * row_));
  }
}

uint64_t KvSegment::bytes() const {
  return uint64_t(2 * n_layers_ * n_tokens_ * row_) * sizeof(float);
}

void KvSegment::publish_layer(int64_t layer, const float* k, const float* v) {
  if (layer < 0 || layer >= n_layers_)
    fail("KV layer {} out of range ({} layers)", layer, n_layers_);
  std::copy(k, k + n_tokens_ * row_, k_mut(layer));
  std::copy(v, v + n_tokens_ * row_, v_mut(layer));
  mark_ready(layer);
}

std::chrono::nanoseconds KvSegment::wait_layer(int64_t layer) const {
  const auto start = std::chrono::steady_clock::now();
  layers_.wait(layer);
  return std::chrono::steady_clock::now() - start;
}

}  // namespace ep
