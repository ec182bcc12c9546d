// One cloud prompt's KV stream as the cloud produces it: the encoded header, then each layer's
// frame as soon as the prefill has computed it. Any number of readers follow the same
// computation (they never trigger another); a reader that arrives late replays what is there.
#pragma once

#include "protocol/kv_wire.h"
#include "runtime/layer_stream.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ep {

class PromptKv {
 public:
  explicit PromptKv(KvStreamHeader header);
  // Loads a complete stream (from the disk cache); throws ep::Error if it is corrupt.
  static std::shared_ptr<PromptKv> from_bytes(const std::string& bytes);

  const KvStreamHeader& header() const { return header_; }
  const std::string& header_bytes() const { return header_bytes_; }

  // Producer: each layer's frame once (complete() when all are there), or the error.
  void add_layer(uint32_t layer, std::string frame);
  void set_error(const std::string& message) { layers_.set_error(message); }

  // Reader: the frame of `layer` once ready (layers are produced in order), or nullopt when the
  // wait timed out; throws LayerStreamError when the computation failed.
  std::optional<std::string> wait_layer(uint32_t layer, std::chrono::milliseconds timeout) const;
  bool complete() const { return layers_.complete(); }
  std::string error() const { return layers_.error(); }
  std::string end_bytes() const { return encode_kv_end(header_); }
  // The whole stream; only valid once complete.
  std::string all_bytes() const;
  uint64_t stream_bytes() const;  // size of the complete stream

 private:
  KvStreamHeader header_;
  std::string header_bytes_;
  std::vector<std::string> frames_;  // frames_[l] is written once, before layer l is marked ready
  LayerStream layers_;
};

}  // namespace ep
