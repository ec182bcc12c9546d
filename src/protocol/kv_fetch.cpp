#include "protocol/kv_fetch.h"

#include "core/error.h"
#include "http/response.h"
#include "protocol/cloud_client.h"
#include "protocol/kv_segment_io.h"

#include <httplib.h>

namespace ep {
namespace {

CloudConnection cloud_at(const std::string& base_url) {
  CloudConnection c;
  c.base_url = base_url;
  return c;
}

std::string kv_path(const std::string& id, const std::optional<KvCodec>& codec, uint32_t from) {
  std::string path = "/v1/cloud-prompts/" + id + "/kv";
  std::string query;
  if (codec) {
    std::string name = kv_codec_name(*codec);
    if (name.ends_with("+zstd")) name.replace(name.size() - 5, 1, "%2B");  // '+' is a space
    query += "&codec=" + name;
  }
  if (from > 0) query += "&from=" + std::to_string(from);
  return query.empty() ? path : path + "?" + query.substr(1);
}

}  // namespace

CloudKvFetch::CloudKvFetch(const std::string& base_url, const std::string& prompt_id,
                           const Model& model, const std::string& fingerprint,
                           CloudFetchOptions options)
    : CloudKvFetch(cloud_at(base_url), prompt_id, model, fingerprint, options) {}

CloudKvFetch::CloudKvFetch(const CloudConnection& cloud, const std::string& prompt_id,
                           const Model& model, const std::string& fingerprint,
                           CloudFetchOptions options)
    : cloud_(cloud),
      prompt_id_(prompt_id),
      fingerprint_(fingerprint),
      model_(model),
      opt_(options),
      start_(std::chrono::steady_clock::now()) {
  cloud_.base_url = strip_trailing_slashes(cloud_.base_url);
  cloud_.connect_timeout = opt_.connect_timeout;
  cloud_.read_timeout = opt_.read_timeout;
  thread_ = std::thread([this] { run(); });
  std::unique_lock lock(mutex_);
  header_cv_.wait(lock, [&] { return segment_ != nullptr || failure_; });
  if (failure_) {
    const CloudError failure = *failure_;
    lock.unlock();
    thread_.join();
    throw failure;
  }
}

CloudKvFetch::~CloudKvFetch() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool CloudKvFetch::failed() const {
  std::lock_guard lock(mutex_);
  return done_ && !(segment_ && segment_->complete());
}

void CloudKvFetch::run() {
  std::optional<CloudError> failure;
  for (int a = 0; a < opt_.attempts && !stop_; ++a) {
    failure = attempt();
    if (!failure || failure->permanent()) break;
  }
  const auto done = [&] {
    done_ = true;
    done_cv_.notify_all();
  };
  if (!failure) {
    std::lock_guard lock(mutex_);
    done();
    return;
  }
  const std::string message = fmt::format("cloud prompt '{}': {}", prompt_id_, failure->what());
  std::lock_guard lock(mutex_);
  if (segment_) {
    segment_->set_error(message);  // the computation waiting on a layer gets this error
  } else {
    failure_ = CloudError(failure->failure(), message, failure->http_status());
    header_cv_.notify_all();
  }
  done();
}

std::optional<CloudError> CloudKvFetch::attempt() {
  KvStreamParser parser;
  // A header that does not fit this model is refused before any layer is decoded.
  parser.on_header([&](const KvStreamHeader& h) { check_kv_header(h, model_, fingerprint_); });
  // After a cut, the stream resumes at the first layer not yet received (the cloud sends them
  // in order), in the codec the first attempt got.
  const uint32_t from = resume_;
  parser.resume_from(from);
  const std::optional<KvCodec> codec = segment_ ? std::optional(header_.codec()) : opt_.codec;
  std::string local;  // this attempt's bytes
  int status = 0;
  // What this attempt adds to the complete stream: its header once, then its whole frames.
  const auto absorb = [&] {
    if (!parser.header() || status != 200) return;
    const size_t skip = from == 0 ? 0 : encode_kv_header(*parser.header()).size();
    const size_t used = size_t(parser.bytes_consumed());
    std::lock_guard lock(mutex_);
    if (from == 0) kept_.clear();  // started again from the header
    if (used > skip) kept_.append(local, skip, used - skip);
    while (segment_ && resume_ < header_.n_layers && segment_->layer_ready(resume_)) ++resume_;
  };
  try {
    const auto client = open_cloud_client(cloud_);
    auto res = client->Get(
        kv_path(prompt_id_, codec, from), httplib::Headers{},
        [&](const httplib::Response& r) {
          status = r.status;
          return true;
        },
        [&](const char* data, size_t len) {
          if (stop_) return false;
          local.append(data, len);
          bytes_ += len;
          if (status != 200) return true;  // an error body: read it whole for the message
          parser.feed(std::string_view(data, len));
          std::lock_guard lock(mutex_);
          if (parser.header() && !segment_) {
            check_kv_header(*parser.header(), model_, fingerprint_);
            header_ = *parser.header();
            segment_ = make_segment(header_);
            arrival_.assign(header_.n_layers, 0.0);
            header_cv_.notify_all();
            if (opt_.header_only) return false;
          } else if (parser.header() &&
                     (parser.header()->prompt_version != header_.prompt_version ||
                      parser.header()->tokens != header_.tokens ||
                      !(parser.header()->codec() == header_.codec()))) {
            throw CloudError(CloudFailure::Corrupt,
                             "the cloud prompt changed while it was being streamed");
          }
          const double t =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
          for (const auto& layer : parser.take_layers()) {
            if (!segment_->layer_ready(layer.index)) {
              publish(*segment_, layer);
              arrival_[layer.index] = t;
            }
          }
          return true;
        });
    if (opt_.header_only && parser.header() && status == 200) return std::nullopt;
    absorb();
    if (!res) {
      return CloudError(CloudFailure::Unreachable, describe_connection_error(cloud_, res.error()));
    }
    if (res->status != 200) {
      return CloudError(cloud_failure_of_status(res->status),
                        fmt::format("cloud at {} answered {}: {}", cloud_.base_url, res->status,
                                    http::error_message_of(local)),
                        res->status);
    }
    if (!parser.finished()) {
      return CloudError(CloudFailure::Truncated,
                        fmt::format("KV stream from {} ended early after {} bytes", cloud_.base_url,
                                    local.size()));
    }
  } catch (const CloudError& e) {
    absorb();
    return e;
  } catch (const KvMismatch& e) {
    return CloudError(CloudFailure::ModelMismatch, e.what());
  } catch (const Error& e) {
    absorb();  // the frames before the corrupt one are whole and verified
    return CloudError(CloudFailure::Corrupt, e.what());  // the parser's checksums or framing
  }
  std::lock_guard lock(mutex_);
  stream_ = kept_;
  return std::nullopt;
}

void CloudKvFetch::wait_complete() const {
  for (int64_t l = 0; l < segment_->n_layers(); ++l) segment_->wait_layer(l);
}

std::vector<double> CloudKvFetch::layer_arrival_s() const {
  std::lock_guard lock(mutex_);
  return arrival_;
}

std::string CloudKvFetch::stream_bytes() const {
  std::unique_lock lock(mutex_);
  done_cv_.wait(lock, [&] { return done_; });
  return stream_;
}

}  // namespace ep
