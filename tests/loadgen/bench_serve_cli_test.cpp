// edgeprompt bench-serve against a real cloud process on loopback: every request completes, the
// token counts agree with the server's usage and tokenizer, the result file has every metric and
// is self-consistent, the seeded arrival schedule is the one the run followed, a registered cloud
// prompt is used through the chat endpoint, and failures are one clear error.
#include "http/test_pki.h"
#include "loadgen/arrivals.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

namespace ep {
namespace {

using json = nlohmann::json;

test::CommandResult bench(const std::string& url, std::vector<std::string> args) {
  std::vector<std::string> all = {"bench-serve", "--base-url", url};
  all.insert(all.end(), args.begin(), args.end());
  return test::run_cli(all);
}

double metric(const std::string& url, const std::string& name) {
  httplib::Client c(url);
  const auto r = c.Get("/metrics");
  if (!r) return -1;
  std::istringstream lines(r->body);
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind(name + " ", 0) == 0) return std::stod(l.substr(name.size() + 1));
  }
  return -1;
}

TEST(BenchServe, MeasuresTheCloudWithCountsThatMatchTheServer) {
  test::Process cloud({"cloud", "--insecure-http", "--model", test::default_model().string(),
                       "--listen", "127.0.0.1:0", "--max-seqs", "4"});
  const std::string url = test::start_cloud(cloud);
  test::ScratchDir dir;
  const auto result = dir / "r.json";
  constexpr size_t kN = 6;
  constexpr double kRate = 40;
  const auto r = bench(url, {"--dataset",
                             "random",
                             "--random-input-len",
                             "24",
                             "--random-output-len",
                             "6",
                             "--random-range-ratio",
                             "0.5",
                             "--num-prompts",
                             std::to_string(kN),
                             "--request-rate",
                             "40",
                             "--seed",
                             "11",
                             "--max-concurrency",
                             "3",
                             "--warmup",
                             "2",
                             "--ignore-eos",
                             "--tokenizer",
                             test::default_model().string(),
                             "--goodput",
                             "ttft:60000",
                             "e2el:60000",
                             "--result-file",
                             result.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("Successful requests:"), std::string::npos);
  EXPECT_NE(r.out.find("P99 TTFT (ms):"), std::string::npos);
  const json j = json::parse(test::read_file(result));
  for (const char* key :
       {"duration", "completed", "failed", "total_input_tokens", "total_output_tokens",
        "request_throughput", "request_goodput", "output_throughput", "total_token_throughput"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  for (const char* m : {"ttft", "tpot", "itl", "e2el"}) {
    for (const char* stat : {"mean", "median", "std", "p90", "p99"}) {
      EXPECT_TRUE(j.contains(std::string(stat) + "_" + m + "_ms")) << stat << " " << m;
    }
  }
  EXPECT_EQ(j["completed"], kN);
  EXPECT_EQ(j["failed"], 0);
  for (const char* key :
       {"input_lens", "output_lens", "ttfts", "itls", "generated_texts", "errors"}) {
    EXPECT_EQ(j[key].size(), kN) << key;  // vLLM's per-request arrays
  }
  EXPECT_NE(r.err.find("bench-serve: 6/6 requests done"), std::string::npos) << r.err;
  ASSERT_EQ(j["requests"].size(), kN);
  // The run followed the seeded schedule, which is the same on every call.
  const std::vector<double> schedule = loadgen::arrival_times(kN, kRate, 1.0, 11);
  size_t out_total = 0, in_total = 0;
  for (size_t i = 0; i < kN; ++i) {
    const json& q = j["requests"][i];
    SCOPED_TRACE(q.dump());
    EXPECT_EQ(q["error"], "");
    EXPECT_TRUE(q["usage_reported"].get<bool>());
    // ignore_eos: exactly the dataset's length, as the server's usage says.
    EXPECT_EQ(q["output_len"], q["expected_output_len"]);
    EXPECT_GE(q["expected_output_len"].get<int>(), 3);
    EXPECT_LE(q["expected_output_len"].get<int>(), 9);
    // The prompt length was counted with the model's tokenizer: the server adds only BOS.
    EXPECT_EQ(q["server_prompt_tokens"].get<size_t>(), q["prompt_len"].get<size_t>() + 1);
    EXPECT_GE(q["prompt_len"].get<int>(), 10);
    EXPECT_LE(q["prompt_len"].get<int>(), 36);
    EXPECT_GT(q["ttft"].get<double>(), 0);
    EXPECT_LE(q["ttft"].get<double>(), q["e2el"].get<double>());
    EXPECT_GE(q["chunks"].get<size_t>(), 1u);
    EXPECT_LE(q["chunks"].get<size_t>(), q["output_len"].get<size_t>());
    EXPECT_EQ(q["itl"].size() + 1, q["chunks"].get<size_t>());
    EXPECT_DOUBLE_EQ(q["scheduled_s"].get<double>(), schedule[i]);
    EXPECT_GE(q["start_s"].get<double>(), schedule[i] - 1e-6);
    EXPECT_LE(q["start_s"].get<double>() + q["e2el"].get<double>(), j["duration"].get<double>());
    out_total += q["output_len"].get<size_t>();
    in_total += q["prompt_len"].get<size_t>();
  }
  // --max-concurrency 3: never more than three requests between their send and last token.
  for (const json& a : j["requests"]) {
    const double t = a["start_s"].get<double>() + 1e-4;
    int in_flight = 0;
    for (const json& b : j["requests"]) {
      const double s0 = b["start_s"], s1 = s0 + b["e2el"].get<double>();
      if (s0 <= t && t < s1) ++in_flight;
    }
    EXPECT_LE(in_flight, 3);
  }
  EXPECT_EQ(j["total_output_tokens"], out_total);
  EXPECT_EQ(j["total_input_tokens"], in_total);
  const double duration = j["duration"];
  EXPECT_GT(duration, schedule.back());
  EXPECT_NEAR(j["request_throughput"].get<double>(), kN / duration, 1e-9);
  EXPECT_NEAR(j["output_throughput"].get<double>(), out_total / duration, 1e-9);
  EXPECT_NEAR(j["request_goodput"].get<double>(), kN / duration, 1e-9);  // generous objectives
  EXPECT_LE(j["mean_ttft_ms"].get<double>(), j["mean_e2el_ms"].get<double>());
  // Every request reached the server once: the run, the warm-up and the first test request.
  EXPECT_EQ(metric(url, "edgeprompt_cloud_completion_requests_total"), double(kN + 2 + 1));
}

TEST(BenchServe, ChatWithARegisteredCloudPrompt) {
  test::Process cloud({"cloud", "--insecure-http", "--model", test::default_model().string(),
                       "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  test::ScratchDir dir;
  const auto result = dir / "r.json";
  const auto r = bench(url, {"--endpoint",
                             "/v1/chat/completions",
                             "--dataset",
                             "random",
                             "--random-input-len",
                             "12",
                             "--random-output-len",
                             "4",
                             "--num-prompts",
                             "4",
                             "--request-rate",
                             "inf",
                             "--ignore-eos",
                             "--system-prompt-len",
                             "48",
                             "--cloud-prompt",
                             "bench",
                             "--register-cloud-prompt",
                             "--result-file",
                             result.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  httplib::Client c(url);
  const auto p = c.Get("/v1/cloud-prompts/bench");
  ASSERT_TRUE(p);
  ASSERT_EQ(p->status, 200);
  const json prompt = json::parse(p->body);
  EXPECT_EQ(prompt["state"], "ready");
  const json j = json::parse(test::read_file(result));
  EXPECT_EQ(j["completed"], 4);
  EXPECT_EQ(j["cloud_prompt"], "bench");
  for (const json& q : j["requests"]) {
    EXPECT_EQ(q["error"], "");
    EXPECT_EQ(q["output_len"], 4);
    // The shared part counts in the prompt's length, as the cloud counted it.
    EXPECT_GT(q["prompt_len"].get<size_t>(), prompt["n_tokens"].get<size_t>());
    EXPECT_DOUBLE_EQ(q["scheduled_s"].get<double>(), 0.0);  // inf: all at once
  }
}

TEST(BenchServe, EdgesModeFetchesTheCloudPromptOncePerEdge) {
  test::Process cloud({"cloud", "--insecure-http", "--model", test::default_model().string(),
                       "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  test::ScratchDir dir;
  const auto result = dir / "r.json";
  const auto r = bench(url, {"--edges",
                             "2",
                             "--edge-model",
                             test::default_model().string(),
                             "--endpoint",
                             "/v1/chat/completions",
                             "--cloud-prompt",
                             "fleet",
                             "--register-cloud-prompt",
                             "--system-prompt-len",
                             "64",
                             "--random-input-len",
                             "12",
                             "--random-output-len",
                             "4",
                             "--ignore-eos",
                             "--num-prompts",
                             "6",
                             "--request-rate",
                             "inf",
                             "--result-file",
                             result.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("Edge KV cache hits:"), std::string::npos) << r.out;
  const json j = json::parse(test::read_file(result));
  EXPECT_EQ(j["completed"], 6);
  EXPECT_EQ(j["edges"], 2);
  std::vector<size_t> servers;
  for (const json& q : j["requests"]) {
    EXPECT_EQ(q["error"], "");
    EXPECT_EQ(q["output_len"], 4);
    servers.push_back(q["server"]);
  }
  EXPECT_EQ(servers, (std::vector<size_t>{0, 1, 0, 1, 0, 1}));  // round-robin over the edges
  httplib::Client c(url);
  const auto p = c.Get("/v1/cloud-prompts/fleet");
  ASSERT_TRUE(p);
  const double kv_bytes = json::parse(p->body)["kv_bytes"].get<double>();
  ASSERT_GT(kv_bytes, 0);
  const json& cost = j["server_cost"];
  // Each edge fetched the prompt's KV once, for its first request (before the run); during the
  // run every request found it in its edge's cache and the cloud computed and sent nothing.
  EXPECT_EQ(cost["setup_cloud_metrics_delta"]["edgeprompt_cloud_kv_bytes_served_total"],
            2 * kv_bytes);
  EXPECT_EQ(cost["edge_kv_cache_hits"], 6);
  EXPECT_EQ(cost["edge_kv_cache_misses"], 0);
  EXPECT_EQ(cost["cloud_kv_bytes_per_request"], 0);
  EXPECT_EQ(cost["cloud_tokens_computed_per_request"], 0);
  EXPECT_EQ(cost["cloud_metrics_delta"]["edgeprompt_cloud_completion_requests_total"], 0);
  // The edges were stopped when the run ended.
  ASSERT_EQ(j["servers"].size(), 2u);
  for (const json& edge : j["servers"]) {
    EXPECT_NE(edge.get<std::string>(), url);
    httplib::Client e(edge.get<std::string>());
    EXPECT_FALSE(e.Get("/health")) << edge;
  }
}

TEST(BenchServe, CloudServingReportsTheTokensItComputed) {
  test::Process cloud({"cloud", "--insecure-http", "--model", test::default_model().string(),
                       "--listen", "127.0.0.1:0", "--cache-mode", "none"});
  const std::string url = test::start_cloud(cloud);
  test::ScratchDir dir;
  const auto result = dir / "r.json";
  const auto r = bench(url, {"--random-input-len", "20", "--random-output-len", "5", "--ignore-eos",
                             "--num-prompts", "3", "--max-concurrency", "1", "--tokenizer",
                             test::default_model().string(), "--result-file", result.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const json j = json::parse(test::read_file(result));
  // Without a shared cache each request computes its prompt (with BOS) and all but its last
  // output token.
  double tokens = 0;
  for (const json& q : j["requests"]) {
    tokens += q["server_prompt_tokens"].get<double>() + q["output_len"].get<double>() - 1;
  }
  EXPECT_DOUBLE_EQ(j["server_cost"]["cloud_tokens_computed_per_request"].get<double>(), tokens / 3);
}

TEST(BenchServe, ExperimentScriptsRunInSmokeMode) {
  // The figure scripts drive bench-serve against real servers; --smoke runs each in seconds.
  for (const char* script : {"fig3_system_prompt.py", "fig45_request_rate.py"}) {
    const auto r = test::run_program(
        "/usr/bin/python3",
        {(test::source_dir() / "bench" / "experiments" / script).string(), "--smoke", "--binary",
         test::edgeprompt_binary().string(), "--schemes", "none,relay,edgeprompt"});
    EXPECT_EQ(r.exit_code, 0) << script << "\n" << r.err << r.out;
    const size_t at = r.out.find("wrote ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::string path = r.out.substr(at + 6, r.out.find('\n', at) - at - 6);
    const json fig = json::parse(test::read_file(path));
    ASSERT_FALSE(fig["points"].empty());
    for (const json& p : fig["points"]) {
      EXPECT_EQ(p["completed"], 8) << p.dump();
      EXPECT_EQ(p["failed"], 0) << p.dump();
    }
    std::filesystem::remove_all(std::filesystem::path(path).parent_path());
  }
}

TEST(BenchServe, HttpsServerIsVerifiedAgainstTheGivenCa) {
  test::ScratchDir dir;
  const test::TestPki pki = test::make_test_pki(dir.path());
  test::Process cloud({"cloud", "--model", test::default_model().string(), "--listen",
                       "127.0.0.1:0", "--tls-cert", pki.server_cert.string(), "--tls-key",
                       pki.server_key.string()});
  const std::string line = cloud.wait_for_line("listening on https://");
  ASSERT_NE(line, "") << cloud.err();
  const size_t at = line.find("https://");
  const std::string url = line.substr(at, line.find(' ', at) - at);
  const std::vector<std::string> args = {"--num-prompts",       "2", "--random-input-len", "8",
                                         "--random-output-len", "3", "--ignore-eos"};
  std::vector<std::string> with_ca = args;
  with_ca.insert(with_ca.end(), {"--ca-cert", pki.ca.string()});
  const auto ok = bench(url, with_ca);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("Successful requests:                             2"), std::string::npos)
      << ok.out;
  // Signed by a CA the client does not trust: the first request fails, naming the cause.
  std::vector<std::string> other = args;
  other.insert(other.end(), {"--ca-cert", pki.other_ca.string()});
  const auto bad = bench(url, other);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("error: the first test request"), std::string::npos) << bad.err;
}

TEST(BenchServe, FailuresAreOneClearError) {
  // Nothing listens on port 1.
  const auto none = bench("http://127.0.0.1:1", {"--num-prompts", "2", "--random-input-len", "8",
                                                 "--random-output-len", "2", "--model", "m"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("error: the first test request"), std::string::npos) << none.err;
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--request-rate", "fast"},
                                             {"--burstiness", "0"},
                                             {"--goodput", "speed:3"},
                                             {"--dataset", "sharegpt"},
                                             {"--dataset", "sharegpt", "/no/such/file.json"},
                                             {"--dataset", "other"},
                                             {"--random-range-ratio", "1.5"},
                                             {"--metric-percentiles", "101"},
                                             {"--edges", "2", "--cloud-prompt", "p"},
                                             {"--edges", "2", "--edge-model", "m.gguf"}}) {
    std::vector<std::string> all = {"--model", "m", "--num-prompts", "2"};
    all.insert(all.end(), args.begin(), args.end());
    const auto r = bench("http://127.0.0.1:1", all);
    EXPECT_EQ(r.exit_code, 1) << args[0];
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_NE(bench("ftp://x", {}).err.find("http://"), std::string::npos);
}

TEST(BenchServe, ServerRefusalIsReportedWithItsMessage) {
  test::Process cloud({"cloud", "--insecure-http", "--model", test::default_model().string(),
                       "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  const auto r = bench(url, {"--num-prompts", "2", "--random-input-len", "8", "--random-output-len",
                             "2", "--extra-body", R"({"max_tokens": 0})"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("HTTP 400"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("max_tokens"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ep
