// edgeprompt bench-serve --base-url URL [--endpoint /v1/completions] [--dataset random|sharegpt F]
// [--request-rate R] [--max-concurrency N] [--num-prompts N] ...: a load generator for any
// OpenAI-compatible server (our cloud and edges, llama-server, vLLM) with the metrics of vLLM's
// benchmark_serving; a one-screen summary and, with --result-file, the JSON with every request.
#include "cli/command.h"
#include "cli/model_text.h"
#include "cli/progress.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "loadgen/arrivals.h"
#include "loadgen/load_runner.h"
#include "loadgen/report.h"
#include "loadgen/server_setup.h"
#include "loadgen/sharegpt.h"

#include <fmt/chrono.h>
#include <fmt/core.h>

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <sstream>

namespace ep::cli {
namespace {

using loadgen::BenchPrompt;
using ojson = nlohmann::ordered_json;

struct Options {
  loadgen::Target target;
  std::string api_key_file, tokenizer, request_rate = "inf", cloud_prompt;
  std::string cloud_prompt_template = "model", admin_token, result_file, percentiles = "90,99";
  std::string extra_body;
  std::vector<std::string> dataset = {"random"}, goodput;
  double burstiness = 1.0, temperature = 0;
  size_t max_concurrency = 0, num_prompts = 1000, warmup = 0, system_prompt_len = 0;
  std::optional<size_t> sharegpt_output_len;
  uint64_t seed = 0;
  loadgen::RandomSpec random;
  bool register_prompt = false, ignore_eos = false;
};

double parse_rate(const std::string& s) {
  if (s == "inf") return INFINITY;
  try {
    size_t end = 0;
    const double r = std::stod(s, &end);
    if (end == s.size() && r > 0 && std::isfinite(r)) return r;
  } catch (const std::exception&) {
  }
  fail("--request-rate '{}': give requests per second (> 0) or inf", s);
}

std::vector<double> parse_percentiles(const std::string& s) {
  std::vector<double> ps;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t end = 0;
      const double p = std::stod(item, &end);
      if (end == item.size() && p >= 0 && p <= 100) {
        ps.push_back(p);
        continue;
      }
    } catch (const std::exception&) {
    }
    fail("--metric-percentiles: '{}' is not a percentile in [0, 100]", item);
  }
  return ps;
}

std::string api_key(const Options& o) {
  if (!o.target.api_key.empty()) return o.target.api_key;
  if (!o.api_key_file.empty()) {
    std::string k = read_whole_file(o.api_key_file);
    while (!k.empty() && (k.back() == '\n' || k.back() == '\r' || k.back() == ' ')) k.pop_back();
    return k;
  }
  const char* env = std::getenv("OPENAI_API_KEY");
  return env ? env : "";
}

std::vector<BenchPrompt> load_prompts(const Options& o, const loadgen::TokenCounter& count) {
  const std::string& kind = o.dataset[0];
  if (kind == "random") {
    if (o.dataset.size() > 1) fail("--dataset random takes no file");
    return loadgen::random_prompts(o.random, o.num_prompts, o.seed, count);
  }
  if (kind == "sharegpt") {
    if (o.dataset.size() < 2) fail("--dataset sharegpt needs the JSON file: --dataset sharegpt F");
    auto prompts = loadgen::sharegpt_prompts(loadgen::read_sharegpt_file(o.dataset[1]),
                                             o.num_prompts, o.seed, count, o.sharegpt_output_len);
    if (prompts.size() < o.num_prompts) {
      fmt::print(stderr, "bench-serve: only {} conversations of {} pass the length filter\n",
                 prompts.size(), o.dataset[1]);
    }
    if (prompts.empty()) fail("{}: no conversation passes the length filter", o.dataset[1]);
    return prompts;
  }
  fail("--dataset '{}': random or sharegpt", kind);
}

ojson settings_json(const Options& o, double rate, const loadgen::GoodputSlo& slo) {
  ojson j;
  j["date"] = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::time(nullptr)));
  j["base_url"] = o.target.base_url;
  j["endpoint"] = o.target.endpoint;
  j["model_id"] = o.target.model;
  j["dataset"] = o.dataset;
  j["num_prompts"] = o.num_prompts;
  j["request_rate"] = std::isinf(rate) ? ojson("inf") : ojson(rate);
  j["burstiness"] = o.burstiness;
  j["max_concurrency"] = o.max_concurrency ? ojson(o.max_concurrency) : ojson(nullptr);
  j["seed"] = o.seed;
  j["warmup"] = o.warmup;
  j["system_prompt_len"] = o.system_prompt_len;
  j["cloud_prompt"] = o.cloud_prompt.empty() ? ojson(nullptr) : ojson(o.cloud_prompt);
  j["ignore_eos"] = o.ignore_eos;
  j["tokenizer"] =
      o.tokenizer.empty() ? ojson("approximate: 4 bytes per token") : ojson(o.tokenizer);
  ojson g = ojson::object();
  if (slo.ttft_ms) g["ttft"] = *slo.ttft_ms;
  if (slo.tpot_ms) g["tpot"] = *slo.tpot_ms;
  if (slo.e2el_ms) g["e2el"] = *slo.e2el_ms;
  j["goodput_slo_ms"] = g;
  return j;
}

int run(Options& o) {
  const double rate = parse_rate(o.request_rate);
  const std::vector<double> percentiles = parse_percentiles(o.percentiles);
  const loadgen::GoodputSlo slo = loadgen::parse_goodput(o.goodput);
  if (o.num_prompts == 0) fail("--num-prompts must be at least 1");
  if (o.target.endpoint.empty() || o.target.endpoint[0] != '/')
    fail("--endpoint must start with /");
  o.target.api_key = api_key(o);
  loadgen::split_base_url(o.target.base_url);  // a bad URL fails before any work

  std::unique_ptr<Tokenizer> tok;
  if (!o.tokenizer.empty()) tok = require_tokenizer(o.tokenizer);
  const loadgen::TokenCounter count = [&](std::string_view text) -> size_t {
    return tok ? tok->encode(text, false, false).size() : loadgen::approx_token_count(text);
  };
  if (o.target.model.empty()) {
    o.target.model = loadgen::served_model(o.target).value_or("default");
  }

  loadgen::BodyOptions body;
  body.ignore_eos = o.ignore_eos;
  body.temperature = o.temperature;
  if (!o.extra_body.empty()) {
    try {
      body.extra_body = nlohmann::json::parse(o.extra_body);
    } catch (const std::exception& e) {
      fail("--extra-body is not JSON: {}", e.what());
    }
    if (!body.extra_body.is_object()) fail("--extra-body must be a JSON object");
  }
  // The shared system prompt: sent with every request, or registered once as a cloud prompt.
  const std::string system =
      o.system_prompt_len ? loadgen::random_text(o.system_prompt_len, o.seed ^ 0x5eed5eedULL, count)
                          : std::string();
  size_t system_tokens = system.empty() ? 0 : count(system);
  if (!o.cloud_prompt.empty()) {
    body.cloud_prompt = o.cloud_prompt;
    if (o.register_prompt) {
      if (system.empty()) fail("--register-cloud-prompt needs --system-prompt-len");
      system_tokens = loadgen::register_cloud_prompt(
          o.target, o.cloud_prompt, system, o.cloud_prompt_template,
          o.admin_token.empty() ? o.target.api_key : o.admin_token, o.target.timeout_s);
    } else {
      if (!system.empty())
        fail("--system-prompt-len with --cloud-prompt needs --register-cloud-prompt");
      system_tokens = loadgen::cloud_prompt_tokens(o.target, o.cloud_prompt);
    }
  } else {
    if (o.register_prompt) fail("--register-cloud-prompt needs --cloud-prompt ID");
    body.system_prompt = system;
  }

  const std::vector<BenchPrompt> prompts = load_prompts(o, count);
  loadgen::RunPlan plan;
  plan.max_concurrency = o.max_concurrency;
  plan.warmup = o.warmup;
  plan.send_times_s = loadgen::arrival_times(prompts.size(), rate, o.burstiness, o.seed);
  for (const BenchPrompt& p : prompts) {
    plan.bodies.push_back(loadgen::request_body(o.target, body, p));
    plan.prompt_lens.push_back(p.prompt_len + system_tokens);
  }

  // One request first, as vLLM does: a server that cannot answer is an error, not a run of
  // failures.
  const loadgen::RequestRecord probe =
      loadgen::send_streaming(o.target, plan.bodies[0], plan.prompt_lens[0], loadgen::Clock::now());
  if (!probe.ok()) fail("the first test request to {} failed: {}", o.target.base_url, probe.error);

  fmt::print(stderr, "bench-serve: {} requests to {}{} at {} req/s{}, model {}\n", prompts.size(),
             o.target.base_url, o.target.endpoint, o.request_rate,
             o.max_concurrency ? fmt::format(", at most {} at once", o.max_concurrency) : "",
             o.target.model);
  loadgen::RunResult result;
  {
    ProgressBar bar("bench-serve", "requests");
    result = loadgen::run_benchmark(o.target, plan,
                                    [&](size_t done, size_t total) { bar.update(done, total); });
  }
  const loadgen::Summary s =
      loadgen::summarize(result.records, result.duration_s, slo, percentiles);
  std::string first_error;
  for (const auto& r : result.records) {
    if (!r.ok()) {
      first_error = r.error;
      break;
    }
  }
  fmt::print("{}", loadgen::summary_text(s, "Serving Benchmark Result", first_error, slo.any()));
  if (!o.result_file.empty()) {
    const ojson j = loadgen::result_json(settings_json(o, rate, slo), s, result.records);
    write_atomically(o.result_file, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

Command add_bench_serve(CLI::App& root) {
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand(
      "bench-serve", "Load-test an OpenAI-compatible server (streaming; vLLM's serving metrics)");
  app->add_option("--base-url", o->target.base_url, "Server, e.g. http://127.0.0.1:8080");
  app->add_option("--endpoint", o->target.endpoint, "/v1/completions or /v1/chat/completions");
  app->add_option("--api-key", o->target.api_key,
                  "Bearer token (default: --api-key-file, else $OPENAI_API_KEY)");
  app->add_option("--api-key-file", o->api_key_file, "File holding the bearer token");
  app->add_option("--model", o->target.model, "Model name sent (default: the server's first)");
  app->add_option("--tokenizer", o->tokenizer,
                  "Model (GGUF or HF directory) whose tokenizer counts prompt and output lengths "
                  "(default: 4 bytes per token)");
  app->add_option("--dataset", o->dataset, "random, or sharegpt FILE (ShareGPT V3 JSON)")
      ->expected(1, 2);
  app->add_option("--num-prompts", o->num_prompts, "Requests in the run");
  app->add_option("--random-input-len", o->random.input_len, "Random dataset: prompt tokens");
  app->add_option("--random-output-len", o->random.output_len, "Random dataset: output tokens");
  app->add_option("--random-range-ratio", o->random.range_ratio,
                  "Random dataset: lengths uniform in len*(1-r)..len*(1+r)");
  app->add_option("--sharegpt-output-len", o->sharegpt_output_len,
                  "ShareGPT: generate this many tokens instead of the answer's length");
  app->add_option("--system-prompt-len", o->system_prompt_len,
                  "A shared system prompt of N tokens before every prompt");
  app->add_option("--cloud-prompt", o->cloud_prompt,
                  "Send \"cloud_prompt\": ID (EdgePrompt servers) instead of the system prompt");
  app->add_flag("--register-cloud-prompt", o->register_prompt,
                "PUT the --system-prompt-len prompt as cloud prompt ID first, wait until ready");
  app->add_option("--cloud-prompt-template", o->cloud_prompt_template,
                  "chat_template of the registered cloud prompt (default: model)");
  app->add_option("--admin-token", o->admin_token, "Token for the PUT (default: the API key)");
  app->add_option("--request-rate", o->request_rate, "Requests per second, or inf (all at once)");
  app->add_option("--burstiness", o->burstiness,
                  "Gamma shape of the inter-arrival times (1: Poisson)");
  app->add_option("--max-concurrency", o->max_concurrency, "Requests in flight at most (0: any)");
  app->add_option("--seed", o->seed, "Seed of the dataset sample and the arrival times");
  app->add_option("--warmup", o->warmup, "Requests sent before the run, not counted");
  app->add_flag("--ignore-eos", o->ignore_eos,
                "Send ignore_eos so that every output has the dataset's length");
  app->add_option("--temperature", o->temperature, "Sampling temperature (default 0)");
  app->add_option("--extra-body", o->extra_body, "JSON object merged into every request body");
  app->add_option("--goodput", o->goodput, "Objectives, e.g. ttft:500 tpot:50 e2el:5000 (ms)");
  app->add_option("--metric-percentiles", o->percentiles, "Percentiles reported (default 90,99)");
  app->add_option("--timeout", o->target.timeout_s, "Seconds a request may wait for a byte");
  app->add_option("--result-file", o->result_file, "Write the summary and every request as JSON");
  return {app, [o] { return run(*o); }};
}

}  // namespace ep::cli
