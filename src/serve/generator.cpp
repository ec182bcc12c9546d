#include "serve/generator.h"

#include "core/error.h"
#include "runtime/stop_strings.h"
#include "tokenizer/sampleable_vocab.h"

#include <chrono>

namespace ep {

GenerationResult generate(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
                          const GenerationRequest& req,
                          const std::function<bool(const std::string&)>& on_text) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  if (req.tokens.empty()) fail("the prompt is empty");
  if (req.max_tokens < 1) fail("max_tokens must be at least 1");
  const int64_t prefix = req.prefix ? req.prefix->n_tokens() : 0;
  if (prefix + int64_t(req.tokens.size()) + req.max_tokens > model.hp.n_ctx_train) {
    fail("{} cloud + {} prompt + {} new tokens exceed the model's context of {}", prefix,
         req.tokens.size(), req.max_tokens, model.hp.n_ctx_train);
  }
  Transformer tf(model, int64_t(req.tokens.size()) + req.max_tokens, pool, req.prefix);
  Sampler sampler(req.sampling);
  for (int32_t t : req.tokens) sampler.accept(t);
  StopStrings stops(req.stop);
  StreamingDetokenizer detok(tokenizer, /*skip_special=*/true);
  const SampleableVocab sampleable = sampleable_vocab(&tokenizer, model.hp.n_vocab);

  GenerationResult r;
  std::vector<float> logits;
  tf.forward(req.tokens, logits, false);
  r.prompt_layers = tf.last_timings();
  const auto t_prompt = clock::now();
  r.prompt_s = std::chrono::duration<double>(t_prompt - t0).count();
  r.finish_reason = "length";
  bool client_gone = false;
  for (int i = 0; i < req.max_tokens; ++i) {
    const int32_t next = sampler.sample(sampleable.apply(logits));
    if (i == 0) r.ttft_s = std::chrono::duration<double>(clock::now() - t0).count();
    if (tokenizer.is_eog(next)) {
      r.finish_reason = "stop";
      break;
    }
    r.ids.push_back(next);
    sampler.accept(next);
    const std::string shown = stops.push(detok.push(next));
    r.text += shown;
    if (!shown.empty() && !on_text(shown)) {
      client_gone = true;
      break;
    }
    if (stops.stopped()) {
      r.finish_reason = "stop";
      break;
    }
    if (i + 1 < req.max_tokens) tf.forward(std::span(&next, 1), logits, false);
  }
  if (!stops.stopped() && !client_gone) {
    const std::string rest = stops.push(detok.flush());
    const std::string tail = stops.stopped() ? rest : rest + stops.flush();
    r.text += tail;
    if (!tail.empty()) on_text(tail);
  }
  r.generation_s = std::chrono::duration<double>(clock::now() - t_prompt).count();
  return r;
}

}  // namespace ep
