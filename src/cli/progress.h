// A progress bar on stderr when it is a terminal; silent when piped or redirected.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ep::cli {

class ProgressBar {
 public:
  // `unit`: "MB" shows done/total in megabytes; any other text shows the raw counts in that unit.
  explicit ProgressBar(std::string label, std::string unit = "MB");
  ~ProgressBar();
  void update(uint64_t done, uint64_t total);

 private:
  std::string label_, unit_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace ep::cli
