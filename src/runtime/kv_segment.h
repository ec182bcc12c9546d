// A read-only KV segment shared by many sequences: the cloud prompt's keys and values, which may
// still be arriving layer by layer. Consumers wait for a layer (LayerStream: no busy waiting);
// the producer publishes layers in any order, or sets an error that every waiter receives.
#pragma once

#include "runtime/layer_stream.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ep {

// Held by shared_ptr (make_shared): a backend that copies it elsewhere (a GPU) keeps a weak_ptr
// to know that its copy still belongs to this segment and not to a later one at the same address.
class KvSegment : public std::enable_shared_from_this<KvSegment> {
 public:
  KvSegment(int64_t n_layers, int64_t n_tokens, int64_t n_head_kv, int64_t head_dim);

  int64_t n_layers() const { return n_layers_; }
  int64_t n_tokens() const { return n_tokens_; }
  int64_t row_size() const { return row_; }  // floats per token per layer (n_head_kv * head_dim)
  uint64_t bytes() const;                    // memory held by K and V

  // Producer side. `k` and `v` are [n_tokens, row_size] f32.
  void publish_layer(int64_t layer, const float* k, const float* v);
  // Writable views for producers that fill in place, then call mark_ready.
  float* k_mut(int64_t layer) { return k_[size_t(layer)].data(); }
  float* v_mut(int64_t layer) { return v_[size_t(layer)].data(); }
  void mark_ready(int64_t layer) { layers_.mark_ready(layer); }
  void set_error(const std::string& message) { layers_.set_error(message); }

  // Consumer side: blocks until the layer is ready; throws LayerStreamError if the segment
  // failed. Returns the time spent waiting.
  std::chrono::nanoseconds wait_layer(int64_t layer) const;
  bool layer_ready(int64_t layer) const { return layers_.ready(layer); }
  bool complete() const { return layers_.complete(); }
  const float* k(int64_t layer) const { return k_[size_t(layer)].data(); }
  const float* v(int64_t layer) const { return v_[size_t(layer)].data(); }

 private:
  int64_t n_layers_, n_tokens_, row_;
  std::vector<std::vector<float>> k_, v_;
  LayerStream layers_;
};

}  // namespace ep
