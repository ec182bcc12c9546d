// What computes one step of the serving engine: the forward pass over a batch of sequence chunks
// whose own KV lives in the blocks of a KvBlockPool. The CPU layer loop (BatchForward, over the
// pool's host memory) and the CUDA backend (over device memory indexed by the same block ids)
// both implement it, so one scheduler, one block table and one prefix cache serve either.
#pragma once

#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "model/model.h"
#include "runtime/batch_forward.h"

#include <memory>
#include <span>
#include <vector>

namespace ep {

class StepForward {
 public:
  virtual ~StepForward() = default;
  // True when the chunks' KV is the pool's host memory (reached through BatchChunk::kv); false
  // when the backend keeps its own copy of every block (reached through BatchChunk::blocks), so
  // the pool need not allocate any.
  virtual bool host_kv() const = 0;
  // Runs the chunks; `logits` receives one row per chunk whose `logits` flag is set, in chunk
  // order. With `greedy` a backend may instead give each such row's argmax over the sampleable
  // ids there (saving the rows' copy and the host's pass over them) and return true. Throws
  // ep::Error (LayerStreamError when a prefix failed to arrive).
  virtual bool forward(std::span<const BatchChunk> chunks, std::vector<float>& logits,
                       std::vector<int32_t>* greedy = nullptr) = 0;
  // The ids greedy picks may come from: [0, n) less `masked`.
  virtual void set_sampleable(int64_t /*n*/, std::span<const int32_t> /*masked*/) {}
  virtual const std::vector<LayerTiming>& last_timings() const = 0;
};

// The CPU layer loop as a step backend.
std::unique_ptr<StepForward> cpu_step_forward(const Model& model, ThreadPool& pool,
                                              kernels::Precision precision);

}  // namespace ep
