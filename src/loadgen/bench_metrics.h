// The serving benchmark's metrics, with the names and meanings of vLLM's benchmark_serving: per
// request the time to first token (TTFT), the inter-token latencies (ITL: between successive
// streamed chunks), the time per output token after the first (TPOT = (E2EL - TTFT) / (output - 1))
// and the end-to-end latency (E2EL: from sending to the last token); over a run the throughputs,
// the goodput under service-level objectives and each latency's mean, median, std and percentiles.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ep::loadgen {

// One request as the client saw it. Times in seconds.
struct RequestRecord {
  size_t prompt_len = 0;  // tokens of the prompt sent (the dataset's count, system prompt included)
  size_t expected_output_len = 0;   // the dataset's output length (max_tokens)
  size_t output_len = 0;            // tokens generated: the server's usage, else the chunks counted
  bool usage_reported = false;      // output_len came from the server's "usage"
  size_t server_prompt_tokens = 0;  // usage.prompt_tokens when reported
  size_t chunks = 0;                // streamed chunks that carried text
  size_t server = 0;                // which of the run's servers answered (an index)
  double scheduled_s = 0;           // planned send time since the start of the run
  double start_s = 0;               // actual send time since the start of the run
  double ttft = 0;
  std::vector<double> itl;
  double e2el = 0;
  std::string error;  // empty when the request succeeded
  std::string text;   // the generated text
  bool ok() const { return error.empty(); }
};

// --goodput: a request is good when every given objective holds (milliseconds).
struct GoodputSlo {
  std::optional<double> ttft_ms, tpot_ms, e2el_ms;
  bool any() const { return ttft_ms || tpot_ms || e2el_ms; }
};
// Parses "ttft:MS", "tpot:MS", "e2el:MS" (ep::Error on an unknown key or a bad number).
GoodputSlo parse_goodput(const std::vector<std::string>& items);

// numpy.percentile's default (linear interpolation between closest ranks); 0 for no values.
double percentile(std::vector<double> values, double p);

struct LatencyStats {
  double mean_ms = 0, median_ms = 0, std_ms = 0;  // std: population (numpy.std)
  std::map<double, double> percentiles_ms;        // p -> value
};
LatencyStats latency_stats(const std::vector<double>& seconds, const std::vector<double>& ps);

struct Summary {
  double duration_s = 0;
  size_t completed = 0, failed = 0;
  size_t total_input_tokens = 0, total_output_tokens = 0;
  double request_throughput = 0;      // completed / duration
  double request_goodput = 0;         // good requests / duration (0 without objectives)
  double output_throughput = 0;       // output tokens / duration
  double total_token_throughput = 0;  // (input + output tokens) / duration
  LatencyStats ttft, tpot, itl, e2el;
};

// Only successful requests count towards tokens and latencies. A request of one output token
// has no TPOT; for the goodput its TPOT counts as 0 (as in vLLM).
Summary summarize(const std::vector<RequestRecord>& records, double duration_s,
                  const GoodputSlo& slo, const std::vector<double>& percentiles);

// The request's TPOT in seconds, if it has one (output_len > 1).
std::optional<double> tpot(const RequestRecord& r);

}  // namespace ep::loadgen
