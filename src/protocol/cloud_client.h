// A typed client for the cloud's prompt endpoints (docs/cloud-api.md): register, describe, list
// and delete cloud prompts. The KV stream itself is fetched by CloudKvFetch (kv_fetch.h). Every
// failure is a CloudError of one kind.
#pragma once

#include "http/tls.h"
#include "protocol/cloud_error.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace httplib {
class Client;
enum class Error;
}  // namespace httplib

namespace ep {

struct CloudConnection {
  std::string base_url;  // "https://host:port" (or "http://host:port")
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds read_timeout{30};
  std::string admin_token;     // sent as a bearer token when not empty
  http::TlsClientOptions tls;  // for https:// URLs: the CA to verify against, a client certificate
};

// An HTTP client for the connection's URL: verifies an https:// server's certificate (and host
// name) against tls.ca_file or the system roots, presents tls.cert_file if set, and sends the
// bearer token. Throws CloudError (Unreachable) for a URL it cannot use.
std::unique_ptr<httplib::Client> open_cloud_client(const CloudConnection& c);
// "cloud unreachable at URL: ..." with what a TLS failure means (e.g. the certificate is not
// signed by the CA the edge trusts).
std::string describe_connection_error(const CloudConnection& c, httplib::Error error);

// A cloud prompt as the cloud describes it.
struct CloudPromptInfo {
  std::string id;
  uint64_t version = 0;
  uint64_t n_tokens = 0;
  std::string fingerprint;  // of the model that computes its KV
  std::string chat_template;
  std::string state;  // "computing", "ready" or "failed"
  uint64_t kv_bytes = 0;
  std::string etag;  // the ETag of the description (version and content), when it came with one
};

// What to register: the system text (tokenised by the cloud in `chat_template`'s system part),
// or token ids used as given.
struct CloudPromptSpec {
  std::string text;
  std::optional<std::vector<int32_t>> tokens;
  std::string chat_template = "none";
};

class CloudClient {
 public:
  explicit CloudClient(CloudConnection connection);

  const CloudConnection& connection() const { return connection_; }

  CloudPromptInfo prompt(const std::string& id) const;  // GET /v1/cloud-prompts/ID
  // The same with If-None-Match: nullopt when the cloud answers 304 (the prompt is still the one
  // `etag` names), else the current description (its etag set).
  std::optional<CloudPromptInfo> prompt_if_changed(const std::string& id,
                                                   const std::string& etag) const;
  std::vector<CloudPromptInfo> prompts() const;  // GET /v1/cloud-prompts
  CloudPromptInfo put_prompt(const std::string& id, const CloudPromptSpec& spec) const;
  void delete_prompt(const std::string& id) const;

 private:
  CloudConnection connection_;
};

// "http://host:port/" -> "http://host:port".
std::string strip_trailing_slashes(std::string url);

}  // namespace ep
