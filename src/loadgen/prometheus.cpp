#include "loadgen/prometheus.h"

#include "loadgen/http_client.h"

#include <httplib.h>

#include <charconv>
#include <cmath>

namespace ep::loadgen {
namespace {

// The '}' that closes the label set opened at `open`: label values are quoted and may hold '}'
// and escaped quotes. npos if it never closes.
size_t labels_end(std::string_view line, size_t open) {
  bool quoted = false;
  for (size_t i = open + 1; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == '}') {
      return i;
    }
  }
  return std::string_view::npos;
}

}  // namespace

Metrics parse_prometheus(std::string_view text) {
  Metrics m;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == 0 || name_end == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, name_end);
    if (name.size() > 7 && name.substr(name.size() - 7) == "_bucket") continue;
    size_t value_at = name_end;
    if (line[name_end] == '{') {
      const size_t close = labels_end(line, name_end);
      if (close == std::string_view::npos) continue;
      value_at = close + 1;
    }
    while (value_at < line.size() && line[value_at] == ' ') ++value_at;
    const std::string_view rest = line.substr(value_at);
    const std::string_view number = rest.substr(0, rest.find(' '));  // a timestamp may follow
    double v = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
    if (ec != std::errc() || end != number.data() + number.size() || !std::isfinite(v)) continue;
    m[std::string(name)] += v;
  }
  return m;
}

std::optional<Metrics> scrape_metrics(const Target& target) {
  const auto c = make_client(target, 10);
  c->set_connection_timeout(5, 0);
  httplib::Headers headers;
  if (!target.api_key.empty()) headers.emplace("Authorization", "Bearer " + target.api_key);
  const auto r = c->Get(split_base_url(target.base_url).second + "/metrics", headers);
  if (!r || r->status != 200) return std::nullopt;
  return parse_prometheus(r->body);
}

Metrics metrics_delta(const Metrics& before, const Metrics& after) {
  Metrics d;
  for (const auto& [name, v] : after) {
    const auto it = before.find(name);
    d[name] = v - (it == before.end() ? 0.0 : it->second);
  }
  return d;
}

}  // namespace ep::loadgen
