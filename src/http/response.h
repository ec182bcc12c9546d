// JSON responses of both services. Errors in the OpenAI shape, the same for every failure:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": 400}}
#pragma once

#include "http/error.h"

#include <nlohmann/json.hpp>

#include <string>

namespace httplib {
struct Response;
}

namespace ep::http {

// `body` as one line of JSON (and a newline), with `status`.
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);

nlohmann::json error_body(ErrorKind kind, const std::string& message);
// Sets the status and the JSON body.
void send_error(httplib::Response& res, ErrorKind kind, const std::string& message);
void send_error(httplib::Response& res, const HttpError& error);
// Reads the message back out of such a body (e.g. one the cloud sent); the body itself when it
// is not one.
std::string error_message_of(const std::string& body);

}  // namespace ep::http
