#include "openai/completion_tokens.h"

#include "core/error.h"
#include "core/token_list.h"
#include "http/error.h"
#include "tokenizer/prompt_parts.h"

namespace ep {

std::vector<int32_t> completion_tokens(const CompletionRequest& req, const Tokenizer& tokenizer,
                                       int64_t n_vocab, const ChatTemplate& local_template,
                                       const std::optional<std::string>& shared_template) {
  try {
    if (!req.chat) {
      if (req.prompt_ids) {
        check_token_ids(*req.prompt_ids, n_vocab);
        return *req.prompt_ids;
      }
      const bool whole = !shared_template;  // a prompt after a cloud prompt has no BOS of its own
      return tokenizer.encode(req.prompt, whole && tokenizer.add_bos_default(), whole);
    }
    if (shared_template) {
      return private_prompt_tokens(
          tokenizer, chat_template_by_name(*shared_template, local_template), req.messages);
    }
    return local_chat_tokens(tokenizer, local_template, req.system, req.messages, req.tools);
  } catch (const http::HttpError&) {
    throw;
  } catch (const Error& e) {
    http::fail(http::ErrorKind::InvalidRequest, "{}", e.what());
  }
}

}  // namespace ep
