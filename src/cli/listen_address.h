// "HOST:PORT" parsing for --listen, and a wait for SIGINT/SIGTERM that servers use to stop.
#pragma once

#include <string>
#include <utility>

namespace ep::cli {

// "127.0.0.1:8080" -> {"127.0.0.1", 8080}; ":8080" means 127.0.0.1. Throws ep::Error.
std::pair<std::string, int> parse_listen_address(const std::string& text);

// Blocks SIGINT and SIGTERM in the calling thread (call before starting other threads, so they
// inherit the mask) and returns a function that waits for one of them.
class StopSignals {
 public:
  StopSignals();
  void wait() const;
};

}  // namespace ep::cli
