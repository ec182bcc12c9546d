#include "tokenizer/pretokenizer.h"

#include "core/error.h"
#include "tokenizer/pretokenizer_rules.h"
#include "tokenizer/unicode.h"

#include <fmt/ranges.h>

#include <algorithm>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace ep {
namespace {

using MatchData = std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)>;

// Splits `piece` by `code` and appends the pieces to `out`. The piece is the whole subject, so a
// lookahead such as (?!\S) sees its end and nothing beyond, as in a Hugging Face Split.
void split_piece(const pcre2_code* code, pcre2_match_data* match, std::string_view piece,
                 std::string_view name, std::vector<std::string_view>& out) {
  const auto subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t unmatched_from = 0;  // text between matches is kept as a piece of its own
  size_t pos = 0;
  while (pos <= piece.size()) {
    // The text was validated as UTF-8 by the caller.
    int rc = pcre2_match(code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK, match, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // very long runs: retry in the interpreter (heap)
      rc = pcre2_match(code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match,
                       nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      fail("pre-tokenizer '{}': regex match failed: {}", name,
           reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match);
    const size_t start = ov[0], end = ov[1];
    if (start > unmatched_from) {
      out.push_back(piece.substr(unmatched_from, start - unmatched_from));
      unmatched_from = start;
    }
    if (end == start) {  // an empty match only cuts: step over one character and search again
      if (start == piece.size()) break;
      pos = start + std::max<size_t>(1, utf8_char_length(piece.substr(start)));
      continue;
    }
    out.push_back(piece.substr(start, end - start));
    unmatched_from = pos = end;
  }
  if (unmatched_from < piece.size()) out.push_back(piece.substr(unmatched_from));
}

}  // namespace

struct Pretokenizer::Regex {
  std::vector<pcre2_code*> codes;
  ~Regex() {
    for (pcre2_code* code : codes) pcre2_code_free(code);
  }
};

Pretokenizer::Pretokenizer(std::string_view name) : name_(name) {
  const PretokenizerRules* rules = find_pretokenizer_rules(name);
  if (!rules) {
    fail("tokenizer pre-tokenizer '{}' is not supported (supported: {})", name,
         fmt::join(known_names(), ", "));
  }
  ignore_merges_ = rules->ignore_merges;
  regex_ = std::make_unique<Regex>();
  for (const std::string_view regex : rules->regexes) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (!code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      fail("pre-tokenizer '{}': regex does not compile at offset {}: {}", name, error_offset,
           reinterpret_cast<const char*>(message));
    }
    regex_->codes.push_back(code);
    // JIT is an optimisation only; matching falls back to the interpreter when it is unavailable.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  }
}

Pretokenizer::~Pretokenizer() = default;

std::vector<std::string_view> Pretokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces, next;
  if (!text.empty()) pieces.push_back(text);
  for (const pcre2_code* code : regex_->codes) {
    // Match data is per call, so one Pretokenizer can be used from several threads.
    MatchData match(pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
    if (!match) fail("pre-tokenizer '{}': out of memory", name_);
    next.clear();
    for (const std::string_view piece : pieces) split_piece(code, match.get(), piece, name_, next);
    pieces.swap(next);
  }
  return pieces;
}

std::optional<std::string> Pretokenizer::name_for_regex(std::string_view regex) {
  for (const PretokenizerRules& r : pretokenizer_rules()) {
    if (r.regexes.size() == 1 && r.regexes.front() == regex) return std::string(r.name);
  }
  return std::nullopt;
}

std::vector<std::string> Pretokenizer::known_names() {
  std::vector<std::string> names;
  for (const PretokenizerRules& r : pretokenizer_rules()) {
    names.emplace_back(r.name);
    names.insert(names.end(), r.aliases.begin(), r.aliases.end());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace ep
