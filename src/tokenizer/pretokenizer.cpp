#include "tokenizer/pretokenizer.h"

#include "core/error.h"
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace ep {
namespace {

// The regexes of the original tokenizers (GPT-2's encoder.py, Llama-3's tiktoken setup, Qwen2's
// tokenizer.json), written exactly as they appear in tokenizer.json files.
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Known {
  std::string_view name;  // canonical name, as our converter writes it
  std::string_view regex;
  bool ignore_merges;
  std::array<std::string_view, 3> aliases;  // tokenizer.ggml.pre values meaning it (llama.cpp's)
};
const Known kKnown[] = {
    {"gpt-2", kGpt2Regex, false, {"gpt-2"}},
    {"llama-bpe", kLlama3Regex, true, {"llama-bpe", "llama3", "llama-v3"}},
    {"qwen2", kQwen2Regex, false, {"qwen2"}},
};

}  // namespace

struct Pretokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

Pretokenizer::Pretokenizer(std::string_view name) : name_(name) {
  const Known* known = nullptr;
  for (const Known& k : kKnown) {
    for (const std::string_view alias : k.aliases) {
      if (!alias.empty() && alias == name) known = &k;
    }
  }
  if (!known) {
    fail("tokenizer pre-tokenizer '{}' is not supported (supported: gpt-2, llama-bpe, qwen2)",
         name);
  }
  ignore_merges_ = known->ignore_merges;
  regex_ = std::make_unique<Regex>();
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  regex_->code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(known->regex.data()), known->regex.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (!regex_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    fail("pre-tokenizer '{}': regex does not compile at offset {}: {}", name, error_offset,
         reinterpret_cast<const char*>(message));
  }
  // JIT is an optimisation only; matching falls back to the interpreter when it is unavailable.
  pcre2_jit_compile(regex_->code, PCRE2_JIT_COMPLETE);
}

Pretokenizer::~Pretokenizer() = default;

std::vector<std::string_view> Pretokenizer::split(std::string_view text) const {
  std::vector<std::string_view> out;
  // Match data is per call, so one Pretokenizer can be used from several threads.
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(regex_->code, nullptr), &pcre2_match_data_free);
  if (!match) fail("pre-tokenizer '{}': out of memory", name_);
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t unmatched_from = 0;  // text between matches is kept as a piece of its own
  size_t pos = 0;
  while (pos < text.size()) {
    // The text was validated as UTF-8 by the caller.
    int rc = pcre2_match(regex_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, match.get(),
                         nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // very long runs: retry in the interpreter (heap)
      rc = pcre2_match(regex_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       match.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      fail("pre-tokenizer '{}': regex match failed: {}", name_,
           reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match.get());
    const size_t start = ov[0], end = ov[1];
    if (end == start) {  // an empty match: step over one character and search again
      pos = start + std::max<size_t>(1, utf8_char_length(text.substr(start)));
      continue;
    }
    if (start > unmatched_from) out.push_back(text.substr(unmatched_from, start - unmatched_from));
    out.push_back(text.substr(start, end - start));
    unmatched_from = pos = end;
  }
  if (unmatched_from < text.size()) out.push_back(text.substr(unmatched_from));
  return out;
}

std::optional<std::string> Pretokenizer::name_for_regex(std::string_view regex) {
  for (const Known& k : kKnown) {
    if (k.regex == regex) return std::string(k.name);
  }
  return std::nullopt;
}

}  // namespace ep
