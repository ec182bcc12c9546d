#include "protocol/prompt_kv.h"

#include "core/error.h"

namespace ep {

PromptKv::PromptKv(KvStreamHeader header)
    : header_(std::move(header)),
      header_bytes_(encode_kv_header(header_)),
      frames_(header_.n_layers),
      layers_(header_.n_layers) {}

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
  return kv;
}

void PromptKv::add_layer(uint32_t layer, std::string frame) {
  if (layer >= frames_.size()) fail("KV layer {} out of range ({} layers)", layer, frames_.size());
  if (layers_.ready(layer)) fail("KV layer {} produced twice", layer);
  frames_[layer] = std::move(frame);
  layers_.mark_ready(layer);
}

std::optional<std::string> PromptKv::wait_layer(uint32_t layer,
                                                std::chrono::milliseconds timeout) const {
  if (!layers_.wait(layer, timeout)) return std::nullopt;
  return frames_[layer];
}

std::string PromptKv::all_bytes() const {
  if (!complete()) fail("KV stream of '{}' is not complete", header_.prompt_id);
  std::string s = header_bytes_;
  for (const auto& f : frames_) s += f;
  return s + encode_kv_end(header_);
}

uint64_t PromptKv::stream_bytes() const {
  if (!complete()) return 0;
  uint64_t n = header_bytes_.size() + encode_kv_end(header_).size();
  for (const auto& f : frames_) n += f.size();
  return n;
}

}  // namespace ep
