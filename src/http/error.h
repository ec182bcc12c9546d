// The errors a request can end in: what went wrong, as a kind, and the one line that says so.
// The kind alone decides the HTTP status and the OpenAI error type (error_response.h); nothing
// reads an error's message to choose them.
#pragma once

#include "core/error.h"

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace ep::http {

enum class ErrorKind {
  InvalidRequest,   // 400: malformed or inconsistent request
  Unauthorized,     // 401: missing or wrong credentials
  Forbidden,        // 403: credentials that do not allow this
  NotFound,         // 404: no such endpoint or resource
  ModelMismatch,    // 409: the other side runs another model
  LengthRequired,   // 411: a body without Content-Length (chunked), whose size is not known
  PayloadTooLarge,  // 413: body over the limit
  TooManyRequests,  // 429: the service is full now; the client may retry (Retry-After)
  Upstream,         // 502: the cloud failed, sent something corrupt, or could not be reached
  Unavailable,      // 503: the service cannot take the request now
  Internal,         // 500: a fault of this service
};

int status_of(ErrorKind kind);
// The OpenAI-style "type" of the error body ("invalid_request_error", ...).
std::string_view type_of(ErrorKind kind);
// The kind an HTTP status stands for (e.g. a status received from the cloud).
ErrorKind kind_of_status(int status);

class HttpError : public Error {
 public:
  HttpError(ErrorKind kind, const std::string& message, int retry_after_s = 1)
      : Error(message), kind_(kind), retry_after_s_(retry_after_s) {}
  ErrorKind kind() const { return kind_; }
  int retry_after_s() const { return retry_after_s_; }  // Retry-After of a 429
  int status() const { return status_of(kind_); }

 private:
  ErrorKind kind_;
  int retry_after_s_;
};

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, fmt::format_string<Args...> format, Args&&... args) {
  throw HttpError(kind, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ep::http
