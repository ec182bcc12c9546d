// An HTTP service's server: its limits (limits.h), its address, and serve/stop. Routes are
// registered on routes(); a handler that throws HttpError (or any exception) is answered with the
// OpenAI-shaped error body of its kind, and so is any request no route takes.
#pragma once

#include "http/limits.h"

#include <memory>
#include <string>

namespace httplib {
class Server;
}

namespace ep::http {

class HttpServer {
 public:
  explicit HttpServer(HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  httplib::Server& routes() { return *server_; }
  const HttpLimits& limits() const { return limits_; }

  // Binds to host:port (port 0: any free port); returns the bound port or throws ep::Error.
  int bind(const std::string& host, int port);
  void serve();  // until stop()
  void stop();

 private:
  HttpLimits limits_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace ep::http
