// Where a model's tensors come from: a GGUF file or a Hugging Face safetensors directory, seen
// through one interface that speaks GGUF tensor names ("blk.0.attn_q.weight").
#pragma once

#include "core/dtype.h"
#include "model/hparams.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ep {

class GgufFile;

struct TensorRef {
  std::string name;         // GGUF-style name
  std::string source_name;  // the name in the file
  DType type = DType::F32;
  std::vector<int64_t> shape;  // row-major, outermost first: a matrix is [rows, cols]
  const void* data = nullptr;
  uint64_t n_bytes = 0;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual std::string format() const = 0;  // "gguf" or "hf"
  virtual const HParams& hparams() const = 0;
  virtual std::optional<TensorRef> find(const std::string& gguf_name) const = 0;
  virtual std::vector<TensorRef> all_tensors() const = 0;  // in file order
  // Tokenizer identity for the fingerprint: the bytes that define the vocabulary.
  virtual std::string tokenizer_identity() const = 0;
  virtual const GgufFile* gguf() const { return nullptr; }
  virtual std::filesystem::path path() const = 0;
};

std::unique_ptr<WeightSource> open_gguf_source(const std::filesystem::path& file);
std::unique_ptr<WeightSource> open_hf_source(const std::filesystem::path& dir);

// GGUF name of a Hugging Face tensor name, or nullopt if it is not one we use
// ("model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight").
// With `gemma`, Gemma's four norms per layer: post_attention_layernorm is the attention output's
// (post_attention_norm), pre_feedforward_layernorm the feed-forward input's (ffn_norm) and
// post_feedforward_layernorm its output's (post_ffw_norm), as llama.cpp names them.
std::optional<std::string> hf_to_gguf_name(const std::string& hf_name, bool gemma = false);

}  // namespace ep
