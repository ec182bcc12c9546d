// The cloud prompts' KV as the relay mode attends it: decoded once per prompt version from the
// very stream the edges receive (the same bits, so a request answers the same on the cloud and
// on an edge), and shared by every request that names the prompt.
#pragma once

#include "cloud/prompt_store.h"
#include "runtime/kv_segment.h"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace ep {

class RelaySegments {
 public:
  // The decoded KV of `prompt`, waiting up to `timeout` for its prefill to finish. Throws
  // http::HttpError: Unavailable when it is still computing after that, Internal when its
  // prefill failed.
  std::shared_ptr<const KvSegment> get(const CloudPrompt& prompt, std::chrono::seconds timeout);
  // The prompt was deleted or replaced.
  void forget(const std::string& tenant, const std::string& id);

 private:
  std::mutex mutex_;
  std::map<std::string, std::pair<uint64_t, std::shared_ptr<const KvSegment>>> by_id_;
};

}  // namespace ep
