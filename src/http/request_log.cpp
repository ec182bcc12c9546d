#include "http/request_log.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <random>

namespace ep::http {

RequestLog::RequestLog(std::FILE* out) : out_(out), next_(std::random_device{}()) {
  next_ <<= 32;  // ids of two runs of a service do not collide
}

std::string RequestLog::begin() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  // Requests whose answer never finished (the client vanished) leave an entry: drop old ones.
  if (started_.size() > 10000) {
    for (auto it = started_.begin(); it != started_.end();) {
      it = now - it->second > std::chrono::minutes(10) ? started_.erase(it) : std::next(it);
    }
  }
  std::string id = fmt::format("{:016x}", next_++);
  started_[id] = now;
  return id;
}

void RequestLog::finish(RequestRecord r) {
  const auto now = std::chrono::steady_clock::now();
  double ms = 0;
  std::lock_guard lock(mutex_);
  if (const auto it = started_.find(r.id); it != started_.end()) {
    ms = std::chrono::duration<double, std::milli>(now - it->second).count();
    started_.erase(it);
  }
  const nlohmann::json line = {
      {"ts",
       std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()},
      {"id", r.id.empty() ? "-" : r.id},
      {"tenant", r.tenant},
      {"method", r.method},
      {"route", r.route},
      {"status", r.status},
      {"bytes_in", r.bytes_in},
      {"bytes_out", r.bytes_out},
      {"ms", std::round(ms * 1000) / 1000}};
  // One write a line: lines of concurrent requests never interleave.
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
}

}  // namespace ep::http
