// The key/value cache of one sequence: per layer, K and V rows [position, kv_head, head_dim],
// contiguous.
#pragma once

#include "runtime/sequence_kv.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ep {

class KvCache final : public SequenceKv {
 public:
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t row_size() const { return row_; }  // floats per position (n_head_kv * head_dim)
  float* k(int64_t layer, int64_t pos) { return &k_[size_t(layer)][size_t(pos * row_)]; }
  float* v(int64_t layer, int64_t pos) { return &v_[size_t(layer)][size_t(pos * row_)]; }
  const float* k(int64_t layer, int64_t pos) const {
    return &k_[size_t(layer)][size_t(pos * row_)];
  }
  const float* v(int64_t layer, int64_t pos) const {
    return &v_[size_t(layer)][size_t(pos * row_)];
  }

  void write(int64_t layer, int64_t first, int64_t n, const float* k, const float* v) override;
  std::pair<const float*, const float*> view(int64_t layer, int64_t) override {
    return {k(layer, 0), v(layer, 0)};
  }
  int64_t capacity() const override { return n_ctx_; }

 private:
  int64_t n_ctx_;
  int64_t row_;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace ep
