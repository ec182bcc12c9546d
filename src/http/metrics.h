// The metrics a service exposes on GET /metrics, in the Prometheus text format (version 0.0.4).
// Each service registers its metrics once, at start; the request path only adds to them.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ep::http {

// A monotonic count (requests, bytes) or sum (seconds).
class Counter {
 public:
  void add(double n = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down (streams in progress).
class Gauge {
 public:
  void add(double n);
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into buckets of upper bounds (latencies, batch sizes).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);  // ascending; +Inf is implied
  void observe(double v);
  std::string render(const std::string& name) const;  // _bucket{le=...}, _sum, _count lines

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last: +Inf
  Counter sum_;
  std::atomic<uint64_t> count_{0};
};

class MetricsRegistry {
 public:
  // Every name is `prefix` + the name given ("edgeprompt_edge_" + "requests_total").
  explicit MetricsRegistry(std::string prefix) : prefix_(std::move(prefix)) {}
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The references stay valid for the registry's lifetime.
  Counter& counter(const std::string& name, const std::string& help);
  Gauge& gauge(const std::string& name, const std::string& help);
  Histogram& histogram(const std::string& name, const std::string& help,
                       std::vector<double> bounds);
  // A gauge read when scraped (cache sizes, prompts registered).
  void gauge(const std::string& name, const std::string& help, std::function<double()> read);
  // A count kept elsewhere (the connection loop's), read when scraped.
  void counter(const std::string& name, const std::string& help, std::function<double()> read);

  std::string render() const;
  static constexpr const char* kContentType = "text/plain; version=0.0.4";

 private:
  struct Metric {
    std::string name, help, type;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
    std::function<double()> read;
  };
  Metric& add(const std::string& name, const std::string& help, const char* type);

  std::string prefix_;
  mutable std::mutex mutex_;
  std::deque<Counter> counters_;  // deques: growing never moves what references point at
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
  std::deque<Metric> metrics_;
};

}  // namespace ep::http
