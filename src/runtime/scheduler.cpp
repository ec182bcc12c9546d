#include "runtime/scheduler.h"

#include "core/error.h"

#include <algorithm>

namespace ep {

Scheduler::Scheduler(KvBlockPool& pool, SchedulerOptions options) : pool_(pool), opt_(options) {
  if (opt_.max_seqs < 1) fail("max_seqs must be at least 1");
  if (opt_.max_batched_tokens < 1) fail("max_batched_tokens must be at least 1");
}

int64_t Scheduler::blocks_for(int64_t n_tokens) const {
  return (n_tokens + pool_.block_size() - 1) / pool_.block_size();
}

void Scheduler::add(ScheduledSequence* seq) {
  waiting_.push_back(seq);
}

void Scheduler::release_blocks(ScheduledSequence& s) {
  for (const int32_t b : s.kv.blocks()) pool_.release(b);
  s.kv.blocks().clear();
  s.hashes.clear();
  s.n_computed = 0;
}

void Scheduler::remove(ScheduledSequence* seq) {
  release_blocks(*seq);
  std::erase(running_, seq);
  std::erase(waiting_, seq);
}

bool Scheduler::grow(ScheduledSequence& s, int64_t n_tokens) {
  auto& blocks = s.kv.blocks();
  const int64_t need = blocks_for(n_tokens) - int64_t(blocks.size());
  if (need > pool_.n_available()) return false;
  for (int64_t i = 0; i < need; ++i) blocks.push_back(*pool_.allocate());
  return true;
}

void Scheduler::preempt(ScheduledSequence& s) {
  release_blocks(s);
  s.preempted = true;
  std::erase(running_, &s);
  waiting_.push_front(&s);  // first in line again: it arrived before everything waiting
  ++preemptions_;
}

// Prefix mode: the longest run of the prompt's full blocks already in the cache, leaving at least
// one token to compute (its logits give the next token).
void Scheduler::match_prefix(ScheduledSequence& s) {
  if (opt_.cache_mode != CacheMode::Prefix || s.n_computed > 0) return;
  const int64_t bs = pool_.block_size();
  BlockHash parent;
  for (int64_t b = 0; (b + 1) * bs <= int64_t(s.tokens.size()) - 1; ++b) {
    const BlockHash h = chain_block_hash(parent, s.salt, &s.tokens[size_t(b * bs)], bs);
    const auto block = pool_.lookup(h);
    if (!block) break;
    s.kv.blocks().push_back(*block);
    s.hashes.push_back(h);
    s.n_computed += bs;
    parent = h;
  }
  s.n_hits = s.n_computed;
  prefix_hit_tokens_ += uint64_t(s.n_computed);
}

std::vector<StepItem> Scheduler::plan() {
  std::vector<StepItem> items;
  int64_t budget = opt_.max_batched_tokens;

  // Decodes first: one token each, in admission order. A decode without a block preempts the
  // most recently admitted sequence (possibly itself).
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    ScheduledSequence& s = *running_[i];
    const bool decoding = s.n_computed >= s.n_prompt && s.n_computed < int64_t(s.tokens.size());
    if (!decoding) {
      ++i;
      continue;
    }
    if (grow(s, s.n_computed + 1)) {
      items.push_back({&s, s.n_computed, 1});
      --budget;
      ++i;
      continue;
    }
    ScheduledSequence& victim = *running_.back();
    std::erase_if(items, [&](const StepItem& it) { return it.seq == &victim; });
    preempt(victim);
    if (&victim == &s) continue;  // running_[i] is now the next one
  }
  // Prompts of running sequences (chunked), then new ones in arrival order.
  const auto prefill = [&](ScheduledSequence& s) {
    const int64_t want = std::min<int64_t>(int64_t(s.tokens.size()) - s.n_computed, budget);
    int64_t n = want;
    // As many tokens as the free blocks take.
    const int64_t room =
        (int64_t(s.kv.blocks().size()) + pool_.n_available()) * pool_.block_size() - s.n_computed;
    n = std::min(n, room);
    if (n <= 0 || !grow(s, s.n_computed + n)) return false;
    items.push_back({&s, s.n_computed, n});
    budget -= n;
    return true;
  };
  for (ScheduledSequence* s : running_) {
    if (budget <= 0) break;
    const bool decoding = s->n_computed >= s->n_prompt && s->n_computed < int64_t(s->tokens.size());
    const bool scheduled =
        std::any_of(items.begin(), items.end(), [&](const StepItem& it) { return it.seq == s; });
    if (!decoding && !scheduled) prefill(*s);
  }
  while (budget > 0 && !waiting_.empty() && int64_t(running_.size()) < opt_.max_seqs) {
    ScheduledSequence& s = *waiting_.front();
    match_prefix(s);
    if (!prefill(s)) {
      release_blocks(s);  // prefix blocks matched but no room: try again next step
      break;              // first come, first served: nobody overtakes it
    }
    waiting_.pop_front();
    running_.push_back(&s);
  }
  return items;
}

void Scheduler::completed(const std::vector<StepItem>& items) {
  const int64_t bs = pool_.block_size();
  for (const StepItem& it : items) {
    ScheduledSequence& s = *it.seq;
    s.n_computed = it.begin + it.n;
    if (opt_.cache_mode != CacheMode::Prefix) continue;
    // Every block that is now full of computed tokens becomes shareable.
    while (int64_t(s.hashes.size()) < s.n_computed / bs) {
      const size_t b = s.hashes.size();
      const BlockHash parent = b == 0 ? BlockHash{} : s.hashes[b - 1];
      const BlockHash h = chain_block_hash(parent, s.salt, &s.tokens[b * size_t(bs)], bs);
      pool_.set_hash(s.kv.blocks()[b], h);
      s.hashes.push_back(h);
    }
  }
}

}  // namespace ep
