#include "backend/cuda/serving_forward.h"

#include "core/error.h"

#include <algorithm>

namespace ep::cuda {
namespace {

class ServingForward final : public StepForward {
 public:
  ServingForward(Engine& engine, int64_t n_blocks, int64_t block_tokens) : engine_(engine) {
    engine_.configure_pool(n_blocks, block_tokens);
  }
  bool host_kv() const override { return false; }
  bool forward(std::span<const BatchChunk> chunks, std::vector<float>& logits,
               std::vector<int32_t>* greedy) override {
    engine_.step(chunks, logits, greedy, timings_);
    return greedy != nullptr;
  }
  void set_sampleable(int64_t n, std::span<const int32_t> masked) override {
    engine_.set_sampleable(n, masked);
  }
  const std::vector<LayerTiming>& last_timings() const override { return timings_; }

 private:
  Engine& engine_;
  std::vector<LayerTiming> timings_;
};

}  // namespace

int64_t pool_blocks_for(const Engine& engine, double fraction, int64_t block_tokens) {
  if (!(fraction > 0 && fraction <= 1))
    fail("--gpu-memory-fraction {}: must be in (0, 1]", fraction);
  // Activations, cuBLAS workspaces and prefix copies take the rest of free memory.
  constexpr uint64_t kReserve = 2ull << 30;
  const uint64_t free = engine.free_device_bytes();
  const uint64_t usable = uint64_t(double(free) * fraction);
  const uint64_t bytes = usable > kReserve ? usable - kReserve : 0;
  const int64_t blocks = int64_t(bytes / uint64_t(engine.kv_block_bytes(block_tokens)));
  if (blocks < 1) {
    fail("the GPU has {:.1f} GiB free: no room for a KV block pool (--gpu-memory-fraction {})",
         double(free) / double(1ull << 30), fraction);
  }
  return blocks;
}

std::unique_ptr<StepForward> serving_forward(Engine& engine, int64_t n_blocks,
                                             int64_t block_tokens) {
  return std::make_unique<ServingForward>(engine, n_blocks, block_tokens);
}

}  // namespace ep::cuda
