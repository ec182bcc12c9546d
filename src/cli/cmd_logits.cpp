// edgeprompt logits --model PATH --tokens 1,2,3 --out FILE.npy [--threads N]
//   [--split N [--kv-codec f32|f16|int8|int4[+zstd]]]
#include "cli/command.h"
#include "core/error.h"
#include "core/npy.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "model/fingerprint.h"
#include "model/model.h"
#include "protocol/kv_segment_io.h"
#include "runtime/transformer.h"

#include <memory>
#include <optional>

namespace ep::cli {

namespace {

// The cloud/edge path in one process: the first `split` tokens are computed as a cloud prompt,
// their KV goes through the wire format (serialise -> bytes -> parse), and the rest is computed
// as the edge part against it. Logits of both parts, in order.
std::vector<float> split_logits(const Model& model, const std::vector<int32_t>& tokens,
                                int64_t split, KvCodec codec, ThreadPool& pool) {
  const std::vector<int32_t> cloud_tokens(tokens.begin(), tokens.begin() + split);
  const std::vector<int32_t> edge_tokens(tokens.begin() + split, tokens.end());
  const std::string fp = model_fingerprint(*model.source);

  // Cloud: prefill, serialising each layer's KV as soon as it is computed.
  KvStreamHeader header = make_kv_header(model, fp, "split", 1, "none", cloud_tokens, codec.dtype);
  header.set_codec(codec);
  std::string wire = encode_kv_header(header);
  Transformer cloud(model, split, pool);
  cloud.set_layer_sink([&](int64_t layer, const float* k, const float* v, int64_t) {
    wire += encode_kv_layer(header, uint32_t(layer), k, v);
  });
  std::vector<float> logits, edge_logits;
  cloud.forward(cloud_tokens, logits, true);
  wire += encode_kv_end(header);

  // Edge: parse the bytes into a segment and compute the private part against it.
  KvStreamParser parser;
  parser.feed(wire);
  if (!parser.finished()) fail("KV stream incomplete");
  check_kv_header(*parser.header(), model, fp);
  const auto segment = make_segment(*parser.header());
  for (const auto& layer : parser.take_layers()) publish(*segment, layer);
  Transformer edge(model, int64_t(edge_tokens.size()), pool, segment);
  edge.forward(edge_tokens, edge_logits, true);
  logits.insert(logits.end(), edge_logits.begin(), edge_logits.end());
  return logits;
}

}  // namespace

Command add_logits(CLI::App& root) {
  struct Options {
    std::string model, tokens, out, kv_dtype, kv_codec;
    int threads = ThreadPool::default_threads();
    int64_t split = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("logits", "Write the logits at every position as .npy");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory")->required();
  app->add_option("--tokens", o->tokens, "Comma-separated token ids")->required();
  app->add_option("--out,-o", o->out, "Output .npy file, float32 [n_tokens, n_vocab]")->required();
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  app->add_option("--split", o->split,
                  "Compute the first N tokens as a cloud prompt whose KV crosses the wire format, "
                  "the rest as the edge part");
  app->add_option("--kv-dtype", o->kv_dtype, "KV wire type with --split: f32 (exact) or f16");
  app->add_option("--kv-codec", o->kv_codec,
                  std::string("KV wire codec with --split (default f32, exact): ") + kKvCodecNames)
      ->excludes("--kv-dtype");
  return {app, [o] {
            const std::vector<int32_t> tokens = parse_token_list(o->tokens);
            const auto model = load_model(o->model);
            ThreadPool pool(o->threads);
            std::vector<float> logits;
            if (o->split != 0) {
              std::optional<KvCodec> codec = KvCodec{KvDtype::F32};
              if (!o->kv_dtype.empty()) {
                const auto dtype = kv_dtype_from_name(o->kv_dtype);
                if (!dtype) fail("--kv-dtype: '{}' is not f32 or f16", o->kv_dtype);
                codec->dtype = *dtype;
              } else if (!o->kv_codec.empty()) {
                codec = kv_codec_from_name(o->kv_codec);
                if (!codec) fail("--kv-codec: '{}' is not one of {}", o->kv_codec, kKvCodecNames);
              }
              if (o->split < 1 || o->split >= int64_t(tokens.size())) {
                fail("--split {}: must leave at least one token on each side (1..{})", o->split,
                     tokens.size() - 1);
              }
              logits = split_logits(*model, tokens, o->split, *codec, pool);
            } else {
              Transformer tf(*model, int64_t(tokens.size()), pool);
              tf.forward(tokens, logits, /*all_logits=*/true);
            }
            write_npy_f32(o->out, {int64_t(tokens.size()), model->hp.n_vocab}, logits.data());
            return 0;
          }};
}

}  // namespace ep::cli
