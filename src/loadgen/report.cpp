#include "loadgen/report.h"

#include <fmt/core.h>

namespace ep::loadgen {

using ojson = nlohmann::ordered_json;

std::string percentile_name(double p) {
  return fmt::format("p{}", p);
}

namespace {

void put_stats(ojson& j, const std::string& name, const LatencyStats& s) {
  j["mean_" + name + "_ms"] = s.mean_ms;
  j["median_" + name + "_ms"] = s.median_ms;
  j["std_" + name + "_ms"] = s.std_ms;
  for (const auto& [p, v] : s.percentiles_ms) j[percentile_name(p) + "_" + name + "_ms"] = v;
}

}  // namespace

namespace {

void put_summary(ojson& j, const Summary& s) {
  j["duration"] = s.duration_s;
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["total_input_tokens"] = s.total_input_tokens;
  j["total_output_tokens"] = s.total_output_tokens;
  j["request_throughput"] = s.request_throughput;
  j["request_goodput"] = s.request_goodput;
  j["output_throughput"] = s.output_throughput;
  j["total_token_throughput"] = s.total_token_throughput;
  put_stats(j, "ttft", s.ttft);
  put_stats(j, "tpot", s.tpot);
  put_stats(j, "itl", s.itl);
  put_stats(j, "e2el", s.e2el);
}

}  // namespace

ojson summary_json(const Summary& s) {
  ojson j;
  put_summary(j, s);
  return j;
}

ojson record_json(const RequestRecord& r) {
  ojson j;
  j["prompt_len"] = r.prompt_len;
  j["output_len"] = r.output_len;
  j["expected_output_len"] = r.expected_output_len;
  j["usage_reported"] = r.usage_reported;
  j["server_prompt_tokens"] = r.server_prompt_tokens;
  j["chunks"] = r.chunks;
  j["server"] = r.server;
  j["scheduled_s"] = r.scheduled_s;
  j["start_s"] = r.start_s;
  j["ttft"] = r.ttft;
  j["itl"] = r.itl;
  j["e2el"] = r.e2el;
  j["error"] = r.error;
  j["generated_text"] = r.text;
  return j;
}

ojson result_json(const ojson& settings, const Summary& s,
                  const std::vector<RequestRecord>& records) {
  ojson j = settings;
  put_summary(j, s);
  // vLLM's per-request arrays, for tools that read its result files.
  ojson input_lens = ojson::array(), output_lens = ojson::array(), ttfts = ojson::array();
  ojson itls = ojson::array(), texts = ojson::array(), errors = ojson::array();
  for (const RequestRecord& r : records) {
    input_lens.push_back(r.prompt_len);
    output_lens.push_back(r.ok() ? r.output_len : 0);
    ttfts.push_back(r.ok() ? r.ttft : 0.0);
    itls.push_back(r.itl);
    texts.push_back(r.text);
    errors.push_back(r.error);
  }
  j["input_lens"] = std::move(input_lens);
  j["output_lens"] = std::move(output_lens);
  j["ttfts"] = std::move(ttfts);
  j["itls"] = std::move(itls);
  j["generated_texts"] = std::move(texts);
  j["errors"] = std::move(errors);
  ojson reqs = ojson::array();
  for (const RequestRecord& r : records) reqs.push_back(record_json(r));
  j["requests"] = std::move(reqs);
  return j;
}

std::string summary_text(const Summary& s, const std::string& title, const std::string& first_error,
                         bool goodput) {
  std::string out;
  const auto line = [&](const std::string& name, const std::string& value) {
    out += fmt::format("{:<40}{:>10}\n", name, value);
  };
  const auto num = [](double v) { return fmt::format("{:.2f}", v); };
  const auto header = [&](const std::string& t) {
    const size_t pad = t.size() + 2 < 50 ? 50 - t.size() - 2 : 0;
    out +=
        fmt::format("{0} {1} {2}\n", std::string(pad / 2, '-'), t, std::string(pad - pad / 2, '-'));
  };
  out += fmt::format("{:=^50}\n", " " + title + " ");
  line("Successful requests:", std::to_string(s.completed));
  line("Failed requests:", std::to_string(s.failed));
  if (!first_error.empty()) out += "  first error: " + first_error.substr(0, 200) + "\n";
  line("Benchmark duration (s):", num(s.duration_s));
  line("Total input tokens:", std::to_string(s.total_input_tokens));
  line("Total generated tokens:", std::to_string(s.total_output_tokens));
  line("Request throughput (req/s):", num(s.request_throughput));
  if (goodput) line("Request goodput (req/s):", num(s.request_goodput));
  line("Output token throughput (tok/s):", num(s.output_throughput));
  line("Total token throughput (tok/s):", num(s.total_token_throughput));
  const auto block = [&](const std::string& t, const std::string& abbr, const LatencyStats& st) {
    header(t);
    line("Mean " + abbr + " (ms):", num(st.mean_ms));
    line("Median " + abbr + " (ms):", num(st.median_ms));
    line("Std " + abbr + " (ms):", num(st.std_ms));
    for (const auto& [p, v] : st.percentiles_ms) line(fmt::format("P{} {} (ms):", p, abbr), num(v));
  };
  block("Time to First Token", "TTFT", s.ttft);
  block("Time per Output Token (excl. 1st token)", "TPOT", s.tpot);
  block("Inter-token Latency", "ITL", s.itl);
  block("End-to-end Latency", "E2EL", s.e2el);
  out += std::string(50, '=') + "\n";
  return out;
}

}  // namespace ep::loadgen
