// The cloud's prefills: one at a time, in arrival order, on a thread of their own. Each computes
// a registered prompt's KV and publishes its layers into the prompt's stream as they are done,
// so edges already reading it receive layer l while layer l + 1 computes.
#pragma once

#include "cloud/prompt_store.h"
#include "runtime/layer_sink.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <thread>

namespace ep {

// Computes a prompt's KV, calling the sink with each layer in order (the CPU Transformer or the
// CUDA engine).
using PrefillFn = std::function<void(std::span<const int32_t> tokens, const LayerSink& layer)>;

class PrefillQueue {
 public:
  // on_done(prompt, seconds) after each prefill whose layers all arrived (it may throw: the
  // prompt then fails like a failed prefill); on_failure() after each one that failed.
  PrefillQueue(PrefillFn prefill, std::function<void(const CloudPrompt&, double)> on_done,
               std::function<void()> on_failure);
  ~PrefillQueue();  // finishes the prefill in progress, drops the rest
  PrefillQueue(const PrefillQueue&) = delete;
  PrefillQueue& operator=(const PrefillQueue&) = delete;

  void push(CloudPrompt prompt);

 private:
  void loop();
  void run(CloudPrompt& prompt);

  PrefillFn prefill_;
  std::function<void(const CloudPrompt&, double)> on_done_;
  std::function<void()> on_failure_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<CloudPrompt> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace ep
