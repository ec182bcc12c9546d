#include "protocol/kv_segment_io.h"

#include "core/error.h"
#include "core/token_list.h"

namespace ep {

KvStreamHeader make_kv_header(const Model& model, const std::string& fingerprint,
                              const std::string& prompt_id, uint64_t version,
                              const std::string& chat_template, std::vector<int32_t> tokens,
                              KvDtype dtype) {
  KvStreamHeader h;
  h.fingerprint = fingerprint;
  h.prompt_id = prompt_id;
  h.prompt_version = version;
  h.chat_template = chat_template;
  h.tokens = std::move(tokens);
  h.dtype = dtype;
  h.n_layers = uint32_t(model.hp.n_layer);
  h.n_kv_heads = uint32_t(model.hp.n_head_kv);
  h.head_dim = uint32_t(model.hp.head_dim);
  return h;
}

void check_kv_header(const KvStreamHeader& h, const Model& model, const std::string& fingerprint) {
  if (h.fingerprint != fingerprint) {
    throw KvMismatch(
        fmt::format("model mismatch: the cloud's KV was computed by model {}, this "
                    "model is {}",
                    h.fingerprint, fingerprint));
  }
  if (h.n_layers != model.hp.n_layer || h.n_kv_heads != model.hp.n_head_kv ||
      h.head_dim != model.hp.head_dim) {
    throw KvMismatch(fmt::format(
        "KV shape mismatch: stream has {} layers x {} kv heads x {}, model has {} x {} x {}",
        h.n_layers, h.n_kv_heads, h.head_dim, model.hp.n_layer, model.hp.n_head_kv,
        model.hp.head_dim));
  }
  check_token_ids(h.tokens, model.hp.n_vocab, "KV stream");
}

std::shared_ptr<KvSegment> make_segment(const KvStreamHeader& h) {
  return std::make_shared<KvSegment>(h.n_layers, int64_t(h.tokens.size()), h.n_kv_heads,
                                     h.head_dim);
}

void publish(KvSegment& segment, const KvStreamParser::Layer& layer) {
  segment.publish_layer(layer.index, layer.k.data(), layer.v.data());
}

}  // namespace ep
