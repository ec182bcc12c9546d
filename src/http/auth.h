// Who a request comes from: the bearer tokens of an auth file (--auth-file), each naming a tenant
// and a role. The file holds only SHA-256 hashes of the tokens, so a copy of it grants nothing;
// a presented token is hashed and compared with every entry in constant time.
//
//   # tenant  role    sha-256 of the token (hex: printf %s TOKEN | sha256sum)
//   acme      admin   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//   acme      edge    ...
//   acme      client  ...
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ep::http {

// admin: registers, deletes and reads its tenant's prompts; edge: reads them (metadata and KV)
// and completes; client: completions only.
enum class Role { Admin, Edge, Client };
std::string_view role_name(Role role);

struct Principal {
  std::string tenant;
  Role role = Role::Client;
};

using TokenHash = std::array<uint8_t, 32>;
TokenHash hash_token(std::string_view token);            // SHA-256 (OpenSSL EVP)
bool same_hash(const TokenHash& a, const TokenHash& b);  // constant time (CRYPTO_memcmp)

// A tenant name as auth files and prompt ids may carry it: [A-Za-z0-9._-]{1,64}.
bool valid_tenant(std::string_view tenant);

class AuthTable {
 public:
  // Parses an auth file's text: one entry a line (tenant, role, 64 hex digits), blank lines and
  // '#' comments ignored. Throws ep::Error naming the line of the first malformed entry, a
  // repeated hash, or a file without entries.
  static AuthTable parse(std::string_view text);
  static AuthTable load(const std::string& path);

  // The principal of an Authorization header ("Bearer TOKEN"), or nullopt (missing, not a
  // bearer token, or unknown). Every entry is compared, whichever matches.
  std::optional<Principal> authenticate(std::string_view authorization) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Principal who;
    TokenHash hash;
  };
  std::vector<Entry> entries_;
};

// A secret for a service's own use, never from argv (visible in `ps`): the first line of
// `file`, else the environment variable `env`; "" when neither is set. Throws ep::Error when the
// file cannot be read or is empty.
std::string read_secret(const std::string& file, const char* env);

}  // namespace ep::http
