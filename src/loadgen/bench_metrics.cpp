#include "loadgen/bench_metrics.h"

#include "core/error.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

namespace ep::loadgen {

GoodputSlo parse_goodput(const std::vector<std::string>& items) {
  GoodputSlo slo;
  for (const std::string& item : items) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos) fail("--goodput: '{}' is not KEY:MILLISECONDS", item);
    const std::string key = item.substr(0, colon);
    const std::string num = item.substr(colon + 1);
    double ms = 0;
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), ms);
    if (ec != std::errc() || end != num.data() + num.size() || !(ms >= 0) || std::isinf(ms)) {
      fail("--goodput: '{}' is not a number of milliseconds", num);
    }
    if (key == "ttft") {
      slo.ttft_ms = ms;
    } else if (key == "tpot") {
      slo.tpot_ms = ms;
    } else if (key == "e2el") {
      slo.e2el_ms = ms;
    } else {
      fail("--goodput: unknown objective '{}' (ttft, tpot or e2el)", key);
    }
  }
  return slo;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * double(values.size() - 1);
  const size_t lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - double(lo));
}

LatencyStats latency_stats(const std::vector<double>& seconds, const std::vector<double>& ps) {
  LatencyStats s;
  if (!seconds.empty()) {
    const double n = double(seconds.size());
    const double mean = std::accumulate(seconds.begin(), seconds.end(), 0.0) / n;
    double var = 0;
    for (double v : seconds) var += (v - mean) * (v - mean);
    s.mean_ms = mean * 1000;
    s.std_ms = std::sqrt(var / n) * 1000;
    s.median_ms = percentile(seconds, 50) * 1000;
  }
  for (double p : ps) s.percentiles_ms[p] = percentile(seconds, p) * 1000;
  return s;
}

std::optional<double> tpot(const RequestRecord& r) {
  if (!r.ok() || r.output_len <= 1) return std::nullopt;
  return (r.e2el - r.ttft) / double(r.output_len - 1);
}

Summary summarize(const std::vector<RequestRecord>& records, double duration_s,
                  const GoodputSlo& slo, const std::vector<double>& percentiles) {
  Summary s;
  s.duration_s = duration_s;
  std::vector<double> ttfts, tpots, itls, e2els;
  size_t good = 0;
  for (const RequestRecord& r : records) {
    if (!r.ok()) {
      ++s.failed;
      continue;
    }
    ++s.completed;
    s.total_input_tokens += r.prompt_len;
    s.total_output_tokens += r.output_len;
    const std::optional<double> t = tpot(r);
    if (t) tpots.push_back(*t);
    itls.insert(itls.end(), r.itl.begin(), r.itl.end());
    ttfts.push_back(r.ttft);
    e2els.push_back(r.e2el);
    const bool is_good = (!slo.ttft_ms || r.ttft * 1000 <= *slo.ttft_ms) &&
                         (!slo.tpot_ms || t.value_or(0) * 1000 <= *slo.tpot_ms) &&
                         (!slo.e2el_ms || r.e2el * 1000 <= *slo.e2el_ms);
    if (is_good) ++good;
  }
  if (duration_s > 0) {
    s.request_throughput = double(s.completed) / duration_s;
    s.request_goodput = slo.any() ? double(good) / duration_s : 0;
    s.output_throughput = double(s.total_output_tokens) / duration_s;
    s.total_token_throughput = double(s.total_input_tokens + s.total_output_tokens) / duration_s;
  }
  s.ttft = latency_stats(ttfts, percentiles);
  s.tpot = latency_stats(tpots, percentiles);
  s.itl = latency_stats(itls, percentiles);
  s.e2el = latency_stats(e2els, percentiles);
  return s;
}

}  // namespace ep::loadgen
