// The forward pass of a Llama-family decoder on the CPU, for one sequence.
#pragma once

#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/kv_cache.h"

#include <cstdint>
#include <span>
#include <vector>

namespace ep {

class Transformer {
 public:
  // n_ctx: the most tokens this sequence may hold (prompt + generated).
  Transformer(const Model& model, int64_t n_ctx, ThreadPool& pool);

  // Runs `tokens` at positions n_past() .. n_past() + n - 1 in one batched pass, appending their
  // keys and values to the cache. Writes logits [n, n_vocab] for every token when all_logits is
  // set, else [1, n_vocab] for the last one. Throws ep::Error for ids out of range or a full
  // context.
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits);

  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return cache_.n_ctx(); }
  const Model& model() const { return model_; }
  void reset() { n_past_ = 0; }

 private:
  void attention_block(const LayerWeights& w, int64_t layer, int64_t n);
  void ffn_block(const LayerWeights& w, int64_t n);

  const Model& model_;
  const HParams& hp_;
  ThreadPool& pool_;
  KvCache cache_;
  std::vector<double> inv_freq_;
  int64_t n_past_ = 0;

  // Activations of the current batch, [n, width] each; resized per call.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, lse_, gate_, up_;
  std::vector<int64_t> positions_;
};

}  // namespace ep
