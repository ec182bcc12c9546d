// The serving engine on the trained default model: many concurrent requests under continuous
// batching over paged KV give, token for token, the answer each request gets alone (generate()
// with its own contiguous cache), in every cache mode; the modes agree with each other; a KV
// pool too small for everyone preempts and recomputes without changing any output; a client
// that leaves is dropped; requests that can never run are refused before any work.
#include "runtime/serving_engine.h"

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "runtime/transformer.h"
#include "test_util.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/prompt_parts.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace ep {
namespace {

const char* const kSystem =
    "You are a dictionary. Explain the word the user asks about in one sentence.";
const char* const kWords[] = {
    "melancholy", "river", "bright",  "to whisper", "ancient", "harbour",  "curious", "to wander",
    "lantern",    "quiet", "gravity", "to borrow",  "meadow",  "stubborn", "velvet",  "to gather"};

struct Fixture {
  std::unique_ptr<Model> model = load_model(test::default_model());
  std::unique_ptr<Tokenizer> tok = load_tokenizer(*model->source);
  ThreadPool pool{2};
  std::vector<int32_t> system = cloud_prompt_tokens(*tok, ChatFormat::chatml, kSystem);

  // Private tokens of request i: one of the words, asked in one of three ways (lengths differ).
  std::vector<int32_t> user(int i) const {
    static const char* const forms[] = {"What does \"{}\" mean?", "Define {}.",
                                        "Please explain the word \"{}\" to me, briefly."};
    const std::string word = kWords[size_t(i) % std::size(kWords)];
    std::string text = forms[size_t(i / int(std::size(kWords))) % 3];
    text.replace(text.find("{}"), 2, word);
    const std::vector<ChatMessage> m = {{"user", text}};
    return private_prompt_tokens(*tok, ChatFormat::chatml, m);
  }
  std::vector<int32_t> whole(int i) const {
    std::vector<int32_t> t = system;
    const auto u = user(i);
    t.insert(t.end(), u.begin(), u.end());
    return t;
  }
  // The cloud prompt's KV, as a relay or an edge holds it.
  std::shared_ptr<KvSegment> system_kv() {
    auto seg = std::make_shared<KvSegment>(model->hp.n_layer, int64_t(system.size()),
                                           model->hp.n_head_kv, model->hp.head_dim);
    Transformer tf(*model, int64_t(system.size()), pool);
    tf.set_layer_sink(
        [&](int64_t l, const float* k, const float* v, int64_t) { seg->publish_layer(l, k, v); });
    std::vector<float> logits;
    tf.forward(system, logits, false);
    return seg;
  }
};

GenerationRequest greedy(std::vector<int32_t> tokens, int max_tokens,
                         std::shared_ptr<const KvSegment> prefix = nullptr) {
  GenerationRequest r;
  r.tokens = std::move(tokens);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  r.prefix = std::move(prefix);
  return r;
}

int max_tokens_of(int i) {
  return 4 + (i * 7) % 13;  // 4 .. 16 new tokens
}

// Sends every request at once from its own thread; returns the texts in request order.
std::vector<GenerationResult> run_concurrently(ServingEngine& engine,
                                               const std::vector<GenerationRequest>& reqs) {
  std::vector<GenerationResult> out(reqs.size());
  std::vector<std::string> streamed(reqs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < reqs.size(); ++i) {
    threads.emplace_back([&, i] {
      out[i] = engine.generate(reqs[i], [&](const std::string& piece) {
        streamed[i] += piece;
        return true;
      });
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(streamed[i], out[i].text) << i;
  return out;
}

class ServingEngineModes : public ::testing::TestWithParam<CacheMode> {};

TEST_P(ServingEngineModes, FortyEightConcurrentRequestsEqualEachAlone) {
  Fixture f;
  const CacheMode mode = GetParam();
  const auto prefix = mode == CacheMode::Relay ? f.system_kv() : nullptr;
  std::vector<GenerationRequest> reqs;
  std::vector<GenerationResult> alone;
  for (int i = 0; i < 48; ++i) {
    reqs.push_back(mode == CacheMode::Relay ? greedy(f.user(i), max_tokens_of(i), prefix)
                                            : greedy(f.whole(i), max_tokens_of(i)));
    alone.push_back(generate(*f.model, f.tok.get(), f.pool, reqs.back(),
                             [](const std::string&) { return true; }));
  }
  EngineOptions opt;
  opt.max_seqs = 16;
  opt.max_batched_tokens = 96;  // chunked prefill beside the decodes
  opt.cache_mode = mode;
  ServingEngine engine(*f.model, f.tok.get(), f.pool, opt);
  const auto batched = run_concurrently(engine, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(batched[i].ids, alone[i].ids) << "request " << i;
    EXPECT_EQ(batched[i].text, alone[i].text) << "request " << i;
    EXPECT_EQ(batched[i].finish_reason, alone[i].finish_reason) << "request " << i;
  }
  const EngineStats s = engine.stats();
  EXPECT_GT(s.steps, 0u);
  EXPECT_LT(s.steps, 48u * 16u) << "requests were not batched";
  if (mode == CacheMode::Prefix) {
    EXPECT_GE(s.prefix_hit_tokens, 32u * 16u) << "the shared system prompt was not reused";
  } else {
    EXPECT_EQ(s.prefix_hit_tokens, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(All, ServingEngineModes,
                         ::testing::Values(CacheMode::None, CacheMode::Prefix, CacheMode::Relay),
                         [](const ::testing::TestParamInfo<CacheMode>& mode) {
                           return std::string(mode.param == CacheMode::None     ? "None"
                                              : mode.param == CacheMode::Prefix ? "Prefix"
                                                                                : "Relay");
                         });

TEST(ServingEngine, RelayAndPrefixAnswerAsNoneDoes) {
  Fixture f;
  const auto prefix = f.system_kv();
  for (int i = 0; i < 16; ++i) {
    const auto none = generate(*f.model, f.tok.get(), f.pool, greedy(f.whole(i), 12),
                               [](const std::string&) { return true; });
    const auto relay = generate(*f.model, f.tok.get(), f.pool, greedy(f.user(i), 12, prefix),
                                [](const std::string&) { return true; });
    EXPECT_EQ(relay.text, none.text) << kWords[i];
  }
}

TEST(ServingEngine, PrefixCacheBlocksAreSharedOnlyWithinOneSalt) {
  Fixture f;
  EngineOptions opt;
  opt.cache_mode = CacheMode::Prefix;
  ServingEngine engine(*f.model, f.tok.get(), f.pool, opt);
  const auto ok = [](const std::string&) { return true; };
  auto a = greedy(f.whole(0), 4);
  a.cache_salt = 1;
  const auto first = engine.generate(a, ok);
  auto b = greedy(f.whole(1), 4);  // same system prompt, another tenant
  b.cache_salt = 2;
  const auto other = engine.generate(b, ok);
  EXPECT_EQ(engine.stats().prefix_hit_tokens, 0u) << "a block crossed tenants";
  b.cache_salt = 1;  // the same tenant again: its system prompt's full blocks are reused
  const auto same = engine.generate(b, ok);
  EXPECT_GE(engine.stats().prefix_hit_tokens, 16u);
  EXPECT_EQ(same.ids, other.ids);
  EXPECT_FALSE(first.ids.empty());
}

TEST(ServingEngine, IgnoreEosRunsToMaxTokens) {
  Fixture f;
  ServingEngine engine(*f.model, f.tok.get(), f.pool, {});
  const auto ok = [](const std::string&) { return true; };
  const auto natural = engine.generate(greedy(f.whole(0), 120), ok);
  ASSERT_EQ(natural.finish_reason, "stop") << "the answer should end with its end token";
  auto r = greedy(f.whole(0), int(natural.ids.size()) + 12);
  r.ignore_eos = true;
  const auto forced = engine.generate(r, ok);
  EXPECT_EQ(forced.finish_reason, "length");
  ASSERT_EQ(forced.ids.size(), natural.ids.size() + 12);
  EXPECT_TRUE(std::equal(natural.ids.begin(), natural.ids.end(), forced.ids.begin()));
  EXPECT_TRUE(f.tok->is_eog(forced.ids[natural.ids.size()])) << "the end token is kept";
}

TEST(ServingEngine, PreemptionUnderATinyKvPoolChangesNoOutput) {
  Fixture f;
  std::vector<GenerationRequest> reqs;
  std::vector<GenerationResult> alone;
  for (int i = 0; i < 12; ++i) {
    reqs.push_back(greedy(f.whole(i), 16));
    alone.push_back(generate(*f.model, f.tok.get(), f.pool, reqs.back(),
                             [](const std::string&) { return true; }));
  }
  EngineOptions opt;
  opt.max_seqs = 12;
  opt.kv_block = 16;
  // Room for about three of these sequences at once: the rest wait, and decodes that run out of
  // blocks preempt the latest admitted.
  const int64_t row = f.model->hp.n_head_kv * f.model->hp.head_dim;
  const uint64_t block_bytes = uint64_t(2 * f.model->hp.n_layer * 16 * row) * sizeof(float);
  opt.kv_cache_bytes = 12 * block_bytes;
  ServingEngine engine(*f.model, f.tok.get(), f.pool, opt);
  const auto batched = run_concurrently(engine, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(batched[i].ids, alone[i].ids) << i;
  EXPECT_GT(engine.stats().preemptions, 0u);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST(ServingEngine, AClientThatLeavesIsDroppedAndOthersGoOn) {
  Fixture f;
  EngineOptions opt;
  opt.max_seqs = 4;
  ServingEngine engine(*f.model, f.tok.get(), f.pool, opt);
  std::string got;
  auto leaving = greedy(f.whole(0), 200);
  leaving.stop = {};
  const auto left = engine.generate(leaving, [&](const std::string& piece) {
    got += piece;
    return false;  // gone after the first piece
  });
  EXPECT_EQ(got, left.text.substr(0, got.size()));
  EXPECT_LT(left.ids.size(), 200u);
  const auto alone = generate(*f.model, f.tok.get(), f.pool, greedy(f.whole(1), 8),
                              [](const std::string&) { return true; });
  const auto after =
      engine.generate(greedy(f.whole(1), 8), [](const std::string&) { return true; });
  EXPECT_EQ(after.ids, alone.ids);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST(ServingEngine, AFullQueueRefusesNewRequestsAndServesTheRest) {
  Fixture f;
  EngineOptions opt;
  opt.max_seqs = 1;
  opt.max_waiting = 2;
  ServingEngine engine(*f.model, f.tok.get(), f.pool, opt);
  const auto alone = generate(*f.model, f.tok.get(), f.pool, greedy(f.whole(2), 48),
                              [](const std::string&) { return true; });
  std::atomic<int> busy{0}, served{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      try {
        const auto r =
            engine.generate(greedy(f.whole(2), 48), [](const std::string&) { return true; });
        EXPECT_EQ(r.ids, alone.ids);
        ++served;
      } catch (const EngineBusy&) {
        ++busy;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(busy.load(), 0);
  EXPECT_GE(served.load(), 2);
  EXPECT_EQ(busy + served, 8);
}

TEST(ServingEngine, RequestsThatCanNeverRunAreRefusedBeforeAnyWork) {
  Fixture f;
  EngineOptions opt;
  const int64_t row = f.model->hp.n_head_kv * f.model->hp.head_dim;
  opt.kv_cache_bytes = 4 * uint64_t(2 * f.model->hp.n_layer * 16 * row) * sizeof(float);
  ServingEngine engine(*f.model, f.tok.get(), f.pool, opt);
  const auto ok = [](const std::string&) { return true; };
  EXPECT_THROW(engine.generate(greedy({}, 4), ok), Error);
  EXPECT_THROW(engine.generate(greedy({1, 99999}, 4), ok), Error);
  try {
    engine.generate(greedy(f.whole(0), 100), ok);  // 4 blocks of 16 cannot hold it
    FAIL() << "accepted a request larger than the KV pool";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KV pool"), std::string::npos) << e.what();
  }
  try {
    engine.generate(greedy(f.whole(0), 5000), ok);
    FAIL() << "accepted a request longer than the context";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine.stats().steps, 0u);
}

}  // namespace
}  // namespace ep
