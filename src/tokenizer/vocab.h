// A tokenizer's vocabulary and settings, as stored in GGUF metadata (tokenizer.ggml.*) or read from
// a Hugging Face model directory. The Vocab is plain data; the algorithms live in the tokenizers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

class GgufFile;
class GgufWriter;

// GGUF tokenizer.ggml.token_type values (the same numbers SentencePiece uses).
enum class TokenType : uint8_t {
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,  // <0xNN> byte-fallback tokens
};

enum class VocabKind {
  spm,  // tokenizer.ggml.model = "llama": SentencePiece-style BPE with scores and byte fallback
  bpe,  // tokenizer.ggml.model = "gpt2": byte-level BPE with merge ranks
};

// The byte a "<0xNN>" byte-fallback token stands for, or -1 when `text` is not one.
int byte_token_value(std::string_view text);

struct Vocab {
  VocabKind kind = VocabKind::spm;
  // Pre-tokenizer name (tokenizer.ggml.pre): "gpt-2", "llama-bpe", "qwen2", ...; "default" for spm.
  std::string pre = "default";

  std::vector<std::string> tokens;  // token id -> text (spm: spaces as U+2581; bpe: byte-mapped)
  std::vector<float> scores;        // empty, or one per token (spm merge priority)
  std::vector<TokenType> types;     // one per token
  std::vector<std::string> merges;  // bpe: "left right", highest priority first

  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  int32_t eot = -1, eom = -1;  // end-of-turn / end-of-message, where the model defines them
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // spm: prepend a space to the text (and drop it when decoding)

  int32_t size() const { return int32_t(tokens.size()); }
  bool is_special(int32_t id) const;  // control or unknown: rendered only on request
  std::optional<int32_t> find(std::string_view text) const;  // linear: for loading, not encoding

  // Throws ep::Error naming `source` when array sizes disagree or a special id is out of range.
  void validate(std::string_view source) const;

  // Reads tokenizer.ggml.* from a GGUF file.
  static Vocab from_gguf(const GgufFile& file);
  // Reads tokenizer.model (SentencePiece) or tokenizer.json (byte-level BPE), plus
  // tokenizer_config.json, from a Hugging Face model directory.
  static Vocab from_hf_dir(const std::filesystem::path& dir);
  // Writes the standard tokenizer.ggml.* keys; from_gguf on the result gives back this Vocab.
  void write_to_gguf(GgufWriter& writer) const;
};

}  // namespace ep
