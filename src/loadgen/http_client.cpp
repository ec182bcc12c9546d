#include "loadgen/http_client.h"

#include "core/error.h"

namespace ep::loadgen {

std::unique_ptr<httplib::Client> make_client(const Target& target, double read_timeout_s) {
  auto c = std::make_unique<httplib::Client>(split_base_url(target.base_url).first);
  c->set_connection_timeout(30, 0);
  const auto us = int64_t(read_timeout_s * 1e6);
  c->set_read_timeout(us / 1000000, us % 1000000);
  c->set_write_timeout(us / 1000000, us % 1000000);
  if (!target.ca_cert.empty()) {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    c->set_ca_cert_path(target.ca_cert);
#else
    fail("--ca-cert: this build has no TLS support");
#endif
  }
  return c;
}

}  // namespace ep::loadgen
