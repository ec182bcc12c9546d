// Shared by the text subcommands: a model's tokenizer, or a clear error when it has none.
#pragma once

#include "model/model.h"
#include "tokenizer/model_tokenizer.h"

#include <memory>
#include <string>

namespace ep::cli {

// The tokenizer of the model at `path` (loading the model only to find it); ep::Error if none.
std::unique_ptr<Tokenizer> require_tokenizer(const Model& model);

// The tokenizer at `path`, read without loading any weights: a Hugging Face directory's tokenizer
// files (so a directory that holds only a tokenizer works), or a GGUF file's tokenizer.ggml.*
// metadata (a whole model, or a vocabulary-only file such as llama.cpp's ggml-vocab-*.gguf).
// ep::Error naming what is missing when there is no tokenizer.
std::unique_ptr<Tokenizer> require_tokenizer(const std::string& path);

}  // namespace ep::cli
