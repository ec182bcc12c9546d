// What a network service is to the command that runs it: an address to bind, then serve until
// stopped. The cloud and the edge service both are one; each registers its routes on server().
#pragma once

#include "http/server.h"

#include <string>

namespace ep::http {

class Service {
 public:
  virtual ~Service() = default;
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds the socket (throws ep::Error if it cannot) and returns the bound port.
  int bind() { return port_ = server_.bind(host_, port_); }
  void serve() { server_.serve(); }  // until stop()
  void stop() { server_.stop(); }
  const std::string& host() const { return host_; }
  const char* scheme() const { return server_.scheme(); }  // "http" or "https"
  int port() const { return port_; }                       // the bound one once bind() returned

 protected:
  Service(std::string host, int port, HttpLimits limits, const TlsServerOptions& tls)
      : host_(std::move(host)), port_(port), server_(limits, tls) {}
  HttpServer& server() { return server_; }

 private:
  std::string host_;
  int port_;
  HttpServer server_;
};

}  // namespace ep::http
