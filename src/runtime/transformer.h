// The forward pass of a Llama-family decoder on the CPU, for one sequence.
#pragma once

#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "model/model.h"
#include "runtime/kv_cache.h"
#include "runtime/kv_segment.h"
#include "runtime/layer_sink.h"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace ep {

// Time spent in one layer during the last forward call.
struct LayerTiming {
  double wait_s = 0;     // blocked on the prefix segment's layer (still in flight)
  double compute_s = 0;  // everything else
};

class Transformer {
 public:
  // n_ctx: the most tokens this sequence may hold after the prefix (prompt + generated).
  // prefix: an optional read-only KV segment (the cloud prompt) that precedes this sequence's own
  // tokens; they are positioned after it and attend to it, layer by layer as it arrives.
  Transformer(const Model& model, int64_t n_ctx, ThreadPool& pool,
              std::shared_ptr<const KvSegment> prefix = nullptr);

  // Called after each layer with the keys and values of the batch just processed.
  void set_layer_sink(LayerSink sink) { layer_sink_ = std::move(sink); }

  // Arithmetic of the weight products: Exact (f32 activations, the default: what the fidelity and
  // split bars are measured with) or Fast (8-bit / bf16 / f16 activations; docs/performance.md).
  void set_precision(kernels::Precision precision) { precision_ = precision; }

  // Runs `tokens` at positions n_past() .. n_past() + n - 1 in one batched pass, appending their
  // keys and values to the cache. Writes logits [n, n_vocab] for every token when all_logits is
  // set, else [1, n_vocab] for the last one. Throws ep::Error for ids out of range or a full
  // context.
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits);

  int64_t n_past() const { return n_past_; }  // positions used, prefix included
  int64_t n_prefix() const { return n_prefix_; }
  int64_t n_ctx() const { return cache_.n_ctx(); }
  const Model& model() const { return model_; }
  const std::vector<LayerTiming>& last_timings() const { return timings_; }
  void reset() { n_past_ = n_prefix_; }

 private:
  void attention_block(const LayerWeights& w, int64_t layer, int64_t n);
  void ffn_block(const LayerWeights& w, int64_t layer, int64_t n);
  // The Q, K, V weights of a layer: its first product, which the product before it names as the
  // next (the output head names layer 0's, for the next token).
  std::array<const MatrixView*, 3> qkv_weights(int64_t layer) const;

  const Model& model_;
  const HParams& hp_;
  ThreadPool& pool_;
  KvCache cache_;  // this sequence's own tokens; cache position = position - n_prefix_
  std::shared_ptr<const KvSegment> prefix_;
  int64_t n_prefix_ = 0;
  std::vector<double> inv_freq_;
  int64_t n_past_ = 0;
  LayerSink layer_sink_;
  kernels::Precision precision_ = kernels::Precision::Exact;
  std::vector<LayerTiming> timings_;

  // Activations of the current batch, [n, width] each; resized per call.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, lse_, attn_local_, lse_local_, gate_, up_;
  std::vector<int64_t> positions_;
};

}  // namespace ep
