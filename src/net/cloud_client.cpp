#include "net/cloud_client.h"

#include "core/error.h"
#include "net/kv_segment_io.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace ep {
namespace {

// Splits "http://host:port[/]" for httplib.
std::string strip_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::string describe_http_error(const httplib::Result& r, const std::string& url) {
  if (!r) return fmt::format("cloud unreachable at {}: {}", url, httplib::to_string(r.error()));
  std::string msg = r->body;
  try {
    msg = nlohmann::json::parse(r->body).at("error").at("message").get<std::string>();
  } catch (const std::exception&) {
  }
  return fmt::format("cloud at {} answered {}: {}", url, r->status, msg);
}

}  // namespace

CloudKvFetch::CloudKvFetch(const std::string& base_url, const std::string& prompt_id,
                           const Model& model, const std::string& fingerprint,
                           CloudFetchOptions options)
    : base_url_(strip_slash(base_url)),
      prompt_id_(prompt_id),
      fingerprint_(fingerprint),
      model_(model),
      opt_(options),
      start_(std::chrono::steady_clock::now()) {
  thread_ = std::thread([this] { run(); });
  std::unique_lock lock(mutex_);
  header_cv_.wait(lock, [&] { return segment_ != nullptr || failed_; });
  if (failed_) {
    const std::string error = error_;
    lock.unlock();
    thread_.join();
    fail("{}", error);
  }
}

CloudKvFetch::~CloudKvFetch() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void CloudKvFetch::run() {
  std::string error;
  bool fatal = false;
  for (int a = 0; a < opt_.attempts && !stop_ && !fatal; ++a) {
    if (attempt(error, fatal)) return;
  }
  const std::string message = fmt::format("cloud prompt '{}': {}", prompt_id_, error);
  std::lock_guard lock(mutex_);
  if (segment_) {
    segment_->set_error(message);  // the computation waiting on a layer gets this error
  } else {
    failed_ = true;
    error_ = message;
    header_cv_.notify_all();
  }
}

bool CloudKvFetch::attempt(std::string& error, bool& fatal) {
  httplib::Client client(base_url_);
  client.set_connection_timeout(opt_.connect_timeout);
  client.set_read_timeout(opt_.read_timeout);
  KvStreamParser parser;
  std::string local;  // this attempt's bytes
  int status = 0;
  try {
    auto res = client.Get(
        "/v1/cloud-prompts/" + prompt_id_ + "/kv", httplib::Headers{},
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
          } else if (parser.header() &&
                     (parser.header()->prompt_version != header_.prompt_version ||
                      parser.header()->tokens != header_.tokens)) {
            fail("the cloud prompt changed while it was being streamed");
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
    if (!res) {
      error = describe_http_error(res, base_url_);
      return false;
    }
    if (res->status != 200) {
      std::string msg = local;
      try {
        msg = nlohmann::json::parse(local).at("error").at("message").get<std::string>();
      } catch (const std::exception&) {
      }
      error = fmt::format("cloud at {} answered {}: {}", base_url_, res->status, msg);
      fatal = res->status >= 400 && res->status < 500;
      return false;
    }
    if (!parser.finished()) {
      error = fmt::format("KV stream from {} ended early after {} bytes", base_url_, local.size());
      return false;
    }
  } catch (const Error& e) {
    error = e.what();
    fatal = error.find("model mismatch") != std::string::npos ||
            error.find("shape mismatch") != std::string::npos;
    return false;
  }
  std::lock_guard lock(mutex_);
  stream_ = std::move(local);
  return true;
}

void CloudKvFetch::wait_complete() const {
  for (int64_t l = 0; l < segment_->n_layers(); ++l) segment_->wait_layer(l);
}

std::vector<double> CloudKvFetch::layer_arrival_s() const {
  std::lock_guard lock(mutex_);
  return arrival_;
}

std::string CloudKvFetch::stream_bytes() const {
  std::lock_guard lock(mutex_);
  return stream_;
}

}  // namespace ep
