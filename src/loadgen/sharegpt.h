// The ShareGPT V3 dataset (a JSON list of {"id", "conversations": [{"from": "human"|"gpt",
// "value"}, ...]}) as benchmark prompts, sampled the way vLLM's benchmark samples it:
// conversations of at least two turns, the first human turn as the prompt, the answer that
// follows it giving the output length, shuffled with the seed, then taken in order while they
// pass the length filter, until there are enough.
#pragma once

#include "loadgen/dataset.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ep::loadgen {

// A prompt and its answer: the first "human" turn and the first "gpt" turn after it, of a
// conversation with at least two turns.
struct SharegptPair {
  std::string prompt, answer;
};

// Reads the pairs of a ShareGPT-format JSON text, streaming (the real file is ~650 MB: only the
// two turns used are kept). ep::Error, naming `source`, if it is not a JSON list of objects.
std::vector<SharegptPair> read_sharegpt(std::string_view json_text, const std::string& source);
std::vector<SharegptPair> read_sharegpt_file(const std::filesystem::path& path);

// vLLM's filter: prompt of at least 4 and at most 1024 tokens, an answer of at least 4 tokens
// (unless the output length is fixed), prompt + output at most 2048 tokens.
bool sharegpt_keep(size_t prompt_len, size_t output_len, bool fixed_output);

// Up to `n` prompts (fewer if not enough pass the filter). `fixed_output_len` replaces the
// answers' lengths (--sharegpt-output-len).
std::vector<BenchPrompt> sharegpt_prompts(std::vector<SharegptPair> pairs, size_t n, uint64_t seed,
                                          const TokenCounter& count,
                                          std::optional<size_t> fixed_output_len);

}  // namespace ep::loadgen
