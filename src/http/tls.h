// Transport security of both services: the server's certificate and key (and, for mutual TLS,
// the CA its clients' certificates must chain to), and what a client of the cloud verifies and
// presents. A service serves plain HTTP only when told to (--insecure-http).
#pragma once

#include <string>

namespace ep::http {

struct TlsServerOptions {
  std::string cert_file;       // PEM certificate chain; empty: plain HTTP
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // not empty: clients must present a certificate it signed (mTLS)
  bool enabled() const { return !cert_file.empty(); }
};

struct TlsClientOptions {
  std::string ca_file;    // CAs the server's certificate must chain to; empty: the system roots
  std::string cert_file;  // a client certificate to present (mTLS); empty: none
  std::string key_file;
};

// Checks the options a service was started with: a certificate needs its key (and the reverse),
// the files must be readable, and without TLS `insecure_http` must be set (which also allows a
// service plain-HTTP connections of its own, e.g. the edge's to the cloud). Throws ep::Error with
// one line that names the flag to give; `service` names the command ("cloud", "edge").
void check_server_transport(const TlsServerOptions& tls, bool insecure_http,
                            const std::string& service);

// The same for a client: a certificate needs its key, the files must be readable.
void check_client_tls(const TlsClientOptions& tls);

// The newest OpenSSL error queued by this thread, as text (and clears the queue); "" if none.
std::string take_openssl_error();

}  // namespace ep::http
