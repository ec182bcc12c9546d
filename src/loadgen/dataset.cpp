#include "loadgen/dataset.h"

#include "core/error.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

namespace ep::loadgen {
namespace {

// Common English words: most are one token in Llama-family vocabularies.
constexpr auto kWords = std::to_array<const char*>({
    "time",    "person",    "year",     "way",      "day",     "thing",     "man",      "world",
    "life",    "hand",      "part",     "child",    "eye",     "woman",     "place",    "work",
    "week",    "case",      "point",    "company",  "number",  "group",     "problem",  "fact",
    "water",   "river",     "mountain", "garden",   "window",  "letter",    "picture",  "music",
    "story",   "history",   "market",   "school",   "family",  "friend",    "city",     "country",
    "house",   "road",      "morning",  "evening",  "winter",  "summer",    "autumn",   "spring",
    "paper",   "table",     "chair",    "bread",    "apple",   "stone",     "light",    "night",
    "dream",   "voice",     "heart",    "mind",     "answer",  "question",  "reason",   "moment",
    "power",   "money",     "service",  "system",   "program", "idea",      "example",  "result",
    "change",  "interest",  "study",    "field",    "level",   "order",     "member",   "report",
    "office",  "rate",      "sound",    "colour",   "animal",  "bird",      "forest",   "island",
    "ocean",   "valley",    "bridge",   "tower",    "castle",  "village",   "station",  "engine",
    "machine", "signal",    "circuit",  "network",  "cloud",   "device",    "model",    "token",
    "prompt",  "layer",     "value",    "matrix",   "vector",  "small",     "large",    "early",
    "young",   "important", "public",   "bad",      "good",    "different", "strong",   "simple",
    "quiet",   "bright",    "ancient",  "curious",  "gentle",  "careful",   "sudden",   "patient",
    "honest",  "brave",     "clever",   "narrow",   "wide",    "deep",      "warm",     "cold",
    "green",   "blue",      "golden",   "silver",   "run",     "walk",      "speak",    "read",
    "write",   "build",     "carry",    "follow",   "open",    "close",     "begin",    "finish",
    "listen",  "watch",     "learn",    "teach",    "choose",  "travel",    "wonder",   "gather",
    "measure", "explain",   "remember", "describe", "imagine", "consider",  "discover", "improve",
    "prepare", "always",    "never",    "often",    "slowly",  "quickly",   "together", "already",
    "almost",  "perhaps",   "again",    "rather",   "still",   "finally",   "and",      "but",
    "because", "while",     "when",     "where",    "which",   "that",      "with",     "from",
    "into",    "over",      "under",    "between",  "through", "after",     "before",   "the",
    "a",       "of",        "to",       "in",       "for",     "on",        "at",       "by",
    "about",   "as",
});

std::string join_words(const std::vector<const char*>& words, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += words[i];
  }
  return s;
}

}  // namespace

size_t approx_token_count(std::string_view text) {
  return (text.size() + 3) / 4;
}

std::string random_text(size_t n_tokens, uint64_t seed, const TokenCounter& count) {
  if (n_tokens == 0) return {};
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, kWords.size() - 1);
  std::vector<const char*> words;
  const auto grow = [&](size_t n) {
    while (words.size() < n) words.push_back(kWords[pick(rng)]);
  };
  // The number of words is found by doubling, then bisection: a few counts of the whole text
  // instead of one per word (the count may be a real tokenizer's).
  size_t hi = std::max<size_t>(1, n_tokens / 2);
  grow(hi);
  while (count(join_words(words, hi)) < n_tokens) {
    hi *= 2;
    grow(hi);
  }
  size_t lo = 1;  // invariant: the answer is in [lo, hi]; count(hi words) >= n_tokens
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (count(join_words(words, mid)) < n_tokens) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  // lo words reach n_tokens; if they pass it, one word fewer stays below.
  if (lo > 1 && count(join_words(words, lo)) > n_tokens) --lo;
  return join_words(words, lo);
}

std::vector<BenchPrompt> random_prompts(const RandomSpec& spec, size_t n, uint64_t seed,
                                        const TokenCounter& count) {
  if (!(spec.range_ratio >= 0 && spec.range_ratio < 1)) {
    fail("--random-range-ratio must be in [0, 1)");
  }
  const auto range = [&](size_t len) {
    const double r = spec.range_ratio;
    const auto lo = size_t(std::max(1.0, std::floor(double(len) * (1 - r))));
    const auto hi = std::max(lo, size_t(std::ceil(double(len) * (1 + r))));
    return std::uniform_int_distribution<size_t>(lo, hi);
  };
  std::mt19937_64 rng(seed);
  auto in = range(spec.input_len);
  auto out = range(spec.output_len);
  std::vector<BenchPrompt> prompts(n);
  for (BenchPrompt& p : prompts) {
    const size_t want = in(rng);
    p.output_len = out(rng);
    p.text = random_text(want, rng(), count);
    p.prompt_len = count(p.text);
  }
  return prompts;
}

}  // namespace ep::loadgen
