// edgeprompt bench-serve --base-url URL [--endpoint /v1/completions] [--dataset random|sharegpt F]
// [--request-rate R] [--max-concurrency N] [--num-prompts N] ...: a load generator for any
// OpenAI-compatible server (our cloud and edges, llama-server, vLLM) with the metrics of vLLM's
// benchmark_serving; a one-screen summary and, with --result-file, the JSON with every request.
#include "cli/command.h"
#include "cli/edge_fleet.h"
#include "cli/model_text.h"
#include "cli/progress.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "loadgen/arrivals.h"
#include "loadgen/load_runner.h"
#include "loadgen/report.h"
#include "loadgen/server_cost.h"
#include "loadgen/server_setup.h"
#include "loadgen/sharegpt.h"

#include <fmt/chrono.h>
#include <fmt/core.h>

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <sstream>

#include <unistd.h>

namespace ep::cli {
namespace {

using loadgen::BenchPrompt;
using ojson = nlohmann::ordered_json;

struct Options {
  loadgen::Target target;  // base_url unused: base_urls
  std::vector<std::string> base_urls = {"http://127.0.0.1:8080"};
  std::string cloud_url, edge_model;
  size_t edges = 0, edge_max_seqs = 1, edge_threads = 1;
  std::vector<std::string> edge_args;
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
  j["base_url"] = o.base_urls.size() == 1 ? ojson(o.base_urls[0]) : ojson(o.base_urls);
  j["cloud_url"] = o.cloud_url.empty() ? ojson(nullptr) : ojson(o.cloud_url);
  j["edges"] = o.edges;
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

// The servers the requests go to: the --base-url list, or N edges started here on the cloud at
// --base-url. `cloud` is where cloud prompts are registered and its metrics read.
struct Servers {
  std::unique_ptr<EdgeFleet> fleet;
  std::vector<loadgen::Target> targets;
  loadgen::Target cloud;
};

Servers servers(const Options& o) {
  Servers s;
  s.cloud = o.target;
  if (o.edges > 0) {
    if (o.base_urls.size() != 1) fail("--edges: give the cloud as the one --base-url");
    if (o.edge_model.empty()) fail("--edges needs --edge-model (the model the edges run)");
    if (o.cloud_prompt.empty()) fail("--edges needs --cloud-prompt (what the edges fetch)");
    s.cloud.base_url = o.base_urls[0];
    std::vector<std::string> args = {"--model",    o.edge_model,
                                     "--cloud",    o.base_urls[0],
                                     "--max-seqs", std::to_string(o.edge_max_seqs),
                                     "--threads",  std::to_string(o.edge_threads)};
    args.insert(args.end(), o.edge_args.begin(), o.edge_args.end());
    s.fleet = std::make_unique<EdgeFleet>(o.edges, args);
    for (const std::string& url : s.fleet->urls()) {
      loadgen::Target t = o.target;
      t.base_url = url;
      s.targets.push_back(t);
    }
    return s;
  }
  for (const std::string& url : o.base_urls) {
    loadgen::Target t = o.target;
    t.base_url = url;
    loadgen::split_base_url(url);  // a bad URL fails before any work
    s.targets.push_back(t);
  }
  s.cloud.base_url = o.cloud_url.empty() ? o.base_urls[0] : o.cloud_url;
  return s;
}

// The sum over servers of their metrics; nullopt if none exposes any.
std::optional<loadgen::Metrics> scrape_all(const std::vector<loadgen::Target>& targets) {
  std::optional<loadgen::Metrics> sum;
  for (const auto& t : targets) {
    if (const auto m = loadgen::scrape_metrics(t)) {
      if (!sum) sum.emplace();
      for (const auto& [k, v] : *m) (*sum)[k] += v;
    }
  }
  return sum;
}

int run(Options& o) {
  const double rate = parse_rate(o.request_rate);
  const std::vector<double> percentiles = parse_percentiles(o.percentiles);
  const loadgen::GoodputSlo slo = loadgen::parse_goodput(o.goodput);
  if (o.num_prompts == 0) fail("--num-prompts must be at least 1");
  if (o.base_urls.empty()) fail("--base-url: give at least one server");
  if (o.target.endpoint.empty() || o.target.endpoint[0] != '/') {
    fail("--endpoint must start with /");
  }
  o.target.api_key = api_key(o);
  for (const std::string& url : o.base_urls) loadgen::split_base_url(url);
  if (!o.cloud_url.empty()) loadgen::split_base_url(o.cloud_url);

  std::unique_ptr<Tokenizer> tok;
  if (!o.tokenizer.empty()) tok = require_tokenizer(o.tokenizer);
  const loadgen::TokenCounter count = [&](std::string_view text) -> size_t {
    return tok ? tok->encode(text, false, false).size() : loadgen::approx_token_count(text);
  };

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
  const std::vector<BenchPrompt> prompts = load_prompts(o, count);
  Servers srv = servers(o);
  if (srv.targets[0].model.empty()) {
    const std::string model = loadgen::served_model(srv.targets[0]).value_or("default");
    for (auto& t : srv.targets) t.model = model;
    o.target.model = model;
  }

  // What setting up cost the cloud (registering the prompt, the edges' first fetches).
  const std::optional<loadgen::Metrics> cloud_at_start = loadgen::scrape_metrics(srv.cloud);

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
          srv.cloud, o.cloud_prompt, system, o.cloud_prompt_template,
          o.admin_token.empty() ? o.target.api_key : o.admin_token, o.target.timeout_s);
    } else {
      if (!system.empty()) {
        fail("--system-prompt-len with --cloud-prompt needs --register-cloud-prompt");
      }
      system_tokens = loadgen::cloud_prompt_tokens(srv.cloud, o.cloud_prompt);
    }
  } else {
    if (o.register_prompt) fail("--register-cloud-prompt needs --cloud-prompt ID");
    body.system_prompt = system;
  }

  loadgen::RunPlan plan;
  plan.max_concurrency = o.max_concurrency;
  plan.warmup = o.warmup;
  plan.send_times_s = loadgen::arrival_times(prompts.size(), rate, o.burstiness, o.seed);
  for (const BenchPrompt& p : prompts) {
    plan.bodies.push_back(loadgen::request_body(o.target, body, p));
    plan.prompt_lens.push_back(p.prompt_len + system_tokens);
  }

  // One request to each server first, as vLLM does: a server that cannot answer is an error,
  // not a run of failures.
  for (const auto& t : srv.targets) {
    const loadgen::RequestRecord probe =
        loadgen::send_streaming(t, plan.bodies[0], plan.prompt_lens[0], loadgen::Clock::now());
    if (!probe.ok()) fail("the first test request to {} failed: {}", t.base_url, probe.error);
  }

  // The servers' metrics around the measured requests only.
  const bool cloud_is_target =
      srv.targets.size() == 1 && srv.targets[0].base_url == srv.cloud.base_url;
  std::optional<loadgen::Metrics> cloud_before, targets_before;
  std::optional<loadgen::Metrics> setup_delta;
  plan.before_run = [&] {
    cloud_before = loadgen::scrape_metrics(srv.cloud);
    if (cloud_at_start && cloud_before) {
      setup_delta = loadgen::metrics_delta(*cloud_at_start, *cloud_before);
    }
    targets_before = cloud_is_target ? cloud_before : scrape_all(srv.targets);
  };

  fmt::print(stderr, "bench-serve: {} requests to {}{}{} at {} req/s{}, model {}\n", prompts.size(),
             srv.targets[0].base_url, o.target.endpoint,
             srv.targets.size() > 1 ? fmt::format(" and {} more", srv.targets.size() - 1) : "",
             o.request_rate,
             o.max_concurrency ? fmt::format(", at most {} at once", o.max_concurrency) : "",
             o.target.model);
  loadgen::RunResult result;
  {
    ProgressBar bar("bench-serve", "requests");
    // Piped stderr gets a line per tenth of the run instead of the bar.
    const bool terminal = ::isatty(STDERR_FILENO) != 0;
    const auto t0 = loadgen::Clock::now();
    result = loadgen::run_benchmark(srv.targets, plan, [&](size_t done, size_t total) {
      bar.update(done, total);
      if (!terminal && (done * 10 / total != (done - 1) * 10 / total)) {
        fmt::print(stderr, "bench-serve: {}/{} requests done, {:.1f} s\n", done, total,
                   std::chrono::duration<double>(loadgen::Clock::now() - t0).count());
      }
    });
  }
  loadgen::ServerCost cost;
  if (cloud_before) {
    if (const auto after = loadgen::scrape_metrics(srv.cloud)) {
      cost.cloud = loadgen::metrics_delta(*cloud_before, *after);
    }
  }
  if (cloud_is_target) {
    cost.targets = cost.cloud;
  } else if (targets_before) {
    if (const auto after = scrape_all(srv.targets)) {
      cost.targets = loadgen::metrics_delta(*targets_before, *after);
    }
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
  const std::string cost_text = loadgen::server_cost_text(cost, s.completed);
  if (!cost_text.empty())
    fmt::print("{:-^50}\n{}{}\n", " Server cost ", cost_text, std::string(50, '='));
  if (!o.result_file.empty()) {
    ojson j = loadgen::result_json(settings_json(o, rate, slo), s, result.records);
    j["server_cost"] = loadgen::server_cost_json(cost, s.completed);
    if (setup_delta) j["server_cost"]["setup_cloud_metrics_delta"] = *setup_delta;
    ojson urls = ojson::array();
    for (const auto& t : srv.targets) urls.push_back(t.base_url);
    j["servers"] = std::move(urls);
    write_atomically(o.result_file, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

Command add_bench_serve(CLI::App& root) {
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand(
      "bench-serve", "Load-test an OpenAI-compatible server (streaming; vLLM's serving metrics)");
  app->add_option("--base-url", o->base_urls,
                  "Server, e.g. http://127.0.0.1:8080 (several: requests go round-robin; with "
                  "--edges: the cloud)");
  app->add_option("--cloud-url", o->cloud_url,
                  "The EdgePrompt cloud when --base-url is an edge (cloud prompts, metrics)");
  app->add_option("--edges", o->edges,
                  "Start N edges on the cloud at --base-url and send the requests to them");
  app->add_option("--edge-model", o->edge_model, "--edges: the model the edges run");
  app->add_option("--edge-max-seqs", o->edge_max_seqs, "--edges: each edge's --max-seqs");
  app->add_option("--edge-threads", o->edge_threads, "--edges: each edge's --threads");
  app->add_option("--edge-arg", o->edge_args, "--edges: one more argument for every edge")
      ->allow_extra_args(false);
  app->add_option("--endpoint", o->target.endpoint, "/v1/completions or /v1/chat/completions");
  app->add_option("--api-key", o->target.api_key,
                  "Bearer token (default: --api-key-file, else $OPENAI_API_KEY)");
  app->add_option("--api-key-file", o->api_key_file, "File holding the bearer token");
  app->add_option("--ca-cert", o->target.ca_cert,
                  "PEM file of the CA that signed the https servers' certificates");
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
