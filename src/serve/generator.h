// One request's generation: prompt pass (optionally after a cloud prefix), then sampling until
// end-of-generation, a stop string or the token limit, streaming text as it is produced.
#pragma once

#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/kv_segment.h"
#include "runtime/sampler.h"
#include "runtime/transformer.h"
#include "tokenizer/tokenizer.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ep {

struct GenerationRequest {
  std::shared_ptr<const KvSegment> prefix;  // the cloud prompt's KV, or null
  std::vector<int32_t> tokens;              // this device's tokens (after the prefix)
  SamplerParams sampling;
  int max_tokens = 128;
  std::vector<std::string> stop;
};

struct GenerationResult {
  std::string text;
  std::vector<int32_t> ids;
  std::string finish_reason;  // "stop" or "length"
  double ttft_s = 0;          // request start to first token sampled
  double prompt_s = 0;        // the prompt pass
  double generation_s = 0;    // after the first token
  std::vector<LayerTiming> prompt_layers;  // per layer during the prompt pass
};

// on_text receives each piece of text as soon as it is complete UTF-8 and not possibly part of
// a stop string; returning false stops generation (client gone).
GenerationResult generate(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
                          const GenerationRequest& request,
                          const std::function<bool(const std::string&)>& on_text);

}  // namespace ep
