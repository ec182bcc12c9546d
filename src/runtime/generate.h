// One request's generation: prompt pass (optionally after a cloud prefix), then sampling until
// end-of-generation, a stop string or the token limit, streaming text as it is produced. Shared
// by the edge service and `edgeprompt run`.
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
  int max_tokens = 128;  // 0: only the prompt pass
  std::vector<std::string> stop;
  int64_t n_ctx = 0;  // context incl. the prefix; 0: the model's
  kernels::Precision precision = kernels::Precision::Exact;
  // Prefix caching shares KV blocks only between requests with the same salt (one per tenant), so
  // a tenant cannot learn from timing whether another tenant sent a prompt.
  uint64_t cache_salt = 0;
  bool ignore_eos = false;  // only the stop strings and max_tokens end generation
};

struct GenerationResult {
  std::string text;
  std::vector<int32_t> ids;
  std::string finish_reason;               // "stop" or "length"
  double ttft_s = 0;                       // generate() called to first token sampled
  double prompt_s = 0;                     // the prompt pass
  double generation_s = 0;                 // from the first token sampled to the end
  std::vector<LayerTiming> prompt_layers;  // per layer during the prompt pass
};

// on_text receives each piece of text as soon as it is complete UTF-8 and not possibly part of
// a stop string; returning false stops generation (client gone). Without a tokenizer the pieces
// are the token ids, comma-separated, and only the token limit ends generation. The prompt runs
// in chunks of 512 tokens, reported to on_prompt_progress(done, total). Throws ep::Error for an
// empty prompt, ids out of range, or more tokens than the context holds.
GenerationResult generate(
    const Model& model, const Tokenizer* tokenizer, ThreadPool& pool,
    const GenerationRequest& request, const std::function<bool(const std::string&)>& on_text,
    const std::function<void(size_t done, size_t total)>& on_prompt_progress = {});

}  // namespace ep
