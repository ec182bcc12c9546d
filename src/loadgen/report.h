// A run's results as vLLM's benchmark_serving writes them: a JSON object of the summary's keys
// (duration, completed, request_throughput, mean_ttft_ms, p99_itl_ms, ...) plus the run's
// settings and one record per request; and the one-screen text summary.
#pragma once

#include "loadgen/bench_metrics.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ep::loadgen {

// "p99" for 99, "p99.9" for 99.9.
std::string percentile_name(double p);

nlohmann::ordered_json summary_json(const Summary& s);
nlohmann::ordered_json record_json(const RequestRecord& r);

// The result file: `settings` (the command's options), the summary's keys at the top level,
// then "requests": every record.
nlohmann::ordered_json result_json(const nlohmann::ordered_json& settings, const Summary& s,
                                   const std::vector<RequestRecord>& records);

// The text summary; `first_error` (if any failed) shown under the counts.
std::string summary_text(const Summary& s, const std::string& title, const std::string& first_error,
                         bool goodput);

}  // namespace ep::loadgen
