#include "cli/serve_service.h"

#include <fmt/core.h>

#include <thread>

namespace ep::cli {

int serve_until_stopped(http::Service& service, const StopSignals& signals, std::string_view name,
                        std::string_view details) {
  const int port = service.bind();
  fmt::print(stderr, "{}: listening on http://{}:{} ({})\n", name, service.host(), port, details);
  std::thread server([&] { service.serve(); });
  signals.wait();
  fmt::print(stderr, "{}: stopping\n", name);
  service.stop();
  server.join();
  return 0;
}

}  // namespace ep::cli
