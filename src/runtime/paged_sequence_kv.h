// One sequence's own KV in blocks of a shared KvBlockPool: its block table maps own position p
// to slot p % block_size of block table[p / block_size]. Attention reads the sequence's KV in
// position order, so view() gathers the blocks of a layer into a contiguous scratch.
#pragma once

#include "runtime/kv_block_pool.h"
#include "runtime/sequence_kv.h"

#include <cstdint>
#include <vector>

namespace ep {

class PagedSequenceKv final : public SequenceKv {
 public:
  explicit PagedSequenceKv(KvBlockPool& pool) : pool_(pool) {}

  std::vector<int32_t>& blocks() { return blocks_; }
  const std::vector<int32_t>& blocks() const { return blocks_; }

  void write(int64_t layer, int64_t first, int64_t n, const float* k, const float* v) override;
  std::pair<const float*, const float*> view(int64_t layer, int64_t n) override;
  int64_t capacity() const override { return int64_t(blocks_.size()) * pool_.block_size(); }

 private:
  KvBlockPool& pool_;
  std::vector<int32_t> blocks_;
  std::vector<float> k_, v_;  // gathered for view()
};

}  // namespace ep
