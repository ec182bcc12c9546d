#include "runtime/kv_segment.h"

#include "core/error.h"

#include <algorithm>

namespace ep {

KvSegment::KvSegment(int64_t n_layers, int64_t n_tokens, int64_t n_head_kv, int64_t head_dim)
    : n_layers_(n_layers), n_tokens_(n_tokens), row_(n_head_kv * head_dim) {
  k_.resize(size_t(n_layers));
  v_.resize(size_t(n_layers));
  for (int64_t l = 0; l < n_layers; ++l) {
    k_[size_t(l)].resize(size_t(n_tokens * row_));
    v_[size_t(l)].resize(size_t(n_tokens * row_));
  }
  ready_.assign(size_t(n_layers), false);
}

uint64_t KvSegment::bytes() const {
  return uint64_t(2 * n_layers_ * n_tokens_ * row_) * sizeof(float);
}

void KvSegment::publish_layer(int64_t layer, const float* k, const float* v) {
  std::copy(k, k + n_tokens_ * row_, k_mut(layer));
  std::copy(v, v + n_tokens_ * row_, v_mut(layer));
  mark_ready(layer);
}

void KvSegment::mark_ready(int64_t layer) {
  if (layer < 0 || layer >= n_layers_)
    ep::fail("KV layer {} out of range ({} layers)", layer, n_layers_);
  {
    std::lock_guard lock(mutex_);
    if (!ready_[size_t(layer)]) {
      ready_[size_t(layer)] = true;
      ++n_ready_;
    }
  }
  ready_cv_.notify_all();
}

void KvSegment::set_error(const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    if (error_.empty()) error_ = message;
  }
  ready_cv_.notify_all();
}

std::chrono::nanoseconds KvSegment::wait_layer(int64_t layer) const {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  ready_cv_.wait(lock, [&] { return ready_[size_t(layer)] || !error_.empty(); });
  if (!ready_[size_t(layer)]) throw Error(error_);
  return std::chrono::steady_clock::now() - start;
}

bool KvSegment::layer_ready(int64_t layer) const {
  std::lock_guard lock(mutex_);
  return ready_[size_t(layer)];
}

bool KvSegment::complete() const {
  std::lock_guard lock(mutex_);
  return n_ready_ == n_layers_;
}

}  // namespace ep
