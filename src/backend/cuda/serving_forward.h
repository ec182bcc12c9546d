// The serving engine's steps on a GPU (a StepForward over cuda::Engine): the host's KvBlockPool
// keeps the books and the device the blocks, so the scheduler, the prefix cache and preemption
// are the CPU's, unchanged.
#pragma once

#include "backend/cuda/cuda_engine.h"
#include "runtime/step_forward.h"

#include <cstdint>
#include <memory>

namespace ep::cuda {

// Blocks of `block_tokens` tokens that `fraction` of the device's free memory holds (the weights
// are already uploaded), leaving room for the step's activations.
int64_t pool_blocks_for(const Engine& engine, double fraction, int64_t block_tokens);

// Configures the engine's block pool with `n_blocks` blocks and returns the step backend; the
// engine must outlive it. Its steps are bf16 (the engine's precision), whatever the options say.
std::unique_ptr<StepForward> serving_forward(Engine& engine, int64_t n_blocks,
                                             int64_t block_tokens);

}  // namespace ep::cuda
