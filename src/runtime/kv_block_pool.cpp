#include "runtime/kv_block_pool.h"

#include "core/error.h"

#include <xxhash.h>

namespace ep {

KvBlockPool::KvBlockPool(int64_t n_blocks, int64_t block_size, int64_t n_layer, int64_t row,
                         bool host_storage)
    : block_size_(block_size), n_layer_(n_layer), row_(row) {
  if (n_blocks < 1 || block_size < 1 || n_layer < 1 || row < 1) {
    fail("KV pool of {} blocks of {} tokens: both must be at least 1", n_blocks, block_size);
  }
  const size_t floats = size_t(n_blocks * n_layer * block_size * row);
  if (host_storage) {
    k_.reset(new float[floats]);
    v_.reset(new float[floats]);
  }
  refs_.assign(size_t(n_blocks), 0);
  hash_.resize(size_t(n_blocks));
  lru_pos_.resize(size_t(n_blocks), cached_lru_.end());
  free_.reserve(size_t(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(int32_t(b));  // 0 handed out first
}

int64_t KvBlockPool::blocks_for_bytes(uint64_t bytes, int64_t block_size, int64_t n_layer,
                                      int64_t row) {
  const uint64_t per_block = uint64_t(2 * n_layer * block_size * row) * sizeof(float);
  return int64_t(bytes / per_block);
}

std::optional<int32_t> KvBlockPool::allocate() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!cached_lru_.empty()) {
    b = cached_lru_.front();  // evict: its hash no longer names it
    cached_lru_.pop_front();
    lru_pos_[size_t(b)] = cached_lru_.end();
    by_hash_.erase(*hash_[size_t(b)]);
    hash_[size_t(b)].reset();
  } else {
    return std::nullopt;
  }
  refs_[size_t(b)] = 1;
  return b;
}

void KvBlockPool::retain(int32_t block) {
  if (refs_[size_t(block)]++ == 0 && lru_pos_[size_t(block)] != cached_lru_.end()) {
    cached_lru_.erase(lru_pos_[size_t(block)]);  // cached and unused until now
    lru_pos_[size_t(block)] = cached_lru_.end();
  }
}

void KvBlockPool::release(int32_t block) {
  if (refs_[size_t(block)] <= 0) fail("KV block {} released more often than taken", block);
  if (--refs_[size_t(block)] > 0) return;
  if (hash_[size_t(block)]) {
    lru_pos_[size_t(block)] = cached_lru_.insert(cached_lru_.end(), block);
  } else {
    free_.push_back(block);
  }
}

void KvBlockPool::set_hash(int32_t block, const BlockHash& hash) {
  if (hash_[size_t(block)] || by_hash_.count(hash)) return;
  hash_[size_t(block)] = hash;
  by_hash_[hash] = block;
}

std::optional<int32_t> KvBlockPool::lookup(const BlockHash& hash) {
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  retain(it->second);
  return it->second;
}

BlockHash chain_block_hash(const BlockHash& parent, uint64_t salt, const int32_t* tokens,
                           int64_t n) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  const uint64_t head[3] = {parent.low, parent.high, salt};
  XXH3_128bits_update(state, head, sizeof head);
  XXH3_128bits_update(state, tokens, size_t(n) * sizeof(int32_t));
  const XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  return {h.low64, h.high64};
}

}  // namespace ep
