// Where a request's cloud-prompt KV comes from: the edge's own cache when it holds the cloud's
// current version, else a stream from the cloud that the request computes against as it arrives
// (and that is cached once complete). Only the prompt's id crosses to the cloud.
#pragma once

#include "edge/edge_kv_cache.h"
#include "model/model.h"
#include "protocol/cloud_client.h"
#include "protocol/kv_fetch.h"
#include "runtime/kv_segment.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ep {

struct CloudKv {
  std::shared_ptr<const KvSegment> segment;
  // Set when streamed: for this request, or joined (another request's stream of the same
  // prompt, version and codec, still arriving; the first request caches it).
  std::shared_ptr<CloudKvFetch> fetch;
  bool joined = false;
  std::string id, chat_template, source;  // source: "edge-cache" or "stream"
  std::string codec;                      // the stream's codec as it arrived (kv_codec_name)
  std::vector<int32_t> tokens;            // the cloud prompt's, with source "local"
  uint64_t version = 0;
  size_t n_tokens = 0;
  std::chrono::steady_clock::time_point fetch_started;  // layer arrivals count from here
};

class CloudKvSource {
 public:
  // `cloud.base_url` empty: no cloud; every resolve() is then a clear InvalidRequest error.
  // A prompt's description is asked for again (If-None-Match: a bodiless 304 while unchanged)
  // only once `revalidate_s` have passed since the last answer; 0: before every request.
  CloudKvSource(CloudConnection cloud, const Model& model, std::string fingerprint,
                EdgeKvCache& cache, double revalidate_s = 0);

  // Throws http::HttpError: NotFound (unknown prompt), ModelMismatch (the cloud runs another
  // model), Upstream (cloud unreachable, failing or corrupt).
  // `plan`: given the prompt's metadata, how its KV is asked for when the edge's cache does not
  // hold it (a codec, or only the header: then `tokens` are set for the edge to recompute the
  // KV itself, `segment` is null and `source` is "local").
  using FetchPlan = std::function<CloudFetchOptions(const CloudPromptInfo&)>;
  CloudKv resolve(const std::string& id, const FetchPlan& plan = nullptr);
  // Caches a streamed KV once it is complete; a failure is reported and leaves the cache as it was.
  void keep(const CloudKv& kv);

 private:
  CloudConnection cloud_;
  const Model& model_;
  std::string fingerprint_;
  EdgeKvCache& cache_;
  double revalidate_s_;
  struct Known {
    CloudPromptInfo info;
    std::chrono::steady_clock::time_point checked;
  };
  std::mutex mutex_;
  std::map<std::string, Known> known_;  // by id: the cloud's last description
  // Streams in progress by id, version and codec, for later requests to join: one fetch per
  // prompt however many requests wait for it. Starts are one at a time (under starting_), so
  // two requests arriving together cannot both start one.
  std::mutex starting_;
  std::map<std::string, std::weak_ptr<CloudKvFetch>> streaming_;
  // The prompt's description: the one known if checked within revalidate_s, else the cloud's.
  CloudPromptInfo describe(const std::string& id);
};

}  // namespace ep
