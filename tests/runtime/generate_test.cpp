// generate(): the one generation loop of the edge service and `edgeprompt run`, on the trained
// default model (with its tokenizer) and on a fixture model (ids only): greedy equals an
// independent argmax loop, the token limit, stop strings, the streaming callback, a cloud prefix
// equal to the monolithic computation, seeded sampling, errors and prompt progress.
#include "runtime/generate.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "model/model.h"
#include "runtime/kv_segment.h"
#include "runtime/transformer.h"
#include "test_util.h"
#include "tokenizer/model_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ep {
namespace {

const std::filesystem::path kFixture = test::fixtures_dir() / "models" / "llama-gqa";

SamplerParams greedy() {
  SamplerParams p;
  p.temperature = 0.0f;
  return p;
}

// The trained default model with its tokenizer and a ChatML prompt it was trained to answer.
struct Chat {
  std::unique_ptr<Model> model = load_model(test::default_model());
  std::unique_ptr<Tokenizer> tok = load_tokenizer(*model->source);
  ThreadPool pool{2};

  std::vector<int32_t> prompt(const std::string& user) const {
    const std::string text =
        "<|im_start|>system\nYou are a dictionary. Explain the word the user asks about in one "
        "sentence.<|im_end|>\n<|im_start|>user\n" +
        user + "<|im_end|>\n<|im_start|>assistant\n";
    return tok->encode(text, tok->add_bos_default(), /*parse_special=*/true);
  }

  GenerationResult run(const GenerationRequest& req) {
    return generate(*model, tok.get(), pool, req, [](const std::string&) { return true; });
  }
};

GenerationRequest request(std::vector<int32_t> tokens, int max_tokens,
                          SamplerParams sampling = greedy()) {
  GenerationRequest r;
  r.tokens = std::move(tokens);
  r.max_tokens = max_tokens;
  r.sampling = sampling;
  return r;
}

int32_t argmax(const std::vector<float>& logits, int64_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i) {
    if (logits[size_t(i)] > logits[size_t(best)]) best = i;
  }
  return best;
}

// Greedy decoding written out: one batched prompt pass, then argmax and one token at a time, until
// an end-of-generation token (when there is a tokenizer) or `max_tokens`.
std::vector<int32_t> argmax_loop(const Model& model, const Tokenizer* tok, ThreadPool& pool,
                                 const std::vector<int32_t>& prompt, int max_tokens) {
  const int64_t n = tok ? std::min<int64_t>(model.hp.n_vocab, tok->n_vocab()) : model.hp.n_vocab;
  Transformer tf(model, int64_t(prompt.size()) + max_tokens, pool);
  std::vector<float> logits;
  tf.forward(prompt, logits, false);
  std::vector<int32_t> out;
  for (int i = 0; i < max_tokens; ++i) {
    const int32_t next = argmax(logits, n);
    if (tok && tok->is_eog(next)) break;
    out.push_back(next);
    tf.forward(std::span(&next, 1), logits, false);
  }
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ep::Error thrown";
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(Generate, GreedyEqualsAnIndependentArgmaxLoop) {
  Chat c;
  ASSERT_TRUE(c.tok);
  // The loop above samples from every row: true when the vocabulary masks nothing.
  for (int32_t id = 0; id < c.tok->n_vocab(); ++id)
    ASSERT_NE(c.tok->vocab().types[size_t(id)], TokenType::unused) << id;
  const auto prompt = c.prompt("What does \"tree\" mean?");
  const auto r = c.run(request(prompt, 48));
  const auto expected = argmax_loop(*c.model, c.tok.get(), c.pool, prompt, 48);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(r.ids, expected);
  EXPECT_EQ(r.finish_reason, expected.size() < 48 ? "stop" : "length");
  EXPECT_EQ(r.text, c.tok->decode(expected, /*skip_special=*/true));
  EXPECT_EQ(r.prompt_layers.size(), size_t(c.model->hp.n_layer));
  EXPECT_GE(r.ttft_s, r.prompt_s);
}

TEST(Generate, GreedyWithoutATokenizerGivesCommaSeparatedIds) {
  const auto model = load_model(kFixture);
  ThreadPool pool(2);
  const auto prompt = parse_token_list(test::read_file(kFixture / "reference" / "prompt_8.txt"));
  const auto reference = parse_token_list(test::read_file(kFixture / "reference" / "greedy_8.txt"));
  const int n = int(reference.size());
  std::string streamed;
  const auto r = generate(*model, nullptr, pool, request(prompt, n), [&](const std::string& s) {
    streamed += s;
    return true;
  });
  EXPECT_EQ(r.ids, argmax_loop(*model, nullptr, pool, prompt, n));
  EXPECT_EQ(r.ids, reference);  // the float64 reference model's greedy continuation
  std::string joined;
  for (size_t i = 0; i < r.ids.size(); ++i) joined += (i ? "," : "") + std::to_string(r.ids[i]);
  EXPECT_EQ(r.text, joined);
  EXPECT_EQ(streamed, joined);
  EXPECT_EQ(r.finish_reason, "length");
}

TEST(Generate, MaxTokensGivesThatManyIdsAndLength) {
  const auto model = load_model(kFixture);
  ThreadPool pool(2);
  const std::vector<int32_t> prompt = {5, 17, 900, 2, 33};
  for (int n : {1, 7}) {
    const auto r = generate(*model, nullptr, pool, request(prompt, n),
                            [](const std::string&) { return true; });
    EXPECT_EQ(r.ids.size(), size_t(n));
    EXPECT_EQ(r.finish_reason, "length");
  }
  // No token limit left: only the prompt pass, and nothing reaches on_text.
  int calls = 0;
  const auto r = generate(*model, nullptr, pool, request(prompt, 0), [&](const std::string&) {
    ++calls;
    return true;
  });
  EXPECT_TRUE(r.ids.empty());
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_EQ(calls, 0);
}

TEST(Generate, AStopStringEndsGenerationWithoutAppearingInTheText) {
  Chat c;
  const auto prompt = c.prompt("What does \"tree\" mean?");
  const auto full = c.run(request(prompt, 48));
  ASSERT_GE(full.text.size(), 20u) << full.text;
  // A piece from the middle of the greedy answer; generation must end where it first appears.
  const std::string stop = full.text.substr(full.text.size() / 2, 4);
  const std::string before = full.text.substr(0, full.text.find(stop));
  GenerationRequest req = request(prompt, 48);
  req.stop = {"never appears in this answer", stop};
  std::string streamed;
  const auto r = generate(*c.model, c.tok.get(), c.pool, req, [&](const std::string& s) {
    streamed += s;
    return true;
  });
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.text, before) << "stop string '" << stop << "' in '" << full.text << "'";
  EXPECT_FALSE(contains(r.text, stop));
  EXPECT_EQ(streamed, r.text);
  ASSERT_LT(r.ids.size(), full.ids.size());
  EXPECT_TRUE(std::equal(r.ids.begin(), r.ids.end(), full.ids.begin()));
}

TEST(Generate, OnTextReturningFalseStopsAfterThatPiece) {
  Chat c;
  std::vector<std::string> pieces;
  const auto r =
      generate(*c.model, c.tok.get(), c.pool,
               request(c.prompt("What does \"melancholy\" mean?"), 48), [&](const std::string& s) {
                 pieces.push_back(s);
                 return pieces.size() < 3;
               });
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(r.text, pieces[0] + pieces[1] + pieces[2]);
  EXPECT_LT(r.ids.size(), 48u);
  // Exactly the ids of the full answer up to that piece.
  const auto full = c.run(request(c.prompt("What does \"melancholy\" mean?"), 48));
  ASSERT_LT(r.ids.size(), full.ids.size());
  EXPECT_TRUE(std::equal(r.ids.begin(), r.ids.end(), full.ids.begin()));
}

TEST(Generate, ThePiecesGivenToOnTextConcatenateToTheText) {
  Chat c;
  std::string joined;
  int empty = 0;
  const auto r =
      generate(*c.model, c.tok.get(), c.pool,
               request(c.prompt("Tell me something about cats."), 40), [&](const std::string& s) {
                 empty += s.empty();
                 joined += s;
                 return true;
               });
  EXPECT_FALSE(r.text.empty());
  EXPECT_EQ(joined, r.text);
  EXPECT_EQ(empty, 0);
}

// The cloud prompt's KV as the cloud computes it: a Transformer's layer sink over the first
// tokens, published into a segment (optionally by another thread while the edge already waits).
std::shared_ptr<KvSegment> prefix_segment(const Model& model, ThreadPool& pool,
                                          const std::vector<int32_t>& tokens) {
  auto seg = std::make_shared<KvSegment>(model.hp.n_layer, int64_t(tokens.size()),
                                         model.hp.n_head_kv, model.hp.head_dim);
  Transformer tf(model, int64_t(tokens.size()), pool);
  int64_t published = 0;
  tf.set_layer_sink([&](int64_t l, const float* k, const float* v, int64_t n) {
    EXPECT_EQ(n, int64_t(tokens.size()));
    seg->publish_layer(l, k, v);
    ++published;
  });
  std::vector<float> logits;
  tf.forward(tokens, logits, false);
  EXPECT_EQ(published, model.hp.n_layer);
  return seg;
}

TEST(Generate, ACloudPrefixGivesTheMonolithicGreedyIds) {
  Chat c;
  const auto all = c.prompt("What does \"tree\" mean?");
  const size_t split = all.size() / 2;
  const std::vector<int32_t> cloud(all.begin(), all.begin() + ptrdiff_t(split));
  const std::vector<int32_t> edge(all.begin() + ptrdiff_t(split), all.end());
  const auto mono = c.run(request(all, 32));

  GenerationRequest req = request(edge, 32);
  req.prefix = prefix_segment(*c.model, c.pool, cloud);
  const auto split_r = c.run(req);
  EXPECT_EQ(split_r.ids, mono.ids);
  EXPECT_EQ(split_r.text, mono.text);

  // The prefix still arriving: generate() waits for each layer as it is published.
  auto seg = std::make_shared<KvSegment>(c.model->hp.n_layer, int64_t(cloud.size()),
                                         c.model->hp.n_head_kv, c.model->hp.head_dim);
  const auto source = prefix_segment(*c.model, c.pool, cloud);
  std::thread producer([&] {
    for (int64_t l = 0; l < seg->n_layers(); ++l) seg->publish_layer(l, source->k(l), source->v(l));
  });
  ThreadPool edge_pool(1);  // the producer has its own core
  req.prefix = seg;
  const auto streamed =
      generate(*c.model, c.tok.get(), edge_pool, req, [](const std::string&) { return true; });
  producer.join();
  EXPECT_EQ(streamed.ids, mono.ids);
}

TEST(Generate, AFailedPrefixSurfacesAsLayerStreamError) {
  Chat c;
  const auto all = c.prompt("What does \"tree\" mean?");
  auto seg = std::make_shared<KvSegment>(c.model->hp.n_layer, 4, c.model->hp.n_head_kv,
                                         c.model->hp.head_dim);
  seg->set_error("the cloud went away");
  GenerationRequest req = request(all, 4);
  req.prefix = seg;
  EXPECT_THROW(c.run(req), LayerStreamError);
}

TEST(Generate, SeededSamplingIsReproducible) {
  Chat c;
  const auto prompt = c.prompt("Tell me something about computers.");
  SamplerParams p;
  p.temperature = 1.0f;
  std::set<std::vector<int32_t>> outputs;
  for (uint64_t seed : {1, 2, 3, 4}) {
    p.seed = seed;
    const auto a = c.run(request(prompt, 32, p));
    const auto b = c.run(request(prompt, 32, p));
    EXPECT_EQ(a.ids, b.ids) << "seed " << seed;
    EXPECT_EQ(a.text, b.text) << "seed " << seed;
    EXPECT_FALSE(a.ids.empty());
    outputs.insert(a.ids);
  }
  EXPECT_GT(outputs.size(), 1u);  // the seed does matter: this is sampling, not greedy
}

TEST(Generate, BadRequestsAreClearErrors) {
  const auto model = load_model(kFixture);
  ThreadPool pool(2);
  const auto run = [&](const GenerationRequest& req) {
    return error_of(
        [&] { generate(*model, nullptr, pool, req, [](const std::string&) { return true; }); });
  };
  EXPECT_TRUE(contains(run(request({}, 4)), "empty"));
  const std::string high = run(request({1, 2, int32_t(model->hp.n_vocab)}, 4));
  EXPECT_TRUE(contains(high, "out of range")) << high;
  EXPECT_TRUE(contains(high, std::to_string(model->hp.n_vocab))) << high;
  EXPECT_TRUE(contains(run(request({1, -3, 2}, 4)), "out of range"));
  EXPECT_TRUE(contains(run(request({1, 2}, -1)), "negative"));

  GenerationRequest req = request({1, 2, 3, 4, 5}, 6);
  req.n_ctx = 10;
  const std::string over = run(req);
  EXPECT_TRUE(contains(over, "exceed the context of 10")) << over;
  req.max_tokens = 5;  // exactly the context: fine
  EXPECT_EQ(
      generate(*model, nullptr, pool, req, [](const std::string&) { return true; }).ids.size(), 5u);
  // The model's own context when n_ctx is 0.
  const std::string train = run(request(std::vector<int32_t>(size_t(model->hp.n_ctx_train), 1), 1));
  EXPECT_TRUE(contains(train, std::to_string(model->hp.n_ctx_train))) << train;
  // A cloud prefix counts against the context too.
  auto seg =
      std::make_shared<KvSegment>(model->hp.n_layer, 3, model->hp.n_head_kv, model->hp.head_dim);
  req.prefix = seg;
  const std::string with_prefix = run(req);
  EXPECT_TRUE(contains(with_prefix, "3 cloud")) << with_prefix;
}

TEST(Generate, PromptProgressEndsWithDoneEqualToTotal) {
  Chat c;
  std::vector<int32_t> prompt = c.prompt("What does \"tree\" mean?");
  while (prompt.size() < 600) prompt.push_back(prompt[prompt.size() % 20 + 1]);  // > one chunk
  std::vector<std::pair<size_t, size_t>> calls;
  const auto r = generate(
      *c.model, c.tok.get(), c.pool, request(prompt, 2), [](const std::string&) { return true; },
      [&](size_t done, size_t total) { calls.emplace_back(done, total); });
  ASSERT_GE(calls.size(), 2u);  // 512 tokens at a time
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].second, prompt.size());
    if (i > 0) {
      EXPECT_GT(calls[i].first, calls[i - 1].first);
    }
  }
  EXPECT_EQ(calls.back().first, prompt.size());
  EXPECT_FALSE(r.finish_reason.empty());

  // A short prompt: one call, done == total.
  calls.clear();
  const auto short_prompt = c.prompt("Hi");
  generate(
      *c.model, c.tok.get(), c.pool, request(short_prompt, 1),
      [](const std::string&) { return true; },
      [&](size_t done, size_t total) { calls.emplace_back(done, total); });
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], std::make_pair(short_prompt.size(), short_prompt.size()));
}

}  // namespace
}  // namespace ep
