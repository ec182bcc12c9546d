// Perplexity with each window's first tokens computed as a cloud prompt (the edge's path): with
// the KV unchanged it is the plain sliding-window perplexity (the split is exact); a KV codec's
// round trip changes it by what the codec loses, more for int4 than int8; and the CLI's
// --kv-codec / --compare and logits --split --kv-codec report that cost.
#include "core/error.h"
#include "core/npy.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "model/model.h"
#include "protocol/kv_codec.h"
#include "runtime/perplexity.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

namespace ep {
namespace {

const auto kModel = test::fixtures_dir() / "models" / "llama-gqa";

std::vector<int32_t> prompt() {
  return parse_token_list(test::read_file(kModel / "reference" / "prompt_150.txt"));
}

KvTransform round_trip(const Model& m, KvCodec c) {
  return [&m, c](int64_t, float* k, float* v, int64_t n) {
    const KvLayerShape s{uint64_t(n), uint64_t(m.hp.n_head_kv), uint64_t(m.hp.head_dim)};
    decode_kv_payload(s, c, encode_kv_payload(s, c, k, v), k, v);
  };
}

TEST(PerplexitySplit, UnchangedKvIsThePlainPerplexityAndCodecsCostInOrder) {
  const auto model = load_model(kModel);
  ThreadPool pool(2);
  const auto t = prompt();
  const auto plain = perplexity(*model, t, 64, 24, pool);
  PerplexityOptions o;
  o.split = 40;
  o.keep_top1 = true;
  const auto split = perplexity(*model, t, 64, 24, pool, o);
  EXPECT_NEAR(split.mean_nll, plain.mean_nll, 1e-5 * plain.mean_nll);
  EXPECT_EQ(split.top1.size(), size_t(split.n_scored));

  double change[3];
  int i = 0;
  for (const KvCodec c : {KvCodec{}, KvCodec{KvDtype::F16, KvEncoding::Int8},
                          KvCodec{KvDtype::F16, KvEncoding::Int4}}) {
    o.kv_transform = round_trip(*model, c);
    const auto r = perplexity(*model, t, 64, 24, pool, o);
    change[i++] = std::fabs(r.mean_nll - split.mean_nll);
  }
  EXPECT_GT(change[2], 0);  // int4 changes something
  EXPECT_LT(change[0], 1e-3 * split.mean_nll);
  EXPECT_LT(change[1], 1e-2 * split.mean_nll);
  EXPECT_LT(change[2], 5e-2 * split.mean_nll);
  EXPECT_LE(change[0], change[2]);

  o.split = 64;  // no token left for the edge part
  EXPECT_THROW(perplexity(*model, t, 64, 24, pool, o), Error);
}

TEST(PerplexitySplit, CliReportsBytesRatioChangeAndAgreement) {
  test::ScratchDir dir;
  const auto text = dir / "text.txt";
  std::string s;
  for (int i = 0; i < 40; ++i) s += "the quick brown fox jumps over the lazy dog. ";
  test::write_file(text, s);
  const std::string model = test::default_model().string();
  const auto r = test::run_cli({"perplexity", "--model", model, "--file", text.string(), "--ctx",
                                "128", "--kv-codec", "int4+zstd", "--compare", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.rfind('{')));
  EXPECT_EQ(j["kv_codec"], "int4+zstd");
  EXPECT_EQ(j["split"], 64);
  EXPECT_GT(j["kv_ratio_vs_f16"].get<double>(), 2.0);
  EXPECT_GT(j["top1_agreement"].get<double>(), 0.8);
  EXPECT_LT(std::fabs(j["perplexity_change_percent"].get<double>()), 20.0);
  const auto bad = test::run_cli(
      {"perplexity", "--model", model, "--file", text.string(), "--kv-codec", "int3"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--kv-codec: 'int3'"), std::string::npos) << bad.err;
}

TEST(PerplexitySplit, LogitsSplitThroughACodec) {
  test::ScratchDir dir;
  const std::string model = kModel.string();
  const std::string tokens = test::read_file(kModel / "reference" / "prompt_150.txt");
  const auto run = [&](const std::string& codec) {
    const auto out = (dir / (codec + ".npy")).string();
    const auto r = test::run_cli({"logits", "--model", model, "--tokens", tokens, "--split", "100",
                                  "--kv-codec", codec, "--out", out});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return read_npy(out);
  };
  const NpyArray exact = run("f32"), int8 = run("int8"), int4 = run("int4");
  double e8 = 0, e4 = 0, norm = 0;
  for (size_t i = 0; i < exact.data.size(); ++i) {
    e8 += std::pow(int8.data[i] - exact.data[i], 2);
    e4 += std::pow(int4.data[i] - exact.data[i], 2);
    norm += std::pow(exact.data[i], 2);
  }
  EXPECT_LT(std::sqrt(e8 / norm), 2e-2);
  EXPECT_LT(std::sqrt(e4 / norm), 1e-1);
  EXPECT_GT(e4, e8);
}

}  // namespace
}  // namespace ep
