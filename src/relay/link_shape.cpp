#include "relay/link_shape.h"

#include "core/error.h"

#include <charconv>
#include <cmath>
#include <string>
#include <utility>

namespace ep {

namespace {

// Splits "12.5MB" into 12.5 and "MB"; nullopt-like failure via ok = false.
std::pair<double, std::string_view> number_and_unit(std::string_view text, bool& ok) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  ok = ec == std::errc() && std::isfinite(value) && value >= 0;
  return {value, text.substr(size_t(end - text.data()))};
}

}  // namespace

std::chrono::nanoseconds LinkShape::serialisation(size_t bytes) const {
  if (bytes_per_second <= 0) return {};
  return std::chrono::nanoseconds(int64_t(double(bytes) / bytes_per_second * 1e9));
}

double parse_bandwidth(std::string_view text) {
  bool ok = false;
  const auto [value, unit] = number_and_unit(text, ok);
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"", 1.0 / 8}, {"bit", 1.0 / 8}, {"kbit", 1e3 / 8}, {"Mbit", 1e6 / 8}, {"Gbit", 1e9 / 8},
      {"B", 1},      {"kB", 1e3},      {"MB", 1e6},       {"GB", 1e9}};
  if (ok && value > 0) {
    for (const auto& [name, scale] : kUnits) {
      if (unit == name) return value * scale;
    }
  }
  fail(
      "bandwidth '{}': expected a positive number with bit, kbit, Mbit, Gbit (bits/s) or B, kB, "
      "MB, GB (bytes/s), e.g. 50Mbit",
      text);
}

std::chrono::microseconds parse_latency(std::string_view text) {
  bool ok = false;
  const auto [value, unit] = number_and_unit(text, ok);
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"us", 1}, {"ms", 1e3}, {"s", 1e6}};
  if (ok) {
    if (unit.empty() && value == 0) return {};
    for (const auto& [name, scale] : kUnits) {
      if (unit == name) return std::chrono::microseconds(int64_t(std::llround(value * scale)));
    }
  }
  fail("latency '{}': expected a non-negative number with us, ms or s, e.g. 20ms", text);
}

}  // namespace ep
