// The bytes bench-serve reads from outside: server-sent events split anywhere, a stream's JSON
// chunks (chat, completions, usage-only, error events), and the ShareGPT format with vLLM's
// length filter. Also the random dataset's lengths.
#include "core/error.h"
#include "loadgen/dataset.h"
#include "loadgen/prometheus.h"
#include "loadgen/sharegpt.h"
#include "loadgen/sse.h"
#include "loadgen/stream_request.h"
#include "test_util.h"

#include <gtest/gtest.h>

namespace ep::loadgen {
namespace {

std::vector<std::string> events_of(const std::string& bytes, size_t piece) {
  std::vector<std::string> out;
  SseParser p([&](const std::string& d) {
    out.push_back(d);
    return true;
  });
  for (size_t i = 0; i < bytes.size(); i += piece) {
    EXPECT_TRUE(p.feed(std::string_view(bytes).substr(i, piece)));
  }
  EXPECT_TRUE(p.finish());
  return out;
}

TEST(ParserSse, EventsAreTheSameWhereverTheBytesAreSplit) {
  const std::string stream =
      ": keep-alive comment\n\n"
      "data: {\"a\":1}\n\n"
      "event: message\r\ndata:{\"b\":2}\r\n\r\n"
      "data: line one\ndata: line two\nid: 7\n\n"
      "data: cr only\r\r"
      "data\n\n"
      "data: [DONE]\n";  // no blank line at the end: finish() dispatches it
  const std::vector<std::string> want = {"{\"a\":1}", "{\"b\":2}", "line one\nline two",
                                         "cr only",   "",          "[DONE]"};
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    ASSERT_EQ(events_of(stream, piece), want) << "pieces of " << piece;
  }
}

TEST(ParserSse, StopsWhenAskedAndRefusesEndlessLines) {
  size_t n = 0;
  SseParser p([&](const std::string&) { return ++n < 2; });
  EXPECT_FALSE(p.feed("data: 1\n\ndata: 2\n\ndata: 3\n\n"));
  EXPECT_EQ(n, 2u);
  EXPECT_FALSE(p.feed("data: 4\n\n"));
  SseParser small([](const std::string&) { return true; }, 16);
  EXPECT_FALSE(small.feed(std::string(100, 'x')));
  EXPECT_FALSE(small.error().empty());
}

TEST(ParserStreamEvent, ChunksFillTheRecordTheWayVllmTimesThem) {
  RequestRecord r;
  double last = 0;
  // A role-only chunk (no text) does not start the clock.
  EXPECT_TRUE(
      apply_stream_event(R"({"choices":[{"delta":{"role":"assistant"}}]})", true, 0.1, r, last));
  EXPECT_EQ(r.chunks, 0u);
  EXPECT_TRUE(
      apply_stream_event(R"({"choices":[{"delta":{"content":"He"}}]})", true, 0.2, r, last));
  EXPECT_TRUE(
      apply_stream_event(R"({"choices":[{"delta":{"content":"llo"}}]})", true, 0.5, r, last));
  EXPECT_TRUE(apply_stream_event(
      R"({"choices":[{"delta":{"content":null},"finish_reason":"stop"}]})", true, 0.6, r, last));
  // vLLM's usage chunk: empty choices.
  EXPECT_TRUE(apply_stream_event(
      R"({"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}})", true,
      0.7, r, last));
  EXPECT_FALSE(apply_stream_event("[DONE]", true, 0.8, r, last));
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(r.text, "Hello");
  EXPECT_EQ(r.chunks, 2u);
  EXPECT_DOUBLE_EQ(r.ttft, 0.2);
  ASSERT_EQ(r.itl.size(), 1u);
  EXPECT_DOUBLE_EQ(r.itl[0], 0.3);
  EXPECT_DOUBLE_EQ(last, 0.5);  // the end-to-end latency ends at the last text
  EXPECT_EQ(r.output_len, 3u);
  EXPECT_TRUE(r.usage_reported);
  EXPECT_EQ(r.server_prompt_tokens, 9u);

  RequestRecord c;
  double lc = 0;
  EXPECT_TRUE(apply_stream_event(R"({"choices":[{"text":"abc","index":0}]})", false, 0.3, c, lc));
  EXPECT_EQ(c.text, "abc");
  EXPECT_FALSE(
      apply_stream_event(R"({"error":{"message":"engine failed","code":500}})", false, 0.4, c, lc));
  EXPECT_EQ(c.error, "error event: engine failed");
  RequestRecord bad;
  EXPECT_FALSE(apply_stream_event("{not json", false, 0.1, bad, lc));
  EXPECT_FALSE(bad.error.empty());
  RequestRecord arr;
  EXPECT_FALSE(apply_stream_event("[1,2]", false, 0.1, arr, lc));
  EXPECT_FALSE(arr.error.empty());
}

TEST(ParserSharegpt, KeepsTheFirstHumanTurnAndTheAnswerAfterIt) {
  const auto pairs = read_sharegpt_file(test::fixtures_dir() / "sharegpt" / "small.json");
  ASSERT_EQ(pairs.size(), 4u);
  EXPECT_EQ(pairs[0].prompt, "What is the tallest mountain on Earth, measured from sea level?");
  EXPECT_EQ(pairs[0].answer, "Mount Everest, at about 8,849 metres above sea level.");
  EXPECT_EQ(pairs[1].prompt, "Name three primary colours, please, in one line.");
  EXPECT_EQ(pairs[2].prompt, "first human turn is the prompt of this conversation");
  EXPECT_EQ(pairs[2].answer, "the first answer after the prompt gives the output length");
  EXPECT_EQ(pairs[3].prompt, "Short prompt with \"quotes\" and unicode: caf\u00e9 \u2603");
}

TEST(ParserSharegpt, RefusesWhatIsNotAListOfConversations) {
  for (const char* text : {"{\"conversations\": []}", "[1, 2]", "[[]]", "[{\"id\": 1}", "", "7"}) {
    EXPECT_THROW(read_sharegpt(text, "t.json"), Error) << text;
  }
  EXPECT_TRUE(read_sharegpt("[]", "t.json").empty());
  EXPECT_TRUE(read_sharegpt(R"([{"conversations": "no"}])", "t.json").empty());
  EXPECT_THROW(read_sharegpt_file("/no/such/sharegpt.json"), Error);
}

TEST(ParserSharegpt, LengthFilterIsVllms) {
  EXPECT_FALSE(sharegpt_keep(3, 100, false));
  EXPECT_TRUE(sharegpt_keep(4, 100, false));
  EXPECT_FALSE(sharegpt_keep(100, 3, false));  // too short an answer...
  EXPECT_TRUE(sharegpt_keep(100, 3, true));    // ...unless the output length is fixed
  EXPECT_TRUE(sharegpt_keep(1024, 1024, false));
  EXPECT_FALSE(sharegpt_keep(1025, 10, false));
  EXPECT_FALSE(sharegpt_keep(1024, 1025, false));
  EXPECT_FALSE(sharegpt_keep(3, 100, true));
}

TEST(ParserSharegpt, SampleIsSeededAndFiltered) {
  std::vector<SharegptPair> pairs;
  for (size_t i = 0; i < 50; ++i) {
    // Prompt lengths 0..49 words, answers 10 words: a word is one token for this counter.
    std::string p;
    for (size_t w = 0; w < i; ++w) p += "w ";
    pairs.push_back({p, "a a a a a a a a a a "});
  }
  const TokenCounter words = [](std::string_view t) {
    return size_t(std::count(t.begin(), t.end(), ' '));
  };
  const auto a = sharegpt_prompts(pairs, 20, 5, words, std::nullopt);
  const auto b = sharegpt_prompts(pairs, 20, 5, words, std::nullopt);
  const auto c = sharegpt_prompts(pairs, 20, 6, words, std::nullopt);
  ASSERT_EQ(a.size(), 20u);
  std::vector<size_t> la, lb, lc;
  for (size_t i = 0; i < 20; ++i) {
    la.push_back(a[i].prompt_len);
    lb.push_back(b[i].prompt_len);
    lc.push_back(c[i].prompt_len);
    EXPECT_GE(a[i].prompt_len, 4u);
    EXPECT_EQ(a[i].output_len, 10u);
  }
  EXPECT_EQ(la, lb);
  EXPECT_NE(la, lc);
  // Only 46 pass (prompts of 4..49 words): asking for more gives those.
  EXPECT_EQ(sharegpt_prompts(pairs, 100, 5, words, std::nullopt).size(), 46u);
  const auto fixed = sharegpt_prompts(pairs, 5, 5, words, size_t(2));
  for (const auto& p : fixed) EXPECT_EQ(p.output_len, 2u);
}

TEST(ParserSharegpt, ReadsTheShippedSyntheticSample) {
  const auto pairs =
      read_sharegpt_file(test::source_dir() / "bench" / "data" / "synthetic_sharegpt.json");
  EXPECT_GT(pairs.size(), 190u);  // all but the lone prompts
  EXPECT_LT(pairs.size(), 200u);
  const auto prompts = sharegpt_prompts(pairs, 1000, 0, approx_token_count, std::nullopt);
  EXPECT_EQ(prompts.size(), 190u);  // as bench/data/README.md says
  size_t in = 0;
  for (const auto& p : prompts) {
    EXPECT_TRUE(sharegpt_keep(p.prompt_len, p.output_len, false));
    in += p.prompt_len;
  }
  EXPECT_GT(double(in) / double(prompts.size()), 100.0);
}

TEST(ParserPrometheus, SamplesAreSummedOverLabelsAndBucketsSkipped) {
  const Metrics m = parse_prometheus(
      "# HELP a_total Things.\n# TYPE a_total counter\na_total 3\n"
      "b{mode=\"x\"} 1.5\nb{mode=\"y\",z=\"}\\\"\"} 2\r\n"
      "h_bucket{le=\"1\"} 4\nh_bucket{le=\"+Inf\"} 5\nh_sum 0.25\nh_count 5\n"
      "t 7 1700000000000\n\nbroken\nnan_metric NaN\n{x} 3\nc notanumber\nd 1e3");
  EXPECT_DOUBLE_EQ(m.at("a_total"), 3);
  EXPECT_DOUBLE_EQ(m.at("h_sum"), 0.25);
  EXPECT_DOUBLE_EQ(m.at("h_count"), 5);
  EXPECT_DOUBLE_EQ(m.at("t"), 7);  // a timestamp after the value is not the value
  EXPECT_DOUBLE_EQ(m.at("d"), 1000);
  EXPECT_FALSE(m.contains("h_bucket"));
  EXPECT_FALSE(m.contains("broken"));
  EXPECT_FALSE(m.contains("nan_metric"));
  EXPECT_FALSE(m.contains("c"));
  EXPECT_DOUBLE_EQ(m.at("b"), 3.5);  // a quoted '}' does not end the labels
  EXPECT_EQ(m.size(), 6u);
  const Metrics d = metrics_delta({{"a_total", 1}}, {{"a_total", 3}, {"new", 2}});
  EXPECT_DOUBLE_EQ(d.at("a_total"), 2);
  EXPECT_DOUBLE_EQ(d.at("new"), 2);
}

TEST(LoadgenDataset, RandomTextHasTheLengthAsked) {
  const TokenCounter approx = approx_token_count;
  for (size_t n : {7, 64, 300, 1024}) {
    const std::string t = random_text(n, n, approx);
    EXPECT_LE(approx(t), n);
    EXPECT_GE(approx(t) + 3, n) << t;  // within one word of it
  }
  EXPECT_EQ(random_text(50, 1, approx), random_text(50, 1, approx));
  EXPECT_NE(random_text(50, 1, approx), random_text(50, 2, approx));
  EXPECT_EQ(random_text(0, 1, approx), "");
  // A length below one word's is one word.
  EXPECT_EQ(random_text(1, 1, approx).find(' '), std::string::npos);
  const TokenCounter words = [](std::string_view t) {
    return t.empty() ? 0 : size_t(std::count(t.begin(), t.end(), ' ')) + 1;
  };
  EXPECT_EQ(words(random_text(333, 9, words)), 333u);  // exact when every step is one token
}

TEST(LoadgenDataset, RandomPromptsDrawLengthsInTheRange) {
  const TokenCounter words = [](std::string_view t) {
    return t.empty() ? 0 : size_t(std::count(t.begin(), t.end(), ' ')) + 1;
  };
  RandomSpec spec;
  spec.input_len = 100;
  spec.output_len = 20;
  spec.range_ratio = 0.25;
  const auto ps = random_prompts(spec, 200, 3, words);
  size_t min_in = 1000, max_in = 0, min_out = 1000, max_out = 0;
  for (const auto& p : ps) {
    EXPECT_EQ(words(p.text), p.prompt_len);
    min_in = std::min(min_in, p.prompt_len);
    max_in = std::max(max_in, p.prompt_len);
    min_out = std::min(min_out, p.output_len);
    max_out = std::max(max_out, p.output_len);
  }
  EXPECT_GE(min_in, 75u);
  EXPECT_LE(max_in, 125u);
  EXPECT_LT(min_in, 85u);  // the range is used, not only its middle
  EXPECT_GT(max_in, 115u);
  EXPECT_GE(min_out, 15u);
  EXPECT_LE(max_out, 25u);
  spec.range_ratio = 0;
  for (const auto& p : random_prompts(spec, 5, 3, words)) {
    EXPECT_EQ(p.prompt_len, 100u);
    EXPECT_EQ(p.output_len, 20u);
  }
  spec.range_ratio = 1;
  EXPECT_THROW(random_prompts(spec, 5, 3, words), Error);
}

}  // namespace
}  // namespace ep::loadgen
