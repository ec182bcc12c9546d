// The serving engine's KV on the GPU. The block pool holds every layer's keys and values of the
// blocks the host's KvBlockPool hands out (same ids: the host keeps the books, the device the
// bytes). A cloud prompt's KV (a KvSegment in host memory, possibly still arriving) is copied to
// the device once, layer by layer as its layers become ready, and attended by every sequence
// that shares it.
#pragma once

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/kernels.h"
#include "runtime/kv_segment.h"

#include <cstdint>
#include <map>
#include <memory>

namespace ep::cuda {

// K and V of one layer: [rows][kv_dim] bf16 each, row = page * page_tokens + offset; consecutive
// layers `layer_rows` rows apart.
struct KvArea {
  bf16_t* k = nullptr;
  bf16_t* v = nullptr;
  int64_t layer_rows = 0, kv_dim = 0;
  int page_shift = 6;

  bf16_t* k_layer(int64_t l) const { return k + size_t(l * layer_rows * kv_dim); }
  bf16_t* v_layer(int64_t l) const { return v + size_t(l * layer_rows * kv_dim); }
  PagedLayer layer(int64_t l) const { return {k_layer(l), v_layer(l), page_shift}; }
};

struct BlockPoolMemory {
  int64_t n_blocks = 0, block_tokens = 0;
  DeviceBuffer<bf16_t> k, v;

  KvArea area(int64_t kv_dim) const {
    return {k.get(), v.get(), n_blocks * block_tokens, kv_dim, page_shift_of(block_tokens)};
  }
};

// A shared prefix on the device, in pages of kPageTokens with the identity page table.
struct DevicePrefix {
  std::weak_ptr<const KvSegment> owner;  // expired: the segment is gone; this copy is stale
  int64_t n_tokens = 0;
  int64_t layers_ready = 0;  // layers 0 .. layers_ready - 1 are on the device
  DeviceBuffer<bf16_t> k, v;
  DeviceBuffer<int32_t> table;

  int64_t rows() const { return (n_tokens + kPageTokens - 1) / kPageTokens * kPageTokens; }
  KvArea area(int64_t kv_dim) const { return {k.get(), v.get(), rows(), kv_dim, 6}; }
};

// Per-step buffers beside the activations.
struct StepBuffers {
  DeviceBuffer<float> lse_own, lse_prefix;  // [rows, n_head]
  DeviceBuffer<bf16_t> attn_prefix;         // [rows, q_dim]: the prefix part, merged into attn
  DeviceBuffer<float> gathered;             // [logit rows, d]: the rows the head runs on
  DeviceBuffer<float> staging;              // one prefix layer's K or V in f32 on its way in
  DeviceBuffer<int32_t> table, rows;        // block tables [chunks, stride]; logit rows
  PinnedBuffer<int32_t> table_host, rows_host;
  std::map<const KvSegment*, DevicePrefix> prefixes;
  // What a greedy step may pick: ids [0, n_sampleable) less `masked` (device copy).
  int64_t n_sampleable = 0;
  DeviceBuffer<int32_t> masked;
  int64_t n_masked = 0;
};

}  // namespace ep::cuda
