#include "protocol/kv_wire.h"

#include "core/error.h"
#include "core/half.h"

#include <xxhash.h>

#include <algorithm>
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

// The frame's fixed part: magic, layer, then the codec (encoding, dtype, compression, reserved).
void put_codec(Writer& w, KvCodec c) {
  w.put<uint8_t>(uint8_t(c.encoding));
  w.put<uint8_t>(uint8_t(c.dtype));
  w.put<uint8_t>(uint8_t(c.compression));
  w.put<uint8_t>(0);
}

uint64_t checksum_at(std::string_view b, size_t len) {
  uint64_t stored;
  std::memcpy(&stored, b.data() + len, 8);
  return stored;
}

// A header's codec as read: any combination this build decodes, else a clear error.
KvCodec read_codec(uint8_t dtype, uint8_t encoding, uint8_t compression) {
  if (dtype != uint8_t(KvDtype::F16) && dtype != uint8_t(KvDtype::F32)) {
    fail("KV stream: unsupported dtype {}", dtype);
  }
  if (encoding > uint8_t(KvEncoding::Int4)) fail("KV stream: unsupported encoding {}", encoding);
  if (compression > uint8_t(KvCompression::Zstd)) {
    fail("KV stream: unsupported compression {}", compression);
  }
  const KvCodec c{KvDtype(dtype), KvEncoding(encoding), KvCompression(compression)};
  if (c.encoding != KvEncoding::Raw && c.dtype != KvDtype::F16) {
    fail("KV stream: encoding {} with dtype {}", encoding, dtype);
  }
  return c;
}

}  // namespace

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
  body.put<uint8_t>(uint8_t(h.compression));
  body.put<uint8_t>(0);
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
  const std::string payload = encode_kv_payload(h.layer_shape(), h.codec(), k, v);
  Writer w;
  w.out.reserve(kLayerFixed + payload.size() + 8);
  w.out.append(kLayerMagic, 4);
  w.put<uint32_t>(layer);
  put_codec(w, h.codec());
  w.put<uint64_t>(payload.size());
  w.out += payload;
  w.checksum();
  return w.out;
}

KvLayer parse_kv_layer(const KvStreamHeader& h, std::string_view frame) {
  if (frame.size() < kLayerFixed + 8 || std::memcmp(frame.data(), kLayerMagic, 4) != 0) {
    fail("KV stream: corrupt layer frame");
  }
  uint32_t layer;
  uint64_t payload;
  std::memcpy(&layer, frame.data() + 4, 4);
  std::memcpy(&payload, frame.data() + 12, 8);
  if (payload != frame.size() - kLayerFixed - 8) fail("KV stream: corrupt layer frame length");
  if (XXH3_64bits(frame.data(), frame.size() - 8) != checksum_at(frame, frame.size() - 8)) {
    fail("KV stream: layer frame checksum mismatch");
  }
  if (layer >= h.n_layers) fail("KV stream: layer {} out of range", layer);
  const KvCodec c = h.codec();
  if (uint8_t(frame[8]) != uint8_t(c.encoding) || uint8_t(frame[9]) != uint8_t(c.dtype) ||
      uint8_t(frame[10]) != uint8_t(c.compression)) {
    fail("KV stream: layer {} encoding differs from the header's", layer);
  }
  const KvLayerShape shape = h.layer_shape();
  KvLayer out{layer, std::vector<float>(shape.elements()), std::vector<float>(shape.elements())};
  try {
    decode_kv_payload(shape, c, frame.substr(kLayerFixed, payload), out.k.data(), out.v.data());
  } catch (const Error& e) {
    fail("KV stream: layer {}: {}", layer, e.what());
  }
  return out;
}

std::string transcode_kv_layer(const KvStreamHeader& from, const KvStreamHeader& to,
                               const std::string& frame) {
  if (from.codec() == to.codec()) return frame;
  const KvLayer l = parse_kv_layer(from, frame);
  return encode_kv_layer(to, l.index, l.k.data(), l.v.data());
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
    const uint8_t compression = r.get<uint8_t>();
    r.get<uint8_t>();
    h.set_codec(read_codec(dtype, encoding, compression));
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
    if (on_header_) on_header_(h);
    if (resume_from_ > h.n_layers) {
      fail("KV stream: resumed at layer {} of {}", resume_from_, h.n_layers);
    }
    seen_.assign(h.n_layers, false);
    std::fill(seen_.begin(), seen_.begin() + resume_from_, true);
    n_seen_ = resume_from_;
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
  const uint64_t max_payload = kv_payload_max_bytes(header_->layer_shape(), header_->codec());
  if (payload > max_payload ||
      (header_->compression == KvCompression::None && payload != max_payload)) {
    fail("KV stream: layer frame of {} bytes, expected {}{}", payload,
         header_->compression == KvCompression::None ? "" : "at most ", max_payload);
  }
  const size_t total = kLayerFixed + size_t(payload);
  if (rest.size() < total + 8) return false;
  Layer out = parse_kv_layer(*header_, rest.substr(0, total + 8));
  if (seen_[layer]) fail("KV stream: layer {} sent twice", layer);
  seen_[layer] = true;
  ++n_seen_;
  ready_.push_back(std::move(out));
  pos_ += total + 8;
  consumed_ += total + 8;
  return true;
}

}  // namespace ep
