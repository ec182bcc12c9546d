// edgeprompt info --model PATH [--json]
#include "cli/command.h"
#include "model/fingerprint.h"
#include "model/model.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>

namespace ep::cli {
namespace {

std::string rope_description(const Model& m) {
  const HParams& hp = m.hp;
  std::string s = fmt::format(
      "theta {}, {}", hp.rope_theta,
      hp.rope_layout == RopeLayout::RotateHalf ? "rotate-half pairs" : "adjacent pairs");
  if (hp.rope_scaling.type == RopeScaling::Type::Linear) {
    s += fmt::format(", linear scaling x{}", hp.rope_scaling.factor);
  }
  if (!m.rope_freq_factors.empty()) s += ", llama3 frequency scaling";
  return s;
}

}  // namespace

Command add_info(CLI::App& root) {
  struct Options {
    std::string model;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app =
      root.add_subcommand("info", "Show a model's architecture, shapes and fingerprint");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory")->required();
  app->add_flag("--json", o->json, "Print one JSON object");
  return {app, [o] {
            const auto m = load_model(o->model);
            const HParams& hp = m->hp;
            std::map<std::string, int64_t> by_type;
            for (const auto& t : m->source->all_tensors())
              by_type[std::string(dtype_name(t.type))]++;
            const std::string fp = model_fingerprint(*m->source);
            if (o->json) {
              nlohmann::json j = {{"path", o->model},
                                  {"format", m->source->format()},
                                  {"architecture", hp.arch},
                                  {"n_vocab", hp.n_vocab},
                                  {"n_embd", hp.n_embd},
                                  {"n_layer", hp.n_layer},
                                  {"n_head", hp.n_head},
                                  {"n_head_kv", hp.n_head_kv},
                                  {"head_dim", hp.head_dim},
                                  {"n_ff", hp.n_ff},
                                  {"n_ctx_train", hp.n_ctx_train},
                                  {"rms_norm_eps", hp.rms_norm_eps},
                                  {"rope_theta", hp.rope_theta},
                                  {"qkv_bias", hp.attn_qkv_bias},
                                  {"tied_embeddings", hp.tied_embeddings},
                                  {"sliding_window", hp.sliding_window},
                                  {"n_params", m->n_params()},
                                  {"weight_bytes", m->weight_bytes()},
                                  {"tensor_types", by_type},
                                  {"fingerprint", fp}};
              fmt::print("{}\n", j.dump());
              return 0;
            }
            fmt::print("model:          {}\n", o->model);
            fmt::print("format:         {}\n", m->source->format());
            fmt::print("architecture:   {}\n", hp.arch);
            fmt::print("vocabulary:     {}\n", hp.n_vocab);
            fmt::print("hidden size:    {}\n", hp.n_embd);
            fmt::print("layers:         {}\n", hp.n_layer);
            fmt::print("heads:          {} query, {} key/value, head dim {}\n", hp.n_head,
                       hp.n_head_kv, hp.head_dim);
            fmt::print("feed-forward:   {}\n", hp.n_ff);
            fmt::print("context:        {} (training)\n", hp.n_ctx_train);
            fmt::print("rope:           {}\n", rope_description(*m));
            fmt::print("rms norm eps:   {}\n", hp.rms_norm_eps);
            fmt::print("qkv bias:       {}\n", hp.attn_qkv_bias ? "yes" : "no");
            fmt::print("tied embedding: {}\n", hp.tied_embeddings ? "yes" : "no");
            if (hp.sliding_window > 0) fmt::print("sliding window: {}\n", hp.sliding_window);
            std::string types;
            for (const auto& [t, n] : by_type)
              types += fmt::format("{}{} x{}", types.empty() ? "" : ", ", t, n);
            fmt::print("tensors:        {} ({})\n", m->source->all_tensors().size(), types);
            fmt::print("parameters:     {} ({:.3f} B)\n", m->n_params(),
                       double(m->n_params()) / 1e9);
            fmt::print("weight bytes:   {} ({:.2f} MiB)\n", m->weight_bytes(),
                       double(m->weight_bytes()) / (1 << 20));
            fmt::print("fingerprint:    {}\n", fp);
            return 0;
          }};
}

}  // namespace ep::cli
