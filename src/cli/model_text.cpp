#include "cli/model_text.h"

#include "core/error.h"
#include "model/gguf.h"

#include <filesystem>

namespace ep::cli {

std::unique_ptr<Tokenizer> require_tokenizer(const Model& model) {
  auto tokenizer = load_tokenizer(*model.source);
  if (!tokenizer) {
    fail("{}: the model has no tokenizer (use --tokens with token ids)", model.path.string());
  }
  return tokenizer;
}

std::unique_ptr<Tokenizer> require_tokenizer(const std::string& path) {
  if (std::filesystem::is_directory(path)) {
    if (hf_dir_has_tokenizer(path)) return Tokenizer::from_hf_dir(path);
    // A directory without tokenizer files: loading the model gives the precise error.
    return require_tokenizer(*load_model(path));
  }
  // A GGUF file: a whole model or a vocabulary only (tokenizer metadata, no tensors). The
  // tokenizer is read from the metadata; the weights are never loaded.
  const auto file = GgufFile::open(path);
  if (file->find("tokenizer.ggml.model")) return Tokenizer::from_gguf(*file);
  if (file->tensors().empty()) {
    fail("{}: neither weights nor a vocabulary (no tensors and no tokenizer.ggml.model metadata)",
         path);
  }
  fail(
      "{}: the model has no tokenizer (no tokenizer.ggml.model metadata; use --tokens with token "
      "ids)",
      path);
}

}  // namespace ep::cli
