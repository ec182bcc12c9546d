// How one layer's keys and values are written into a KV frame's payload
// (docs/kv-wire-format.md, "Codecs"): f32 or f16 as they are, int8 with a scale per token and
// head, or int4 the KIVI way (keys per channel over groups of tokens, values per token over
// groups of channels, the most recent tokens kept in f16); any of them optionally compressed by
// zstd. The decoder checks every size and every scale, so corrupt bytes are refused with one
// clear error instead of being used.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ep {

// F16 halves the bytes; F32 carries exactly what the cloud computed (split == monolithic bit
// for bit up to the merge's rounding). The quantised encodings keep their scales and their
// full-precision window in f16.
enum class KvDtype : uint8_t { F32 = 0, F16 = 1 };
enum class KvEncoding : uint8_t { Raw = 0, Int8 = 1, Int4 = 2 };
enum class KvCompression : uint8_t { None = 0, Zstd = 1 };

std::string_view kv_dtype_name(KvDtype t);
std::optional<KvDtype> kv_dtype_from_name(std::string_view name);

struct KvCodec {
  KvDtype dtype = KvDtype::F16;
  KvEncoding encoding = KvEncoding::Raw;
  KvCompression compression = KvCompression::None;
  bool operator==(const KvCodec&) const = default;
};

// "f32", "f16", "int8", "int4", each optionally followed by "+zstd".
std::string kv_codec_name(KvCodec c);
std::optional<KvCodec> kv_codec_from_name(std::string_view name);
inline constexpr const char* kKvCodecNames = "f32, f16, int8, int4 (each optionally +zstd)";

// int4: keys share a scale per channel over this many tokens, values per token over this many
// channels of a head; the last kInt4Window tokens of the prompt stay in f16 (the ones the
// edge's tokens attend most, next to them).
inline constexpr uint64_t kInt4KeyGroup = 128;
inline constexpr uint64_t kInt4ValueGroup = 64;
inline constexpr uint64_t kInt4Window = 16;

struct KvLayerShape {
  uint64_t n_tokens = 0, n_kv_heads = 0, head_dim = 0;
  uint64_t elements() const { return n_tokens * n_kv_heads * head_dim; }  // of K (= of V)
};

// Bytes of a layer's payload before compression.
uint64_t kv_payload_bytes(const KvLayerShape& s, KvCodec c);
// Largest compressed payload a reader accepts for that layer.
uint64_t kv_payload_max_bytes(const KvLayerShape& s, KvCodec c);

// K and V of one layer, [n_tokens, n_kv_heads * head_dim] f32 each. Throws ep::Error for a
// value the codec cannot carry (not finite, beyond f16's range in the quantised encodings).
std::string encode_kv_payload(const KvLayerShape& s, KvCodec c, const float* k, const float* v);
// The inverse into `k` and `v` (elements() floats each). Throws ep::Error ("KV codec: ...") for
// a payload of the wrong size, a zstd frame that is malformed or of the wrong size, a scale or
// window value that is not finite, or non-zero padding.
void decode_kv_payload(const KvLayerShape& s, KvCodec c, std::string_view payload, float* k,
                       float* v);

}  // namespace ep
