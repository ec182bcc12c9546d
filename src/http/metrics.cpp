#include "http/metrics.h"

#include "core/error.h"

#include <fmt/format.h>

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
  metrics_.push_back({prefix_ + name, help, type, nullptr, nullptr, {}});
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

void MetricsRegistry::gauge(const std::string& name, const std::string& help,
                            std::function<double()> read) {
  std::lock_guard lock(mutex_);
  add(name, help, "gauge").read = std::move(read);
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const Metric& m : metrics_) {
    const double v = m.counter ? m.counter->value() : m.gauge ? m.gauge->value() : m.read();
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", m.name, m.help, m.name, m.type,
                       m.name, format_value(v));
  }
  return out;
}

}  // namespace ep::http
