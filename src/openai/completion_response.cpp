#include "openai/completion_response.h"

#include <fmt/format.h>

#include <ctime>
#include <random>

namespace ep {

using json = nlohmann::json;

json completion_usage(const GenerationResult& r, const CompletionRequest& req,
                      const SharedKvUsage& kv, double setup_s) {
  const size_t cloud_tokens = kv.n_tokens;
  const size_t edge_tokens = req.gen.tokens.size();
  json timings = {{"ttft_ms", (setup_s + r.ttft_s) * 1e3},
                  {"setup_ms", setup_s * 1e3},
                  {"prompt_ms", r.prompt_s * 1e3},
                  {"generation_ms", r.generation_s * 1e3},
                  {"kv_source", kv.source},
                  {"kv_bytes_received", kv.bytes_received}};
  const std::vector<double>& arrival = kv.layer_arrival_s;
  json layers = json::array();
  for (size_t l = 0; l < r.prompt_layers.size(); ++l) {
    json e = {{"layer", l},
              {"wait_ms", r.prompt_layers[l].wait_s * 1e3},
              {"compute_ms", r.prompt_layers[l].compute_s * 1e3}};
    if (l < arrival.size()) e["kv_arrival_ms"] = arrival[l] * 1e3;
    layers.push_back(e);
  }
  timings["layers"] = layers;
  return {{"prompt_tokens", cloud_tokens + edge_tokens},
          {"completion_tokens", r.ids.size()},
          {"total_tokens", cloud_tokens + edge_tokens + r.ids.size()},
          {"cloud_tokens", cloud_tokens},
          {"edge_tokens", edge_tokens},
          {"timings", timings}};
}

json completion_chunk(const CompletionRequest& req, const std::string& id, const std::string& text,
                      const std::optional<std::string>& finish) {
  const json fin = finish ? json(*finish) : json(nullptr);
  json choice = {{"index", 0}, {"finish_reason", fin}};
  if (req.chat) {
    choice["delta"] = text.empty() ? json::object() : json{{"content", text}};
  } else {
    choice["text"] = text;
  }
  return {{"id", id},
          {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", std::time(nullptr)},
          {"model", req.model_name},
          {"choices", json::array({choice})}};
}

json completion_body(const CompletionRequest& req, const std::string& id, const GenerationResult& r,
                     json usage) {
  json choice = {{"index", 0}, {"finish_reason", r.finish_reason}};
  if (req.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  } else {
    choice["text"] = r.text;
  }
  return {{"id", id},
          {"object", req.chat ? "chat.completion" : "text_completion"},
          {"created", std::time(nullptr)},
          {"model", req.model_name},
          {"choices", json::array({choice})},
          {"usage", std::move(usage)}};
}

json model_list_body(const std::string& fingerprint) {
  return {{"object", "list"},
          {"data", json::array({{{"id", "edgeprompt"},
                                 {"object", "model"},
                                 {"owned_by", "edgeprompt"},
                                 {"fingerprint", fingerprint}}})}};
}

std::string completion_id() {
  std::random_device rd;
  return fmt::format("cmpl-{:08x}{:08x}", rd(), rd());
}

}  // namespace ep
