// Paged KV: a pool of fixed-size blocks, each holding `block_size` token positions of every
// layer's keys and values, shared by all the sequences of a serving engine. Blocks are counted by
// reference, so a full block of a common prefix serves several sequences without a copy
// (prefix caching: a full block is keyed by the chained hash of the tokens up to its end, and
// stays cached after its last user until its memory is needed, least recently used first).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace ep {

// 128 bits of XXH3 over the chain: equal hashes mean equal prefixes (a collision is 2^-128).
struct BlockHash {
  uint64_t low = 0, high = 0;
  bool operator==(const BlockHash&) const = default;
};
struct BlockHashKey {
  size_t operator()(const BlockHash& h) const { return size_t(h.low); }
};

class KvBlockPool {
 public:
  // Without `host_storage` the pool only keeps the books (references, hashes, LRU) and the K/V
  // live elsewhere under the same block ids (a GPU's memory); k() and v() must not be used then.
  KvBlockPool(int64_t n_blocks, int64_t block_size, int64_t n_layer, int64_t row,
              bool host_storage = true);
  // How many blocks `bytes` of KV memory hold.
  static int64_t blocks_for_bytes(uint64_t bytes, int64_t block_size, int64_t n_layer, int64_t row);

  int64_t n_blocks() const { return int64_t(refs_.size()); }
  int64_t block_size() const { return block_size_; }
  int64_t row() const { return row_; }
  // Blocks allocate() can hand out now: free ones and cached ones nobody uses.
  int64_t n_available() const { return int64_t(free_.size() + cached_lru_.size()); }
  int64_t n_used() const { return n_blocks() - n_available(); }

  // K and V rows of `slot` (< block_size) in `block` at `layer`, [row] f32 each.
  float* k(int32_t block, int64_t layer, int64_t slot) { return &k_[offset(block, layer, slot)]; }
  float* v(int32_t block, int64_t layer, int64_t slot) { return &v_[offset(block, layer, slot)]; }

  // A block with one reference, taken from the free list or else by evicting the least recently
  // used cached block; nullopt when every block is in use.
  std::optional<int32_t> allocate();
  void retain(int32_t block);
  // Drops a reference; at zero a block with a hash stays cached, any other becomes free.
  void release(int32_t block);

  // Prefix caching. Keys a full block by `hash` (the first block with a hash keeps it).
  void set_hash(int32_t block, const BlockHash& hash);
  // The cached block with this hash, retained for the caller; nullopt if none.
  std::optional<int32_t> lookup(const BlockHash& hash);

 private:
  size_t offset(int32_t block, int64_t layer, int64_t slot) const {
    return size_t(((int64_t(block) * n_layer_ + layer) * block_size_ + slot) * row_);
  }

  int64_t block_size_, n_layer_, row_;
  // Left uninitialised: the OS maps pages only as blocks are first written, so a large pool costs
  // memory as it fills, not at start.
  std::unique_ptr<float[]> k_, v_;
  std::vector<int32_t> refs_;
  std::vector<std::optional<BlockHash>> hash_;
  std::vector<int32_t> free_;
  std::list<int32_t> cached_lru_;  // unreferenced blocks with a hash; front: least recent
  std::vector<std::list<int32_t>::iterator> lru_pos_;
  std::unordered_map<BlockHash, int32_t, BlockHashKey> by_hash_;
};

// The hash of a full block of `tokens` that follows a block whose hash is `parent` ({} for the
// first), salted per tenant, so equal hashes mean equal token prefixes for the same tenant.
BlockHash chain_block_hash(const BlockHash& parent, uint64_t salt, const int32_t* tokens,
                           int64_t n);

}  // namespace ep
