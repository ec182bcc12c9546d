// The token ids a completion request computes, tokenised on the machine that serves it. With a
// shared part (a cloud prompt), the request's own tokens after it: the messages rendered in the
// cloud prompt's chat template after its system part (tokenizer/prompt_parts.h). Without one, the
// whole conversation in the model's own template (with the request's tools), or the prompt as
// given.
#pragma once

#include "openai/completion_request.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ep {

// Throws http::HttpError (InvalidRequest) for ids out of range or a conversation the format
// cannot render (a template that fails included). `shared_template`: the name of the cloud
// prompt's template ("model": `local_template`, the model's own).
std::vector<int32_t> completion_tokens(const CompletionRequest& req, const Tokenizer& tokenizer,
                                       int64_t n_vocab, const ChatTemplate& local_template,
                                       const std::optional<std::string>& shared_template);

}  // namespace ep
