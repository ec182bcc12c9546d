// Which tokens of which sequences run in the next step of a serving engine (iteration-level
// continuous batching, as vLLM and Orca schedule): every running sequence that is decoding gets
// its one token, then prompts are prefilled in chunks, running ones first, then waiting ones
// admitted in arrival order, while the step's token budget and the KV blocks last. A decode that
// finds no free block preempts the most recently admitted sequence, whose blocks are freed and
// whose tokens are computed again when it is readmitted (same tokens, so the same output).
#pragma once

#include "runtime/kv_block_pool.h"
#include "runtime/kv_segment.h"
#include "runtime/paged_sequence_kv.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace ep {

// none: each sequence computes its whole prompt; prefix: full blocks of equal token prefixes are
// computed once and shared (automatic prefix caching); relay: the shared part of a prompt (a
// cloud prompt) is a KV segment held once, attended by every sequence that uses it in one pass.
enum class CacheMode { None, Prefix, Relay };

struct ScheduledSequence {
  explicit ScheduledSequence(KvBlockPool& pool) : kv(pool) {}

  uint64_t id = 0;
  std::vector<int32_t> tokens;  // own tokens: the prompt, then each sampled token
  int64_t n_prompt = 0;
  int64_t n_computed = 0;                   // tokens whose K/V is in `kv`
  int64_t max_tokens = 0;                   // own tokens it may reach: prompt + most new tokens
  std::shared_ptr<const KvSegment> prefix;  // relay: the shared KV before the own tokens
  uint64_t salt = 0;                        // prefix caching: blocks are shared within a salt
  PagedSequenceKv kv;
  std::vector<BlockHash> hashes;  // of the full blocks, in order (prefix caching)
  int64_t n_hits = 0;             // prompt tokens found in the prefix cache at admission
  bool preempted = false;         // was preempted at least once
};

struct StepItem {
  ScheduledSequence* seq;
  int64_t begin, n;  // tokens[begin, begin + n) run this step
};

struct SchedulerOptions {
  int64_t max_seqs = 16;             // sequences running at once
  int64_t max_batched_tokens = 512;  // tokens one step computes
  CacheMode cache_mode = CacheMode::None;
};

class Scheduler {
 public:
  Scheduler(KvBlockPool& pool, SchedulerOptions options);

  // Queues a sequence (arrival order). It must be able to fit the pool alone.
  void add(ScheduledSequence* seq);
  // Removes a sequence wherever it is (finished, cancelled) and frees its blocks.
  void remove(ScheduledSequence* seq);

  // The next step: which tokens run. Empty when nothing can run.
  std::vector<StepItem> plan();
  // After the step ran: its tokens are computed; full blocks become shareable (prefix mode).
  void completed(const std::vector<StepItem>& items);

  size_t n_running() const { return running_.size(); }
  size_t n_waiting() const { return waiting_.size(); }
  uint64_t preemptions() const { return preemptions_; }
  uint64_t prefix_hit_tokens() const { return prefix_hit_tokens_; }
  const SchedulerOptions& options() const { return opt_; }
  // Blocks a sequence of `n_tokens` own tokens needs at most.
  int64_t blocks_for(int64_t n_tokens) const;

 private:
  bool grow(ScheduledSequence& s, int64_t n_tokens);  // blocks for n_tokens own tokens
  void release_blocks(ScheduledSequence& s);
  void preempt(ScheduledSequence& s);
  void match_prefix(ScheduledSequence& s);

  KvBlockPool& pool_;
  SchedulerOptions opt_;
  std::deque<ScheduledSequence*> waiting_;
  std::vector<ScheduledSequence*> running_;  // admission order
  uint64_t preemptions_ = 0;
  uint64_t prefix_hit_tokens_ = 0;
};

}  // namespace ep
