// The serving benchmark's arithmetic on hand-made records: percentiles as numpy computes them,
// TPOT, the throughputs and the goodput under each objective, and reproducible arrival times.
#include "loadgen/bench_metrics.h"
#include "core/error.h"
#include "loadgen/arrivals.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

namespace ep::loadgen {
namespace {

RequestRecord rec(size_t prompt, size_t out, double ttft, std::vector<double> itl, double e2el) {
  RequestRecord r;
  r.prompt_len = prompt;
  r.output_len = out;
  r.ttft = ttft;
  r.itl = std::move(itl);
  r.e2el = e2el;
  return r;
}

TEST(LoadgenMetrics, PercentileInterpolatesLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], 90) = 3.7; [10, 20, 30, 40, 50] at 99 = 49.6; median of even
  // count is the mean of the middle two.
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 90), 3.7);
  EXPECT_NEAR(percentile({10, 20, 30, 40, 50}, 99), 49.6, 1e-12);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
  EXPECT_DOUBLE_EQ(percentile({1, 2}, 0), 1);
  EXPECT_DOUBLE_EQ(percentile({1, 2}, 100), 2);
}

TEST(LoadgenMetrics, StatsAreMillisecondsWithPopulationStd) {
  const LatencyStats s = latency_stats({0.1, 0.2, 0.3, 0.4}, {90, 99});
  EXPECT_NEAR(s.mean_ms, 250, 1e-9);
  EXPECT_NEAR(s.median_ms, 250, 1e-9);
  EXPECT_NEAR(s.std_ms, std::sqrt(0.0125) * 1000, 1e-9);  // numpy.std, ddof 0
  EXPECT_NEAR(s.percentiles_ms.at(90), 370, 1e-9);
  EXPECT_NEAR(s.percentiles_ms.at(99), 397, 1e-9);
}

TEST(LoadgenMetrics, SummaryCountsOnlySuccessesAndComputesTpot) {
  std::vector<RequestRecord> rs;
  rs.push_back(rec(100, 11, 0.5, std::vector<double>(10, 0.1), 1.5));  // TPOT (1.5-0.5)/10 = 0.1
  rs.push_back(rec(50, 5, 0.2, {0.05, 0.05, 0.05, 0.05}, 0.4));        // TPOT 0.05
  rs.push_back(rec(30, 1, 0.3, {}, 0.3));                              // no TPOT
  RequestRecord bad = rec(999, 999, 9, {9}, 9);
  bad.error = "HTTP 500: boom";
  rs.push_back(bad);
  const Summary s = summarize(rs, 2.0, {}, {99});
  EXPECT_EQ(s.completed, 3u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.total_input_tokens, 180u);
  EXPECT_EQ(s.total_output_tokens, 17u);
  EXPECT_DOUBLE_EQ(s.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(s.output_throughput, 8.5);
  EXPECT_DOUBLE_EQ(s.total_token_throughput, 98.5);
  EXPECT_DOUBLE_EQ(s.request_goodput, 0);  // no objectives
  EXPECT_NEAR(s.tpot.mean_ms, 75, 1e-9);   // only the two requests with more than one token
  EXPECT_NEAR(s.ttft.mean_ms, 1000.0 / 3, 1e-9);
  EXPECT_NEAR(s.ttft.median_ms, 300, 1e-9);
  EXPECT_NEAR(s.e2el.percentiles_ms.at(99), (0.4 + (1.5 - 0.4) * 0.98) * 1000, 1e-9);
  // 14 inter-token latencies: ten of 0.1 s, four of 0.05 s.
  EXPECT_NEAR(s.itl.mean_ms, (10 * 100 + 4 * 50) / 14.0, 1e-9);
  EXPECT_NEAR(s.itl.median_ms, 100, 1e-9);
}

TEST(LoadgenMetrics, GoodputNeedsEveryObjective) {
  std::vector<RequestRecord> rs;
  rs.push_back(rec(10, 11, 0.5, {}, 1.5));   // ttft 500 ms, tpot 100 ms, e2el 1500 ms
  rs.push_back(rec(10, 5, 0.2, {}, 0.4));    // 200, 50, 400
  rs.push_back(rec(10, 1, 0.3, {}, 0.3));    // 300, (0), 300
  rs.push_back(rec(10, 3, 0.05, {}, 2.05));  // 50, 1000, 2050
  const auto goodput = [&](const std::vector<std::string>& items) {
    return summarize(rs, 2.0, parse_goodput(items), {}).request_goodput;
  };
  EXPECT_DOUBLE_EQ(goodput({"ttft:300"}), 3 / 2.0);  // an objective met exactly counts as met
  EXPECT_DOUBLE_EQ(goodput({"tpot:100"}), 3 / 2.0);  // a one-token answer's TPOT counts as 0
  EXPECT_DOUBLE_EQ(goodput({"e2el:400"}), 2 / 2.0);
  EXPECT_DOUBLE_EQ(goodput({"ttft:300", "tpot:50"}), 2 / 2.0);
  EXPECT_DOUBLE_EQ(goodput({"ttft:1", "tpot:1"}), 0);
}

TEST(LoadgenMetrics, GoodputParsingRefusesWhatItCannotRead) {
  EXPECT_THROW(parse_goodput({"latency:5"}), Error);
  EXPECT_THROW(parse_goodput({"ttft"}), Error);
  EXPECT_THROW(parse_goodput({"ttft:abc"}), Error);
  EXPECT_THROW(parse_goodput({"ttft:-1"}), Error);
  const GoodputSlo s = parse_goodput({"ttft:250.5", "e2el:3000"});
  EXPECT_DOUBLE_EQ(*s.ttft_ms, 250.5);
  EXPECT_FALSE(s.tpot_ms);
  EXPECT_DOUBLE_EQ(*s.e2el_ms, 3000);
}

TEST(LoadgenArrivals, SeededScheduleIsReproducibleWithTheRightMeanAndSpread) {
  const auto a = arrival_times(20000, 4.0, 1.0, 7);
  EXPECT_EQ(a, arrival_times(20000, 4.0, 1.0, 7));
  EXPECT_NE(a, arrival_times(20000, 4.0, 1.0, 8));
  ASSERT_TRUE(std::is_sorted(a.begin(), a.end()));
  std::vector<double> gaps(a.size());
  std::adjacent_difference(a.begin(), a.end(), gaps.begin());
  const auto cv2 = [](const std::vector<double>& g) {  // squared coefficient of variation
    const double m = std::accumulate(g.begin(), g.end(), 0.0) / double(g.size());
    double v = 0;
    for (double x : g) v += (x - m) * (x - m);
    return v / double(g.size()) / (m * m);
  };
  EXPECT_NEAR(a.back() / double(a.size()), 0.25, 0.01);  // mean gap 1 / rate
  EXPECT_NEAR(cv2(gaps), 1.0, 0.05);                     // exponential gaps: CV^2 = 1
  // Gamma shape k: CV^2 = 1/k, same mean.
  const auto b = arrival_times(20000, 4.0, 4.0, 7);
  std::vector<double> gb(b.size());
  std::adjacent_difference(b.begin(), b.end(), gb.begin());
  EXPECT_NEAR(b.back() / double(b.size()), 0.25, 0.01);
  EXPECT_NEAR(cv2(gb), 0.25, 0.02);
  EXPECT_EQ(arrival_times(5, INFINITY, 1.0, 1), std::vector<double>(5, 0.0));
  EXPECT_THROW(arrival_times(5, 0.0, 1.0, 1), Error);
  EXPECT_THROW(arrival_times(5, 1.0, 0.0, 1), Error);
}

}  // namespace
}  // namespace ep::loadgen
