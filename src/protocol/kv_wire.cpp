#include "protocol/kv_wire.h"

#include "core/error.h"
#include "core/half.h"

#include <xxhash.h>

#include <cstring>

namespace ep {
namespace {

constexpr char kHeaderMagic[4] = {'E', 'P', 'K', 'V'};
constexpr char kLayerMagic[4] = {'E', 'P', 'K', 'L'};
constexpr char kEndMagic[4] = {'E', 'P', 'K', 'E'};
constexpr uint32_t kMaxHeaderBody = 64u << 20;  // 16M tokens of ids, far beyond any context
constexpr size_t kLayerFixed = 4 + 4 + 4 + 8;   // magic, layer, encoding/dtype/reserved, length

class Writer {
 public:
  template <typename T>
  void put(T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(const std::string& s) {
    if (s.size() > 0xffff) fail("KV header string too long ({} bytes)", s.size());
    put<uint16_t>(uint16_t(s.size()));
    out += s;
  }
  void checksum() { put<uint64_t>(XXH3_64bits(out.data(), out.size())); }
  std::string out;
};

class Reader {
 public:
  Reader(std::string_view b, const char* what) : bytes_(b), what_(what) {}
  template <typename T>
  T get() {
    if (bytes_.size() - pos_ < sizeof(T)) fail("KV stream: malformed {}: too short", what_);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string str() {
    const uint16_t n = get<uint16_t>();
    if (bytes_.size() - pos_ < n) fail("KV stream: malformed {}: string runs past its end", what_);
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  size_t pos() const { return pos_; }

 private:
  std::string_view bytes_;
  const char* what_;
  size_t pos_ = 0;
};

size_t elem_bytes(KvDtype t) {
  return t == KvDtype::F32 ? 4 : 2;
}

uint64_t layer_payload_bytes(const KvStreamHeader& h) {
  return 2ull * h.tokens.size() * h.n_kv_heads * h.head_dim * elem_bytes(h.dtype);
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

bool valid_prompt_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

uint64_t hash_tokens(const std::vector<int32_t>& tokens) {
  return XXH3_64bits(tokens.data(), tokens.size() * sizeof(int32_t));
}

std::string encode_kv_header(const KvStreamHeader& h) {
  Writer body;
  body.put<uint8_t>(uint8_t(h.dtype));
  body.put<uint8_t>(uint8_t(h.encoding));
  body.put<uint16_t>(0);
  body.put<uint32_t>(h.n_layers);
  body.put<uint32_t>(h.n_kv_heads);
  body.put<uint32_t>(h.head_dim);
  body.put<uint64_t>(h.prompt_version);
  body.put<uint32_t>(uint32_t(h.tokens.size()));
  body.put<uint64_t>(hash_tokens(h.tokens));
  body.str(h.fingerprint);
  body.str(h.prompt_id);
  body.str(h.chat_template);
  for (int32_t t : h.tokens) body.put<int32_t>(t);

  Writer w;
  w.out.append(kHeaderMagic, 4);
  w.put<uint16_t>(kKvWireVersion);
  w.put<uint32_t>(uint32_t(body.out.size()));
  w.out += body.out;
  w.checksum();
  return w.out;
}

std::string encode_kv_layer(const KvStreamHeader& h, uint32_t layer, const float* k,
                            const float* v) {
  const size_t n = h.tokens.size() * h.n_kv_heads * h.head_dim;
  Writer w;
  const size_t eb = elem_bytes(h.dtype);
  w.out.reserve(kLayerFixed + 2 * eb * n + 8);
  w.out.append(kLayerMagic, 4);
  w.put<uint32_t>(layer);
  w.put<uint8_t>(uint8_t(h.encoding));
  w.put<uint8_t>(uint8_t(h.dtype));
  w.put<uint16_t>(0);
  w.put<uint64_t>(layer_payload_bytes(h));
  const size_t at = w.out.size();
  w.out.resize(at + 2 * eb * n);
  char* out = w.out.data() + at;
  if (h.dtype == KvDtype::F32) {
    std::memcpy(out, k, 4 * n);
    std::memcpy(out + 4 * n, v, 4 * n);
  } else {
    for (size_t i = 0; i < n; ++i) {
      const uint16_t hk = f32_to_f16(k[i]), hv = f32_to_f16(v[i]);
      std::memcpy(out + 2 * i, &hk, 2);
      std::memcpy(out + 2 * (n + i), &hv, 2);
    }
  }
  w.checksum();
  return w.out;
}

std::string encode_kv_end(const KvStreamHeader& h) {
  Writer w;
  w.out.append(kEndMagic, 4);
  w.put<uint32_t>(h.n_layers);
  w.checksum();
  return w.out;
}

void KvStreamParser::feed(std::string_view bytes) {
  if (finished_ && !bytes.empty()) fail("KV stream: data after the end marker");
  buffer_.append(bytes);
  while (!finished_ && parse_one()) {
  }
  if (finished_ && pos_ < buffer_.size()) fail("KV stream: data after the end marker");
  // Drop what has been consumed so the buffer holds at most one partial part.
  buffer_.erase(0, pos_);
  pos_ = 0;
}

std::vector<KvStreamParser::Layer> KvStreamParser::take_layers() {
  std::vector<Layer> out;
  out.swap(ready_);
  return out;
}

bool KvStreamParser::parse_one() {
  const std::string_view rest = std::string_view(buffer_).substr(pos_);
  if (rest.size() < 4) return false;
  const auto check = [&](size_t len, const char* what) {
    uint64_t stored;
    std::memcpy(&stored, rest.data() + len, 8);
    if (XXH3_64bits(rest.data(), len) != stored) fail("KV stream: {} checksum mismatch", what);
  };

  if (!header_) {
    if (std::memcmp(rest.data(), kHeaderMagic, 4) != 0)
      fail("KV stream: not a KV stream (bad magic)");
    if (rest.size() < 10) return false;
    uint16_t version;
    uint32_t body_len;
    std::memcpy(&version, rest.data() + 4, 2);
    std::memcpy(&body_len, rest.data() + 6, 4);
    if (version != kKvWireVersion) {
      fail("KV stream: format version {} (this build reads version {})", version, kKvWireVersion);
    }
    if (body_len > kMaxHeaderBody) fail("KV stream: header of {} bytes is too large", body_len);
    const size_t total = 10 + size_t(body_len);
    if (rest.size() < total + 8) return false;
    check(total, "header");
    Reader r(rest.substr(10, body_len), "header");
    KvStreamHeader h;
    const uint8_t dtype = r.get<uint8_t>(), encoding = r.get<uint8_t>();
    if (dtype != uint8_t(KvDtype::F16) && dtype != uint8_t(KvDtype::F32)) {
      fail("KV stream: unsupported dtype {}", dtype);
    }
    h.dtype = KvDtype(dtype);
    if (encoding != uint8_t(KvEncoding::Raw)) fail("KV stream: unsupported encoding {}", encoding);
    r.get<uint16_t>();
    h.n_layers = r.get<uint32_t>();
    h.n_kv_heads = r.get<uint32_t>();
    h.head_dim = r.get<uint32_t>();
    h.prompt_version = r.get<uint64_t>();
    const uint32_t n_tokens = r.get<uint32_t>();
    const uint64_t token_hash = r.get<uint64_t>();
    h.fingerprint = r.str();
    h.prompt_id = r.str();
    if (!valid_prompt_id(h.prompt_id)) fail("KV stream: invalid prompt id");
    h.chat_template = r.str();
    if (n_tokens > (body_len - r.pos()) / 4) fail("KV stream: header token list is truncated");
    h.tokens.resize(n_tokens);
    for (auto& t : h.tokens) t = r.get<int32_t>();
    if (hash_tokens(h.tokens) != token_hash) fail("KV stream: token hash mismatch");
    if (h.n_layers == 0 || h.n_layers > 4096 || h.n_kv_heads == 0 || h.n_kv_heads > 4096 ||
        h.head_dim == 0 || h.head_dim > 4096 || n_tokens == 0) {
      fail("KV stream: implausible shape ({} layers, {} kv heads, head dim {}, {} tokens)",
           h.n_layers, h.n_kv_heads, h.head_dim, n_tokens);
    }
    seen_.assign(h.n_layers, false);
    header_ = std::move(h);
    pos_ += total + 8;
    consumed_ += total + 8;
    return true;
  }

  if (std::memcmp(rest.data(), kEndMagic, 4) == 0) {
    if (rest.size() < 16) return false;
    check(8, "end marker");
    if (n_seen_ != header_->n_layers) {
      fail("KV stream ended after {} of {} layers", n_seen_, header_->n_layers);
    }
    finished_ = true;
    pos_ += 16;
    consumed_ += 16;
    return true;
  }
  if (std::memcmp(rest.data(), kLayerMagic, 4) != 0) fail("KV stream: corrupt frame (bad magic)");
  if (rest.size() < kLayerFixed) return false;
  uint32_t layer;
  uint64_t payload;
  std::memcpy(&layer, rest.data() + 4, 4);
  std::memcpy(&payload, rest.data() + 12, 8);
  if (payload != layer_payload_bytes(*header_)) {
    fail("KV stream: layer frame of {} bytes, expected {}", payload, layer_payload_bytes(*header_));
  }
  const size_t total = kLayerFixed + size_t(payload);
  if (rest.size() < total + 8) return false;
  check(total, "layer frame");
  if (layer >= header_->n_layers) fail("KV stream: layer {} out of range", layer);
  if (seen_[layer]) fail("KV stream: layer {} sent twice", layer);
  if (uint8_t(rest[8]) != uint8_t(header_->encoding) ||
      uint8_t(rest[9]) != uint8_t(header_->dtype)) {
    fail("KV stream: layer {} encoding differs from the header's", layer);
  }
  const size_t eb = elem_bytes(header_->dtype);
  const size_t n = payload / (2 * eb);
  Layer out{layer, std::vector<float>(n), std::vector<float>(n)};
  const char* p = rest.data() + kLayerFixed;
  if (header_->dtype == KvDtype::F32) {
    std::memcpy(out.k.data(), p, 4 * n);
    std::memcpy(out.v.data(), p + 4 * n, 4 * n);
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t hk, hv;
      std::memcpy(&hk, p + 2 * i, 2);
      std::memcpy(&hv, p + 2 * (n + i), 2);
      out.k[i] = f16_to_f32(hk);
      out.v[i] = f16_to_f32(hv);
    }
  }
  seen_[layer] = true;
  ++n_seen_;
  ready_.push_back(std::move(out));
  pos_ += total + 8;
  consumed_ += total + 8;
  return true;
}

}  // namespace ep
