#include "cloud/relay_segments.h"

#include "http/error.h"
#include "protocol/kv_segment_io.h"
#include "runtime/layer_stream.h"

namespace ep {

std::shared_ptr<const KvSegment> RelaySegments::get(const CloudPrompt& prompt,
                                                    std::chrono::seconds timeout) {
  {
    std::lock_guard lock(mutex_);
    const auto it = by_id_.find(prompt.tenant + "~" + prompt.id);
    if (it != by_id_.end() && it->second.first == prompt.version) return it->second.second;
  }
  // Layers are produced in order: the last one ready means the whole stream is.
  const uint32_t last = prompt.kv->header().n_layers - 1;
  try {
    if (!prompt.kv->wait_layer(last,
                               std::chrono::duration_cast<std::chrono::milliseconds>(timeout))) {
      http::fail(http::ErrorKind::Unavailable, "cloud prompt '{}' is still being computed",
                 prompt.id);
    }
  } catch (const LayerStreamError& e) {
    http::fail(http::ErrorKind::Internal, "cloud prompt '{}': {}", prompt.id, e.what());
  }
  KvStreamParser parser;
  parser.feed(prompt.kv->all_bytes());
  auto segment = make_segment(*parser.header());
  for (const auto& layer : parser.take_layers()) publish(*segment, layer);
  std::lock_guard lock(mutex_);
  by_id_[prompt.tenant + "~" + prompt.id] = {prompt.version, segment};
  return segment;
}

void RelaySegments::forget(const std::string& tenant, const std::string& id) {
  std::lock_guard lock(mutex_);
  by_id_.erase(tenant + "~" + id);
}

}  // namespace ep
