// The KV wire format: how a cloud prompt's keys and values cross the network
// (docs/kv-wire-format.md).
//
//   stream = header, then one frame per layer (in any order), then an end marker.
// Everything is little-endian; every part carries an XXH3-64 checksum, so a corrupt or truncated
// stream is detected before any of it is used.
#pragma once

#include "protocol/kv_codec.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

inline constexpr uint16_t kKvWireVersion = 1;

struct KvStreamHeader {
  std::string fingerprint;  // the model's, "xxh3-128:..."
  std::string prompt_id;
  uint64_t prompt_version = 0;
  std::string chat_template;    // the template whose system part these tokens are
  std::vector<int32_t> tokens;  // the cloud prompt's token ids (public)
  KvDtype dtype = KvDtype::F16;
  KvEncoding encoding = KvEncoding::Raw;
  KvCompression compression = KvCompression::None;
  uint32_t n_layers = 0;
  uint32_t n_kv_heads = 0;
  uint32_t head_dim = 0;

  KvCodec codec() const { return {dtype, encoding, compression}; }
  void set_codec(KvCodec c) {
    dtype = c.dtype;
    encoding = c.encoding;
    compression = c.compression;
  }
  KvLayerShape layer_shape() const { return {tokens.size(), n_kv_heads, head_dim}; }
};

// A cloud prompt's id: 1 to 128 of A-Z a-z 0-9 . _ - (it names files on both sides).
inline constexpr const char* kPromptIdPattern = "[A-Za-z0-9._-]{1,128}";
bool valid_prompt_id(std::string_view id);

uint64_t hash_tokens(const std::vector<int32_t>& tokens);

std::string encode_kv_header(const KvStreamHeader& h);
// K and V of one layer, [n_tokens, n_kv_heads * head_dim] f32 each, in h's codec.
std::string encode_kv_layer(const KvStreamHeader& h, uint32_t layer, const float* k,
                            const float* v);
std::string encode_kv_end(const KvStreamHeader& h);

// One layer frame (magic to checksum) of a stream with header `h`, verified and decoded; throws
// ep::Error as the parser does.
struct KvLayer {
  uint32_t index;
  std::vector<float> k, v;  // [n_tokens, n_kv_heads * head_dim]
};
KvLayer parse_kv_layer(const KvStreamHeader& h, std::string_view frame);
// The same layer in `to`'s codec (the frame itself when the codecs are equal): what a cloud
// sends an edge that asked for another codec than the one it keeps.
std::string transcode_kv_layer(const KvStreamHeader& from, const KvStreamHeader& to,
                               const std::string& frame);

// Incremental parser: feed bytes as they arrive. Throws ep::Error on any malformed, corrupt or
// inconsistent input; nothing is delivered from a part whose checksum fails.
class KvStreamParser {
 public:
  using Layer = KvLayer;

  // Called once the header has been parsed, before any layer is decoded (a reader's check of
  // the shape it expects: a header that does not fit is refused before its layers cost memory).
  void on_header(std::function<void(const KvStreamHeader&)> check) {
    on_header_ = std::move(check);
  }
  // A stream resumed at layer `first` (?from=first): layers below it count as already received.
  void resume_from(uint32_t first) { resume_from_ = first; }
  void feed(std::string_view bytes);
  const std::optional<KvStreamHeader>& header() const { return header_; }
  // Layers completed since the last call.
  std::vector<Layer> take_layers();
  bool finished() const { return finished_; }  // end marker seen: every layer arrived once
  uint64_t bytes_consumed() const { return consumed_; }

 private:
  bool parse_one();

  std::string buffer_;
  size_t pos_ = 0;
  uint64_t consumed_ = 0;
  std::optional<KvStreamHeader> header_;
  std::function<void(const KvStreamHeader&)> on_header_;
  uint32_t resume_from_ = 0;
  std::vector<bool> seen_;
  uint32_t n_seen_ = 0;
  std::vector<Layer> ready_;
  bool finished_ = false;
};

}  // namespace ep
