// libFuzzer target: arbitrary bytes as one layer's KV payload. The first bytes choose the codec
// and a small shape (tokens, heads, head dimension, including int4's partial groups and window);
// the rest is decoded. Every outcome must be the floats or an ep::Error, never a crash, a hang or
// an out-of-bounds read; a payload that decodes re-encodes to a payload that decodes too.
#include "core/error.h"
#include "protocol/kv_codec.h"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  ep::KvCodec c;
  c.encoding = ep::KvEncoding(data[0] % 3);
  c.dtype =
      c.encoding == ep::KvEncoding::Raw && (data[0] & 4) ? ep::KvDtype::F32 : ep::KvDtype::F16;
  c.compression = (data[0] & 8) ? ep::KvCompression::Zstd : ep::KvCompression::None;
  const ep::KvLayerShape shape{uint64_t(data[1] % 160) + 1, uint64_t(data[2] % 4) + 1,
                               uint64_t(data[3] % 80) + 1};
  const std::string_view payload(reinterpret_cast<const char*>(data + 4), size - 4);
  std::vector<float> k(shape.elements()), v(shape.elements());
  try {
    ep::decode_kv_payload(shape, c, payload, k.data(), v.data());
  } catch (const ep::Error&) {
    return 0;
  }
  try {
    const std::string again = ep::encode_kv_payload(shape, c, k.data(), v.data());
    ep::decode_kv_payload(shape, c, again, k.data(), v.data());
  } catch (const ep::Error&) {
    // int8 and int4 decode values beyond f16's range, which their encoder refuses
  }
  return 0;
}
