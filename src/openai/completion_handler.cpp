#include "openai/completion_handler.h"

#include "http/error.h"
#include "http/response.h"
#include "openai/completion_response.h"

#include <httplib.h>

#include <memory>

namespace ep {

using json = nlohmann::json;

void serve_completion(const httplib::Request& q, httplib::Response& res, bool chat,
                      RunCompletion run, http::Counter& errors) {
  auto req = std::make_shared<CompletionRequest>(parse_completion_request(q.body, chat));
  const std::string id = completion_id();
  if (!req->stream) {
    http::send_json(res, run(*req, id, [](const std::string&) { return true; }));
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [req, id, run, &errors](size_t, httplib::DataSink& sink) {
        const auto event = [&](const json& j) {
          const std::string s =
              "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
          return sink.write(s.data(), s.size());
        };
        try {
          json answer = run(*req, id, [&](const std::string& text) {
            return event(completion_chunk(*req, id, text, std::nullopt));
          });
          json last = completion_chunk(*req, id, "",
                                       answer["choices"][0]["finish_reason"].get<std::string>());
          last["usage"] = answer["usage"];
          event(last);
        } catch (const http::HttpError& e) {
          errors.add();
          event(http::error_body(e.kind(), e.what()));
        } catch (const std::exception& e) {
          errors.add();
          event(http::error_body(http::ErrorKind::Internal, e.what()));
        }
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        sink.done();
        return true;
      });
}

void add_completion_routes(httplib::Server& server, RunCompletion run, http::Counter& requests,
                           http::Counter& errors, const std::string& fingerprint) {
  for (const bool chat : {true, false}) {
    server.Post(chat ? "/v1/chat/completions" : "/v1/completions",
                [run, chat, &requests, &errors](const httplib::Request& q, httplib::Response& r) {
                  requests.add();
                  serve_completion(q, r, chat, run, errors);
                });
  }
  server.Get("/v1/models", [fingerprint](const httplib::Request&, httplib::Response& r) {
    http::send_json(r, model_list_body(fingerprint));
  });
}

}  // namespace ep
