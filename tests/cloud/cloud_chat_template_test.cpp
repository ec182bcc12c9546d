// Both services render chats with the model's own Jinja chat template, as real processes on
// loopback: a cloud prompt registered with "chat_template": "model" gives the same tokens and
// answers as the built-in it is written like, on the cloud and through an edge; a template that
// cannot be split between cloud and device is refused at registration, one that fails at a
// chat request, each with a 400 naming the template, while requests that need no template work.
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <string>

namespace ep {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kSystem = "You are a dictionary. Explain each word in one sentence.";

// The chat model fixture (a ChatML Jinja template), or with `chat_template` in its place.
std::string chat_model(const test::ScratchDir& dir, const std::string& chat_template = "") {
  const fs::path hf = test::make_chat_model_dir(dir / "hf");
  if (!chat_template.empty()) {
    auto config = json::parse(test::read_file(hf / "tokenizer_config.json"));
    config["chat_template"] = chat_template;
    test::write_file(hf / "tokenizer_config.json", config.dump());
  }
  return hf.string();
}

httplib::Result send(const std::string& url, const std::string& method, const std::string& path,
                     const json& body) {
  httplib::Client c(url);
  c.set_read_timeout(60, 0);
  return method == "PUT" ? c.Put(path, body.dump(), "application/json")
                         : c.Post(path, body.dump(), "application/json");
}

json expect_status(const httplib::Result& r, int status) {
  EXPECT_TRUE(r);
  if (!r) return {};
  EXPECT_EQ(r->status, status) << r->body;
  return json::parse(r->body);
}

json chat(const std::string& user, const json& extra = json::object()) {
  json body = {
      {"messages", {{{"role", "user"}, {"content", user}}}}, {"temperature", 0}, {"max_tokens", 6}};
  body.update(extra);
  return body;
}

json system_message() {
  return json{{"role", "system"}, {"content", kSystem}};
}

std::string answer(const json& a) {
  return a.contains("choices") ? a["choices"][0]["message"]["content"].get<std::string>() : "";
}

TEST(CloudChatTemplate, TheModelsOwnTemplateSplitsAndAnswersAsTheBuiltIn) {
  test::ScratchDir dir;
  const std::string model = chat_model(dir);
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  const json own = expect_status(
      send(url, "PUT", "/v1/cloud-prompts/own", {{"text", kSystem}, {"chat_template", "model"}}),
      201);
  const json builtin = expect_status(send(url, "PUT", "/v1/cloud-prompts/builtin",
                                          {{"text", kSystem}, {"chat_template", "chatml"}}),
                                     201);
  EXPECT_EQ(own["chat_template"], "model");
  EXPECT_EQ(own["n_tokens"], builtin["n_tokens"]);
  const std::string user = "What does \"lantern\" mean?";
  const json a = expect_status(
      send(url, "POST", "/v1/chat/completions", chat(user, {{"cloud_prompt", "own"}})), 200);
  const json b = expect_status(
      send(url, "POST", "/v1/chat/completions", chat(user, {{"cloud_prompt", "builtin"}})), 200);
  EXPECT_FALSE(answer(a).empty());
  EXPECT_EQ(answer(a), answer(b));
  EXPECT_EQ(a["usage"]["edge_tokens"], b["usage"]["edge_tokens"]);
  // The same chat without a cloud prompt, its system message rendered here by the template.
  json local = chat(user);
  local["messages"].insert(local["messages"].begin(), system_message());
  const json c = expect_status(send(url, "POST", "/v1/chat/completions", local), 200);
  EXPECT_EQ(answer(c), answer(a));
  EXPECT_EQ(c["usage"]["prompt_tokens"], a["usage"]["prompt_tokens"]);

  // An edge computes the private part with the same template, named in the KV stream.
  test::Process edge({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                      "--cloud", url, "--listen", "127.0.0.1:0"});
  const std::string edge_url = test::listen_url(edge);
  const json e = expect_status(
      send(edge_url, "POST", "/v1/chat/completions", chat(user, {{"cloud_prompt", "own"}})), 200);
  EXPECT_EQ(answer(e), answer(a));
  EXPECT_EQ(e["usage"]["edge_tokens"], a["usage"]["edge_tokens"]);
  // Tools belong to the template's render, not to a cloud prompt rendered without them.
  const json t =
      expect_status(send(edge_url, "POST", "/v1/chat/completions",
                         chat(user, {{"cloud_prompt", "own"}, {"tools", json::array()}})),
                    400);
  EXPECT_NE(t.dump().find("tools"), std::string::npos) << t.dump();
}

TEST(CloudChatTemplate, ATemplateThatCannotSplitIsRefusedAtRegistration) {
  test::ScratchDir dir;
  const std::string model =
      chat_model(dir, test::read_file(test::fixtures_dir() /
                                      "templates/mistralai-Mistral-Nemo-Instruct-2407.jinja"));
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  const json e = expect_status(
      send(url, "PUT", "/v1/cloud-prompts/p", {{"text", kSystem}, {"chat_template", "model"}}),
      400);
  const std::string message = e["error"]["message"];
  EXPECT_NE(message.find("chat template 'model' cannot split"), std::string::npos) << message;
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  // A local chat needs no split: the template renders it.
  json local = chat("Hello");
  local["messages"].insert(local["messages"].begin(), system_message());
  expect_status(send(url, "POST", "/v1/chat/completions", local), 200);
}

TEST(CloudChatTemplate, ATemplateThatFailsIsA400ForChatsOnly) {
  test::ScratchDir dir;
  // Raises for a system message, as some published templates do.
  const std::string model =
      chat_model(dir,
                 "{% if messages[0].role == 'system' %}\n"
                 "{{ raise_exception('System role not supported') }}{% endif %}"
                 "{% for m in messages %}{{ m.content }}\n{% endfor %}");
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  const json reg = expect_status(
      send(url, "PUT", "/v1/cloud-prompts/p", {{"text", kSystem}, {"chat_template", "model"}}),
      400);
  EXPECT_NE(reg.dump().find("raise_exception: System role not supported"), std::string::npos)
      << reg.dump();
  json local = chat("Hello");
  local["messages"].insert(local["messages"].begin(), system_message());
  const json e = expect_status(send(url, "POST", "/v1/chat/completions", local), 400);
  EXPECT_NE(e.dump().find("chat template 'model': template: line 2"), std::string::npos)
      << e.dump();
  expect_status(send(url, "POST", "/v1/chat/completions", chat("Hello")), 200);
}

TEST(CloudChatTemplate, ATemplateThatDoesNotParseFailsChatsNotTheService) {
  test::ScratchDir dir;
  const std::string model = chat_model(dir, "{% for m in messages %}{{ m.content }");
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  const json e = expect_status(send(url, "POST", "/v1/chat/completions", chat("Hello")), 400);
  EXPECT_NE(e.dump().find("chat template 'model': template: line 1"), std::string::npos)
      << e.dump();
  expect_status(send(url, "POST", "/v1/completions",
                     {{"prompt", "Hello"}, {"max_tokens", 2}, {"temperature", 0}}),
                200);
  expect_status(
      send(url, "PUT", "/v1/cloud-prompts/p", {{"text", kSystem}, {"chat_template", "chatml"}}),
      201);
}

TEST(CloudChatTemplate, ARequestsToolsReachTheTemplate) {
  test::ScratchDir dir;
  const std::string model = chat_model(
      dir,
      "{% for m in messages %}{{ m.content }}{% endfor %}{% if tools %}{{ tools | tojson }}"
      "{% endif %}");
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  const json plain = expect_status(send(url, "POST", "/v1/chat/completions", chat("Hello")), 200);
  const json tools = json::parse(
      R"([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}])");
  const json with = expect_status(
      send(url, "POST", "/v1/chat/completions", chat("Hello", {{"tools", tools}})), 200);
  EXPECT_GT(with["usage"]["prompt_tokens"].get<int>(),
            plain["usage"]["prompt_tokens"].get<int>() + 10);
  const json bad = expect_status(
      send(url, "POST", "/v1/chat/completions", chat("Hello", {{"tools", "lookup"}})), 400);
  EXPECT_NE(bad.dump().find("'tools' must be an array"), std::string::npos) << bad.dump();
}

}  // namespace
}  // namespace ep
