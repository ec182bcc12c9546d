// How `edgeprompt cloud` and `edgeprompt edge` run their service: their transport flags (TLS, or
// plain HTTP only when asked for), bind, say where it listens, serve until SIGINT or SIGTERM, then
// stop cleanly.
#pragma once

#include "cli/listen_address.h"
#include "http/limits.h"
#include "http/service.h"
#include "http/tls.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string_view>

namespace ep::cli {

struct ServerTransport {
  http::TlsServerOptions tls;
  bool insecure_http = false;
  std::string log_file;     // the request log; empty: stderr
  http::HttpLimits limits;  // the service's defaults, then the flags'
};

// --tls-cert, --tls-key, --tls-client-ca, --insecure-http, --log-file, and the connection
// limits: --http-threads, --max-connections, --keep-alive-s, --max-body-bytes.
void add_server_transport_flags(CLI::App* app, ServerTransport& t);
// Refuses (ep::Error, one line) a service without TLS unless --insecure-http, and warns on stderr
// when it serves plain HTTP.
void check_server_transport(const ServerTransport& t, std::string_view name);

// Prints "<name>: listening on http(s)://HOST:PORT (<details>)" on stderr once bound (scripts and
// tests wait for that line). Throws ep::Error when the address cannot be bound.
// The request log's stream: --log-file opened for appending (ep::Error if it cannot be), else
// stderr. Closed when the returned holder dies.
std::shared_ptr<std::FILE> open_request_log(const ServerTransport& t);

int serve_until_stopped(http::Service& service, const StopSignals& signals, std::string_view name,
                        std::string_view details);

}  // namespace ep::cli
