// The interface between the engine library and the CUDA backend plugin (libedgeprompt_cuda.so).
//
// The backend links cuBLAS, whose code and data (~145 MB resident) would otherwise load with every
// process, the CPU-only edge included. It is therefore a plugin that cuda_loader.cpp opens the
// first time a CUDA entry point is used. Both sides are compiled from this header in one build;
// the plugin reports the sizes of the types it shares so a plugin from another build is refused
// instead of misread.
#pragma once

#include "backend/cuda/cuda_engine.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ep::cuda {

// One GPU transformer (the methods of Engine, which forwards to it).
class EngineBackend {
 public:
  virtual ~EngineBackend() = default;
  virtual const HParams& hparams() const = 0;
  virtual int64_t weight_bytes() const = 0;
  virtual std::string device_name() const = 0;
  virtual int open_sequence() = 0;
  virtual void close_sequence(int seq) = 0;
  virtual int64_t seq_len(int seq) const = 0;
  virtual void prefill(int seq, std::span<const int32_t> tokens, std::vector<float>* logits,
                       bool all_logits, const LayerSink& observer) = 0;
  virtual void decode(std::span<const int> seqs, std::span<const int32_t> tokens,
                      std::vector<float>* logits, std::vector<int32_t>* greedy) = 0;
  virtual uint64_t free_device_bytes() const = 0;
  virtual void configure_pool(int64_t n_blocks, int64_t block_tokens) = 0;
  virtual void step(std::span<const BatchChunk> chunks, std::vector<float>& logits,
                    std::vector<int32_t>* greedy, std::vector<LayerTiming>& timings) = 0;
  virtual void set_sampleable(int64_t n, std::span<const int32_t> masked) = 0;
  virtual double last_device_seconds() const = 0;
  virtual void set_profiling(bool on) = 0;
  virtual std::vector<std::pair<std::string, double>> last_profile() const = 0;
};

inline constexpr int kPluginInterfaceVersion = 3;
inline constexpr const char* kPluginFile = "libedgeprompt_cuda.so";
inline constexpr const char* kPluginEntry = "ep_cuda_plugin";  // const PluginApi* (*)()

struct PluginApi {
  int interface_version = kPluginInterfaceVersion;
  size_t model_size = sizeof(Model);
  size_t hparams_size = sizeof(HParams);
  size_t options_size = sizeof(EngineOptions);
  size_t chunk_size = sizeof(BatchChunk);
  // False, with the reason in `why`, when no device can be used.
  bool (*device_available)(std::string* why) = nullptr;
  // New engines (the caller owns them); throw ep::Error on failure.
  EngineBackend* (*create_from_model)(const Model& model, const EngineOptions& options) = nullptr;
  EngineBackend* (*create_random)(const HParams& hp, uint64_t seed,
                                  const EngineOptions& options) = nullptr;
};

}  // namespace ep::cuda
