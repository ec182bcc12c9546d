// Shared by the text subcommands: a model's tokenizer, or a clear error when it has none.
#pragma once

#include "model/model.h"
#include "tokenizer/model_tokenizer.h"

#include <memory>
#include <string>

namespace ep::cli {

// The tokenizer of the model at `path` (loading the model only to find it); ep::Error if none.
std::unique_ptr<Tokenizer> require_tokenizer(const Model& model);

// The tokenizer at `path`: a Hugging Face directory's tokenizer files are read directly, so a
// directory that holds only a tokenizer (no weights) works; anything else loads the model.
std::unique_ptr<Tokenizer> require_tokenizer(const std::string& path);

}  // namespace ep::cli
