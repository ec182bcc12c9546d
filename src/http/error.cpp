#include "http/error.h"

namespace ep::http {

int status_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidRequest:
      return 400;
    case ErrorKind::Unauthorized:
      return 401;
    case ErrorKind::Forbidden:
      return 403;
    case ErrorKind::NotFound:
      return 404;
    case ErrorKind::ModelMismatch:
      return 409;
    case ErrorKind::LengthRequired:
      return 411;
    case ErrorKind::PayloadTooLarge:
      return 413;
    case ErrorKind::TooManyRequests:
      return 429;
    case ErrorKind::Upstream:
      return 502;
    case ErrorKind::Unavailable:
      return 503;
    case ErrorKind::Internal:
      return 500;
  }
  return 500;
}

std::string_view type_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidRequest:
    case ErrorKind::LengthRequired:
    case ErrorKind::PayloadTooLarge:
      return "invalid_request_error";
    case ErrorKind::Unauthorized:
      return "authentication_error";
    case ErrorKind::TooManyRequests:
      return "rate_limit_error";
    case ErrorKind::Forbidden:
      return "permission_error";
    case ErrorKind::NotFound:
      return "not_found_error";
    case ErrorKind::ModelMismatch:
      return "model_mismatch";
    case ErrorKind::Upstream:
      return "cloud_error";
    case ErrorKind::Unavailable:
      return "unavailable_error";
    case ErrorKind::Internal:
      return "server_error";
  }
  return "server_error";
}

ErrorKind kind_of_status(int status) {
  switch (status) {
    case 400:
      return ErrorKind::InvalidRequest;
    case 401:
      return ErrorKind::Unauthorized;
    case 403:
      return ErrorKind::Forbidden;
    case 404:
      return ErrorKind::NotFound;
    case 409:
      return ErrorKind::ModelMismatch;
    case 411:
      return ErrorKind::LengthRequired;
    case 429:
      return ErrorKind::TooManyRequests;
    case 413:
      return ErrorKind::PayloadTooLarge;
    case 503:
      return ErrorKind::Unavailable;
    default:
      return status >= 400 && status < 500 ? ErrorKind::InvalidRequest : ErrorKind::Internal;
  }
}

}  // namespace ep::http
