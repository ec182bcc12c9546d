#include "http/metrics.h"

#include "core/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ep::http {
namespace {

// Integers as integers ("7", not "7.0"), everything else in the shortest exact form.
std::string format_value(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15) {
    return fmt::format("{}", int64_t(v));
  }
  return fmt::format("{}", v);
}

}  // namespace

void Counter::add(double n) {
  double old = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(old, old + n, std::memory_order_relaxed)) {
  }
}

void Gauge::add(double n) {
  double old = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(old, old + n, std::memory_order_relaxed)) {
  }
}

MetricsRegistry::Metric& MetricsRegistry::add(const std::string& name, const std::string& help,
                                              const char* type) {
  for (const Metric& m : metrics_) {
    if (m.name == prefix_ + name) fail("metric {}{} registered twice", prefix_, name);
  }
  metrics_.push_back({prefix_ + name, help, type, nullptr, nullptr, nullptr, {}});
  return metrics_.back();
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help) {
  std::lock_guard lock(mutex_);
  Metric& m = add(name, help, "counter");
  m.counter = &counters_.emplace_back();
  return *m.counter;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help) {
  std::lock_guard lock(mutex_);
  Metric& m = add(name, help, "gauge");
  m.gauge = &gauges_.emplace_back();
  return *m.gauge;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i + 1 < bounds_.size(); ++i) {
    if (!(bounds_[i] < bounds_[i + 1])) fail("histogram bounds must ascend");
  }
}

void Histogram::observe(double v) {
  const size_t b = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[b].fetch_add(1, std::memory_order_relaxed);
  sum_.add(v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::string Histogram::render(const std::string& name) const {
  std::string out;
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    const std::string le = i < bounds_.size() ? format_value(bounds_[i]) : "+Inf";
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, le, cumulative);
  }
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, format_value(sum_.value()), name,
                     count_.load(std::memory_order_relaxed));
  return out;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  Metric& m = add(name, help, "histogram");
  m.histogram = &histograms_.emplace_back(std::move(bounds));
  return *m.histogram;
}

void MetricsRegistry::gauge(const std::string& name, const std::string& help,
                            std::function<double()> read) {
  std::lock_guard lock(mutex_);
  add(name, help, "gauge").read = std::move(read);
}

void MetricsRegistry::counter(const std::string& name, const std::string& help,
                              std::function<double()> read) {
  std::lock_guard lock(mutex_);
  add(name, help, "counter").read = std::move(read);
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const Metric& m : metrics_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", m.name, m.help, m.name, m.type);
    if (m.histogram) {
      out += m.histogram->render(m.name);
      continue;
    }
    const double v = m.counter ? m.counter->value() : m.gauge ? m.gauge->value() : m.read();
    out += fmt::format("{} {}\n", m.name, format_value(v));
  }
  return out;
}

}  // namespace ep::http
