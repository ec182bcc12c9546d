#include "cli/listen_address.h"

#include "core/error.h"

#include <charconv>
#include <csignal>

namespace ep::cli {

std::pair<std::string, int> parse_listen_address(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) fail("--listen '{}': expected HOST:PORT", text);
  std::string host = text.substr(0, colon);
  if (host.empty()) host = "127.0.0.1";
  int port = -1;
  const char* b = text.data() + colon + 1;
  const char* e = text.data() + text.size();
  const auto [end, ec] = std::from_chars(b, e, port);
  if (ec != std::errc() || end != e || port < 0 || port > 65535) {
    fail("--listen '{}': port must be a number from 0 to 65535", text);
  }
  return {host, port};
}

namespace {
sigset_t stop_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

StopSignals::StopSignals() {
  const sigset_t set = stop_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void StopSignals::wait() const {
  const sigset_t set = stop_set();
  int sig = 0;
  sigwait(&set, &sig);
}

}  // namespace ep::cli
