// The serving engine: many requests at once on one model, by continuous batching over paged KV
// (scheduler.h, kv_block_pool.h, batch_forward.h) on a thread of its own. A caller hands in a
// request and receives its text as it is produced, exactly as generate() gives it for a request
// alone: in the exact precision every answer is token-identical whatever else runs beside it.
// The cloud runs one for its completions; an edge runs one for its users (max_seqs 1: one at a
// time, as before).
#pragma once

#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/batch_forward.h"
#include "runtime/generate.h"
#include "runtime/kv_block_pool.h"
#include "runtime/scheduler.h"
#include "runtime/step_forward.h"
#include "tokenizer/sampleable_vocab.h"
#include "tokenizer/tokenizer.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace ep {

struct EngineOptions {
  int64_t max_seqs = 16;
  int64_t max_batched_tokens = 512;
  int64_t kv_block = 16;                   // tokens per KV block
  uint64_t kv_cache_bytes = 256ull << 20;  // the KV pool (host memory)
  int64_t kv_blocks = 0;  // blocks of the KV pool; 0: as many as kv_cache_bytes hold
  CacheMode cache_mode = CacheMode::None;
  kernels::Precision precision = kernels::Precision::Exact;
  int64_t n_ctx = 0;          // longest sequence, shared prefix included; 0: the model's
  size_t max_waiting = 1024;  // requests queued beyond this are refused (EngineBusy)
  // Called on the engine's thread (keep them cheap): after each step with the sequences and
  // tokens it computed, and after each request that ended well with its result.
  std::function<void(size_t seqs, int64_t tokens)> on_step;
  std::function<void(const GenerationResult&)> on_finished;
};

// The engine cannot take the request now (its queue is full); trying later can succeed.
class EngineBusy : public Error {
 public:
  using Error::Error;
};

struct EngineStats {
  size_t running = 0, waiting = 0;
  int64_t kv_blocks_used = 0, kv_blocks_total = 0;
  uint64_t preemptions = 0, prefix_hit_tokens = 0, steps = 0;
  uint64_t batch_tokens = 0;  // tokens computed over all steps
};

class ServingEngine {
 public:
  // `forward` computes the steps (a GPU backend); without one, the CPU layer loop on `pool`.
  ServingEngine(const Model& model, const Tokenizer* tokenizer, ThreadPool& pool,
                EngineOptions options, std::unique_ptr<StepForward> forward = nullptr);
  ~ServingEngine();  // requests still running fail with "the engine stopped"
  ServingEngine(const ServingEngine&) = delete;
  ServingEngine& operator=(const ServingEngine&) = delete;

  // Runs one request to its end, calling on_text with each piece of text in the caller's thread
  // (returning false cancels the request: the client is gone). `request.prefix` (a cloud
  // prompt's KV) is attended as a shared segment. Throws ep::Error for a request that can never
  // run (empty, ids out of range, longer than the context or the whole KV pool), EngineBusy when
  // the queue is full, LayerStreamError when its prefix failed to arrive.
  GenerationResult generate(const GenerationRequest& request,
                            const std::function<bool(const std::string&)>& on_text);

  EngineStats stats() const;
  const EngineOptions& options() const { return opt_; }

 private:
  struct Request;
  void loop();
  void step(std::vector<StepItem>& items);
  void finish(Request& r, const std::string& error = {});
  void publish_stats();

  const Model& model_;
  const Tokenizer* tokenizer_;
  EngineOptions opt_;
  std::unique_ptr<StepForward> forward_;
  KvBlockPool pool_;
  Scheduler scheduler_;
  int64_t n_ctx_;
  SampleableVocab sampleable_;  // what the samplers may draw

  mutable std::mutex mutex_;  // guards incoming_, stopping_ and the counters read by stats()
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Request>> incoming_;
  bool stopping_ = false;
  EngineStats stats_;
  uint64_t next_id_ = 1;

  // Owned by the engine thread.
  std::vector<std::shared_ptr<Request>> active_;
  std::thread thread_;
};

}  // namespace ep
