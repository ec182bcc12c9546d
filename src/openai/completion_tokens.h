// The token ids a completion request computes, tokenised on the machine that serves it. With a
// shared part (a cloud prompt), the request's own tokens after it: the messages rendered in the
// cloud prompt's chat format after its system part (tokenizer/prompt_parts.h). Without one, the
// whole conversation in the model's own format, or the prompt as given.
#pragma once

#include "openai/completion_request.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace ep {

// Throws http::HttpError (InvalidRequest) for ids out of range or a conversation the format
// cannot render.
std::vector<int32_t> completion_tokens(const CompletionRequest& req, const Tokenizer& tokenizer,
                                       int64_t n_vocab, ChatFormat local_format,
                                       std::optional<ChatFormat> shared_format);

}  // namespace ep
