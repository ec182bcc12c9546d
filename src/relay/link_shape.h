// An emulated network link for experiments on loopback: a bandwidth (serialisation time of each
// byte) and a one-way latency, applied to each direction of a relayed connection. Parsed from
// tc-like text: "50Mbit", "12.5MB" (bytes/s), "20ms", "0.5s".
#pragma once

#include <chrono>
#include <string_view>

namespace ep {

struct LinkShape {
  double bytes_per_second = 0;  // 0: unlimited
  std::chrono::microseconds latency{0};

  bool active() const { return bytes_per_second > 0 || latency.count() > 0; }
  // Time the link needs to put `bytes` on the wire.
  std::chrono::nanoseconds serialisation(size_t bytes) const;
};

// "100" (bit/s), "100kbit", "50Mbit", "1Gbit", "64kB", "12.5MB", "1GB" (k = 1000; B = bytes/s).
// Throws ep::Error naming the text when it is not a positive rate with a known unit.
double parse_bandwidth(std::string_view text);
// "20ms", "150us", "0.5s", "0" -> a non-negative duration; ep::Error otherwise.
std::chrono::microseconds parse_latency(std::string_view text);

}  // namespace ep
