#include "http/response.h"

#include <httplib.h>

namespace ep::http {

namespace {

// Invalid UTF-8 (a message may quote bytes of a request) is replaced rather than thrown on.
std::string dump_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
  res.status = status;
  res.set_content(dump_line(body), "application/json");
}

nlohmann::json error_body(ErrorKind kind, const std::string& message) {
  return {{"error",
           {{"message", message},
            {"type", type_of(kind)},
            {"param", nullptr},
            {"code", status_of(kind)}}}};
}

void send_error(httplib::Response& res, ErrorKind kind, const std::string& message) {
  if (kind == ErrorKind::TooManyRequests) res.set_header("Retry-After", "1");
  send_json(res, error_body(kind, message), status_of(kind));
}

void send_error(httplib::Response& res, const HttpError& error) {
  if (error.kind() != ErrorKind::TooManyRequests)
    return send_error(res, error.kind(), error.what());
  res.set_header("Retry-After", std::to_string(error.retry_after_s()));
  send_json(res, error_body(error.kind(), error.what()), status_of(error.kind()));
}

std::string error_message_of(const std::string& body) {
  try {
    return nlohmann::json::parse(body).at("error").at("message").get<std::string>();
  } catch (const std::exception&) {
    return body;
  }
}

}  // namespace ep::http
