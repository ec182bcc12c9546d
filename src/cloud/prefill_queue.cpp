#include "cloud/prefill_queue.h"

#include "core/error.h"

#include <fmt/format.h>

#include <chrono>

namespace ep {

PrefillQueue::PrefillQueue(PrefillFn prefill,
                           std::function<void(const CloudPrompt&, double)> on_done,
                           std::function<void()> on_failure)
    : prefill_(std::move(prefill)),
      on_done_(std::move(on_done)),
      on_failure_(std::move(on_failure)),
      worker_([this] { loop(); }) {}

PrefillQueue::~PrefillQueue() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void PrefillQueue::push(CloudPrompt prompt) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(prompt));
  }
  cv_.notify_one();
}

void PrefillQueue::loop() {
  for (;;) {
    CloudPrompt prompt;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      prompt = std::move(queue_.front());
      queue_.pop_front();
    }
    run(prompt);
  }
}

void PrefillQueue::run(CloudPrompt& prompt) {
  const auto start = std::chrono::steady_clock::now();
  try {
    const KvStreamHeader& h = prompt.kv->header();
    prefill_(prompt.tokens, [&](int64_t layer, const float* k, const float* v, int64_t) {
      prompt.kv->add_layer(uint32_t(layer), encode_kv_layer(h, uint32_t(layer), k, v));
    });
    if (!prompt.kv->complete()) fail("the prefill produced fewer layers than the model has");
    on_done_(prompt,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  } catch (const std::exception& e) {
    prompt.kv->set_error(fmt::format("prefill of '{}' failed: {}", prompt.id, e.what()));
    on_failure_();
  }
}

}  // namespace ep
