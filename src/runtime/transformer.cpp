#include "runtime/transformer.h"

namespace ep {

Transformer::Transformer(const Model& model, int64_t n_ctx, ThreadPool& pool,
                         std::shared_ptr<const KvSegment> prefix)
    : layers_(model, pool),
      cache_(model.hp.n_layer, n_ctx, model.hp.n_head_kv, model.hp.head_dim),
      prefix_(std::move(prefix)) {
  if (prefix_) {
    check_prefix_shape(model, *prefix_);
    n_prefix_ = prefix_->n_tokens();
    n_past_ = n_prefix_;
  }
}

void Transformer::forward(std::span<const int32_t> tokens, std::vector<float>& logits,
                          bool all_logits) {
  const BatchChunk chunk{tokens, n_past_ - n_prefix_, &cache_, prefix_.get(), true};
  layers_.forward(std::span(&chunk, 1), logits, all_logits);
  n_past_ += int64_t(tokens.size());
}

}  // namespace ep
