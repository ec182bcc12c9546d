// edgeprompt run: generates text from a prompt (text through a chat template, or token ids),
// streaming it to stdout, with timings on stderr.
#include "cli/command.h"
#include "cli/model_text.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "kernels/cpu/matmul.h"
#include "model/fingerprint.h"
#include "model/model.h"
#include "protocol/kv_fetch.h"
#include "runtime/generate.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/prompt_parts.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <random>

namespace ep::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string model, system, prompt, tokens, chat_template, chat_template_file, cloud, cloud_prompt;
  bool timeline = false;
  int n_predict = 128;
  int threads = ThreadPool::default_threads();
  int64_t ctx = 0;
  std::optional<uint64_t> seed;
  std::vector<std::string> stops;
  SamplerParams sampling;
  std::string precision = "fast";
};

void write_out(std::string_view text) {
  if (text.empty()) return;
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);  // streamed: the reader sees each piece as it is produced
}

// With --cloud-prompt: the private part only (the user message in the cloud prompt's chat
// format, after its system part), tokenised here; it never leaves this process.
std::vector<int32_t> edge_tokens(const Options& o, const Model& model, const Tokenizer* tok,
                                 const std::string& template_name) {
  if (o.prompt.empty()) fail("--cloud-prompt needs --prompt TEXT (the private part)");
  if (!o.system.empty() || !o.tokens.empty()) {
    fail("--cloud-prompt takes its system part from the cloud: give only --prompt");
  }
  if (!tok) fail("the model has no tokenizer");
  const std::vector<ChatMessage> messages = {{"user", o.prompt}};
  return private_prompt_tokens(
      *tok, chat_template_by_name(template_name, model_chat_template(*model.source, tok)),
      messages);
}

// Per layer: when its KV arrived, how long the edge waited for it, how long it computed; and
// the overlap model T = (t_cc1 + t_ct1) + max(sum_{l>=2}(t_cc + t_ct), sum_{l<L} t_ec) + t_ecL,
// where cloud compute + transfer of layer l are read off the arrival times.
void print_timeline(const std::vector<double>& arrival, const std::vector<LayerTiming>& layers,
                    double ttft_s, uint64_t bytes) {
  fmt::print(stderr, "layer  kv arrived ms  edge waited ms  edge compute ms\n");
  double edge_before_last = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    fmt::print(stderr, "{:5}  {:13.2f}  {:14.2f}  {:15.2f}\n", l,
               l < arrival.size() ? arrival[l] * 1e3 : 0.0, layers[l].wait_s * 1e3,
               layers[l].compute_s * 1e3);
    if (l + 1 < layers.size()) edge_before_last += layers[l].compute_s;
  }
  if (arrival.empty() || layers.empty()) return;
  const double first = arrival.front(), last = *std::max_element(arrival.begin(), arrival.end());
  const double model_t = first + std::max(last - first, edge_before_last) + layers.back().compute_s;
  fmt::print(
      stderr,
      "KV: {} bytes in {:.2f} ms ({:.1f} MB/s); TTFT measured {:.2f} ms, overlap model {:.2f} ms "
      "(bound by {})\n",
      bytes, last * 1e3, last > 0 ? double(bytes) / last / 1e6 : 0.0, ttft_s * 1e3, model_t * 1e3,
      last - first > edge_before_last ? "transfer/cloud" : "edge compute");
}

// The prompt's token ids: --tokens as given, or --prompt rendered through the chat template.
std::vector<int32_t> prompt_tokens(const Options& o, const Model& model, const Tokenizer* tok) {
  if (!o.tokens.empty()) {
    if (!o.prompt.empty()) fail("give --prompt or --tokens, not both");
    if (!o.system.empty()) fail("--system needs --prompt (token ids are used as given)");
    if (!o.chat_template.empty() && o.chat_template != "none") {
      if (o.chat_template != "model") chat_format_from_name(o.chat_template);  // unknown: say so
      fail("--chat-template {} needs --prompt (token ids are used as given)", o.chat_template);
    }
    if (!o.chat_template_file.empty()) fail("--chat-template-file needs --prompt");
    return parse_token_list(o.tokens);
  }
  if (o.prompt.empty()) fail("the prompt is empty (give --prompt TEXT or --tokens IDS)");
  if (!tok)
    fail("{}: the model has no tokenizer (use --tokens with token ids)", model.path.string());
  if (!o.chat_template.empty() && !o.chat_template_file.empty()) {
    fail("give --chat-template or --chat-template-file, not both");
  }
  // The model's own template unless one is named or given as a file.
  const ChatTemplate own = model_chat_template(*model.source, tok);
  const ChatTemplate tmpl = !o.chat_template_file.empty()
                                ? chat_template_file(o.chat_template_file, *tok)
                            : !o.chat_template.empty() ? chat_template_by_name(o.chat_template, own)
                                                       : own;
  const std::vector<ChatMessage> messages = {{"user", o.prompt}};
  return local_chat_tokens(*tok, tmpl, o.system, messages);
}

int run(const Options& o) {
  const auto model = load_model(o.model);
  const auto tok = load_tokenizer(*model->source);
  const auto t_request = Clock::now();
  std::unique_ptr<CloudKvFetch> fetch;
  if (!o.cloud_prompt.empty()) {
    if (o.cloud.empty()) fail("--cloud-prompt needs --cloud URL");
    fetch = std::make_unique<CloudKvFetch>(o.cloud, o.cloud_prompt, *model,
                                           model_fingerprint(*model->source));
  }
  const std::vector<int32_t> prompt =
      fetch ? edge_tokens(o, *model, tok.get(), fetch->header().chat_template)
            : prompt_tokens(o, *model, tok.get());
  // The cloud prompt occupies the first positions of the context.
  const int64_t n_ctx = o.ctx > 0 ? o.ctx : model->hp.n_ctx_train;
  const int64_t room = n_ctx - (fetch ? int64_t(fetch->header().tokens.size()) : 0);
  if (int64_t(prompt.size()) >= room) {
    fail("the prompt has {} tokens but the context holds {} (it must leave room for one more)",
         prompt.size(), room);
  }
  GenerationRequest req;
  req.prefix = fetch ? fetch->segment() : nullptr;
  req.tokens = prompt;
  req.sampling = o.sampling;
  req.sampling.seed = o.seed ? *o.seed : std::random_device{}();
  req.max_tokens = int(std::min<int64_t>(o.n_predict, room - int64_t(prompt.size())));
  req.stop = o.stops;
  req.n_ctx = n_ctx;
  req.precision = o.precision == "fast" ? kernels::Precision::Fast : kernels::Precision::Exact;

  ThreadPool pool(o.threads);
  const auto t_start = Clock::now();
  GenerationResult r;
  {
    ProgressBar bar("prompt", "tokens");
    r = generate(
        *model, tok.get(), pool, req,
        [](const std::string& text) {
          write_out(text);
          return true;
        },
        [&](size_t done, size_t total) { bar.update(done, total); });
  }
  write_out("\n");

  const size_t n_gen = r.ids.size();
  fmt::print(stderr,
             "prompt: {} tokens, {:.1f} tok/s; generation: {} tokens, {:.1f} tok/s; "
             "time to first token: {:.1f} ms; seed {}\n",
             prompt.size(), double(prompt.size()) / std::max(r.prompt_s, 1e-9), n_gen,
             n_gen > 1 ? double(n_gen - 1) / std::max(r.generation_s, 1e-9) : 0.0, 1e3 * r.ttft_s,
             req.sampling.seed);
  if (fetch) {
    fmt::print(stderr, "cloud prompt '{}' v{}: {} tokens from the cloud, {} private tokens here\n",
               o.cloud_prompt, fetch->header().prompt_version, fetch->header().tokens.size(),
               prompt.size());
    if (o.timeline) {
      const double ttft_s = std::chrono::duration<double>(t_start - t_request).count() + r.ttft_s;
      print_timeline(fetch->layer_arrival_s(), r.prompt_layers, ttft_s, fetch->bytes_received());
    }
  }
  return 0;
}

}  // namespace

Command add_run(CLI::App& root) {
  auto o = std::make_shared<Options>();
  SamplerParams& s = o->sampling;
  CLI::App* app = root.add_subcommand("run", "Generate text from a prompt");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory")->required();
  app->add_option("--system", o->system, "System message (the shared cloud part of the prompt)");
  app->add_option("--prompt,-p", o->prompt, "User message (UTF-8)");
  app->add_option("--tokens", o->tokens, "Prompt as comma-separated token ids, used as given");
  app->add_option("--chat-template", o->chat_template,
                  "llama2, llama3, chatml, none, or model (default: the model's own Jinja "
                  "template, if it has one; otherwise none)");
  app->add_option("--chat-template-file", o->chat_template_file,
                  "A Jinja chat template to render the prompt with");
  app->add_option("-n,--n-predict", o->n_predict, "Most tokens to generate")
      ->check(CLI::Range(0, 1 << 24));
  app->add_option("--ctx-size,-c", o->ctx, "Context length (default: the model's)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  app->add_option("--temp", s.temperature, "Temperature; 0 is greedy");
  app->add_option("--top-k", s.top_k, "Keep the K most likely tokens (0: all)");
  app->add_option("--top-p", s.top_p, "Keep the most likely tokens up to this mass (1: all)");
  app->add_option("--min-p", s.min_p, "Drop tokens below this fraction of the top one (0: off)");
  app->add_option("--repeat-penalty", s.repeat_penalty, "Penalty on repeated tokens (1: off)");
  app->add_option("--presence-penalty", s.presence_penalty, "Subtracted from seen tokens (0: off)");
  app->add_option("--repeat-last-n", s.penalty_last_n, "Tokens the penalties look back (-1: all)");
  app->add_option("--seed", o->seed, "Random seed (default: random, printed on stderr)");
  app->add_option("--stop", o->stops, "Stop when this text is generated (repeatable)");
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  app->add_option("--cloud", o->cloud, "Cloud service URL (with --cloud-prompt)");
  app->add_option("--cloud-prompt", o->cloud_prompt,
                  "Run after this cloud prompt, its KV streamed from --cloud layer by layer");
  app->add_flag("--timeline", o->timeline, "Print the per-layer timeline of a cloud prompt run");
  app->add_option("--precision", o->precision,
                  "Matrix arithmetic: fast (8-bit activations for q8_0/q4_0, bf16 for f16/bf16 "
                  "prefill, f16 for f16 decode; default) or exact (f32 activations, "
                  "batch-invariant; docs/performance.md)")
      ->check(CLI::IsMember({"fast", "exact"}));
  return {app, [o] { return run(*o); }};
}

}  // namespace ep::cli
