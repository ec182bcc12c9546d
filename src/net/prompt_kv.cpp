#include "net/prompt_kv.h"

#include "core/error.h"

namespace ep {

PromptKv::PromptKv(KvStreamHeader header)
    : header_(std::move(header)),
      header_bytes_(encode_kv_header(header_)),
      frames_(header_.n_layers),
      ready_(header_.n_layers, false) {}

std::shared_ptr<PromptKv> PromptKv::from_bytes(const std::string& bytes) {
  KvStreamParser parser;
  parser.feed(bytes);
  if (!parser.finished()) fail("KV stream is truncated");
  auto kv = std::make_shared<PromptKv>(*parser.header());
  // Re-encoding what was parsed reproduces the frames exactly (same dtype, same bits).
  for (const auto& layer : parser.take_layers()) {
    kv->add_layer(layer.index,
                  encode_kv_layer(kv->header_, layer.index, layer.k.data(), layer.v.data()));
  }
  kv->finish();
  return kv;
}

void PromptKv::add_layer(uint32_t layer, std::string frame) {
  {
    std::lock_guard lock(mutex_);
    frames_.at(layer) = std::move(frame);
    ready_.at(layer) = true;
  }
  cv_.notify_all();
}

void PromptKv::finish() {
  {
    std::lock_guard lock(mutex_);
    complete_ = true;
  }
  cv_.notify_all();
}

void PromptKv::set_error(const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    if (error_.empty()) error_ = message;
  }
  cv_.notify_all();
}

std::optional<std::string> PromptKv::wait_layer(uint32_t layer,
                                                std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return ready_.at(layer) || !error_.empty(); });
  if (!ready_.at(layer)) return std::nullopt;
  return frames_[layer];
}

bool PromptKv::complete() const {
  std::lock_guard lock(mutex_);
  return complete_;
}

std::string PromptKv::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

std::string PromptKv::all_bytes() const {
  std::lock_guard lock(mutex_);
  std::string s = header_bytes_;
  for (const auto& f : frames_) s += f;
  return s + encode_kv_end(header_);
}

uint64_t PromptKv::stream_bytes() const {
  std::lock_guard lock(mutex_);
  uint64_t n = header_bytes_.size() + encode_kv_end(header_).size();
  for (const auto& f : frames_) n += f.size();
  return n;
}

}  // namespace ep
