// The edge's side of the KV stream: fetches a cloud prompt's KV over HTTP in the background and
// publishes each layer into a KvSegment as soon as its frame has arrived and passed its checksum,
// so the edge computes layer l while later layers are still in flight.
#pragma once

#include "model/model.h"
#include "protocol/cloud_client.h"
#include "protocol/cloud_error.h"
#include "protocol/kv_wire.h"
#include "runtime/kv_segment.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ep {

struct CloudFetchOptions {
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds read_timeout{30};
  int attempts = 2;  // a failed or corrupt stream is retried once, from its last whole layer
  // The codec to ask the cloud for (?codec=); none: the form the cloud keeps. Whatever the
  // header then says is what is decoded.
  std::optional<KvCodec> codec;
  // Only the header (the prompt's tokens and template, for an edge that recomputes the KV
  // itself): the connection is closed once it has arrived; no layer is ever published.
  bool header_only = false;
};

class CloudKvFetch {
 public:
  // Connects and waits for the stream's header; throws CloudError (cloud unreachable, unknown
  // prompt, model mismatch, corrupt header) within the timeouts. Layers keep arriving afterwards;
  // a failure after the header reaches the segment's waiters as a LayerStreamError.
  CloudKvFetch(const CloudConnection& cloud, const std::string& prompt_id, const Model& model,
               const std::string& fingerprint, CloudFetchOptions options = {});
  // A cloud at `base_url` with the default TLS settings (the system roots) and no token.
  CloudKvFetch(const std::string& base_url, const std::string& prompt_id, const Model& model,
               const std::string& fingerprint, CloudFetchOptions options = {});
  ~CloudKvFetch();
  CloudKvFetch(const CloudKvFetch&) = delete;
  CloudKvFetch& operator=(const CloudKvFetch&) = delete;

  const KvStreamHeader& header() const { return header_; }
  std::shared_ptr<const KvSegment> segment() const { return segment_; }
  // Blocks until every layer arrived (or throws the stream's error).
  void wait_complete() const;
  // True once the fetch has ended without every layer (its segment carries the error).
  bool failed() const;
  uint64_t bytes_received() const { return bytes_.load(); }
  // Seconds from the request to each layer's arrival.
  std::vector<double> layer_arrival_s() const;
  // The complete stream bytes once the fetch has ended (waits for it; empty when it failed),
  // e.g. for a local cache.
  std::string stream_bytes() const;

 private:
  void run();
  // One HTTP request; returns nullopt when the whole stream arrived intact, else what failed.
  std::optional<CloudError> attempt();

  CloudConnection cloud_;
  std::string prompt_id_, fingerprint_;
  const Model& model_;
  CloudFetchOptions opt_;
  KvStreamHeader header_;
  std::shared_ptr<KvSegment> segment_;
  std::chrono::steady_clock::time_point start_;
  std::atomic<uint64_t> bytes_{0};
  mutable std::mutex mutex_;
  std::vector<double> arrival_;
  std::string stream_;   // header + frames in arrival order + end
  std::string kept_;     // the whole parts received so far over all attempts (resumed ones too)
  uint32_t resume_ = 0;  // layers 0 .. resume_-1 received: where a retry resumes
  std::condition_variable header_cv_;
  mutable std::condition_variable done_cv_;
  bool done_ = false;                  // the fetch's thread is past its last attempt
  std::optional<CloudError> failure_;  // set when no header could be obtained
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ep
