// Reads a SentencePiece tokenizer.model (a serialized sentencepiece.ModelProto) with a small
// protobuf wire-format reader: we only need the pieces and a handful of settings, and this keeps
// the engine free of a protobuf/sentencepiece runtime dependency.
#pragma once

#include "tokenizer/vocab.h"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

struct SentencePieceModel {
  enum ModelType : int32_t { unigram = 1, bpe = 2, word = 3, character = 4 };
  struct Piece {
    std::string text;
    float score = 0.0f;
    TokenType type = TokenType::normal;
  };
  std::vector<Piece> pieces;
  // TrainerSpec (proto defaults)
  int32_t model_type = unigram;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  bool byte_fallback = false;
  // NormalizerSpec (proto defaults)
  std::string normalizer_name;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;

  // `name` is used in error messages.
  static SentencePieceModel parse(std::span<const uint8_t> bytes, std::string_view name);
  static SentencePieceModel load(const std::filesystem::path& path);
};

}  // namespace ep
