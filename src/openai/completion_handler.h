// POST /v1/chat/completions and /v1/completions, answered the same way by the cloud and by an
// edge: the body is parsed, the service runs it, and the answer goes back as one JSON body or as
// server-sent events (a chunk per piece of text, the last with usage, then [DONE]; an error
// after the stream began is sent as an error event).
#pragma once

#include "http/metrics.h"
#include "openai/completion_request.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace ep {

// Runs a request, streaming its text through on_text (false: the client is gone), and returns
// the whole answer (completion_body). Throws http::HttpError for what the client got wrong.
using RunCompletion =
    std::function<nlohmann::json(CompletionRequest& req, const std::string& id,
                                 const std::function<bool(const std::string&)>& on_text)>;

// Errors before the answer began are thrown (the server answers them with their status);
// `errors` counts those that end a stream.
void serve_completion(const httplib::Request& q, httplib::Response& res, bool chat,
                      RunCompletion run, http::Counter& errors);

// Registers POST /v1/chat/completions and /v1/completions (each counted in `requests`) and
// GET /v1/models (the model named by `fingerprint`).
void add_completion_routes(httplib::Server& server, RunCompletion run, http::Counter& requests,
                           http::Counter& errors, const std::string& fingerprint);

}  // namespace ep
