#include "cli/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>

namespace ep::cli {

ProgressBar::ProgressBar(std::string label, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      enabled_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

ProgressBar::~ProgressBar() {
  if (drawn_) fmt::print(stderr, "\n");
}

void ProgressBar::update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  constexpr int kWidth = 40;
  const double frac = double(done) / double(total);
  const int filled = int(frac * kWidth);
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double scale = unit_ == "MB" ? 1e6 : 1.0;
  fmt::print(stderr, "\r{} [{}{}] {:5.1f}% {:.0f}/{:.0f} {} {:.1f}s", label_,
             std::string(size_t(filled), '#'), std::string(size_t(kWidth - filled), ' '),
             100.0 * frac, double(done) / scale, double(total) / scale, unit_, secs);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace ep::cli
