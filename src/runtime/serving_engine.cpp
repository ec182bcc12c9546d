#include "runtime/serving_engine.h"

#include "core/error.h"
#include "core/token_list.h"
#include "runtime/layer_stream.h"
#include "runtime/sampler.h"
#include "runtime/token_output.h"
#include "tokenizer/sampleable_vocab.h"

#include <algorithm>
#include <chrono>
#include <optional>

namespace ep {

using Clock = std::chrono::steady_clock;

struct ServingEngine::Request {
  Request(KvBlockPool& pool, const GenerationRequest& g, const Tokenizer* tokenizer)
      : seq(pool), sampler(g.sampling), out(tokenizer, g.stop, g.max_tokens, g.ignore_eos) {}

  ScheduledSequence seq;
  Sampler sampler;
  TokenOutput out;
  Clock::time_point t_submit = Clock::now(), t_first;
  GenerationResult result;

  // Hand-off to the caller's thread.
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::string> pieces;
  bool done = false;
  std::string error;
  bool stream_error = false;  // the shared prefix failed to arrive
  std::atomic<bool> cancelled{false};
};

namespace {

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

namespace {

int64_t pool_blocks(const EngineOptions& o, const HParams& hp) {
  return o.kv_blocks > 0 ? o.kv_blocks
                         : KvBlockPool::blocks_for_bytes(o.kv_cache_bytes, o.kv_block, hp.n_layer,
                                                         hp.n_head_kv * hp.head_dim);
}

}  // namespace

ServingEngine::ServingEngine(const Model& model, const Tokenizer* tokenizer, ThreadPool& pool,
                             EngineOptions options, std::unique_ptr<StepForward> forward)
    : model_(model),
      tokenizer_(tokenizer),
      opt_(options),
      forward_(forward ? std::move(forward) : cpu_step_forward(model, pool, opt_.precision)),
      pool_(pool_blocks(opt_, model.hp), opt_.kv_block, model.hp.n_layer,
            model.hp.n_head_kv * model.hp.head_dim, forward_->host_kv()),
      scheduler_(pool_, {opt_.max_seqs, opt_.max_batched_tokens, opt_.cache_mode}),
      n_ctx_(opt_.n_ctx > 0 ? opt_.n_ctx : model.hp.n_ctx_train),
      sampleable_(sampleable_vocab(tokenizer, model.hp.n_vocab)) {
  stats_.kv_blocks_total = pool_.n_blocks();
  forward_->set_sampleable(sampleable_.n, sampleable_.masked);
  thread_ = std::thread([this] { loop(); });
}

ServingEngine::~ServingEngine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

GenerationResult ServingEngine::generate(const GenerationRequest& g,
                                         const std::function<bool(const std::string&)>& on_text) {
  if (g.tokens.empty()) fail("the prompt is empty");
  if (g.max_tokens < 0) fail("max_tokens must not be negative");
  check_token_ids(g.tokens, model_.hp.n_vocab);
  if (g.prefix) check_prefix_shape(model_, *g.prefix);
  const int64_t n_prefix = g.prefix ? g.prefix->n_tokens() : 0;
  const int64_t n_own = int64_t(g.tokens.size()) + g.max_tokens;
  const int64_t n_ctx = g.n_ctx > 0 ? std::min(g.n_ctx, n_ctx_) : n_ctx_;
  if (n_prefix + n_own > n_ctx) {
    fail("{} cloud + {} prompt + {} new tokens exceed the context of {}", n_prefix, g.tokens.size(),
         g.max_tokens, n_ctx);
  }
  if (scheduler_.blocks_for(n_own) > pool_.n_blocks()) {
    fail("{} prompt + {} new tokens need {} KV blocks of {} tokens; the KV pool holds {}",
         g.tokens.size(), g.max_tokens, scheduler_.blocks_for(n_own), pool_.block_size(),
         pool_.n_blocks());
  }
  auto r = std::make_shared<Request>(pool_, g, tokenizer_);
  r->seq.tokens = g.tokens;
  r->seq.n_prompt = int64_t(g.tokens.size());
  r->seq.max_tokens = n_own;
  r->seq.prefix = g.prefix;
  r->seq.salt = g.cache_salt;
  r->result.prompt_layers.resize(size_t(model_.hp.n_layer));
  for (const int32_t t : g.tokens) r->sampler.accept(t);
  {
    std::lock_guard lock(mutex_);
    if (stopping_) fail("the engine stopped");
    if (incoming_.size() + stats_.waiting >= opt_.max_waiting) {
      throw EngineBusy(
          fmt::format("the server is busy: {} requests are waiting", opt_.max_waiting));
    }
    r->seq.id = next_id_++;
    incoming_.push_back(r);
  }
  wake_.notify_all();

  // Deliver the text as the engine produces it; the engine never waits on this thread.
  std::unique_lock lock(r->mutex);
  for (;;) {
    r->cv.wait(lock, [&] { return r->done || !r->pieces.empty(); });
    while (!r->pieces.empty()) {
      const std::string piece = std::move(r->pieces.front());
      r->pieces.pop_front();
      if (r->cancelled) continue;
      lock.unlock();
      const bool more = on_text(piece);
      lock.lock();
      if (!more) {
        r->cancelled = true;
        wake_.notify_all();
      }
    }
    if (r->done) break;
  }
  if (!r->error.empty()) {
    if (r->stream_error) throw LayerStreamError(r->error);
    fail("{}", r->error);
  }
  return r->result;
}

void ServingEngine::publish_stats() {
  std::lock_guard lock(mutex_);
  stats_.running = scheduler_.n_running();
  stats_.waiting = scheduler_.n_waiting();
  stats_.kv_blocks_used = pool_.n_used();
  stats_.preemptions = scheduler_.preemptions();
  stats_.prefix_hit_tokens = scheduler_.prefix_hit_tokens();
}

void ServingEngine::finish(Request& r, const std::string& error) {
  scheduler_.remove(&r.seq);
  publish_stats();  // before the caller hears of it: its blocks are free by then
  const auto now = Clock::now();
  std::lock_guard lock(r.mutex);
  if (error.empty()) {
    const std::string tail = r.cancelled ? std::string() : r.out.flush();
    if (!tail.empty()) r.pieces.push_back(tail);
    r.result.text = r.out.text();
    r.result.ids = r.out.ids();
    r.result.finish_reason = r.out.finish_reason();
    if (r.result.ttft_s == 0) r.result.ttft_s = seconds(now - r.t_submit);
    r.result.generation_s = r.out.ids().empty() ? 0 : seconds(now - r.t_first);
    if (opt_.on_finished) opt_.on_finished(r.result);
  } else {
    r.error = error;
  }
  r.done = true;
  r.cv.notify_all();
}

void ServingEngine::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !incoming_.empty() || !active_.empty(); });
      if (stopping_) break;
      for (auto& r : incoming_) {
        scheduler_.add(&r->seq);
        active_.push_back(std::move(r));
      }
      incoming_.clear();
    }
    // Requests whose client is gone leave before the step.
    for (auto it = active_.begin(); it != active_.end();) {
      if ((*it)->cancelled) {
        finish(**it);
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
    std::vector<StepItem> items = scheduler_.plan();
    publish_stats();
    if (items.empty()) {
      // Nothing can run (e.g. only cancelled requests were left); wait for news.
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(20),
                     [&] { return stopping_ || !incoming_.empty(); });
      continue;
    }
    step(items);
    // Requests that finished in the step leave the active list.
    std::erase_if(active_, [&](const std::shared_ptr<Request>& r) {
      std::lock_guard lock(r->mutex);
      return r->done;
    });
  }
  for (auto& r : active_) finish(*r, "the engine stopped");
  std::lock_guard lock(mutex_);
  for (auto& r : incoming_) finish(*r, "the engine stopped");
}

void ServingEngine::step(std::vector<StepItem>& items) {
  std::vector<BatchChunk> chunks;
  chunks.reserve(items.size());
  for (const StepItem& it : items) {
    ScheduledSequence& s = *it.seq;
    chunks.push_back({std::span(s.tokens).subspan(size_t(it.begin), size_t(it.n)), it.begin, &s.kv,
                      s.prefix.get(), it.begin + it.n == int64_t(s.tokens.size()), s.kv.blocks()});
  }
  const auto request_of = [&](const ScheduledSequence* s) -> Request& {
    for (const auto& r : active_) {
      if (&r->seq == s) return *r;
    }
    fail("a scheduled sequence without its request");
  };
  // When every row asks for plain greedy, a backend may pick the tokens itself (a GPU: no logits
  // cross to the host).
  bool all_greedy = true;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!chunks[i].logits) continue;
    const SamplerParams& p = request_of(items[i].seq).sampler.params();
    all_greedy &= p.temperature <= 0 && p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f;
  }
  std::vector<float> logits;
  std::vector<int32_t> greedy;
  bool picked = false;
  try {
    picked = forward_->forward(chunks, logits, all_greedy ? &greedy : nullptr);
  } catch (const std::exception& e) {
    // A prefix that failed to arrive fails its requests; anything else fails the whole step.
    bool blamed = false;
    for (const StepItem& it : items) {
      if (it.seq->prefix && !it.seq->prefix->complete()) {
        Request& r = request_of(it.seq);
        {
          std::lock_guard lock(r.mutex);
          r.stream_error = true;
        }
        finish(r, e.what());
        blamed = true;
      }
    }
    if (!blamed) {
      for (const StepItem& it : items) finish(request_of(it.seq), e.what());
    }
    return;
  }
  scheduler_.completed(items);
  const auto now = Clock::now();
  int64_t step_tokens = 0;
  for (const StepItem& it : items) step_tokens += it.n;
  {
    std::lock_guard lock(mutex_);
    ++stats_.steps;
    stats_.batch_tokens += uint64_t(step_tokens);
  }
  if (opt_.on_step) opt_.on_step(items.size(), step_tokens);
  std::vector<float> row;
  int64_t at = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const StepItem& it = items[i];
    Request& r = request_of(it.seq);
    if (it.begin < it.seq->n_prompt) {
      for (size_t l = 0; l < r.result.prompt_layers.size(); ++l) {
        r.result.prompt_layers[l].wait_s += forward_->last_timings()[l].wait_s;
        r.result.prompt_layers[l].compute_s += forward_->last_timings()[l].compute_s;
      }
    }
    if (!chunks[i].logits) continue;
    const int64_t logit_row = at++;
    if (r.out.ids().empty() && r.result.prompt_s == 0)
      r.result.prompt_s = seconds(now - r.t_submit);
    if (r.out.done()) {  // max_tokens 0: the prompt pass only
      finish(r);
      continue;
    }
    int32_t next;
    if (picked) {
      next = greedy[size_t(logit_row)];
    } else {
      row.assign(logits.begin() + logit_row * model_.hp.n_vocab,
                 logits.begin() + (logit_row + 1) * model_.hp.n_vocab);
      next = r.sampler.sample(sampleable_.apply(row));
    }
    if (r.out.ids().empty() && r.result.ttft_s == 0) {
      r.t_first = Clock::now();
      r.result.ttft_s = seconds(r.t_first - r.t_submit);
    }
    r.sampler.accept(next);
    const std::string shown = r.out.push(next);
    if (!shown.empty()) {
      std::lock_guard lock(r.mutex);
      r.pieces.push_back(shown);
      r.cv.notify_all();
    }
    if (r.out.done()) {
      finish(r);
    } else {
      it.seq->tokens.push_back(next);
    }
  }
}

EngineStats ServingEngine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace ep
