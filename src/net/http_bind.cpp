#include "net/http_bind.h"

#include "core/error.h"

#include <httplib.h>

namespace ep {

int bind_http_server(httplib::Server& server, const std::string& host, int port) {
  if (port == 0) {
    const int bound = server.bind_to_any_port(host);
    if (bound < 0) fail("cannot listen on {}", host);
    return bound;
  }
  if (!server.bind_to_port(host, port)) {
    fail("cannot listen on {}:{} (in use or not permitted)", host, port);
  }
  return port;
}

}  // namespace ep
