#include "runtime/generate.h"

#include "core/error.h"
#include "core/token_list.h"
#include "runtime/token_output.h"
#include "tokenizer/sampleable_vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>

namespace ep {

GenerationResult generate(const Model& model, const Tokenizer* tokenizer, ThreadPool& pool,
                          const GenerationRequest& req,
                          const std::function<bool(const std::string&)>& on_text,
                          const std::function<void(size_t, size_t)>& on_prompt_progress) {
  using clock = std::chrono::steady_clock;
  const auto seconds = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const auto t0 = clock::now();
  if (req.tokens.empty()) fail("the prompt is empty");
  if (req.max_tokens < 0) fail("max_tokens must not be negative");
  check_token_ids(req.tokens, model.hp.n_vocab);
  const int64_t n_ctx = req.n_ctx > 0 ? req.n_ctx : model.hp.n_ctx_train;
  const int64_t prefix = req.prefix ? req.prefix->n_tokens() : 0;
  if (prefix + int64_t(req.tokens.size()) + req.max_tokens > n_ctx) {
    fail("{} cloud + {} prompt + {} new tokens exceed the context of {}", prefix, req.tokens.size(),
         req.max_tokens, n_ctx);
  }
  Transformer tf(model, int64_t(req.tokens.size()) + req.max_tokens, pool, req.prefix);
  tf.set_precision(req.precision);
  Sampler sampler(req.sampling);
  for (int32_t t : req.tokens) sampler.accept(t);
  TokenOutput out(tokenizer, req.stop, req.max_tokens, req.ignore_eos);
  const SampleableVocab sampleable = sampleable_vocab(tokenizer, model.hp.n_vocab);

  GenerationResult r;
  r.prompt_layers.resize(size_t(model.hp.n_layer));
  std::vector<float> logits;
  constexpr size_t kChunk = 512;  // long prompts in pieces, so progress can be shown
  for (size_t at = 0; at < req.tokens.size(); at += kChunk) {
    const size_t n = std::min(kChunk, req.tokens.size() - at);
    tf.forward(std::span(req.tokens).subspan(at, n), logits, false);
    for (size_t l = 0; l < r.prompt_layers.size(); ++l) {
      r.prompt_layers[l].wait_s += tf.last_timings()[l].wait_s;
      r.prompt_layers[l].compute_s += tf.last_timings()[l].compute_s;
    }
    if (on_prompt_progress) on_prompt_progress(at + n, req.tokens.size());
  }
  r.prompt_s = seconds(clock::now() - t0);
  auto t_first = clock::now();
  bool client_gone = false;
  for (int i = 0; !out.done(); ++i) {
    const int32_t next = sampler.sample(sampleable.apply(logits));
    if (i == 0) {
      t_first = clock::now();
      r.ttft_s = seconds(t_first - t0);
    }
    sampler.accept(next);
    const std::string shown = out.push(next);
    if (!shown.empty() && !on_text(shown)) {
      client_gone = true;
      break;
    }
    if (!out.done()) tf.forward(std::span(&next, 1), logits, false);
  }
  if (!client_gone) {
    const std::string tail = out.flush();
    if (!tail.empty()) on_text(tail);
  }
  r.text = out.text();
  r.ids = out.ids();
  r.finish_reason = out.finish_reason();
  r.generation_s = req.max_tokens > 0 ? seconds(clock::now() - t_first) : 0;
  return r;
}

}  // namespace ep
