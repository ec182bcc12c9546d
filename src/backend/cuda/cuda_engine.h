// The transformer on an NVIDIA GPU: batched prefill of one sequence (publishing each layer's keys
// and values while the next layer computes) and batched decode of many sequences over a paged KV
// cache. This header holds no CUDA types, so the CLI and the services compile without nvcc; the
// implementation is a plugin loaded on first use (engine_backend.h, cuda_loader.cpp).
#pragma once

#include "model/model.h"
#include "runtime/batch_forward.h"
#include "runtime/layer_sink.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ep::cuda {

class EngineBackend;

// True when the CUDA backend plugin loads and a device is present; otherwise false, with the
// reason in `why`.
bool device_available(std::string* why = nullptr);

// Throws ep::Error with one clear line when device_available() is false.
void require_device();

struct EngineOptions {
  int64_t max_seqs = 1;    // sequences that may be open at once
  int64_t max_ctx = 4096;  // tokens one sequence may hold
  bool graphs = true;      // replay decode steps from captured CUDA graphs
  // Quantised matrices stay in their GGUF blocks on the device (dequantised in the kernels);
  // false expands them to bf16 on load (more memory, no dequantisation in batched products).
  // Off by default until its kernels have been measured against the bf16 path on a GPU.
  bool native_weights = false;
};

class Engine {
 public:
  // Uploads the model's weights: F32, F16 and BF16 as bf16, the quantised types as their blocks
  // (or as bf16 without EngineOptions::native_weights).
  Engine(const Model& model, EngineOptions options);
  // A model with random bf16 weights drawn on the device (no file): for benchmarks.
  Engine(const HParams& hp, uint64_t seed, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const HParams& hparams() const;
  int64_t weight_bytes() const;  // bytes of the device's layer and output matrices
  std::string device_name() const;

  int open_sequence();           // throws when max_seqs are open
  void close_sequence(int seq);  // frees its cache pages
  int64_t seq_len(int seq) const;

  // Appends `tokens` to sequence `seq` in one batched pass. Writes the logits of the last token
  // ([1, n_vocab]) or of every token ([n, n_vocab]) when `logits` is not null. `layer_kv`
  // receives each layer's keys and values of these tokens, in layer order, while later layers
  // still compute.
  void prefill(int seq, std::span<const int32_t> tokens, std::vector<float>* logits,
               bool all_logits = false, const LayerSink& layer_kv = {});

  // One token for each sequence in `seqs` (one batched step). Writes logits [B, n_vocab] and/or
  // the greedy next token of each sequence when the pointers are not null.
  void decode(std::span<const int> seqs, std::span<const int32_t> tokens,
              std::vector<float>* logits, std::vector<int32_t>* greedy);

  // The serving engine's KV on the device: `n_blocks` blocks of `block_tokens` (16, 32 or 64)
  // tokens, every layer's keys and values, addressed by the block ids of the host's KvBlockPool.
  // Reconfiguring drops what the pool held.
  void configure_pool(int64_t n_blocks, int64_t block_tokens);
  // Device bytes one such block takes.
  int64_t kv_block_bytes(int64_t block_tokens) const;
  uint64_t free_device_bytes() const;
  // One serving step: the chunks' own KV in the pool's blocks (BatchChunk::blocks), a shared
  // prefix copied to the device once and attended for all its chunks together. Logits as
  // BatchForward gives them; per-layer timings (prefix waits; compute spread evenly).
  // With `greedy`, each logits row's argmax (over the sampleable ids) goes there instead.
  void step(std::span<const BatchChunk> chunks, std::vector<float>& logits,
            std::vector<int32_t>* greedy, std::vector<LayerTiming>& timings);
  // The ids a greedy step may pick: [0, n) less `masked` (default: every id).
  void set_sampleable(int64_t n, std::span<const int32_t> masked);

  // Seconds the device spent in the last prefill, decode or step call (device events).
  double last_device_seconds() const;
  // With profiling on, each prefill also times its stages (an event between stages, so slightly
  // slower); last_profile() gives seconds per stage of the last prefill, summed over layers.
  void set_profiling(bool on);
  std::vector<std::pair<std::string, double>> last_profile() const;

 private:
  // One caller at a time (the cloud prefills prompts on one thread and serves on another).
  mutable std::mutex mutex_;
  std::unique_ptr<EngineBackend> impl_;
};

}  // namespace ep::cuda
