#include "edge/cloud_kv_source.h"

#include "http/error.h"

#include <fmt/format.h>

namespace ep {
namespace {

using http::ErrorKind;

ErrorKind kind_of(const CloudError& e) {
  switch (e.failure()) {
    case CloudFailure::NotFound:
      return ErrorKind::NotFound;
    case CloudFailure::ModelMismatch:
      return ErrorKind::ModelMismatch;
    default:
      return ErrorKind::Upstream;
  }
}

}  // namespace

CloudKvSource::CloudKvSource(CloudConnection cloud, const Model& model, std::string fingerprint,
                             EdgeKvCache& cache, double revalidate_s)
    : cloud_(std::move(cloud)),
      model_(model),
      fingerprint_(std::move(fingerprint)),
      cache_(cache),
      revalidate_s_(revalidate_s) {}

CloudPromptInfo CloudKvSource::describe(const std::string& id) {
  const auto now = std::chrono::steady_clock::now();
  std::string etag;
  {
    std::lock_guard lock(mutex_);
    if (const auto it = known_.find(id); it != known_.end()) {
      if (std::chrono::duration<double>(now - it->second.checked).count() < revalidate_s_) {
        return it->second.info;  // no round trip: the cloud learns nothing of this request
      }
      etag = it->second.info.etag;
    }
  }
  std::optional<CloudPromptInfo> fresh;
  try {
    fresh = CloudClient(cloud_).prompt_if_changed(id, etag);
  } catch (const CloudError& e) {
    if (e.failure() == CloudFailure::NotFound) {
      std::lock_guard lock(mutex_);
      known_.erase(id);
    }
    throw;
  }
  std::lock_guard lock(mutex_);
  Known& k = known_[id];
  if (fresh) k.info = std::move(*fresh);
  k.checked = now;
  return k.info;
}

CloudKv CloudKvSource::resolve(const std::string& id, const FetchPlan& plan) {
  if (cloud_.base_url.empty()) {
    http::fail(ErrorKind::InvalidRequest, "this edge has no cloud configured (--cloud URL)");
  }
  CloudKv kv;
  kv.id = id;
  try {
    const CloudPromptInfo info = describe(id);
    if (info.fingerprint != fingerprint_) {
      http::fail(ErrorKind::ModelMismatch, "model mismatch: the cloud runs {}, this edge runs {}",
                 info.fingerprint, fingerprint_);
    }
    kv.version = info.version;
    kv.chat_template = info.chat_template;
    if (auto segment = cache_.get(id, kv.version)) {
      kv.segment = std::move(segment);
      kv.source = "edge-cache";
    } else {
      const CloudFetchOptions fetch = plan ? plan(info) : CloudFetchOptions{};
      kv.fetch_started = std::chrono::steady_clock::now();
      const std::string key = fmt::format("{}\n{}\n{}", id, info.version,
                                          fetch.codec ? kv_codec_name(*fetch.codec) : "");
      std::lock_guard start(starting_);
      if (!fetch.header_only) {
        if (const auto it = streaming_.find(key); it != streaming_.end()) {
          kv.fetch = it->second.lock();
          if (kv.fetch && kv.fetch->failed()) kv.fetch.reset();  // a new request tries anew
          kv.joined = kv.fetch != nullptr;
        }
        // The cache may have it by now (the stream joined last time has completed).
        if (!kv.fetch) {
          if (auto cached = cache_.get(id, kv.version)) {
            kv.segment = std::move(cached);
            kv.source = "edge-cache";
            kv.n_tokens = size_t(kv.segment->n_tokens());
            return kv;
          }
        }
      }
      if (!kv.fetch) {
        kv.fetch = std::make_shared<CloudKvFetch>(cloud_, id, model_, fingerprint_, fetch);
        if (!fetch.header_only) {
          std::erase_if(streaming_, [](const auto& e) { return e.second.expired(); });
          streaming_[key] = kv.fetch;
        }
      }
      kv.codec = kv_codec_name(kv.fetch->header().codec());
      kv.segment = kv.fetch->segment();
      kv.version = kv.fetch->header().prompt_version;
      kv.chat_template = kv.fetch->header().chat_template;
      kv.source = "stream";
      if (fetch.header_only) {
        kv.tokens = kv.fetch->header().tokens;
        kv.segment = nullptr;
        kv.fetch.reset();  // nothing to cache: the edge computes this KV itself
        kv.source = "local";
      }
    }
  } catch (const CloudError& e) {
    throw http::HttpError(kind_of(e), e.what());
  }
  kv.n_tokens = kv.segment ? size_t(kv.segment->n_tokens()) : kv.tokens.size();
  return kv;
}

void CloudKvSource::keep(const CloudKv& kv) {
  if (!kv.fetch || kv.joined) return;
  try {
    kv.fetch->wait_complete();
    cache_.put(kv.id, kv.version, kv.fetch->stream_bytes());
  } catch (const std::exception& e) {
    fmt::print(stderr, "edge: not caching KV of '{}': {}\n", kv.id, e.what());
  }
}

}  // namespace ep
