// The exactness property: a prompt computed as [cloud prefix | edge suffix], with the cloud KV
// passed through the wire format, gives the same logits as the monolithic computation.
#include "core/error.h"
#include "core/npy.h"
#include "core/token_list.h"
#include "protocol/kv_wire.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace ep {
namespace {

const std::filesystem::path kModels = test::fixtures_dir() / "models";

NpyArray logits_cli(const std::string& model, const std::string& tokens,
                    const test::ScratchDir& dir, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {
      "logits",    "--model", model, "--tokens", tokens, "--out", (dir / "l.npy").string(),
      "--threads", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = test::run_cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return read_npy(dir / "l.npy");
}

struct Diff {
  double rel;
  bool same_argmax;
};

Diff diff_rows(const NpyArray& a, const NpyArray& b, int64_t from) {
  const int64_t vocab = a.shape[1];
  double num = 0, den = 0;
  bool same = true;
  for (int64_t r = from; r < a.shape[0]; ++r) {
    int64_t ia = 0, ib = 0;
    for (int64_t c = 0; c < vocab; ++c) {
      const size_t i = size_t(r * vocab + c);
      num += (a.data[i] - b.data[i]) * (a.data[i] - b.data[i]);
      den += b.data[i] * b.data[i];
      if (a.data[i] > a.data[size_t(r * vocab + ia)]) ia = c;
      if (b.data[i] > b.data[size_t(r * vocab + ib)]) ib = c;
    }
    same = same && ia == ib;
  }
  return {std::sqrt(num / den), same};
}

TEST(Split, EdgeLogitsEqualMonolithicForEveryFixture) {
  test::ScratchDir dir;
  for (const char* m :
       {"llama-gqa", "llama3-rope", "qwen2-bias", "mistral-mha", "qwen2-bias-bf16"}) {
    const std::string model = (kModels / m).string();
    std::string tokens = test::read_file(kModels / m / "reference" / "prompt_150.txt");
    tokens = tokens.substr(0, tokens.find('\n'));
    const NpyArray mono = logits_cli(model, tokens, dir, {});
    for (int64_t split : {1, 64, 75, 149}) {
      SCOPED_TRACE(::testing::Message() << m << " split " << split);
      const NpyArray exact = logits_cli(model, tokens, dir, {"--split", std::to_string(split)});
      ASSERT_EQ(exact.shape, mono.shape);
      const Diff d = diff_rows(exact, mono, split);
      EXPECT_LE(d.rel, 1e-5);
      EXPECT_TRUE(d.same_argmax);
      // The cloud part is the same computation as the monolithic one's first rows.
      NpyArray cloud_rows = exact, mono_rows = mono;
      cloud_rows.shape[0] = mono_rows.shape[0] = split;
      EXPECT_EQ(diff_rows(cloud_rows, mono_rows, 0).rel, 0.0);
      // With an f16 payload the cloud KV is rounded to 11 significant bits on the wire.
      const NpyArray half =
          logits_cli(model, tokens, dir, {"--split", std::to_string(split), "--kv-dtype", "f16"});
      const Diff h = diff_rows(half, mono, split);
      EXPECT_LE(h.rel, 2e-3);
      EXPECT_GT(h.rel, 0.0);  // the rounding is real: this checks the f16 path was taken
    }
  }
}

TEST(Split, BadSplitIsRefused) {
  const auto r = test::run_cli({"logits", "--model", (kModels / "llama-gqa").string(), "--tokens",
                                "1,2,3", "--split", "3", "--out", "/dev/null"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--split 3"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------------------------
// Wire format

KvStreamHeader small_header(KvDtype dtype) {
  KvStreamHeader h;
  h.fingerprint = "xxh3-128:00112233445566778899aabbccddeeff";
  h.prompt_id = "support-bot";
  h.prompt_version = 3;
  h.chat_template = "chatml";
  h.tokens = {5, 17, 900, 2};
  h.dtype = dtype;
  h.n_layers = 3;
  h.n_kv_heads = 2;
  h.head_dim = 8;
  return h;
}

std::string small_stream(const KvStreamHeader& h, std::vector<std::vector<float>>& values) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  std::string s = encode_kv_header(h);
  const size_t n = h.tokens.size() * h.n_kv_heads * h.head_dim;
  for (uint32_t l : {2u, 0u, 1u}) {  // any order
    std::vector<float> k(n), v(n);
    for (auto& x : k) x = dist(rng);
    for (auto& x : v) x = dist(rng);
    values.push_back(k);
    values.push_back(v);
    s += encode_kv_layer(h, l, k.data(), v.data());
  }
  s += encode_kv_end(h);
  return s;
}

TEST(ParserKvWire, RoundTripsByteByByte) {
  for (KvDtype dtype : {KvDtype::F32, KvDtype::F16}) {
    const KvStreamHeader h = small_header(dtype);
    std::vector<std::vector<float>> values;
    const std::string s = small_stream(h, values);
    KvStreamParser p;
    std::vector<KvStreamParser::Layer> layers;
    for (char c : s) {  // arrives one byte at a time
      p.feed(std::string_view(&c, 1));
      for (auto& l : p.take_layers()) layers.push_back(std::move(l));
    }
    ASSERT_TRUE(p.finished());
    EXPECT_EQ(p.header()->prompt_id, "support-bot");
    EXPECT_EQ(p.header()->prompt_version, 3u);
    EXPECT_EQ(p.header()->tokens, h.tokens);
    EXPECT_EQ(p.header()->chat_template, "chatml");
    ASSERT_EQ(layers.size(), 3u);
    EXPECT_EQ(layers[0].index, 2u);
    for (size_t i = 0; i < layers[0].k.size(); ++i) {
      // f16 keeps 11 significant bits: relative rounding error at most 2^-11.
      const auto tol = [&](float x) { return dtype == KvDtype::F32 ? 0.0 : std::fabs(x) / 2048.0; };
      EXPECT_NEAR(layers[0].k[i], values[0][i], tol(values[0][i]));
      EXPECT_NEAR(layers[0].v[i], values[1][i], tol(values[1][i]));
    }
  }
}

TEST(ParserKvWire, CorruptionAndTruncationAreDetected) {
  const KvStreamHeader h = small_header(KvDtype::F16);
  std::vector<std::vector<float>> values;
  const std::string s = small_stream(h, values);
  // Every single-byte corruption is caught by a checksum or a structural check.
  for (size_t i = 0; i < s.size(); i += 7) {
    std::string bad = s;
    bad[i] = char(bad[i] ^ 0x20);
    KvStreamParser p;
    EXPECT_THROW(
        {
          p.feed(bad);
          if (!p.finished()) throw Error("incomplete");
        },
        Error)
        << "byte " << i;
  }
  // A truncated stream never reports finished, and never yields a partial layer.
  for (size_t n = 0; n < s.size(); n += 13) {
    KvStreamParser p;
    p.feed(std::string_view(s).substr(0, n));
    EXPECT_FALSE(p.finished());
    for (const auto& l : p.take_layers()) EXPECT_EQ(l.k.size(), 4u * 2 * 8);
  }
  // End marker before all layers arrived.
  {
    KvStreamParser p;
    EXPECT_THROW(p.feed(encode_kv_header(h) + encode_kv_end(h)), Error);
  }
  // A layer sent twice, and a frame length that disagrees with the header.
  {
    const size_t n = h.tokens.size() * h.n_kv_heads * h.head_dim;
    std::vector<float> z(n, 1.0f);
    KvStreamParser p;
    EXPECT_THROW(p.feed(encode_kv_header(h) + encode_kv_layer(h, 0, z.data(), z.data()) +
                        encode_kv_layer(h, 0, z.data(), z.data())),
                 Error);
    KvStreamHeader other = h;
    other.tokens.push_back(1);
    std::vector<float> z2(other.tokens.size() * h.n_kv_heads * h.head_dim, 1.0f);
    KvStreamParser q;
    EXPECT_THROW(q.feed(encode_kv_header(h) + encode_kv_layer(other, 0, z2.data(), z2.data())),
                 Error);
  }
}

}  // namespace
}  // namespace ep
