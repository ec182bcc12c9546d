// The forward pass of a Llama-family decoder on the CPU over a batch of sequence chunks: the one
// layer loop. Every chunk brings its own tokens, its own KV (SequenceKv) and optionally a shared
// prefix (a cloud prompt's KV). The weight products run once over all the batch's tokens;
// attention runs per chunk over its own keys, plus one pass over each shared prefix for all the
// chunks that share it (RelayAttention's relay fusion), merged exactly through the log-sum-exps.
//
// In the exact precision each token's result is bit-identical whatever else is in the batch and
// however its sequence was cut into chunks, which is what lets a serving engine batch requests
// without changing their answers.
#pragma once

#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "model/model.h"
#include "runtime/kv_segment.h"
#include "runtime/layer_sink.h"
#include "runtime/sequence_kv.h"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace ep {

// Time spent in one layer during the last forward call.
struct LayerTiming {
  double wait_s = 0;     // blocked on a prefix segment's layer (still in flight)
  double compute_s = 0;  // everything else
};

struct BatchChunk {
  std::span<const int32_t> tokens;  // at own positions n_past .. n_past + n - 1
  int64_t n_past = 0;               // own positions already in `kv`
  SequenceKv* kv = nullptr;
  const KvSegment* prefix = nullptr;  // precedes the own positions; may still be arriving
  bool logits = true;                 // the logits of this chunk's last token are wanted
  // The sequence's block table when its KV is paged (KvBlockPool block ids): what a backend that
  // keeps the blocks in its own memory (a GPU) reads instead of `kv`.
  std::span<const int32_t> blocks = {};
};

// Throws ep::Error unless `prefix` is shaped for `model` (layers, values per token).
void check_prefix_shape(const Model& model, const KvSegment& prefix);

class BatchForward {
 public:
  BatchForward(const Model& model, ThreadPool& pool);

  void set_precision(kernels::Precision precision) { precision_ = precision; }
  kernels::Precision precision() const { return precision_; }
  // Called after each layer with the keys and values of the batch (one chunk only).
  void set_layer_sink(LayerSink sink) { layer_sink_ = std::move(sink); }

  // Runs the chunks, writing their keys and values into their KV. `logits` receives
  // [rows, n_vocab]: one row per chunk with `logits` set, in chunk order, or with `all_logits`
  // (one chunk only) a row for every token. Throws ep::Error for ids out of range or a chunk
  // that does not fit its KV.
  void forward(std::span<const BatchChunk> chunks, std::vector<float>& logits,
               bool all_logits = false);

  const std::vector<LayerTiming>& last_timings() const { return timings_; }
  const Model& model() const { return model_; }

 private:
  void attention_block(std::span<const BatchChunk> chunks, const LayerWeights& w, int64_t layer);
  void prefix_attention(std::span<const BatchChunk> chunks, int64_t layer);
  void ffn_block(const LayerWeights& w, int64_t layer);
  std::array<const MatrixView*, 3> qkv_weights(int64_t layer) const;
  // The layer's sliding window (0: full attention) and RoPE frequencies.
  int64_t window(int64_t layer) const;
  const std::vector<double>& inv_freq(int64_t layer) const;

  const Model& model_;
  const HParams& hp_;
  ThreadPool& pool_;
  std::vector<double> inv_freq_;
  std::vector<double> inv_freq_sliding_;  // the sliding layers', when they have their own base
  kernels::Precision precision_ = kernels::Precision::Exact;
  LayerSink layer_sink_;
  std::vector<LayerTiming> timings_;

  // The current batch: T tokens in chunk order; row offset of each chunk; resized per call.
  int64_t n_tokens_ = 0;
  std::vector<int64_t> first_row_;
  std::vector<float> x_, xn_, q_, k_, v_, attn_, lse_, gate_, up_;
  std::vector<float> q_group_, attn_group_, lse_group_;  // prefix pass of a group of chunks
  std::vector<int64_t> positions_;
};

}  // namespace ep
