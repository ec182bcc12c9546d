#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "core/token_list.h"
#include "model/gguf.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/unicode.h"

#include <algorithm>

namespace ep {
namespace {

// Control tokens that end a turn in common chat formats; generation stops at them even when the
// GGUF names only EOS (llama.cpp does the same).
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|eot_id|>",    "<|eom_id|>",      "<|im_end|>", "<|end|>",    "<end_of_turn>",
    "<|endoftext|>", "<|end_of_text|>", "<EOT>",      "<|return|>", "<｜end▁of▁sentence｜>",
};

std::string spm_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i).starts_with("\xE2\x96\x81")) {
      out += ' ';
      i += 3;
    } else {
      out += text[i++];
    }
  }
  return out;
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  vocab_.validate("tokenizer");
  if (vocab_.kind == VocabKind::spm) {
    spm_ = std::make_unique<SpmTokenizer>(vocab_);
  } else {
    bpe_ = std::make_unique<BpeTokenizer>(vocab_);
  }
  specials_ = std::make_unique<SpecialTokenMatcher>(vocab_);

  eog_.assign(size_t(vocab_.size()), false);
  for (const int32_t id : {vocab_.eos, vocab_.eot, vocab_.eom}) {
    if (id >= 0) eog_[size_t(id)] = true;
  }
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    if (vocab_.types[size_t(id)] != TokenType::control) continue;
    for (const std::string_view text : kEndOfTurnTexts) {
      if (vocab_.tokens[size_t(id)] == text) eog_[size_t(id)] = true;
    }
  }

  by_text_.resize(size_t(vocab_.size()));
  for (int32_t id = 0; id < vocab_.size(); ++id) by_text_[size_t(id)] = id;
  std::stable_sort(by_text_.begin(), by_text_.end(), [&](int32_t a, int32_t b) {
    return vocab_.tokens[size_t(a)] < vocab_.tokens[size_t(b)];
  });
}

Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& file) {
  Vocab vocab = Vocab::from_gguf(file);
  try {
    return std::make_unique<Tokenizer>(std::move(vocab));
  } catch (const Error& e) {
    fail("{}: {}", file.name(), e.what());
  }
}

std::unique_ptr<Tokenizer> Tokenizer::from_hf_dir(const std::filesystem::path& dir) {
  Vocab vocab = Vocab::from_hf_dir(dir);
  try {
    return std::make_unique<Tokenizer>(std::move(vocab));
  } catch (const Error& e) {
    fail("{}: {}", dir.string(), e.what());
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  check_utf8(text, "text to tokenize");
  std::vector<int32_t> out;
  if (add_bos) {
    if (vocab_.bos < 0) fail("tokenizer: BOS requested but the vocabulary has no BOS token");
    out.push_back(vocab_.bos);
  }
  // SentencePiece puts a space before the text, and llama.cpp again after each special token.
  bool after_special = true;
  for (const auto& fragment : specials_->split(text, parse_special)) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      after_special = true;
    } else if (spm_) {
      spm_->encode(fragment.text, vocab_.add_space_prefix && after_special, out);
      after_special = false;
    } else {
      bpe_->encode(fragment.text, out);
    }
  }
  return out;
}

std::string Tokenizer::piece(int32_t id, bool skip_special, bool& at_start) const {
  check_token_ids(std::span(&id, 1), vocab_.size(), "tokenizer");
  const std::string& text = vocab_.tokens[size_t(id)];
  const TokenType type = vocab_.types[size_t(id)];
  if (vocab_.is_special(id)) {
    if (skip_special) return {};
    at_start = false;
    return text;
  }
  const bool first = at_start;
  at_start = false;
  if (type == TokenType::user_defined) return text;  // added tokens are stored as plain text
  if (type == TokenType::byte) {
    const int b = byte_token_value(text);
    return b >= 0 ? std::string(1, char(b)) : text;
  }
  if (vocab_.kind == VocabKind::bpe) return bpe_->byte_map().decode(text);
  std::string out = spm_unescape(text);
  if (first && vocab_.add_space_prefix && out.starts_with(' ')) out.erase(0, 1);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool at_start = true;
  for (const int32_t id : ids) out += piece(id, skip_special, at_start);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  bool at_start = false;
  return piece(id, false, at_start);
}

bool Tokenizer::is_eog(int32_t id) const {
  return id >= 0 && id < vocab_.size() && eog_[size_t(id)];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const auto it = std::lower_bound(by_text_.begin(), by_text_.end(), text, [&](int32_t id, auto t) {
    return std::string_view(vocab_.tokens[size_t(id)]) < t;
  });
  if (it == by_text_.end() || vocab_.tokens[size_t(*it)] != text) return std::nullopt;
  return *it;
}

}  // namespace ep
