// The sliding-window perplexity against a direct computation from one forward pass's logits.
#include "runtime/perplexity.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "model/model.h"
#include "runtime/transformer.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace ep {
namespace {

const auto kModel = test::fixtures_dir() / "models" / "llama-gqa";

std::vector<int32_t> prompt() {
  return parse_token_list(test::read_file(kModel / "reference" / "prompt_150.txt"));
}

// -log p(tokens[pos] | tokens[begin..pos)) from a fresh forward over tokens[begin, end).
std::vector<double> window_nll(const Model& m, const std::vector<int32_t>& t, int64_t begin,
                               int64_t end, ThreadPool& pool) {
  Transformer tf(m, end - begin, pool);
  std::vector<float> logits;
  tf.forward(std::span(t).subspan(size_t(begin), size_t(end - begin)), logits, true);
  const int64_t v = m.hp.n_vocab;
  std::vector<double> out;
  for (int64_t pos = begin + 1; pos < end; ++pos) {
    const float* row = &logits[size_t((pos - 1 - begin) * v)];
    double sum = 0;
    for (int64_t i = 0; i < v; ++i) sum += std::exp(double(row[i]));
    out.push_back(std::log(sum) - double(row[t[size_t(pos)]]));
  }
  return out;  // out[i] scores position begin + 1 + i
}

TEST(Perplexity, OneWindowIsTheMeanOverTheWholeSequence) {
  const auto model = load_model(kModel);
  ThreadPool pool(2);
  const auto t = prompt();
  const auto nll = window_nll(*model, t, 0, int64_t(t.size()), pool);
  double mean = 0;
  for (double x : nll) mean += x / double(nll.size());
  const auto r = perplexity(*model, t, 1000, 1000, pool);
  EXPECT_EQ(r.n_windows, 1);
  EXPECT_EQ(r.n_scored, int64_t(t.size()) - 1);
  EXPECT_NEAR(r.mean_nll, mean, 1e-9 * mean);
  EXPECT_NEAR(r.perplexity, std::exp(mean), 1e-9 * std::exp(mean));
  EXPECT_GT(r.perplexity, 1.0);
}

TEST(Perplexity, OverlappingWindowsScoreEachTokenOnceWithItsWindowsContext) {
  const auto model = load_model(kModel);
  ThreadPool pool(2);
  const auto t = prompt();  // 150 tokens: windows [0,64) [24,88) [48,112) [72,136) [96,150)
  const int64_t ctx = 64, stride = 24, n = int64_t(t.size());
  double total = 0;
  int64_t scored = 0, prev_end = 0, windows = 0;
  for (int64_t begin = 0; prev_end < n; begin += stride, ++windows) {
    const int64_t end = std::min(begin + ctx, n);
    const auto nll = window_nll(*model, t, begin, end, pool);
    for (int64_t pos = std::max(prev_end, begin + 1); pos < end; ++pos, ++scored) {
      total += nll[size_t(pos - begin - 1)];
    }
    prev_end = end;
  }
  int64_t progress_calls = 0;
  const auto r = perplexity(*model, t, ctx, stride, pool,
                            [&](int64_t, int64_t, const PerplexityResult&) { ++progress_calls; });
  EXPECT_EQ(windows, 5);
  EXPECT_EQ(r.n_windows, windows);
  EXPECT_EQ(progress_calls, windows);
  EXPECT_EQ(r.n_scored, n - 1);
  EXPECT_EQ(scored, n - 1);
  EXPECT_EQ(r.n_evaluated, 64 * 4 + 54);
  EXPECT_NEAR(r.mean_nll, total / double(scored), 1e-9 * total / double(scored));
  // Less context than one full window means a different (here: any) value.
  const auto short_ctx = perplexity(*model, t, 8, 8, pool);
  EXPECT_NE(short_ctx.mean_nll, r.mean_nll);
}

TEST(Perplexity, RejectsBadArguments) {
  const auto model = load_model(kModel);
  ThreadPool pool(1);
  const auto t = prompt();
  EXPECT_THROW(perplexity(*model, std::vector<int32_t>{1}, 16, 8, pool), Error);
  EXPECT_THROW(perplexity(*model, t, 1, 1, pool), Error);
  EXPECT_THROW(perplexity(*model, t, 16, 0, pool), Error);
  EXPECT_THROW(perplexity(*model, t, 16, 17, pool), Error);
  EXPECT_THROW(perplexity(*model, std::vector<int32_t>{1, 5000000}, 16, 8, pool), Error);
}

TEST(PerplexityCli, ReportsJsonAndClearErrors) {
  test::ScratchDir dir;
  const auto text = dir / "text.txt";
  test::write_file(text,
                   "In the beginning God created the heaven and the earth.\n"
                   "And the earth was without form, and void.\n");
  const auto r = test::run_cli({"perplexity", "-m", test::default_model().string(), "-f",
                                text.string(), "--ctx", "16", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.rfind('{')));
  EXPECT_GT(j["perplexity"].get<double>(), 1.0);
  EXPECT_LT(j["perplexity"].get<double>(), 200.0);  // a trained model on Genesis 1
  EXPECT_EQ(j["stride"], 8);
  EXPECT_GT(j["windows"].get<int>(), 1);

  const auto missing = test::run_cli(
      {"perplexity", "-m", test::default_model().string(), "-f", (dir / "nope.txt").string()});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("nope.txt"), std::string::npos) << missing.err;
  const auto stride = test::run_cli({"perplexity", "-m", test::default_model().string(), "-f",
                                     text.string(), "--ctx", "16", "--stride", "40"});
  EXPECT_NE(stride.exit_code, 0);
  EXPECT_NE(stride.err.find("--stride 40"), std::string::npos) << stride.err;
}

}  // namespace
}  // namespace ep
