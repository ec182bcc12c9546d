#include "runtime/layer_stream.h"

namespace ep {

LayerStream::LayerStream(int64_t n_layers) : n_layers_(n_layers), ready_(size_t(n_layers), false) {
  if (n_layers < 0) fail("a layer stream of {} layers", n_layers);
}

void LayerStream::check_layer(int64_t layer) const {
  if (layer < 0 || layer >= n_layers_)
    fail("KV layer {} out of range ({} layers)", layer, n_layers_);
}

void LayerStream::mark_ready(int64_t layer) {
  check_layer(layer);
  {
    std::lock_guard lock(mutex_);
    if (!ready_[size_t(layer)]) {
      ready_[size_t(layer)] = true;
      ++n_ready_;
    }
  }
  ready_cv_.notify_all();
}

void LayerStream::set_error(const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    if (error_.empty()) error_ = message.empty() ? "the KV stream failed" : message;
  }
  ready_cv_.notify_all();
}

bool LayerStream::wait(int64_t layer, std::chrono::nanoseconds timeout) const {
  check_layer(layer);
  std::unique_lock lock(mutex_);
  const auto done = [&] { return ready_[size_t(layer)] || !error_.empty(); };
  if (timeout == std::chrono::nanoseconds::max()) {
    ready_cv_.wait(lock, done);
  } else if (!ready_cv_.wait_for(lock, timeout, done)) {
    return false;
  }
  if (!ready_[size_t(layer)]) throw LayerStreamError(error_);
  return true;
}

bool LayerStream::ready(int64_t layer) const {
  check_layer(layer);
  std::lock_guard lock(mutex_);
  return ready_[size_t(layer)];
}

bool LayerStream::complete() const {
  std::lock_guard lock(mutex_);
  return n_ready_ == n_layers_;
}

std::string LayerStream::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

}  // namespace ep
