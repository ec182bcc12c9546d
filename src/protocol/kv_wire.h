// The KV wire format: how a cloud prompt's keys and values cross the network
// (docs/kv-wire-format.md).
//
//   stream = header, then one frame per layer (in any order), then an end marker.
// Everything is little-endian; every part carries an XXH3-64 checksum, so a corrupt or truncated
// stream is detected before any of it is used.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

inline constexpr uint16_t kKvWireVersion = 1;

// F16 halves the bytes; F32 carries exactly what the cloud computed (split == monolithic bit
// for bit up to the merge's rounding).
enum class KvDtype : uint8_t { F32 = 0, F16 = 1 };
std::string_view kv_dtype_name(KvDtype t);
std::optional<KvDtype> kv_dtype_from_name(std::string_view name);
enum class KvEncoding : uint8_t { Raw = 0 };  // room for compressed encodings

struct KvStreamHeader {
  std::string fingerprint;  // the model's, "xxh3-128:..."
  std::string prompt_id;
  uint64_t prompt_version = 0;
  std::string chat_template;    // the template whose system part these tokens are
  std::vector<int32_t> tokens;  // the cloud prompt's token ids (public)
  KvDtype dtype = KvDtype::F16;
  KvEncoding encoding = KvEncoding::Raw;
  uint32_t n_layers = 0;
  uint32_t n_kv_heads = 0;
  uint32_t head_dim = 0;
};

// A cloud prompt's id: 1 to 128 of A-Z a-z 0-9 . _ - (it names files on both sides).
inline constexpr const char* kPromptIdPattern = "[A-Za-z0-9._-]{1,128}";
bool valid_prompt_id(std::string_view id);

uint64_t hash_tokens(const std::vector<int32_t>& tokens);

std::string encode_kv_header(const KvStreamHeader& h);
// K and V of one layer, [n_tokens, n_kv_heads * head_dim] f32 each, stored as h.dtype.
std::string encode_kv_layer(const KvStreamHeader& h, uint32_t layer, const float* k,
                            const float* v);
std::string encode_kv_end(const KvStreamHeader& h);

// Incremental parser: feed bytes as they arrive. Throws ep::Error on any malformed, corrupt or
// inconsistent input; nothing is delivered from a part whose checksum fails.
class KvStreamParser {
 public:
  struct Layer {
    uint32_t index;
    std::vector<float> k, v;  // [n_tokens, n_kv_heads * head_dim]
  };

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
  std::vector<bool> seen_;
  uint32_t n_seen_ = 0;
  std::vector<Layer> ready_;
  bool finished_ = false;
};

}  // namespace ep
