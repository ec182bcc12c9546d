// The services' request log: one JSON line a request (id, tenant, method, route, status, bytes
// in and out, milliseconds) on stderr or in --log-file. The id is also sent back to the client
// as X-Request-Id, so a user's report can be found in the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

namespace ep::http {

struct RequestRecord {
  std::string id, tenant, method, route;
  int status = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
};

class RequestLog {
 public:
  // `out` stays open for the log's life (the caller's: stderr or a file it opened).
  explicit RequestLog(std::FILE* out);
  // A new request: its id (the time it started is kept until finish()).
  std::string begin();
  // Writes the request's line (ms counted from begin() of its id; 0 for an unknown id).
  void finish(RequestRecord r);

 private:
  std::FILE* out_;
  std::mutex mutex_;
  uint64_t next_;
  std::map<std::string, std::chrono::steady_clock::time_point> started_;
};

}  // namespace ep::http
