// A server's Prometheus text (GET /metrics) as numbers, to report what a run cost the servers:
// the difference of two scrapes, before and after. Samples of one name with different labels
// are summed (a histogram's buckets are skipped: its _sum and _count are kept).
#pragma once

#include "loadgen/stream_request.h"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ep::loadgen {

using Metrics = std::map<std::string, double>;

// Lines that are not samples (comments, blank, malformed) are skipped.
Metrics parse_prometheus(std::string_view text);

// GET {base_url}/metrics; nullopt if the server does not answer 200.
std::optional<Metrics> scrape_metrics(const Target& target);

// after - before, for every name in `after` (a name missing before counts from 0).
Metrics metrics_delta(const Metrics& before, const Metrics& after);

}  // namespace ep::loadgen
