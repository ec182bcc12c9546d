#include "protocol/kv_codec.h"

#include "core/error.h"
#include "core/half.h"

#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace ep {
namespace {

constexpr int kZstdLevel = 3;

uint64_t div_up(uint64_t a, uint64_t b) {
  return (a + b - 1) / b;
}

// int4's split of a prompt's tokens: the first n_q quantised, the last n_w in f16.
struct Int4Split {
  uint64_t n_q, n_w;
};
Int4Split int4_split(const KvLayerShape& s) {
  const uint64_t n_q = s.n_tokens > kInt4Window ? s.n_tokens - kInt4Window : 0;
  return {n_q, s.n_tokens - n_q};
}
uint64_t value_groups_per_head(const KvLayerShape& s) {
  return div_up(s.head_dim, kInt4ValueGroup);
}

// Bytes of one tensor (K or V) in int4: (scale, min) f16 pairs, packed codes, the f16 window.
uint64_t int4_tensor_bytes(const KvLayerShape& s, bool keys) {
  const auto [n_q, n_w] = int4_split(s);
  const uint64_t channels = s.n_kv_heads * s.head_dim;
  const uint64_t groups =
      keys ? div_up(n_q, kInt4KeyGroup) * channels : n_q * s.n_kv_heads * value_groups_per_head(s);
  return groups * 4 + div_up(n_q * channels, 2) + n_w * channels * 2;
}

class Out {
 public:
  explicit Out(std::string& s) : s_(s) {}
  void f16(float x) {
    const uint16_t h = f32_to_f16(x);
    s_.append(reinterpret_cast<const char*>(&h), 2);
  }
  void byte(uint8_t b) { s_.push_back(char(b)); }

 private:
  std::string& s_;
};

class In {
 public:
  explicit In(std::string_view b) : b_(b) {}
  // Reads an f16 that must be finite (a scale, a minimum or a window value).
  float f16() {
    uint16_t h;
    std::memcpy(&h, b_.data() + pos_, 2);
    pos_ += 2;
    const float x = f16_to_f32(h);
    if (!std::isfinite(x)) fail("KV codec: a value that is not finite");
    return x;
  }
  float scale() {
    const float x = f16();
    if (x < 0) fail("KV codec: a negative scale");
    return x;
  }
  uint8_t byte() { return uint8_t(b_[pos_++]); }
  size_t pos() const { return pos_; }

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

void check_f16_range(float x) {
  if (!std::isfinite(x) || std::fabs(x) > 65504.0f)
    fail("KV codec: value {} cannot be carried in f16", x);
}

// ---- int8: a symmetric scale per (token, head) ------------------------------------------------

void encode_int8(const KvLayerShape& s, const float* x, std::string& out) {
  const uint64_t rows = s.n_tokens * s.n_kv_heads, d = s.head_dim;
  Out o(out);
  std::vector<float> scales(rows);
  for (uint64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (uint64_t i = 0; i < d; ++i) {
      check_f16_range(x[r * d + i]);
      amax = std::max(amax, std::fabs(x[r * d + i]));
    }
    scales[r] = f16_to_f32(f32_to_f16(amax / 127.0f));
    o.f16(scales[r]);
  }
  for (uint64_t r = 0; r < rows; ++r) {
    const float inv = scales[r] > 0 ? 1.0f / scales[r] : 0.0f;
    for (uint64_t i = 0; i < d; ++i) {
      const float q = std::clamp(std::nearbyint(x[r * d + i] * inv), -127.0f, 127.0f);
      o.byte(uint8_t(int8_t(q)));
    }
  }
}

size_t decode_int8(const KvLayerShape& s, std::string_view b, float* x) {
  const uint64_t rows = s.n_tokens * s.n_kv_heads, d = s.head_dim;
  In in(b);
  std::vector<float> scales(rows);
  for (auto& sc : scales) sc = in.scale();
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t i = 0; i < d; ++i) x[r * d + i] = float(int8_t(in.byte())) * scales[r];
  }
  return in.pos();
}

// ---- int4: asymmetric 4-bit groups, KIVI's axes, an f16 window --------------------------------

// A group's (scale, min) as stored (rounded to f16), from its range.
std::pair<float, float> int4_params(float lo, float hi) {
  const float mn = f16_to_f32(f32_to_f16(lo));
  // The min rounded up past hi (a group of equal values) leaves no range: scale 0.
  const float sc = f16_to_f32(f32_to_f16(std::max(0.0f, (hi - mn) / 15.0f)));
  return {sc, mn};
}

uint8_t int4_code(float x, float scale, float min) {
  if (scale <= 0) return 0;
  return uint8_t(std::clamp(std::nearbyint((x - min) / scale), 0.0f, 15.0f));
}

class Nibbles {
 public:
  void put(uint8_t q) {
    if (n_ % 2 == 0) {
      bytes_.push_back(char(q));
    } else {
      bytes_.back() = char(uint8_t(bytes_.back()) | uint8_t(q << 4));
    }
    ++n_;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
  uint64_t n_ = 0;
};

// Codes of token t < n_q, channel c, are at index t * channels + c (token-major, like the KV).
void encode_int4(const KvLayerShape& s, const float* x, bool keys, std::string& out) {
  const auto [n_q, n_w] = int4_split(s);
  const uint64_t channels = s.n_kv_heads * s.head_dim, d = s.head_dim;
  for (uint64_t i = 0; i < s.n_tokens * channels; ++i) check_f16_range(x[i]);
  Out o(out);
  // Parameters per group, then every code in token-major order.
  std::vector<std::pair<float, float>> params;  // (scale, min)
  const auto group_of = [&](uint64_t t, uint64_t c) -> const std::pair<float, float>& {
    if (keys) return params[(t / kInt4KeyGroup) * channels + c];
    return params[(t * s.n_kv_heads + c / d) * value_groups_per_head(s) +
                  (c % d) / kInt4ValueGroup];
  };
  if (keys) {
    for (uint64_t t0 = 0; t0 < n_q; t0 += kInt4KeyGroup) {
      const uint64_t t1 = std::min(n_q, t0 + kInt4KeyGroup);
      for (uint64_t c = 0; c < channels; ++c) {
        float lo = x[t0 * channels + c], hi = lo;
        for (uint64_t t = t0; t < t1; ++t) {
          lo = std::min(lo, x[t * channels + c]);
          hi = std::max(hi, x[t * channels + c]);
        }
        params.push_back(int4_params(lo, hi));
      }
    }
  } else {
    for (uint64_t t = 0; t < n_q; ++t) {
      for (uint64_t h = 0; h < s.n_kv_heads; ++h) {
        for (uint64_t i0 = 0; i0 < d; i0 += kInt4ValueGroup) {
          const float* p = x + t * channels + h * d;
          const uint64_t i1 = std::min(d, i0 + kInt4ValueGroup);
          const auto [lo, hi] = std::minmax_element(p + i0, p + i1);
          params.push_back(int4_params(*lo, *hi));
        }
      }
    }
  }
  for (const auto& [sc, mn] : params) {
    o.f16(sc);
    o.f16(mn);
  }
  Nibbles codes;
  for (uint64_t t = 0; t < n_q; ++t) {
    for (uint64_t c = 0; c < channels; ++c) {
      const auto& [sc, mn] = group_of(t, c);
      codes.put(int4_code(x[t * channels + c], sc, mn));
    }
  }
  out += codes.bytes();
  for (uint64_t i = n_q * channels; i < s.n_tokens * channels; ++i) o.f16(x[i]);
  (void)n_w;
}

size_t decode_int4(const KvLayerShape& s, std::string_view b, bool keys, float* x) {
  const auto [n_q, n_w] = int4_split(s);
  const uint64_t channels = s.n_kv_heads * s.head_dim, d = s.head_dim;
  const uint64_t n_groups =
      keys ? div_up(n_q, kInt4KeyGroup) * channels : n_q * s.n_kv_heads * value_groups_per_head(s);
  In in(b);
  std::vector<std::pair<float, float>> params(n_groups);
  for (auto& [sc, mn] : params) {
    sc = in.scale();
    mn = in.f16();
  }
  const size_t codes_at = in.pos();
  const uint64_t n_codes = n_q * channels;
  for (uint64_t t = 0; t < n_q; ++t) {
    for (uint64_t c = 0; c < channels; ++c) {
      const uint64_t i = t * channels + c;
      const uint8_t byte = uint8_t(b[codes_at + i / 2]);
      const uint8_t q = i % 2 == 0 ? (byte & 15) : (byte >> 4);
      const auto& [sc, mn] = keys ? params[(t / kInt4KeyGroup) * channels + c]
                                  : params[(t * s.n_kv_heads + c / d) * value_groups_per_head(s) +
                                           (c % d) / kInt4ValueGroup];
      x[i] = mn + float(q) * sc;
    }
  }
  if (n_codes % 2 == 1 && (uint8_t(b[codes_at + n_codes / 2]) >> 4) != 0) {
    fail("KV codec: int4 padding is not zero");
  }
  In window(b.substr(codes_at + div_up(n_codes, 2)));
  for (uint64_t i = n_codes; i < n_codes + n_w * channels; ++i) x[i] = window.f16();
  return codes_at + div_up(n_codes, 2) + window.pos();
}

// ---- raw ----------------------------------------------------------------------------------------

void encode_raw(const KvLayerShape& s, KvDtype t, const float* x, std::string& out) {
  const uint64_t n = s.elements();
  if (t == KvDtype::F32) {
    out.append(reinterpret_cast<const char*>(x), 4 * n);
    return;
  }
  const size_t at = out.size();
  out.resize(at + 2 * n);
  for (uint64_t i = 0; i < n; ++i) {
    const uint16_t h = f32_to_f16(x[i]);
    std::memcpy(out.data() + at + 2 * i, &h, 2);
  }
}

size_t decode_raw(const KvLayerShape& s, KvDtype t, std::string_view b, float* x) {
  const uint64_t n = s.elements();
  if (t == KvDtype::F32) {
    std::memcpy(x, b.data(), 4 * n);
    return 4 * n;
  }
  for (uint64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, b.data() + 2 * i, 2);
    x[i] = f16_to_f32(h);
  }
  return 2 * n;
}

uint64_t tensor_bytes(const KvLayerShape& s, KvCodec c, bool keys) {
  switch (c.encoding) {
    case KvEncoding::Raw:
      return s.elements() * (c.dtype == KvDtype::F32 ? 4 : 2);
    case KvEncoding::Int8:
      return s.n_tokens * s.n_kv_heads * (2 + s.head_dim);
    case KvEncoding::Int4:
      return int4_tensor_bytes(s, keys);
  }
  fail("KV codec: unknown encoding {}", int(c.encoding));
}

void check_codec(KvCodec c) {
  if (c.encoding != KvEncoding::Raw && c.dtype != KvDtype::F16) {
    fail("KV codec: the quantised encodings keep their scales in f16");
  }
}

}  // namespace

std::string_view kv_dtype_name(KvDtype t) {
  return t == KvDtype::F32 ? "f32" : "f16";
}

std::optional<KvDtype> kv_dtype_from_name(std::string_view name) {
  if (name == "f32") return KvDtype::F32;
  if (name == "f16") return KvDtype::F16;
  return std::nullopt;
}

std::string kv_codec_name(KvCodec c) {
  std::string s = c.encoding == KvEncoding::Int8   ? "int8"
                  : c.encoding == KvEncoding::Int4 ? "int4"
                                                   : std::string(kv_dtype_name(c.dtype));
  if (c.compression == KvCompression::Zstd) s += "+zstd";
  return s;
}

std::optional<KvCodec> kv_codec_from_name(std::string_view name) {
  KvCodec c;
  if (name.ends_with("+zstd")) {
    c.compression = KvCompression::Zstd;
    name.remove_suffix(5);
  }
  if (name == "int8") {
    c.encoding = KvEncoding::Int8;
  } else if (name == "int4") {
    c.encoding = KvEncoding::Int4;
  } else if (const auto t = kv_dtype_from_name(name)) {
    c.dtype = *t;
  } else {
    return std::nullopt;
  }
  return c;
}

uint64_t kv_payload_bytes(const KvLayerShape& s, KvCodec c) {
  return tensor_bytes(s, c, true) + tensor_bytes(s, c, false);
}

uint64_t kv_payload_max_bytes(const KvLayerShape& s, KvCodec c) {
  const uint64_t raw = kv_payload_bytes(s, c);
  if (c.compression == KvCompression::None) return raw;
  return raw + raw / 128 + 4096;  // above ZSTD_compressBound(raw) for any size
}

std::string encode_kv_payload(const KvLayerShape& s, KvCodec c, const float* k, const float* v) {
  check_codec(c);
  std::string out;
  out.reserve(kv_payload_bytes(s, c));
  for (const bool keys : {true, false}) {
    const float* x = keys ? k : v;
    switch (c.encoding) {
      case KvEncoding::Raw:
        encode_raw(s, c.dtype, x, out);
        break;
      case KvEncoding::Int8:
        encode_int8(s, x, out);
        break;
      case KvEncoding::Int4:
        encode_int4(s, x, keys, out);
        break;
    }
  }
  if (c.compression == KvCompression::None) return out;
  std::string z(ZSTD_compressBound(out.size()), '\0');
  const size_t n = ZSTD_compress(z.data(), z.size(), out.data(), out.size(), kZstdLevel);
  if (ZSTD_isError(n)) fail("KV codec: zstd: {}", ZSTD_getErrorName(n));
  z.resize(n);
  return z;
}

void decode_kv_payload(const KvLayerShape& s, KvCodec c, std::string_view payload, float* k,
                       float* v) {
  check_codec(c);
  const uint64_t expected = kv_payload_bytes(s, c);
  std::string inflated;
  if (c.compression == KvCompression::Zstd) {
    if (payload.size() > kv_payload_max_bytes(s, c)) fail("KV codec: zstd payload too large");
    const unsigned long long content = ZSTD_getFrameContentSize(payload.data(), payload.size());
    if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN) {
      fail("KV codec: not a zstd frame with its size");
    }
    if (content != expected) {
      fail("KV codec: zstd frame holds {} bytes, the layer needs {}", content, expected);
    }
    const size_t frame = ZSTD_findFrameCompressedSize(payload.data(), payload.size());
    if (ZSTD_isError(frame) || frame != payload.size()) {
      fail("KV codec: the payload is not exactly one zstd frame");
    }
    inflated.resize(expected);
    const size_t n = ZSTD_decompress(inflated.data(), expected, payload.data(), payload.size());
    if (ZSTD_isError(n)) fail("KV codec: zstd: {}", ZSTD_getErrorName(n));
    if (n != expected) fail("KV codec: zstd frame inflated to {} bytes, not {}", n, expected);
    payload = inflated;
  }
  if (payload.size() != expected) {
    fail("KV codec: {} payload of {} bytes, the layer needs {}", kv_codec_name(c), payload.size(),
         expected);
  }
  size_t at = 0;
  for (const bool keys : {true, false}) {
    float* x = keys ? k : v;
    const std::string_view b = payload.substr(at, tensor_bytes(s, c, keys));
    switch (c.encoding) {
      case KvEncoding::Raw:
        at += decode_raw(s, c.dtype, b, x);
        break;
      case KvEncoding::Int8:
        at += decode_int8(s, b, x);
        break;
      case KvEncoding::Int4:
        at += decode_int4(s, b, keys, x);
        break;
    }
  }
}

}  // namespace ep
