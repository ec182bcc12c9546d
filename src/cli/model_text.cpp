#include "cli/model_text.h"

#include "core/error.h"

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
  if (std::filesystem::is_directory(path) && hf_dir_has_tokenizer(path)) {
    return Tokenizer::from_hf_dir(path);
  }
  const auto model = load_model(path);
  return require_tokenizer(*model);
}

}  // namespace ep::cli
