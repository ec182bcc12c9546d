// `edgeprompt bench --device cuda`: prefill and batched decode on the GPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ep::cli {

struct CudaBenchOptions {
  std::string model;        // a file, or empty with `shape`
  std::string shape;        // random device weights of a named shape (synth_shape_names)
  int n_prompt = 1024;      // prefill test length (0: skip)
  int n_gen = 64;           // decode steps per sequence (0: skip)
  int decode_prompt = 512;  // tokens prefilled into each sequence before its decode steps
  std::vector<int> batches = {1};
  int reps = 3;
  uint32_t seed = 1;
  bool json = false;
  bool profile = false;         // one more prefill, timed stage by stage
  bool native_weights = false;  // --gpu-weights native (else bf16)
  // The serving engine's steps instead (bench_cuda_serving.cpp): B sequences that share a
  // system prompt of `shared_prefix` tokens, decoded together, with that prompt in every
  // sequence's own blocks (none) and as one shared prefix (relay).
  bool serving = false;
  int shared_prefix = 0;
  int kv_block = 16;
};

int run_cuda_bench(const CudaBenchOptions& o);
// The median of timed repetitions (the upper middle one of an even count); 0 for none.
double median(std::vector<double> v);
int run_cuda_serving_bench(const CudaBenchOptions& o);

}  // namespace ep::cli
