// Certificates for the TLS tests, made at run time with the `openssl` command (nothing
// long-lived is kept): a CA, a server certificate it signed for 127.0.0.1 / localhost, a client
// certificate it signed, and a second CA that signed nothing of these.
#pragma once

#include "test_util.h"

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace ep::test {

struct TestPki {
  std::filesystem::path ca, server_cert, server_key, client_cert, client_key, other_ca;
};

inline void openssl(const std::vector<std::string>& args) {
  const CommandResult r = run_program("/usr/bin/openssl", args);
  if (r.exit_code != 0) throw std::runtime_error("openssl failed: " + r.err);
}

// Writes the files into `dir` (P-256 keys: quick to make).
inline TestPki make_test_pki(const std::filesystem::path& dir) {
  const auto p = [&](const char* name) { return (dir / name).string(); };
  const auto make_ca = [&](const char* name, const char* cn) {
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", p(name) + std::string(".key"), "-out", p(name) + std::string(".pem"),
             "-days", "2", "-subj", std::string("/CN=") + cn});
  };
  const auto make_leaf = [&](const std::string& name, const char* cn, const char* ext) {
    write_file(dir / (name + ".ext"), ext);
    openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             p("") + name + ".key", "-out", p("") + name + ".csr", "-subj",
             std::string("/CN=") + cn});
    openssl({"x509", "-req", "-in", p("") + name + ".csr", "-CA", p("ca.pem"), "-CAkey",
             p("ca.key"), "-set_serial", name == "server" ? "1" : "2", "-days", "2", "-out",
             p("") + name + ".pem", "-extfile", p("") + name + ".ext"});
  };
  make_ca("ca", "EdgePrompt test CA");
  make_ca("other-ca", "Another CA");
  make_leaf("server", "127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  make_leaf("client", "edge-1", "extendedKeyUsage=clientAuth\n");
  return {dir / "ca.pem",     dir / "server.pem", dir / "server.key",
          dir / "client.pem", dir / "client.key", dir / "other-ca.pem"};
}

}  // namespace ep::test
