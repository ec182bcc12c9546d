// The KV wire codecs: each round-trips within its stated error (f16: rounding to 11 bits; int8:
// half a step of its per-token, per-head scale; int4: half a step of its group's scale, the
// window exact to f16), their sizes, zstd on top; and every corrupt or truncated payload, frame
// or stream in any codec is refused with an ep::Error (the Parser suites run under ASan).
#include "protocol/kv_codec.h"
#include "core/error.h"
#include "core/half.h"
#include "protocol/kv_wire.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace ep {
namespace {

// KV-like values: most channels small, a few keys' channels large (the outlier channels that
// make KIVI quantise keys per channel).
std::vector<float> kv_values(const KvLayerShape& s, uint32_t seed, bool outliers) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> x(s.elements());
  const uint64_t channels = s.n_kv_heads * s.head_dim;
  for (uint64_t i = 0; i < x.size(); ++i) {
    const bool big = outliers && (i % channels) % 17 == 3;
    x[i] = n(rng) * (big ? 12.0f : 1.0f);
  }
  return x;
}

const KvCodec kF16{}, kF32{KvDtype::F32};
const KvCodec kInt8{KvDtype::F16, KvEncoding::Int8}, kInt4{KvDtype::F16, KvEncoding::Int4};

KvCodec zstd(KvCodec c) {
  c.compression = KvCompression::Zstd;
  return c;
}

std::vector<KvCodec> all_codecs() {
  std::vector<KvCodec> out;
  for (const KvCodec c : {kF32, kF16, kInt8, kInt4}) {
    out.push_back(c);
    out.push_back(zstd(c));
  }
  return out;
}

TEST(KvCodec, NamesRoundTrip) {
  for (const KvCodec c : all_codecs()) {
    EXPECT_EQ(kv_codec_from_name(kv_codec_name(c)), c) << kv_codec_name(c);
  }
  EXPECT_EQ(kv_codec_name(zstd(kInt4)), "int4+zstd");
  EXPECT_FALSE(kv_codec_from_name("int2"));
  EXPECT_FALSE(kv_codec_from_name("int4+zstd+zstd"));
  EXPECT_FALSE(kv_codec_from_name(""));
}

// Each codec's error bound, element by element, over shapes with partial int4 groups.
TEST(KvCodec, RoundTripsWithinItsStatedError) {
  for (const KvLayerShape s :
       {KvLayerShape{300, 2, 64}, KvLayerShape{7, 3, 80}, KvLayerShape{129 + kInt4Window, 1, 96}}) {
    const auto k = kv_values(s, 1, true), v = kv_values(s, 2, false);
    for (const KvCodec c : all_codecs()) {
      SCOPED_TRACE(kv_codec_name(c) + " tokens " + std::to_string(s.n_tokens));
      const std::string payload = encode_kv_payload(s, c, k.data(), v.data());
      if (c.compression == KvCompression::None) {
        EXPECT_EQ(payload.size(), kv_payload_bytes(s, c));
      }
      std::vector<float> k2(s.elements()), v2(s.elements());
      decode_kv_payload(s, c, payload, k2.data(), v2.data());
      const uint64_t channels = s.n_kv_heads * s.head_dim;
      for (const bool keys : {true, false}) {
        const auto& x = keys ? k : v;
        const auto& y = keys ? k2 : v2;
        for (uint64_t i = 0; i < x.size(); ++i) {
          const uint64_t t = i / channels, c_ = i % channels;
          double tol = 0;
          if (c.encoding == KvEncoding::Raw) {
            // f16: 11 significant bits, and half of 2^-24 below its normal range.
            tol = c.dtype == KvDtype::F32 ? 0 : std::fabs(x[i]) / 2048.0 + 3e-8;
          } else if (c.encoding == KvEncoding::Int8) {
            // Half a step of the (token, head) scale, plus the scale's own f16 rounding.
            const uint64_t h = c_ / s.head_dim;
            float amax = 0;
            for (uint64_t j = 0; j < s.head_dim; ++j) {
              amax = std::max(amax, std::fabs(x[t * channels + h * s.head_dim + j]));
            }
            tol = amax / 127.0 * 0.5 + amax / 1000.0;
          } else if (t + kInt4Window >= s.n_tokens) {
            tol = std::fabs(x[i]) / 2048.0 + 3e-8;  // the window: f16
          } else {
            // Half a step of the group's range / 15 (plus f16 rounding of min and scale).
            float lo = x[i], hi = x[i];
            if (keys) {
              const uint64_t t0 = t / kInt4KeyGroup * kInt4KeyGroup;
              const uint64_t t1 = std::min(t0 + kInt4KeyGroup, s.n_tokens - kInt4Window);
              for (uint64_t u = t0; u < t1; ++u) {
                lo = std::min(lo, x[u * channels + c_]);
                hi = std::max(hi, x[u * channels + c_]);
              }
            } else {
              const uint64_t j0 = c_ / kInt4ValueGroup * kInt4ValueGroup;
              const uint64_t j1 =
                  std::min(j0 + kInt4ValueGroup, (c_ / s.head_dim + 1) * s.head_dim);
              for (uint64_t j = j0; j < j1; ++j) {
                lo = std::min(lo, x[t * channels + j]);
                hi = std::max(hi, x[t * channels + j]);
              }
            }
            tol = (hi - lo) / 15.0 * 0.5 + (std::fabs(lo) + std::fabs(hi)) / 500.0;
          }
          ASSERT_LE(std::fabs(double(y[i]) - double(x[i])), tol)
              << (keys ? "K" : "V") << " element " << i << " of " << x[i];
        }
      }
    }
  }
}

// The sizes the codecs are chosen for: on TinyLlama's shape (4 KV heads of 64) with a
// 1024-token prompt, int8 is about 1.9x and int4 at least 3.5x smaller than f16.
TEST(KvCodec, SizesAgainstF16) {
  const KvLayerShape s{1024, 4, 64};
  const double f16 = double(kv_payload_bytes(s, kF16));
  EXPECT_EQ(f16, 2.0 * 2 * 1024 * 4 * 64);
  EXPECT_NEAR(f16 / double(kv_payload_bytes(s, kInt8)), 2.0 * 64 / 66, 1e-9);
  EXPECT_GE(f16 / double(kv_payload_bytes(s, kInt4)), 3.5);
  // A prompt no longer than the window stays f16 (plus nothing).
  const KvLayerShape tiny{kInt4Window, 4, 64};
  EXPECT_EQ(kv_payload_bytes(tiny, kInt4), kv_payload_bytes(tiny, kF16));
}

TEST(KvCodec, ZstdShrinksRedundantKv) {
  const KvLayerShape s{256, 2, 64};
  std::vector<float> k(s.elements(), 0.5f), v(s.elements(), -0.25f);
  for (const KvCodec c : {kF16, kInt8, kInt4}) {
    EXPECT_LT(encode_kv_payload(s, zstd(c), k.data(), v.data()).size() * 10,
              kv_payload_bytes(s, c));
  }
}

TEST(KvCodec, RefusesValuesItCannotCarry) {
  const KvLayerShape s{40, 1, 8};
  auto k = kv_values(s, 3, false), v = k;
  k[5] = 1e6f;  // beyond f16
  EXPECT_THROW(encode_kv_payload(s, kInt8, k.data(), v.data()), Error);
  EXPECT_THROW(encode_kv_payload(s, kInt4, k.data(), v.data()), Error);
  k[5] = std::nanf("");
  EXPECT_THROW(encode_kv_payload(s, kInt4, k.data(), v.data()), Error);
  EXPECT_THROW(encode_kv_payload(s, KvCodec{KvDtype::F32, KvEncoding::Int8}, v.data(), v.data()),
               Error);
}

// ---- refusals of outside bytes -----------------------------------------------------------------

void expect_refused(const KvLayerShape& s, KvCodec c, std::string_view payload, const char* what) {
  std::vector<float> k(s.elements()), v(s.elements());
  try {
    decode_kv_payload(s, c, payload, k.data(), v.data());
    ADD_FAILURE() << what << ": accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KV codec"), std::string::npos) << e.what();
  }
}

TEST(ParserKvCodec, WrongSizesAndTruncationsAreRefused) {
  const KvLayerShape s{50, 2, 16};
  const auto k = kv_values(s, 4, true), v = kv_values(s, 5, false);
  for (const KvCodec c : all_codecs()) {
    SCOPED_TRACE(kv_codec_name(c));
    const std::string good = encode_kv_payload(s, c, k.data(), v.data());
    for (size_t n = 0; n < good.size(); n += 1 + good.size() / 40) {
      expect_refused(s, c, std::string_view(good).substr(0, n), "truncated");
    }
    expect_refused(s, c, good + '\0', "a byte too many");
    // The same payload read as another shape.
    expect_refused(KvLayerShape{51, 2, 16}, c, good, "another shape");
  }
}

TEST(ParserKvCodec, BadScalesPaddingAndZstdFramesAreRefused) {
  const KvLayerShape s{kInt4Window + 3, 1, 5};  // 3 quantised tokens x 5 channels: odd codes
  const auto k = kv_values(s, 6, false), v = kv_values(s, 7, false);
  const uint16_t nan = 0x7e00, inf = 0x7c00, neg = f32_to_f16(-1.0f);
  for (const KvCodec c : {kInt8, kInt4}) {
    SCOPED_TRACE(kv_codec_name(c));
    const std::string good = encode_kv_payload(s, c, k.data(), v.data());
    for (const uint16_t bad : {nan, inf, neg}) {
      std::string p = good;
      std::memcpy(p.data(), &bad, 2);  // the first scale
      expect_refused(s, c, p, "bad scale");
    }
  }
  {
    // int4's keys: 5 groups x 4 bytes, then 15 codes in 8 bytes: the last high nibble pads.
    std::string p = encode_kv_payload(s, kInt4, k.data(), v.data());
    p[5 * 4 + 7] = char(uint8_t(p[5 * 4 + 7]) | 0xf0);
    expect_refused(s, kInt4, p, "padding");
    std::string w = encode_kv_payload(s, kInt4, k.data(), v.data());
    std::memcpy(w.data() + 5 * 4 + 8, &nan, 2);  // the first window value
    expect_refused(s, kInt4, w, "window NaN");
  }
  const std::string z = encode_kv_payload(s, zstd(kInt8), k.data(), v.data());
  expect_refused(s, zstd(kInt8), z + z, "two frames");
  expect_refused(s, zstd(kInt8), "not zstd at all", "garbage");
  std::string flipped = z;
  flipped[flipped.size() / 2] = char(flipped[flipped.size() / 2] ^ 0x55);
  std::vector<float> kk(s.elements()), vv(s.elements());
  try {
    decode_kv_payload(s, zstd(kInt8), flipped, kk.data(), vv.data());
  } catch (const Error&) {
    // refused, or (when the flip lands in literals) decoded to other values of the right size
  }
  // A frame that inflates to another layer's size.
  const KvLayerShape other{s.n_tokens + 1, 1, 5};
  const auto k3 = kv_values(other, 8, false);
  expect_refused(s, zstd(kInt8), encode_kv_payload(other, zstd(kInt8), k3.data(), k3.data()),
                 "other size");
}

KvStreamHeader header(KvCodec c, size_t n_tokens) {
  KvStreamHeader h;
  h.fingerprint = "xxh3-128:test";
  h.prompt_id = "codec";
  h.prompt_version = 2;
  h.chat_template = "none";
  for (size_t i = 0; i < n_tokens; ++i) h.tokens.push_back(int32_t(i % 97));
  h.set_codec(c);
  h.n_layers = 3;
  h.n_kv_heads = 2;
  h.head_dim = 16;
  return h;
}

std::string stream(const KvStreamHeader& h) {
  std::string s = encode_kv_header(h);
  const auto shape = h.layer_shape();
  for (uint32_t l = 0; l < h.n_layers; ++l) {
    const auto k = kv_values(shape, 10 + l, true), v = kv_values(shape, 20 + l, false);
    s += encode_kv_layer(h, l, k.data(), v.data());
  }
  return s + encode_kv_end(h);
}

TEST(ParserKvCodec, StreamsInEveryCodecParseAndCorruptionIsDetected) {
  for (const KvCodec c : all_codecs()) {
    SCOPED_TRACE(kv_codec_name(c));
    const KvStreamHeader h = header(c, 70);
    const std::string s = stream(h);
    KvStreamParser p;
    for (size_t i = 0; i < s.size(); i += 61) p.feed(std::string_view(s).substr(i, 61));
    ASSERT_TRUE(p.finished());
    EXPECT_EQ(p.header()->codec(), c);
    const auto layers = p.take_layers();
    ASSERT_EQ(layers.size(), 3u);
    // The frames alone after the header, in one piece, decode to the same values.
    const std::string frame =
        s.substr(encode_kv_header(h).size(), s.size() - encode_kv_header(h).size() - 16);
    KvStreamParser one;
    one.feed(encode_kv_header(h));
    one.feed(frame.substr(0, frame.size()));  // all three frames
    const auto again = one.take_layers();
    ASSERT_EQ(again.size(), 3u);
    EXPECT_EQ(again[0].k, layers[0].k);
    for (size_t i = 0; i < s.size(); i += 29) {
      std::string bad = s;
      bad[i] = char(bad[i] ^ 0x08);
      KvStreamParser q;
      EXPECT_THROW(
          {
            q.feed(bad);
            if (!q.finished()) throw Error("incomplete");
          },
          Error)
          << "byte " << i;
    }
  }
}

TEST(ParserKvCodec, TranscodingAndMismatchedFrames) {
  const KvStreamHeader f16 = header(kF16, 40), int4 = header(zstd(kInt4), 40);
  const auto shape = f16.layer_shape();
  const auto k = kv_values(shape, 30, true), v = kv_values(shape, 31, false);
  const std::string frame = encode_kv_layer(f16, 1, k.data(), v.data());
  EXPECT_EQ(transcode_kv_layer(f16, f16, frame), frame);
  const std::string small = transcode_kv_layer(f16, int4, frame);
  EXPECT_LT(small.size(), frame.size());
  const KvLayer back = parse_kv_layer(int4, small);
  EXPECT_EQ(back.index, 1u);
  const KvLayer exact = parse_kv_layer(f16, frame);
  double err = 0, norm = 0;
  for (size_t i = 0; i < back.k.size(); ++i) {
    err += std::pow(back.v[i] - exact.v[i], 2);
    norm += std::pow(exact.v[i], 2);
  }
  EXPECT_LT(std::sqrt(err / norm), 0.12);  // int4: about 1/15 of each group's range
  // A frame in another codec than its header's is refused, not misread.
  EXPECT_THROW(parse_kv_layer(f16, small), Error);
  KvStreamParser p;
  p.feed(encode_kv_header(f16));
  EXPECT_THROW(p.feed(small), Error);
  // A header naming a compression this build does not know.
  std::string h = encode_kv_header(f16);
  h[12] = 7;  // body: dtype, encoding, compression
  const uint64_t sum = XXH3_64bits(h.data(), h.size() - 8);
  std::memcpy(h.data() + h.size() - 8, &sum, 8);
  KvStreamParser q;
  try {
    q.feed(h);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported compression 7"), std::string::npos)
        << e.what();
  }
}

TEST(ParserKvCodec, HeaderCheckRunsBeforeAnyLayerIsDecoded) {
  const KvStreamHeader h = header(kInt8, 30);
  const std::string s = stream(h);
  KvStreamParser p;
  p.on_header([](const KvStreamHeader& got) {
    if (got.n_kv_heads != 8) throw Error("shape refused");
  });
  EXPECT_THROW(p.feed(s), Error);
  EXPECT_TRUE(p.take_layers().empty());
}

}  // namespace
}  // namespace ep
