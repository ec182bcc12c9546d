// A request rate per tenant (token buckets): each tenant may send `burst` requests at once and
// `rate` a second on average; one more is refused with the seconds until it would be allowed
// (429 with Retry-After), and other tenants are not slowed by it.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace ep::http {

class TenantRateLimit {
 public:
  TenantRateLimit(double rate_per_s, double burst);
  // nullopt: allowed (and counted); else the whole seconds (at least 1) to wait.
  std::optional<int> acquire(const std::string& tenant);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  double rate_, burst_;
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace ep::http
