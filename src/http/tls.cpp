#include "http/tls.h"

#include "core/error.h"

#include <openssl/err.h>

#include <fstream>

namespace ep::http {
namespace {

void require_readable(const std::string& path, const char* flag) {
  if (path.empty()) return;
  std::ifstream f(path);
  if (!f) ep::fail("{} {}: cannot read the file", flag, path);
}

void require_pair(const std::string& cert, const std::string& key, const char* cert_flag,
                  const char* key_flag) {
  if (cert.empty() != key.empty()) {
    ep::fail("{} and {} go together: give both or neither", cert_flag, key_flag);
  }
}

}  // namespace

void check_server_transport(const TlsServerOptions& tls, bool insecure_http,
                            const std::string& service) {
  require_pair(tls.cert_file, tls.key_file, "--tls-cert", "--tls-key");
  if (!tls.enabled() && !tls.client_ca_file.empty()) {
    ep::fail(
        "--tls-client-ca needs --tls-cert and --tls-key (client certificates are a TLS feature)");
  }
  if (!tls.enabled() && !insecure_http) {
    ep::fail(
        "{}: refusing to serve without TLS: give --tls-cert FILE and --tls-key FILE, or "
        "--insecure-http to serve plain HTTP",
        service);
  }
  require_readable(tls.cert_file, "--tls-cert");
  require_readable(tls.key_file, "--tls-key");
  require_readable(tls.client_ca_file, "--tls-client-ca");
}

void check_client_tls(const TlsClientOptions& tls) {
  require_pair(tls.cert_file, tls.key_file, "--cloud-cert", "--cloud-key");
  require_readable(tls.ca_file, "--cloud-ca");
  require_readable(tls.cert_file, "--cloud-cert");
  require_readable(tls.key_file, "--cloud-key");
}

std::string take_openssl_error() {
  unsigned long last = 0;
  while (const unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return "";
  char text[256];
  ERR_error_string_n(last, text, sizeof text);
  return text;
}

}  // namespace ep::http
