// edgeprompt perplexity --model M --file TEXT [--ctx N] [--stride S] [--threads T] [--json]
//   [--precision exact|fast] [--kv-codec C [--split N]] [--compare]
#include "cli/command.h"
#include "cli/model_text.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "protocol/kv_codec.h"
#include "runtime/perplexity.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

namespace ep::cli {
namespace {

// Bytes a codec wrote for the cloud parts' KV, and what f16 would have written.
struct CodecBytes {
  std::atomic<uint64_t> coded{0}, f16{0};
};

// The round trip of one layer's KV through `codec`: encoded as the cloud would send it, decoded
// as the edge would receive it.
KvTransform codec_round_trip(const Model& model, KvCodec codec, CodecBytes& bytes) {
  return [&model, codec, &bytes](int64_t, float* k, float* v, int64_t n) {
    const KvLayerShape shape{uint64_t(n), uint64_t(model.hp.n_head_kv),
                             uint64_t(model.hp.head_dim)};
    const std::string payload = encode_kv_payload(shape, codec, k, v);
    bytes.coded += payload.size();
    bytes.f16 += kv_payload_bytes(shape, KvCodec{});
    decode_kv_payload(shape, codec, payload, k, v);
  };
}

double agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t same = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) same += a[i] == b[i];
  return a.empty() ? 0.0 : double(same) / double(a.size());
}

}  // namespace

Command add_perplexity(CLI::App& root) {
  struct Options {
    std::string model, file;
    int64_t ctx = 512, stride = 0;
    int threads = ThreadPool::default_threads();
    bool json = false, no_bos = false, compare = false;
    std::string precision = "exact", kv_codec;
    int64_t split = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app =
      root.add_subcommand("perplexity", "Perplexity of a text under the model (sliding window)");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory")->required();
  app->add_option("--file,-f", o->file, "Text file (UTF-8), scored as one sequence")->required();
  app->add_option("--ctx,-c", o->ctx, "Window length in tokens")->check(CLI::Range(2, 1 << 24));
  app->add_option("--stride", o->stride, "Tokens between window starts (default: ctx / 2)");
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  app->add_flag("--no-bos", o->no_bos, "Do not put the BOS token the model would add first");
  app->add_flag("--json", o->json, "Print one JSON object on the last line");
  app->add_option("--precision", o->precision,
                  "Matrix arithmetic: exact (f32 activations; default) or fast")
      ->check(CLI::IsMember({"fast", "exact"}));
  app->add_option("--kv-codec", o->kv_codec,
                  std::string("Each window's first --split tokens are a cloud prompt whose KV "
                              "crosses this wire codec: ") +
                      kKvCodecNames);
  app->add_option("--split", o->split,
                  "Cloud-prompt tokens per window with --kv-codec (default: ctx - stride)");
  app->add_flag("--compare", o->compare,
                "Also score the reference (with --kv-codec: the same split, KV unchanged; else "
                "the exact precision) and print the perplexity change and top-1 agreement");
  return {app, [o] {
            const auto model = load_model(o->model);
            const auto tok = require_tokenizer(*model);
            const MappedFile mapped(o->file);
            const std::string text(reinterpret_cast<const char*>(mapped.data()), mapped.size());
            const auto tokens = tok->encode(text, !o->no_bos && tok->add_bos_default(), false);
            const int64_t stride = o->stride > 0 ? o->stride : std::max<int64_t>(1, o->ctx / 2);
            ThreadPool pool(o->threads);
            PerplexityOptions popt;
            popt.precision =
                o->precision == "fast" ? kernels::Precision::Fast : kernels::Precision::Exact;
            popt.keep_top1 = o->compare;
            CodecBytes bytes;
            std::optional<KvCodec> codec;
            if (!o->kv_codec.empty()) {
              codec = kv_codec_from_name(o->kv_codec);
              if (!codec) fail("--kv-codec: '{}' is not one of {}", o->kv_codec, kKvCodecNames);
              popt.split = o->split > 0 ? o->split : o->ctx - stride;
              if (popt.split < 1) fail("--kv-codec needs --split N or --stride below --ctx");
              popt.kv_transform = codec_round_trip(*model, *codec, bytes);
            } else if (o->split != 0) {
              fail("--split needs --kv-codec");
            }
            const bool tty = isatty(fileno(stderr)) != 0;
            const auto progress = [&](int64_t w, int64_t n, const PerplexityResult& so_far) {
              if (tty || w + 1 == n || (w + 1) % 20 == 0) {
                fmt::print(stderr, "{}[{}/{}] perplexity {:.4f}, {:.0f} tok/s{}", tty ? "\r" : "",
                           w + 1, n, so_far.perplexity, double(so_far.n_evaluated) / so_far.seconds,
                           tty ? "" : "\n");
              }
            };
            const auto r = perplexity(*model, tokens, o->ctx, stride, pool, popt, progress);
            if (tty) fmt::print(stderr, "\n");
            const double tok_s = double(r.n_evaluated) / r.seconds;
            fmt::print(
                "perplexity {:.4f} ({:.4f} nats/token) over {} tokens of {}; {} windows of "
                "{} tokens, stride {}; {:.1f} s, {:.0f} tok/s, {} threads, {} precision\n",
                r.perplexity, r.mean_nll, r.n_scored, o->file, r.n_windows, o->ctx, stride,
                r.seconds, tok_s, o->threads, o->precision);
            nlohmann::json j = {{"perplexity", r.perplexity},
                                {"mean_nll", r.mean_nll},
                                {"tokens_scored", r.n_scored},
                                {"tokens_evaluated", r.n_evaluated},
                                {"windows", r.n_windows},
                                {"ctx", o->ctx},
                                {"stride", stride},
                                {"seconds", r.seconds},
                                {"tok_s", tok_s},
                                {"threads", o->threads},
                                {"precision", o->precision}};
            if (codec) {
              const double ratio = double(bytes.f16) / double(std::max<uint64_t>(1, bytes.coded));
              fmt::print(
                  "kv codec {}: {} bytes for the cloud parts' KV, {:.3f}x smaller than f16 "
                  "({} bytes), split {}\n",
                  kv_codec_name(*codec), bytes.coded.load(), ratio, bytes.f16.load(), popt.split);
              j["kv_codec"] = kv_codec_name(*codec);
              j["split"] = popt.split;
              j["kv_bytes"] = bytes.coded.load();
              j["kv_bytes_f16"] = bytes.f16.load();
              j["kv_ratio_vs_f16"] = ratio;
            }
            if (o->compare) {
              PerplexityOptions ref = popt;
              ref.kv_transform = nullptr;  // the split's KV as computed (f32)
              if (!codec) ref.precision = kernels::Precision::Exact;
              const auto base = perplexity(*model, tokens, o->ctx, stride, pool, ref);
              const double delta = (r.perplexity / base.perplexity - 1) * 100;
              const double top1 = agreement(r.top1, base.top1);
              fmt::print(
                  "reference ({}) perplexity {:.4f}: change {:+.3f} %, top-1 agreement "
                  "{:.4f} over {} positions\n",
                  codec ? "KV unchanged" : "exact precision", base.perplexity, delta, top1,
                  r.top1.size());
              j["reference_perplexity"] = base.perplexity;
              j["perplexity_change_percent"] = delta;
              j["top1_agreement"] = top1;
            }
            if (o->json) fmt::print("{}\n", j.dump());
            return 0;
          }};
}

}  // namespace ep::cli
