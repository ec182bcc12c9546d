#include "http/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace ep::http {

TenantRateLimit::TenantRateLimit(double rate_per_s, double burst)
    : rate_(rate_per_s), burst_(std::max(1.0, burst)) {}

std::optional<int> TenantRateLimit::acquire(const std::string& tenant) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  auto [it, fresh] = buckets_.try_emplace(tenant, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh) {
    const double elapsed = std::chrono::duration<double>(now - b.at).count();
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.at = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  return std::max(1, int(std::ceil((1.0 - b.tokens) / rate_)));
}

}  // namespace ep::http
