#include "cli/model_text.h"

#include "core/error.h"

namespace ep::cli {

std::unique_ptr<Tokenizer> require_tokenizer(const Model& model) {
  auto tokenizer = load_tokenizer(*model.source);
  if (!tokenizer) {
    fail("{}: the model has no tokenizer (use --tokens with token ids)", model.path.string());
  }
  return tokenizer;
}

}  // namespace ep::cli
