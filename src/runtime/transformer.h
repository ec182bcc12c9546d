// The forward pass of a Llama-family decoder on the CPU, for one sequence: its own contiguous KV
// cache, optionally after a read-only prefix (the cloud prompt), through the one layer loop
// (batch_forward.h) with a batch of one.
#pragma once

#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "model/model.h"
#include "runtime/batch_forward.h"
#include "runtime/kv_cache.h"
#include "runtime/kv_segment.h"
#include "runtime/layer_sink.h"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace ep {

class Transformer {
 public:
  // n_ctx: the most tokens this sequence may hold after the prefix (prompt + generated).
  // prefix: an optional read-only KV segment (the cloud prompt) that precedes this sequence's own
  // tokens; they are positioned after it and attend to it, layer by layer as it arrives.
  Transformer(const Model& model, int64_t n_ctx, ThreadPool& pool,
              std::shared_ptr<const KvSegment> prefix = nullptr);

  // Called after each layer with the keys and values of the batch just processed.
  void set_layer_sink(LayerSink sink) { layers_.set_layer_sink(std::move(sink)); }

  // Arithmetic of the weight products: Exact (f32 activations, the default: what the fidelity and
  // split bars are measured with) or Fast (8-bit / bf16 / f16 activations; docs/performance.md).
  void set_precision(kernels::Precision precision) { layers_.set_precision(precision); }

  // Runs `tokens` at positions n_past() .. n_past() + n - 1 in one batched pass, appending their
  // keys and values to the cache. Writes logits [n, n_vocab] for every token when all_logits is
  // set, else [1, n_vocab] for the last one. Throws ep::Error for ids out of range or a full
  // context.
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits);

  int64_t n_past() const { return n_past_; }  // positions used, prefix included
  int64_t n_prefix() const { return n_prefix_; }
  int64_t n_ctx() const { return cache_.n_ctx(); }
  const Model& model() const { return layers_.model(); }
  const std::vector<LayerTiming>& last_timings() const { return layers_.last_timings(); }
  void reset() { n_past_ = n_prefix_; }

 private:
  BatchForward layers_;
  KvCache cache_;  // this sequence's own tokens; cache position = position - n_prefix_
  std::shared_ptr<const KvSegment> prefix_;
  int64_t n_prefix_ = 0;
  int64_t n_past_ = 0;
};

}  // namespace ep
