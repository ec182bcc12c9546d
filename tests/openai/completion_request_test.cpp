// The OpenAI request and response bodies both services share: what a request may carry, the one
// clear error for each thing it gets wrong, the tokens it computes with and without a cloud
// prompt, and the shapes of the answer, its chunks and the model list.
#include "openai/completion_request.h"

#include "http/error.h"
#include "model/model.h"
#include "openai/completion_response.h"
#include "openai/completion_tokens.h"
#include "test_util.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/prompt_parts.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ep {
namespace {

using json = nlohmann::json;

http::ErrorKind kind_of(const std::string& body, bool chat) {
  try {
    parse_completion_request(body, chat);
  } catch (const http::HttpError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "accepted: " << body;
  return http::ErrorKind::Internal;
}

TEST(CompletionRequest, ReadsEveryOption) {
  const auto r = parse_completion_request(R"({"cloud_prompt": "bank", "stream": true,
      "model": "m", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 5, "min_p": 0.1,
      "presence_penalty": 0.2, "repeat_penalty": 1.1, "seed": 42, "stop": ["a", "b"],
      "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"},
                   {"role": "user", "content": "more"}]})",
                                          true);
  EXPECT_EQ(r.cloud_prompt, "bank");
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.model_name, "m");
  EXPECT_EQ(r.gen.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.9f);
  EXPECT_EQ(r.gen.sampling.top_k, 5);
  EXPECT_EQ(r.gen.sampling.seed, 42u);
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1].role, "assistant");
  const auto c = parse_completion_request(R"({"prompt": [1, 2, 3], "stop": "x"})", false);
  EXPECT_EQ(c.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(c.gen.stop, (std::vector<std::string>{"x"}));
  EXPECT_EQ(c.gen.max_tokens, 128);
}

TEST(CompletionRequest, EachMistakeIsOneInvalidRequest) {
  using K = http::ErrorKind;
  EXPECT_EQ(kind_of("{oops", true), K::InvalidRequest);
  EXPECT_EQ(kind_of("[1, 2]", true), K::InvalidRequest);
  EXPECT_EQ(kind_of(R"({"messages": []})", true), K::InvalidRequest);
  EXPECT_EQ(kind_of(R"({"messages": [{"role": "robot", "content": "x"}]})", true),
            K::InvalidRequest);
  EXPECT_EQ(kind_of(R"({"cloud_prompt": "p", "messages": [{"role": "system", "content": "x"},
               {"role": "user", "content": "y"}]})",
                    true),
            K::InvalidRequest);
  EXPECT_EQ(kind_of(R"({"messages": [{"role": "user", "content": "y"},
               {"role": "system", "content": "x"}]})",
                    true),
            K::InvalidRequest);
  EXPECT_EQ(kind_of(R"({"messages": [{"role": "user", "content": 5}]})", true), K::InvalidRequest);
  EXPECT_EQ(kind_of(R"({"max_tokens": 0, "prompt": "x"})", false), K::InvalidRequest);
  EXPECT_EQ(kind_of(R"({"max_tokens": "many", "prompt": "x"})", false), K::InvalidRequest);
  EXPECT_EQ(kind_of(R"({"temperature": 1})", false), K::InvalidRequest);  // no prompt
}

TEST(CompletionTokens, AfterACloudPromptOnlyThePrivatePartWithoutItsSystem) {
  const auto model = load_model(test::default_model());
  const auto tok = load_tokenizer(*model->source);
  const auto req = parse_completion_request(
      R"({"messages": [{"role": "user", "content": "What does \"river\" mean?"}]})", true);
  const auto own = completion_tokens(req, *tok, model->hp.n_vocab, ChatFormat::chatml, "chatml");
  EXPECT_EQ(own, private_prompt_tokens(*tok, ChatFormat::chatml, req.messages));
  const auto whole =
      completion_tokens(req, *tok, model->hp.n_vocab, ChatFormat::chatml, std::nullopt);
  EXPECT_EQ(whole, local_chat_tokens(*tok, ChatFormat::chatml, "", req.messages));
  const auto bad = parse_completion_request(R"({"prompt": [1, 99999]})", false);
  try {
    completion_tokens(bad, *tok, model->hp.n_vocab, ChatFormat::chatml, std::nullopt);
    FAIL() << "an id out of range was accepted";
  } catch (const http::HttpError& e) {
    EXPECT_EQ(e.kind(), http::ErrorKind::InvalidRequest);
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos);
  }
}

TEST(CompletionResponse, BodiesHaveTheOpenAiShapes) {
  auto req = parse_completion_request(R"({"messages": [{"role": "user", "content": "x"}]})", true);
  req.gen.tokens = {1, 2, 3};
  GenerationResult r;
  r.text = "answer";
  r.ids = {7, 8};
  r.finish_reason = "stop";
  r.prompt_layers.resize(2);
  SharedKvUsage kv;
  kv.n_tokens = 10;
  kv.source = "stream";
  kv.layer_arrival_s = {0.001, 0.002};
  const json body = completion_body(req, "cmpl-1", r, completion_usage(r, req, kv, 0.5));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "answer");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 13);
  EXPECT_EQ(body["usage"]["completion_tokens"], 2);
  EXPECT_EQ(body["usage"]["cloud_tokens"], 10);
  EXPECT_EQ(body["usage"]["edge_tokens"], 3);
  EXPECT_EQ(body["usage"]["timings"]["kv_source"], "stream");
  EXPECT_DOUBLE_EQ(body["usage"]["timings"]["layers"][1]["kv_arrival_ms"].get<double>(), 2.0);
  const json chunk = completion_chunk(req, "cmpl-1", "piece", std::nullopt);
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "piece");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  req.chat = false;
  EXPECT_EQ(completion_chunk(req, "c", "t", "length")["choices"][0]["text"], "t");
  EXPECT_EQ(model_list_body("fp")["data"][0]["fingerprint"], "fp");
  EXPECT_EQ(completion_id().rfind("cmpl-", 0), 0u);
  EXPECT_NE(completion_id(), completion_id());
}

}  // namespace
}  // namespace ep
