// The services' metrics (http/metrics.h): counters, gauges and gauges read when scraped, rendered
// in the Prometheus text format with the registry's prefix, and counted exactly under
// concurrent adds.
#include "http/metrics.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace ep {
namespace {

// The value line of `name` in a rendering ("" if none).
std::string value_of(const std::string& rendered, const std::string& name) {
  const std::string start = name + " ";
  for (size_t pos = 0; pos < rendered.size();) {
    const size_t end = rendered.find('\n', pos);
    const std::string line = rendered.substr(pos, end - pos);
    if (line.rfind(start, 0) == 0) return line.substr(start.size());
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return "";
}

TEST(Metrics, RendersHelpTypeAndValueOfEachKindWithThePrefix) {
  http::MetricsRegistry m("edgeprompt_test_");
  http::Counter& requests = m.counter("requests_total", "Requests served.");
  http::Gauge& streams = m.gauge("active_streams", "KV streams in progress.");
  double cache_bytes = 4096;
  m.gauge("cache_bytes", "Bytes in the KV cache.", [&] { return cache_bytes; });

  requests.add(3);
  streams.set(2);
  EXPECT_EQ(m.render(),
            "# HELP edgeprompt_test_requests_total Requests served.\n"
            "# TYPE edgeprompt_test_requests_total counter\n"
            "edgeprompt_test_requests_total 3\n"
            "# HELP edgeprompt_test_active_streams KV streams in progress.\n"
            "# TYPE edgeprompt_test_active_streams gauge\n"
            "edgeprompt_test_active_streams 2\n"
            "# HELP edgeprompt_test_cache_bytes Bytes in the KV cache.\n"
            "# TYPE edgeprompt_test_cache_bytes gauge\n"
            "edgeprompt_test_cache_bytes 4096\n");

  // The read-at-scrape gauge is read again at every render; the others keep their values.
  cache_bytes = 0;
  streams.add(-1);
  const std::string again = m.render();
  EXPECT_EQ(value_of(again, "edgeprompt_test_cache_bytes"), "0");
  EXPECT_EQ(value_of(again, "edgeprompt_test_active_streams"), "1");
  EXPECT_EQ(value_of(again, "edgeprompt_test_requests_total"), "3");
  EXPECT_STREQ(http::MetricsRegistry::kContentType, "text/plain; version=0.0.4");
}

TEST(Metrics, IntegersPrintAsIntegersAndFractionsExactly) {
  http::MetricsRegistry m("p_");
  http::Counter& c = m.counter("c", "c");
  http::Gauge& g = m.gauge("g", "g");
  EXPECT_EQ(value_of(m.render(), "p_c"), "0");
  c.add();
  c.add();
  c.add();
  EXPECT_EQ(c.value(), 3.0);
  EXPECT_EQ(value_of(m.render(), "p_c"), "3");  // not "3.0" or "3.000000"
  c.add(0.25);
  EXPECT_EQ(value_of(m.render(), "p_c"), "3.25");
  const struct {
    double value;
    const char* text;
  } cases[] = {
      {-2, "-2"},
      {0.1, "0.1"},
      {0.1 + 0.2, "0.30000000000000004"},  // the shortest form that reads back exactly
      {1.0 / 3.0, "0.3333333333333333"},
      {12345678901234.0, "12345678901234"},
      {-0.5, "-0.5"},
  };
  for (const auto& k : cases) {
    g.set(k.value);
    EXPECT_EQ(value_of(m.render(), "p_g"), k.text) << k.text;
    EXPECT_EQ(std::stod(value_of(m.render(), "p_g")), k.value) << k.text;
  }
}

TEST(Metrics, ADuplicateNameIsRefused) {
  http::MetricsRegistry m("edgeprompt_edge_");
  m.counter("requests_total", "Requests.");
  try {
    m.gauge("requests_total", "Again.");
    FAIL() << "registered twice";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("edgeprompt_edge_requests_total"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(m.counter("requests_total", "Again."), Error);
  EXPECT_THROW(m.gauge("requests_total", "Again.", [] { return 1.0; }), Error);
  // The refused registrations added nothing.
  const std::string r = m.render();
  EXPECT_EQ(r.find("Again."), std::string::npos);
  EXPECT_EQ(r.find("# TYPE edgeprompt_edge_requests_total counter"),
            r.rfind("# TYPE edgeprompt_edge_requests_total"));
  // The same name in another registry (another prefix, or the same) is fine.
  http::MetricsRegistry other("edgeprompt_edge_");
  EXPECT_NO_THROW(other.counter("requests_total", "Requests."));
}

TEST(Metrics, ReferencesStayValidAsMoreMetricsAreRegistered) {
  http::MetricsRegistry m("p_");
  http::Counter& first = m.counter("first", "first");
  http::Gauge& first_gauge = m.gauge("first_gauge", "first");
  for (int i = 0; i < 200; ++i) {
    m.counter("c" + std::to_string(i), "more");
    m.gauge("g" + std::to_string(i), "more");
  }
  first.add(5);
  first_gauge.set(7);
  const std::string r = m.render();
  EXPECT_EQ(value_of(r, "p_first"), "5");
  EXPECT_EQ(value_of(r, "p_first_gauge"), "7");
  EXPECT_EQ(value_of(r, "p_c199"), "0");
}

TEST(Metrics, CounterAddsFromFourThreadsAreExact) {
  http::MetricsRegistry m("p_");
  http::Counter& counter = m.counter("adds_total", "Adds.");
  http::Counter& bytes = m.counter("bytes_total", "Bytes.");
  http::Gauge& gauge = m.gauge("level", "Up and down.");
  constexpr int kThreads = 4, kAdds = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAdds; ++i) {
        counter.add();
        bytes.add(0.5);  // exact in binary, so the sum must be exact too
        gauge.add(1);
        gauge.add(-1);
      }
    });
  }
  std::string during;
  for (int i = 0; i < 20; ++i) during = m.render();  // rendering while adding is safe
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(during.empty());
  EXPECT_EQ(counter.value(), double(kThreads * kAdds));
  EXPECT_EQ(bytes.value(), kThreads * kAdds * 0.5);
  EXPECT_EQ(gauge.value(), 0.0);
  const std::string r = m.render();
  EXPECT_EQ(value_of(r, "p_adds_total"), "40000");
  EXPECT_EQ(value_of(r, "p_bytes_total"), "20000");
  EXPECT_EQ(value_of(r, "p_level"), "0");
}

TEST(Metrics, HistogramsCountIntoCumulativeBucketsWithSumAndCount) {
  http::MetricsRegistry m("p_");
  http::Histogram& h = m.histogram("latency_seconds", "How long.", {0.1, 1, 10});
  for (const double v : {0.05, 0.1, 0.5, 2.0, 50.0}) h.observe(v);
  const std::string r = m.render();
  EXPECT_NE(r.find("# TYPE p_latency_seconds histogram\n"), std::string::npos) << r;
  EXPECT_NE(r.find("p_latency_seconds_bucket{le=\"0.1\"} 2\n"), std::string::npos) << r;
  EXPECT_NE(r.find("p_latency_seconds_bucket{le=\"1\"} 3\n"), std::string::npos) << r;
  EXPECT_NE(r.find("p_latency_seconds_bucket{le=\"10\"} 4\n"), std::string::npos) << r;
  EXPECT_NE(r.find("p_latency_seconds_bucket{le=\"+Inf\"} 5\n"), std::string::npos) << r;
  EXPECT_NE(r.find("p_latency_seconds_sum 52.65\n"), std::string::npos) << r;
  EXPECT_NE(r.find("p_latency_seconds_count 5\n"), std::string::npos) << r;
  EXPECT_THROW(http::Histogram({1, 1}), Error);
}

}  // namespace
}  // namespace ep
