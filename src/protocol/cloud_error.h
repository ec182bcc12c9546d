// What went wrong between an edge and the cloud, as a kind, so that callers choose their answer
// (an HTTP status, a retry) by the kind and never by the message.
#pragma once

#include "core/error.h"

#include <string>

namespace ep {

enum class CloudFailure {
  Unreachable,    // no connection, or it broke off
  NotFound,       // the cloud has no such prompt (or version)
  ModelMismatch,  // the cloud's KV was computed by another model, or has another shape
  Rejected,       // the cloud refused the request (another 4xx)
  ServerError,    // the cloud failed (5xx)
  Corrupt,        // the answer failed its checksums or does not parse
  Truncated,      // the KV stream ended early
};

class CloudError : public Error {
 public:
  CloudError(CloudFailure failure, const std::string& message, int status = 0)
      : Error(message), failure_(failure), status_(status) {}
  CloudFailure failure() const { return failure_; }
  int http_status() const { return status_; }  // 0 when no answer came
  // Trying again cannot help: the cloud answered, and the answer was no.
  bool permanent() const {
    return failure_ == CloudFailure::NotFound || failure_ == CloudFailure::ModelMismatch ||
           failure_ == CloudFailure::Rejected;
  }

 private:
  CloudFailure failure_;
  int status_;
};

// The failure an HTTP status from the cloud stands for.
CloudFailure cloud_failure_of_status(int status);

}  // namespace ep
