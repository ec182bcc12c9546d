#include "http/auth.h"

#include "core/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ep::http {
namespace {

std::optional<Role> role_of(std::string_view name) {
  if (name == "admin") return Role::Admin;
  if (name == "edge") return Role::Edge;
  if (name == "client") return Role::Client;
  return std::nullopt;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<TokenHash> parse_hash(std::string_view hex) {
  TokenHash h{};
  if (hex.size() != 2 * h.size()) return std::nullopt;
  for (size_t i = 0; i < h.size(); ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    h[i] = uint8_t(hi * 16 + lo);
  }
  return h;
}

// The whitespace-separated fields of a line.
std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::string_view role_name(Role role) {
  switch (role) {
    case Role::Admin:
      return "admin";
    case Role::Edge:
      return "edge";
    case Role::Client:
      return "client";
  }
  return "?";
}

TokenHash hash_token(std::string_view token) {
  TokenHash h{};
  unsigned int n = 0;
  if (EVP_Digest(token.data(), token.size(), h.data(), &n, EVP_sha256(), nullptr) != 1 ||
      n != h.size()) {
    ep::fail("SHA-256 failed (OpenSSL)");
  }
  return h;
}

bool same_hash(const TokenHash& a, const TokenHash& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool valid_tenant(std::string_view t) {
  if (t.empty() || t.size() > 64) return false;
  for (const char c : t) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

AuthTable AuthTable::parse(std::string_view text) {
  AuthTable t;
  size_t line_no = 0, pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    const auto f = fields_of(line);
    if (f.empty()) continue;
    if (f.size() != 3) {
      ep::fail("auth file line {}: expected 'TENANT ROLE SHA256-HEX', got {} field(s)", line_no,
               f.size());
    }
    if (!valid_tenant(f[0])) {
      ep::fail("auth file line {}: tenant must be 1-64 of A-Z a-z 0-9 . _ -", line_no);
    }
    const auto role = role_of(f[1]);
    if (!role) ep::fail("auth file line {}: role must be admin, edge or client", line_no);
    const auto h = parse_hash(f[2]);
    if (!h) {
      ep::fail("auth file line {}: the token hash must be 64 hex digits (SHA-256)", line_no);
    }
    for (const Entry& e : t.entries_) {
      if (same_hash(e.hash, *h)) ep::fail("auth file line {}: a token listed twice", line_no);
    }
    t.entries_.push_back({{std::string(f[0]), *role}, *h});
  }
  if (t.entries_.empty()) ep::fail("auth file: no entries (TENANT ROLE SHA256-HEX per line)");
  return t;
}

AuthTable AuthTable::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) ep::fail("--auth-file {}: cannot read the file", path);
  std::ostringstream text;
  text << f.rdbuf();
  try {
    return parse(text.str());
  } catch (const Error& e) {
    ep::fail("--auth-file {}: {}", path, e.what());
  }
}

std::optional<Principal> AuthTable::authenticate(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.substr(0, kBearer.size()) != kBearer) return std::nullopt;
  const TokenHash presented = hash_token(authorization.substr(kBearer.size()));
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {
    if (same_hash(e.hash, presented)) found = &e;  // no early exit: the same work for any token
  }
  if (!found) return std::nullopt;
  return found->who;
}

std::string read_secret(const std::string& file, const char* env) {
  if (!file.empty()) {
    std::ifstream f(file);
    if (!f) ep::fail("{}: cannot read the token file", file);
    std::string line;
    std::getline(f, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) ep::fail("{}: the token file's first line is empty", file);
    return line;
  }
  const char* value = std::getenv(env);
  return value ? std::string(value) : std::string();
}

}  // namespace ep::http
