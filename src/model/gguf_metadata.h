// The GGUF metadata keys that describe a model's hyper-parameters (the inverse of what
// gguf_source.cpp reads), shared by the converter and the synthetic-model writer.
#pragma once

#include "core/dtype.h"
#include "model/gguf.h"
#include "model/hparams.h"

#include <string>

namespace ep {

// GGUF architecture name for a model: Mistral is written as "llama" (as other converters do),
// with its sliding window kept under llama.attention.sliding_window.
std::string gguf_arch_name(const HParams& hp);

// The attention score scale a GGUF gemma3 file implies (it stores none).
float gemma3_gguf_attn_scale(const HParams& hp);

// Sets general.* and <arch>.* keys. `weights_type` sets general.file_type (the ggml "ftype").
void write_hparams_metadata(GgufWriter& w, const HParams& hp, DType weights_type,
                            const std::string& model_name);

}  // namespace ep
