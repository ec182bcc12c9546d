// Sampling: each filter's effect on known logits, penalties, reproducibility by seed, the drawn
// frequencies against the distribution; stop strings while streaming.
#include "runtime/sampler.h"
#include "core/error.h"
#include "runtime/stop_strings.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ep {
namespace {

// No filters: the plain softmax at temperature 1.
SamplerParams plain() {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

// Logits whose softmax is exactly {0.5, 0.3, 0.15, 0.05}.
const std::vector<float> kLogits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                    std::log(0.05f)};

void expect_probs(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "token " << i;
}

TEST(Sampler, GreedyIsArgmax) {
  SamplerParams p = plain();
  p.temperature = 0.0f;
  Sampler s(p);
  const std::vector<float> logits = {0.1f, 3.0f, -2.0f, 2.9f};
  EXPECT_EQ(s.sample(logits), 1);
  expect_probs(s.distribution(logits), {0, 1, 0, 0});
}

TEST(Sampler, TemperatureScalesTheSoftmax) {
  expect_probs(Sampler(plain()).distribution(kLogits), {0.5, 0.3, 0.15, 0.05});
  SamplerParams p = plain();
  p.temperature = 2.0f;  // softmax(l / 2): proportional to sqrt(p)
  const double z = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.15) + std::sqrt(0.05);
  expect_probs(Sampler(p).distribution(kLogits),
               {std::sqrt(0.5) / z, std::sqrt(0.3) / z, std::sqrt(0.15) / z, std::sqrt(0.05) / z});
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  SamplerParams p = plain();
  p.top_k = 2;
  expect_probs(Sampler(p).distribution(kLogits), {0.625, 0.375, 0, 0});
  p.top_k = 1;
  expect_probs(Sampler(p).distribution(kLogits), {1, 0, 0, 0});
}

TEST(Sampler, TopPKeepsTheShortestHeadReachingP) {
  SamplerParams p = plain();
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.8
  expect_probs(Sampler(p).distribution(kLogits), {0.625, 0.375, 0, 0});
  p.top_p = 0.9f;  // 0.8 < 0.9 <= 0.95
  expect_probs(Sampler(p).distribution(kLogits), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0});
  p.top_p = 0.1f;  // never empty
  expect_probs(Sampler(p).distribution(kLogits), {1, 0, 0, 0});
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheTop) {
  SamplerParams p = plain();
  p.min_p = 0.2f;  // floor 0.1: 0.05 goes
  expect_probs(Sampler(p).distribution(kLogits), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0});
  p.min_p = 0.61f;  // floor 0.305: only the top stays
  expect_probs(Sampler(p).distribution(kLogits), {1, 0, 0, 0});
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplerParams p = plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 4.0f;
  Sampler s(p);
  const std::vector<float> logits = {4.0f, 2.0f, -1.0f};
  EXPECT_EQ(s.sample(logits), 0);
  s.accept(0);
  s.accept(0);                     // penalised once however often it was seen
  EXPECT_EQ(s.sample(logits), 1);  // 4 / 4 = 1 < 2
  SamplerParams q = plain();
  q.repeat_penalty = 2.0f;
  Sampler t(q);
  t.accept(0);
  t.accept(2);
  // Logits become {2, 2, -2}.
  const double z = 2 * std::exp(2.0) + std::exp(-2.0);
  expect_probs(t.distribution(logits), {std::exp(2.0) / z, std::exp(2.0) / z, std::exp(-2.0) / z});
}

TEST(Sampler, PresencePenaltySubtractsFromSeenTokensWithinTheWindow) {
  SamplerParams p = plain();
  p.temperature = 0.0f;
  p.presence_penalty = 1.5f;
  p.penalty_last_n = 1;
  Sampler s(p);
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f};
  s.accept(1);
  s.accept(0);  // only the last token is in the window: 0 drops to 1.5
  EXPECT_EQ(s.sample(logits), 1);
  s.accept(2);  // 0 left the window
  EXPECT_EQ(s.sample(logits), 0);
}

std::vector<int32_t> draws(uint64_t seed, int n) {
  SamplerParams p = plain();
  p.seed = seed;
  Sampler s(p);
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i)));
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.sample(logits));
  return out;
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  EXPECT_EQ(draws(42, 64), draws(42, 64));
  EXPECT_NE(draws(42, 64), draws(43, 64));
}

TEST(Sampler, DrawnFrequenciesFollowTheDistribution) {
  SamplerParams p = plain();
  p.top_k = 3;
  p.seed = 7;
  Sampler s(p);
  const std::vector<float> want = s.distribution(kLogits);
  std::vector<int> count(kLogits.size());
  constexpr int kDraws = 40000;
  for (int i = 0; i < kDraws; ++i) ++count[size_t(s.sample(kLogits))];
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(double(count[i]) / kDraws, want[i], 0.01) << "token " << i;
  }
  EXPECT_EQ(count[3], 0);  // filtered by top-k: never drawn
}

TEST(Sampler, BadParametersAreRefused) {
  SamplerParams p = plain();
  p.top_p = 0.0f;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain();
  p.min_p = 1.5f;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain();
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain();
  p.temperature = NAN;
  EXPECT_THROW(Sampler{p}, Error);
}

TEST(StopStrings, OutputEndsBeforeTheStopStringWhicheverWayTheTextArrives) {
  StopStrings s({"STOP", "\n\n"});
  std::string out;
  for (const char* piece : {"Hel", "lo S", "T", "ill ST", "OP and more"}) out += s.push(piece);
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(out, "Hello STill ");
  EXPECT_EQ(s.push("x"), "");
}

TEST(StopStrings, HoldsBackOnlyWhatCouldStartAStopString) {
  StopStrings s({"<end>"});
  EXPECT_EQ(s.push("abc<e"), "abc");  // "<e" may begin "<end>"
  EXPECT_EQ(s.push("x"), "<ex");
  EXPECT_EQ(s.push("caf\xC3\xA9 <"), "caf\xC3\xA9 ");
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.flush(), "<");
  EXPECT_THROW(StopStrings({""}), Error);
  EXPECT_THROW(StopStrings({"\xFF"}), Error);
}

}  // namespace
}  // namespace ep
